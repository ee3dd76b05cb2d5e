//! Checks against a real signer: zones signed by ldns-signzone
//! (`testdata/signed/make.sh`) verify with [`rrsig::verify`], and what
//! [`rrsig::sign`] makes verifies too.

use std::collections::BTreeMap;

use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::Record;
use sixgate_dns::zonefile;

use crate::denial::{Nsec3, Nsec3Params, decode_nsec};
use crate::key::{self, flags};
use crate::rrsig::{self, RrSet, Rrsig};
use crate::{Algorithm, KeyPair};

/// Owner, type, rdata.
type Rr = (Box<[u8]>, u16, Box<[u8]>);
type Sets = BTreeMap<(Vec<u8>, u16), (u32, Vec<Vec<u8>>)>;

fn load(file: &str) -> (Box<[u8]>, Vec<Record>) {
    let path = format!("{}/../../testdata/signed/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).unwrap();
    let apex = name::from_text("example.", None).unwrap();
    let records = zonefile::parse(&text, &apex).unwrap();
    (apex, records)
}

fn rrsets(records: &[Record]) -> Sets {
    let mut sets = Sets::new();
    for r in records.iter().filter(|r| r.rtype != code::RRSIG) {
        let e = sets.entry((name::to_lowercase(&r.owner).to_vec(), r.rtype)).or_insert((r.ttl, Vec::new()));
        e.1.push(r.rdata.to_vec());
    }
    sets
}

/// Verifies every RRSIG in `records`; returns how many.
fn verify_all(records: &[Record], dnskey: &[u8]) -> usize {
    let sets = rrsets(records);
    let mut n = 0;
    for r in records.iter().filter(|r| r.rtype == code::RRSIG) {
        let sig = Rrsig::decode(&r.rdata).unwrap();
        let (ttl, rdatas) = &sets[&(name::to_lowercase(&r.owner).to_vec(), sig.type_covered)];
        let refs: Vec<&[u8]> = rdatas.iter().map(|v| &v[..]).collect();
        assert_eq!(sig.original_ttl, *ttl);
        let set = RrSet { owner: &r.owner, rtype: sig.type_covered, ttl: *ttl, rdatas: &refs };
        rrsig::verify(dnskey, &sig, &set)
            .unwrap_or_else(|e| panic!("{} {}: {e}", name::to_text(&r.owner), sig.type_covered));
        n += 1;
    }
    n
}

#[test]
fn ldns_signed_zones_verify() {
    for file in [
        "example.ECDSAP256SHA256.signed",
        "example.ECDSAP256SHA256.nsec3.signed",
        "example.ED25519.signed",
        "example.ED25519.nsec3.signed",
    ] {
        let (apex, records) = load(file);
        let dnskey = records.iter().find(|r| r.rtype == code::DNSKEY).unwrap().rdata.clone();
        let n = verify_all(&records, &dnskey);
        assert!(n >= 15, "{file}: {n} signatures");
        // A tampered record no longer verifies.
        let mut bad = records.clone();
        let txt = bad.iter_mut().find(|r| r.rtype == code::TXT).unwrap();
        txt.rdata = b"\x04evil".to_vec().into();
        let sets = rrsets(&bad);
        let sig = bad
            .iter()
            .filter(|r| r.rtype == code::RRSIG)
            .map(|r| (r, Rrsig::decode(&r.rdata).unwrap()))
            .find(|(r, s)| s.type_covered == code::TXT && r.owner.eq_ignore_ascii_case(&txt_owner(&bad)))
            .unwrap();
        let (ttl, rdatas) = &sets[&(name::to_lowercase(&sig.0.owner).to_vec(), code::TXT)];
        let refs: Vec<&[u8]> = rdatas.iter().map(|v| &v[..]).collect();
        let set = RrSet { owner: &sig.0.owner, rtype: code::TXT, ttl: *ttl, rdatas: &refs };
        assert_eq!(rrsig::verify(&dnskey, &sig.1, &set), Err(rrsig::VerifyError::Mismatch), "{file}");
        // The denial records decode.
        for r in &records {
            match r.rtype {
                code::NSEC => assert!(decode_nsec(&r.rdata).is_ok()),
                code::NSEC3 => assert!(Nsec3::decode(&r.rdata).is_ok()),
                code::NSEC3PARAM => {
                    assert_eq!(Nsec3Params::decode(&r.rdata).unwrap(), Nsec3Params::default())
                }
                _ => {}
            }
        }
        assert_eq!(&apex[..], &name::from_text("example.", None).unwrap()[..]);
    }
}

fn txt_owner(records: &[Record]) -> Box<[u8]> {
    records.iter().find(|r| r.rtype == code::TXT && r.rdata[..] == b"\x04evil"[..]).unwrap().owner.clone()
}

#[test]
fn own_signatures_verify_and_keys_reload() {
    for alg in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
        let (_, records) = load("example.zone");
        let k = KeyPair::generate(alg, flags::ZONE | flags::SEP).unwrap();
        let again = KeyPair::from_pkcs8(alg, k.flags(), k.pkcs8()).unwrap();
        assert_eq!(again.dnskey_rdata(), k.dnskey_rdata());
        let dnskey = k.dnskey_rdata();
        let tag = key::key_tag(&dnskey);
        let apex = name::from_text("example.", None).unwrap();
        let mut scratch = Vec::new();
        let mut signed = records.clone();
        for ((owner, rtype), (ttl, rdatas)) in rrsets(&records) {
            let refs: Vec<&[u8]> = rdatas.iter().map(|v| &v[..]).collect();
            // Sign the original-case owner, as served.
            let shown = records.iter().find(|r| name::to_lowercase(&r.owner)[..] == owner[..]).unwrap();
            let set = RrSet { owner: &shown.owner, rtype, ttl, rdatas: &refs };
            let rd =
                rrsig::sign(&again, tag, &apex, &set, 1_700_000_000, 1_800_000_000, &mut scratch).unwrap();
            signed.push(Record { owner: shown.owner.clone(), rtype: code::RRSIG, ttl, rdata: rd.into() });
        }
        assert_eq!(verify_all(&signed, &dnskey), rrsets(&records).len());
        // A key of the other algorithm does not load these bytes.
        let other = if alg == Algorithm::Ed25519 { Algorithm::EcdsaP256Sha256 } else { Algorithm::Ed25519 };
        assert!(KeyPair::from_pkcs8(other, 0, k.pkcs8()).is_err());
        assert!(!format!("{k:?}").contains("pkcs8"));
    }
}

