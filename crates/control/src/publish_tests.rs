//! The publisher against a store that fails on purpose: a failing entry
//! in the middle of a batch, a gap in one zone's journal, a zone whose
//! data cannot be built. After each, what is served equals what is
//! stored: nothing committed is lost.

use std::collections::HashSet;

use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Change, Record};
use sixgate_dns::{name, zonefile};
use sixgate_store::{Actor, JournalEntry, JournalKind, Store, StoreError};

use super::{Follower, Source, Visit};

/// A real store whose reads fail where a test says.
struct Faulty {
    store: Store,
    /// `visit_zone` of this apex fails while the count is above zero.
    fail_reload: Option<(Box<[u8]>, usize)>,
    /// Journal ids `journal_since` does not return (pruned under the
    /// reader).
    hidden: HashSet<i64>,
    /// Zones whose streamed records get an RRset too large to serve.
    oversized: HashSet<Box<[u8]>>,
    /// Owners (lowercased) whose RRSIGs are read back corrupted, from the
    /// zone's records and from the journal: storage that went bad, or a
    /// signer that wrote a wrong signature.
    corrupt: HashSet<Box<[u8]>>,
}

/// `r` with its last octet flipped if it is an RRSIG of an owner in
/// `corrupt`.
fn corrupted(corrupt: &HashSet<Box<[u8]>>, mut r: Record) -> Record {
    if r.rtype == code::RRSIG && corrupt.contains(&name::to_lowercase(&r.owner)) {
        let mut rd = r.rdata.to_vec();
        if let Some(b) = rd.last_mut() {
            *b ^= 1;
        }
        r.rdata = rd.into();
    }
    r
}

fn injected() -> StoreError {
    StoreError::BadInput("injected fault".into())
}

/// 300 TXT records of 250 octets at the apex: over 65535 octets, as an
/// older version could have stored.
fn oversized(apex: &[u8]) -> Vec<Record> {
    (0..300u16)
        .map(|i| {
            let mut rdata = vec![249u8];
            rdata.extend(i.to_be_bytes());
            rdata.extend([b'x'; 247]);
            Record { owner: apex.into(), rtype: 16, ttl: 60, rdata: rdata.into() }
        })
        .collect()
}

impl Faulty {
    fn wrap<'a>(
        oversized_zones: &'a HashSet<Box<[u8]>>,
        corrupt: &'a HashSet<Box<[u8]>>,
        visit: &'a mut Visit<'_>,
    ) -> impl FnMut(&[u8], u64, &mut super::Records<'_>) -> Result<(), StoreError> + 'a {
        move |apex, n, recs| {
            let mut recs = recs.map(|r| r.map(|r| corrupted(corrupt, r)));
            if oversized_zones.contains(&name::to_lowercase(apex)) {
                let extra = oversized(apex);
                let mut all = recs.chain(extra.into_iter().map(Ok));
                visit(apex, n + 300, &mut all)
            } else {
                visit(apex, n, &mut recs)
            }
        }
    }
}

impl Source for Faulty {
    fn data_version(&self) -> Result<i64, StoreError> {
        self.store.data_version()
    }
    fn routes_generation(&self) -> Result<i64, StoreError> {
        self.store.routes_generation()
    }
    fn secondaries_generation(&self) -> Result<i64, StoreError> {
        self.store.secondaries_generation()
    }
    fn secondaries(&self) -> Result<crate::secondaries::Secondaries, StoreError> {
        crate::secondaries::Secondaries::load(&self.store)
    }
    fn catalog_serial(&self) -> Result<u32, StoreError> {
        self.store.catalog_serial()
    }
    fn catalog_members(&self) -> Result<sixgate_store::CatalogMembers, StoreError> {
        self.store.catalog_members()
    }
    fn journal_since(&self, after: i64, limit: usize) -> Result<Vec<JournalEntry>, StoreError> {
        let mut v = self.store.journal_since(after, limit)?;
        v.retain(|e| !self.hidden.contains(&e.id));
        for e in &mut v {
            if let JournalKind::Diff(changes) = &mut e.kind {
                for c in changes.iter_mut() {
                    *c = match c.clone() {
                        Change::Add(r) => Change::Add(corrupted(&self.corrupt, r)),
                        Change::Remove(r) => Change::Remove(corrupted(&self.corrupt, r)),
                    };
                }
            }
        }
        Ok(v)
    }
    fn visit_zones(&mut self, visit: &mut Visit<'_>) -> Result<i64, StoreError> {
        let (over, corrupt) = (self.oversized.clone(), self.corrupt.clone());
        let mut w = Faulty::wrap(&over, &corrupt, visit);
        self.store.visit_zones(|a, n, r| w(a, n, r))
    }
    fn visit_zone(&mut self, apex: &[u8], visit: &mut Visit<'_>) -> Result<Option<i64>, StoreError> {
        if let Some((a, n)) = &mut self.fail_reload
            && *a == name::to_lowercase(apex)
            && *n > 0
        {
            *n -= 1;
            return Err(injected());
        }
        let (over, corrupt) = (self.oversized.clone(), self.corrupt.clone());
        let mut w = Faulty::wrap(&over, &corrupt, visit);
        self.store.visit_zone(apex, |a, n, r| w(a, n, r))
    }
    fn now(&self) -> i64 {
        self.store.now()
    }
    fn set_hold(&mut self, apex: &[u8], reason: Option<&str>) -> Result<(), StoreError> {
        self.store.set_hold(apex, reason)
    }
    fn clear_holds(&mut self) -> Result<(), StoreError> {
        self.store.clear_holds()
    }
    fn dnssec_alert(&mut self, apex: &[u8], alert: Option<&str>) -> Result<(), StoreError> {
        self.store.dnssec_alert(apex, alert)
    }
}

