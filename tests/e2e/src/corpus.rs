//! Query corpora generated from zone content.
//!
//! The corpus is built from the records a reference server actually loaded
//! (read back by AXFR), so escaped labels and wildcards arrive as exact wire
//! labels. For every zone it asks:
//! - every owner name and every empty non-terminal (the names between an
//!   owner and the apex that own nothing: below a cut, above a wildcard), a
//!   nonexistent name under each of them (so names below delegation points,
//!   below empty non-terminals and under wildcards' parents are covered),
//!   names the wildcards must synthesise (one and two labels deep), and a
//!   nonexistent name at the apex,
//! - for every DNAME: the names below it that the substitution maps onto
//!   names asked already (so a chain of DNAMEs and CNAMEs is followed to
//!   data), and the two names whose substitution is exactly 255 octets and
//!   one octet longer (YXDOMAIN, RFC 6672 §2.2),
//! - × every type of [`QTYPES`],
//! - with one EDNS variant of [`EDNS_VARIANTS`] drawn at random, random RD
//!   and CD bits, and random 0x20 case in the QNAME;
//! - plus every existing RRset with *every* EDNS variant, since size limits
//!   and truncation matter most where there is data;
//! - plus a TCP subset: every existing RRset without EDNS and with EDNS 4096
//!   and DO, and a random tenth of the rest.
//!
//! That is the [`Profile::PLAIN`] corpus. [`Profile::DNSSEC`], for signed
//! zones, sets the DO bit in every query (EDNS payloads still vary) and
//! adds the DNSSEC types to the types asked.

use std::collections::BTreeSet;

use hickory_proto::rr::Name;

use crate::craft;
use crate::differential::{Case, Transport};
use crate::normalize::{Rr, name_wire, name_wire_lower};
use crate::query::{EdnsSpec, QuerySpec};
use crate::rng::Rng;

/// The query types every name is asked for: A, AAAA, NS, CNAME, SOA, MX, TXT,
/// SRV, CAA, PTR, NAPTR, DS, DNSKEY, TLSA, SSHFP, SVCB, HTTPS, ANY, an unknown
/// type present in the zones (TYPE65280) and one present nowhere (TYPE999).
pub const QTYPES: &[u16] =
    &[1, 28, 2, 5, 6, 15, 16, 33, 257, 12, 35, 43, 48, 52, 44, 64, 65, 255, 65280, 999];

/// No EDNS, and EDNS with payload 512, 1232 and 4096, each with DO off and on.
pub const EDNS_VARIANTS: [Option<EdnsSpec>; 7] = [
    None,
    Some(EdnsSpec { payload: 512, dnssec_ok: false, version: 0 }),
    Some(EdnsSpec { payload: 512, dnssec_ok: true, version: 0 }),
    Some(EdnsSpec { payload: 1232, dnssec_ok: false, version: 0 }),
    Some(EdnsSpec { payload: 1232, dnssec_ok: true, version: 0 }),
    Some(EdnsSpec { payload: 4096, dnssec_ok: false, version: 0 }),
    Some(EdnsSpec { payload: 4096, dnssec_ok: true, version: 0 }),
];

/// The DNSSEC types a signed zone holds or answers for: RRSIG, NSEC,
/// NSEC3, NSEC3PARAM, CDS and CDNSKEY (DS and DNSKEY are in [`QTYPES`]).
pub const DNSSEC_QTYPES: &[u16] = &[46, 47, 50, 51, 59, 60];

/// EDNS with the DO bit, payload 512, 1232 and 4096.
pub const DO_VARIANTS: [Option<EdnsSpec>; 3] = [
    Some(EdnsSpec { payload: 512, dnssec_ok: true, version: 0 }),
    Some(EdnsSpec { payload: 1232, dnssec_ok: true, version: 0 }),
    Some(EdnsSpec { payload: 4096, dnssec_ok: true, version: 0 }),
];

