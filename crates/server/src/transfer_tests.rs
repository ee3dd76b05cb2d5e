//! The transfer service's decisions: the IXFR plan against the served
//! serial, and what each access decision, TSIG state and cap answers,
//! read back from the framed messages it writes.

use arc_swap::ArcSwap;
use sixgate_dns::message::HEADER_LEN;
use sixgate_dns::name::NameBuf;
use sixgate_dns::rtype::code;
use sixgate_dns::tsig::{Algorithm, StreamVerifier};
use sixgate_dns::{Record, Zone, zonefile};

use super::*;

const PEER: &str = "192.0.2.1:5353";

fn apex() -> Box<[u8]> {
    name::from_text("example.test.", None).unwrap()
}

fn rec(text: &str) -> Record {
    zonefile::parse(text, &apex()).unwrap().remove(0)
}

fn soa(serial: u32) -> Record {
    rec(&format!("@ 3600 SOA ns1 hostmaster {serial} 7200 3600 1209600 300"))
}

/// A version step from `old` to `new` adding host `h{new}`.
fn delta(old: u32, new: u32) -> Delta {
    Delta {
        old_soa: soa(old),
        removed: vec![],
        new_soa: soa(new),
        added: vec![rec(&format!("h{new} 300 A 192.0.2.{new}"))],
    }
}

/// The zone as served at `serial`, with the hosts of versions 2 up to it.
fn zone(serial: u32) -> Zone {
    let mut text = format!(
        "@ 3600 SOA ns1 hostmaster {serial} 7200 3600 1209600 300\n@ 3600 NS ns1\nns1 60 A 192.0.2.53\n"
    );
    for h in 2..=serial {
        text.push_str(&format!("h{h} 300 A 192.0.2.{h}\n"));
    }
    Zone::build(&apex(), zonefile::parse(&text, &apex()).unwrap(), 1).unwrap()
}

fn catalog(serial: u32) -> SharedCatalog {
    Arc::new(ArcSwap::from_pointee(Catalog::new().with_zone(Arc::new(zone(serial)))))
}

#[test]
fn an_ixfr_ends_at_the_served_serial_when_the_journal_runs_ahead() {
    let deltas = [delta(1, 2), delta(2, 3), delta(3, 4), delta(4, 5)];
    assert_eq!(plan(1, 3, &deltas), Plan::Incremental { from: 0, to: 2 });
    assert_eq!(plan(2, 3, &deltas), Plan::Incremental { from: 1, to: 2 });
    assert_eq!(plan(1, 5, &deltas), Plan::Incremental { from: 0, to: 4 });
}

#[test]
fn an_ixfr_the_journal_cannot_lead_to_the_served_serial_is_full() {
    // The journal stops short of the served serial (the zone was
    // replaced since), has a gap, or does not know the client's serial.
    assert_eq!(plan(1, 4, &[delta(1, 2), delta(2, 3)]), Plan::Full);
    assert_eq!(plan(1, 4, &[delta(1, 2), delta(3, 4)]), Plan::Full);
    assert_eq!(plan(0, 3, &[delta(1, 2), delta(2, 3)]), Plan::Full);
    assert_eq!(plan(1, 3, &[]), Plan::Full);
    // The served version is held behind a journal that lost its step.
    assert_eq!(plan(1, 2, &[delta(2, 3)]), Plan::Full);
}

#[test]
fn a_client_at_or_past_the_served_serial_is_up_to_date() {
    assert_eq!(plan(3, 3, &[delta(1, 2)]), Plan::UpToDate);
    // Ahead of what is served (the journal's newer version reached it
    // from another primary's copy): nothing to send.
    assert_eq!(plan(4, 3, &[]), Plan::UpToDate);
}

pub(crate) struct Fake {
    pub(crate) access: Access,
    pub(crate) history: Option<Vec<Delta>>,
    /// A key the server knows besides the secondary's.
    pub(crate) known: Option<Key>,
}

impl TransferSource for Fake {
    fn access(&self, _: IpAddr, _: &[u8], _: Option<&[u8]>) -> Access {
        self.access.clone()
    }

    fn history(&self, _: &[u8], _: u32) -> Option<Vec<Delta>> {
        self.history.clone()
    }

    fn query_key(&self, _: &[u8]) -> Option<Key> {
        match &self.access {
            Access::Key(k) => Some(k.clone()),
            _ => self.known.clone(),
        }
    }
}

