//! Comparing two servers' responses to the same query.
//!
//! What must match, and how:
//! - "no response" against a response;
//! - the ID and every header bit: QR, OPCODE, AA, TC, RD, RA, Z, AD, CD;
//! - the RCODE, extended by OPT;
//! - the question section exactly, case included (RFC 1035 §7.3: the answer
//!   echoes the question as asked, which is what 0x20 resolvers check);
//! - answer, authority and additional as multisets of RRsets: owner names
//!   compared without case (RFC 4343), then type, class, TTL, RDATA bytes;
//!   order between and inside RRsets is free (RFC 2181 §5); names in RDATA
//!   of the RFC 1035 types are compared without case, because their case
//!   depends on where compression pointers land (see [`crate::normalize`]);
//!   all other RDATA is compared byte for byte;
//! - OPT: present or absent, version, DO, other flags, payload size, extended
//!   RCODE and options;
//! - bytes after the last record.
//!
//! A message that does not parse is compared byte for byte.

use std::collections::BTreeMap;
use std::fmt;

use crate::normalize::{Opt, Response, Rr, hex, name_wire_lower, rdata_text, type_name};

/// Which part of a response differs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    /// One side answered, the other did not.
    Presence,
    /// A message did not parse.
    Unparsable,
    /// The message ID.
    Id,
    /// Header flag bits or OPCODE.
    Flags,
    /// The RCODE, extended RCODE included.
    Rcode,
    /// The question section.
    Question,
    /// The answer section.
    Answer,
    /// The authority section.
    Authority,
    /// The additional section (OPT excluded).
    Additional,
    /// The OPT record.
    Opt,
    /// Bytes after the last record.
    Trailing,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Presence => "presence",
            Self::Unparsable => "unparsable",
            Self::Id => "id",
            Self::Flags => "flags",
            Self::Rcode => "rcode",
            Self::Question => "question",
            Self::Answer => "answer",
            Self::Authority => "authority",
            Self::Additional => "additional",
            Self::Opt => "opt",
            Self::Trailing => "trailing",
        };
        f.write_str(name)
    }
}

/// One difference, with a human-readable explanation naming both sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// Where it is.
    pub section: Section,
    /// What kind of difference, without the specifics of this response, so
    /// reports can group alike differences: e.g. `flags differ in cd`,
    /// `rcode NOERROR/NXDOMAIN`, `answer TXT only in knot`.
    pub kind: String,
    /// What it is, e.g. `flags: knot=[qr aa] sixgate=[qr]`.
    pub detail: String,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.section, self.detail)
    }
}

/// Compares the outcomes of one query on two servers. `names` label the two
/// sides in the explanations (e.g. `["knot", "sixgate"]`). An empty result
/// means the responses are equivalent.
pub fn compare(a: Option<&[u8]>, b: Option<&[u8]>, names: [&str; 2]) -> Vec<Difference> {
    let [na, nb] = names;
    let (a, b) = match (a, b) {
        (None, None) => return Vec::new(),
        (Some(a), Some(b)) => (a, b),
        (a, b) => {
            let describe = |side: Option<&[u8]>| match side {
                Some(bytes) => summary(bytes),
                None => "no response".to_owned(),
            };
            let kind = if a.is_some() { format!("only {na} answers") } else { format!("only {nb} answers") };
            return vec![Difference {
                section: Section::Presence,
                kind,
                detail: format!("{na}=[{}] {nb}=[{}]", describe(a), describe(b)),
            }];
        }
    };
    match (Response::parse(a), Response::parse(b)) {
        (Ok(ra), Ok(rb)) => compare_parsed(&ra, &rb, names),
        (ra, rb) => {
            if a == b {
                return Vec::new();
            }
            let describe = |parsed: anyhow::Result<Response>, bytes: &[u8]| match parsed {
                Ok(_) => format!("parses ({} bytes)", bytes.len()),
                Err(error) => format!("{error:#} ({} bytes: {})", bytes.len(), hex(bytes)),
            };
            let kind = match (&ra, &rb) {
                (Err(_), Err(_)) => "both unparsable".to_owned(),
                (Err(_), _) => format!("{na} unparsable"),
                _ => format!("{nb} unparsable"),
            };
            vec![Difference {
                section: Section::Unparsable,
                kind,
                detail: format!("{na}=[{}] {nb}=[{}]", describe(ra, a), describe(rb, b)),
            }]
        }
    }
}