fn n(text: &str) -> Box<[u8]> {
    name::from_text(text, None).unwrap()
}

fn zone_text(apex: &str, extra: &str) -> Vec<Record> {
    let text = format!("@ 300 SOA ns hm 1 2 3 4 5\n@ 300 NS ns\nns 300 AAAA 2001:db8::53\n{extra}");
    zonefile::parse(&text, &n(apex)).unwrap()
}

fn rec(apex: &str, line: &str) -> Record {
    zonefile::parse(line, &n(apex)).unwrap().remove(0)
}

fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    v.sort_by(|a, b| {
        (name::to_lowercase(&a.owner), a.rtype, &a.rdata).cmp(&(
            name::to_lowercase(&b.owner),
            b.rtype,
            &b.rdata,
        ))
    });
    v
}

/// What the catalog serves for a zone.
fn served(f: &Follower<Faulty>, apex: &str) -> Option<Vec<Record>> {
    f.catalog.load().zone(&n(apex)).map(|z| sorted(z.records()))
}

/// What the store holds for a zone (derived records included).
fn stored(f: &mut Follower<Faulty>, apex: &str) -> Vec<Record> {
    let (_, data) = f.store.store.zone_snapshot(&n(apex)).unwrap().unwrap();
    sorted(data.records)
}

fn setup() -> (tempfile::TempDir, Follower<Faulty>) {
    setup_with_oversized(&[])
}

/// Zones a.test. and b.test., loaded by a follower whose store streams an
/// RRset too large to serve into the zones named.
fn setup_with_oversized(zones: &[&str]) -> (tempfile::TempDir, Follower<Faulty>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    for z in ["a.test.", "b.test."] {
        store
            .by(Actor::Task("test"))
            .replace_zone(&n(z), zone_text(z, "www 300 AAAA 2001:db8::1\n"))
            .unwrap();
    }
    let oversized = zones.iter().map(|z| n(z)).collect();
    let faulty =
        Faulty { store, fail_reload: None, hidden: HashSet::new(), oversized, corrupt: HashSet::new() };
    let (f, _) = Follower::load(faulty, 7).unwrap();
    (dir, f)
}

/// A second connection, as the API or the CLI writes: the follower's own
/// connection sees its `data_version` change only for other connections'
/// commits.
fn writer(f: &Follower<Faulty>) -> Store {
    Store::open(f.store.store.dir()).unwrap()
}

fn write(f: &mut Follower<Faulty>, apex: &str, line: &str) -> i64 {
    let c = writer(f).by(Actor::Task("test")).apply(&n(apex), &[Change::Add(rec(apex, line))]).unwrap();
    c.journal_id
}

