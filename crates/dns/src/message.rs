//! Decoding queries: the header, the one question and the OPT record.
//!
//! [`decode_query`] is a pure function over the received bytes. It decides
//! whether a message is dropped (no header, or a response), refused with
//! FORMERR or NOTIMP, or is a well-formed query ready for lookup. It never
//! allocates: the question name is decoded into a stack buffer, and the
//! OPT record's options it acts on (COOKIE, NSID) are kept inline.

use crate::cookie::Cookie;
use crate::name::{NameBuf, NameError};
use crate::rtype::code;

/// The fixed DNS header length.
pub const HEADER_LEN: usize = 12;
/// Largest EDNS version we implement (RFC 6891 §6.1.3).
pub const EDNS_VERSION: u8 = 0;

/// Header flag bits in the second 16-bit word.
#[allow(missing_docs)]
pub mod flags {
    pub const QR: u16 = 0x8000;
    pub const AA: u16 = 0x0400;
    pub const TC: u16 = 0x0200;
    pub const RD: u16 = 0x0100;
    pub const RA: u16 = 0x0080;
    pub const AD: u16 = 0x0020;
    pub const CD: u16 = 0x0010;
    pub const OPCODE_MASK: u16 = 0x7800;
}

/// Response codes.
#[allow(missing_docs)]
pub mod rcode {
    pub const NOERROR: u16 = 0;
    pub const FORMERR: u16 = 1;
    pub const SERVFAIL: u16 = 2;
    pub const NXDOMAIN: u16 = 3;
    pub const NOTIMP: u16 = 4;
    pub const REFUSED: u16 = 5;
    pub const YXDOMAIN: u16 = 6;
    pub const YXRRSET: u16 = 7;
    pub const NXRRSET: u16 = 8;
    pub const NOTAUTH: u16 = 9;
    pub const NOTZONE: u16 = 10;
    /// Extended rcode 16 (upper 8 bits go in the OPT TTL).
    pub const BADVERS: u16 = 16;
    /// TSIG error codes (RFC 8945 §3), carried in the TSIG record's Error
    /// field with RCODE NOTAUTH. BADSIG shares 16 with BADVERS.
    pub const BADSIG: u16 = 16;
    pub const BADKEY: u16 = 17;
    pub const BADTIME: u16 = 18;
    pub const BADTRUNC: u16 = 22;
}

/// The EDNS(0) parameters of a query (RFC 6891 §6.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    /// Requestor's UDP payload size.
    pub payload: u16,
    /// EDNS version.
    pub version: u8,
    /// The DNSSEC OK bit (RFC 3225).
    pub dnssec_ok: bool,
}

/// A decoded query.
#[derive(Clone)]
pub struct Query {
    /// Message ID.
    pub id: u16,
    /// The header's flag word as received.
    pub flags: u16,
    /// The question name, lowercased.
    pub qname: NameBuf,
    /// Length of the question name as it appears in the message (it is
    /// never compressed in a query we accept, so this is also its wire length).
    pub qname_len: usize,
    /// QTYPE.
    pub qtype: u16,
    /// QCLASS.
    pub qclass: u16,
    /// Offset just after the question.
    pub question_end: usize,
    /// The OPT record, if any.
    pub edns: Option<Edns>,
    /// The last record is a TSIG record (RFC 8945 §5.1): the query is
    /// signed, and its answer must be ([`crate::respond_signed`]).
    pub signed: bool,
    /// The first COOKIE option of the OPT record (RFC 7873 §5.2: the
    /// others are ignored).
    pub cookie: Option<Cookie>,
    /// The OPT record has an NSID option: the client asks who answers
    /// (RFC 5001 §2.1).
    pub nsid: bool,
}

impl Query {
    /// The opcode (RFC 1035 §4.1.1).
    pub fn opcode(&self) -> u8 {
        ((self.flags & flags::OPCODE_MASK) >> 11) as u8
    }
}

