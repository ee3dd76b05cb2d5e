//! `sixgate zone ...` and `sixgate record ...`: work on the store directly,
//! then poke a server running on the same data directory.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use sixgate_control::publish::poke;
use sixgate_dns::check::check_zone;
use sixgate_dns::zone::{Change, Zone};
use sixgate_dns::{name, zonefile};
use sixgate_store::Store;

/// Parses a zone name given on the command line ("example.com" or "example.com.").
pub(crate) fn zone_name(text: &str) -> anyhow::Result<Box<[u8]>> {
    let t = text.trim();
    if t.is_empty() {
        bail!("empty zone name");
    }
    let abs = if t.ends_with('.') { t.to_string() } else { format!("{t}.") };
    name::from_text(&abs, None).map_err(|e| anyhow!("bad zone name {text:?}: {e}"))
}

fn open(dir: &Path) -> anyhow::Result<Store> {
    crate::dnssecmd::open(dir)
}

/// Reads and checks a zone file; errors name the file and line.
pub(crate) fn read_zone_file(file: &Path, apex: &[u8]) -> anyhow::Result<Vec<sixgate_dns::zone::Record>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (mut records, lines) = zonefile::parse_with_lines(&text, apex)
        .map_err(|e| anyhow!("{}:{}: {}", file.display(), e.line, e.reason))?;
    if let Err(e) = check_zone(apex, &mut records) {
        return Err(match e.index.and_then(|i| lines.get(i)) {
            Some(line) => anyhow!("{}:{}: {}", file.display(), line, e.reason),
            None => anyhow!("{}: {}", file.display(), e.reason),
        });
    }
    // Kept, as Knot keeps it, but never served or signed: say so.
    for o in sixgate_dns::check::occluded_by_delegations(apex, &records) {
        match lines.get(o.index) {
            Some(line) => eprintln!("warning: {}:{}: {o}", file.display(), line),
            None => eprintln!("warning: {}: {o}", file.display()),
        }
    }
    Ok(records)
}

pub(crate) fn import(dir: &Path, zone: &str, file: &Path) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let records = read_zone_file(file, &apex)?;
    let n = records.len();
    let mut store = open(dir)?;
    let commit = store.by(sixgate_store::Actor::cli()).replace_zone(&apex, records)?;
    poke(dir);
    eprintln!("imported {} records into {} (serial {})", n, name::to_text(&apex), commit.serial);
    Ok(())
}

pub(crate) fn export(dir: &Path, zone: &str, as_served: bool) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let mut store = open(dir)?;
    let missing = || anyhow!("zone {} does not exist", name::to_text(&apex));
    let text = if as_served {
        // Build the snapshot DNS serves (derived records included) and
        // print its content, private types in the generic form.
        let (_, sixgate_store::ZoneData { apex: apex_case, records }) =
            store.zone_snapshot(&apex)?.ok_or_else(missing)?;
        let z = Zone::build(&apex_case, records, 0)?;
        zonefile::render_as_served(&apex_case, &z.records())
    } else {
        let sixgate_store::ZoneData { apex: apex_case, mut records } =
            store.source_zone(&apex)?.ok_or_else(missing)?;
        sixgate_dns::zone::sort_canonical(&mut records);
        zonefile::render(&apex_case, &records)
    };
    print!("{text}");
    Ok(())
}

pub(crate) fn list(dir: &Path) -> anyhow::Result<()> {
    let store = open(dir)?;
    let all = store.serves_unverified()?;
    for z in store.zones()? {
        // The last column says whether DNS serves the zone: `served`,
        // `unverified` (a customer's zone whose delegation is not proven),
        // or `held (REASON)` (the last good version stays served).
        let state = match &z.held {
            Some(reason) => format!("held ({reason})"),
            None if z.account_id != sixgate_store::OPERATOR_ACCOUNT && !z.verified && !all => {
                "unverified".into()
            }
            None => "served".into(),
        };
        println!("{}\t{}\t{}\t{state}", name::to_text(&z.apex), z.serial, z.records);
    }
    // The catalog zone (RFC 9432) exists once a secondary follows it.
    if store.secondaries()?.iter().any(|s| s.catalog) {
        use sixgate_dns::catzone;
        let catalog = store.catalog_members()?;
        let members = catalog.members.iter().map(sixgate_store::CatalogMember::as_member);
        let apex = store.catalog_name()?;
        let records = catzone::records(&apex, catalog.serial, members)?;
        println!("{}\t{}\t{}\tcatalog", name::to_text(&apex), catalog.serial, records.len());
    }
    Ok(())
}

pub(crate) fn delete(dir: &Path, zone: &str, force: bool) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let mut store = open(dir)?;
    let mut w = store.by(sixgate_store::Actor::cli());
    if force {
        w.delete_zone_forced(&apex)?
    } else {
        w.delete_zone(&apex)?
    };
    poke(dir);
    eprintln!("deleted {}", name::to_text(&apex));
    Ok(())
}

