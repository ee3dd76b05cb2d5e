//! Unit tests of the lookup algorithm: each RFC 1034 §4.3.2 branch and
//! the clarifications, on a small zone, without sockets.

use std::sync::Arc;

use domain::base::{Message, ParsedName};
use domain::rdata::AllRecordData;

use super::*;
use crate::zonefile;

const ZONE: &str = r#"$TTL 3600
@        7200 SOA ns1 hostmaster 1 7200 3600 1209600 300
@        NS   ns1
@        NS   ns.outside.example.
@        MX   10 mail
ns1      A    192.0.2.1
mail     A    192.0.2.25
mail     AAAA 2001:db8::25
www      A    192.0.2.80
alias    CNAME www
c1       CNAME c2
c2       CNAME alias
loop1    CNAME loop2
loop2    CNAME loop1
out      CNAME www.elsewhere.example.
dangling CNAME nothing
a.b.ent  A    192.0.2.9
*.wild   A    192.0.2.99
*.wc     CNAME www
sub      NS   ns1.sub
sub      NS   ns1
sub      DS   12345 13 2 3E2A9A8C2E6F0C6F8A5A9C1B3F0E6D4C2B1A0F9E8D7C6B5A4F3E2D1C0B9A8F7E
ns1.sub  A    192.0.2.53
big      TXT  "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "1123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "2123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "3123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "4123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
big      TXT  "5123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789"
"#;

const CHILD: &str = r#"@ 300 SOA ns1 hm 1 2 3 4 300
@ 300 NS ns1
@ 300 A 192.0.2.7
ns1 300 A 192.0.2.8
"#;

fn wire(s: &str) -> Box<[u8]> {
    name::from_text(s, None).unwrap()
}

fn catalog() -> Catalog {
    let apex = wire("example.com.");
    let recs = zonefile::parse(ZONE, &apex).unwrap();
    let zone = Zone::build(&apex, recs, 1).unwrap();
    let capex = wire("sub.example.com.");
    let crecs = zonefile::parse(CHILD, &capex).unwrap();
    let child = Zone::build(&capex, crecs, 1).unwrap();
    Catalog::new().with_zone(Arc::new(zone)).with_zone(Arc::new(child))
}

fn query(qname: &str, qtype: u16, edns: Option<u16>) -> Vec<u8> {
    let mut m = vec![0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&wire(qname));
    m.extend_from_slice(&qtype.to_be_bytes());
    m.extend_from_slice(&1u16.to_be_bytes());
    if let Some(size) = edns {
        m[11] = 1;
        m.extend_from_slice(&[0, 0, 41]);
        m.extend_from_slice(&size.to_be_bytes());
        m.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    }
    m
}

/// A parsed response: flags, rcode, and (owner, type, ttl) per section;
/// `rdata` holds, in the same order, each record's data as `domain`'s full
/// parser reads it (names decompressed, OPT left out).
#[derive(Debug)]
struct Resp {
    flags: u16,
    rcode: u16,
    sections: [Vec<(String, u16, u32)>; 3],
    rdata: [Vec<String>; 3],
    opt_rdata: Option<Vec<u8>>,
}

fn parse(msg: &[u8]) -> Resp {
    let flags = u16::from_be_bytes([msg[2], msg[3]]);
    let counts: Vec<usize> =
        (0..4).map(|i| u16::from_be_bytes([msg[4 + 2 * i], msg[5 + 2 * i]]) as usize).collect();
    let mut pos = 12;
    let mut n = NameBuf::new();
    for _ in 0..counts[0] {
        pos = n.decode(msg, pos).unwrap() + 4;
    }
    let mut sections: [Vec<(String, u16, u32)>; 3] = Default::default();
    let mut opt_rdata = None;
    let mut ext = 0;
    for (s, count) in counts[1..].iter().enumerate() {
        for _ in 0..*count {
            pos = n.decode(msg, pos).unwrap();
            let t = u16::from_be_bytes([msg[pos], msg[pos + 1]]);
            let ttl = u32::from_be_bytes([msg[pos + 4], msg[pos + 5], msg[pos + 6], msg[pos + 7]]);
            let rdlen = u16::from_be_bytes([msg[pos + 8], msg[pos + 9]]) as usize;
            if t == code::OPT {
                ext = (ttl >> 24) as u16;
                opt_rdata = Some(msg[pos + 10..pos + 10 + rdlen].to_vec());
            } else {
                sections[s].push((name::to_text(n.as_slice()), t, ttl));
            }
            pos += 10 + rdlen;
        }
    }
    assert_eq!(pos, msg.len(), "trailing bytes in response");
    let rdata = full_rdata(msg);
    for (records, data) in sections.iter().zip(&rdata) {
        assert_eq!(records.len(), data.len(), "domain reads other records");
    }
    Resp { flags, rcode: (flags & 0xF) | (ext << 4), sections, rdata, opt_rdata }
}