/// What to do with a message that is not a well-formed query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    /// No header, or QR set: never answer (RFC 1035 §7.3; answering
    /// responses invites reflection loops).
    #[error("dropped")]
    Drop,
    /// Answer with this rcode and no records.
    #[error("rejected with rcode {rcode}")]
    Reject {
        /// The rcode (may be extended, e.g. BADVERS).
        rcode: u16,
        /// Offset after a readable question to echo, if any.
        question_end: Option<usize>,
        /// The query's EDNS parameters, if the reply carries an OPT.
        edns: Option<Edns>,
    },
}

/// What a response says about itself, read from its header and question
/// alone: the listeners' counters and rate limiting classify each
/// response by it without walking its records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// The header's flag word (QR, AA, TC, ...).
    pub flags: u16,
    /// The header's 4-bit rcode (an extended rcode's upper bits live in
    /// the OPT record and are not read here).
    pub rcode: u16,
    /// QTYPE of the echoed question, 0 when there is none.
    pub qtype: u16,
    /// Records in the answer section.
    pub answers: u16,
    /// Records in the authority section.
    pub authority: u16,
    /// Where the question name lies in the message (`HEADER_LEN..end`),
    /// empty when there is no question.
    pub qname_end: usize,
}

impl Summary {
    /// Reads the header and the question of `response`. `None` when the
    /// message is shorter than a header. A question name is read only
    /// when written plainly (a response echoes the query's name
    /// uncompressed, RFC 1035 §4.1.2); otherwise `qtype` is 0 and the
    /// name empty.
    pub fn of(response: &[u8]) -> Option<Summary> {
        if response.len() < HEADER_LEN {
            return None;
        }
        let fl = u16_at(response, 2)?;
        let mut s = Summary {
            flags: fl,
            rcode: fl & 0x000f,
            qtype: 0,
            answers: u16_at(response, 6)?,
            authority: u16_at(response, 8)?,
            qname_end: HEADER_LEN,
        };
        if u16_at(response, 4)? == 0 {
            return Some(s);
        }
        let mut pos = HEADER_LEN;
        while let Some(&len) = response.get(pos) {
            if len == 0 {
                if let Some(qtype) = u16_at(response, pos + 1) {
                    s.qtype = qtype;
                    s.qname_end = pos + 1;
                }
                break;
            }
            // A pointer or a reserved label type: no plain name to read.
            if len & 0xc0 != 0 {
                break;
            }
            pos += 1 + len as usize;
        }
        Some(s)
    }

    /// The TC bit is set.
    pub fn truncated(&self) -> bool {
        self.flags & flags::TC != 0
    }

    /// The AA bit is set.
    pub fn authoritative(&self) -> bool {
        self.flags & flags::AA != 0
    }
}

fn u16_at(msg: &[u8], pos: usize) -> Option<u16> {
    let b = msg.get(pos..pos + 2)?;
    Some(u16::from_be_bytes([*b.first()?, *b.get(1)?]))
}

/// Skips one resource record at `pos`, returning (type, position of the
/// class field, end position).
fn skip_rr(msg: &[u8], pos: usize, scratch: &mut NameBuf) -> Result<(u16, usize, usize), NameError> {
    let p = scratch.decode(msg, pos)?;
    let rtype = u16_at(msg, p).ok_or(NameError::ShortInput)?;
    let rdlen = u16_at(msg, p + 8).ok_or(NameError::ShortInput)? as usize;
    let end = p + 10 + rdlen;
    if end > msg.len() {
        return Err(NameError::ShortInput);
    }
    Ok((rtype, p + 2, end))
}