/// Compares two parsed messages; see the module docs for the rules.
pub fn compare_parsed(a: &Response, b: &Response, names: [&str; 2]) -> Vec<Difference> {
    let [na, nb] = names;
    let mut out = Vec::new();
    let mut push = |section, kind: String, detail: String| out.push(Difference { section, kind, detail });
    if a.id != b.id {
        push(Section::Id, "id".into(), format!("{na}={} {nb}={}", a.id, b.id));
    }
    // One difference per differing bit (the OPCODE counts as one), so that
    // each can be judged on its own.
    let differing = (a.flags ^ b.flags) & !0xf;
    let mut bits = Vec::new();
    if differing & 0x7800 != 0 {
        bits.push("opcode".to_owned());
    }
    for bit in [0x8000, 0x0400, 0x0200, 0x0100, 0x0080, 0x0040, 0x0020, 0x0010] {
        if differing & bit != 0 {
            bits.push(flags_text(bit));
        }
    }
    for bit in bits {
        push(
            Section::Flags,
            format!("flags differ in {bit}"),
            format!("{na}=[{}] {nb}=[{}]", flags_text(a.flags), flags_text(b.flags)),
        );
    }
    if a.rcode() != b.rcode() {
        let (ca, cb) = (rcode_name(a.rcode()), rcode_name(b.rcode()));
        push(Section::Rcode, format!("rcode {ca}/{cb}"), format!("{na}={ca} {nb}={cb}"));
    }
    if a.questions != b.questions {
        let list = |r: &Response| join(r.questions.iter().map(ToString::to_string));
        push(Section::Question, "question".into(), format!("{na}=[{}] {nb}=[{}]", list(a), list(b)));
    }
    for (section, ra, rb) in [
        (Section::Answer, &a.answer, &b.answer),
        (Section::Authority, &a.authority, &b.authority),
        (Section::Additional, &a.additional, &b.additional),
    ] {
        for (kind, detail) in compare_rrsets(ra, rb, names) {
            push(section, format!("{section} {kind}"), detail);
        }
    }
    if a.opt != b.opt {
        let list = |opts: &[Opt]| {
            if opts.is_empty() { "none".to_owned() } else { join(opts.iter().map(ToString::to_string)) }
        };
        let kind = match (a.opt.is_empty(), b.opt.is_empty()) {
            (false, true) => format!("OPT only from {na}"),
            (true, false) => format!("OPT only from {nb}"),
            _ => "OPT fields".to_owned(),
        };
        push(Section::Opt, kind, format!("{na}=[{}] {nb}=[{}]", list(&a.opt), list(&b.opt)));
    }
    if a.trailing != b.trailing {
        push(
            Section::Trailing,
            "trailing bytes".into(),
            format!("{na}={} bytes {nb}={} bytes", a.trailing, b.trailing),
        );
    }
    out
}

/// An RRset's identity: lower-cased owner in wire form, type, class.
type RrSetKey = (Vec<u8>, u16, u16);

/// RRsets by key; each holds its sorted (TTL, RDATA) pairs, so duplicates
/// still count.
type RrSets = BTreeMap<RrSetKey, Vec<(u32, Vec<u8>)>>;

/// RRsets of a section, and each key's owner as first seen (for display).
fn rrsets(records: &[Rr]) -> (RrSets, BTreeMap<RrSetKey, String>) {
    let mut sets = RrSets::new();
    let mut owners = BTreeMap::new();
    for rr in records {
        let key = (name_wire_lower(&rr.owner), rr.rtype, rr.class);
        owners.entry(key.clone()).or_insert_with(|| rr.owner.to_ascii());
        sets.entry(key).or_default().push((rr.ttl, rr.rdata.clone()));
    }
    for set in sets.values_mut() {
        set.sort();
    }
    (sets, owners)
}