/// The rdata of every record but the OPT, per section, as `domain`'s full
/// parser reads it. A compression pointer inside rdata (the names of NS,
/// MX, SOA, CNAME...) that points outside the message, forward or into the
/// middle of a label fails the parse; one that points at another name shows
/// as that name, which the tests compare. Lowercased: compression points
/// at the question name in the query's case (names compare without case,
/// RFC 4343).
fn full_rdata(msg: &[u8]) -> [Vec<String>; 3] {
    let m = Message::from_octets(msg).unwrap();
    let mut out: [Vec<String>; 3] = Default::default();
    let mut section = m.answer().unwrap();
    for (i, records) in out.iter_mut().enumerate() {
        for rr in section.by_ref() {
            let rr = rr.unwrap().to_any_record::<AllRecordData<_, ParsedName<_>>>().unwrap();
            if rr.rtype().to_int() != code::OPT {
                records.push(rr.data().to_string().to_ascii_lowercase());
            }
        }
        if i < 2 {
            section = section.next_section().unwrap().unwrap();
        }
    }
    out
}

fn ask(qname: &str, qtype: u16) -> Resp {
    ask_with(qname, qtype, None, Transport::Udp)
}

fn ask_with(qname: &str, qtype: u16, edns: Option<u16>, t: Transport) -> Resp {
    ask_in(&catalog(), qname, qtype, edns, t)
}

fn ask_in(cat: &Catalog, qname: &str, qtype: u16, edns: Option<u16>, t: Transport) -> Resp {
    let mut buf = Vec::new();
    assert_eq!(respond(cat, &query(qname, qtype, edns), &mut buf, t, &Limits::default()), Outcome::Reply);
    assert_eq!(&buf[..2], &[0xAB, 0xCD], "id echoed");
    parse(&buf)
}

/// The test zone with `extra` records, alone in a catalog.
fn catalog_with(extra: &str) -> Catalog {
    let apex = wire("example.com.");
    let zone = Zone::build(&apex, zonefile::parse(&format!("{ZONE}{extra}"), &apex).unwrap(), 1).unwrap();
    Catalog::new().with_zone(Arc::new(zone))
}

fn types(v: &[(String, u16, u32)]) -> Vec<u16> {
    v.iter().map(|r| r.1).collect()
}

#[test]
fn exact_match_is_authoritative_with_additional_addresses() {
    let r = ask("Example.COM.", code::MX);
    assert!(r.flags & flags::AA != 0);
    assert_eq!(r.rcode, rcode::NOERROR);
    assert_eq!(r.sections[0], vec![("Example.COM.".into(), code::MX, 3600)]);
    assert_eq!(r.rdata[0], ["10 mail.example.com."]);
    assert!(r.sections[1].is_empty(), "minimal responses: no NS in authority");
    assert_eq!(types(&r.sections[2]), vec![code::A, code::AAAA]);
    assert!(r.sections[2].iter().all(|a| a.0.eq_ignore_ascii_case("mail.example.com.")), "{r:?}");
}

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let r = ask("nope.example.com.", code::A);
    assert_eq!(r.rcode, rcode::NXDOMAIN);
    // RFC 2308 §5: min(SOA TTL 7200, MINIMUM 300).
    assert_eq!(r.sections[1], vec![("example.com.".into(), code::SOA, 300)]);
    assert_eq!(r.rdata[1], ["ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 300"]);
    let r = ask("www.example.com.", code::AAAA);
    assert_eq!(r.rcode, rcode::NOERROR);
    assert!(r.sections[0].is_empty());
    assert_eq!(types(&r.sections[1]), vec![code::SOA]);
}