/// Regression: the publisher moved its position past a batch before
/// applying it, so one failing entry lost every change of that batch,
/// for every zone, until a restart.
#[test]
fn a_failing_entry_in_the_middle_of_a_batch_loses_nothing() {
    let (_dir, mut f) = setup();
    let before = f.position;
    write(&mut f, "a.test.", "one 300 AAAA 2001:db8::11\n");
    // A whole replacement of b: the follower reloads it, and the reload
    // fails twice.
    writer(&f)
        .by(Actor::Task("test"))
        .replace_zone(&n("b.test."), zone_text("b.test.", "new 300 AAAA 2001:db8::22\n"))
        .unwrap();
    let last = write(&mut f, "a.test.", "two 300 AAAA 2001:db8::12\n");
    f.store.fail_reload = Some((n("b.test."), 2));
    let served_a = served(&f, "a.test.");
    for _ in 0..2 {
        assert!(f.catch_up().is_err());
        assert_eq!(f.position, before, "the position must not move past unpublished entries");
        assert_eq!(served(&f, "a.test."), served_a, "nothing of a failed batch is published");
    }
    f.catch_up().unwrap();
    assert_eq!(f.position, last);
    for z in ["a.test.", "b.test."] {
        assert_eq!(served(&f, z).unwrap(), stored(&mut f, z), "{z}");
    }
    assert_eq!(*f.published.borrow(), last);
}

/// Regression: pruning is per zone but gaps were found by the global
/// minimum id, so a reader that fell behind on a busy zone skipped its
/// pruned diffs and served a drifting zone for good.
#[test]
fn a_gap_in_one_zones_journal_reloads_that_zone() {
    let (_dir, mut f) = setup();
    let pruned = write(&mut f, "a.test.", "one 300 AAAA 2001:db8::11\n");
    write(&mut f, "b.test.", "bee 300 AAAA 2001:db8::21\n");
    write(&mut f, "a.test.", "two 300 AAAA 2001:db8::12\n");
    f.store.hidden.insert(pruned);
    f.catch_up().unwrap();
    for z in ["a.test.", "b.test."] {
        assert_eq!(served(&f, z).unwrap(), stored(&mut f, z), "{z}");
    }
    // The pruned diff's record is served: the zone was reloaded.
    assert!(served(&f, "a.test.").unwrap().iter().any(|r| name::to_text(&r.owner) == "one.a.test."));
}

