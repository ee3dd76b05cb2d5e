//! The zone check's "nothing below a DNAME" rule (RFC 6672 §2.3) for a
//! change to one owner: the whole-zone form is `sixgate_dns::check`'s,
//! this one asks the stored zone about the owner's ancestors and
//! descendants with index probes.

use rusqlite::{Connection, params};
use sixgate_dns::check;
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::Record;

use crate::StoreError;

/// Refuses the records `at` (all of owner `owner_key`, lowercased, after
/// the change) if a proper ancestor up to the apex has a DNAME, or if they
/// hold a DNAME and some name below has data.
pub(crate) fn check_owner(
    conn: &Connection,
    zone_id: i64,
    apex_key: &[u8],
    owner_key: &[u8],
    at: &[Record],
) -> Result<(), StoreError> {
    if at.is_empty() {
        return Ok(());
    }
    let mut has_dname = conn.prepare_cached(
        "SELECT EXISTS(SELECT 1 FROM records WHERE zone_id = ?1 AND owner_key = ?2 AND rtype = ?3)",
    )?;
    let mut above = None;
    let mut p = name::parent(owner_key);
    while let Some(a) = p.filter(|a| a.len() >= apex_key.len()) {
        if has_dname.query_row(params![zone_id, a, code::DNAME], |r| r.get::<_, bool>(0))? {
            above = Some(a);
        }
        p = name::parent(a);
    }
    if let Some(d) = above {
        return Err(check::below_dname(at.first().map_or(owner_key, |r| &r.owner[..]), d).into());
    }
    if at.iter().any(|r| r.rtype == code::DNAME) {
        // Names below: their lowercased wire form ends with the owner's.
        // A suffix match may cut a label, so each candidate is checked.
        let mut st = conn.prepare_cached(
            "SELECT owner, owner_key FROM records WHERE zone_id = ?1 AND derived != 3
             AND length(owner_key) > length(?2) AND substr(owner_key, -length(?2)) = ?2",
        )?;
        let mut rows = st.query(params![zone_id, owner_key])?;
        while let Some(row) = rows.next()? {
            let below: Vec<u8> = row.get(1)?;
            if name::is_at_or_below(&below, owner_key) {
                let shown: Vec<u8> = row.get(0)?;
                return Err(check::below_dname(&shown, owner_key).into());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{Actor, Store};
    use sixgate_dns::name;
    use sixgate_dns::zone::Change;
    use sixgate_dns::zonefile;

    fn apex() -> Box<[u8]> {
        name::from_text("example.com.", None).unwrap()
    }

    fn zone(extra: &str) -> Vec<sixgate_dns::zone::Record> {
        let text = format!("@ 300 SOA ns hm 7 2 3 4 5\n@ 300 NS ns\nns 300 A 192.0.2.1\n{extra}");
        zonefile::parse(&text, &apex()).unwrap()
    }

    fn add(text: &str) -> Vec<Change> {
        zonefile::parse(text, &apex()).unwrap().into_iter().map(Change::Add).collect()
    }

    /// RFC 6672 §2.3 on every write path: a whole zone (import, replace),
    /// and a change (API, UPDATE) adding data below a DNAME or a DNAME
    /// above data. Nothing of a refused write is stored.
    #[test]
    fn data_below_a_dname_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        let e = s
            .by(Actor::Task("test"))
            .replace_zone(&apex(), zone("d 300 DNAME t.example.net.\nhost.d 300 A 192.0.2.2\n"))
            .unwrap_err();
        assert!(e.to_string().contains("host.d.example.com. is below the DNAME at d.example.com."), "{e}");
        assert!(s.zones().unwrap().is_empty(), "nothing stored");

        s.by(Actor::Task("test")).replace_zone(&apex(), zone("d 300 DNAME t.example.net.\n")).unwrap();
        let before = s.records(&apex()).unwrap().len();
        let e = s.by(Actor::Task("test")).apply(&apex(), &add("x.y.d 300 TXT hi\n")).unwrap_err();
        assert!(e.to_string().contains("x.y.d.example.com. is below the DNAME at d.example.com."), "{e}");
        assert_eq!(s.records(&apex()).unwrap().len(), before);

        s.by(Actor::Task("test")).replace_zone(&apex(), zone("host.sub 300 A 192.0.2.2\n")).unwrap();
        let e = s.by(Actor::Task("test")).apply(&apex(), &add("sub 300 DNAME t.example.net.\n")).unwrap_err();
        assert!(
            e.to_string().contains("host.sub.example.com. is below the DNAME at sub.example.com."),
            "{e}"
        );
        let e = s.by(Actor::Task("test")).apply(&apex(), &add("@ 300 DNAME t.example.net.\n")).unwrap_err();
        assert!(e.to_string().contains("below the DNAME at example.com."), "{e}");
        // Beside the data, not above it, a DNAME is fine.
        s.by(Actor::Task("test")).apply(&apex(), &add("other 300 DNAME t.example.net.\n")).unwrap();
    }
}