/// What a corpus asks: the query types and the EDNS variants.
#[derive(Clone, Copy, Debug)]
pub struct Profile {
    /// Types asked at every name.
    pub qtypes: &'static [u16],
    /// More types asked at every name.
    pub extra_qtypes: &'static [u16],
    /// EDNS variants over UDP: one drawn at random per (name, type), every
    /// one for existing RRsets.
    pub edns: &'static [Option<EdnsSpec>],
    /// EDNS variants for existing RRsets over TCP.
    pub tcp_edns: &'static [Option<EdnsSpec>],
}

impl Profile {
    /// The plain corpus: [`QTYPES`] with [`EDNS_VARIANTS`].
    pub const PLAIN: Profile = Profile {
        qtypes: QTYPES,
        extra_qtypes: &[],
        edns: &EDNS_VARIANTS,
        tcp_edns: &[None, Some(EdnsSpec { payload: 4096, dnssec_ok: true, version: 0 })],
    };

    /// The corpus for signed zones: DO in every query, [`QTYPES`] and
    /// [`DNSSEC_QTYPES`].
    pub const DNSSEC: Profile = Profile {
        qtypes: QTYPES,
        extra_qtypes: DNSSEC_QTYPES,
        edns: &DO_VARIANTS,
        tcp_edns: &[
            Some(EdnsSpec { payload: 512, dnssec_ok: true, version: 0 }),
            Some(EdnsSpec { payload: 4096, dnssec_ok: true, version: 0 }),
        ],
    };
}

/// One zone's content, as loaded by the reference server.
#[derive(Clone, Debug)]
pub struct ZoneContent {
    /// The apex.
    pub apex: Name,
    /// Every record (AXFR order, closing SOA excluded).
    pub records: Vec<Rr>,
}

/// The names to ask about in one zone: owners, empty non-terminals,
/// nonexistent names, names wildcards must answer for and names below
/// DNAMEs (see the module docs). Deterministic for a given `rng` state.
pub fn query_names(zone: &ZoneContent, rng: &mut Rng) -> Vec<Name> {
    let mut seen = BTreeSet::new();
    let mut names = Vec::new();
    let mut add = |name: Name, names: &mut Vec<Name>| {
        if name_wire(&name).len() <= 255 && seen.insert(name_wire_lower(&name)) {
            names.push(name);
        }
    };
    let owners: Vec<Name> = zone.records.iter().map(|rr| rr.owner.clone()).collect();
    for owner in &owners {
        add(owner.clone(), &mut names);
    }
    // Empty non-terminals: every ancestor of an owner down to the apex.
    for owner in &owners {
        let mut ancestor = owner.base_name();
        while zone.apex.zone_of(&ancestor) && ancestor.iter().count() > zone.apex.iter().count() {
            let next = ancestor.base_name();
            add(ancestor, &mut names);
            ancestor = next;
        }
    }
    for existing in names.clone() {
        if let Ok(below) = prepend(&existing, &[format!("nx{}", rng.below(1000)).as_bytes()]) {
            add(below, &mut names);
        }
    }
    for owner in &owners {
        let labels: Vec<&[u8]> = owner.iter().collect();
        if labels.first() == Some(&&b"*"[..]) {
            let parent = owner.base_name();
            for synthesized in [
                vec![format!("w{}", rng.below(1000)).into_bytes()],
                vec![b"deeper".to_vec(), format!("w{}", rng.below(1000)).into_bytes()],
                vec![b"*".to_vec(), b"x".to_vec()],
            ] {
                let labels: Vec<&[u8]> = synthesized.iter().map(Vec::as_slice).collect();
                if let Ok(name) = prepend(&parent, &labels) {
                    add(name, &mut names);
                }
            }
        }
    }
    if let Ok(name) = prepend(&zone.apex, &[b"no-such-name"]) {
        add(name, &mut names);
    }
    for name in below_dnames(zone, &names) {
        add(name, &mut names);
    }
    names
}

/// How many names below one DNAME are mapped from names asked already.
const NAMES_PER_DNAME: usize = 6;

