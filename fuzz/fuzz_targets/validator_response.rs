//! `sixgate_dnssec::validate::decode_response` (the validator's reader of
//! DNS responses) on arbitrary bytes, then the validator itself on what it
//! read, for the signed zone dnssec.test. of `testdata/dnssec/`.
//!
//! Invariants:
//! - it never panics;
//! - a decoded response has QR set and TC clear; its records have valid
//!   uncompressed owner names and TTLs below 2^31, and the rdata of NS,
//!   CNAME, PTR, MX and SOA holds valid uncompressed names;
//! - `domain` reads the same message: the same owners, types and TTLs in
//!   the answer and authority sections, and the same rdata (names
//!   decompressed for the types above, the octets as sent for others),
//!   except that `domain` refuses a name in rdata whose compression
//!   pointer leads to labels that run past the end of the rdata;
//! - the decoded response, encoded again uncompressed (with an OPT record
//!   for an extended rcode), decodes to the same value;
//! - `validate_dnskey` on a DNSKEY RRset of the response, against the
//!   zone's real DS, trusts only keys the zone really has;
//! - `check_response` for the response's own question (under the zone's
//!   real keys, at a time its signatures are valid) is `Secure` only with
//!   the outcome it gives for sixgate's own answer to that question, from
//!   the zone signed with NSEC or with NSEC3: signatures cannot be
//!   forged, so any other secure outcome is a proof the validator should
//!   have refused.
#![no_main]

use std::sync::{Arc, OnceLock};

use domain::base::iana::Rtype;
use domain::base::rdata::UnknownRecordData;
use domain::base::{Message, ParsedName, ParsedRecord};
use domain::rdata::AllRecordData;
use libfuzzer_sys::fuzz_target;
use sixgate_dns::name::{self, NameBuf};
use sixgate_dns::rtype::code;
use sixgate_dns::{Catalog, Record, Zone, zonefile};
use sixgate_dnssec::ds;
use sixgate_dnssec::validate::{
    AlgorithmRule, Response, SignedRrSet, TrustedKeys, Verdict, check_response, decode_response,
    query_catalog, usable_ds, validate_dnskey,
};

/// Inside the signatures' validity (2025-01-01 to 2035-01-01).
const NOW: u64 = 1_800_000_000;
const APEX: &[u8] = b"\x06dnssec\x04test\x00";

struct Fixture {
    /// The zone signed with NSEC, and with NSEC3.
    catalogs: [Catalog; 2],
    /// The zone's DNSKEY rdatas.
    dnskeys: Vec<Box<[u8]>>,
    /// DS records for its KSK, as the parent would hold them.
    ds: Vec<sixgate_dnssec::ds::Ds>,
    keys: TrustedKeys,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let texts = [
            include_str!("../../testdata/dnssec/dnssec.test.nsec.signed"),
            include_str!("../../testdata/dnssec/dnssec.test.nsec3.signed"),
        ];
        let catalogs = texts.map(|text| {
            let records = zonefile::parse(text, APEX).expect("signed zone parses");
            let zone = Zone::build(APEX, records, 0).expect("signed zone builds");
            Catalog::new().with_zone(Arc::new(zone))
        });
        let answer = query_catalog(&catalogs[0], APEX, code::DNSKEY).expect("DNSKEY answer");
        let set = SignedRrSet::group(&answer.answer)
            .into_iter()
            .find(|s| s.rtype == code::DNSKEY)
            .expect("DNSKEY RRset");
        let dnskeys = set.rdatas.clone();
        let ds_rdatas: Vec<Box<[u8]>> = dnskeys
            .iter()
            .filter(|k| k.get(1).is_some_and(|f| f & 1 != 0))
            .filter_map(|k| ds::ds_rdata(APEX, k, ds::SHA256))
            .map(Into::into)
            .collect();
        let ds = usable_ds(&ds_rdatas);
        assert!(!ds.is_empty());
        let keys =
            validate_dnskey(APEX, &set, &ds, AlgorithmRule::AnyAlgorithm, NOW).expect("real keys validate");
        Fixture { catalogs, dnskeys, ds, keys }
    })
}

/// A name as `domain` read it, in uncompressed wire form.
fn wire_of<O: AsRef<[u8]>>(n: &ParsedName<O>) -> Vec<u8> {
    let mut w = Vec::new();
    for label in n.iter() {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_slice());
    }
    w
}

