//! What a response is, for rate limiting: its class and the name its
//! bucket is keyed on.
//!
//! Classes follow Knot's `mod-rrl` and NSD's `rrl`: a flood of one kind
//! of answer does not eat the budget of another, and the kinds that an
//! attacker can vary at will (random names that do not exist, random
//! names under a wildcard or a delegation) are keyed on a name the zone
//! fixes, not on the query name, so random subdomains share one bucket.

use sixgate_dns::Catalog;
use sixgate_dns::message::{HEADER_LEN, Summary, flags, rcode};
use sixgate_dns::name::{self, NameBuf};

/// The kind of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Class {
    /// Records for a name that exists in the zone; keyed on that name.
    Answer,
    /// Records for a name that does not exist as a node: synthesized from
    /// a wildcard (RFC 4592) or a DNAME; keyed on the zone.
    Wildcard,
    /// No records of the type (NODATA, RFC 2308 §2.2); keyed on the name
    /// if it exists, else on the zone.
    Nodata,
    /// The name does not exist (RFC 2308 §2.1); keyed on the zone.
    Nxdomain,
    /// A referral to a child zone (RFC 1034 §4.3.2 step 3b); keyed on the
    /// delegation point.
    Referral,
    /// Any other rcode (REFUSED for names we do not serve, FORMERR,
    /// NOTIMP, ...); keyed on the zone, or the root when there is none.
    Error,
}

/// Every class, in the order of the metrics.
pub const CLASSES: [Class; 6] =
    [Class::Answer, Class::Wildcard, Class::Nodata, Class::Nxdomain, Class::Referral, Class::Error];

impl Class {
    /// The lowercase name used in metrics and logs.
    pub fn name(self) -> &'static str {
        match self {
            Class::Answer => "answer",
            Class::Wildcard => "wildcard",
            Class::Nodata => "nodata",
            Class::Nxdomain => "nxdomain",
            Class::Referral => "referral",
            Class::Error => "error",
        }
    }

    /// The position in [`CLASSES`].
    pub(crate) fn index(self) -> usize {
        CLASSES.iter().position(|c| *c == self).unwrap_or(0)
    }
}

const ROOT: &[u8] = &[0];

/// Classifies `response`, read with its summary `s`; `qname` is filled
/// with the lowercased question name. Returns the class and the key name
/// (lowercased wire form), which borrows from `qname` or the catalog.
pub(crate) fn classify<'a>(
    catalog: &'a Catalog,
    response: &[u8],
    s: &Summary,
    qname: &'a mut NameBuf,
) -> (Class, &'a [u8]) {
    let Some(wire) = response.get(HEADER_LEN..s.qname_end).filter(|w| !w.is_empty()) else {
        return (Class::Error, ROOT);
    };
    qname.set(wire);
    qname.make_lowercase();
    let qname: &'a NameBuf = qname;
    let q = qname.as_slice();
    let zone = catalog.find(q);
    let apex = zone.map_or(ROOT, |z| z.apex());
    let exists = || zone.is_some_and(|z| z.node(q).is_some());
    match s.rcode {
        rcode::NOERROR if s.answers > 0 => {
            if exists() {
                (Class::Answer, q)
            } else {
                (Class::Wildcard, apex)
            }
        }
        // An authoritative server's referral is the only NOERROR without
        // AA and answers that has records in authority (RFC 1034 §4.3.2
        // step 3b; RFC 1035 §4.1.1).
        rcode::NOERROR if s.flags & flags::AA == 0 && s.authority > 0 => {
            let cut = zone.and_then(|z| {
                let mut n = q;
                loop {
                    if let Some(node) = z.node(n)
                        && node.facts().is_delegation()
                    {
                        return Some(node.key());
                    }
                    n = name::parent(n).filter(|p| p.len() > z.apex().len())?;
                }
            });
            (Class::Referral, cut.unwrap_or(apex))
        }
        rcode::NOERROR => {
            if exists() {
                (Class::Nodata, q)
            } else {
                (Class::Nodata, apex)
            }
        }
        rcode::NXDOMAIN => (Class::Nxdomain, apex),
        _ => (Class::Error, apex),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sixgate_dns::{Limits, Transport, Zone, respond, zonefile};

    use super::*;

    const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n\
@ NS ns1\nns1 A 192.0.2.53\nwww A 192.0.2.1\n*.wild A 192.0.2.9\nchild NS ns.child\nns.child A 192.0.2.7\n";

    fn catalog() -> Catalog {
        let apex = name::from_text("example.test.", None).unwrap();
        let zone = Zone::build(&apex, zonefile::parse(ZONE, &apex).unwrap(), 7).unwrap();
        Catalog::new().with_zone(Arc::new(zone))
    }

    fn query(qname: &str, qtype: u16, qclass: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(&name::from_text(qname, None).unwrap());
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&qclass.to_be_bytes());
        q
    }

    /// The class and key name of sixgate's own response to a query.
    fn class_of(cat: &Catalog, qname: &str, qtype: u16, qclass: u16) -> (Class, String) {
        let mut out = Vec::new();
        respond(
            cat,
            &query(qname, qtype, qclass),
            &mut out,
            Transport::Udp,
            &Limits { udp_payload: 1232, ..Limits::default() },
        );
        let s = Summary::of(&out).unwrap();
        let mut buf = NameBuf::new();
        let (class, key) = classify(cat, &out, &s, &mut buf);
        (class, name::to_text(key))
    }

    #[test]
    fn real_responses_are_classified_and_keyed_on_a_name_the_zone_fixes() {
        let cat = catalog();
        let cases = [
            ("WwW.example.test.", 1, 1, Class::Answer, "www.example.test."),
            ("www.example.test.", 28, 1, Class::Nodata, "www.example.test."),
            // Random names cannot dodge the limit: each class keys them
            // on the zone or the delegation.
            ("x1.wild.example.test.", 1, 1, Class::Wildcard, "example.test."),
            ("x2.wild.example.test.", 28, 1, Class::Nodata, "example.test."),
            ("random-123.example.test.", 1, 1, Class::Nxdomain, "example.test."),
            ("a.b.child.example.test.", 1, 1, Class::Referral, "child.example.test."),
            ("child.example.test.", 1, 1, Class::Referral, "child.example.test."),
            ("other.test.", 1, 1, Class::Error, "."),
            ("www.example.test.", 1, 3, Class::Error, "example.test."),
        ];
        for (qname, qtype, qclass, class, key) in cases {
            assert_eq!(class_of(&cat, qname, qtype, qclass), (class, key.to_string()), "{qname} {qtype}");
        }
    }

    #[test]
    fn a_response_without_a_question_is_an_error_on_the_root() {
        let cat = catalog();
        let mut out = Vec::new();
        let header = [0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        respond(&cat, &header, &mut out, Transport::Udp, &Limits { udp_payload: 1232, ..Limits::default() });
        let s = Summary::of(&out).unwrap();
        let mut buf = NameBuf::new();
        assert_eq!(classify(&cat, &out, &s, &mut buf), (Class::Error, ROOT));
    }

    #[test]
    fn every_class_has_its_own_index() {
        for (i, c) in CLASSES.iter().enumerate() {
            assert_eq!(c.index(), i, "{}", c.name());
        }
    }
}
