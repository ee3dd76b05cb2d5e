//! The cryptographic half of the pre-serve check: every signature made
//! by a key of the zone's own DNSKEY RRset must verify over the RRset it
//! covers, as it is now.
//!
//! The structural half ([`super::check_zone`]) asks whether each RRset
//! that must be signed carries a signature by one of the zone's keys that
//! is valid long enough. That passes a stale RRSIG left over changed
//! rdata (the classic incremental-signer fault) and a corrupted one; a
//! validator would find the answer bogus (RFC 4035 §5.3.3: the signature
//! must verify over the RRset as received). This half finds both.
//!
//! A signature by a key that is not in the DNSKEY RRset is not checked
//! here: an algorithm rollover adds signatures before their DNSKEY
//! (RFC 6781 §4.1.4), and validators ignore them (RFC 4035 §5.3.1). The
//! structural half already insists that one of the zone's own keys covers
//! every RRset.

use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{NodeRef, Zone};

use super::{MAX_PROBLEMS, Problem, check_zone};
use crate::key;
use crate::rrsig::{self, RrSet, Rrsig};

/// The whole pre-serve check: [`check_zone`], then
/// [`verify_signatures`] over the same nodes, at most [`MAX_PROBLEMS`]
/// problems in all.
pub fn verify_zone(zone: &Zone, owners: Option<&[Box<[u8]>]>, now: u64, min_valid: u32) -> Vec<Problem> {
    let mut problems = check_zone(zone, owners, now, min_valid);
    if problems.len() < MAX_PROBLEMS {
        let room = MAX_PROBLEMS - problems.len();
        for p in verify_signatures(zone, owners, room) {
            if !problems.iter().any(|q| q.owner == p.owner && q.rtype == p.rtype) {
                problems.push(p);
            }
        }
    }
    problems.truncate(MAX_PROBLEMS);
    problems
}

/// A zone key of the DNSKEY RRset: tag, algorithm, rdata.
type ZoneKey<'a> = (u16, u8, &'a [u8]);

/// Verifies every signature by a key of the zone's DNSKEY RRset over
/// the RRset it covers, in the whole zone or at the nodes named in
/// `owners` (lowercased); reports at most `limit` problems, one per
/// RRset. The time is not looked at here (the structural check does).
/// An unsigned zone (no DNSKEY at the apex) passes.
pub fn verify_signatures(zone: &Zone, owners: Option<&[Box<[u8]>]>, limit: usize) -> Vec<Problem> {
    match owners {
        Some(list) => verify_nodes(zone, list.iter().filter_map(|o| zone.node(o)), limit),
        None => verify_nodes(zone, zone.nodes(), limit),
    }
}

/// [`verify_signatures`] over the nodes `nodes` of `zone`: a caller may
/// split a large zone's nodes between threads.
pub fn verify_nodes<'z>(
    zone: &'z Zone,
    nodes: impl IntoIterator<Item = NodeRef<'z>>,
    limit: usize,
) -> Vec<Problem> {
    let Some(dnskeys) = zone.apex_node().and_then(|n| n.rrset(code::DNSKEY)) else {
        return Vec::new();
    };
    let keys: Vec<ZoneKey<'_>> = dnskeys
        .rdatas()
        .filter_map(|rd| {
            let (flags, _, alg, _) = key::decode_dnskey(rd)?;
            (flags & key::flags::ZONE != 0).then(|| (key::key_tag(rd), alg, rd))
        })
        .collect();
    let mut problems = Vec::new();
    for node in nodes {
        if problems.len() >= limit {
            break;
        }
        verify_node(zone.apex(), node, &keys, &mut problems);
    }
    problems.truncate(limit);
    problems
}

