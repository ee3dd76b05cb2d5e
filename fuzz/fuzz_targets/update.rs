//! `sixgate_dns::update` on arbitrary bytes: decode, then the RFC 2136
//! semantics against the fixed `respond` zone (example.test.).
//!
//! Decode, encode, decode: a decoded UPDATE is re-encoded by [`encode`]
//! below (names uncompressed) and must decode to the same value. Besides
//! never panicking:
//! - a message shorter than a header or with QR set is never answered;
//! - prescan failing makes `changes` fail the same way;
//! - changes never touch the SOA, only remove records that exist and only
//!   add records that are new (or have a new TTL), and leave the apex
//!   with at least one NS;
//! - the changes apply to the zone;
//! - a refusing policy refuses every message that would change anything;
//! - the response echoes the ID and has QR and opcode UPDATE;
//! - the listener's screen agrees with decoding and with TSIG: it queues
//!   only messages whose zone section decodes and whose last record is a
//!   TSIG record, drops only what decoding calls no request, and answers
//!   without a signature only what has none or a broken one.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sixgate_dns::message::HEADER_LEN;
use sixgate_dns::rtype::code;
use sixgate_dns::tsig;
use sixgate_dns::update::{self, Rcode, Screen, Update, UpdateError, UpdateRr, ZoneView};
use sixgate_dns::zone::{Change, Record};
use sixgate_dns::{Zone, name, zonefile};

fn zone() -> &'static Zone {
    static ZONE: OnceLock<Zone> = OnceLock::new();
    ZONE.get_or_init(|| {
        let apex = name::from_text("example.test.", None).expect("apex");
        let records = zonefile::parse(include_str!("zones/example.test.zone"), &apex).expect("zone parses");
        Zone::build(&apex, records, 0).expect("zone builds")
    })
}

/// A view of nothing at all, for zones other than example.test.
struct Empty;

impl ZoneView for Empty {
    fn rrset(&self, _: &[u8], _: u16) -> Vec<Record> {
        Vec::new()
    }
    fn owner_records(&self, _: &[u8]) -> Vec<Record> {
        Vec::new()
    }
}

fn encode_rr(out: &mut Vec<u8>, rr: &UpdateRr) {
    out.extend_from_slice(&rr.owner);
    out.extend_from_slice(&rr.rtype.to_be_bytes());
    out.extend_from_slice(&rr.class.to_be_bytes());
    out.extend_from_slice(&rr.ttl.to_be_bytes());
    out.extend_from_slice(&(rr.rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rr.rdata);
}

/// An UPDATE message carrying exactly what `u` says, uncompressed.
fn encode(u: &Update) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&u.id.to_be_bytes());
    m.extend_from_slice(&u.flags.to_be_bytes());
    for count in [1, u.prerequisites.len(), u.updates.len(), usize::from(u.edns.is_some())] {
        m.extend_from_slice(&(count as u16).to_be_bytes());
    }
    m.extend_from_slice(&u.zone);
    m.extend_from_slice(&code::SOA.to_be_bytes());
    m.extend_from_slice(&u.zone_class.to_be_bytes());
    for rr in u.prerequisites.iter().chain(&u.updates) {
        encode_rr(&mut m, rr);
    }
    if let Some(e) = u.edns {
        m.push(0);
        m.extend_from_slice(&code::OPT.to_be_bytes());
        m.extend_from_slice(&e.payload.to_be_bytes());
        m.extend_from_slice(&[0, e.version, if e.dnssec_ok { 0x80 } else { 0 }, 0, 0, 0]);
    }
    m
}

