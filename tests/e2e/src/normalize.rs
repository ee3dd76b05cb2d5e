//! A DNS response reduced to what two servers must agree on.
//!
//! The record loop is driven here rather than by `hickory_proto::op::Message`
//! because `Message` rejects things a server may legitimately send (an RR with
//! empty RDATA, e.g. `TYPE65280 \# 0`, outside UPDATE) and clamps an OPT
//! payload size below 512. Names, including compression pointers, and the
//! presentation of RDATA still come from hickory-proto.
//!
//! RDATA is kept as bytes. Names inside RDATA are decompressed only for the
//! types whose RDATA may be compressed (RFC 3597 §4: the RFC 1035 types);
//! for every other type the bytes are compared exactly, so a server that
//! compresses, say, an SRV target shows up as a difference.
//!
//! The decompressed names are lower-cased. A compressed name takes the case
//! of whatever earlier name its pointer lands on (often the question, in the
//! client's 0x20 case), so their case reflects a server's compression
//! strategy, not the zone's content: Knot and sixgate legitimately differ
//! there. Names in RDATA that may not be compressed keep their case.

use std::fmt::{self, Write as _};

use anyhow::{Context, Result, bail};
use hickory_proto::rr::{Name, RData, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, Restrict};

/// The fixed DNS header length.
pub const HEADER_LEN: usize = 12;

/// The OPT pseudo-RR type (RFC 6891).
pub const TYPE_OPT: u16 = 41;

/// A parsed response (or query).
#[derive(Clone, Debug)]
pub struct Response {
    /// The message ID.
    pub id: u16,
    /// Header bits 16..32: QR, OPCODE, AA, TC, RD, RA, Z, AD, CD, RCODE.
    pub flags: u16,
    /// QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT as sent.
    pub counts: [u16; 4],
    /// The question section, names with their case.
    pub questions: Vec<Question>,
    /// The answer section.
    pub answer: Vec<Rr>,
    /// The authority section.
    pub authority: Vec<Rr>,
    /// The additional section without OPT records.
    pub additional: Vec<Rr>,
    /// Every OPT record of the additional section (more than one is an error
    /// the comparison shows).
    pub opt: Vec<Opt>,
    /// Bytes after the last record.
    pub trailing: usize,
}

/// One entry of the question section. Equality is exact, case included
/// (hickory's `Name` equality ignores case, so it is not used here).
#[derive(Clone, Debug)]
pub struct Question {
    /// The name, case as sent.
    pub name: Name,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
}

/// One resource record. Equality ignores the owner's case (RFC 4343) and
/// nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rr {
    /// The owner name, case as sent.
    pub owner: Name,
    /// TYPE.
    pub rtype: u16,
    /// CLASS.
    pub class: u16,
    /// TTL.
    pub ttl: u32,
    /// RDATA; where RFC 3597 §4 allows compression, names are decompressed
    /// and lower-cased (see the module docs).
    pub rdata: Vec<u8>,
}

/// The OPT pseudo-record, field by field (RFC 6891 §6.1.2, §6.1.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opt {
    /// True if the owner is the root, as it must be.
    pub owner_is_root: bool,
    /// The requestor's or responder's UDP payload size (CLASS).
    pub payload: u16,
    /// The upper eight bits of the extended RCODE.
    pub ext_rcode: u8,
    /// The EDNS version.
    pub version: u8,
    /// The DO bit.
    pub dnssec_ok: bool,
    /// The other flag bits (must be zero).
    pub z: u16,
    /// Options as (code, data), in order.
    pub options: Vec<(u16, Vec<u8>)>,
}

impl PartialEq for Question {
    fn eq(&self, other: &Self) -> bool {
        self.qtype == other.qtype
            && self.qclass == other.qclass
            && name_wire(&self.name) == name_wire(&other.name)
    }
}

impl Eq for Question {}