#[test]
fn empty_non_terminals_are_nodata_not_nxdomain() {
    for n in ["b.ent.example.com.", "ent.example.com."] {
        let r = ask(n, code::A);
        assert_eq!(r.rcode, rcode::NOERROR, "{n}");
        assert_eq!(types(&r.sections[1]), vec![code::SOA], "{n}");
    }
    // Below an existing leaf there is nothing.
    assert_eq!(ask("x.a.b.ent.example.com.", code::A).rcode, rcode::NXDOMAIN);
}

#[test]
fn wildcards_synthesize_under_the_query_name() {
    let r = ask("a.b.wild.example.com.", code::A);
    assert_eq!(r.sections[0], vec![("a.b.wild.example.com.".into(), code::A, 3600)]);
    // RFC 4592 §2.2.1: the wildcard's parent exists, so no synthesis for it.
    let r = ask("wild.example.com.", code::A);
    assert!(r.sections[0].is_empty());
    assert_eq!(r.rcode, rcode::NOERROR);
    // NODATA at a wildcard match.
    let r = ask("x.wild.example.com.", code::MX);
    assert_eq!(r.rcode, rcode::NOERROR);
    assert_eq!(types(&r.sections[1]), vec![code::SOA]);
    // A wildcard CNAME is followed.
    let r = ask("q.wc.example.com.", code::A);
    assert_eq!(types(&r.sections[0]), vec![code::CNAME, code::A]);
    assert_eq!(r.sections[0][0].0, "q.wc.example.com.");
}

#[test]
fn cname_chains_are_followed_in_zone_and_loops_stop() {
    let r = ask("c1.example.com.", code::A);
    assert_eq!(types(&r.sections[0]), vec![code::CNAME, code::CNAME, code::CNAME, code::A]);
    assert_eq!(r.rdata[0], ["c2.example.com.", "alias.example.com.", "www.example.com.", "192.0.2.80"]);
    let r = ask("loop1.example.com.", code::A);
    assert_eq!(types(&r.sections[0]), vec![code::CNAME, code::CNAME]);
    assert_eq!(r.rcode, rcode::NOERROR);
    let r = ask("out.example.com.", code::A);
    assert_eq!(types(&r.sections[0]), vec![code::CNAME]);
    assert!(r.sections[1].is_empty());
    // RFC 6604: the rcode is that of the last name in the chain.
    let r = ask("dangling.example.com.", code::A);
    assert_eq!(r.rcode, rcode::NXDOMAIN);
    assert_eq!(types(&r.sections[0]), vec![code::CNAME]);
    // A CNAME query gets the CNAME itself.
    assert_eq!(types(&ask("alias.example.com.", code::CNAME).sections[0]), vec![code::CNAME]);
}

/// Regression: the chain stopped after its fifth link (CNAME, or DNAME with
/// its synthesized CNAME) without looking up the fifth link's target, so a
/// chain of exactly five links lost its final RRset. Knot 3.2
/// (`follow_cname`, `CNAME_CHAIN_MAX` 5) refuses only a sixth link: it
/// answers five links and the data at the fifth target; a sixth link is
/// left out, with no SOA after it.
#[test]
fn cname_chain_limit_answers_the_fifth_links_target() {
    let cat = catalog_with(
        "k0 CNAME k1\nk1 CNAME k2\nk2 CNAME k3\nk3 CNAME k4\nk4 CNAME k5\nk5 CNAME www\n\
         dd DNAME example.com.\nx CNAME k3\n",
    );
    let cname = code::CNAME;
    // Five CNAMEs, then the data.
    let r = ask_in(&cat, "k1.example.com.", code::A, None, Transport::Udp);
    assert_eq!(types(&r.sections[0]), vec![cname, cname, cname, cname, cname, code::A], "{r:?}");
    assert_eq!(r.rdata[0].last().map(String::as_str), Some("192.0.2.80"));
    // A sixth CNAME is not put in, and nothing follows the fifth.
    let r = ask_in(&cat, "k0.example.com.", code::A, None, Transport::Udp);
    assert_eq!(types(&r.sections[0]), vec![cname; 5], "{r:?}");
    assert_eq!(r.rcode, rcode::NOERROR);
    assert!(r.sections[1].is_empty(), "no SOA after a chain cut short: {r:?}");
    // A DNAME with its synthesized CNAME is one link: DNAME, then four
    // CNAMEs, then the data.
    let r = ask_in(&cat, "x.dd.example.com.", code::A, None, Transport::Udp);
    assert_eq!(types(&r.sections[0]), vec![code::DNAME, cname, cname, cname, cname, cname, code::A], "{r:?}");
    // Two DNAME links and four CNAMEs: the fourth CNAME is a sixth link.
    let r = ask_in(&cat, "x.dd.dd.example.com.", code::A, None, Transport::Udp);
    assert_eq!(types(&r.sections[0]), vec![code::DNAME, cname, cname, cname, cname, cname], "{r:?}");
    assert!(r.sections[1].is_empty(), "{r:?}");
}