/// Regression: one zone that could not be built (an RRset over 65535
/// octets stored by an older version) made `serve` exit at start and the
/// publisher stop for every zone.
#[test]
fn a_zone_that_cannot_be_built_is_held_and_the_others_publish() {
    let (_dir, mut f) = setup_with_oversized(&["b.test."]);
    assert!(served(&f, "b.test.").is_none(), "no good version of b to serve");
    assert_eq!(served(&f, "a.test.").unwrap(), stored(&mut f, "a.test."));
    let holds = f.store.store.holds().unwrap();
    assert_eq!(holds.len(), 1);
    assert_eq!(holds[0].0, n("b.test."));
    assert!(holds[0].1.contains("larger than 65535"), "{}", holds[0].1);
    assert_eq!(f.held_count().load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(*f.metrics().held(), vec!["b.test.".to_owned()], "the held zone is named for the metrics");

    // Changes to b stay held; a goes on.
    write(&mut f, "b.test.", "bee 300 AAAA 2001:db8::21\n");
    write(&mut f, "a.test.", "one 300 AAAA 2001:db8::11\n");
    f.catch_up().unwrap();
    assert!(served(&f, "b.test.").is_none());
    assert_eq!(served(&f, "a.test.").unwrap(), stored(&mut f, "a.test."));

    // Once b's data is good again, the next change serves it and the
    // hold goes.
    f.store.oversized.clear();
    write(&mut f, "b.test.", "bee2 300 AAAA 2001:db8::22\n");
    f.catch_up().unwrap();
    assert_eq!(served(&f, "b.test.").unwrap(), stored(&mut f, "b.test."));
    assert!(f.store.store.holds().unwrap().is_empty());
    assert!(f.metrics().held().is_empty(), "a zone served again is no longer named");

    // A held zone that had a good version keeps it.
    f.store.oversized.insert(n("a.test."));
    let good = served(&f, "a.test.");
    writer(&f)
        .by(Actor::Task("test"))
        .replace_zone(&n("a.test."), zone_text("a.test.", "x 300 AAAA 2001:db8::99\n"))
        .unwrap();
    f.catch_up().unwrap();
    assert_eq!(served(&f, "a.test."), good);
    assert_eq!(f.store.store.holds().unwrap().len(), 1);
}

/// Every commit is timed until the snapshot serving it is swapped in,
/// once, and every batch's build is timed; a failed batch serves nothing
/// and times no commit.
#[test]
fn each_commit_is_counted_once_as_served_when_its_snapshot_is_swapped_in() {
    let (_dir, mut f) = setup();
    let m = f.metrics();
    // The two zones written before the load were served by it (nextest
    // runs each test in its own process, so these counts are this test's).
    let (served0, built0) = (m.write_to_served.count(), m.build.count());
    for i in 0..3 {
        write(&mut f, "a.test.", &format!("n{i} 300 AAAA 2001:db8::{i}\n"));
    }
    assert_eq!(m.write_to_served.count(), served0, "nothing is served before the swap");
    f.store.fail_reload = Some((n("b.test."), 1));
    writer(&f)
        .by(Actor::Task("test"))
        .replace_zone(&n("b.test."), zone_text("b.test.", "new 300 AAAA 2001:db8::22\n"))
        .unwrap();
    assert!(f.catch_up().is_err());
    assert_eq!(m.write_to_served.count(), served0, "a failed batch serves no commit");
    f.catch_up().unwrap();
    assert_eq!(m.write_to_served.count(), served0 + 4);
    assert_eq!(m.build.count(), built0 + 1, "one batch, one build");
    f.catch_up().unwrap();
    assert_eq!(m.write_to_served.count(), served0 + 4, "each commit is served once");
}

/// A zone reloaded inside a batch that then fails is reloaded again on
/// the retry: its load mark must not outlive the batch that was never
/// published, or the retry would skip its changes.
#[test]
fn a_zone_reloaded_in_a_failed_batch_is_reloaded_again() {
    let (_dir, mut f) = setup();
    for z in ["a.test.", "b.test."] {
        writer(&f)
            .by(Actor::Task("test"))
            .replace_zone(&n(z), zone_text(z, "new 300 AAAA 2001:db8::33\n"))
            .unwrap();
    }
    f.store.fail_reload = Some((n("b.test."), 1));
    assert!(f.catch_up().is_err());
    f.catch_up().unwrap();
    for z in ["a.test.", "b.test."] {
        assert_eq!(served(&f, z).unwrap(), stored(&mut f, z), "{z}");
    }
}

/// a.test. signed (default policy) and b.test. unsigned, in a store not
/// yet loaded; RRSIGs of the owners in `corrupt` read back corrupted.
fn signed_store(corrupt: &[&str]) -> (tempfile::TempDir, Faulty) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    for z in ["a.test.", "b.test."] {
        store
            .by(Actor::Task("test"))
            .replace_zone(&n(z), zone_text(z, "www 300 AAAA 2001:db8::1\n"))
            .unwrap();
    }
    store.by(Actor::Task("test")).dnssec_enable(&n("a.test."), &Default::default()).unwrap();
    let corrupt = corrupt.iter().map(|o| n(o)).collect();
    (dir, Faulty { store, fail_reload: None, hidden: HashSet::new(), oversized: HashSet::new(), corrupt })
}

fn hold_of(f: &Follower<Faulty>, apex: &str) -> Option<String> {
    f.store.store.hold(&n(apex)).unwrap()
}

/// Regression (issue fault 8): the pre-serve check verified no
/// signature, so a stored RRSIG that does not verify was served at
/// load, as bogus data.
#[test]
fn fault8_a_stored_rrsig_that_does_not_verify_is_held_at_load_not_served() {
    let (_dir, faulty) = signed_store(&["www.a.test."]);
    let (mut f, _) = Follower::load(faulty, 7).unwrap();
    assert!(served(&f, "a.test.").is_none(), "a zone with a bad signature must not be served");
    let reason = hold_of(&f, "a.test.").expect("a.test. is held");
    assert!(reason.contains("www.a.test. AAAA: a signature by the zone's key does not verify"), "{reason}");
    assert_eq!(served(&f, "b.test.").unwrap(), stored(&mut f, "b.test."));
    assert_eq!(f.held_count().load(std::sync::atomic::Ordering::Relaxed), 1);
    // The alert is the zone's DNSSEC status too.
    let info = f.store.store.dnssec_info(&n("a.test.")).unwrap().unwrap();
    assert!(info.state.alert.is_some_and(|a| a.contains("does not verify")));
}