impl Response {
    /// Parses a whole message. Fails on anything that does not parse; bytes
    /// after the last counted record are recorded in `trailing`, not an error.
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < HEADER_LEN {
            bail!("message of {} bytes is shorter than a header", bytes.len());
        }
        let mut decoder = BinDecoder::new(bytes);
        let id = read_u16(&mut decoder)?;
        let flags = read_u16(&mut decoder)?;
        let mut counts = [0u16; 4];
        for count in &mut counts {
            *count = read_u16(&mut decoder)?;
        }
        let [qd, an, ns, ar] = counts;
        let mut questions = Vec::new();
        for index in 0..qd {
            let name = read_name(&mut decoder).with_context(|| format!("question {index}"))?;
            let qtype = read_u16(&mut decoder)?;
            let qclass = read_u16(&mut decoder)?;
            questions.push(Question { name, qtype, qclass });
        }
        let answer = read_records(&mut decoder, bytes, an, "answer")?;
        let authority = read_records(&mut decoder, bytes, ns, "authority")?;
        let mut additional = Vec::new();
        let mut opt = Vec::new();
        for rr in read_records(&mut decoder, bytes, ar, "additional")? {
            if rr.rtype == TYPE_OPT {
                opt.push(Opt::from_rr(&rr)?);
            } else {
                additional.push(rr);
            }
        }
        Ok(Self { id, flags, counts, questions, answer, authority, additional, opt, trailing: decoder.len() })
    }

    /// QR: this is a response.
    pub fn qr(&self) -> bool {
        self.flags & 0x8000 != 0
    }

    /// OPCODE.
    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0xf) as u8
    }

    /// AA.
    pub fn aa(&self) -> bool {
        self.flags & 0x0400 != 0
    }

    /// TC.
    pub fn tc(&self) -> bool {
        self.flags & 0x0200 != 0
    }

    /// The full RCODE: the header's four bits, extended by OPT (RFC 6891 §6.1.3).
    pub fn rcode(&self) -> u16 {
        let high = self.opt.first().map_or(0, |opt| u16::from(opt.ext_rcode));
        (high << 4) | (self.flags & 0xf)
    }

    /// Records of `rtype` in the answer section.
    pub fn answers_of(&self, rtype: u16) -> impl Iterator<Item = &Rr> {
        self.answer.iter().filter(move |rr| rr.rtype == rtype)
    }
}

impl Opt {
    fn from_rr(rr: &Rr) -> Result<Self> {
        let mut options = Vec::new();
        let mut rest = rr.rdata.as_slice();
        while !rest.is_empty() {
            let Some((&[c0, c1, l0, l1], tail)) = rest.split_first_chunk::<4>() else {
                bail!("OPT option header cut short");
            };
            let len = usize::from(u16::from_be_bytes([l0, l1]));
            let Some(data) = tail.get(..len) else {
                bail!("OPT option data cut short");
            };
            options.push((u16::from_be_bytes([c0, c1]), data.to_vec()));
            rest = tail.get(len..).unwrap_or_default();
        }
        Ok(Self {
            owner_is_root: rr.owner.is_root(),
            payload: rr.class,
            ext_rcode: (rr.ttl >> 24) as u8,
            version: (rr.ttl >> 16) as u8,
            dnssec_ok: rr.ttl & 0x8000 != 0,
            z: (rr.ttl & 0x7fff) as u16,
            options,
        })
    }
}

impl fmt::Display for Opt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OPT payload={} version={} do={} z={:#x} ext-rcode={}",
            self.payload, self.version, self.dnssec_ok as u8, self.z, self.ext_rcode
        )?;
        if !self.owner_is_root {
            f.write_str(" owner-not-root")?;
        }
        for (code, data) in &self.options {
            write!(f, " opt{code}={}", hex(data))?;
        }
        Ok(())
    }
}

impl fmt::Display for Question {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.name.to_ascii(), class_name(self.qclass), type_name(self.qtype))
    }
}

impl fmt::Display for Rr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {} {}",
            self.owner.to_ascii(),
            self.ttl,
            class_name(self.class),
            type_name(self.rtype),
            rdata_text(self.rtype, &self.rdata)
        )
    }
}