fn check_changes(apex: &[u8], u: &Update, view: &dyn ZoneView, zone: Option<&Zone>) {
    let _ = update::check_prerequisites(apex, u, view);
    let scan = update::prescan(apex, u);
    let result = update::changes(apex, u, view, &|_, _| true);
    if let Err(rcode) = scan {
        assert_eq!(result, Err(rcode), "changes disagrees with prescan");
        return;
    }
    let changes = match result {
        Ok(c) => c,
        Err(rcode) => panic!("prescan passed but changes failed with {rcode:?}"),
    };
    let refused = update::changes(apex, u, view, &|_, _| false);
    if !changes.is_empty() || u.updates.iter().any(|rr| rr.rtype != code::ANY) {
        assert_eq!(refused, Err(Rcode::Refused), "a refusing policy let a change through");
    }
    let apex_l = name::to_lowercase(apex);
    for c in &changes {
        let (Change::Add(r) | Change::Remove(r)) = c;
        assert_ne!(r.rtype, code::SOA, "an update touched the SOA: {c:?}");
        let owner = name::to_lowercase(&r.owner);
        assert!(name::is_at_or_below(&owner, &apex_l), "change outside the zone");
        let existing = view.rrset(&owner, r.rtype);
        match c {
            Change::Remove(r) => assert!(existing.contains(r), "removes a record that is not there: {r:?}"),
            Change::Add(r) => assert!(!existing.contains(r), "adds a record that is already there: {r:?}"),
        }
    }
    if let Some(z) = zone {
        match z.apply(&changes) {
            Ok(z2) => {
                let had_ns = z.apex_node().and_then(|n| n.rrset(code::NS)).is_some();
                let has_ns = z2.apex_node().and_then(|n| n.rrset(code::NS)).is_some();
                assert!(!had_ns || has_ns, "the last apex NS was deleted");
                assert_eq!(z.serial(), z2.serial(), "the SOA changed");
            }
            // An RRset grown past 64 KB is the one refusal apply may make.
            Err(e) => assert!(e.to_string().contains("larger than 65535"), "changes do not apply: {e}"),
        }
    }
}

/// The screen against what decoding and TSIG say of the same bytes.
fn check_screen(data: &[u8], decoded: &Result<Update, UpdateError>) {
    let zone_error = matches!(
        decoded,
        Err(UpdateError::ZoneCount(_) | UpdateError::ZoneType(_) | UpdateError::ZoneClass(_))
    );
    match update::screen(data) {
        Screen::NotUpdate => assert!(!update::is_update(data)),
        Screen::Drop => assert_eq!(decoded, &Err(UpdateError::NotRequest)),
        Screen::Queue => {
            assert!(matches!(tsig::find(data), Ok(Some(_))), "queued without a TSIG record");
            assert!(!zone_error && decoded != &Err(UpdateError::NotRequest), "queued: {decoded:?}");
        }
        Screen::Answer(Rcode::Refused) => {
            assert!(matches!(tsig::find(data), Ok(None)));
            assert!(!zone_error);
        }
        Screen::Answer(Rcode::FormErr) => {
            assert!(zone_error || tsig::find(data).is_err() || decoded.is_err(), "FORMERR for {decoded:?}");
        }
        other => panic!("the screen answered {other:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let decoded = update::decode(data);
    check_screen(data, &decoded);
    let is_response = data.get(2).is_some_and(|b| b & 0x80 != 0);
    if data.len() < HEADER_LEN || is_response {
        assert_eq!(decoded, Err(UpdateError::NotRequest));
    }
    let rcode = match &decoded {
        Ok(_) => Rcode::NoError,
        Err(e) => match e.rcode() {
            Some(r) => r,
            None => return,
        },
    };
    let resp = update::response(data, rcode.code());
    assert!(resp.len() >= HEADER_LEN);
    assert_eq!(&resp[..2], &data[..2]);
    assert_eq!(resp[2], 0xA8);
    assert_eq!(resp[3], rcode.code());

    let Ok(u) = decoded else { return };
    assert!(name::validate(&u.zone).is_ok());
    for rr in u.prerequisites.iter().chain(&u.updates) {
        assert!(name::validate(&rr.owner).is_ok(), "owner is not a plain wire name");
        assert!(rr.rdata.len() <= 65535);
    }
    let again = encode(&u);
    match update::decode(&again) {
        Ok(u2) => assert_eq!(u, u2, "re-encoded update decodes differently"),
        Err(e) => panic!("re-encoded update is refused: {e}"),
    }

    let zone = zone();
    if name::to_lowercase(&u.zone) == name::to_lowercase(zone.apex()) {
        check_changes(zone.apex(), &u, zone, Some(zone));
    }
    check_changes(&u.zone, &u, &Empty, None);
});
