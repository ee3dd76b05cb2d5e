//! The store's side of managed DNSSEC: what it makes of the parent's DS,
//! and what it refuses to write to a signed zone.

use sixgate_dns::name;
use sixgate_dns::zone::{Change, Record};
use sixgate_dns::zonefile;
use sixgate_dnssec::ds;
use sixgate_dnssec::policy::Policy;
use sixgate_dnssec::rollover::{DsState, ParentDs};

use crate::{Actor, Store, StoreError, Verdict};

fn apex() -> Box<[u8]> {
    name::from_text("example.com.", None).unwrap()
}

fn signed_store(dir: &std::path::Path, policy: &Policy) -> Store {
    let mut s = Store::open(dir).unwrap();
    let text = "@ 300 SOA ns hm 1 7200 3600 1209600 300\n@ 300 NS ns\nns 300 A 192.0.2.1\n";
    s.by(Actor::Task("test")).replace_zone(&apex(), zonefile::parse(text, &apex()).unwrap()).unwrap();
    s.by(Actor::Task("test")).dnssec_enable(&apex(), policy).unwrap();
    s
}

/// Moves the store's clock to `at` (Unix seconds).
fn clock(s: &mut Store, at: u64) {
    s.set_clock_offset(at as i64 - crate::now());
}

/// An observation of the parent as the maintenance task stores it, made
/// from the fields every version of it has.
fn observation(at: u64, ttl: u32, rdatas: &[Vec<u8>]) -> (ParentDs, Vec<Vec<u8>>) {
    let tags: Vec<(u16, u8)> =
        rdatas.iter().filter_map(|rd| ds::Ds::decode(rd)).map(|d| (d.key_tag, d.algorithm)).collect();
    let p = serde_json::from_value(serde_json::json!({ "observed_at": at, "ttl": ttl, "ds": tags })).unwrap();
    (p, rdatas.to_vec())
}

fn record(text: &str) -> Record {
    zonefile::parse(text, &apex()).unwrap().remove(0)
}

/// Regression: the planner took a DS at the parent with the key's tag and
/// algorithm for the key's, whatever its digest, while the status verdict
/// compared digests. A DS with a mistyped digest moved the CSK to "seen"
/// and on towards a rollover that would remove the key the DS should name.
#[test]
fn a_parent_ds_with_the_key_tag_and_a_wrong_digest_is_not_the_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = signed_store(dir.path(), &Policy::default());
    let info = s.dnssec_info(&apex()).unwrap().unwrap();
    let start = s.now() as u64;
    // CDS goes out after the publication and retire intervals.
    clock(&mut s, start + 2 * 3600);
    s.by(Actor::Task("test")).dnssec_maintain(&apex(), None).unwrap();
    let csk = &info.keys[0];
    let good = ds::ds_rdata(&info.apex, &csk.dnskey, ds::SHA256).unwrap();
    let mut wrong = good.clone();
    *wrong.last_mut().unwrap() ^= 0x55;
    let at = start + 3 * 3600;
    clock(&mut s, at);
    s.by(Actor::Task("test")).dnssec_maintain(&apex(), Some(observation(at, 3600, &[wrong]))).unwrap();
    let info = s.dnssec_info(&apex()).unwrap().unwrap();
    let key = info.state.keyring.key(csk.record.id).unwrap();
    assert_eq!(key.ds, DsState::Submitted, "a ds with a wrong digest counted as seen");
    assert_eq!(info.verdict(), Verdict::DsMismatch);
    // The right digest is seen, and both sides agree.
    let at = at + 3600;
    clock(&mut s, at);
    s.by(Actor::Task("test")).dnssec_maintain(&apex(), Some(observation(at, 3600, &[good]))).unwrap();
    let info = s.dnssec_info(&apex()).unwrap().unwrap();
    assert_eq!(info.state.keyring.key(csk.record.id).unwrap().ds, DsState::Seen);
    assert_eq!(info.verdict(), Verdict::Secure);
}