#[test]
fn names_below_a_served_child_are_answered_by_the_child() {
    let r = ask("sub.example.com.", code::A);
    assert!(r.flags & flags::AA != 0);
    assert_eq!(r.sections[0], vec![("sub.example.com.".into(), code::A, 300)]);
}

#[test]
fn delegations_refer_with_glue_and_ds_comes_from_the_parent() {
    // Only the parent is loaded here, so the cut refers.
    let cat = catalog_with("");
    let r = ask_in(&cat, "host.sub.example.com.", code::A, None, Transport::Udp);
    assert_eq!(r.flags & flags::AA, 0, "referrals are not authoritative");
    assert!(r.sections[0].is_empty());
    assert_eq!(types(&r.sections[1]), vec![code::NS, code::NS]);
    let mut targets = r.rdata[1].clone();
    targets.sort();
    assert_eq!(targets, ["ns1.example.com.", "ns1.sub.example.com."]);
    let glue: Vec<&str> = r.sections[2].iter().map(|g| g.0.as_str()).collect();
    assert_eq!(glue, vec!["ns1.sub.example.com.", "ns1.example.com."], "mandatory glue first");
    // DS at the cut is parent-side data, with the child served or not.
    for c in [&cat, &catalog()] {
        let r = ask_in(c, "sub.example.com.", code::DS, None, Transport::Udp);
        assert!(r.flags & flags::AA != 0);
        assert_eq!(types(&r.sections[0]), vec![code::DS]);
    }
}

#[test]
fn truncation_never_splits_an_rrset() {
    let r = ask("big.example.com.", code::TXT);
    assert!(r.flags & flags::TC != 0);
    assert!(r.sections[0].is_empty());
    let r = ask_with("big.example.com.", code::TXT, Some(1232), Transport::Udp);
    assert_eq!(r.flags & flags::TC, 0);
    assert_eq!(r.sections[0].len(), 6);
    let r = ask_with("big.example.com.", code::TXT, None, Transport::Tcp);
    assert_eq!(r.sections[0].len(), 6);
}

#[test]
fn any_gets_one_rrset() {
    let r = ask("example.com.", code::ANY);
    assert_eq!(types(&r.sections[0]), vec![code::NS, code::NS]);
    let mut targets = r.rdata[0].clone();
    targets.sort();
    assert_eq!(targets, ["ns.outside.example.", "ns1.example.com."]);
}

#[test]
fn refused_outside_our_zones_with_ede() {
    let r = ask_with("www.example.org.", code::A, Some(1232), Transport::Udp);
    assert_eq!(r.rcode, rcode::REFUSED);
    assert_eq!(r.flags & flags::AA, 0);
    assert_eq!(r.opt_rdata.unwrap(), vec![0, 15, 0, 2, 0, 20]);
}

#[test]
fn responses_and_bad_versions() {
    let mut q = query("www.example.com.", code::A, None);
    q[2] |= 0x80;
    let mut buf = Vec::new();
    assert_eq!(respond(&catalog(), &q, &mut buf, Transport::Udp, &Limits::default()), Outcome::Drop);
    let mut q = query("www.example.com.", code::A, Some(1232));
    let n = q.len();
    q[n - 5] = 1; // EDNS version 1
    assert_eq!(respond(&catalog(), &q, &mut buf, Transport::Udp, &Limits::default()), Outcome::Reply);
    let r = parse(&buf);
    assert_eq!(r.rcode, rcode::BADVERS);
    assert!(r.sections.iter().all(Vec::is_empty));
}

