use super::*;
use crate::name;

const KNOT_A_QUERY: &[u8] = include_bytes!("../../../testdata/lookup/www-a.query");
const KNOT_A: &[u8] = include_bytes!("../../../testdata/lookup/www-a.response");
const KNOT_AAAA_QUERY: &[u8] = include_bytes!("../../../testdata/lookup/www-aaaa.query");
const KNOT_AAAA: &[u8] = include_bytes!("../../../testdata/lookup/www-aaaa.response");
/// The ID of the captured queries (testdata/lookup/capture.py).
const KNOT_ID: u16 = 0x5a5a;

const ID: u16 = 7;

fn name(t: &str) -> Box<[u8]> {
    name::from_text(t, None).unwrap()
}

fn target() -> Box<[u8]> {
    name("target.test.")
}

/// A response to `query(ID, target.test., qtype)` built record by record:
/// header and question echoed, QR and RA set, `rcode` in the low bits.
/// The second field is where the last record's class is.
struct Response(Vec<u8>, usize);

impl Response {
    fn new(qtype: u16, rcode: u8) -> Self {
        let q = query(ID, &target(), qtype);
        let mut m = q[..q.len() - 11].to_vec(); // without the OPT
        m[2] = 0x81; // QR, RD
        m[3] = 0x80 | rcode; // RA
        m[11] = 0; // no additional yet
        Response(m, 0)
    }

    /// Appends a record (owner given in wire form, possibly compressed)
    /// to `section` (0 answer, 1 authority, 2 additional). Records must be
    /// added section by section.
    fn rr(mut self, section: usize, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
        self.0.extend_from_slice(owner);
        self.0.extend_from_slice(&rtype.to_be_bytes());
        self.1 = self.0.len();
        self.0.extend_from_slice(&1u16.to_be_bytes());
        self.0.extend_from_slice(&ttl.to_be_bytes());
        self.0.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        self.0.extend_from_slice(rdata);
        self.0[7 + 2 * section] += 1;
        self
    }

    fn answer(self, owner: &str, rtype: u16, ttl: u32, rdata: &[u8]) -> Self {
        self.rr(0, &name(owner), rtype, ttl, rdata)
    }

    fn cname(self, owner: &str, ttl: u32, target: &str) -> Self {
        self.answer(owner, code::CNAME, ttl, &name(target))
    }

    /// An OPT record (payload 1232) with `ext` as the extended rcode.
    fn opt(self, ext: u8) -> Self {
        self.rr(2, &[0], code::OPT, u32::from(ext) << 24, &[]).set_class(1232)
    }