fn verify_node(apex: &[u8], node: NodeRef<'_>, keys: &[ZoneKey<'_>], problems: &mut Vec<Problem>) {
    let Some(sigs) = node.rrset(code::RRSIG) else { return };
    let mut report = |rtype: u16, reason: &'static str| {
        if !problems.iter().any(|p: &Problem| p.rtype == rtype && p.reason == reason) {
            problems.push(Problem { owner: name::to_text(node.name()), rtype, reason });
        }
    };
    for rd in sigs.rdatas() {
        let Ok(sig) = Rrsig::decode(rd) else {
            report(code::RRSIG, "an RRSIG's rdata cannot be read");
            continue;
        };
        let mut by =
            keys.iter().filter(|(tag, alg, _)| *tag == sig.key_tag && *alg == sig.algorithm).peekable();
        if by.peek().is_none() {
            continue;
        }
        // RFC 4035 §5.3.1: the signer's name is the zone's apex.
        // Wire-form length octets are below 64, never ASCII letters.
        if !sig.signer.eq_ignore_ascii_case(apex) {
            report(sig.type_covered, "a signature by the zone's key names another signer");
            continue;
        }
        let Some(set) = node.rrset(sig.type_covered) else { continue };
        let rdatas: Vec<&[u8]> = set.rdatas().collect();
        let set = RrSet { owner: node.name(), rtype: set.rtype, ttl: set.ttl, rdatas: &rdatas };
        if !by.any(|(_, _, dnskey)| rrsig::verify(dnskey, &sig, &set).is_ok()) {
            report(sig.type_covered, "a signature by the zone's key does not verify (stale or corrupt)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::tests::{JITTER, NOW, VALIDITY, sign_example};
    use crate::check::{Expiry, expiration_time, signature_expiry};
    use crate::key::flags;
    use crate::{Algorithm, KeyPair};
    use sixgate_dns::zone::{Change, Record};
    use sixgate_dns::zonefile;

    /// `example.` signed by `key` (NSEC or NSEC3).
    fn signed(key: &KeyPair, nsec3: bool) -> (Box<[u8]>, Vec<Record>) {
        let text = "@ 3600 SOA ns hm 1 2 3 4 300\n@ 3600 NS ns\nns 3600 A 192.0.2.1\nwww 300 A 192.0.2.2\n\
                    www 300 A 192.0.2.3\n*.w 300 TXT \"wild\"\nsub 3600 NS ns.sub\nns.sub 3600 A 192.0.2.3\n\
                    sub 3600 DS 1 13 2 0000000000000000000000000000000000000000000000000000000000000000\n";
        sign_example(text, key, key, nsec3)
    }

    fn key() -> KeyPair {
        KeyPair::generate(Algorithm::EcdsaP256Sha256, flags::ZONE | flags::SEP).unwrap()
    }

    fn www() -> Box<[u8]> {
        name::from_text("www.example.", None).unwrap()
    }

    /// The RRSIG over `www A`.
    fn www_a_sig(records: &[Record]) -> Record {
        records
            .iter()
            .find(|r| {
                r.rtype == code::RRSIG
                    && name::to_lowercase(&r.owner) == www()
                    && Rrsig::decode(&r.rdata).unwrap().type_covered == code::A
            })
            .unwrap()
            .clone()
    }

    #[test]
    fn a_well_signed_zone_verifies() {
        let k = key();
        for nsec3 in [false, true] {
            let (apex, records) = signed(&k, nsec3);
            let zone = Zone::build(&apex, records, 1).unwrap();
            assert_eq!(verify_zone(&zone, None, NOW, 86400), vec![], "nsec3: {nsec3}");
            assert_eq!(verify_zone(&zone, Some(&[www(), name::to_lowercase(&apex)]), NOW, 86400), vec![]);
        }
    }

    /// Regression (issue fault 8): the pre-serve check only looked at
    /// which key made a signature and when it expires, never at the
    /// signature itself, so a corrupted RRSIG was served.
    #[test]
    fn fault8_a_corrupted_signature_fails_the_check() {
        let k = key();
        let (apex, records) = signed(&k, false);
        let zone = Zone::build(&apex, records.clone(), 1).unwrap();
        let good = www_a_sig(&records);
        let mut bad = good.clone();
        let mut rd = bad.rdata.to_vec();
        *rd.last_mut().unwrap() ^= 1;
        bad.rdata = rd.into();
        let z2 = zone.apply(&[Change::Remove(good), Change::Add(bad)]).unwrap();
        // The structural half passes it: right key, right window.
        assert_eq!(check_zone(&z2, None, NOW, 86400), vec![]);
        for owners in [None, Some(&[www()][..])] {
            let p = verify_zone(&z2, owners, NOW, 86400);
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(
                p[0].to_string(),
                "www.example. A: a signature by the zone's key does not verify (stale or corrupt)"
            );
        }
    }

    /// Regression (issue fault 8): a signature left over rdata that
    /// changed after signing (a signer that missed a change) passed.
    #[test]
    fn fault8_a_stale_signature_over_changed_rdata_fails_the_check() {
        let k = key();
        for nsec3 in [false, true] {
            let (apex, records) = signed(&k, nsec3);
            let zone = Zone::build(&apex, records, 1).unwrap();
            let old = zonefile::parse("www 300 A 192.0.2.2\n", &apex).unwrap().remove(0);
            let new = zonefile::parse("www 300 A 192.0.2.9\n", &apex).unwrap().remove(0);
            let z2 = zone.apply(&[Change::Remove(old), Change::Add(new)]).unwrap();
            assert_eq!(check_zone(&z2, Some(&[www()]), NOW, 86400), vec![]);
            let p = verify_zone(&z2, Some(&[www()]), NOW, 86400);
            assert_eq!(p.len(), 1, "{p:?}");
            assert_eq!(p[0].rtype, code::A);
            assert!(p[0].reason.contains("does not verify"), "{p:?}");
        }
    }

    #[test]
    fn a_signature_by_a_key_outside_the_dnskey_set_is_left_to_the_structural_check() {
        let (k, other) = (key(), key());
        let (apex, records) = signed(&k, false);
        let (_, foreign) = signed(&other, false);
        let zone = Zone::build(&apex, records, 1).unwrap();
        // An algorithm rollover adds signatures before their DNSKEY; a
        // foreign signature that does not verify here is not ours to judge.
        let mut extra = www_a_sig(&foreign);
        let mut rd = extra.rdata.to_vec();
        *rd.last_mut().unwrap() ^= 1;
        extra.rdata = rd.into();
        let z2 = zone.apply(&[Change::Add(extra)]).unwrap();
        assert_eq!(verify_zone(&z2, None, NOW, 86400), vec![]);
    }

    #[test]
    fn the_earliest_expiration_and_what_expires_soon() {
        let k = key();
        let (apex, records) = signed(&k, true);
        let zone = Zone::build(&apex, records.clone(), 1).unwrap();
        let sigs = records.iter().filter(|r| r.rtype == code::RRSIG).count() as u64;
        let e = signature_expiry(&zone, NOW, 3 * 86400).unwrap();
        let last = NOW as i64 + i64::from(VALIDITY);
        assert!(e.earliest <= last && e.earliest >= last - i64::from(JITTER), "{e:?}");
        assert_eq!((e.expiring, e.signatures), (0, sigs));
        // Twelve days on, nothing re-signed: every signature expires
        // within three days, and the first one is named.
        let later = NOW + 12 * 86400;
        let Expiry { earliest, first, expiring, .. } = signature_expiry(&zone, later, 3 * 86400).unwrap();
        assert_eq!((earliest, expiring), (e.earliest, sigs));
        assert!(first.0.ends_with("example."), "{first:?}");
        // Past the expiration the time is still read right.
        assert!(signature_expiry(&zone, NOW + 20 * 86400, 0).unwrap().earliest < (NOW + 20 * 86400) as i64);
        // Unsigned: nothing to watch.
        let plain: Vec<Record> =
            records.into_iter().filter(|r| !matches!(r.rtype, code::RRSIG | code::DNSKEY)).collect();
        assert_eq!(signature_expiry(&Zone::build(&apex, plain, 1).unwrap(), NOW, 0), None);
    }

    #[test]
    fn expiration_times_wrap_in_serial_arithmetic() {
        // RFC 4034 §3.1.5: 32-bit times are read near the current time.
        let now = (1u64 << 32) + 100;
        assert_eq!(expiration_time(200, now), (1i64 << 32) + 200);
        assert_eq!(expiration_time(u32::MAX, now), (1i64 << 32) - 1);
        assert_eq!(expiration_time(50, 1000), 50);
    }
}
