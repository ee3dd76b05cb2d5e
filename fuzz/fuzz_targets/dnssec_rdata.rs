//! The DNSSEC rdata readers of `sixgate-dnssec` on arbitrary bytes; the
//! first input octet (modulo 8) picks one, the rest is the rdata.
//!
//! - 0, `Rrsig::decode`: a decoded RRSIG's signer is a valid name, and
//!   `encode` gives back the input with the signer lowercased (the one
//!   change it makes, RFC 4034 §6.2), which decodes to the same fields.
//! - 1, `decode_type_bitmap`: types come out sorted and distinct;
//!   `type_bitmap` of them decodes to the same types, is never longer
//!   than the input, and equals it when the input has no empty window
//!   and no trailing zero octet (the canonical form, RFC 4034 §4.1.2).
//!   `type_bitmap` of the input read as 16-bit types decodes to those
//!   types sorted and distinct.
//! - 2, `decode_nsec`: the next name is a valid name at the start of the
//!   input; `nsec_rdata` of the fields decodes to the same fields, and is
//!   the input when its bitmap is canonical.
//! - 3, `Nsec3::decode`: with SHA-1 and a 20-octet next hash,
//!   `nsec3_rdata` of the fields decodes to the same fields, and is the
//!   input when its bitmap is canonical.
//! - 4, `Nsec3Params::decode`: `nsec3param_rdata` is the input when the
//!   flags are 0, and decodes to the same parameters with flags 0.
//! - 5, `Ds::decode`: the fields put back together are the input;
//!   `ds_rdata` with the input as DNSKEY rdata does not panic, and
//!   `Ds::matches` against the real keys below does not panic.
//! - 6, `decode_dnskey`: `dnskey_rdata` of the fields is the input.
//! - 7, `rrsig::verify`: the second octet picks an RRset of two real
//!   signed zones (an ECDSA P-256 one and an Ed25519 one), the third a
//!   DNSKEY of that zone, the rest is RRSIG rdata. It never panics, and a
//!   signature verifies only if its RRSIG, the signature aside, is one the
//!   zone holds for that RRset, and for Ed25519 (whose signatures are not
//!   malleable) only if it is that very RRSIG.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sixgate_dns::rtype::code;
use sixgate_dns::{Record, name, zonefile};
use sixgate_dnssec::denial::{self, Nsec3, Nsec3Params};
use sixgate_dnssec::ds::{self, Ds};
use sixgate_dnssec::key;
use sixgate_dnssec::rrsig::{self, RrSet, Rrsig};

/// Signed zones whose keys and RRSIGs the verify case uses.
const ZONES: &[(&str, &str)] = &[
    ("dnssec.test.", include_str!("../../testdata/dnssec/dnssec.test.nsec.signed")),
    ("example.", include_str!("../../testdata/signed/example.ED25519.signed")),
];

/// One RRset of a signed zone, with its RRSIG rdatas and the zone's keys.
struct Signed {
    owner: Box<[u8]>,
    rtype: u16,
    ttl: u32,
    rdatas: Vec<Box<[u8]>>,
    rrsigs: Vec<Rrsig>,
    keys: Vec<Box<[u8]>>,
}

