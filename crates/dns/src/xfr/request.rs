//! Reading a zone transfer request.
//!
//! A transfer request is a QUERY, so [`decode_query`] reads its header,
//! question and OPT record as for any query (one question, one OPT in the
//! additional section, no trailing octets, BADVERS for EDNS versions
//! above 0). On top of that a transfer asks for:
//!
//! - QTYPE AXFR or IXFR and QCLASS IN: sixgate serves no other class;
//! - an empty answer section (RFC 5936 §2.1);
//! - an authority section that is empty for AXFR (RFC 5936 §2.1) and, for
//!   IXFR, holds exactly the client's SOA of the zone, whose serial says
//!   which version the client has (RFC 1995 §3);
//! - a TSIG record, if any, as the last record (RFC 8945 §5.1).
//!
//! Nothing here allocates, and nothing is decided about who may transfer
//! which zone: the caller looks up the zone and the TSIG key.

use crate::answer::response_flags;
use crate::message::{HEADER_LEN, Query, QueryError, decode_query, flags, rcode};
use crate::name::NameBuf;
use crate::octets::{be16, be32};
use crate::rtype::{CLASS_IN, code};
use crate::tsig::{self, Tsig, TsigError};
use crate::writer::{Opt, Writer};

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The whole zone (RFC 5936).
    Axfr,
    /// The changes since the client's version (RFC 1995).
    Ixfr {
        /// The serial of the client's SOA.
        serial: u32,
    },
}

/// A transfer request that passed every check of [`decode_request`].
#[derive(Clone)]
pub struct Request<'a> {
    /// The header, the question (qname lowercased) and EDNS.
    pub query: Query,
    /// AXFR, or IXFR from a serial.
    pub kind: Kind,
    /// The TSIG record, still to verify with [`tsig::verify_request`]
    /// over [`Request::message`].
    pub tsig: Option<Tsig<'a>>,
    msg: &'a [u8],
}

impl<'a> Request<'a> {
    /// The zone asked for, lowercased.
    pub fn zone(&self) -> &[u8] {
        self.query.qname.as_slice()
    }

    /// The whole request, as received.
    pub fn message(&self) -> &'a [u8] {
        self.msg
    }

    /// The header and the question, as received: every message of the
    /// response starts with them.
    pub fn head(&self) -> &'a [u8] {
        self.msg.get(..self.query.question_end).unwrap_or(&[])
    }

    /// The question name in the client's case.
    pub fn qname(&self) -> &'a [u8] {
        self.msg.get(HEADER_LEN..HEADER_LEN + self.query.qname_len).unwrap_or(&[])
    }
}

impl std::fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("id", &self.query.id)
            .field("zone", &crate::name::to_text(self.zone()))
            .field("kind", &self.kind)
            .field("edns", &self.query.edns)
            .field("tsig", &self.tsig)
            .finish()
    }
}

/// Why a message is not a transfer request sixgate serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// Not a well-formed query at all (see [`decode_query`]).
    #[error(transparent)]
    Query(QueryError),
    /// A well-formed query of another type: the query path answers it.
    #[error("query type {0} is not a zone transfer")]
    NotTransfer(u16),
    /// A class other than IN.
    #[error("class {0} is not served")]
    Class(u16),
    /// Records in the answer section (RFC 5936 §2.1).
    #[error("answer section holds {0} records, none allowed")]
    AnswerRecords(u16),
    /// An authority section other than none (AXFR) or one SOA (IXFR).
    #[error("authority section holds {found} records, {expected} expected")]
    AuthorityRecords {
        /// NSCOUNT.
        found: u16,
        /// What the request type asks for.
        expected: u16,
    },
    /// The IXFR authority record is not an SOA of the zone asked for, or
    /// its rdata is malformed (RFC 1995 §3).
    #[error("ixfr authority record is not an soa of the zone")]
    ClientSoa,
    /// A misplaced or malformed TSIG record (RFC 8945 §5.2: FORMERR).
    #[error(transparent)]
    Tsig(TsigError),
}