#[test]
fn dname_redirects_names_below_it() {
    let cat = catalog_with("dn DNAME target.example.com.\nwww.target A 192.0.2.7\nout DNAME x.example.\n");
    let r = ask_in(&cat, "www.dn.example.com.", code::A, None, Transport::Udp);
    assert_eq!(r.rcode, rcode::NOERROR);
    assert_eq!(types(&r.sections[0]), vec![code::DNAME, code::CNAME, code::A]);
    assert_eq!(r.sections[0][1].0, "www.dn.example.com.");
    assert_eq!(r.sections[0][2].0, "www.target.example.com.");
    assert_eq!(r.rdata[0], ["target.example.com.", "www.target.example.com.", "192.0.2.7"]);
    // The DNAME owner itself is not redirected.
    assert!(ask_in(&cat, "dn.example.com.", code::A, None, Transport::Udp).sections[0].is_empty());
    // A target outside the zone ends the answer after the CNAME.
    let r = ask_in(&cat, "a.b.out.example.com.", code::A, None, Transport::Udp);
    assert_eq!(types(&r.sections[0]), vec![code::DNAME, code::CNAME]);
    assert_eq!(r.rdata[0], ["x.example.", "a.b.x.example."]);
}

/// Regression: names made while answering (the target of a CNAME
/// synthesized from a DNAME) were written without joining the compression
/// table, so every record owned by that name spelled it out again (11
/// octets more per record here, each RRSIG too). Near 512 octets sixgate set
/// TC where Knot's answer fitted.
#[test]
fn records_owned_by_a_synthesized_cname_target_point_at_it() {
    let cat = catalog_with("dn DNAME target.example.com.\nwww.target A 192.0.2.7\n");
    let mut buf = Vec::new();
    let q = query("www.dn.example.com.", code::A, None);
    assert_eq!(respond(&cat, &q, &mut buf, Transport::Udp, &Limits::default()), Outcome::Reply);
    let r = parse(&buf);
    assert_eq!(types(&r.sections[0]), vec![code::DNAME, code::CNAME, code::A]);
    assert_eq!(r.sections[0][2].0, "www.target.example.com.");
    // Header and question (36), the DNAME owned by a pointer into the
    // question, with its target uncompressed (RFC 6672 §2.5; 32), the CNAME
    // with `www` and a pointer into the DNAME's target (18), the A with a
    // 2-octet pointer into the CNAME's target as its owner (16).
    assert_eq!(buf.len(), 36 + 32 + 18 + 16, "{buf:02x?}");
    let owner = &buf[buf.len() - 16..buf.len() - 14];
    assert_eq!(owner[0] & 0xC0, 0xC0, "the A's owner is a pointer");
    // Two DNAMEs: the second synthesized CNAME's owner is the first one's
    // target, and points at it too.
    let cat =
        catalog_with("d1 DNAME d2.example.com.\nd2 DNAME target.example.com.\nwww.target A 192.0.2.7\n");
    let q = query("www.d1.example.com.", code::A, None);
    assert_eq!(respond(&cat, &q, &mut buf, Transport::Udp, &Limits::default()), Outcome::Reply);
    let r = parse(&buf);
    assert_eq!(types(&r.sections[0]), vec![code::DNAME, code::CNAME, code::DNAME, code::CNAME, code::A]);
    assert_eq!(r.rdata[0][3], "www.target.example.com.");
    // 36; DNAME d1 (a pointer, 16 of rdata: 28); CNAME (a pointer
    // to the question, `www` and a pointer: 18); DNAME d2, its owner a
    // pointer into that CNAME's rdata (32); CNAME owned by a pointer to it
    // (18); the A (16). Without the synthesized names: 21 octets more.
    assert_eq!(buf.len(), 36 + 28 + 18 + 32 + 18 + 16, "{buf:02x?}");
}