fn signed_sets() -> &'static [Signed] {
    static SETS: OnceLock<Vec<Signed>> = OnceLock::new();
    SETS.get_or_init(|| {
        let mut sets: Vec<Signed> = Vec::new();
        for (apex, text) in ZONES {
            let apex = name::from_text(apex, None).expect("apex is a name");
            let records: Vec<Record> = zonefile::parse(text, &apex).expect("signed zone parses");
            let keys: Vec<Box<[u8]>> =
                records.iter().filter(|r| r.rtype == code::DNSKEY).map(|r| r.rdata.clone()).collect();
            let first = sets.len();
            for r in records.iter().filter(|r| r.rtype != code::RRSIG) {
                let same = |s: &&mut Signed| s.rtype == r.rtype && s.owner.eq_ignore_ascii_case(&r.owner);
                match sets[first..].iter_mut().find(|s| same(s)) {
                    Some(s) => s.rdatas.push(r.rdata.clone()),
                    None => sets.push(Signed {
                        owner: r.owner.clone(),
                        rtype: r.rtype,
                        ttl: r.ttl,
                        rdatas: vec![r.rdata.clone()],
                        rrsigs: Vec::new(),
                        keys: keys.clone(),
                    }),
                }
            }
            for r in records.iter().filter(|r| r.rtype == code::RRSIG) {
                let sig = Rrsig::decode(&r.rdata).expect("zone RRSIG decodes");
                if let Some(s) = sets[first..]
                    .iter_mut()
                    .find(|s| s.rtype == sig.type_covered && s.owner.eq_ignore_ascii_case(&r.owner))
                {
                    s.rrsigs.push(sig);
                }
            }
        }
        // Every real signature verifies with one of its zone's keys.
        for s in &sets {
            let rdatas: Vec<&[u8]> = s.rdatas.iter().map(|r| &r[..]).collect();
            let set = RrSet { owner: &s.owner, rtype: s.rtype, ttl: s.ttl, rdatas: &rdatas };
            for sig in &s.rrsigs {
                assert!(s.keys.iter().any(|k| rrsig::verify(k, sig, &set).is_ok()), "real RRSIG verifies");
            }
        }
        sets
    })
}

/// Types of a bitmap; panics if it does not decode.
fn types_of(bitmap: &[u8]) -> Vec<u16> {
    denial::decode_type_bitmap(bitmap).expect("an encoded bitmap decodes")
}

/// No empty window and no trailing zero octet in a bitmap that decoded.
fn canonical_bitmap(mut b: &[u8]) -> bool {
    while let [_, len, rest @ ..] = b {
        let (bits, tail) = rest.split_at(usize::from(*len));
        if bits.last() == Some(&0) {
            return false;
        }
        b = tail;
    }
    true
}

fn lowercased_signer(rdata: &[u8], signer_len: usize) -> Vec<u8> {
    let mut want = rdata.to_vec();
    want[18..18 + signer_len].make_ascii_lowercase();
    want
}

fn rrsig_case(rd: &[u8]) {
    let Ok(sig) = Rrsig::decode(rd) else {
        return;
    };
    assert!(name::validate(&sig.signer).is_ok(), "signer is a name");
    let enc = sig.encode();
    assert_eq!(enc, lowercased_signer(rd, sig.signer.len()));
    let again = Rrsig::decode(&enc).expect("encoded RRSIG decodes");
    let mut lower = sig.clone();
    lower.signer.make_ascii_lowercase();
    assert_eq!(again, lower);
    let _ = sig.is_valid_at(u64::from(sig.inception));
}

fn bitmap_case(rd: &[u8]) {
    if let Ok(types) = denial::decode_type_bitmap(rd) {
        assert!(types.windows(2).all(|w| w[0] < w[1]), "types sorted and distinct");
        let enc = denial::type_bitmap(&types);
        assert_eq!(types_of(&enc), types);
        assert!(enc.len() <= rd.len());
        if canonical_bitmap(rd) {
            assert_eq!(enc, rd);
        }
        assert!(canonical_bitmap(&enc));
    }
    let asked: Vec<u16> = rd.chunks_exact(2).map(|c| u16::from_be_bytes([c[0], c[1]])).collect();
    let mut want = asked.clone();
    want.sort_unstable();
    want.dedup();
    let enc = denial::type_bitmap(&asked);
    assert_eq!(types_of(&enc), want);
    assert!(canonical_bitmap(&enc));
}

fn nsec_case(rd: &[u8]) {
    let Ok((next, types)) = denial::decode_nsec(rd) else {
        return;
    };
    assert!(name::validate(next).is_ok(), "next name is a name");
    assert_eq!(next, &rd[..next.len()]);
    let enc = denial::nsec_rdata(next, &types);
    let (n2, t2) = denial::decode_nsec(&enc).expect("encoded NSEC decodes");
    assert_eq!((n2, &t2), (next, &types));
    if canonical_bitmap(&rd[next.len()..]) {
        assert_eq!(enc, rd);
    }
}

