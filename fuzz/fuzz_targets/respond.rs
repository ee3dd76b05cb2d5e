//! The whole query path: arbitrary bytes in as a received message,
//! `sixgate_dns::respond` against a small catalog, and the response checked
//! with an independent parser (NLnet Labs `domain`).
//!
//! Invariants, for UDP with the default limits, for TCP, for UDP with an
//! operator limit taken from the message ID (so the fuzzer varies it without
//! leaving the DNS message format), and for UDP with cookies on and the
//! longest NSID (whose options must fit the same limits):
//! - `respond` never panics;
//! - a message with QR set, or shorter than a header, is never answered;
//!   everything else is (exactly when `decode_query` does not say `Drop`);
//! - a reply is at most 65535 octets, and over UDP at most 512 octets
//!   without EDNS, else `clamp(payload, 512, max(limits.udp_payload, 512))`
//!   (what `answer.rs` computes; 1232 with the default limits);
//! - a reply parses as a DNS message, record data included, with no
//!   trailing octets: QR set, the query's ID, opcode, RD and CD, the query's
//!   question echoed byte for byte, one OPT (last) exactly when the query
//!   had one;
//! - over TCP, TC is never set (no RRset in the fuzz zones comes near 64 KB);
//! - a UDP reply without TC has the TCP reply's rcode, AA bit and answer
//!   count: only optional additional data may be left out silently (AXFR
//!   aside, which is NOTIMP over UDP by design);
//! - DNSSEC records (RRSIG, NSEC, NSEC3) appear in the authority section
//!   only when the query has the DO bit set (RFC 4035 §3.1, RFC 3225 §3);
//! - with DO set, every RRSIG in the answer and authority sections (the
//!   answer to an RRSIG query aside) comes with an RRset of the type it
//!   covers, same owner, same section, same TTL (RFC 4035 §3.1.1), and in
//!   the additional section with such an RRset.
#![no_main]

use std::sync::{Arc, OnceLock};

use domain::base::iana::Rtype;
use domain::base::{Message, ParsedName};
use domain::rdata::AllRecordData;
use libfuzzer_sys::fuzz_target;
use sixgate_dns::message::{Edns, QueryError, decode_query};
use sixgate_dns::cookie::{Secret, Secrets};
use sixgate_dns::ident::{MAX_NSID, Nsid};
use sixgate_dns::{Catalog, Client, Limits, Outcome, Transport, Zone, name, respond_to, zonefile};

/// The client every input comes from.
const CLIENT: Client = Client { ip: std::net::IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 53)), now: 1_700_000_000 };

/// Cookies on and the longest NSID: the options must fit the same limits.
fn identified() -> Limits {
    let nsid = Nsid::new(&[b'n'; MAX_NSID]).ok();
    let cookies = Some(Secrets::new(Secret::new([7; 16])));
    Limits { nsid, cookies, ..Limits::default() }
}

/// The zones served: wildcards, CNAME chains and loops, delegations with
/// and without glue, empty non-terminals, big TXT RRsets, a 255-octet name,
/// and a child zone served beside its parent; and two signed zones (the
/// DNSSEC comparison zone of testdata/dnssec with NSEC, and the same
/// content as nsec3.test. with NSEC3), for queries with DO set.
const ZONES: &[(&str, &str)] = &[
    ("example.test.", include_str!("zones/example.test.zone")),
    ("child.example.test.", include_str!("zones/child.example.test.zone")),
    ("dnssec.test.", include_str!("../../testdata/dnssec/dnssec.test.nsec.signed")),
    ("nsec3.test.", include_str!("zones/nsec3.test.signed")),
];

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let mut catalog = Catalog::new();
        for (apex, text) in ZONES {
            let apex = name::from_text(apex, None).expect("fuzz zone apex is a name");
            let records = zonefile::parse(text, &apex).expect("fuzz zone parses");
            let zone = Zone::build(&apex, records, 0).expect("fuzz zone builds");
            catalog = catalog.with_zone(Arc::new(zone));
        }
        catalog
    })
}