/// The rdata of `rr` as `domain` reads it, names decompressed for the
/// types whose names may be compressed; `None` if it refuses them.
fn domain_rdata(rr: &ParsedRecord<'_, &[u8]>) -> Option<Vec<u8>> {
    let compressible = [Rtype::NS, Rtype::CNAME, Rtype::PTR, Rtype::MX, Rtype::SOA];
    if !compressible.contains(&rr.rtype()) {
        let rec = rr.to_record::<UnknownRecordData<&[u8]>>().ok().flatten().expect("domain reads raw rdata");
        return Some(rec.data().data().to_vec());
    }
    let rec = rr.to_any_record::<AllRecordData<&[u8], ParsedName<&[u8]>>>().ok()?;
    Some(match rec.data() {
        AllRecordData::Ns(n) => wire_of(n.nsdname()),
        AllRecordData::Cname(n) => wire_of(n.cname()),
        AllRecordData::Ptr(n) => wire_of(n.ptrdname()),
        AllRecordData::Mx(mx) => {
            let mut w = mx.preference().to_be_bytes().to_vec();
            w.extend_from_slice(&wire_of(mx.exchange()));
            w
        }
        AllRecordData::Soa(soa) => {
            let mut w = wire_of(soa.mname());
            w.extend_from_slice(&wire_of(soa.rname()));
            for v in [soa.serial().into_int(), soa.refresh().as_secs(), soa.retry().as_secs()] {
                w.extend_from_slice(&v.to_be_bytes());
            }
            for v in [soa.expire().as_secs(), soa.minimum().as_secs()] {
                w.extend_from_slice(&v.to_be_bytes());
            }
            w
        }
        other => panic!("domain read {} as {other:?}", rr.rtype()),
    })
}

/// Where the rdata of each answer and authority record lies (the whole
/// message already read by `decode_response`).
fn rdata_spans(data: &[u8]) -> Vec<(usize, usize)> {
    let count = |at: usize| usize::from(u16::from_be_bytes([data[at], data[at + 1]]));
    let mut n = NameBuf::new();
    let mut pos = 12;
    for _ in 0..count(4) {
        pos = n.decode(data, pos).expect("question name") + 4;
    }
    let mut spans = Vec::new();
    for _ in 0..count(6) + count(8) {
        pos = n.decode(data, pos).expect("owner name");
        let start = pos + 10;
        let end = start + count(pos + 8);
        spans.push((start, end));
        pos = end;
    }
    spans
}

/// True if a name in the rdata at `start..end` runs, through a
/// compression pointer, past `end`: `domain` reads rdata with a parser
/// that ends there and refuses such a name, which RFC 1035 §4.1.4 allows
/// (the pointer points back; the labels it leads to need not end before
/// the record does).
fn runs_past_rdata(data: &[u8], rtype: u16, start: usize, end: usize) -> bool {
    let offset = match rtype {
        code::MX => 2,
        _ => 0,
    };
    let within = &data[..end];
    let mut n = NameBuf::new();
    match n.decode(within, start + offset) {
        Err(_) => true,
        Ok(next) => rtype == code::SOA && n.decode(within, next).is_err(),
    }
}

fn compare_with_domain(data: &[u8], r: &Response) {
    let msg = Message::from_octets(data).expect("at least a header");
    let mut question = msg.question();
    for q in question.by_ref() {
        q.unwrap_or_else(|err| panic!("domain refuses a question we read: {err}"));
    }
    let mut section =
        question.answer().unwrap_or_else(|err| panic!("domain refuses the question section: {err}"));
    let mut spans = rdata_spans(data).into_iter();
    for (i, ours) in [&r.answer, &r.authority].into_iter().enumerate() {
        let mut theirs = Vec::new();
        for rr in section.by_ref() {
            let (start, end) = spans.next().expect("as many records as we read");
            let rr = rr.unwrap_or_else(|err| panic!("domain refuses a record of section {i}: {err}"));
            let ttl = rr.ttl().as_secs();
            let ttl = if ttl > i32::MAX as u32 { 0 } else { ttl };
            theirs.push(Record {
                owner: wire_of(&rr.owner()).into(),
                rtype: rr.rtype().to_int(),
                ttl,
                rdata: match domain_rdata(&rr) {
                    Some(rd) => rd.into(),
                    None => {
                        let rtype = rr.rtype().to_int();
                        assert!(
                            runs_past_rdata(data, rtype, start, end),
                            "domain refuses {rtype} rdata we read"
                        );
                        // Nothing to compare with: ours is checked by check_records.
                        ours.get(theirs.len()).map(|r| r.rdata.clone()).unwrap_or_default()
                    }
                },
            });
        }
        assert_eq!(&theirs, ours, "domain reads section {i} differently");
        section = section
            .next_section()
            .unwrap_or_else(|err| panic!("domain refuses the sections after {i}: {err}"))
            .expect("a next section");
    }
    for rr in section {
        rr.unwrap_or_else(|err| panic!("domain refuses an additional record: {err}"));
    }
}