/// Names below the zone's DNAMEs (RFC 6672 §2.2): for each DNAME, up to
/// [`NAMES_PER_DNAME`] names that its substitution maps onto `asked` names
/// (three rounds, so that a DNAME whose target is another DNAME's owner is
/// followed too), and the names whose substitution is exactly 255 octets
/// long and one octet longer.
pub fn below_dnames(zone: &ZoneContent, asked: &[Name]) -> Vec<Name> {
    let dnames: Vec<(Name, Name)> = zone
        .records
        .iter()
        .filter(|rr| rr.rtype == 39)
        .filter_map(|rr| Some((rr.owner.clone(), name_from_wire(&rr.rdata)?)))
        .collect();
    let mut known: BTreeSet<Vec<u8>> = asked.iter().map(name_wire_lower).collect();
    let mut pool: Vec<Name> = asked.to_vec();
    let mut out = Vec::new();
    for _round in 0..3 {
        let mut fresh = Vec::new();
        for (owner, target) in &dnames {
            let mapped = pool
                .iter()
                .filter(|name| target.zone_of(name) && name.iter().count() > target.iter().count())
                .filter_map(|name| {
                    let prefix: Vec<&[u8]> =
                        name.iter().take(name.iter().count() - target.iter().count()).collect();
                    prepend(owner, &prefix).ok()
                })
                .filter(|name| !known.contains(&name_wire_lower(name)))
                .take(NAMES_PER_DNAME);
            for name in mapped.collect::<Vec<_>>() {
                known.insert(name_wire_lower(&name));
                fresh.push(name);
            }
        }
        if fresh.is_empty() {
            break;
        }
        pool.clone_from(&fresh);
        out.extend(fresh);
    }
    for (owner, target) in &dnames {
        // The substituted name is as long as the query name, less the
        // owner, plus the target (wire octets, root included once).
        let (owner_len, target_len) = (name_wire(owner).len(), name_wire(target).len());
        for substituted in [255, 256] {
            let Some(query_len) = (substituted + owner_len).checked_sub(target_len) else { continue };
            if query_len > 255 {
                continue;
            }
            let Some(labels) = query_len.checked_sub(owner_len).and_then(padding_labels) else { continue };
            let labels: Vec<&[u8]> = labels.iter().map(Vec::as_slice).collect();
            if let Ok(name) = prepend(owner, &labels) {
                out.push(name);
            }
        }
    }
    out
}

/// The uncompressed wire name `bytes` (a DNAME's RDATA), if it is one.
pub fn name_from_wire(bytes: &[u8]) -> Option<Name> {
    use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
    let mut decoder = BinDecoder::new(bytes);
    let name = Name::read(&mut decoder).ok()?;
    decoder.is_empty().then_some(name)
}

/// Labels that add exactly `octets` wire octets to a name (each label
/// costs its length plus one), or `None` where no labels can (0 or 1).
fn padding_labels(octets: usize) -> Option<Vec<Vec<u8>>> {
    if octets < 2 {
        return None;
    }
    let mut labels = Vec::new();
    let mut left = octets;
    while left > 0 {
        // Never leave a single octet, which no label can fill.
        let take = match left {
            0..=64 => left,
            65 => 63,
            _ => 64,
        };
        labels.push(vec![b'l'; take - 1]);
        left -= take;
    }
    Some(labels)
}

/// `labels` (leftmost first) prepended to `name`.
pub fn prepend(name: &Name, labels: &[&[u8]]) -> anyhow::Result<Name> {
    let mut all: Vec<&[u8]> = labels.to_vec();
    all.extend(name.iter());
    Ok(Name::from_labels(all)?)
}

/// `name` with random 0x20 case.
pub fn random_case(name: &Name, rng: &mut Rng) -> Name {
    let labels: Vec<Vec<u8>> = name.iter().map(|label| rng.randomize_case(label)).collect();
    Name::from_labels(labels.iter().map(Vec::as_slice)).unwrap_or_else(|_| name.clone())
}