/// Regression (issue fault 8): a diff whose new RRSIG does not verify
/// (a signer fault) was served; it must hold the zone on its last good
/// version, and a later good version ends the hold.
#[test]
fn fault8_a_diff_whose_rrsig_does_not_verify_is_held_on_the_last_good_version() {
    let (_dir, faulty) = signed_store(&[]);
    let (mut f, _) = Follower::load(faulty, 7).unwrap();
    let good = served(&f, "a.test.").expect("a.test. is served");
    assert_eq!(good, stored(&mut f, "a.test."));
    f.store.corrupt.insert(n("new.a.test."));
    write(&mut f, "a.test.", "new 300 AAAA 2001:db8::2\n");
    f.catch_up().unwrap();
    assert_eq!(served(&f, "a.test.").unwrap(), good, "the bad version must not be served");
    let reason = hold_of(&f, "a.test.").expect("a.test. is held");
    assert!(reason.contains("new.a.test. AAAA: a signature by the zone's key does not verify"), "{reason}");

    // The storage is good again: the next change reloads the zone, which
    // is verified whole and then served.
    f.store.corrupt.clear();
    write(&mut f, "a.test.", "two 300 AAAA 2001:db8::3\n");
    f.catch_up().unwrap();
    f.settle();
    assert_eq!(served(&f, "a.test.").unwrap(), stored(&mut f, "a.test."));
    assert_eq!(hold_of(&f, "a.test."), None);
}

/// Regression (issue fault 8): a whole verification at load must not
/// keep other zones from being served, and changes that arrive while it
/// runs are neither lost nor served unverified.
#[test]
fn fault8_a_whole_load_verifies_off_the_serving_path() {
    let (_dir, faulty) = signed_store(&[]);
    // No worker threads: the verdict waits for `settle`, so what is
    // served before it can be looked at.
    let (mut f, _) = Follower::start(faulty, 7, 0).unwrap();
    assert_eq!(f.verifying(), 1);
    assert_eq!(
        served(&f, "b.test.").unwrap(),
        stored(&mut f, "b.test."),
        "the unsigned zone is served at once"
    );
    assert!(served(&f, "a.test.").is_none(), "the signed zone waits for its verdict");
    // Changes meanwhile: b's are served, a's wait with a.
    write(&mut f, "b.test.", "bee 300 AAAA 2001:db8::21\n");
    write(&mut f, "a.test.", "one 300 AAAA 2001:db8::11\n");
    f.catch_up().unwrap();
    assert_eq!(served(&f, "b.test.").unwrap(), stored(&mut f, "b.test."));
    assert!(served(&f, "a.test.").is_none());
    f.settle();
    assert_eq!(f.verifying(), 0);
    assert_eq!(
        served(&f, "a.test.").unwrap(),
        stored(&mut f, "a.test."),
        "the version verified plus the diff"
    );

    // A whole replacement is verified the same way, the old version
    // served meanwhile.
    let before = served(&f, "a.test.");
    writer(&f)
        .by(Actor::Task("test"))
        .replace_zone(&n("a.test."), zone_text("a.test.", "x 300 AAAA 2001:db8::99\n"))
        .unwrap();
    f.catch_up().unwrap();
    assert_eq!(f.verifying(), 1);
    assert_eq!(served(&f, "a.test."), before);
    f.settle();
    assert_eq!(served(&f, "a.test.").unwrap(), stored(&mut f, "a.test."));
    assert!(f.store.store.holds().unwrap().is_empty());
}

/// Regression: a write that changes what the proxy routes by but no
/// record (a hostname's PROXY mode, a lost verification) journals
/// nothing, so a proxy that rebuilt its routes after published journal
/// entries never saw it. The routes generation is passed on for those
/// writes, and only when it moves.
#[test]
fn a_write_that_changes_routes_and_no_record_is_passed_on() {
    let (_dir, mut f) = setup();
    let mut routes = f.routes();
    let www = n("www.a.test.");
    writer(&f)
        .by(Actor::Task("test"))
        .proxy_enable(&www, sixgate_store::ProxyProtocol::Off, 80, 443)
        .unwrap();
    f.catch_up().unwrap();
    assert!(routes.has_changed().unwrap(), "a hostname enabled");
    routes.mark_unchanged();
    let position = f.position;
    let c = writer(&f).by(Actor::Task("test")).proxy_enable(&www, sixgate_store::ProxyProtocol::V1, 80, 443);
    assert_eq!(c.unwrap(), None, "no record changed");
    f.catch_up().unwrap();
    assert_eq!(f.position, position, "nothing journaled");
    assert!(routes.has_changed().unwrap(), "its PROXY mode changed");
    routes.mark_unchanged();
    write(&mut f, "a.test.", "more 300 AAAA 2001:db8::3\n");
    f.catch_up().unwrap();
    assert!(!routes.has_changed().unwrap(), "a record change is the snapshot's, not the routes'");
    assert_eq!(*routes.borrow(), writer(&f).routes_generation().unwrap());
}