/// The response encoded again, uncompressed, without a question.
fn encode(r: &Response) -> Vec<u8> {
    let ext = r.rcode >> 4;
    let mut m = vec![0, 0, 0x80, (r.rcode & 0xf) as u8, 0, 0];
    m.extend_from_slice(&(r.answer.len() as u16).to_be_bytes());
    m.extend_from_slice(&(r.authority.len() as u16).to_be_bytes());
    m.extend_from_slice(&u16::from(ext != 0).to_be_bytes());
    for rec in r.answer.iter().chain(&r.authority) {
        m.extend_from_slice(&rec.owner);
        m.extend_from_slice(&rec.rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&rec.ttl.to_be_bytes());
        m.extend_from_slice(&(rec.rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rec.rdata);
    }
    if ext != 0 {
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0]);
        m.extend_from_slice(&(u32::from(ext) << 24).to_be_bytes());
        m.extend_from_slice(&[0, 0]);
    }
    m
}

fn check_records(r: &Response) {
    for rec in r.answer.iter().chain(&r.authority) {
        assert!(name::validate(&rec.owner).is_ok(), "owner {:02x?}", rec.owner);
        assert!(rec.ttl <= i32::MAX as u32);
        let names: &[usize] = match rec.rtype {
            code::NS | code::CNAME | code::PTR => &[0],
            code::MX => &[2],
            code::SOA => &[0, 0],
            _ => &[],
        };
        let mut pos = 0;
        for &skip in names {
            pos += skip;
            let len = name::wire_len(&rec.rdata[pos..]).expect("a name in rdata");
            assert!(name::validate(&rec.rdata[pos..pos + len]).is_ok());
            pos += len;
        }
        if rec.rtype == code::SOA {
            pos += 20;
        }
        if !names.is_empty() {
            assert_eq!(pos, rec.rdata.len(), "rdata of type {} ends elsewhere", rec.rtype);
        }
    }
}

fn validate(data: &[u8], r: &Response) {
    let f = fixture();
    // DNSKEY RRsets: trusted only if they are the zone's own keys.
    for s in SignedRrSet::group(&r.answer).iter().filter(|s| s.rtype == code::DNSKEY) {
        for rule in [
            AlgorithmRule::AnyAlgorithm,
            AlgorithmRule::EveryDsAlgorithm,
            AlgorithmRule::EveryDnskeyAlgorithm,
        ] {
            if let Ok(t) = validate_dnskey(APEX, s, &f.ds, rule, NOW) {
                assert!(t.keys.iter().all(|k| f.dnskeys.contains(k)), "a key the zone lacks is trusted");
                let _ = s.cache_ttl(NOW);
            }
        }
    }
    // The question: the first one in the message.
    let mut q = NameBuf::new();
    let Ok(end) = q.decode(data, 12) else { return };
    let Some(t) = data.get(end..end + 2) else { return };
    q.make_lowercase();
    let qname = q.as_slice();
    let qtype = u16::from_be_bytes([t[0], t[1]]);
    let verdict = check_response(&f.keys, r, qname, qtype, NOW);
    let Verdict::Secure(outcome) = verdict else { return };
    // Only ordinary questions in the zone have a truth to compare with.
    if !name::is_at_or_below(qname, APEX) || sixgate_dns::rtype::is_meta(qtype) || qtype == code::RRSIG {
        return;
    }
    let truths: Vec<Verdict> = f
        .catalogs
        .iter()
        .map(|c| match query_catalog(c, qname, qtype) {
            Ok(real) => check_response(&f.keys, &real, qname, qtype, NOW),
            Err(e) => panic!("no answer from the engine: {e}"),
        })
        .collect();
    assert!(
        truths.contains(&Verdict::Secure(outcome)),
        "Secure({outcome:?}) for {} type {qtype}, but the zone's own answers give {truths:?}",
        name::to_text(qname)
    );
}

fuzz_target!(|data: &[u8]| {
    let Ok(r) = decode_response(data) else { return };
    assert!(data.len() >= 12 && data[2] & 0x80 != 0 && data[2] & 0x02 == 0);
    assert!(r.rcode <= 0xfff);
    check_records(&r);
    compare_with_domain(data, &r);
    let again = decode_response(&encode(&r)).expect("the response encoded again decodes");
    assert_eq!(again, r);
    validate(data, &r);
});