#[test]
fn validity_windows_use_serial_arithmetic() {
    let (_, records) = load("example.ED25519.signed");
    let sig = Rrsig::decode(&records.iter().find(|r| r.rtype == code::RRSIG).unwrap().rdata).unwrap();
    assert!(sig.is_valid_at(u64::from(sig.inception)));
    assert!(sig.is_valid_at(u64::from(sig.expiration)));
    assert!(!sig.is_valid_at(u64::from(sig.inception) - 1));
    assert!(!sig.is_valid_at(u64::from(sig.expiration) + 1));
    assert_eq!(Rrsig::decode(&sig.encode()).unwrap(), sig);
    assert!(Rrsig::decode(&[0; 17]).is_err());
}

/// The chain and the set of signed RRsets sixgate makes equal those of
/// ldns-signzone for the same zone, NSEC and NSEC3 alike.
#[test]
fn whole_zone_signing_matches_ldns_chain() {
    for (file, nsec3) in [
        ("example.ECDSAP256SHA256.signed", None),
        ("example.ECDSAP256SHA256.nsec3.signed", Some(Nsec3Params::default())),
    ] {
        let (apex, source) = load("example.zone");
        let (_, theirs) = load(file);
        let key = KeyPair::generate(Algorithm::EcdsaP256Sha256, flags::ZONE | flags::SEP).unwrap();
        let dnskey = key.dnskey_rdata();
        let mut unsigned = source.clone();
        unsigned.push(Record {
            owner: apex.clone(),
            rtype: code::DNSKEY,
            ttl: 3600,
            rdata: dnskey.clone().into(),
        });
        if let Some(p) = &nsec3 {
            unsigned.push(Record {
                owner: apex.clone(),
                rtype: code::NSEC3PARAM,
                ttl: 0,
                rdata: p.nsec3param_rdata().into(),
            });
        }
        let signer = crate::sign::Signer {
            apex: apex.clone(),
            keys: vec![crate::sign::ActiveKey {
                key: &key,
                tag: key.key_tag(),
                signs_keys: true,
                signs_zone: true,
            }],
            nsec3,
            now: 1_800_000_000,
            inception_offset: 3600,
            validity: 14 * 86400,
            jitter: 86400,
        };
        let ours = signer.sign_zone(&unsigned, 2).unwrap().records;
        let mut all = unsigned.clone();
        all.extend(ours.iter().cloned());
        assert_eq!(verify_all(&all, &dnskey), rrsets(&all).len(), "{file}: every RRset signed once");
        let chain = |rs: &[Record]| {
            let mut v: Vec<Rr> = rs
                .iter()
                .filter(|r| matches!(r.rtype, code::NSEC | code::NSEC3))
                .map(|r| (name::to_lowercase(&r.owner), r.rtype, r.rdata.to_ascii_lowercase().into()))
                .collect();
            v.sort();
            v
        };
        assert_eq!(chain(&ours), chain(&theirs), "{file}");
        let covered = |rs: &[Record]| {
            let mut v: Vec<(Box<[u8]>, u16)> = rs
                .iter()
                .filter(|r| r.rtype == code::RRSIG)
                .map(|r| (name::to_lowercase(&r.owner), Rrsig::decode(&r.rdata).unwrap().type_covered))
                .collect();
            v.sort();
            v
        };
        assert_eq!(covered(&ours), covered(&theirs), "{file}");
        // Expirations are spread within the jitter window.
        for r in ours.iter().filter(|r| r.rtype == code::RRSIG) {
            let s = Rrsig::decode(&r.rdata).unwrap();
            assert!(s.expiration <= 1_800_000_000 + 14 * 86400 && s.expiration >= 1_800_000_000 + 13 * 86400);
            assert_eq!(s.inception, 1_800_000_000 - 3600);
        }
    }
}