const QR: u8 = 0x80;
const TC: u8 = 0x02;
const AA: u8 = 0x04;

/// What a reply to `query` must look like, as far as the query tells.
struct Expect<'a> {
    query: &'a [u8],
    /// End of the question the reply echoes, if the query had a readable one.
    question_end: Option<usize>,
    edns: Option<Edns>,
}

/// Checks one reply; returns (rcode, AA, ANCOUNT, TC) for comparisons.
fn check_reply(e: &Expect<'_>, reply: &[u8], transport: Transport, limits: &Limits) -> (u8, bool, u16, bool) {
    assert!(reply.len() >= 12, "reply shorter than a header");
    assert!(reply.len() <= 65535, "reply of {} octets", reply.len());
    if transport == Transport::Udp {
        let cap = match e.edns {
            None => 512,
            Some(edns) => (edns.payload as usize).clamp(512, (limits.udp_payload as usize).max(512)),
        };
        assert!(
            reply.len() <= cap,
            "UDP reply of {} octets over the limit {cap} (edns {:?}, limits {:?})",
            reply.len(),
            e.edns,
            limits
        );
    }
    let q = e.query;
    assert_eq!(reply[..2], q[..2], "ID not echoed");
    assert!(reply[2] & QR != 0, "QR not set in a reply");
    // Opcode (0x78) and RD (0x01) copied from the query; CD (0x10) too.
    assert_eq!(reply[2] & 0x79, q[2] & 0x79, "opcode or RD not copied");
    assert_eq!(reply[3] & 0x10, q[3] & 0x10, "CD not copied");
    let tc = reply[2] & TC != 0;
    let aa = reply[2] & AA != 0;
    if transport == Transport::Tcp {
        assert!(!tc, "TC set over TCP");
    }

    let qdcount = u16::from_be_bytes([reply[4], reply[5]]);
    match e.question_end {
        Some(end) => {
            assert_eq!(qdcount, 1, "question not echoed");
            assert_eq!(reply.get(12..end), q.get(12..end), "question not echoed byte for byte");
        }
        None => assert_eq!(qdcount, 0, "question echoed from a query without a readable one"),
    }

    let msg = Message::from_octets(reply).expect("reply is at least a header");
    let header = msg.header();
    assert!(header.qr());
    let counts = msg.header_counts();
    let mut question = msg.question();
    for qn in question.by_ref() {
        qn.unwrap_or_else(|err| panic!("reply question does not parse: {err}"));
    }
    let mut section =
        question.answer().unwrap_or_else(|err| panic!("reply question section does not parse: {err}"));
    let mut seen = [0u16; 3];
    let mut opts = 0;
    let mut opt_last = false;
    let dnssec_ok = e.edns.is_some_and(|edns| edns.dnssec_ok);
    let qtype = e.question_end.and_then(|end| q.get(end.checked_sub(4)?..end.checked_sub(2)?)).map(|t| u16::from_be_bytes([t[0], t[1]]));
    for (i, count) in seen.iter_mut().enumerate() {
        // (owner, type, TTL, covered type for RRSIGs) of this section.
        let mut rrs = Vec::new();
        for rr in section.by_ref() {
            let rr = rr.unwrap_or_else(|err| panic!("reply section {i} does not parse: {err}"));
            let rec = rr
                .to_any_record::<AllRecordData<_, ParsedName<_>>>()
                .unwrap_or_else(|err| panic!("reply rdata of type {} does not parse: {err}", rr.rtype()));
            let covered = match rec.data() {
                AllRecordData::Rrsig(sig) => Some(sig.type_covered()),
                _ => None,
            };
            rrs.push((rec.owner().to_string().to_ascii_lowercase(), rr.rtype(), rr.ttl(), covered));
            *count += 1;
            opt_last = rr.rtype() == Rtype::OPT;
            if opt_last {
                assert_eq!(i, 2, "OPT outside the additional section");
                opts += 1;
            }
        }
        let dnssec_type = |t: Rtype| matches!(t, Rtype::RRSIG | Rtype::NSEC | Rtype::NSEC3);
        if i == 1 && !dnssec_ok {
            assert!(!rrs.iter().any(|r| dnssec_type(r.1)), "DNSSEC records in the authority section without DO");
        }
        if dnssec_ok && !(i == 0 && qtype == Some(Rtype::RRSIG.to_int())) {
            for (owner, _, ttl, covered) in rrs.iter().filter(|r| r.1 == Rtype::RRSIG) {
                let signed = rrs.iter().any(|r| {
                    Some(r.1) == *covered && r.0 == *owner && (i == 2 || r.2 == *ttl) && r.1 != Rtype::RRSIG
                });
                assert!(signed, "RRSIG over {covered:?} at {owner} in section {i} without its RRset");
            }
        }
        if i < 2 {
            section = section
                .next_section()
                .unwrap_or_else(|err| panic!("reply section {i} does not parse: {err}"))
                .expect("three record sections");
        }
    }
    assert_eq!(section.pos(), reply.len(), "trailing octets after the last record");
    assert_eq!(
        seen,
        [counts.ancount(), counts.nscount(), counts.arcount()],
        "section counts do not match the records"
    );
    match e.edns {
        Some(_) => assert!(opts == 1 && opt_last, "query had EDNS, reply has {opts} OPT (last: {opt_last})"),
        None => assert_eq!(opts, 0, "OPT in a reply to a query without EDNS"),
    }
    (reply[3] & 0x0F, aa, counts.ancount(), tc)
}