/// Regression: the zone's largest TTL was checked against the policy only
/// at `dnssec enable`. A record written later with a TTL of 2^31-1 made
/// the planner wait for it: the move to secure stalled and every retired
/// ZSK stayed published. Every write to a signed zone is held to it now,
/// refused in the words of the size limits, and nothing of it is stored.
#[test]
fn a_signed_zone_refuses_a_ttl_above_its_policy_on_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy::default();
    let mut s = signed_store(dir.path(), &policy);
    let max = policy.max_record_ttl();
    let serial = s.serial(&apex()).unwrap();
    let huge = record("www 2147483647 A 192.0.2.7");
    let err = s.by(Actor::Task("test")).apply(&apex(), &[Change::Add(huge)]).unwrap_err();
    assert!(matches!(err, StoreError::Limit(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("www.example.com. A: 2147483647 seconds of ttl over the signed zone ttl limit of {max}")
    );
    // A whole-zone write is held to it too.
    let text = format!("@ 300 SOA ns hm 1 7200 3600 1209600 300\n@ 300 NS ns\nns {} A 192.0.2.1\n", max + 1);
    let err = s.by(Actor::Task("test")).replace_zone(&apex(), zonefile::parse(&text, &apex()).unwrap());
    assert!(matches!(err, Err(StoreError::Limit(_))), "{err:?}");
    assert_eq!(s.serial(&apex()).unwrap(), serial, "a refused write changed the zone");
    // At the limit the write goes through; an unsigned zone has no such
    // limit.
    let ok = record(&format!("www {max} A 192.0.2.7"));
    s.by(Actor::Task("test")).apply(&apex(), &[Change::Add(ok)]).unwrap();
    let other = name::from_text("other.test.", None).unwrap();
    let text = "@ 300 SOA ns hm 1 7200 3600 1209600 300\n@ 300 NS ns\nns 2147483647 A 192.0.2.1\n";
    s.by(Actor::Task("test")).replace_zone(&other, zonefile::parse(text, &other).unwrap()).unwrap();
}

/// Regression: `dnssec disable --now` and zone delete dropped the keys of
/// a signed zone whatever the parent's DS. Each is refused while it would
/// make the zone bogus, with the reason; only `force` goes past that, and
/// nothing of a refused write is stored.
#[test]
fn destroying_keys_is_refused_while_the_zone_would_turn_bogus() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy { layout: sixgate_dnssec::policy::KeyLayout::KskZsk, ..Policy::default() };
    let mut s = signed_store(dir.path(), &policy);
    let serial = s.serial(&apex()).unwrap();
    // The parent was never asked: it may serve a DS.
    let err = s.by(Actor::Task("test")).dnssec_unsign(&apex(), false).unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert!(err.to_string().contains("refused unsigning it now"), "{err}");
    let err = s.by(Actor::Task("test")).delete_zone(&apex()).unwrap_err();
    assert!(err.to_string().contains("refused deleting it with its keys"), "{err}");
    assert_eq!(s.serial(&apex()).unwrap(), serial);
    assert!(s.dnssec_info(&apex()).unwrap().is_some());
    // The operator may force them.
    s.by(Actor::Task("test")).dnssec_unsign(&apex(), true).unwrap();
    assert!(s.dnssec_info(&apex()).unwrap().is_none());
    s.by(Actor::Task("test")).delete_zone(&apex()).unwrap();
}

/// Regression: `remove-key` took a retired ZSK at once, while resolvers
/// could still hold the signatures it made (for the zone's largest TTL
/// plus the propagation delay): answers they hold turned bogus. The
/// refusal says until when.
#[test]
fn remove_key_waits_until_a_retired_zsks_signatures_left_caches() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy { layout: sixgate_dnssec::policy::KeyLayout::KskZsk, ..Policy::default() };
    let mut s = signed_store(dir.path(), &policy);
    let start = s.now() as u64;
    let old = s.dnssec_info(&apex()).unwrap().unwrap();
    let old = old.keys.iter().find(|k| k.record.role == sixgate_dnssec::rollover::Role::Zsk).unwrap();
    let (old_id, old_tag) = (old.record.id, old.record.key_tag);
    s.by(Actor::Task("test")).dnssec_roll(&apex(), crate::Roll::Zsk).unwrap();
    clock(&mut s, start + 3 * 3600);
    s.by(Actor::Task("test")).dnssec_maintain(&apex(), None).unwrap();
    let info = s.dnssec_info(&apex()).unwrap().unwrap();
    let retired = info.state.keyring.key(old_id).unwrap();
    assert_eq!(retired.state, sixgate_dnssec::rollover::KeyState::Retired);
    let until = retired.times.retired.unwrap() + policy.zone_delay(300);
    let err = s.by(Actor::Task("test")).dnssec_remove_key(&apex(), old_tag, false).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "example.com.: refused removing key {old_tag}: resolvers may still hold signatures it made until {}, and would see the zone as bogus; safe from {} (the key is removed by itself then)",
            crate::rfc3339(until as i64),
            crate::rfc3339(until as i64)
        )
    );
    assert!(s.dnssec_info(&apex()).unwrap().unwrap().state.keyring.key(old_id).unwrap().is_live());
    s.by(Actor::Task("test")).dnssec_remove_key(&apex(), old_tag, true).unwrap();
    assert!(!s.dnssec_info(&apex()).unwrap().unwrap().state.keyring.key(old_id).unwrap().is_live());
}