    /// Sets the class of the last record (for OPT, the payload size).
    fn set_class(mut self, class: u16) -> Self {
        let at = self.1;
        self.0[at..at + 2].copy_from_slice(&class.to_be_bytes());
        self
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

fn parse(msg: &[u8], qtype: u16) -> Result<Outcome, LookupError> {
    parse_response(msg, ID, &target(), qtype)
}

fn a(octets: [u8; 4]) -> Box<[u8]> {
    octets.into()
}

/// target.test. A: a compressed two-hop chain, target.test. → a.Example.test.
/// → b.example.test., written in other cases and through pointers into
/// earlier rdata, ending in two A records (60 and 100 s, one repeated),
/// with noise the reading must skip: an A record owned by the question
/// name (which has a CNAME), one for another name, an SOA in the authority
/// section and an OPT.
fn compressed_chain() -> Vec<u8> {
    let mut m = Response::new(code::A, 0).0;
    let record = |m: &mut Vec<u8>, owner: &[u8], rtype: u16, ttl: u32, rdata: &[u8]| -> usize {
        m.extend_from_slice(owner);
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&ttl.to_be_bytes());
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        let at = m.len();
        m.extend_from_slice(rdata);
        m[7] += 1;
        at
    };
    // Question name at 12: "test" is at 19.
    let a_at = record(&mut m, &[0xc0, 12], code::CNAME, 300, b"\x01a\x07Example\xc0\x13");
    let example = (a_at + 2) as u8;
    let b_at = record(&mut m, &[1, b'A', 0xc0, example], code::CNAME, 200, &[1, b'b', 0xc0, example]);
    let b = [0xc0, b_at as u8];
    record(&mut m, &b, code::A, 100, &[192, 0, 2, 2]);
    record(&mut m, b"\x01B\x07EXAMPLE\x04TEST\x00", code::A, 60, &[192, 0, 2, 1]);
    record(&mut m, &b, code::A, 100, &[192, 0, 2, 2]);
    record(&mut m, &[0xc0, 12], code::A, 5, &[198, 51, 100, 1]);
    record(&mut m, &[1, b'c', 0xc0, example], code::A, 5, &[198, 51, 100, 2]);
    Response(m, 0).rr(1, &name("example.test."), code::SOA, 5, &[0; 22]).opt(0).0
}

#[test]
fn query_asks_for_the_type_with_rd_and_edns() {
    let q = query(0xbeef, &name("www.capture.test."), code::AAAA);
    assert_eq!(&q[..4], &[0xbe, 0xef, 0x01, 0x00]);
    assert_eq!(&q[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
    let qname = &q[12..q.len() - 15];
    assert_eq!(qname, &name("www.capture.test.")[..]);
    assert_eq!(&q[q.len() - 15..q.len() - 11], &[0, 28, 0, 1]);
    assert_eq!(&q[q.len() - 11..], &[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    // The bytes capture.py sent to Knot are the same.
    assert_eq!(query(KNOT_ID, &name("www.capture.test."), code::A), KNOT_A_QUERY);
    assert_eq!(query(KNOT_ID, &name("www.capture.test."), code::AAAA), KNOT_AAAA_QUERY);
}

#[test]
fn follows_a_compressed_chain_to_the_addresses() {
    assert_eq!(
        parse(&compressed_chain(), code::A),
        Ok(Outcome::Addresses { ttl: 60, addresses: vec![a([192, 0, 2, 1]), a([192, 0, 2, 2])] })
    );
}

#[test]
fn reads_knot_answers() {
    let www = name("www.capture.test.");
    assert_eq!(
        parse_response(KNOT_A, KNOT_ID, &www, code::A),
        Ok(Outcome::Addresses { ttl: 60, addresses: vec![a([192, 0, 2, 10]), a([192, 0, 2, 11])] })
    );
    let mut v6 = [0u8; 16];
    v6[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
    v6[15] = 0x10;
    // The chain's 120 s CNAME is less than the AAAA's 300 s.
    assert_eq!(
        parse_response(KNOT_AAAA, KNOT_ID, &name("WWW.Capture.TEST."), code::AAAA),
        Ok(Outcome::Addresses { ttl: 120, addresses: vec![v6.into()] })
    );
    // An A answer is not an AAAA answer.
    assert_eq!(parse_response(KNOT_A, KNOT_ID, &www, code::AAAA), Err(LookupError::Mismatch));
}

#[test]
fn reads_aaaa_and_checks_the_address_length() {
    let v6: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let r = Response::new(code::AAAA, 0).cname("target.test.", 50, "x.test.").answer(
        "x.test.",
        code::AAAA,
        100,
        &v6,
    );
    assert_eq!(parse(r.bytes(), code::AAAA), Ok(Outcome::Addresses { ttl: 50, addresses: vec![v6.into()] }));
    let r = Response::new(code::AAAA, 0).answer("target.test.", code::AAAA, 100, &[192, 0, 2, 1]);
    assert_eq!(parse(r.bytes(), code::AAAA), Err(LookupError::Malformed("address length")));
    let r = Response::new(code::A, 0).answer("target.test.", code::A, 100, &v6);
    assert_eq!(parse(r.bytes(), code::A), Err(LookupError::Malformed("address length")));
}

#[test]
fn nxdomain_at_the_name_or_at_the_end_of_the_chain() {
    let soa = |r: Response| r.rr(1, &name("test."), code::SOA, 300, &[0; 22]);
    assert_eq!(parse(soa(Response::new(code::A, 3)).bytes(), code::A), Ok(Outcome::NxDomain));
    let r = soa(Response::new(code::A, 3).cname("target.test.", 300, "gone.test."));
    assert_eq!(parse(r.bytes(), code::A), Ok(Outcome::NxDomain));
    let r = Response::new(code::A, 3).answer("target.test.", code::A, 300, &[192, 0, 2, 1]);
    assert!(matches!(parse(r.bytes(), code::A), Err(LookupError::Malformed(_))));
}

#[test]
fn nodata_when_the_name_has_no_addresses() {
    let r = Response::new(code::A, 0).rr(1, &name("test."), code::SOA, 300, &[0; 22]);
    assert_eq!(parse(r.bytes(), code::A), Ok(Outcome::NoData));
    // Only AAAA: no A.
    let r = Response::new(code::A, 0).answer("target.test.", code::AAAA, 300, &[0; 16]);
    assert_eq!(parse(r.bytes(), code::A), Ok(Outcome::NoData));
    // The chain ends at a name the answer has other data for.
    let r = Response::new(code::A, 0).cname("target.test.", 300, "x.test.").answer(
        "x.test.",
        code::RRSIG,
        300,
        &[0; 20],
    );
    assert_eq!(parse(r.bytes(), code::A), Ok(Outcome::NoData));
}

#[test]
fn a_chain_leaving_the_answer_is_handed_back() {
    let r = Response::new(code::A, 0)
        .cname("target.test.", 300, "a.test.")
        .cname("A.TEST.", 100, "Elsewhere.Example.")
        .answer("elsewhere.other.", code::A, 300, &[192, 0, 2, 1]);
    assert_eq!(
        parse(r.bytes(), code::A),
        Ok(Outcome::Cname { target: name("elsewhere.example."), ttl: 100 })
    );
}

#[test]
fn cname_loops_and_long_chains_are_refused() {
    let r = Response::new(code::A, 0).cname("target.test.", 300, "target.test.");
    assert_eq!(parse(r.bytes(), code::A), Err(LookupError::CnameLoop));
    let r = Response::new(code::A, 0)
        .cname("target.test.", 300, "a.test.")
        .cname("a.test.", 300, "b.test.")
        .cname("b.test.", 300, "A.test.");
    assert_eq!(parse(r.bytes(), code::A), Err(LookupError::CnameLoop));

    let chain = |hops: usize| {
        let mut r = Response::new(code::A, 0);
        for i in 0..hops {
            let owner = if i == 0 { "target.test.".to_string() } else { format!("n{i}.test.") };
            r = r.cname(&owner, 300, &format!("n{}.test.", i + 1));
        }
        r.answer(&format!("n{hops}.test."), code::A, 300, &[192, 0, 2, 1])
    };
    assert!(matches!(parse(chain(MAX_CNAME_HOPS).bytes(), code::A), Ok(Outcome::Addresses { .. })));
    assert_eq!(parse(chain(MAX_CNAME_HOPS + 1).bytes(), code::A), Err(LookupError::TooLong));
}

#[test]
fn two_cname_targets_for_one_name_are_malformed() {
    let r =
        Response::new(code::A, 0).cname("target.test.", 300, "a.test.").cname("target.test.", 300, "b.test.");
    assert_eq!(parse(r.bytes(), code::A), Err(LookupError::Malformed("two CNAMEs for one name")));
    // The same record twice is only a repeat.
    let r = Response::new(code::A, 0)
        .cname("target.test.", 300, "a.test.")
        .cname("target.test.", 30, "A.test.")
        .answer("a.test.", code::A, 300, &[192, 0, 2, 1]);
    assert_eq!(
        parse(r.bytes(), code::A),
        Ok(Outcome::Addresses { ttl: 30, addresses: vec![a([192, 0, 2, 1])] })
    );
}

#[test]
fn truncated_and_error_responses() {
    let mut tc = compressed_chain();
    tc[2] |= 0x02;
    assert_eq!(parse(&tc, code::A), Err(LookupError::Truncated));
    // A TC response is not read further: it may be cut anywhere.
    let cut = &tc[..tc.len() - 7];
    assert_eq!(parse(cut, code::A), Err(LookupError::Truncated));

    for (rcode, expected) in [(2u8, 2u16), (5, 5), (1, 1)] {
        let r = Response::new(code::A, rcode);
        assert_eq!(parse(r.bytes(), code::A), Err(LookupError::Rcode(expected)));
    }
    // BADVERS: extended rcode 1 in the OPT, 0 in the header.
    let r = Response::new(code::A, 0).opt(1);
    assert_eq!(parse(r.bytes(), code::A), Err(LookupError::Rcode(rcode::BADVERS)));
    let r = Response::new(code::A, 0).opt(0).opt(0);
    assert_eq!(parse(r.bytes(), code::A), Err(LookupError::Malformed("two OPT records")));
}

#[test]
fn mismatched_responses_are_not_ours() {
    let good = compressed_chain();
    assert_eq!(parse_response(&good, ID + 1, &target(), code::A), Err(LookupError::Mismatch));
    assert_eq!(parse_response(&good, ID, &name("other.test."), code::A), Err(LookupError::Mismatch));
    assert_eq!(parse_response(&good, ID, &name("TARGET.Test."), code::AAAA), Err(LookupError::Mismatch));
    assert!(parse_response(&good, ID, &name("TARGET.Test."), code::A).is_ok());
    let mut query_bytes = good.clone();
    query_bytes[2] &= 0x7f; // QR clear
    assert_eq!(parse(&query_bytes, code::A), Err(LookupError::Mismatch));
    let mut notify = good.clone();
    notify[2] |= 4 << 3; // opcode NOTIFY
    assert_eq!(parse(&notify, code::A), Err(LookupError::Mismatch));
    let mut no_question = good.clone();
    no_question[5] = 0;
    assert_eq!(parse(&no_question, code::A), Err(LookupError::Mismatch));
    let mut class_ch = Response::new(code::A, 0).0;
    let at = class_ch.len() - 1;
    class_ch[at] = 3;
    assert_eq!(parse(&class_ch, code::A), Err(LookupError::Mismatch));
    assert_eq!(parse(&good, code::MX), Err(LookupError::UnsupportedType(code::MX)));
}

#[test]
fn every_truncation_of_a_valid_response_is_an_error() {
    let mut valid = vec![compressed_chain(), KNOT_A.to_vec()];
    valid.push(Response::new(code::A, 3).cname("target.test.", 300, "gone.test.").opt(0).0);
    valid.push(Response::new(code::A, 0).cname("target.test.", 300, "a.other.").0);
    for msg in &valid {
        let id = u16::from_be_bytes([msg[0], msg[1]]);
        let qname = if msg == KNOT_A { name("www.capture.test.") } else { target() };
        assert!(parse_response(msg, id, &qname, code::A).is_ok());
        for cut in 0..msg.len() {
            assert!(parse_response(&msg[..cut], id, &qname, code::A).is_err(), "cut at {cut}");
        }
        let mut longer = msg.clone();
        longer.push(0);
        assert_eq!(
            parse_response(&longer, id, &qname, code::A),
            Err(LookupError::Malformed("trailing octets"))
        );
    }
}

#[test]
fn keeps_at_most_max_addresses_the_lowest() {
    let mut r = Response::new(code::A, 0);
    for i in (0..100u8).rev() {
        r = r.answer("target.test.", code::A, 300, &[10, 0, 0, i]);
    }
    let Ok(Outcome::Addresses { addresses, .. }) = parse(r.bytes(), code::A) else { panic!("no addresses") };
    assert_eq!(addresses.len(), MAX_ADDRESSES);
    assert_eq!(addresses[0], a([10, 0, 0, 0]));
    assert_eq!(addresses[MAX_ADDRESSES - 1], a([10, 0, 0, MAX_ADDRESSES as u8 - 1]));
}

#[test]
fn a_ttl_with_the_top_bit_set_counts_as_zero() {
    let r = Response::new(code::A, 0).answer("target.test.", code::A, 0x8000_0000, &[192, 0, 2, 1]);
    assert_eq!(
        parse(r.bytes(), code::A),
        Ok(Outcome::Addresses { ttl: 0, addresses: vec![a([192, 0, 2, 1])] })
    );
}

#[test]
fn records_of_another_class_are_ignored() {
    let r = Response::new(code::A, 0).answer("target.test.", code::A, 300, &[192, 0, 2, 1]).set_class(3);
    assert_eq!(parse(r.bytes(), code::A), Ok(Outcome::NoData));
}