/// The RRsets that differ, as (kind, detail).
fn compare_rrsets(a: &[Rr], b: &[Rr], names: [&str; 2]) -> Vec<(String, String)> {
    let [na, nb] = names;
    let (sets_a, mut owners) = rrsets(a);
    let (sets_b, owners_b) = rrsets(b);
    owners.extend(owners_b);
    let mut keys: Vec<_> = sets_a.keys().chain(sets_b.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let (in_a, in_b) = (sets_a.get(&key), sets_b.get(&key));
        if in_a == in_b {
            continue;
        }
        let owner = owners.get(&key).cloned().unwrap_or_default();
        let (_, rtype, _) = key;
        let show = |set: Option<&Vec<(u32, Vec<u8>)>>| match set {
            None => "absent".to_owned(),
            Some(records) => {
                join(records.iter().map(|(ttl, rdata)| format!("{ttl} {}", rdata_text(rtype, rdata))))
            }
        };
        let kind = match (in_a, in_b) {
            (Some(_), None) => format!("{} only from {na}", type_name(rtype)),
            (None, Some(_)) => format!("{} only from {nb}", type_name(rtype)),
            (Some(x), Some(y)) if x.len() != y.len() => format!("{} record count", type_name(rtype)),
            (Some(x), Some(y)) if x.iter().zip(y).all(|(p, q)| p.1 == q.1) => {
                format!("{} TTL", type_name(rtype))
            }
            _ => format!("{} RDATA", type_name(rtype)),
        };
        let detail = format!("{owner} {}: {na}=[{}] {nb}=[{}]", type_name(rtype), show(in_a), show(in_b));
        out.push((kind, detail));
    }
    out
}

/// Header flags as `qr opcode=N aa tc rd ra z ad cd` (set bits only).
pub fn flags_text(flags: u16) -> String {
    let mut parts = Vec::new();
    for (bit, name) in [(0x8000, "qr"), (0x0400, "aa"), (0x0200, "tc"), (0x0100, "rd")] {
        if flags & bit != 0 {
            parts.push(name.to_owned());
        }
    }
    for (bit, name) in [(0x0080, "ra"), (0x0040, "z"), (0x0020, "ad"), (0x0010, "cd")] {
        if flags & bit != 0 {
            parts.push(name.to_owned());
        }
    }
    let opcode = (flags >> 11) & 0xf;
    if opcode != 0 {
        parts.push(format!("opcode={opcode}"));
    }
    parts.join(" ")
}

/// An RCODE's mnemonic (RFC 6895 §2.3), or its number.
pub fn rcode_name(rcode: u16) -> String {
    let name = match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        16 => "BADVERS",
        23 => "BADCOOKIE",
        other => return format!("RCODE{other}"),
    };
    name.to_owned()
}

