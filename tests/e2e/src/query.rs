//! Well-formed queries, built with hickory-proto.
//!
//! A [`QuerySpec`] is plain data (it prints as one line, so a failing case
//! can be read and replayed) and [`QuerySpec::encode`] turns it into bytes.
//! Anything hickory-proto would refuse to build (EDNS payloads under 512,
//! broken messages) is made byte by byte in [`crate::craft`].

use std::fmt;

use anyhow::{Context, Result, bail};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{DNSClass, Name, RecordType};

use crate::normalize::{class_name, type_name};

/// The EDNS part of a query (RFC 6891).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EdnsSpec {
    /// Requestor's UDP payload size (at least 512; hickory-proto clamps).
    pub payload: u16,
    /// The DO bit (RFC 3225).
    pub dnssec_ok: bool,
    /// The EDNS version; anything but 0 must get BADVERS.
    pub version: u8,
}

impl EdnsSpec {
    /// EDNS version 0 with `payload` and the DO bit as given.
    pub fn new(payload: u16, dnssec_ok: bool) -> Self {
        Self { payload, dnssec_ok, version: 0 }
    }
}

/// One query, as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuerySpec {
    /// The message ID.
    pub id: u16,
    /// QNAME, case as it will be sent.
    pub name: Name,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// OPCODE.
    pub opcode: u8,
    /// RD.
    pub rd: bool,
    /// CD.
    pub cd: bool,
    /// AD.
    pub ad: bool,
    /// EDNS, if any.
    pub edns: Option<EdnsSpec>,
}

impl QuerySpec {
    /// A plain query: IN class, OPCODE QUERY, no flags, no EDNS, ID 0.
    pub fn new(name: Name, qtype: u16) -> Self {
        Self { id: 0, name, qtype, qclass: 1, opcode: 0, rd: false, cd: false, ad: false, edns: None }
    }

    /// Like [`QuerySpec::new`] with the name in presentation format
    /// (escapes such as `a\.b` and `\065` allowed; made absolute).
    pub fn parse(name: &str, qtype: u16) -> Result<Self> {
        Ok(Self::new(parse_name(name)?, qtype))
    }

    /// Sets the ID.
    pub fn with_id(mut self, id: u16) -> Self {
        self.id = id;
        self
    }

    /// Sets EDNS.
    pub fn with_edns(mut self, edns: Option<EdnsSpec>) -> Self {
        self.edns = edns;
        self
    }

    /// Sets RD.
    pub fn with_rd(mut self, rd: bool) -> Self {
        self.rd = rd;
        self
    }

    /// The query in wire format.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut message = Message::new(self.id, MessageType::Query, OpCode::from_u8(self.opcode));
        message.metadata.recursion_desired = self.rd;
        message.metadata.checking_disabled = self.cd;
        message.metadata.authentic_data = self.ad;
        let mut query = Query::query(self.name.clone(), RecordType::from(self.qtype));
        query.query_class = DNSClass::from(self.qclass);
        message.add_query(query);
        if let Some(spec) = self.edns {
            let mut edns = Edns::new();
            edns.set_max_payload(spec.payload);
            edns.set_dnssec_ok(spec.dnssec_ok);
            edns.set_version(spec.version);
            message.set_edns(edns);
        }
        message.to_vec().with_context(|| format!("encoding query {self}"))
    }
}

impl fmt::Display for QuerySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.name.to_ascii(), class_name(self.qclass), type_name(self.qtype))?;
        if self.opcode != 0 {
            write!(f, " opcode={}", self.opcode)?;
        }
        for (set, flag) in [(self.rd, "rd"), (self.cd, "cd"), (self.ad, "ad")] {
            if set {
                write!(f, " +{flag}")?;
            }
        }
        match self.edns {
            None => f.write_str(" noedns")?,
            Some(edns) => {
                write!(f, " edns={}", edns.payload)?;
                if edns.dnssec_ok {
                    f.write_str(" +do")?;
                }
                if edns.version != 0 {
                    write!(f, " ednsver={}", edns.version)?;
                }
            }
        }
        write!(f, " id={}", self.id)
    }
}

/// A name from presentation format, case kept, with RFC 1035 §5.1 escapes
/// (`\.`, `\DDD`); always absolute. `Name::from_str` is not used because it
/// lower-cases and applies IDNA rules.
pub fn parse_name(text: &str) -> Result<Name> {
    if text == "." {
        return Ok(Name::root());
    }
    let mut labels: Vec<Vec<u8>> = Vec::new();
    let mut label = Vec::new();
    let mut bytes = text.bytes();
    let mut any = false;
    while let Some(byte) = bytes.next() {
        any = true;
        match byte {
            b'.' => {
                if label.is_empty() {
                    bail!("empty label in {text:?}");
                }
                labels.push(std::mem::take(&mut label));
            }
            b'\\' => {
                let Some(first) = bytes.next() else {
                    bail!("dangling backslash in {text:?}");
                };
                if first.is_ascii_digit() {
                    let digits = [Some(first), bytes.next(), bytes.next()];
                    let mut value = 0u32;
                    for digit in digits {
                        match digit {
                            Some(d) if d.is_ascii_digit() => value = value * 10 + u32::from(d - b'0'),
                            _ => bail!("bad \\DDD escape in {text:?}"),
                        }
                    }
                    label.push(u8::try_from(value).with_context(|| format!("escape above 255 in {text:?}"))?);
                } else {
                    label.push(first);
                }
            }
            other => label.push(other),
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    if !any {
        bail!("empty name");
    }
    Name::from_labels(labels.iter().map(Vec::as_slice)).with_context(|| format!("bad name {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Response;

    #[test]
    fn encodes_what_it_says() {
        let spec = QuerySpec::parse("A\\.b.\\065bc.Example.test", 65280)
            .unwrap()
            .with_id(0xbeef)
            .with_rd(true)
            .with_edns(Some(EdnsSpec::new(1232, true)));
        let bytes = spec.encode().unwrap();
        let parsed = Response::parse(&bytes).unwrap();
        assert_eq!(parsed.id, 0xbeef);
        assert!(!parsed.qr());
        assert_eq!(parsed.flags & 0x0100, 0x0100);
        let question = parsed.questions.first().unwrap();
        let labels: Vec<&[u8]> = question.name.iter().collect();
        assert_eq!(labels, vec![&b"A.b"[..], b"Abc", b"Example", b"test"]);
        assert_eq!(question.qtype, 65280);
        let opt = parsed.opt.first().unwrap();
        assert_eq!((opt.payload, opt.dnssec_ok), (1232, true));
        assert_eq!(spec.to_string(), "A\\.b.Abc.Example.test. IN TYPE65280 +rd edns=1232 +do id=48879");
    }

    #[test]
    fn names_parse_with_escapes_and_case() {
        let name = parse_name("sp\\032ace.\\.x.Ab").unwrap();
        let labels: Vec<&[u8]> = name.iter().collect();
        assert_eq!(labels, vec![&b"sp ace"[..], b".x", b"Ab"]);
        assert!(parse_name(".").unwrap().is_root());
        assert!(parse_name("a..b").is_err());
        assert!(parse_name("a\\999").is_err());
    }

    #[test]
    fn no_edns_means_no_opt() {
        let bytes = QuerySpec::parse("example.test", 1).unwrap().encode().unwrap();
        assert!(Response::parse(&bytes).unwrap().opt.is_empty());
    }
}