/// Builds the plain corpus for `zones` (see the module docs).
pub fn build(zones: &[ZoneContent], rng: &mut Rng) -> Vec<Case> {
    build_with(zones, rng, &Profile::PLAIN)
}

/// Builds the corpus of `profile` for `zones` (see the module docs).
pub fn build_with(zones: &[ZoneContent], rng: &mut Rng, profile: &Profile) -> Vec<Case> {
    let mut cases = Vec::new();
    let make = |name: &Name, qtype: u16, edns: Option<EdnsSpec>, rng: &mut Rng| {
        let mut spec = QuerySpec::new(random_case(name, rng), qtype)
            .with_id(rng.u16())
            .with_edns(edns)
            .with_rd(rng.chance(50));
        spec.cd = rng.chance(10);
        spec
    };
    for zone in zones {
        for name in query_names(zone, rng) {
            for &qtype in profile.qtypes.iter().chain(profile.extra_qtypes) {
                let edns = profile.edns.get(rng.below(profile.edns.len())).copied().flatten();
                let spec = make(&name, qtype, edns, rng);
                let transport = if rng.chance(10) { Transport::Tcp } else { Transport::Udp };
                cases.push(Case::query(spec, transport));
            }
        }
        let mut rrsets = BTreeSet::new();
        for rr in &zone.records {
            if !rrsets.insert((name_wire_lower(&rr.owner), rr.rtype)) {
                continue;
            }
            for &edns in profile.edns {
                let spec = make(&rr.owner, rr.rtype, edns, rng);
                cases.push(Case::query(spec, Transport::Udp));
            }
            for &edns in profile.tcp_edns {
                let spec = make(&rr.owner, rr.rtype, edns, rng);
                cases.push(Case::query(spec, Transport::Tcp));
            }
        }
    }
    cases
}

/// The types a validating resolver is asked at each name of
/// [`validation_sample`]: the common ones, one present nowhere (NODATA or
/// NXDOMAIN proofs) and DS (proofs at and above cuts).
pub const VALIDATION_QTYPES: &[u16] = &[1, 28, 16, 15, 43, 33, 65, 999];

/// Queries for a validating resolver in front of the server of `zones`:
/// every query name of [`query_names`] with two of [`VALIDATION_QTYPES`]
/// drawn at random (RD and DO set; the resolver sets its own flags
/// upstream). The caller keeps only those the server answers
/// authoritatively in full (see `tests/differential.rs`).
pub fn validation_sample(zones: &[ZoneContent], rng: &mut Rng) -> Vec<QuerySpec> {
    let mut sample = Vec::new();
    for zone in zones {
        for name in query_names(zone, rng) {
            let first = rng.below(VALIDATION_QTYPES.len());
            let second = (first + 1 + rng.below(VALIDATION_QTYPES.len() - 1)) % VALIDATION_QTYPES.len();
            for index in [first, second] {
                let Some(&qtype) = VALIDATION_QTYPES.get(index) else { continue };
                let spec = QuerySpec::new(name.clone(), qtype)
                    .with_id(rng.u16())
                    .with_rd(true)
                    .with_edns(Some(EdnsSpec { payload: 1232, dnssec_ok: true, version: 0 }));
                sample.push(spec);
            }
        }
    }
    sample
}