impl RequestError {
    /// The rcode to answer with; `None` for a message the transfer path
    /// does not answer: dropped (shorter than a header, or a response),
    /// or a query of another type, which the query path answers.
    pub fn rcode(&self) -> Option<u16> {
        match self {
            RequestError::Query(QueryError::Drop) | RequestError::NotTransfer(_) => None,
            RequestError::Query(QueryError::Reject { rcode, .. }) => Some(*rcode),
            // REFUSED, as the query path answers other classes.
            RequestError::Class(_) => Some(rcode::REFUSED),
            _ => Some(rcode::FORMERR),
        }
    }
}

/// Is `msg` a query for AXFR or IXFR? Reads the header and the first
/// question only, so a listener can route it to the transfer path; what
/// else is wrong with it is for [`decode_request`] to say.
pub fn is_transfer(msg: &[u8]) -> bool {
    let Some(fl) = be16(msg, 2) else { return false };
    if fl & (flags::QR | flags::OPCODE_MASK) != 0 || be16(msg, 4).is_none_or(|qd| qd == 0) {
        return false;
    }
    let mut qname = NameBuf::new();
    let Ok(p) = qname.decode(msg, HEADER_LEN) else { return false };
    matches!(be16(msg, p), Some(code::AXFR | code::IXFR))
}

/// Decodes a transfer request (see the module docs).
pub fn decode_request(msg: &[u8]) -> Result<Request<'_>, RequestError> {
    let query = decode_query(msg).map_err(RequestError::Query)?;
    if !matches!(query.qtype, code::AXFR | code::IXFR) {
        return Err(RequestError::NotTransfer(query.qtype));
    }
    // The walk over every record: whole records, the TSIG last.
    let tsig = tsig::find(msg).map_err(RequestError::Tsig)?;
    let an = be16(msg, 6).unwrap_or(0);
    let ns = be16(msg, 8).unwrap_or(0);
    if an != 0 {
        return Err(RequestError::AnswerRecords(an));
    }
    let kind = if query.qtype == code::AXFR {
        if ns != 0 {
            return Err(RequestError::AuthorityRecords { found: ns, expected: 0 });
        }
        Kind::Axfr
    } else {
        if ns != 1 {
            return Err(RequestError::AuthorityRecords { found: ns, expected: 1 });
        }
        Kind::Ixfr { serial: client_serial(msg, &query).ok_or(RequestError::ClientSoa)? }
    };
    if query.qclass != CLASS_IN {
        return Err(RequestError::Class(query.qclass));
    }
    Ok(Request { query, kind, tsig, msg })
}

/// The serial of the SOA record right after the question (the only
/// authority record, the answer section being empty), if it is an SOA of
/// the question's name and class with well-formed rdata. Its names may
/// be compressed (RFC 1035 §4.1.4; kdig points the owner at the question).
fn client_serial(msg: &[u8], query: &Query) -> Option<u32> {
    let mut name = NameBuf::new();
    let p = name.decode(msg, query.question_end).ok()?;
    name.make_lowercase();
    if name.as_slice() != query.qname.as_slice()
        || be16(msg, p)? != code::SOA
        || be16(msg, p + 2)? != query.qclass
    {
        return None;
    }
    let rdlen = usize::from(be16(msg, p + 8)?);
    let start = p + 10;
    let mname_end = name.decode(msg, start).ok()?;
    let rname_end = name.decode(msg, mname_end).ok()?;
    // Serial, refresh, retry, expire, minimum: 20 octets, then the end.
    if rname_end + 20 != start + rdlen {
        return None;
    }
    be32(msg, rname_end)
}