fn nsec3_case(rd: &[u8]) {
    let Ok(n) = Nsec3::decode(rd) else {
        return;
    };
    let Ok(hash) = <[u8; 20]>::try_from(&n.next_hash[..]) else {
        return;
    };
    if rd[0] != 1 {
        return;
    }
    let enc = n.params.nsec3_rdata(&hash, &n.types);
    assert_eq!(Nsec3::decode(&enc).expect("encoded NSEC3 decodes"), n);
    let bitmap_at = 5 + n.params.salt.len() + 1 + 20;
    if canonical_bitmap(&rd[bitmap_at..]) {
        assert_eq!(enc, rd);
    }
}

fn nsec3param_case(rd: &[u8]) {
    let Ok(p) = Nsec3Params::decode(rd) else {
        return;
    };
    let enc = p.nsec3param_rdata();
    if p.flags == 0 {
        assert_eq!(enc, rd);
    }
    let again = Nsec3Params::decode(&enc).expect("encoded NSEC3PARAM decodes");
    assert_eq!(again, Nsec3Params { flags: 0, ..p });
}

fn ds_case(rd: &[u8]) {
    let owner = b"\x06dnssec\x04test\x00";
    for t in [ds::SHA256, ds::SHA384, 1] {
        if let Some(out) = ds::ds_rdata(owner, rd, t) {
            assert!(key::decode_dnskey(rd).is_some());
            let d = Ds::decode(&out).expect("our DS decodes");
            assert!(d.matches(owner, rd));
        }
    }
    let Some(d) = Ds::decode(rd) else {
        assert!(rd.len() < 4);
        return;
    };
    let mut enc = d.key_tag.to_be_bytes().to_vec();
    enc.extend_from_slice(&[d.algorithm, d.digest_type]);
    enc.extend_from_slice(&d.digest);
    assert_eq!(enc, rd);
    for s in signed_sets().iter().take(1) {
        for k in &s.keys {
            let _ = d.matches(owner, k);
        }
    }
}

fn dnskey_case(rd: &[u8]) {
    let _ = key::key_tag(rd);
    let Some((flags, protocol, alg, public)) = key::decode_dnskey(rd) else {
        assert!(rd.len() < 4);
        return;
    };
    if protocol == 3 {
        assert_eq!(key::dnskey_rdata(flags, alg, public), rd);
    } else {
        assert_eq!(&key::dnskey_rdata(flags, alg, public)[4..], &rd[4..]);
    }
}

fn verify_case(data: &[u8]) {
    let [set_i, key_i, rd @ ..] = data else {
        return;
    };
    let sets = signed_sets();
    let s = &sets[usize::from(*set_i) % sets.len()];
    let k = &s.keys[usize::from(*key_i) % s.keys.len()];
    let Ok(sig) = Rrsig::decode(rd) else {
        return;
    };
    let rdatas: Vec<&[u8]> = s.rdatas.iter().map(|r| &r[..]).collect();
    let set = RrSet { owner: &s.owner, rtype: s.rtype, ttl: s.ttl, rdatas: &rdatas };
    if rrsig::verify(k, &sig, &set).is_err() {
        return;
    }
    let unsigned = |r: &Rrsig| {
        let mut r = r.clone();
        r.signer.make_ascii_lowercase();
        r.signature = Box::default();
        r
    };
    let real = s.rrsigs.iter().find(|r| unsigned(r) == unsigned(&sig));
    let real = real.unwrap_or_else(|| panic!("a signature the zone does not hold verifies: {sig:?}"));
    if sig.algorithm == 15 {
        assert_eq!(real.signature, sig.signature, "another Ed25519 signature verifies");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rd)) = data.split_first() else {
        return;
    };
    match which % 8 {
        0 => rrsig_case(rd),
        1 => bitmap_case(rd),
        2 => nsec_case(rd),
        3 => nsec3_case(rd),
        4 => nsec3param_case(rd),
        5 => ds_case(rd),
        6 => dnskey_case(rd),
        _ => verify_case(rd),
    }
});