/// Decodes a query (RFC 1035 §4.1, RFC 6891 §6).
///
/// A malformed message is a FORMERR. Its reply carries an OPT whenever the
/// walk over the records read one (RFC 6891 §6.1.1: a request with an OPT
/// gets one back; §7: so does a FORMERR for a fault in the OPT itself), and
/// echoes the question when there is exactly one, written plainly.
pub fn decode_query(msg: &[u8]) -> Result<Query, QueryError> {
    let (Some(id), Some(fl)) = (u16_at(msg, 0), u16_at(msg, 2)) else {
        return Err(QueryError::Drop);
    };
    if msg.len() < HEADER_LEN || fl & flags::QR != 0 {
        return Err(QueryError::Drop);
    }
    let qd = u16_at(msg, 4).unwrap_or(0);
    let an = u16_at(msg, 6).unwrap_or(0) as usize;
    let ns = u16_at(msg, 8).unwrap_or(0) as usize;
    let ar = u16_at(msg, 10).unwrap_or(0) as usize;
    let opcode = ((fl & flags::OPCODE_MASK) >> 11) as u8;
    // Nothing past an unreadable question can be read: no OPT to keep.
    let unreadable = || QueryError::Reject { rcode: rcode::FORMERR, question_end: None, edns: None };

    // One question per message (RFC 9619); further ones are only walked
    // over, to reach the OPT record.
    let mut qname = NameBuf::new();
    let mut scratch = NameBuf::new();
    let mut pos = HEADER_LEN;
    let mut question = None;
    for i in 0..qd {
        let name = if i == 0 { &mut qname } else { &mut scratch };
        let p = name.decode(msg, pos).map_err(|_| unreadable())?;
        let (Some(qtype), Some(qclass)) = (u16_at(msg, p), u16_at(msg, p + 2)) else {
            return Err(unreadable());
        };
        if i == 0 {
            question = Some((p + 4, qtype, qclass));
        }
        pos = p + 4;
    }
    // A query's question name is never compressed (there is nothing before
    // it to point to), so its wire length is its span in the message.
    let qname_len = qname.as_slice().len();
    let plain = question.is_some_and(|(end, _, _)| end - 4 - HEADER_LEN == qname_len);
    let question_end = question.map(|(end, _, _)| end).filter(|_| qd == 1 && plain);
    let mut malformed = qd > 1 || (qd == 1 && !plain);

    // Walk the other sections looking for exactly one OPT, in the
    // additional section, owned by the root, holding whole options (RFC
    // 6891 §6.1.1, §6.1.2). Records in the answer and authority sections
    // of a QUERY are ignored, as Knot does.
    let mut edns = None;
    let mut options = Options::default();
    let mut signed = false;
    for i in 0..an + ns + ar {
        let Ok((rtype, class_pos, end)) = skip_rr(msg, pos, &mut scratch) else {
            malformed = true;
            break;
        };
        signed = rtype == code::TSIG && i + 1 == an + ns + ar && i >= an + ns;
        if rtype == code::OPT {
            let read =
                if edns.is_none() { read_options(msg.get(class_pos + 8..end).unwrap_or(&[])) } else { None };
            malformed |= i < an + ns || edns.is_some() || scratch.as_slice() != [0] || read.is_none();
            options = read.unwrap_or_default();
            let payload = u16_at(msg, class_pos).unwrap_or(0);
            let ttl_hi = u16_at(msg, class_pos + 2).unwrap_or(0);
            let ttl_lo = u16_at(msg, class_pos + 4).unwrap_or(0);
            // The first OPT read answers for the query.
            edns.get_or_insert(Edns {
                payload,
                version: (ttl_hi & 0xFF) as u8,
                dnssec_ok: ttl_lo & 0x8000 != 0,
            });
        }
        pos = end;
    }
    // Trailing octets after the last record, or records cut short.
    malformed |= pos != msg.len();
    let reject = |rcode| QueryError::Reject { rcode, question_end, edns };
    if malformed {
        return Err(reject(rcode::FORMERR));
    }
    if edns.is_some_and(|e| e.version > EDNS_VERSION) {
        return Err(reject(rcode::BADVERS));
    }
    let (Some(qend), Some((_, qtype, qclass))) = (question_end, question) else {
        return Err(reject(rcode::FORMERR));
    };
    match opcode {
        0 => {}
        // NOTIFY and UPDATE: we accept them from nobody yet.
        4 | 5 => return Err(reject(rcode::NOTAUTH)),
        _ => return Err(reject(rcode::NOTIMP)),
    }
    qname.make_lowercase();
    let Options { cookie, nsid } = options;
    Ok(Query {
        id,
        flags: fl,
        qname,
        qname_len,
        qtype,
        qclass,
        question_end: qend,
        edns,
        signed,
        cookie,
        nsid,
    })
}

