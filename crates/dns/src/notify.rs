//! A primary's side of NOTIFY (RFC 1996) and of the SOA query that reads
//! a secondary's serial, sans-IO.
//!
//! [`notify_message`] writes the NOTIFY for a zone: opcode NOTIFY, AA,
//! the zone's SOA as the question and, as RFC 1996 §3.7 allows, the new
//! SOA in the answer section, so that a secondary already holding that
//! serial need not query for it. [`decode_notify_response`] reads the
//! secondary's acknowledgement (§3.8: same ID, QR, opcode NOTIFY).
//!
//! [`soa_query`] and [`decode_soa_response`] ask a secondary which serial
//! it serves: an authoritative answer with the zone's SOA is the only
//! one that counts (a secondary that lost the zone answers REFUSED or
//! SERVFAIL, or refers upwards).
//!
//! Both decoders read the whole message (a TSIG record in the additional
//! section is an ordinary record here; the caller verifies it with
//! [`crate::tsig::verify_response`]) and refuse trailing octets.

use crate::message::{HEADER_LEN, flags, rcode};
use crate::name::NameBuf;
use crate::octets::{be16, be32};
use crate::rtype::{CLASS_IN, code};
use crate::writer::{Owner, Section, Writer};

/// The NOTIFY opcode (RFC 1996 §3.1).
pub const OPCODE: u16 = 4;
/// The opcode bits of a NOTIFY header's flag word.
const OPCODE_BITS: u16 = OPCODE << 11;
/// A NOTIFY or SOA query is one SOA record at most: far below this.
const MAX_MESSAGE: usize = 1232;

/// Why a response was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseError {
    /// Not a response to our message (ID, QR, opcode, question).
    #[error("response does not match the request")]
    Mismatch,
    /// Broken message.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// Truncated over UDP.
    #[error("truncated response")]
    Truncated,
    /// An error rcode: the secondary does not take the NOTIFY, or does
    /// not serve the zone.
    #[error("rcode {0}")]
    Rcode(u16),
    /// The answer is not authoritative: the server does not serve the zone.
    #[error("not authoritative for the zone")]
    NotAuthoritative,
    /// An authoritative answer without the zone's SOA.
    #[error("no SOA for the zone in the answer")]
    NoSoa,
}

const SHORT: ResponseError = ResponseError::Malformed("truncated");