fn service(access: Access, history: Option<Vec<Delta>>, caps: TransferCaps) -> Transfers {
    Transfers::new(Arc::new(Fake { access, history, known: None }), caps, Arc::new(TransferStats::default()))
}

pub(crate) fn axfr_request(zone: &str) -> Vec<u8> {
    let mut m = vec![0xAB, 0xCD, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&name::from_text(zone, None).unwrap());
    m.extend_from_slice(&[0, 252, 0, 1]);
    m
}

fn ixfr_request(serial: u32) -> Vec<u8> {
    let mut m = vec![0x0F, 0x0F, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0];
    m.extend_from_slice(&apex());
    m.extend_from_slice(&[0, 251, 0, 1, 0xC0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
    m.extend_from_slice(&serial.to_be_bytes());
    m.extend_from_slice(&[0; 16]);
    m
}

fn key() -> Key {
    Key::new(&name::from_text("xfr.key.", None).unwrap(), Algorithm::HmacSha256, b"k".repeat(32))
}

/// The framed messages written.
fn frames(mut w: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let [hi, lo, rest @ ..] = w {
        let len = usize::from(u16::from_be_bytes([*hi, *lo]));
        out.push(rest[..len].to_vec());
        w = &rest[len..];
    }
    out
}

fn rcode_of(msg: &[u8]) -> u16 {
    u16::from(msg[3] & 0xF)
}

/// The answer records of a message: type and, for an SOA, its serial.
pub(crate) fn answers(msg: &[u8]) -> Vec<(u16, Option<u32>)> {
    let count = |at: usize| usize::from(u16::from_be_bytes([msg[at], msg[at + 1]]));
    let mut n = NameBuf::new();
    let mut p = n.decode(msg, HEADER_LEN).unwrap() + 4;
    let mut out = Vec::new();
    for _ in 0..count(6) {
        p = n.decode(msg, p).unwrap();
        let rtype = u16::from_be_bytes([msg[p], msg[p + 1]]);
        let rdlen = usize::from(u16::from_be_bytes([msg[p + 8], msg[p + 9]]));
        // The rdata's names may point into the message.
        let serial = (rtype == code::SOA).then(|| {
            let m = n.decode(msg, p + 10).unwrap();
            let r = n.decode(msg, m).unwrap();
            u32::from_be_bytes(msg[r..r + 4].try_into().unwrap())
        });
        out.push((rtype, serial));
        p += 10 + rdlen;
    }
    out
}

async fn run(t: &Transfers, cat: &SharedCatalog, msg: &[u8]) -> (Next, Vec<Vec<u8>>) {
    let mut w = Vec::new();
    let mut buf = Vec::new();
    let next = t.serve(cat, msg, PEER.parse().unwrap(), 1232, &mut w, &mut buf).await.unwrap();
    (next, frames(&w))
}

#[tokio::test]
async fn an_allowed_axfr_sends_the_served_zone_between_two_soas() {
    let t = service(Access::Unsigned, None, TransferCaps::default());
    let (next, msgs) = run(&t, &catalog(3), &axfr_request("example.test.")).await;
    assert_eq!(next, Next::Continue);
    let all: Vec<_> = msgs.iter().flat_map(|m| answers(m)).collect();
    assert_eq!(all.first(), Some(&(code::SOA, Some(3))));
    assert_eq!(all.last(), Some(&(code::SOA, Some(3))));
    // SOA, NS, ns1 A, h2 A, h3 A, SOA.
    assert_eq!(all.len(), 6);
    assert_eq!(t.stats.requests(XfrKind::Axfr, XfrOutcome::Done), 1);
    assert_eq!(t.stats.records.load(Ordering::Relaxed), 6);
    assert_eq!(t.stats.active.load(Ordering::Relaxed), 0, "the transfer's place is freed");
}

#[tokio::test]
async fn a_refused_source_gets_refused_and_is_counted() {
    let t = service(Access::Refused("not a secondary"), None, TransferCaps::default());
    let (next, msgs) = run(&t, &catalog(3), &axfr_request("example.test.")).await;
    assert_eq!(next, Next::Continue, "the connection may go on");
    assert_eq!(msgs.len(), 1);
    assert_eq!(rcode_of(&msgs[0]), rcode::REFUSED);
    assert!(answers(&msgs[0]).is_empty());
    assert_eq!(t.stats.requests(XfrKind::Axfr, XfrOutcome::Refused), 1);
    let text = t.stats.render();
    assert!(text.contains("sixgate_xfr_requests_total{kind=\"axfr\",outcome=\"refused\"} 1\n"), "{text}");
}

#[tokio::test]
async fn a_zone_not_served_here_is_notauth() {
    let t = service(Access::Unsigned, None, TransferCaps::default());
    let (_, msgs) = run(&t, &catalog(3), &axfr_request("other.test.")).await;
    assert_eq!(rcode_of(&msgs[0]), rcode::NOTAUTH);
    assert_eq!(t.stats.requests(XfrKind::Axfr, XfrOutcome::NotAuth), 1);
}

/// Regression: a refusal of a request signed with a key the server knows
/// went unsigned, and BIND, which had asked for the catalog zone before
/// the primary served it, took that for a broken primary and waited
/// minutes before it asked again ("expected a TSIG").
#[tokio::test]
async fn a_refusal_of_a_request_signed_with_a_known_key_was_unsigned() {
    let key = key();
    for (access, zone, rc) in [
        (Access::Refused("not a secondary of the zone"), "example.test.", rcode::REFUSED),
        (Access::Unsigned, "other.test.", rcode::NOTAUTH),
    ] {
        let source = Fake { access, history: None, known: Some(key.clone()) };
        let t = Transfers::new(Arc::new(source), TransferCaps::default(), Arc::new(TransferStats::default()));
        let mut req = axfr_request(zone);
        let now = unix_now();
        let mac = tsig::sign_request(&mut req, &key, now, 300).unwrap();
        let (_, msgs) = run(&t, &catalog(3), &req).await;
        assert_eq!(rcode_of(&msgs[0]), rc);
        tsig::verify_response(&msgs[0], &key, &mac, now).expect("a signed refusal");
    }
}

#[tokio::test]
async fn an_unsigned_request_for_a_keyed_secondary_is_refused() {
    let t = service(Access::Key(key()), None, TransferCaps::default());
    let (_, msgs) = run(&t, &catalog(3), &axfr_request("example.test.")).await;
    assert_eq!(rcode_of(&msgs[0]), rcode::REFUSED);
}

#[tokio::test]
async fn a_signed_axfr_is_signed_in_every_message() {
    let key = key();
    let t = service(Access::Key(key.clone()), None, TransferCaps::default());
    let mut req = axfr_request("example.test.");
    let now = unix_now();
    let mac = tsig::sign_request(&mut req, &key, now, 300).unwrap();
    let (_, msgs) = run(&t, &catalog(3), &req).await;
    let mut v = StreamVerifier::new(&key, &mac);
    for m in &msgs {
        v.verify(m, now).unwrap();
    }
    v.finish().unwrap();
    assert_eq!(v.signed(), msgs.len());
}

#[tokio::test]
async fn a_request_signed_with_a_wrong_secret_is_notauth_badsig() {
    let t = service(Access::Key(key()), None, TransferCaps::default());
    let forged = Key::new(&key().name, Algorithm::HmacSha256, b"x".repeat(32));
    let mut req = axfr_request("example.test.");
    tsig::sign_request(&mut req, &forged, unix_now(), 300).unwrap();
    let (_, msgs) = run(&t, &catalog(3), &req).await;
    assert_eq!(rcode_of(&msgs[0]), rcode::NOTAUTH);
    let tsig = tsig::find(&msgs[0]).unwrap().expect("a tsig record with the error");
    assert_eq!(tsig.error, rcode::BADSIG);
    assert!(tsig.mac.is_empty(), "BADSIG answers are unsigned (RFC 8945 §5.3.2)");
    assert_eq!(t.stats.requests(XfrKind::Axfr, XfrOutcome::NotAuth), 1);
}

#[tokio::test]
async fn a_request_signed_with_a_key_no_secondary_has_is_badkey() {
    let t = service(Access::UnknownKey, None, TransferCaps::default());
    let mut req = axfr_request("example.test.");
    tsig::sign_request(&mut req, &key(), unix_now(), 300).unwrap();
    let (_, msgs) = run(&t, &catalog(3), &req).await;
    assert_eq!(rcode_of(&msgs[0]), rcode::NOTAUTH);
    assert_eq!(tsig::find(&msgs[0]).unwrap().unwrap().error, rcode::BADKEY);
}

#[tokio::test]
async fn a_transfer_over_the_cap_is_refused() {
    let t = service(Access::Unsigned, None, TransferCaps { total: 4, per_address: 1 });
    // One transfer from this address is running.
    let running = t.start("192.0.2.1".parse().unwrap()).unwrap();
    let (_, msgs) = run(&t, &catalog(3), &axfr_request("example.test.")).await;
    assert_eq!(rcode_of(&msgs[0]), rcode::REFUSED);
    // Another address still has room.
    assert!(t.start("192.0.2.2".parse().unwrap()).is_some());
    drop(running);
    let (_, msgs) = run(&t, &catalog(3), &axfr_request("example.test.")).await;
    assert_eq!(rcode_of(&msgs[0]), rcode::NOERROR);
    assert_eq!(t.stats.requests(XfrKind::Axfr, XfrOutcome::Refused), 1);
}

#[tokio::test]
async fn an_ixfr_sends_the_versions_up_to_the_served_serial() {
    // The journal is at 5; the publisher serves 3.
    let history = vec![delta(1, 2), delta(2, 3), delta(3, 4), delta(4, 5)];
    let t = service(Access::Unsigned, Some(history), TransferCaps::default());
    let (_, msgs) = run(&t, &catalog(3), &ixfr_request(1)).await;
    let all: Vec<_> = msgs.iter().flat_map(|m| answers(m)).collect();
    let a = (code::A, None);
    let soa = |s| (code::SOA, Some(s));
    // RFC 1995 §4: current SOA, then per version old SOA, deletions, new
    // SOA, additions; the current SOA again.
    assert_eq!(all, [soa(3), soa(1), soa(2), a, soa(2), soa(3), a, soa(3)]);
    assert_eq!(t.stats.requests(XfrKind::Ixfr, XfrOutcome::Done), 1);
}

#[tokio::test]
async fn an_ixfr_the_journal_cannot_answer_is_the_whole_zone() {
    let t = service(Access::Unsigned, None, TransferCaps::default());
    let (_, msgs) = run(&t, &catalog(3), &ixfr_request(1)).await;
    let all: Vec<_> = msgs.iter().flat_map(|m| answers(m)).collect();
    assert_eq!(all.len(), 6, "AXFR-style: {all:?}");
    assert_eq!(all[1], (code::NS, None));
    assert_eq!(t.stats.requests(XfrKind::IxfrFull, XfrOutcome::Done), 1);
}

#[tokio::test]
async fn an_ixfr_from_the_served_serial_is_one_soa() {
    let t = service(Access::Unsigned, Some(vec![delta(1, 2)]), TransferCaps::default());
    let (_, msgs) = run(&t, &catalog(3), &ixfr_request(3)).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!(answers(&msgs[0]), [(code::SOA, Some(3))]);
    assert_eq!(t.stats.requests(XfrKind::UpToDate, XfrOutcome::Done), 1);
}

#[tokio::test]
async fn a_malformed_transfer_request_is_formerr() {
    let t = service(Access::Unsigned, None, TransferCaps::default());
    let mut req = axfr_request("example.test.");
    req[7] = 1; // an answer record announced
    req.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4, 192, 0, 2, 1]);
    let (next, msgs) = run(&t, &catalog(3), &req).await;
    assert_eq!(next, Next::Continue);
    assert_eq!(rcode_of(&msgs[0]), rcode::FORMERR);
}