/// RDATA in presentation format via hickory-proto, or RFC 3597 `\# len hex`.
pub fn rdata_text(rtype: u16, rdata: &[u8]) -> String {
    let generic = || {
        if rdata.is_empty() { "\\# 0".to_owned() } else { format!("\\# {} {}", rdata.len(), hex(rdata)) }
    };
    let Ok(len) = u16::try_from(rdata.len()) else {
        return generic();
    };
    if rdata.is_empty() || rtype == TYPE_OPT {
        return generic();
    }
    let mut decoder = BinDecoder::new(rdata);
    match RData::read(&mut decoder, RecordType::from(rtype), Restrict::new(len)) {
        Ok(RData::Unknown { .. }) | Err(_) => generic(),
        Ok(data) => data.to_string(),
    }
}

/// The mnemonic of a type, or `TYPEnnn` (RFC 3597 §5).
pub fn type_name(rtype: u16) -> String {
    match RecordType::from(rtype) {
        RecordType::Unknown(_) => format!("TYPE{rtype}"),
        known => known.to_string(),
    }
}

/// The mnemonic of a class, or `CLASSnnn`.
pub fn class_name(class: u16) -> String {
    match class {
        1 => "IN".into(),
        3 => "CH".into(),
        4 => "HS".into(),
        254 => "NONE".into(),
        255 => "ANY".into(),
        other => format!("CLASS{other}"),
    }
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A name in uncompressed wire form, case kept.
pub fn name_wire(name: &Name) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + 2);
    for label in name.iter() {
        out.push(label.len() as u8);
        out.extend_from_slice(label);
    }
    out.push(0);
    out
}

/// A name in uncompressed wire form, ASCII lower-cased (RFC 4343).
pub fn name_wire_lower(name: &Name) -> Vec<u8> {
    let mut wire = name_wire(name);
    wire.make_ascii_lowercase();
    wire
}

fn read_records(decoder: &mut BinDecoder<'_>, message: &[u8], count: u16, section: &str) -> Result<Vec<Rr>> {
    let mut records = Vec::with_capacity(usize::from(count).min(64));
    for index in 0..count {
        let rr = read_record(decoder, message).with_context(|| format!("{section} record {index}"))?;
        records.push(rr);
    }
    Ok(records)
}

fn read_record(decoder: &mut BinDecoder<'_>, message: &[u8]) -> Result<Rr> {
    let owner = read_name(decoder)?;
    let rtype = read_u16(decoder)?;
    let class = read_u16(decoder)?;
    let ttl = decoder.read_u32().map_err(|e| anyhow::anyhow!("{e}"))?.unverified();
    let rdlength = usize::from(read_u16(decoder)?);
    let start = decoder.index();
    let raw = decoder
        .read_slice(rdlength)
        .map_err(|e| anyhow::anyhow!("RDATA of {rdlength} bytes: {e}"))?
        .unverified();
    let rdata = match decompress_rdata(message, start, rdlength, rtype)? {
        Some(expanded) => expanded,
        None => raw.to_vec(),
    };
    Ok(Rr { owner, rtype, class, ttl, rdata })
}

/// RDATA with names expanded and lower-cased, for the RFC 1035 types whose
/// RDATA may carry compression pointers (RFC 3597 §4); `None` for every
/// other type.
fn decompress_rdata(message: &[u8], start: usize, len: usize, rtype: u16) -> Result<Option<Vec<u8>>> {
    // (names, then fixed bytes) per type: NS MD MF CNAME MB MG MR PTR = 1 name;
    // MX = 2 bytes + name; SOA = 2 names + 20 bytes; MINFO = 2 names.
    let (prefix, names, suffix) = match rtype {
        2 | 3 | 4 | 5 | 7 | 8 | 9 | 12 => (0, 1, 0),
        15 => (2, 1, 0),
        6 => (0, 2, 20),
        14 => (0, 2, 0),
        _ => return Ok(None),
    };
    let index = u16::try_from(start).context("RDATA beyond 64 KiB")?;
    let mut decoder = BinDecoder::new(message).clone(index);
    let mut out = Vec::with_capacity(len + 32);
    let fixed = decoder.read_slice(prefix).map_err(|e| anyhow::anyhow!("{e}"))?.unverified();
    out.extend_from_slice(fixed);
    for _ in 0..names {
        out.extend_from_slice(&name_wire_lower(&read_name(&mut decoder)?));
    }
    let fixed = decoder.read_slice(suffix).map_err(|e| anyhow::anyhow!("{e}"))?.unverified();
    out.extend_from_slice(fixed);
    let used = decoder.index() - start;
    if used != len {
        bail!("{} RDATA: RDLENGTH {len} but its fields take {used} bytes", type_name(rtype));
    }
    Ok(Some(out))
}

