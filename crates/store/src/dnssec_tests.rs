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