fuzz_target!(|data: &[u8]| {
    let catalog = catalog();
    let decoded = decode_query(data);
    let never_answer = data.len() < 12 || data.get(2).is_some_and(|b| b & QR != 0);
    if never_answer {
        assert!(
            matches!(decoded, Err(QueryError::Drop)),
            "decode_query accepted a response or a short message"
        );
    }
    let expect = match &decoded {
        Ok(q) => Some(Expect { query: data, question_end: Some(q.question_end), edns: q.edns }),
        Err(QueryError::Reject { question_end, edns, .. }) => {
            Some(Expect { query: data, question_end: *question_end, edns: *edns })
        }
        Err(_) => None,
    };

    let id = u16::from_be_bytes([data.first().copied().unwrap_or(0), data.get(1).copied().unwrap_or(0)]);
    let runs = [
        (Transport::Tcp, Limits::default()),
        (Transport::Udp, Limits::default()),
        (Transport::Udp, Limits { udp_payload: id, ..Limits::default() }),
        (Transport::Udp, identified()),
    ];
    let mut buf = Vec::new();
    let mut tcp = None;
    // AXFR is refused differently per transport on purpose (answer.rs).
    let axfr = decoded.as_ref().is_ok_and(|q| q.qtype == 252);
    for (transport, limits) in runs {
        let outcome = respond_to(catalog, data, &mut buf, transport, &limits, Some(&CLIENT)).outcome;
        let Some(e) = &expect else {
            assert_eq!(outcome, Outcome::Drop, "answered a message that must be dropped");
            continue;
        };
        assert_eq!(outcome, Outcome::Reply, "dropped a message decode_query did not drop");
        let got = check_reply(e, &buf, transport, &limits);
        match tcp {
            None => tcp = Some(got),
            Some((rcode, aa, ancount, _)) => {
                let (u_rcode, u_aa, u_ancount, u_tc) = got;
                if !u_tc && !axfr {
                    assert_eq!(
                        (u_rcode, u_aa, u_ancount),
                        (rcode, aa, ancount),
                        "UDP reply without TC differs from the TCP reply ({limits:?})"
                    );
                }
            }
        }
    }
});