/// The header and question of a message about `apex`'s SOA.
fn head(id: u16, flag_word: u16, apex: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(HEADER_LEN + apex.len() + 4);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(&flag_word.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(apex);
    m.extend_from_slice(&code::SOA.to_be_bytes());
    m.extend_from_slice(&CLASS_IN.to_be_bytes());
    m
}

/// The NOTIFY for the zone `apex` (wire): with `soa` (TTL and rdata of
/// the zone's new SOA) in the answer section (RFC 1996 §3.7), or the
/// question alone. The caller signs it with TSIG when the secondary has a
/// key.
pub fn notify_message(id: u16, apex: &[u8], soa: Option<(u32, &[u8])>) -> Vec<u8> {
    let head = head(id, OPCODE_BITS | flags::AA, apex);
    let mut buf = Vec::with_capacity(head.len() + 64);
    let mut w = Writer::new(&mut buf, &head, apex, MAX_MESSAGE.max(head.len() + 512));
    if let Some((ttl, rdata)) = soa {
        // An SOA is at most two names and 20 octets: it always fits; if
        // it somehow did not, the NOTIFY without it is still valid.
        let _ = w.rr(Section::Answer, Owner::Qname, code::SOA, ttl, rdata);
    }
    w.finish(OPCODE_BITS | flags::AA, rcode::NOERROR, None);
    buf
}

/// A query for the SOA of `apex` (wire), without recursion.
pub fn soa_query(id: u16, apex: &[u8]) -> Vec<u8> {
    head(id, 0, apex)
}

/// What a response's header and question say.
struct Header {
    flags: u16,
    counts: [u16; 3],
    /// Where the records start.
    records: usize,
}

/// Checks the header and question of a response to our message with `id`
/// and `opcode` about `apex`'s SOA. RFC 1996 §3.8: a NOTIFY response has
/// the request's ID, QR and the NOTIFY opcode; some servers answer with
/// no question at all, which is taken too.
fn response_head(msg: &[u8], id: u16, opcode: u16, apex: &[u8]) -> Result<Header, ResponseError> {
    let header = msg.get(..HEADER_LEN).ok_or(SHORT)?;
    let word = |at| be16(header, at).ok_or(SHORT);
    let (rid, fl, qd) = (word(0)?, word(2)?, word(4)?);
    if rid != id || fl & flags::QR == 0 || (fl & flags::OPCODE_MASK) >> 11 != opcode || qd > 1 {
        return Err(ResponseError::Mismatch);
    }
    let mut pos = HEADER_LEN;
    if qd == 1 {
        let want = NameBuf::lowercased(apex);
        let mut qname = NameBuf::new();
        pos = qname.decode(msg, pos).map_err(|_| ResponseError::Mismatch)?;
        qname.make_lowercase();
        if qname.as_slice() != want.as_slice()
            || be16(msg, pos) != Some(code::SOA)
            || be16(msg, pos + 2) != Some(CLASS_IN)
        {
            return Err(ResponseError::Mismatch);
        }
        pos += 4;
    } else if opcode != OPCODE {
        // A query's answer echoes the question (RFC 1035 §4.1.2).
        return Err(ResponseError::Mismatch);
    }
    Ok(Header { flags: fl, counts: [word(6)?, word(8)?, word(10)?], records: pos })
}

/// One record read from a message.
struct Rr<'m> {
    section: usize,
    owner: NameBuf,
    rtype: u16,
    class: u16,
    ttl: u32,
    /// Where the rdata starts in the message: names in it may point back.
    rdata_at: usize,
    rdata: &'m [u8],
}

/// Reads every record after the question; fails on a broken record or
/// trailing octets. `visit` sees each one.
fn walk<'m>(
    msg: &'m [u8],
    h: &Header,
    mut visit: impl FnMut(&Rr<'m>) -> Result<(), ResponseError>,
) -> Result<(), ResponseError> {
    let mut pos = h.records;
    for (section, &count) in h.counts.iter().enumerate() {
        for _ in 0..count {
            let mut owner = NameBuf::new();
            pos = owner.decode(msg, pos).map_err(|_| ResponseError::Malformed("owner name"))?;
            owner.make_lowercase();
            let rtype = be16(msg, pos).ok_or(SHORT)?;
            let class = be16(msg, pos + 2).ok_or(SHORT)?;
            let ttl = be32(msg, pos + 4).ok_or(SHORT)?;
            let start = pos + 10;
            let end = start + usize::from(be16(msg, pos + 8).ok_or(SHORT)?);
            let rdata = msg.get(start..end).ok_or(SHORT)?;
            visit(&Rr { section, owner, rtype, class, ttl, rdata_at: start, rdata })?;
            pos = end;
        }
    }
    if pos != msg.len() {
        return Err(ResponseError::Malformed("trailing octets"));
    }
    Ok(())
}

/// The rcode with the OPT record's extended bits (RFC 6891 §6.1.3).
fn full_rcode(fl: u16, ext: Option<u8>) -> u16 {
    (u16::from(ext.unwrap_or(0)) << 4) | (fl & 0x000f)
}

/// Reads every record and returns the extended rcode bits of the one OPT
/// record, if any; `visit` sees the others.
fn walk_with_opt<'m>(
    msg: &'m [u8],
    h: &Header,
    mut visit: impl FnMut(&Rr<'m>) -> Result<(), ResponseError>,
) -> Result<u16, ResponseError> {
    let mut ext: Option<u8> = None;
    walk(msg, h, |rr| {
        if rr.section == 2 && rr.rtype == code::OPT {
            if ext.is_some() {
                return Err(ResponseError::Malformed("two OPT records"));
            }
            ext = Some((rr.ttl >> 24) as u8);
            return Ok(());
        }
        visit(rr)
    })?;
    Ok(full_rcode(h.flags, ext))
}