pub(crate) fn record_add(dir: &Path, zone: &str, line: &str) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let records =
        zonefile::parse(&format!("{line}\n"), &apex).map_err(|e| anyhow!("bad record: {}", e.reason))?;
    if records.len() != 1 {
        bail!("give exactly one record, as 'OWNER TTL TYPE RDATA'");
    }
    let changes: Vec<Change> = records.into_iter().map(Change::Add).collect();
    let mut store = open(dir)?;
    let commit = store.by(sixgate_store::Actor::cli()).apply(&apex, &changes)?;
    poke(dir);
    eprintln!("serial {}", commit.serial);
    Ok(())
}

pub(crate) fn record_delete(dir: &Path, zone: &str, owner: &str, rtype: &str) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let owner_w = name::from_text(owner, Some(&apex)).map_err(|e| anyhow!("bad owner {owner:?}: {e}"))?;
    let rtype_code = zonefile::type_from_text(rtype).ok_or_else(|| anyhow!("unknown type {rtype:?}"))?;
    let mut store = open(dir)?;
    let changes: Vec<Change> =
        store.rrset(&apex, &owner_w, rtype_code)?.into_iter().map(Change::Remove).collect();
    if changes.is_empty() {
        bail!("no {} records at {}", rtype.to_uppercase(), name::to_text(&owner_w));
    }
    let commit = store.by(sixgate_store::Actor::cli()).apply(&apex, &changes)?;
    poke(dir);
    eprintln!("serial {}", commit.serial);
    Ok(())
}

/// An owner given relative to the zone (or absolute) as absolute text.
pub(crate) fn absolute(zone: &str, owner: &str) -> anyhow::Result<String> {
    let apex = zone_name(zone)?;
    let o = name::from_text(owner, Some(&apex)).map_err(|e| anyhow!("bad owner {owner:?}: {e}"))?;
    Ok(name::to_text(&o))
}

pub(crate) fn record_set(
    dir: &Path,
    zone: &str,
    owner: &str,
    rtype: &str,
    ttl: u32,
    data: &[String],
) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let owner_w = name::from_text(owner, Some(&apex)).map_err(|e| anyhow!("bad owner {owner:?}: {e}"))?;
    let rtype_code = zonefile::type_from_text(&rtype.to_ascii_uppercase())
        .ok_or_else(|| anyhow!("unknown type {rtype:?}"))?;
    let mut records = Vec::new();
    for d in data {
        let r = zonefile::parse_rdata(&apex, &owner_w, rtype_code, ttl, d).map_err(|e| match e {
            zonefile::RdataError::LineBreak => anyhow!("record data {d:?} contains a line break"),
            e => anyhow!("bad record data {d:?}: {e}"),
        })?;
        records.push(r);
    }
    let mut store = open(dir)?;
    let commit =
        store.by(sixgate_store::Actor::cli()).replace_rrsets(&apex, &[(owner_w, rtype_code, records)])?;
    poke(dir);
    eprintln!("serial {}", commit.serial);
    Ok(())
}

pub(crate) fn record_list(dir: &Path, zone: &str) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let store = open(dir)?;
    let mut records = store.records(&apex)?;
    sixgate_dns::zone::sort_canonical(&mut records);
    for r in records {
        println!(
            "{}\t{}\tIN\t{}\t{}",
            name::to_text(&r.owner),
            r.ttl,
            zonefile::type_text(r.rtype),
            zonefile::rdata_text(r.rtype, &r.rdata)
        );
    }
    Ok(())
}

pub(crate) fn aname_status(dir: &Path, zone: Option<&str>) -> anyhow::Result<()> {
    let apex = zone.map(zone_name).transpose()?;
    let store = open(dir)?;
    if let Some(a) = &apex
        && store.zone_owner(a)?.is_none()
    {
        bail!("zone {} does not exist", name::to_text(a));
    }
    let time = |t: Option<i64>| t.map_or_else(|| "-".to_string(), sixgate_store::rfc3339);
    for (a, st) in store.aname_status(apex.as_deref())? {
        let addrs = if st.addresses.is_empty() { "-".to_string() } else { st.addresses.join(",") };
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            name::to_text(&a.owner),
            name::to_text(&a.target),
            addrs,
            time(st.last_success),
            st.last_error.as_deref().unwrap_or("-").replace(['\t', '\n'], " "),
            time(st.next_refresh)
        );
    }
    Ok(())
}

/// `sixgate audit [ZONE]`: one line per change (id, time, zone, serial,
/// kind, actor), then one indented line per record added (`+`) or
/// removed (`-`).
pub(crate) fn audit(dir: &Path, zone: Option<&str>, limit: usize) -> anyhow::Result<()> {
    let store = open(dir)?;
    let apex = zone.map(zone_name).transpose()?;
    for e in store.audit(apex.as_deref(), limit)? {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            e.id,
            sixgate_store::rfc3339(e.at),
            name::to_text(&e.apex),
            e.serial,
            e.kind,
            e.actor
        );
        for c in &e.changes {
            let (sign, r) = match c {
                sixgate_dns::zone::Change::Add(r) => ('+', r),
                sixgate_dns::zone::Change::Remove(r) => ('-', r),
            };
            println!(
                "\t{sign} {}",
                sixgate_dns::zonefile::render_records(std::slice::from_ref(r)).trim_end()
            );
        }
    }
    Ok(())
}
