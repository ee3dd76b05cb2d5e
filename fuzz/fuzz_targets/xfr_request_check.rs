//! The checks of the `xfr_request` target, on one input. A module of its
//! own so that `crates/dns/tests/fuzz_targets.rs` runs the same checks
//! over the seeds and mutations of them without cargo-fuzz.
//!
//! `sixgate_dns::xfr::decode_request` on any bytes, and for the requests
//! it accepts for example.test., the transfer they ask for, from the
//! `respond` zone and three deltas leading to its serial:
//!
//! - `is_transfer` routes every accepted request, and what it does not
//!   route fails only as a query or as another query type;
//! - an accepted request agrees with `domain`'s reading of the same bytes
//!   (ID, zone, type, class, the IXFR serial), its head is the header and
//!   question as sent, and re-encoded from its fields (names plain) it
//!   decodes to the same request;
//! - a refused one has an rcode, or none only for what is never answered
//!   (a response, a message shorter than a header) or for another query
//!   type, and `reject_into` writes a reply that `domain` reads, with QR
//!   set, the ID and that rcode;
//! - the transfer's messages, at a size bound taken from the input, are
//!   at most that bound (or hold one record alone), read with `domain`,
//!   and hold exactly the zone's records between two SOAs (AXFR), or the
//!   RFC 1995 §4 layout of the deltas the plan picks, or the current SOA
//!   alone;
//! - a request signed with the test key that verifies gets a stream that
//!   `StreamVerifier` accepts message by message.

use std::sync::OnceLock;

use domain::base::iana::Rtype;
use domain::base::rdata::ComposeRecordData;
use domain::base::{Message, ParsedName, ToName};
use domain::rdata::AllRecordData;
use sixgate_dns::message::{HEADER_LEN, QueryError, rcode};
use sixgate_dns::rtype::code;
use sixgate_dns::tsig::{self, Algorithm, Key, StreamSigner, StreamVerifier};
use sixgate_dns::xfr::{
    self, Delta, IxfrPlan, Kind, Options, Request, RequestError, Transfer, decode_request, is_transfer,
};
use sixgate_dns::zone::{Change, Record, sort_canonical};
use sixgate_dns::{Zone, name, zonefile};

/// The keys seeds are signed with: the `tsig` target's (fuzz/seeds/gen.py)
/// and kdig's in testdata/xfr/capture.py.
fn keys() -> [Key; 2] {
    [
        Key::new(b"\x08test-key\x00", Algorithm::HmacSha256, b"sixgate fuzz key".to_vec()),
        Key::new(
            b"\x0cxfr-test-key\x00",
            Algorithm::HmacSha256,
            b"sixgate xfr test key, hmac-sha256!".to_vec(),
        ),
    ]
}

fn apex() -> Box<[u8]> {
    name::from_text("example.test.", None).expect("apex")
}

/// The `respond` zone, and three deltas that lead to its serial.
fn fixture() -> &'static (Zone, Vec<Delta>) {
    static FIXTURE: OnceLock<(Zone, Vec<Delta>)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let records = zonefile::parse(include_str!("zones/example.test.zone"), &apex()).expect("zone parses");
        let zone = Zone::build(&apex(), records, 0).expect("zone builds");
        let serial = zone.serial().expect("an soa");
        let soa = |s: u32| format!("@ 3600 SOA ns1 hostmaster {s} 7200 3600 1209600 300\n");
        let parse = |t: &str| zonefile::parse(t, &apex()).expect("records parse");
        let steps = [
            ("old1 60 A 192.0.2.1\n", "www 3600 A 192.0.2.99\n"),
            ("", "new2 60 TXT \"two\"\nnew2 60 AAAA 2001:db8::2\n"),
            ("old1 60 TXT gone\nnew2 60 TXT \"two\"\n", ""),
        ];
        let deltas = steps
            .iter()
            .enumerate()
            .map(|(i, (removed, added))| {
                let old = serial.wrapping_sub(3 - i as u32);
                let mut changes: Vec<Change> = parse(removed).into_iter().map(Change::Remove).collect();
                changes.extend(parse(added).into_iter().map(Change::Add));
                changes.extend(parse(&soa(old)).into_iter().map(Change::Remove));
                changes.extend(parse(&soa(old.wrapping_add(1))).into_iter().map(Change::Add));
                Delta::from_changes(changes).expect("a delta")
            })
            .collect();
        (zone, deltas)
    })
}