/// A zone whose parent was seen, by every server, without any DS (its DS
/// never got there) may be unsigned and deleted at once.
#[test]
fn a_zone_the_parent_never_vouched_for_may_go_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = signed_store(dir.path(), &Policy::default());
    let at = s.now() as u64;
    let mut empty = observation(at, 900, &[]);
    empty.0.complete = true;
    s.by(Actor::Task("test")).dnssec_maintain(&apex(), Some(empty)).unwrap();
    s.by(Actor::Task("test")).delete_zone(&apex()).unwrap();
}

/// `dnssec enable` hands out the DS with the time the registry may
/// publish it: the planner's own time for listing it in CDS, after the
/// unsigned zone has left every cache.
#[test]
fn the_ds_comes_with_the_time_it_may_be_published() {
    let dir = tempfile::tempdir().unwrap();
    let policy = Policy::default();
    let mut s = signed_store(dir.path(), &policy);
    let info = s.dnssec_info(&apex()).unwrap().unwrap();
    let published = info.keys[0].record.times.published.unwrap();
    let ds = s.dnssec_ds_publish_after(&apex()).unwrap();
    assert_eq!(ds.len(), 1);
    let after = ds[0].1.unwrap();
    assert_eq!(after, published + policy.zone_delay(300).max(policy.publish_delay()));
    // Once CDS lists it, that is the time.
    clock(&mut s, after);
    s.by(Actor::Task("test")).dnssec_maintain(&apex(), None).unwrap();
    assert_eq!(s.dnssec_ds_publish_after(&apex()).unwrap()[0].1, Some(after));
}

/// A record as a comparable value: owner (lowercased), type, TTL, rdata.
type RecordKey = (Box<[u8]>, u16, u32, Box<[u8]>);

/// The zone's records as a set, for comparisons.
fn record_set(records: Vec<Record>) -> std::collections::BTreeSet<RecordKey> {
    records.into_iter().map(|r| (name::to_lowercase(&r.owner), r.rtype, r.ttl, r.rdata)).collect()
}

/// Regression: turning signing on (and every re-signing with other keys)
/// was journaled as a replacement, which ends the history an IXFR can
/// follow: every secondary had to fetch the whole zone again at each key
/// event. It is a diff now, and the diff turns the unsigned zone into the
/// signed one exactly.
#[test]
fn signing_turned_on_was_a_replacement_that_secondaries_could_only_follow_by_axfr() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Store::open(dir.path()).unwrap();
    let text = "@ 300 SOA ns hm 1 7200 3600 1209600 300\n@ 300 NS ns\nns 300 A 192.0.2.1\nwww 300 AAAA 2001:db8::1\n";
    s.by(Actor::Task("test")).replace_zone(&apex(), zonefile::parse(text, &apex()).unwrap()).unwrap();
    let (_, before) = s.zone_snapshot(&apex()).unwrap().unwrap();
    let from = s.serial(&apex()).unwrap();
    let commit = s.by(Actor::Task("test")).dnssec_enable(&apex(), &Policy::default()).unwrap();
    let history = s.zone_history_since(&apex(), from).unwrap().expect("a history across the key event");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].serial, commit.serial);
    let crate::JournalKind::Diff(changes) = &history[0].kind else { panic!("not a diff") };
    let zone = sixgate_dns::Zone::build(&apex(), before.records, 7).unwrap();
    let applied = zone.apply(changes).unwrap();
    let (_, after) = s.zone_snapshot(&apex()).unwrap().unwrap();
    assert!(after.records.iter().any(|r| r.rtype == sixgate_dns::rtype::code::RRSIG));
    assert_eq!(record_set(applied.records()), record_set(after.records));
}