/// Regression: names sent whole in rdata (the targets of SRV, SVCB, HTTPS
/// and DNAME records) were never pointed at, so the additional addresses of
/// an SRV target spelled its name again where Knot points at the SRV's
/// rdata; at 512 octets an optional address that Knot fitted was left out.
#[test]
fn names_sent_whole_in_rdata_are_pointed_at() {
    let cat = catalog_with("_sip._tcp SRV 0 5 5060 sipserver.example.com.\nsipserver A 192.0.2.60\n");
    let mut buf = Vec::new();
    let q = query("_sip._tcp.example.com.", code::SRV, None);
    assert_eq!(respond(&cat, &q, &mut buf, Transport::Udp, &Limits::default()), Outcome::Reply);
    let r = parse(&buf);
    assert_eq!(r.rdata[0], ["0 5 5060 sipserver.example.com"]);
    assert_eq!(r.sections[2], vec![("sipserver.example.com.".into(), code::A, 3600)]);
    // Header and question (39); the SRV with its target whole (RFC 2782;
    // 41); the A owned by a pointer into the SRV's rdata (16).
    assert_eq!(buf.len(), 39 + 41 + 16, "{buf:02x?}");
}

/// RFC 6672 §2.2: when the substitution would make a name longer than 255
/// octets, the answer is YXDOMAIN with the DNAME (and its signatures) as
/// the proof, and nothing else. Knot 3.2 goes on to resolve the DNAME's
/// target name itself, as if it were a CNAME target, so it adds that
/// name's SOA (NODATA) or even its data; sixgate does not (see
/// docs/differences-from-knot.md).
#[test]
fn dname_substitution_over_255_octets_is_yxdomain_with_the_dname_alone() {
    let labels = ["a".repeat(60), "a".repeat(60), "a".repeat(60)].join(".");
    let target = format!("t4.{labels}.example.com.");
    assert_eq!(wire(&target).len(), 199);
    let cat = catalog_with(&format!("long DNAME {target}\n{target} A 192.0.2.4\n"));
    // Over TCP: with these names the answer would not fit in 512 octets.
    for edns in [None, Some(1232)] {
        // 56 octets of prefix: the new name is 255 octets, which is allowed.
        let fits = format!("{}.long.example.com.", "b".repeat(55));
        let r = ask_in(&cat, &fits, code::A, edns, Transport::Tcp);
        assert_eq!(types(&r.sections[0]), vec![code::DNAME, code::CNAME], "{r:?}");
        assert_eq!(r.rcode, rcode::NXDOMAIN);
        // One more octet is too long.
        let over = format!("{}.long.example.com.", "b".repeat(56));
        let r = ask_in(&cat, &over, code::A, edns, Transport::Tcp);
        assert_eq!(r.rcode, rcode::YXDOMAIN);
        assert!(r.flags & flags::AA != 0);
        assert_eq!(r.sections[0], vec![("long.example.com.".into(), code::DNAME, 3600)]);
        assert_eq!(r.rdata[0], [target.as_str()]);
        assert!(r.sections[1].is_empty() && r.sections[2].is_empty(), "{r:?}");
    }
}

/// Regression: a FORMERR for a query whose OPT was read left the OPT out
/// of the reply (RFC 6891 §6.1.1: a request with an OPT gets one back).
#[test]
fn formerr_replies_carry_an_opt_when_the_query_had_one() {
    let mut q = query("www.example.com.", code::A, Some(1232));
    q.push(0);
    let mut buf = Vec::new();
    assert_eq!(respond(&catalog(), &q, &mut buf, Transport::Udp, &Limits::default()), Outcome::Reply);
    let r = parse(&buf);
    assert_eq!(r.rcode, rcode::FORMERR);
    assert_eq!(r.flags & flags::AA, 0);
    assert!(r.sections.iter().all(Vec::is_empty));
    assert_eq!(r.opt_rdata, Some(vec![]), "the reply has an OPT");
    assert_eq!(&buf[12..q.len() - 12], &q[12..q.len() - 12], "the question is echoed");
}