/// Writes the answer to a request refused with `rcode` into `buf`: the
/// header and, when it is readable, the question of `msg`, no records,
/// and an OPT advertising `edns_payload` when the request had one (RFC
/// 6891 §6.1.1). False, with nothing written, for a message that is
/// never answered (shorter than a header, or a response).
///
/// A request whose TSIG record verified is answered signed: the caller
/// signs the result with [`tsig::sign_response`].
pub fn reject_into(msg: &[u8], rcode: u16, edns_payload: u16, buf: &mut Vec<u8>) -> bool {
    let (question_end, edns) = match decode_query(msg) {
        Ok(q) => (Some(q.question_end), q.edns),
        Err(QueryError::Reject { question_end, edns, .. }) => (question_end, edns),
        Err(QueryError::Drop) => return false,
    };
    let (Some(head), Some(fl)) = (msg.get(..question_end.unwrap_or(HEADER_LEN)), be16(msg, 2)) else {
        return false;
    };
    let qname = match question_end {
        Some(end) => msg.get(HEADER_LEN..end.saturating_sub(4)).unwrap_or(&[]),
        None => &[],
    };
    let w = Writer::new(buf, head, qname, usize::MAX);
    let opt = edns.map(|e| Opt::new(edns_payload, e.dnssec_ok));
    w.finish(response_flags(fl), rcode, opt);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Edns;
    use crate::name;
    use crate::tsig::{Algorithm, Key};

    const SIGNED_AXFR: &[u8] = include_bytes!("../../../../testdata/xfr/knot-axfr.request");
    const SIGNED_IXFR: &[u8] = include_bytes!("../../../../testdata/xfr/knot-ixfr.request");
    const KDIG_AXFR: &[u8] = include_bytes!("../../../../testdata/xfr/kdig-axfr-unsigned.request");
    const KDIG_IXFR_EDNS: &[u8] = include_bytes!("../../../../testdata/xfr/kdig-ixfr-edns.request");

    /// The key of testdata/xfr/capture.py.
    pub(crate) fn capture_key() -> Key {
        Key::new(
            &name::from_text("xfr-test-key.", None).unwrap(),
            Algorithm::HmacSha256,
            b"sixgate xfr test key, hmac-sha256!".to_vec(),
        )
    }

    /// A request for `zone` of type `qtype`, with `authority` after the
    /// question and the counts given.
    fn request(qtype: u16, qclass: u16, an: u16, ns: u16, authority: &[u8]) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0, 0, 0, 1];
        m.extend_from_slice(&an.to_be_bytes());
        m.extend_from_slice(&ns.to_be_bytes());
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&name::from_text("Example.Test.", None).unwrap());
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&qclass.to_be_bytes());
        m.extend_from_slice(authority);
        m
    }

    /// An SOA of the question's name (a pointer to it) with this serial.
    fn soa(class: u16, serial: u32) -> Vec<u8> {
        let mut rr = vec![0xC0, 12, 0, 6];
        rr.extend_from_slice(&class.to_be_bytes());
        rr.extend_from_slice(&[0, 0, 0, 0, 0, 22, 0, 0]);
        rr.extend_from_slice(&serial.to_be_bytes());
        rr.extend_from_slice(&[0; 16]);
        rr
    }

    fn formerr(m: &[u8]) -> Option<u16> {
        decode_request(m).err().and_then(|e| e.rcode())
    }

    #[test]
    fn kdig_requests_decode() {
        let r = decode_request(KDIG_AXFR).unwrap();
        assert_eq!((r.kind, r.query.edns.is_none(), r.tsig.is_none()), (Kind::Axfr, true, true));
        assert_eq!(r.zone(), &name::from_text("example.test.", None).unwrap()[..]);
        assert_eq!(r.head(), KDIG_AXFR, "the head is all of an unsigned AXFR");
        assert_eq!(r.qname(), &KDIG_AXFR[12..26]);

        let r = decode_request(KDIG_IXFR_EDNS).unwrap();
        assert_eq!(r.kind, Kind::Ixfr { serial: 3 });
        assert_eq!(r.query.edns, Some(Edns { payload: 4096, version: 0, dnssec_ok: false }));

        // Signed by kdig -y: the TSIG record verifies as a request's.
        let key = capture_key();
        for (m, kind) in [(SIGNED_AXFR, Kind::Axfr), (SIGNED_IXFR, Kind::Ixfr { serial: 1 })] {
            let r = decode_request(m).unwrap();
            assert_eq!(r.kind, kind);
            let t = r.tsig.as_ref().expect("signed");
            let v = tsig::verify_request(r.message(), t, |_| Some(&key), t.time_signed).unwrap();
            assert_eq!(v.mac, t.mac);
            assert!(is_transfer(m));
        }
    }

    #[test]
    fn the_client_soa_names_its_version() {
        let m = request(code::IXFR, CLASS_IN, 0, 1, &soa(CLASS_IN, 0xFFFF_FFFF));
        assert_eq!(decode_request(&m).unwrap().kind, Kind::Ixfr { serial: u32::MAX });
        // The same SOA with its names written out and in another case.
        let mut plain = request(code::IXFR, CLASS_IN, 0, 1, &[]);
        plain.extend_from_slice(&name::from_text("EXAMPLE.test.", None).unwrap());
        plain.extend_from_slice(&[0, 6, 0, 1, 0, 0, 0, 0, 0, 30]);
        plain.extend_from_slice(b"\x02ns\xC0\x0C\x02hm\xC0\x0C");
        plain.extend_from_slice(&7u32.to_be_bytes());
        plain.extend_from_slice(&[0; 16]);
        assert_eq!(decode_request(&plain).unwrap().kind, Kind::Ixfr { serial: 7 });
    }

    #[test]
    fn the_ixfr_authority_section_must_hold_the_zone_soa() {
        let none = request(code::IXFR, CLASS_IN, 0, 0, &[]);
        assert_eq!(
            decode_request(&none).err(),
            Some(RequestError::AuthorityRecords { found: 0, expected: 1 })
        );
        let mut two = soa(CLASS_IN, 1);
        two.extend_from_slice(&soa(CLASS_IN, 2));
        assert_eq!(formerr(&request(code::IXFR, CLASS_IN, 0, 2, &two)), Some(rcode::FORMERR));
        // Another name, another type, another class, rdata one octet short
        // or long: none says which version the client has.
        let mut other_name = vec![0];
        other_name.extend_from_slice(&soa(CLASS_IN, 1)[2..]);
        let mut not_soa = soa(CLASS_IN, 1);
        not_soa[3] = 2;
        let mut short = soa(CLASS_IN, 1);
        short[11] = 21;
        short.pop();
        let mut long = soa(CLASS_IN, 1);
        long[11] = 23;
        long.push(0);
        for (what, auth) in [
            ("another owner", other_name),
            ("not an soa", not_soa),
            ("another class", soa(3, 1)),
            ("short rdata", short),
            ("long rdata", long),
        ] {
            let m = request(code::IXFR, CLASS_IN, 0, 1, &auth);
            assert_eq!(decode_request(&m).err(), Some(RequestError::ClientSoa), "{what}");
        }
    }

    #[test]
    fn axfr_takes_no_answer_nor_authority_records() {
        assert_eq!(decode_request(&request(code::AXFR, CLASS_IN, 0, 0, &[])).unwrap().kind, Kind::Axfr);
        let m = request(code::AXFR, CLASS_IN, 0, 1, &soa(CLASS_IN, 1));
        assert_eq!(decode_request(&m).err(), Some(RequestError::AuthorityRecords { found: 1, expected: 0 }));
        let m = request(code::AXFR, CLASS_IN, 1, 0, &soa(CLASS_IN, 1));
        assert_eq!(decode_request(&m).err(), Some(RequestError::AnswerRecords(1)));
        assert_eq!(formerr(&m), Some(rcode::FORMERR));
    }

    #[test]
    fn each_fault_has_its_rcode() {
        let axfr = request(code::AXFR, CLASS_IN, 0, 0, &[]);
        let mut two_questions = axfr.clone();
        two_questions[5] = 2;
        two_questions.extend_from_slice(&axfr[12..]);
        let mut trailing = axfr.clone();
        trailing.push(0);
        let mut response = axfr.clone();
        response[2] = 0x80;
        let mut notify = axfr.clone();
        notify[2] = 0x20;
        let mut status = axfr.clone();
        status[2] = 0x10;
        let mut badvers = axfr.clone();
        badvers[11] = 1;
        badvers.extend_from_slice(&[0, 0, 41, 4, 0, 0, 1, 0, 0, 0, 0]);
        for (what, m, want) in [
            ("class CH", request(code::AXFR, 3, 0, 0, &[]), Some(rcode::REFUSED)),
            ("class ANY", request(code::IXFR, 255, 0, 1, &soa(255, 1)), Some(rcode::REFUSED)),
            ("two questions", two_questions, Some(rcode::FORMERR)),
            ("trailing octets", trailing, Some(rcode::FORMERR)),
            ("a response", response, None),
            ("shorter than a header", axfr[..11].to_vec(), None),
            ("a NOTIFY", notify, Some(rcode::NOTAUTH)),
            ("opcode STATUS", status, Some(rcode::NOTIMP)),
            ("EDNS version 1", badvers, Some(rcode::BADVERS)),
            ("a plain query", request(code::SOA, CLASS_IN, 0, 0, &[]), None),
        ] {
            assert_eq!(decode_request(&m).err().and_then(|e| e.rcode()), want, "{what}");
        }
        assert_eq!(
            decode_request(&request(code::A, CLASS_IN, 0, 0, &[])).err(),
            Some(RequestError::NotTransfer(code::A))
        );
    }

    #[test]
    fn a_tsig_record_must_be_last_and_whole() {
        let mut cut = SIGNED_AXFR.to_vec();
        cut.pop();
        assert!(matches!(decode_request(&cut), Err(RequestError::Query(_) | RequestError::Tsig(_))));
        assert_eq!(formerr(&cut), Some(rcode::FORMERR));
        // An OPT after the TSIG record.
        let mut after = SIGNED_AXFR.to_vec();
        after[11] = 2;
        after.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(decode_request(&after).err(), Some(RequestError::Tsig(TsigError::NotLast)));
        assert_eq!(formerr(&after), Some(rcode::FORMERR));
    }

    #[test]
    fn only_transfer_queries_are_routed_here() {
        assert!(is_transfer(KDIG_AXFR) && is_transfer(KDIG_IXFR_EDNS));
        let mut notify = KDIG_AXFR.to_vec();
        notify[2] = 0x20;
        let mut response = KDIG_AXFR.to_vec();
        response[2] |= 0x80;
        let mut no_question = KDIG_AXFR.to_vec();
        no_question[5] = 0;
        for m in [
            notify,
            response,
            no_question,
            request(code::SOA, CLASS_IN, 0, 0, &[]),
            KDIG_AXFR[..27].to_vec(),
            Vec::new(),
        ] {
            assert!(!is_transfer(&m), "{m:?}");
        }
    }

    #[test]
    fn rejections_echo_the_question_and_the_opt() {
        let mut buf = vec![0xEE; 3];
        let ch = request(code::AXFR, 3, 0, 0, &[]);
        assert!(reject_into(&ch, rcode::REFUSED, 1232, &mut buf));
        let mut want = ch.clone();
        want[2] = 0x80;
        want[3] = rcode::REFUSED as u8;
        assert_eq!(buf, want, "the question echoed, QR and the rcode set, nothing else");

        assert!(reject_into(KDIG_IXFR_EDNS, rcode::NOTAUTH, 1232, &mut buf));
        let q = decode_query(&buf[..]).err();
        assert!(matches!(q, Some(QueryError::Drop)), "a response");
        assert_eq!(&buf[..2], &KDIG_IXFR_EDNS[..2]);
        assert_eq!((buf[3] & 0xF, &buf[4..12]), (rcode::NOTAUTH as u8, &[0, 1, 0, 0, 0, 0, 0, 1][..]));
        assert_eq!(&buf[buf.len() - 11..buf.len() - 8], &[0, 0, 41], "an OPT last");

        // A question that cannot be read is not echoed.
        let mut unreadable = KDIG_AXFR.to_vec();
        unreadable[12] = 0x40;
        assert!(reject_into(&unreadable, rcode::FORMERR, 1232, &mut buf));
        assert_eq!(buf.len(), HEADER_LEN);
        assert_eq!(&buf[4..6], &[0, 0]);

        assert!(!reject_into(&KDIG_AXFR[..5], rcode::FORMERR, 1232, &mut buf));
    }
}