/// The options of an OPT record that the answer acts on.
#[derive(Default)]
struct Options {
    cookie: Option<Cookie>,
    nsid: bool,
}

/// OPT rdata read as a sequence of whole options (RFC 6891 §6.1.2);
/// `None` when it is not one, or when its first COOKIE option has a
/// length RFC 7873 §5.2.2 makes a FORMERR.
fn read_options(mut rdata: &[u8]) -> Option<Options> {
    let mut out = Options::default();
    let mut cookies = 0;
    while !rdata.is_empty() {
        let code = u16_at(rdata, 0)?;
        let len = usize::from(u16_at(rdata, 2)?);
        let data = rdata.get(4..4 + len)?;
        match code {
            crate::cookie::OPTION_CODE => {
                // RFC 7873 §5.2: only the first COOKIE option counts.
                if cookies == 0 {
                    out.cookie = Some(Cookie::decode(data).ok()?);
                }
                cookies += 1;
            }
            // RFC 5001 §2.1: a query's NSID is empty; §2.2 leaves what a
            // server does with payload to it: it asks all the same.
            NSID_OPTION => out.nsid = true,
            _ => {}
        }
        rdata = rdata.get(4 + len..)?;
    }
    Some(out)
}

/// EDNS option code of NSID (RFC 5001 §2.3).
pub const NSID_OPTION: u16 = 3;

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], qtype: u16, opt: Option<(u16, u8, bool)>) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(name);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&1u16.to_be_bytes());
        if let Some((payload, ver, d)) = opt {
            m[11] = 1;
            m.push(0);
            m.extend_from_slice(&41u16.to_be_bytes());
            m.extend_from_slice(&payload.to_be_bytes());
            m.extend_from_slice(&[0, ver, if d { 0x80 } else { 0 }, 0, 0, 0]);
        }
        m
    }

    #[test]
    fn summary_reads_header_counts_and_the_question() {
        let mut r = query(b"\x03www\x07example\x00", 28, None);
        r[2] |= 0x84; // QR, AA
        r[3] = 0x03; // NXDOMAIN
        r[8] = 0;
        r[9] = 1; // one authority record (not present: only counts are read)
        let s = Summary::of(&r).unwrap();
        assert_eq!((s.rcode, s.qtype, s.answers, s.authority), (3, 28, 0, 1));
        assert!(s.authoritative() && !s.truncated());
        assert_eq!(&r[HEADER_LEN..s.qname_end], b"\x03www\x07example\x00");
    }

    #[test]
    fn summary_of_a_cut_or_compressed_question_has_no_type() {
        assert_eq!(Summary::of(&[0u8; 11]), None);
        let r = query(b"\x03www\x07example\x00", 1, None);
        let cut = Summary::of(&r[..HEADER_LEN + 6]).unwrap();
        assert_eq!((cut.qtype, cut.qname_end), (0, HEADER_LEN));
        let mut ptr = r[..HEADER_LEN].to_vec();
        ptr.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1]);
        let p = Summary::of(&ptr).unwrap();
        assert_eq!((p.qtype, p.qname_end), (0, HEADER_LEN));
    }

    #[test]
    fn decodes_a_plain_query_and_lowercases() {
        let q = decode_query(&query(b"\x03WwW\x07example\x03com\x00", 1, None)).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.qname.as_slice(), b"\x03www\x07example\x03com\x00");
        assert_eq!(q.qtype, 1);
        assert!(q.edns.is_none());
    }

    #[test]
    fn decodes_edns_and_rejects_bad_versions() {
        let q = decode_query(&query(b"\x00", 2, Some((4096, 0, true)))).unwrap();
        assert_eq!(q.edns, Some(Edns { payload: 4096, version: 0, dnssec_ok: true }));
        assert!(matches!(
            decode_query(&query(b"\x00", 2, Some((4096, 1, false)))),
            Err(QueryError::Reject { rcode: rcode::BADVERS, .. })
        ));
    }

    #[test]
    fn responses_and_short_messages_are_dropped() {
        let mut r = query(b"\x00", 1, None);
        r[2] |= 0x80;
        assert_eq!(decode_query(&r).err(), Some(QueryError::Drop));
        assert_eq!(decode_query(&[0; 11]).err(), Some(QueryError::Drop));
    }

    #[test]
    fn duplicate_opt_and_trailing_garbage_are_formerr() {
        let mut m = query(b"\x00", 1, Some((1232, 0, false)));
        let opt = m[m.len() - 11..].to_vec();
        m.extend_from_slice(&opt);
        m[11] = 2;
        assert!(matches!(decode_query(&m), Err(QueryError::Reject { rcode: rcode::FORMERR, .. })));
        let mut t = query(b"\x00", 1, None);
        t.push(0xFF);
        assert!(matches!(decode_query(&t), Err(QueryError::Reject { rcode: rcode::FORMERR, .. })));
        let mut lying = query(b"\x00", 1, None);
        lying[11] = 3;
        assert!(matches!(decode_query(&lying), Err(QueryError::Reject { rcode: rcode::FORMERR, .. })));
    }

    /// Regression: a FORMERR for a fault in, or after, the OPT record of a
    /// query was sent without an OPT. RFC 6891 §6.1.1: a request with an
    /// OPT gets one in its response; §7: a fault in the OPT itself is a
    /// FORMERR that "MUST include an OPT record".
    #[test]
    fn formerr_replies_keep_the_opt_of_the_query() {
        let base = query(b"\x00", 1, Some((1232, 0, true)));
        let opt_rr = base[base.len() - 11..].to_vec();
        let mut trailing = base.clone();
        trailing.push(0xFF);
        let mut duplicate = base.clone();
        duplicate.extend_from_slice(&opt_rr);
        duplicate[11] = 2;
        let mut cut_option = base.clone();
        let n = cut_option.len();
        cut_option[n - 1] = 3;
        cut_option.extend_from_slice(&[0, 10, 0]);
        let mut in_answer = base.clone();
        (in_answer[7], in_answer[11]) = (1, 0);
        let mut count_too_high = base.clone();
        count_too_high[11] = 2;
        let mut two_questions = query(b"\x00", 1, None);
        two_questions.extend_from_slice(&[0, 0, 1, 0, 1]);
        two_questions.extend_from_slice(&opt_rr);
        (two_questions[5], two_questions[11]) = (2, 1);
        let want = Some(Edns { payload: 1232, version: 0, dnssec_ok: true });
        for (what, m) in [
            ("trailing octets", trailing),
            ("two OPT records", duplicate),
            ("an option cut short", cut_option),
            ("OPT in the answer section", in_answer),
            ("more records announced than sent", count_too_high),
            ("two questions", two_questions),
        ] {
            match decode_query(&m).err() {
                Some(QueryError::Reject { rcode: rcode::FORMERR, edns, .. }) => {
                    assert_eq!(edns, want, "{what}")
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        // Without an OPT in the query there is none to keep.
        let mut plain = query(b"\x00", 1, None);
        plain.push(0xFF);
        assert_eq!(
            decode_query(&plain).err(),
            Some(QueryError::Reject { rcode: rcode::FORMERR, question_end: Some(17), edns: None })
        );
    }

    /// Regression: an OPT record owned by a name other than the root was
    /// accepted. RFC 6891 §6.1.2: its NAME "MUST be 0 (root domain)"; a
    /// fault in the OPT is a FORMERR that carries an OPT (§7).
    #[test]
    fn opt_owned_by_a_name_other_than_the_root_is_formerr() {
        let mut m = query(b"\x00", 1, Some((1232, 0, false)));
        let at = m.len() - 11;
        m.splice(at..at + 1, *b"\x01x\x00");
        assert_eq!(
            decode_query(&m).err(),
            Some(QueryError::Reject {
                rcode: rcode::FORMERR,
                question_end: Some(17),
                edns: Some(Edns { payload: 1232, version: 0, dnssec_ok: false }),
            })
        );
    }

    /// A query with one OPT holding `options` (code, data).
    fn with_options(options: &[(u16, &[u8])]) -> Vec<u8> {
        let mut m = query(b"\x03www\x07example\x00", 1, Some((1232, 0, false)));
        let rdata: Vec<u8> = options
            .iter()
            .flat_map(|(c, d)| [&c.to_be_bytes()[..], &(d.len() as u16).to_be_bytes(), d].concat())
            .collect();
        let n = m.len();
        m[n - 2..].copy_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(&rdata);
        m
    }

    /// RFC 7873 §4, §5.2.2: a client cookie of 8 octets, then nothing or
    /// a server cookie of 8 to 32; any other length is a FORMERR that
    /// keeps the OPT.
    #[test]
    fn cookie_option_lengths() {
        let data = [0xc5u8; 41];
        for len in [0, 7, 8, 9, 10, 15, 16, 24, 40, 41] {
            let m = with_options(&[(10, &data[..len])]);
            match decode_query(&m) {
                Ok(q) => {
                    assert!(len == 8 || (16..=40).contains(&len), "length {len} accepted");
                    let c = q.cookie.expect("a cookie");
                    assert_eq!((c.client(), c.server().len()), (&[0xc5; 8], len - 8));
                }
                Err(QueryError::Reject { rcode: rcode::FORMERR, edns: Some(_), question_end: Some(_) }) => {
                    assert!(!(len == 8 || (16..=40).contains(&len)), "length {len} refused")
                }
                other => panic!("length {len}: {:?}", other.err()),
            }
        }
    }

    #[test]
    fn nsid_and_other_options_are_read_in_any_order() {
        let q =
            decode_query(&with_options(&[(8, &[0, 1, 24, 0, 192, 0, 2]), (3, b""), (10, &[1; 8])])).unwrap();
        assert!(q.nsid);
        assert_eq!(q.cookie.unwrap().client(), &[1; 8]);
        let q = decode_query(&with_options(&[(3, b"payload")])).unwrap();
        assert!(q.nsid && q.cookie.is_none());
        let q = decode_query(&with_options(&[])).unwrap();
        assert!(!q.nsid && q.cookie.is_none());
        // Only the first COOKIE counts (RFC 7873 §5.2).
        let q = decode_query(&with_options(&[(10, &[1; 8]), (10, &[2; 3])])).unwrap();
        assert_eq!(q.cookie.unwrap().client(), &[1; 8]);
    }

    /// Every cut and every one-octet change of a query with a cookie and
    /// an NSID request decodes, or is refused, without a panic; what
    /// decodes carries a cookie of a legal length.
    #[test]
    fn mutated_option_queries_never_panic() {
        let base = with_options(&[(3, b""), (10, &[7; 24])]);
        let mut inputs = Vec::new();
        for cut in 0..base.len() {
            inputs.push(base[..cut].to_vec());
        }
        for at in 0..base.len() {
            for v in [0u8, 1, 7, 8, 9, 10, 16, 24, 40, 41, 0x7f, 0xff] {
                let mut m = base.clone();
                m[at] = v;
                inputs.push(m);
            }
        }
        for m in inputs {
            if let Ok(q) = decode_query(&m)
                && let Some(c) = q.cookie
            {
                let n = c.server().len();
                assert!(n == 0 || (8..=32).contains(&n), "{m:02x?}");
            }
        }
    }

    #[test]
    fn unknown_opcodes_are_notimp() {
        let mut m = query(b"\x00", 1, None);
        m[2] = 0x10; // opcode 2 (STATUS)
        assert!(matches!(decode_query(&m), Err(QueryError::Reject { rcode: rcode::NOTIMP, .. })));
        m[2] = 0x28; // opcode 5 (UPDATE)
        assert!(matches!(decode_query(&m), Err(QueryError::Reject { rcode: rcode::NOTAUTH, .. })));
    }
}