/// Hand-written cases around `zone` (an apex served by both servers, dotted,
/// no escapes): EDNS versions and sizes, options and flag bits, opcodes,
/// names in no zone, other classes, meta and odd types, odd names, and the
/// crafted malformed messages on which Knot behaves as sixgate must
/// ([`crate::craft::Expect::knot_agrees`]).
pub fn handwritten(zone: &str) -> Vec<Case> {
    let www = format!("www.{zone}");
    let mut cases = Vec::new();
    let mut add = |label: String, bytes: Vec<u8>, transport: Transport| {
        cases.push(Case::crafted(label, bytes, transport));
    };
    let mut id = 0x1000u16;
    let mut next_id = || {
        id = id.wrapping_add(1);
        id
    };
    for transport in [Transport::Udp, Transport::Tcp] {
        for (version, flags) in [(1, 0), (1, 0x8000), (255, 0)] {
            let edns = craft::opt(1232, 0, version, flags, &[]);
            add(
                format!("EDNS version {version} flags {flags:#x} (BADVERS)"),
                craft::query(next_id(), 0, &www, 1, Some(&edns)),
                transport,
            );
        }
        for (name, qtype) in [("nowhere.invalid", 1), ("test", 6), ("", 2), ("example", 1)] {
            add(
                format!("{name}. type {qtype}: in no zone (REFUSED)"),
                craft::query(next_id(), craft::RD, name, qtype, None),
                transport,
            );
        }
    }
    for opcode in [1u16, 2, 3, 6, 7, 15] {
        add(
            format!("opcode {opcode} with a normal question"),
            craft::query(next_id(), opcode << 11, &www, 1, None),
            Transport::Udp,
        );
    }
    for (name, qtype, qclass) in [
        ("version.bind", 16, 3),
        ("hostname.bind", 16, 3),
        ("id.server", 16, 3),
        ("version.server", 16, 3),
        (zone, 6, 3),
        (zone, 6, 4),
        (zone, 6, 254),
        (zone, 6, 255),
        (zone, 6, 0),
        (&www, 1, 65535),
    ] {
        let mut bytes = craft::header(next_id(), 0, [1, 0, 0, 0]);
        bytes.extend_from_slice(&craft::question(&craft::name(name), qtype, qclass));
        add(format!("{name} class {qclass} type {qtype}"), bytes, Transport::Udp);
    }
    for payload in [0u16, 100, 511, 512, 513, 65535] {
        let edns = craft::opt(payload, 0, 0, 0, &[]);
        add(
            format!("{zone} ANY with EDNS payload {payload}"),
            craft::query(next_id(), 0, zone, 255, Some(&edns)),
            Transport::Udp,
        );
        let bytes = craft::query(next_id(), 0, &format!("bigtxt.{zone}"), 16, Some(&edns));
        add(format!("bigtxt TXT with EDNS payload {payload}"), bytes, Transport::Udp);
    }
    for (label, options, flags) in [
        ("unknown option 65001", vec![(65001u16, &b"hello"[..])], 0u16),
        ("NSID request", vec![(3, &b""[..])], 0),
        ("client cookie", vec![(10, &b"\x01\x02\x03\x04\x05\x06\x07\x08"[..])], 0),
        ("padding option", vec![(12, &[0u8; 16][..])], 0),
        ("Z flag bits set", vec![], 0x4001),
        ("DO and Z bits set", vec![], 0xffff),
    ] {
        let edns = craft::opt(1232, 0, 0, flags, &options);
        add(
            format!("www A with EDNS {label}"),
            craft::query(next_id(), 0, &www, 1, Some(&edns)),
            Transport::Udp,
        );
    }
    for (label, flags) in [
        ("AD", 0x0020u16),
        ("CD", 0x0010),
        ("Z", 0x0040),
        ("RA", 0x0080),
        ("AA", 0x0400),
        ("TC", 0x0200),
        ("every bit but QR", 0x07f0),
    ] {
        add(
            format!("www A with {label} set in the query"),
            craft::query(next_id(), flags, &www, 1, None),
            Transport::Udp,
        );
    }
    for qtype in [0u16, 41, 46, 47, 50, 249, 250, 253, 254, 65535] {
        add(format!("www type {qtype}"), craft::query(next_id(), 0, &www, qtype, None), Transport::Udp);
    }
    let mut long = String::new();
    while long.len() + zone.len() + 2 + 63 <= 253 {
        long.push_str(&"z".repeat(62));
        long.push('.');
    }
    let filler = 253 - (long.len() + zone.len() + 1);
    if filler > 0 {
        long.push_str(&"q".repeat(filler.min(63)));
        long.push('.');
    }
    long.push_str(zone);
    add(
        format!("{}-byte QNAME under the zone", long.len() + 2),
        craft::query(next_id(), 0, &long, 1, None),
        Transport::Udp,
    );
    for name in [format!("WWW.{}", zone.to_uppercase()), format!("*.{zone}")] {
        add(format!("{name} A"), craft::query(next_id(), 0, &name, 1, None), Transport::Udp);
    }
    for labels in [&[&b"\x00"[..]][..], &[&b"\xff\x80"[..], &b"a b"[..]][..]] {
        let mut name_wire = Vec::new();
        for label in labels {
            name_wire.push(label.len() as u8);
            name_wire.extend_from_slice(label);
        }
        name_wire.extend_from_slice(&craft::name(zone));
        let mut bytes = craft::header(next_id(), 0, [1, 0, 0, 0]);
        bytes.extend_from_slice(&craft::question(&name_wire, 1, 1));
        add(format!("binary labels {labels:?} under {zone}"), bytes, Transport::Udp);
    }
    // A query carrying a record in the answer section (allowed by RFC 1035,
    // meaningless), and one whose OPT owner is not the root.
    let mut with_answer = craft::header(next_id(), 0, [1, 1, 0, 0]);
    with_answer.extend_from_slice(&craft::question(&craft::name(&www), 1, 1));
    with_answer.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 9]);
    add("query with a record in the answer section".into(), with_answer, Transport::Udp);
    let mut opt_owner = craft::header(next_id(), 0, [1, 0, 0, 1]);
    opt_owner.extend_from_slice(&craft::question(&craft::name(&www), 1, 1));
    opt_owner.extend_from_slice(&[0xc0, 12]);
    opt_owner.extend_from_slice(craft::opt(1232, 0, 0, 0, &[]).get(1..).unwrap_or_default());
    add("OPT owner is not the root".into(), opt_owner, Transport::Udp);

    for crafted in craft::malformed_cases(&www) {
        if crafted.expect.knot_agrees() {
            add(format!("malformed: {}", crafted.label), crafted.bytes, Transport::UdpQuick);
        }
    }
    cases
}