#[test]
fn an_ixfr_over_udp_is_the_current_soa_for_a_secondary_and_refused_to_others() {
    let t = service(Access::Unsigned, Some(vec![delta(1, 2), delta(2, 3)]), TransferCaps::default());
    let cat = catalog(3);
    let mut out = Vec::new();
    let peer = PEER.parse().unwrap();
    // Behind the served serial: the SOA alone tells it to come over TCP.
    assert!(t.answer_udp(&cat.load(), &ixfr_request(1), peer, 1232, &mut out));
    assert_eq!(rcode_of(&out), rcode::NOERROR);
    assert_eq!(answers(&out), [(code::SOA, Some(3))]);
    assert_eq!(t.stats.requests(XfrKind::UpToDate, XfrOutcome::Done), 1);
    // AXFR over UDP is the query path's (NOTIMP, RFC 5936 §4.2).
    assert!(!t.answer_udp(&cat.load(), &axfr_request("example.test."), peer, 1232, &mut out));
    let refused = service(Access::Refused("not a secondary of the zone"), None, TransferCaps::default());
    assert!(refused.answer_udp(&cat.load(), &ixfr_request(1), peer, 1232, &mut out));
    assert_eq!(rcode_of(&out), rcode::REFUSED);
    assert_eq!(refused.stats.requests(XfrKind::Ixfr, XfrOutcome::Refused), 1);
}