/// The PTR targets of the served catalog zone, lowercased text, sorted.
fn catalog_members_served(f: &Follower<Faulty>) -> Option<Vec<String>> {
    let zone = f.catalog.load().zone(&n("catalog.invalid.")).cloned()?;
    let mut v: Vec<String> = zone
        .records()
        .into_iter()
        .filter(|r| r.rtype == code::PTR)
        .map(|r| name::to_text(&name::to_lowercase(&r.rdata)))
        .collect();
    v.sort();
    Some(v)
}

/// The served catalog zone's members as (zone, group), lowercased text,
/// sorted: each PTR's target with the TXT at `group.` below its owner.
fn catalog_groups_served(f: &Follower<Faulty>) -> Vec<(String, Option<String>)> {
    let Some(zone) = f.catalog.load().zone(&n("catalog.invalid.")).cloned() else { return vec![] };
    let records = zone.records();
    let mut v: Vec<(String, Option<String>)> = records
        .iter()
        .filter(|r| r.rtype == code::PTR)
        .map(|ptr| {
            let group_owner = name::from_text("group", Some(&ptr.owner)).unwrap();
            let group = records
                .iter()
                .find(|r| {
                    r.rtype == code::TXT && name::to_lowercase(&r.owner) == name::to_lowercase(&group_owner)
                })
                .map(|txt| String::from_utf8(txt.rdata[1..].to_vec()).unwrap());
            (name::to_text(&name::to_lowercase(&ptr.rdata)), group)
        })
        .collect();
    v.sort();
    v
}

/// A keyless secondary that follows the catalog.
fn catalog_follower() -> sixgate_store::Secondary {
    sixgate_store::Secondary {
        address: "127.0.0.1:5300".parse().unwrap(),
        key: None,
        catalog: true,
        zones: vec![],
    }
}

#[test]
fn a_zone_given_to_another_account_changes_its_group_in_the_served_catalog() {
    let (_dir, mut f) = setup();
    let mut w = writer(&f);
    let follower = catalog_follower();
    w.add_secondary(&follower).unwrap();
    f.catch_up().unwrap();
    let operator = Some("operator".to_owned());
    assert_eq!(
        catalog_groups_served(&f),
        [("a.test.".to_owned(), operator.clone()), ("b.test.".to_owned(), operator.clone())]
    );
    let serial = f.catalog.load().zone(&n("catalog.invalid.")).unwrap().serial();

    // Verified either way, so still served and still a member: only the
    // group moves, and the catalog's serial with it.
    let alice = w.create_account("alice").unwrap().id;
    w.set_zone_owner(&n("b.test."), alice, true).unwrap();
    f.catch_up().unwrap();
    assert_eq!(
        catalog_groups_served(&f),
        [("a.test.".to_owned(), operator), ("b.test.".to_owned(), Some("alice".to_owned()))]
    );
    let moved = f.catalog.load().zone(&n("catalog.invalid.")).unwrap().serial();
    assert!(moved > serial, "{moved:?} after {serial:?}");
}

#[test]
fn the_catalog_zone_is_served_while_a_secondary_follows_it_and_lists_the_served_zones() {
    let (_dir, mut f) = setup();
    assert_eq!(catalog_members_served(&f), None, "no catalog secondary, no catalog zone");
    let before = f.secondaries().load().generation;
    let mut w = writer(&f);
    let follower = catalog_follower();
    w.add_secondary(&follower).unwrap();
    f.catch_up().unwrap();
    assert!(f.secondaries().load().generation > before, "the secondaries were reloaded");
    assert_eq!(f.secondaries().load().list, std::slice::from_ref(&follower));
    assert_eq!(catalog_members_served(&f).unwrap(), ["a.test.", "b.test."]);
    // A new zone is listed; a deleted one goes.
    w.by(Actor::Task("test")).replace_zone(&n("c.test."), zone_text("c.test.", "")).unwrap();
    w.by(Actor::Task("test")).delete_zone(&n("a.test.")).unwrap();
    f.catch_up().unwrap();
    assert_eq!(catalog_members_served(&f).unwrap(), ["b.test.", "c.test."]);
    let serial = f.catalog.load().zone(&n("catalog.invalid.")).unwrap().serial();
    assert_eq!(serial, Some(w.catalog_serial().unwrap()));
    // The catalog's followers gone, the catalog zone goes too.
    w.remove_secondary(follower.address).unwrap();
    f.catch_up().unwrap();
    assert_eq!(catalog_members_served(&f), None);
    assert!(f.secondaries().load().list.is_empty());
}