/// Hand-written cases for a signed `zone` (dotted, no escapes), all with
/// the DO bit: EDNS payloads below, at and above the limits for ANY at the
/// apex and a large TXT RRset, where signatures decide what fits.
pub fn handwritten_dnssec(zone: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut id = 0x2000u16;
    for payload in [0u16, 100, 511, 512, 513, 1232, 1400, 65535] {
        let edns = craft::opt(payload, 0, 0, 0x8000, &[]);
        for (name, qtype, what) in [
            (zone.to_owned(), 255, "ANY"),
            (format!("bigtxt.{zone}"), 16, "TXT"),
            (zone.to_owned(), 48, "DNSKEY"),
        ] {
            id = id.wrapping_add(1);
            cases.push(Case::crafted(
                format!("{name} {what} with DO and EDNS payload {payload}"),
                craft::query(id, 0, &name, qtype, Some(&edns)),
                Transport::Udp,
            ));
        }
    }
    cases
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rr(owner: &str, rtype: u16) -> Rr {
        Rr {
            owner: crate::query::parse_name(owner).unwrap(),
            rtype,
            class: 1,
            ttl: 60,
            rdata: vec![192, 0, 2, 1],
        }
    }

    fn zone() -> ZoneContent {
        ZoneContent {
            apex: crate::query::parse_name("example.test.").unwrap(),
            records: vec![
                rr("example.test.", 6),
                rr("www.example.test.", 1),
                rr("www.example.test.", 28),
                rr("*.wild.example.test.", 1),
            ],
        }
    }

    #[test]
    fn names_cover_owners_nonexistent_and_wildcard_expansions() {
        let names = query_names(&zone(), &mut Rng::new(1));
        let text: Vec<String> = names.iter().map(|n| n.to_ascii()).collect();
        assert!(text.contains(&"www.example.test.".to_owned()), "{text:?}");
        assert!(text.contains(&"*.wild.example.test.".to_owned()));
        assert!(text.contains(&"*.x.wild.example.test.".to_owned()), "{text:?}");
        assert!(text.iter().any(|t| t.starts_with("deeper.w")), "{text:?}");
        assert!(text.contains(&"no-such-name.example.test.".to_owned()));
        // Owners are not repeated.
        assert_eq!(text.iter().filter(|t| *t == "www.example.test.").count(), 1);
    }

    fn dname(owner: &str, target: &str) -> Rr {
        let target = crate::query::parse_name(target).unwrap();
        Rr { rdata: name_wire(&target), ..rr(owner, 39) }
    }

    /// The shapes of `testdata/zones/shapes.test.zone` that the corpus must
    /// reach: empty non-terminals above a wildcard and beside it, names
    /// below a DNAME chain that lead to data, substitutions at the limit.
    #[test]
    fn names_cover_empty_non_terminals_and_names_below_dnames() {
        let long = format!("{}.{}.{}.shapes.test.", "a".repeat(60), "b".repeat(60), "c".repeat(60));
        let zone = ZoneContent {
            apex: crate::query::parse_name("shapes.test.").unwrap(),
            records: vec![
                rr("shapes.test.", 6),
                rr("*.w.ents.shapes.test.", 1),
                rr("deep.e.w.ents.shapes.test.", 1),
                dname("d1.shapes.test.", "d2.shapes.test."),
                dname("d2.shapes.test.", "target.shapes.test."),
                rr("www.target.shapes.test.", 1),
                dname("dlong.shapes.test.", &long),
            ],
        };
        let names = query_names(&zone, &mut Rng::new(3));
        let text: Vec<String> = names.iter().map(|n| n.to_ascii().to_ascii_lowercase()).collect();
        for wanted in [
            "ents.shapes.test.",
            "w.ents.shapes.test.",
            "e.w.ents.shapes.test.",
            "www.d2.shapes.test.",
            "www.d1.shapes.test.",
        ] {
            assert!(text.contains(&wanted.to_owned()), "{wanted} missing from {text:?}");
        }
        // Nonexistent names below the empty non-terminals, and wildcard
        // expansions below the empty non-terminal that is the parent.
        assert!(
            text.iter().any(|t| t.starts_with("nx") && t.ends_with(".e.w.ents.shapes.test.")),
            "{text:?}"
        );
        assert!(text.iter().any(|t| t.starts_with("deeper.w") && t.ends_with(".w.ents.shapes.test.")));
        // Below dlong: query names whose substitution is 255 and 256 octets.
        let target_len = name_wire(&crate::query::parse_name(&long).unwrap()).len();
        let owner_len = "dlong.shapes.test.".len() + 1;
        let below: Vec<usize> = names
            .iter()
            .filter(|n| n.to_ascii().ends_with(".dlong.shapes.test."))
            .map(|n| name_wire(n).len() - owner_len + target_len)
            .collect();
        assert!(below.contains(&255) && below.contains(&256), "{below:?}");
    }

    #[test]
    fn padding_adds_exactly_the_octets_asked() {
        for octets in 2..=300 {
            let labels = padding_labels(octets).unwrap();
            assert_eq!(labels.iter().map(|l| l.len() + 1).sum::<usize>(), octets);
            assert!(labels.iter().all(|l| (1..=63).contains(&l.len())), "{octets}");
        }
        assert!(padding_labels(1).is_none() && padding_labels(0).is_none());
    }

    #[test]
    fn corpus_is_deterministic_for_a_seed_and_has_every_qtype() {
        let a = build(&[zone()], &mut Rng::new(9));
        let b = build(&[zone()], &mut Rng::new(9));
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.bytes == y.bytes));
        for qtype in QTYPES {
            assert!(a.iter().any(|c| c.spec.as_ref().is_some_and(|s| s.qtype == *qtype)));
        }
        assert!(a.iter().any(|c| c.transport == Transport::Tcp));
    }
}