/// Regression: an answer too large for a TCP message (65535 octets) was
/// sent as what fitted with TC set. Over TCP there is no larger transport
/// to retry on (RFC 7766 §8), so TC means nothing there; the query fails
/// with SERVFAIL, as Knot answers it. Over UDP the same answer sets TC.
#[test]
fn tcp_replies_never_set_tc() {
    // 250 TXT records of 256 octets: 64,500 octets of rdata in the zone,
    // 67,000 octets in a message.
    let huge: String = (0..250).map(|i| format!("huge TXT \"{i:03}{}\"\n", "x".repeat(252))).collect();
    let cat = catalog_with(&huge);
    for edns in [None, Some(1232)] {
        let r = ask_in(&cat, "huge.example.com.", code::TXT, edns, Transport::Tcp);
        assert_eq!(r.flags & flags::TC, 0, "TC over TCP");
        assert_eq!(r.rcode, rcode::SERVFAIL);
        assert_eq!(r.flags & flags::AA, 0);
        assert!(r.sections.iter().all(Vec::is_empty), "{r:?}");
        assert_eq!(r.opt_rdata.is_some(), edns.is_some());
        let r = ask_in(&cat, "huge.example.com.", code::TXT, edns, Transport::Udp);
        assert!(r.flags & flags::TC != 0);
        assert_eq!(r.rcode, rcode::NOERROR);
    }
    // An answer that fits in a TCP message is sent whole.
    let mid: String = (0..200).map(|i| format!("mid TXT \"{i:03}{}\"\n", "x".repeat(252))).collect();
    let r = ask_in(&catalog_with(&mid), "mid.example.com.", code::TXT, None, Transport::Tcp);
    assert_eq!((r.rcode, r.flags & flags::TC, r.sections[0].len()), (rcode::NOERROR, 0, 200));
}

/// Regression: a TSIG-signed query was answered unsigned, and BIND, which
/// signs the SOA query it sends before a transfer, refused the answer
/// ("expected a TSIG"). RFC 8945 §5.3: the answer to a signed request is
/// signed; §5.2.1: an unknown key is NOTAUTH with BADKEY.
#[test]
fn a_signed_query_was_answered_unsigned() {
    use crate::tsig::{self, Algorithm, Key};
    let key = Key::new(&wire("xfr."), Algorithm::HmacSha256, vec![9; 32]);
    let now = 1_800_000_000;
    let mut q = query("example.com.", code::SOA, Some(1232));
    let mac = tsig::sign_request(&mut q, &key, now, 300).unwrap();
    let cat = catalog();
    let mut out = Vec::new();
    assert_eq!(respond(&cat, &q, &mut out, Transport::Udp, &Limits::default()), Outcome::Signed);
    assert!(out.is_empty(), "nothing is written for a signed query");
    for transport in [Transport::Udp, Transport::Tcp] {
        let got =
            respond_signed(&cat, &q, &mut out, transport, &Limits::default(), |_| Some(&key), now, None)
                .outcome;
        assert_eq!(got, Outcome::Reply);
        tsig::verify_response(&out, &key, &mac, now).expect("a signed answer");
        let r = parse(&out);
        assert_eq!(r.rcode, 0);
        assert_eq!(r.sections[0].len(), 1, "the SOA");
    }
    // Unknown key: NOTAUTH, BADKEY, nothing answered.
    respond_signed(&cat, &q, &mut out, Transport::Udp, &Limits::default(), |_| None::<&Key>, now, None);
    let r = parse(&out);
    assert_eq!(r.rcode, rcode::NOTAUTH);
    assert!(r.sections[0].is_empty());
    let t = tsig::find(&out).unwrap().expect("the error's tsig record");
    assert_eq!(t.error, rcode::BADKEY);
    assert!(t.mac.is_empty(), "BADKEY is unsigned (RFC 8945 §5.3.2)");
    // A wrong secret: BADSIG.
    let other = Key::new(&wire("xfr."), Algorithm::HmacSha256, vec![8; 32]);
    respond_signed(&cat, &q, &mut out, Transport::Udp, &Limits::default(), |_| Some(&other), now, None);
    assert_eq!(tsig::find(&out).unwrap().unwrap().error, rcode::BADSIG);
}

/// A signed answer over UDP leaves room for its TSIG record: it fits the
/// client's payload size, truncated if need be.
#[test]
fn a_signed_udp_answer_fits_the_payload_with_its_tsig() {
    use crate::tsig::{self, Algorithm, Key};
    let key = Key::new(&wire("xfr."), Algorithm::HmacSha512, vec![9; 64]);
    let now = 1_800_000_000;
    let mut q = query("big.example.com.", code::TXT, None);
    let mac = tsig::sign_request(&mut q, &key, now, 300).unwrap();
    let mut out = Vec::new();
    respond_signed(&catalog(), &q, &mut out, Transport::Udp, &Limits::default(), |_| Some(&key), now, None);
    assert!(out.len() <= 512, "{} octets without EDNS", out.len());
    tsig::verify_response(&out, &key, &mac, now).expect("a signed answer");
}