/// A one-line summary of a message for diffs and logs.
pub fn summary(bytes: &[u8]) -> String {
    match Response::parse(bytes) {
        Err(error) => format!("unparsable: {error:#}"),
        Ok(r) => {
            let question = join(r.questions.iter().map(ToString::to_string));
            format!(
                "{} [{}] q=[{question}] an={} ns={} ar={}{}",
                rcode_name(r.rcode()),
                flags_text(r.flags),
                r.answer.len(),
                r.authority.len(),
                r.additional.len(),
                if r.opt.is_empty() { "" } else { " +opt" }
            )
        }
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Edns, Message, MessageType, Query};
    use hickory_proto::rr::rdata::{A, CNAME, SRV};
    use hickory_proto::rr::{Name, RData, Record, RecordType};

    use super::*;

    fn name(text: &str) -> Name {
        crate::query::parse_name(text).unwrap()
    }

    fn response(question: &str, answers: &[(&str, u32, RData)]) -> Message {
        let mut message = Message::query();
        message.metadata.id = 7;
        message.metadata.message_type = MessageType::Response;
        message.metadata.authoritative = true;
        message.add_query(Query::query(name(question), RecordType::A));
        for (owner, ttl, data) in answers {
            message.add_answer(Record::from_rdata(name(owner), *ttl, data.clone()));
        }
        message
    }

    fn base() -> Message {
        response(
            "WwW.Example.",
            &[
                ("www.example.", 60, RData::CNAME(CNAME(name("host.example.")))),
                ("host.example.", 60, RData::A(A::new(192, 0, 2, 1))),
                ("host.example.", 60, RData::A(A::new(192, 0, 2, 2))),
            ],
        )
    }

    fn diff(a: &Message, b: &Message) -> Vec<Difference> {
        let (a, b) = (a.to_vec().unwrap(), b.to_vec().unwrap());
        compare(Some(&a), Some(&b), ["left", "right"])
    }

    #[test]
    fn identical_messages_do_not_differ() {
        assert!(diff(&base(), &base()).is_empty());
    }

    #[test]
    fn record_order_and_owner_case_do_not_matter() {
        let reordered = response(
            "WwW.Example.",
            &[
                ("HOST.example.", 60, RData::A(A::new(192, 0, 2, 2))),
                ("www.EXAMPLE.", 60, RData::CNAME(CNAME(name("host.example.")))),
                ("host.example.", 60, RData::A(A::new(192, 0, 2, 1))),
            ],
        );
        assert!(diff(&base(), &reordered).is_empty());
    }

    #[test]
    fn question_case_matters() {
        let mut other = base();
        other.queries = vec![Query::query(name("www.example."), RecordType::A)];
        let found = diff(&base(), &other);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found.first().unwrap().section, Section::Question);
    }

    #[test]
    fn rdata_name_case_matters_only_where_compression_is_not_allowed() {
        let with_target = |cname: &str, srv: &str| {
            let mut message =
                response("WwW.Example.", &[("www.example.", 60, RData::CNAME(CNAME(name(cname))))]);
            message.add_answer(Record::from_rdata(
                name("_s._tcp.example."),
                60,
                RData::SRV(SRV::new(0, 0, 80, name(srv))),
            ));
            message
        };
        let base = with_target("host.example.", "srv.example.");
        assert!(diff(&base, &with_target("HOST.Example.", "srv.example.")).is_empty());
        let found = diff(&base, &with_target("host.example.", "SRV.example."));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found.first().unwrap().detail.contains("SRV"), "{found:?}");
    }

    #[test]
    fn ttl_missing_record_flags_and_opt_differences_are_reported() {
        let mut other = response(
            "WwW.Example.",
            &[
                ("www.example.", 61, RData::CNAME(CNAME(name("host.example.")))),
                ("host.example.", 60, RData::A(A::new(192, 0, 2, 1))),
            ],
        );
        other.metadata.authoritative = false;
        let mut edns = Edns::new();
        edns.set_max_payload(1232);
        other.set_edns(edns);
        let found = diff(&base(), &other);
        let sections: Vec<Section> = found.iter().map(|d| d.section).collect();
        assert_eq!(
            sections,
            vec![Section::Flags, Section::Answer, Section::Answer, Section::Opt],
            "{found:#?}"
        );
        let text: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("left=[qr aa] right=[qr]")), "{text:?}");
        assert!(text.iter().any(|t| t.contains("right=[none]") || t.contains("left=[none]")));
    }

    #[test]
    fn presence_and_unparsable_are_reported() {
        let bytes = base().to_vec().unwrap();
        let missing = compare(Some(&bytes), None, ["a", "b"]);
        assert_eq!(missing.first().unwrap().section, Section::Presence);
        let broken = compare(Some(&bytes), Some(&bytes[..20]), ["a", "b"]);
        assert_eq!(broken.first().unwrap().section, Section::Unparsable);
        assert!(compare(Some(&bytes[..5]), Some(&bytes[..5]), ["a", "b"]).is_empty());
        assert!(compare(None, None, ["a", "b"]).is_empty());
    }
}
