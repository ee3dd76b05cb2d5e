//! `sixgate_dns::message::decode_query` on arbitrary bytes.
//!
//! Decode, encode, decode again: a query that decodes is re-encoded from its
//! decoded fields (header, question, OPT with its COOKIE and NSID) by
//! [`encode`] below and must
//! decode to the same fields. Besides never panicking, a decoded query must
//! agree with the bytes it came from and with an independent parser (NLnet
//! Labs `domain`), and the verdict must follow RFC 1035 §7.3 (responses and
//! short messages are dropped, never answered).
#![no_main]

use domain::base::{Message, ParsedName};
use libfuzzer_sys::fuzz_target;
use sixgate_dns::message::{Edns, HEADER_LEN, Query, QueryError, decode_query, flags};
use sixgate_dns::name;

/// A query message carrying exactly what `q` says.
fn encode(q: &Query, question: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(question.len() + 32);
    m.extend_from_slice(&q.id.to_be_bytes());
    m.extend_from_slice(&q.flags.to_be_bytes());
    m.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, u8::from(q.edns.is_some())]);
    m.extend_from_slice(question);
    if let Some(Edns { payload, version, dnssec_ok }) = q.edns {
        let mut options = Vec::new();
        if q.nsid {
            options.extend_from_slice(&[0, 3, 0, 0]);
        }
        if let Some(c) = &q.cookie {
            let len = 8 + c.server().len();
            options.extend_from_slice(&[0, 10, 0, len as u8]);
            options.extend_from_slice(c.client());
            options.extend_from_slice(c.server());
        }
        m.push(0);
        m.extend_from_slice(&41u16.to_be_bytes());
        m.extend_from_slice(&payload.to_be_bytes());
        m.extend_from_slice(&[0, version, if dnssec_ok { 0x80 } else { 0 }, 0]);
        m.extend_from_slice(&(options.len() as u16).to_be_bytes());
        m.extend_from_slice(&options);
    }
    m
}

fn same(a: &Query, b: &Query) -> bool {
    a.id == b.id
        && a.flags == b.flags
        && a.qname.as_slice() == b.qname.as_slice()
        && a.qname_len == b.qname_len
        && a.qtype == b.qtype
        && a.qclass == b.qclass
        && a.edns == b.edns
        && a.cookie == b.cookie
        && a.nsid == b.nsid
}

fuzz_target!(|data: &[u8]| {
    let verdict = decode_query(data);
    let is_response = data.get(2).is_some_and(|b| u16::from(*b) << 8 & flags::QR != 0);
    if data.len() < HEADER_LEN || is_response {
        assert_eq!(verdict.as_ref().err(), Some(&QueryError::Drop), "answerable short message or response");
        return;
    }
    match verdict {
        Ok(q) => {
            assert_eq!(q.flags & flags::QR, 0);
            assert_eq!(q.opcode(), 0, "only QUERY is answered");
            assert_eq!(&data[..2], &q.id.to_be_bytes());
            assert_eq!(&data[2..4], &q.flags.to_be_bytes());
            assert!(q.question_end <= data.len());
            assert_eq!(q.question_end, HEADER_LEN + q.qname_len + 4);
            let qname = q.qname.as_slice();
            assert!(name::validate(qname).is_ok(), "qname is not a valid wire name: {qname:02x?}");
            assert_eq!(qname.len(), q.qname_len);
            assert!(!qname.iter().any(u8::is_ascii_uppercase), "qname not lowercased");
            let raw = &data[HEADER_LEN..HEADER_LEN + q.qname_len];
            assert_eq!(raw.to_ascii_lowercase(), qname, "qname differs from the message");
            assert_eq!(&data[q.question_end - 4..q.question_end - 2], &q.qtype.to_be_bytes());
            assert_eq!(&data[q.question_end - 2..q.question_end], &q.qclass.to_be_bytes());
            if let Some(e) = q.edns {
                assert_eq!(e.version, 0, "EDNS version > 0 must be BADVERS");
            }
            // RFC 7873 §5.2.2: what decodes has a cookie of a legal length.
            if let Some(c) = &q.cookie {
                assert!(q.edns.is_some(), "a cookie without an OPT");
                let n = c.server().len();
                assert!(n == 0 || (8..=32).contains(&n), "server cookie of {n} octets");
            }

            // An independent parser reads the same question.
            let msg = Message::from_octets(data).expect("at least a header");
            let question = msg
                .sole_question()
                .unwrap_or_else(|err| panic!("domain cannot read the question we accepted: {err}"));
            let mut theirs = Vec::new();
            let qn: &ParsedName<_> = question.qname();
            for label in qn.iter() {
                theirs.push(label.len() as u8);
                theirs.extend_from_slice(label.as_slice());
            }
            assert_eq!(theirs.to_ascii_lowercase(), qname, "domain reads another qname");
            assert_eq!(question.qtype().to_int(), q.qtype);
            assert_eq!(question.qclass().to_int(), q.qclass);
            assert_eq!(msg.opt().is_some(), q.edns.is_some(), "domain sees EDNS differently");

            // Encode, decode again.
            let again = encode(&q, &data[HEADER_LEN..q.question_end]);
            match decode_query(&again) {
                Ok(q2) => assert!(same(&q, &q2), "re-encoded query decodes differently"),
                Err(err) => panic!("re-encoded query is refused: {err:?} ({again:02x?})"),
            }
        }
        Err(QueryError::Reject { rcode, question_end, edns }) => {
            assert!(rcode != 0, "rejected with NOERROR");
            if let Some(end) = question_end {
                assert!(end <= data.len() && end >= HEADER_LEN + 5, "bad question_end {end}");
                let qn = &data[HEADER_LEN..end - 4];
                assert!(name::validate(qn).is_ok(), "echoed question name is not a plain name: {qn:02x?}");
            }
            // A well-formed query with an unknown EDNS version is BADVERS;
            // a malformed one is FORMERR, with the OPT it had.
            if edns.is_some_and(|e| e.version > 0) {
                assert!(
                    [sixgate_dns::message::rcode::BADVERS, sixgate_dns::message::rcode::FORMERR]
                        .contains(&rcode),
                    "rcode {rcode} for an EDNS version > 0"
                );
            }
        }
        Err(QueryError::Drop) => panic!("dropped a query with a header and QR clear"),
        Err(err) => panic!("unexpected verdict {err:?}"),
    }
});