/// Reads the response to `notify_message(id, apex, _)`: `Ok` when the
/// secondary acknowledges it (NOERROR, RFC 1996 §4.7).
pub fn decode_notify_response(msg: &[u8], id: u16, apex: &[u8]) -> Result<(), ResponseError> {
    let h = response_head(msg, id, OPCODE, apex)?;
    let rc = walk_with_opt(msg, &h, |_| Ok(()))?;
    if rc != rcode::NOERROR {
        return Err(ResponseError::Rcode(rc));
    }
    Ok(())
}

/// Reads the response to `soa_query(id, apex)`: the serial of the zone's
/// SOA in an authoritative answer.
pub fn decode_soa_response(msg: &[u8], id: u16, apex: &[u8]) -> Result<u32, ResponseError> {
    let h = response_head(msg, id, 0, apex)?;
    if h.flags & flags::TC != 0 {
        return Err(ResponseError::Truncated);
    }
    let want = NameBuf::lowercased(apex);
    let mut serial: Option<u32> = None;
    let rc = walk_with_opt(msg, &h, |rr| {
        if rr.section == 0
            && rr.rtype == code::SOA
            && rr.class == CLASS_IN
            && rr.owner.as_slice() == want.as_slice()
        {
            let s =
                soa_serial(msg, rr.rdata_at, rr.rdata.len()).ok_or(ResponseError::Malformed("soa rdata"))?;
            if serial.is_some_and(|old| old != s) {
                return Err(ResponseError::Malformed("two SOA records"));
            }
            serial = Some(s);
        }
        Ok(())
    })?;
    if rc != rcode::NOERROR {
        return Err(ResponseError::Rcode(rc));
    }
    if h.flags & flags::AA == 0 {
        return Err(ResponseError::NotAuthoritative);
    }
    serial.ok_or(ResponseError::NoSoa)
}