/// One message read by `domain`: the flags, the records of the answer
/// section with names decompressed, and the rcode with its OPT part.
fn read(msg: &[u8]) -> (u16, Vec<Record>, u16) {
    let m = Message::from_octets(msg).expect("domain reads our message");
    let mut records = Vec::new();
    for rr in m.answer().expect("an answer section") {
        let rr = rr.expect("a record").to_any_record::<AllRecordData<_, ParsedName<_>>>().expect("rdata");
        let mut rdata = Vec::new();
        rr.data().compose_rdata(&mut rdata).expect("rdata composes");
        records.push(Record {
            owner: rr.owner().to_vec().as_octets().as_slice().into(),
            rtype: rr.rtype().to_int(),
            ttl: rr.ttl().as_secs(),
            rdata: rdata.into(),
        });
    }
    let ext = m.opt().map_or(0, |o| o.rcode(m.header()).to_int() & 0xFF0);
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    (flags, records, (flags & 0xF) | ext)
}

/// The request as its fields say, names written plainly.
fn encode(r: &Request<'_>) -> Vec<u8> {
    let q = &r.query;
    let mut m = q.id.to_be_bytes().to_vec();
    m.extend_from_slice(&q.flags.to_be_bytes());
    let ns = u16::from(matches!(r.kind, Kind::Ixfr { .. }));
    for count in [1, 0, ns, u16::from(q.edns.is_some())] {
        m.extend_from_slice(&count.to_be_bytes());
    }
    m.extend_from_slice(r.zone());
    m.extend_from_slice(&q.qtype.to_be_bytes());
    m.extend_from_slice(&q.qclass.to_be_bytes());
    if let Kind::Ixfr { serial } = r.kind {
        m.extend_from_slice(r.zone());
        m.extend_from_slice(&[0, 6, 0, 1, 0, 0, 0, 0, 0, 22, 0, 0]);
        m.extend_from_slice(&serial.to_be_bytes());
        m.extend_from_slice(&[0; 16]);
    }
    if let Some(e) = q.edns {
        m.push(0);
        m.extend_from_slice(&code::OPT.to_be_bytes());
        m.extend_from_slice(&e.payload.to_be_bytes());
        m.extend_from_slice(&[0, e.version, if e.dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    m
}

fn check_accepted(data: &[u8], r: &Request<'_>) {
    assert!(is_transfer(data), "an accepted request is routed to transfers");
    assert!(matches!(r.query.qtype, code::AXFR | code::IXFR));
    assert_eq!(r.query.qclass, 1);
    assert!(name::validate(r.zone()).is_ok() && !r.zone().iter().any(u8::is_ascii_uppercase));
    assert_eq!(r.message(), data);
    assert_eq!(r.head(), &data[..r.query.question_end]);
    assert!(r.qname().eq_ignore_ascii_case(r.zone()));
    // domain reads the same request.
    let m = Message::from_octets(data).expect("domain reads an accepted request");
    assert_eq!(m.header().id(), r.query.id);
    let q = m.first_question().expect("a question");
    let qname = q.qname().to_vec();
    assert_eq!(&name::to_lowercase(qname.as_octets())[..], r.zone());
    assert_eq!(q.qtype().to_int(), r.query.qtype);
    if let Kind::Ixfr { serial } = r.kind {
        let auth = m.authority().expect("an authority section");
        let soa = auth.limit_to::<domain::rdata::Soa<_>>().next().expect("an soa").expect("it parses");
        assert_eq!(soa.data().serial().into_int(), serial, "the client's serial");
        assert_eq!(soa.rtype(), Rtype::SOA);
    }
    // Decode, encode, decode.
    let again = encode(r);
    let r2 = decode_request(&again).expect("the re-encoded request decodes");
    assert_eq!(
        (r2.kind, r2.zone(), r2.query.id, r2.query.edns),
        (r.kind, r.zone(), r.query.id, r.query.edns)
    );
}

fn check_refused(data: &[u8], e: RequestError) {
    if !is_transfer(data) {
        assert!(matches!(e, RequestError::Query(_) | RequestError::NotTransfer(_)), "{e:?} for a query");
    }
    let Some(rc) = e.rcode() else {
        match e {
            RequestError::Query(QueryError::Drop) => {
                assert!(data.len() < HEADER_LEN || data[2] & 0x80 != 0, "dropped a request")
            }
            RequestError::NotTransfer(t) => assert!(!matches!(t, code::AXFR | code::IXFR)),
            other => panic!("{other:?} has no rcode"),
        }
        return;
    };
    assert_ne!(rc, rcode::NOERROR);
    let mut buf = Vec::new();
    assert!(xfr::reject_into(data, rc, 1232, &mut buf), "a refusal is answered");
    let (flags, records, got) = read(&buf);
    assert!(records.is_empty());
    assert_eq!(&buf[..2], &data[..2]);
    assert!(flags & 0x8000 != 0, "QR set");
    if buf.get(11) == Some(&1) || rc < 16 {
        assert_eq!(got, rc, "the rcode");
    }
}

/// Runs a transfer to its end; every message is read and bounded.
fn run(mut t: Transfer<'_>, max: usize, signer: Option<(&Key, &[u8])>) -> Vec<Record> {
    let mut verifier = signer.map(|(key, mac)| StreamVerifier::new(key, mac));
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while t.next_message(&mut buf, 1_700_000_000).expect("the transfer goes on") {
        let (flags, records, rc) = read(&buf);
        assert_eq!((flags & 0x8400, rc), (0x8400, 0), "QR and AA, NOERROR");
        assert!(buf.len() <= max || records.len() == 1, "{} octets over {max}", buf.len());
        if let Some(v) = verifier.as_mut() {
            v.verify(&buf, 1_700_000_000).expect("each message verifies");
        }
        out.extend(records);
    }
    if let Some(v) = verifier {
        v.finish().expect("the stream ends signed");
    }
    out
}

fn sorted(mut v: Vec<Record>) -> Vec<Record> {
    sort_canonical(&mut v);
    v
}

/// Fails, naming the first record that differs, unless `got` is `want`.
fn same(got: &[Record], want: &[Record], what: &str) {
    let text =
        |r: Option<&Record>| r.map(|r| format!("{} {} {:?}", name::to_text(&r.owner), r.rtype, r.rdata));
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!("{what}: record {i} is {:?}, not {:?}", text(got.get(i)), text(want.get(i)));
    }
}

fn check_transfer(data: &[u8], r: &Request<'_>) {
    let (zone, deltas) = fixture();
    if r.zone() != zone.apex() {
        return;
    }
    // The bound from the input's length: 512 to about 16 KiB.
    let max = 512 + (data.len() * 97) % 16_000;
    let options = Options { max_message: max, ..Options::default() };
    let keys = keys();
    let verified = r.tsig.as_ref().and_then(|t| {
        let lookup = |n: &[u8]| keys.iter().find(|k| k.name[..] == *n);
        tsig::verify_request(data, t, lookup, t.time_signed).ok()
    });
    let sign = |t: Transfer<'static>| match &verified {
        Some(v) => t.signed(StreamSigner::for_request(v)),
        None => t,
    };
    let signer = verified.as_ref().map(|v| (v.key, &v.mac[..]));
    let current = zone.serial().expect("an soa");
    let soa = zone.records().into_iter().find(|rec| rec.rtype == code::SOA).expect("an soa");
    let axfr = || {
        let got = run(sign(Transfer::axfr(zone, r, &options).expect("axfr")), max, signer);
        assert_eq!(got.first(), Some(&soa));
        assert_eq!(got.last(), Some(&soa));
        same(&sorted(got[1..].to_vec()), &sorted(zone.records()), "the zone's records");
    };
    match r.kind {
        Kind::Axfr => axfr(),
        Kind::Ixfr { serial } => match xfr::plan_ixfr(serial, current, deltas) {
            IxfrPlan::UpToDate => {
                assert!(xfr::is_up_to_date(serial, current));
                let got = run(sign(Transfer::soa_only(zone, r, &options).expect("soa")), max, signer);
                same(&got, &[soa], "the current SOA alone");
            }
            IxfrPlan::Incremental { from } => {
                let sent = &deltas[from..];
                assert_eq!(sent[0].old_serial(), serial);
                let got = run(sign(Transfer::ixfr(sent, r, &options).expect("ixfr")), max, signer);
                let mut want = vec![soa.clone()];
                for d in sent {
                    want.push(d.old_soa.clone());
                    want.extend(d.removed.iter().cloned());
                    want.push(d.new_soa.clone());
                    want.extend(d.added.iter().cloned());
                }
                want.push(soa.clone());
                same(&got, &want, "the RFC 1995 §4 layout");
            }
            IxfrPlan::Full => {
                assert!(!deltas.iter().any(|d| d.old_serial() == serial), "a reachable serial");
                axfr();
            }
        },
    }
}

pub(crate) fn check(data: &[u8]) {
    match decode_request(data) {
        Ok(r) => {
            check_accepted(data, &r);
            check_transfer(data, &r);
        }
        Err(e) => check_refused(data, e),
    }
}
