//! Unit tests of the lookup algorithm: each RFC 1034 §4.3.2 branch and
//! the clarifications, on a small zone, without sockets.

use std::sync::Arc;

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

/// A parsed response: flags, rcode, and (owner, type, ttl) per section.
#[derive(Debug)]
struct Resp {
    flags: u16,
    rcode: u16,
    sections: [Vec<(String, u16, u32)>; 3],
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
    Resp { flags, rcode: (flags & 0xF) | (ext << 4), sections, opt_rdata }
}

fn ask(qname: &str, qtype: u16) -> Resp {
    ask_with(qname, qtype, None, Transport::Udp)
}

fn ask_with(qname: &str, qtype: u16, edns: Option<u16>, t: Transport) -> Resp {
    let mut buf = Vec::new();
    let out = respond(&catalog(), &query(qname, qtype, edns), &mut buf, t, &Limits::default());
    assert_eq!(out, Outcome::Reply);
    assert_eq!(&buf[..2], &[0xAB, 0xCD], "id echoed");
    parse(&buf)
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
    assert!(r.sections[1].is_empty(), "minimal responses: no NS in authority");
    assert_eq!(types(&r.sections[2]), vec![code::A, code::AAAA]);
}

#[test]
fn nxdomain_and_nodata_carry_the_soa_with_the_negative_ttl() {
    let r = ask("nope.example.com.", code::A);
    assert_eq!(r.rcode, rcode::NXDOMAIN);
    // RFC 2308 §5: min(SOA TTL 7200, MINIMUM 300).
    assert_eq!(r.sections[1], vec![("example.com.".into(), code::SOA, 300)]);
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

#[test]
fn names_below_a_served_child_are_answered_by_the_child() {
    let r = ask("sub.example.com.", code::A);
    assert!(r.flags & flags::AA != 0);
    assert_eq!(r.sections[0], vec![("sub.example.com.".into(), code::A, 300)]);
}

#[test]
fn delegations_refer_with_glue_and_ds_comes_from_the_parent() {
    // Only the parent is loaded here, so the cut refers.
    let apex = wire("example.com.");
    let zone = Zone::build(&apex, zonefile::parse(ZONE, &apex).unwrap(), 1).unwrap();
    let cat = Catalog::new().with_zone(Arc::new(zone));
    let mut buf = Vec::new();
    respond(
        &cat,
        &query("host.sub.example.com.", code::A, None),
        &mut buf,
        Transport::Udp,
        &Limits::default(),
    );
    let r = parse(&buf);
    assert_eq!(r.flags & flags::AA, 0, "referrals are not authoritative");
    assert!(r.sections[0].is_empty());
    assert_eq!(types(&r.sections[1]), vec![code::NS, code::NS]);
    let glue: Vec<&str> = r.sections[2].iter().map(|g| g.0.as_str()).collect();
    assert_eq!(glue, vec!["ns1.sub.example.com.", "ns1.example.com."], "mandatory glue first");
    // DS at the cut is parent-side data, with the child served or not.
    for c in [&cat, &catalog()] {
        respond(c, &query("sub.example.com.", code::DS, None), &mut buf, Transport::Udp, &Limits::default());
        let r = parse(&buf);
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
    respond(&catalog(), &q, &mut buf, Transport::Udp, &Limits::default());
    let r = parse(&buf);
    assert_eq!(r.rcode, rcode::BADVERS);
    assert!(r.sections.iter().all(Vec::is_empty));
}

#[test]
fn dname_redirects_names_below_it() {
    let apex = wire("example.com.");
    let text = format!("{ZONE}dn DNAME target.example.com.\nwww.target A 192.0.2.7\nout DNAME x.example.\n");
    let zone = Zone::build(&apex, zonefile::parse(&text, &apex).unwrap(), 1).unwrap();
    let cat = Catalog::new().with_zone(Arc::new(zone));
    let mut buf = Vec::new();
    respond(&cat, &query("www.dn.example.com.", code::A, None), &mut buf, Transport::Udp, &Limits::default());
    let r = parse(&buf);
    assert_eq!(r.rcode, rcode::NOERROR);
    assert_eq!(types(&r.sections[0]), vec![code::DNAME, code::CNAME, code::A]);
    assert_eq!(r.sections[0][1].0, "www.dn.example.com.");
    assert_eq!(r.sections[0][2].0, "www.target.example.com.");
    // The DNAME owner itself is not redirected.
    respond(&cat, &query("dn.example.com.", code::A, None), &mut buf, Transport::Udp, &Limits::default());
    assert!(parse(&buf).sections[0].is_empty());
    // A target outside the zone ends the answer after the CNAME.
    respond(
        &cat,
        &query("a.b.out.example.com.", code::A, None),
        &mut buf,
        Transport::Udp,
        &Limits::default(),
    );
    assert_eq!(types(&parse(&buf).sections[0]), vec![code::DNAME, code::CNAME]);
}