/// The serial of the SOA rdata at `start` (`len` octets) in `msg`: two
/// names (possibly compressed, RFC 1035 §4.1.4), then the serial; the
/// rdata must hold exactly the five 32-bit fields after the names.
fn soa_serial(msg: &[u8], start: usize, len: usize) -> Option<u32> {
    let end = start.checked_add(len)?;
    let mut n = NameBuf::new();
    let after_mname = n.decode(msg, start).ok()?;
    let after_rname = n.decode(msg, after_mname).ok()?;
    if after_rname.checked_add(20)? != end {
        return None;
    }
    be32(msg, after_rname)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::from_text;

    fn apex() -> Box<[u8]> {
        from_text("Example.TEST.", None).unwrap()
    }

    /// SOA rdata: ns.example.test. hostmaster.example.test. SERIAL 3600 900 1209600 300.
    fn soa_rdata(serial: u32) -> Vec<u8> {
        let mut rd = from_text("ns.example.test.", None).unwrap().to_vec();
        rd.extend_from_slice(&from_text("hostmaster.example.test.", None).unwrap());
        for v in [serial, 3600, 900, 1_209_600, 300] {
            rd.extend_from_slice(&v.to_be_bytes());
        }
        rd
    }

    /// A secondary's answer to `request`: flags and rcode set, records
    /// appended as (owner pointer to the question, type, rdata).
    fn answer(request: &[u8], fl: u16, answers: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let qend = HEADER_LEN + apex().len() + 4;
        let mut m = request[..qend].to_vec();
        m[2..4].copy_from_slice(&fl.to_be_bytes());
        m[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
        m[8..12].fill(0);
        for (rtype, rd) in answers {
            m.extend_from_slice(&[0xC0, 12]);
            m.extend_from_slice(&rtype.to_be_bytes());
            m.extend_from_slice(&CLASS_IN.to_be_bytes());
            m.extend_from_slice(&3600u32.to_be_bytes());
            m.extend_from_slice(&(rd.len() as u16).to_be_bytes());
            m.extend_from_slice(rd);
        }
        m
    }

    #[test]
    fn a_notify_carries_the_soa_question_and_the_new_soa_rfc_1996_3_7() {
        let rd = soa_rdata(2024010102);
        let m = notify_message(0xBEEF, &apex(), Some((3600, &rd)));
        assert_eq!(&m[..2], &[0xBE, 0xEF]);
        let fl = u16::from_be_bytes([m[2], m[3]]);
        assert_eq!((fl & flags::OPCODE_MASK) >> 11, OPCODE);
        assert!(fl & flags::AA != 0 && fl & flags::QR == 0);
        assert_eq!(&m[4..12], &[0, 1, 0, 1, 0, 0, 0, 0]);
        let q = HEADER_LEN + apex().len();
        assert_eq!(&m[HEADER_LEN..q], &apex()[..], "the question keeps the zone's case");
        assert_eq!(&m[q..q + 4], &[0, 6, 0, 1]);
        // The answer: owner pointer, SOA IN, TTL, the rdata; its serial
        // reads back.
        let h = Header { flags: fl, counts: [1, 0, 0], records: q + 4 };
        let mut serial = None;
        walk(&m, &h, |rr| {
            serial = soa_serial(&m, rr.rdata_at, rr.rdata.len());
            Ok(())
        })
        .unwrap();
        assert_eq!(serial, Some(2024010102));
        let bare = notify_message(1, &apex(), None);
        assert_eq!(&bare[6..8], &[0, 0]);
        assert_eq!(bare.len(), q + 4);
    }

    #[test]
    fn a_notify_response_is_taken_only_with_our_id_qr_and_opcode() {
        let req = notify_message(77, &apex(), None);
        let ok = answer(&req, flags::QR | flags::AA | OPCODE_BITS, &[]);
        assert_eq!(decode_notify_response(&ok, 77, &apex()), Ok(()));
        // The question in another case is the same question.
        let lower = from_text("example.test.", None).unwrap();
        assert_eq!(decode_notify_response(&ok, 77, &lower), Ok(()));
        assert_eq!(decode_notify_response(&ok, 78, &apex()), Err(ResponseError::Mismatch));
        let query_opcode = answer(&req, flags::QR | flags::AA, &[]);
        assert_eq!(decode_notify_response(&query_opcode, 77, &apex()), Err(ResponseError::Mismatch));
        let not_a_response = answer(&req, OPCODE_BITS, &[]);
        assert_eq!(decode_notify_response(&not_a_response, 77, &apex()), Err(ResponseError::Mismatch));
        let other = from_text("other.test.", None).unwrap();
        assert_eq!(decode_notify_response(&ok, 77, &other), Err(ResponseError::Mismatch));
        let refused = answer(&req, flags::QR | OPCODE_BITS | rcode::REFUSED, &[]);
        assert_eq!(decode_notify_response(&refused, 77, &apex()), Err(ResponseError::Rcode(rcode::REFUSED)));
        let notauth = answer(&req, flags::QR | OPCODE_BITS | rcode::NOTAUTH, &[]);
        assert_eq!(decode_notify_response(&notauth, 77, &apex()), Err(ResponseError::Rcode(rcode::NOTAUTH)));
        // No question at all: accepted (RFC 1996 does not require it).
        let mut bare = ok[..HEADER_LEN].to_vec();
        bare[4..6].fill(0);
        assert_eq!(decode_notify_response(&bare, 77, &apex()), Ok(()));
        let mut trailing = ok.clone();
        trailing.push(0);
        assert_eq!(
            decode_notify_response(&trailing, 77, &apex()),
            Err(ResponseError::Malformed("trailing octets"))
        );
        for cut in 0..ok.len() {
            assert!(decode_notify_response(&ok[..cut], 77, &apex()).is_err(), "prefix of {cut}");
        }
    }

    #[test]
    fn an_soa_answer_gives_the_secondarys_serial_only_when_authoritative() {
        let req = soa_query(9, &apex());
        assert_eq!(&req[2..4], &[0, 0], "no recursion asked");
        let aa = flags::QR | flags::AA;
        let ok = answer(&req, aa, &[(code::SOA, soa_rdata(41))]);
        assert_eq!(decode_soa_response(&ok, 9, &apex()), Ok(41));
        assert_eq!(decode_soa_response(&ok, 10, &apex()), Err(ResponseError::Mismatch));
        let cached = answer(&req, flags::QR, &[(code::SOA, soa_rdata(41))]);
        assert_eq!(decode_soa_response(&cached, 9, &apex()), Err(ResponseError::NotAuthoritative));
        let refused = answer(&req, flags::QR | rcode::REFUSED, &[]);
        assert_eq!(decode_soa_response(&refused, 9, &apex()), Err(ResponseError::Rcode(rcode::REFUSED)));
        let empty = answer(&req, aa, &[]);
        assert_eq!(decode_soa_response(&empty, 9, &apex()), Err(ResponseError::NoSoa));
        let truncated = answer(&req, aa | flags::TC, &[]);
        assert_eq!(decode_soa_response(&truncated, 9, &apex()), Err(ResponseError::Truncated));
        let mut short_rdata = soa_rdata(41);
        short_rdata.pop();
        let bad = answer(&req, aa, &[(code::SOA, short_rdata)]);
        assert_eq!(decode_soa_response(&bad, 9, &apex()), Err(ResponseError::Malformed("soa rdata")));
        let two = answer(&req, aa, &[(code::SOA, soa_rdata(41)), (code::SOA, soa_rdata(42))]);
        assert_eq!(decode_soa_response(&two, 9, &apex()), Err(ResponseError::Malformed("two SOA records")));
        // A NOTIFY response is not an SOA answer.
        let n = answer(&notify_message(9, &apex(), None), aa | OPCODE_BITS, &[(code::SOA, soa_rdata(41))]);
        assert_eq!(decode_soa_response(&n, 9, &apex()), Err(ResponseError::Mismatch));
        for cut in 0..ok.len() {
            assert!(decode_soa_response(&ok[..cut], 9, &apex()).is_err(), "prefix of {cut}");
        }
    }

    #[test]
    fn an_soa_answer_with_compressed_names_in_its_rdata_reads() {
        // mname and rname point at the question name, as servers write.
        let mut rd = vec![2, b'n', b's', 0xC0, 12, 0xC0, 12];
        for v in [7u32, 1, 2, 3, 4] {
            rd.extend_from_slice(&v.to_be_bytes());
        }
        let req = soa_query(5, &apex());
        let m = answer(&req, flags::QR | flags::AA, &[(code::SOA, rd)]);
        assert_eq!(decode_soa_response(&m, 5, &apex()), Ok(7));
    }

    #[test]
    fn the_fuzz_seeds_include_answers_that_are_taken() {
        // The fuzz target's checks past decoding run only on inputs that
        // decode: its seeds must hold some.
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/notify_response");
        let seed = |name: &str| std::fs::read(dir.join(name)).unwrap();
        let apex = from_text("example.test.", None).unwrap();
        assert_eq!(decode_notify_response(&seed("notify_ack"), 0x1234, &apex), Ok(()));
        assert_eq!(decode_notify_response(&seed("notify_ack_noq"), 0x1234, &apex), Ok(()));
        assert_eq!(decode_soa_response(&seed("soa_answer"), 0x1234, &apex), Ok(2024010102));
        assert_eq!(decode_soa_response(&seed("soa_answer_opt"), 0x1234, &apex), Ok(2024010102));
    }
}