fn read_name(decoder: &mut BinDecoder<'_>) -> Result<Name> {
    let at = decoder.index();
    Name::read(decoder).map_err(|e| anyhow::anyhow!("name at offset {at}: {e}"))
}

fn read_u16(decoder: &mut BinDecoder<'_>) -> Result<u16> {
    Ok(decoder.read_u16().map_err(|e| anyhow::anyhow!("at offset {}: {e}", decoder.index()))?.unverified())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response with a compressed CNAME target and an empty-RDATA record.
    fn sample() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x84, 0x00, 0, 1, 0, 2, 0, 0, 0, 1];
        // question: www.example. A IN at offset 12
        m.extend_from_slice(b"\x03www\x07example\x00\x00\x01\x00\x01");
        // answer 1: www.example. CNAME -> mail.<ptr to example at 16>
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 7]);
        m.extend_from_slice(b"\x04MAIL\xc0\x10");
        // answer 2: www.example. TYPE65280 with empty RDATA
        m.extend_from_slice(&[0xc0, 12, 0xff, 0x00, 0, 1, 0, 0, 0, 60, 0, 0]);
        // OPT: payload 1232, DO, one option 10 (cookie) of 2 bytes
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 6, 0, 10, 0, 2, 0xab, 0xcd]);
        m
    }

    #[test]
    fn parses_compressed_rdata_and_empty_rdata() {
        let response = Response::parse(&sample()).unwrap();
        assert_eq!(response.id, 0x1234);
        assert!(response.qr() && response.aa());
        assert_eq!(response.answer.len(), 2);
        let cname = response.answer.first().unwrap();
        // Decompressed and lower-cased.
        assert_eq!(cname.rdata, b"\x04mail\x07example\x00");
        assert_eq!(cname.to_string(), "www.example. 60 IN CNAME mail.example.");
        let unknown = response.answer.get(1).unwrap();
        assert!(unknown.rdata.is_empty());
        assert_eq!(unknown.to_string(), "www.example. 60 IN TYPE65280 \\# 0");
        let opt = response.opt.first().unwrap();
        assert_eq!((opt.payload, opt.dnssec_ok, opt.version), (1232, true, 0));
        assert_eq!(opt.options, vec![(10, vec![0xab, 0xcd])]);
        assert_eq!(response.trailing, 0);
    }

    #[test]
    fn rejects_pointer_loops_and_short_messages() {
        assert!(Response::parse(&[0; 11]).is_err());
        let mut looped = vec![0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        assert!(Response::parse(&looped).is_err());
    }

    #[test]
    fn counts_trailing_bytes() {
        let mut message = sample();
        message.extend_from_slice(b"junk");
        assert_eq!(Response::parse(&message).unwrap().trailing, 4);
    }

    #[test]
    fn extended_rcode_combines_header_and_opt() {
        // BADVERS = 16: header 0, OPT ext-rcode 1.
        let mut m = vec![0, 1, 0x80, 0x00, 0, 0, 0, 0, 0, 0, 0, 1];
        m.extend_from_slice(&[0, 0, 41, 0x02, 0x00, 1, 0, 0, 0, 0, 0]);
        assert_eq!(Response::parse(&m).unwrap().rcode(), 16);
    }
}
