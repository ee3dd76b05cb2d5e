//! Messages made byte by byte: the well-formed ones hickory-proto will not
//! build, and the malformed ones a server must survive.
//!
//! [`malformed_cases`] is the catalogue of malformed inputs with the outcome
//! each must get:
//! - fewer than 12 bytes, or QR=1: no response at all (RFC 1035 §4.1.1; a
//!   server that answers responses can be turned into a reflector or loop);
//! - a header with QR=0 and anything broken after it: FORMERR, with the
//!   question echoed when the question itself parsed.
//!
//! [`flood_message`] draws random hostile messages of every kind for the
//! flood test.

use crate::rng::Rng;

/// Header flag: QR.
pub const QR: u16 = 0x8000;
/// Header flag: AA.
pub const AA: u16 = 0x0400;
/// Header flag: RD.
pub const RD: u16 = 0x0100;

/// A 12-byte header.
pub fn header(id: u16, flags: u16, counts: [u16; 4]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12);
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&flags.to_be_bytes());
    for count in counts {
        out.extend_from_slice(&count.to_be_bytes());
    }
    out
}

/// A name in wire form from dotted text, no escapes (`"www.example.test"`).
pub fn name(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    for label in text.split('.').filter(|label| !label.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out
}

/// A question entry: name, QTYPE, QCLASS.
pub fn question(name_wire: &[u8], qtype: u16, qclass: u16) -> Vec<u8> {
    let mut out = name_wire.to_vec();
    out.extend_from_slice(&qtype.to_be_bytes());
    out.extend_from_slice(&qclass.to_be_bytes());
    out
}

/// An OPT pseudo-RR (RFC 6891 §6.1.2) with the given options.
pub fn opt(payload: u16, ext_rcode: u8, version: u8, flags: u16, options: &[(u16, &[u8])]) -> Vec<u8> {
    let mut rdata = Vec::new();
    for (code, data) in options {
        rdata.extend_from_slice(&code.to_be_bytes());
        rdata.extend_from_slice(&(data.len() as u16).to_be_bytes());
        rdata.extend_from_slice(data);
    }
    let mut out = vec![0];
    out.extend_from_slice(&41u16.to_be_bytes());
    out.extend_from_slice(&payload.to_be_bytes());
    out.push(ext_rcode);
    out.push(version);
    out.extend_from_slice(&flags.to_be_bytes());
    out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
    out.extend_from_slice(&rdata);
    out
}

/// A plain query: header with QDCOUNT=1 (ARCOUNT=1 if `edns`), the question,
/// and the OPT record if given.
pub fn query(id: u16, flags: u16, qname: &str, qtype: u16, edns: Option<&[u8]>) -> Vec<u8> {
    let mut out = header(id, flags, [1, 0, 0, u16::from(edns.is_some())]);
    out.extend_from_slice(&question(&name(qname), qtype, 1));
    if let Some(opt) = edns {
        out.extend_from_slice(opt);
    }
    out
}

/// What a server must do with a crafted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Send nothing.
    NoResponse,
    /// FORMERR, with the question section as `echo` says.
    FormErr {
        /// What the question section must hold.
        echo: Echo,
    },
}

/// The question section of a FORMERR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// The question parsed: it is echoed exactly.
    Question,
    /// The question did not parse: the section is empty.
    Empty,
    /// Either is acceptable (e.g. QDCOUNT=2 with one good question).
    Either,
}

impl Expect {
    /// True if Knot 3.2 does exactly this too. Knot drops a query whose
    /// question does not parse instead of answering FORMERR; sixgate's rule
    /// (FORMERR whenever there is a header with QR=0) is stricter, so those
    /// cases are checked by the hostile test only, not compared with Knot.
    pub fn knot_agrees(&self) -> bool {
        !matches!(self, Self::FormErr { echo: Echo::Empty | Echo::Either })
    }
}

/// One crafted message and its required outcome.
#[derive(Clone, Debug)]
pub struct Crafted {
    /// A short description, e.g. `compression pointer loop in QNAME`.
    pub label: String,
    /// The bytes to send.
    pub bytes: Vec<u8>,
    /// What must come back.
    pub expect: Expect,
}

fn case(label: impl Into<String>, bytes: Vec<u8>, expect: Expect) -> Crafted {
    Crafted { label: label.into(), bytes, expect }
}

/// The deterministic catalogue of malformed messages, built around a name
/// the server is authoritative for (`qname`, dotted, no escapes).
pub fn malformed_cases(qname: &str) -> Vec<Crafted> {
    use Echo::{Either, Empty, Question};
    use Expect::{FormErr, NoResponse};
    let id = 0x4d4d;
    let q = question(&name(qname), 1, 1);
    let mut cases = Vec::new();

    for len in 0..12 {
        let bytes = query(id, 0, qname, 1, None).into_iter().take(len).collect();
        cases.push(case(format!("{len}-byte message (shorter than a header)"), bytes, NoResponse));
    }

    // QR=1: never answered, whatever follows.
    let mut response = header(id, QR | AA, [1, 1, 0, 0]);
    response.extend_from_slice(&q);
    response.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
    cases.push(case("QR=1, a valid-looking response", response, NoResponse));
    cases.push(case("QR=1, header only", header(id, QR, [0; 4]), NoResponse));
    let mut garbage = header(id, QR, [1, 0, 0, 0]);
    garbage.extend_from_slice(&[0xc0, 0xff, 0xff]);
    cases.push(case("QR=1, garbage after the header", garbage, NoResponse));

    cases.push(case("QDCOUNT=0", header(id, 0, [0; 4]), FormErr { echo: Empty }));
    cases.push(case("QDCOUNT=1 but no question", header(id, 0, [1, 0, 0, 0]), FormErr { echo: Empty }));

    let mut looped = header(id, 0, [1, 0, 0, 0]);
    looped.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    cases.push(case("QNAME is a pointer to itself", looped, FormErr { echo: Empty }));

    let mut two_step = header(id, 0, [1, 0, 0, 0]);
    two_step.extend_from_slice(&[1, b'a', 0xc0, 12, 0, 1, 0, 1]);
    cases.push(case("QNAME pointer loop through a label", two_step, FormErr { echo: Empty }));

    let mut forward = header(id, 0, [1, 0, 0, 0]);
    forward.extend_from_slice(&[0xc0, 20, 0, 1, 0, 1, 0, 0, 0]);
    cases.push(case("QNAME pointer forward", forward, FormErr { echo: Empty }));

    let mut beyond = header(id, 0, [1, 0, 0, 0]);
    beyond.extend_from_slice(&[0xc0, 0xff, 0, 1, 0, 1]);
    cases.push(case("QNAME pointer beyond the message", beyond, FormErr { echo: Empty }));

    let mut long_label = header(id, 0, [1, 0, 0, 0]);
    long_label.push(64);
    long_label.extend_from_slice(&[b'x'; 64]);
    long_label.extend_from_slice(&[0, 0, 1, 0, 1]);
    cases.push(case("64-byte label (length byte 0x40, reserved type)", long_label, FormErr { echo: Empty }));

    let mut long_name = header(id, 0, [1, 0, 0, 0]);
    for _ in 0..5 {
        long_name.push(63);
        long_name.extend_from_slice(&[b'y'; 63]);
    }
    long_name.extend_from_slice(&[0, 0, 1, 0, 1]);
    cases.push(case("320-byte QNAME (limit 255)", long_name, FormErr { echo: Empty }));

    let mut cut_label = header(id, 0, [1, 0, 0, 0]);
    cut_label.extend_from_slice(&[10, b'a', b'b', b'c']);
    cases.push(case("QNAME label cut short", cut_label, FormErr { echo: Empty }));

    let mut cut_type = header(id, 0, [1, 0, 0, 0]);
    cut_type.extend_from_slice(&name(qname));
    cut_type.push(0);
    cases.push(case("question without QTYPE/QCLASS", cut_type, FormErr { echo: Empty }));

    for (label, counts) in [
        ("ANCOUNT=5 with no answers", [1, 5, 0, 0]),
        ("NSCOUNT=3 with no authority", [1, 0, 3, 0]),
        ("ARCOUNT=2 with no additional", [1, 0, 0, 2]),
        ("every count 65535 with one question", [1, 0xffff, 0xffff, 0xffff]),
    ] {
        let mut lying = header(id, 0, counts);
        lying.extend_from_slice(&q);
        cases.push(case(label, lying, FormErr { echo: Question }));
    }

    let mut lying_qd = header(id, 0, [2, 0, 0, 0]);
    lying_qd.extend_from_slice(&q);
    cases.push(case("QDCOUNT=2 with one question", lying_qd, FormErr { echo: Either }));

    let mut trailing = header(id, 0, [1, 0, 0, 0]);
    trailing.extend_from_slice(&q);
    trailing.extend_from_slice(b"garbage after the question");
    cases.push(case("trailing garbage after a valid question", trailing, FormErr { echo: Question }));

    let edns = opt(1232, 0, 0, 0, &[]);
    let mut two_opts = header(id, 0, [1, 0, 0, 2]);
    two_opts.extend_from_slice(&q);
    two_opts.extend_from_slice(&edns);
    two_opts.extend_from_slice(&edns);
    cases.push(case("two OPT records", two_opts, FormErr { echo: Question }));

    let mut opt_cut = header(id, 0, [1, 0, 0, 1]);
    opt_cut.extend_from_slice(&q);
    opt_cut.extend_from_slice(edns.get(..edns.len() - 3).unwrap_or_default());
    cases.push(case("OPT record cut short", opt_cut, FormErr { echo: Question }));

    let mut option_cut = header(id, 0, [1, 0, 0, 1]);
    option_cut.extend_from_slice(&q);
    // RDLENGTH 6 holds an option header claiming 10 bytes of data.
    option_cut.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 6, 0, 10, 0, 10, 1, 2]);
    cases.push(case("OPT option longer than its RDATA", option_cut, FormErr { echo: Question }));

    cases
}

/// The kinds of hostile datagram [`flood_message`] draws from.
pub const FLOOD_KINDS: usize = 10;

/// One random hostile message of kind `kind % FLOOD_KINDS`, around `qname`.
/// None of them has QR=1 except kind 9, which is always a response.
pub fn flood_message(rng: &mut Rng, kind: usize, qname: &str) -> Vec<u8> {
    let id = rng.u16();
    let q = question(&name(qname), 1, 1);
    match kind % FLOOD_KINDS {
        // Random bytes of random length, QR cleared half the time so the
        // parser is reached.
        0 => {
            let len = rng.range(0, 600);
            let mut bytes = rng.bytes(len);
            if rng.chance(50)
                && let Some(byte) = bytes.get_mut(2)
            {
                *byte &= 0x7f;
            }
            bytes
        }
        // A truncated header.
        1 => {
            let len = rng.range(0, 11);
            rng.bytes(len)
        }
        // Compression pointer loops of random shape.
        2 => {
            let mut bytes = header(id, 0, [1, 0, 0, 0]);
            let labels = rng.range(0, 3);
            for _ in 0..labels {
                bytes.extend_from_slice(&[1, b'a']);
            }
            let target = 12 + 2 * rng.below(labels + 1);
            bytes.extend_from_slice(&[0xc0, target as u8, 0, 1, 0, 1]);
            bytes
        }
        // Pointers forward or out of range, in the question or an RR.
        3 => {
            let mut bytes = header(id, 0, [1, u16::from(rng.chance(50)), 0, 0]);
            let pointer = 0xc000 | rng.range(14, 0x3fff) as u16;
            if rng.chance(50) {
                bytes.extend_from_slice(&pointer.to_be_bytes());
                bytes.extend_from_slice(&[0, 1, 0, 1]);
            } else {
                bytes.extend_from_slice(&q);
                bytes.extend_from_slice(&pointer.to_be_bytes());
                bytes.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 1, 0, 0]);
            }
            bytes
        }
        // Over-long labels and names.
        4 => {
            let mut bytes = header(id, 0, [1, 0, 0, 0]);
            if rng.chance(50) {
                let len = rng.range(64, 255);
                bytes.push(len as u8);
                bytes.extend(std::iter::repeat_n(b'l', len));
            } else {
                for _ in 0..rng.range(5, 40) {
                    bytes.push(63);
                    bytes.extend_from_slice(&[b'n'; 63]);
                }
            }
            bytes.extend_from_slice(&[0, 0, 1, 0, 1]);
            bytes
        }
        // Lying section counts.
        5 => {
            let counts = [rng.range(1, 3) as u16, rng.u16(), rng.u16(), rng.u16()];
            let mut bytes = header(id, 0, counts);
            bytes.extend_from_slice(&q);
            bytes
        }
        // Duplicate OPT records.
        6 => {
            let copies = rng.range(2, 5);
            let mut bytes = header(id, 0, [1, 0, 0, copies as u16]);
            bytes.extend_from_slice(&q);
            for _ in 0..copies {
                bytes.extend_from_slice(&opt(rng.u16(), 0, rng.u8() % 2, rng.u16(), &[]));
            }
            bytes
        }
        // Trailing garbage after a valid question.
        7 => {
            let mut bytes = header(id, RD, [1, 0, 0, 0]);
            bytes.extend_from_slice(&q);
            let len = rng.range(1, 300);
            bytes.extend(rng.bytes(len));
            bytes
        }
        // A valid query with random header bits (opcode, Z, AD, CD) and type.
        8 => {
            let flags = rng.u16() & 0x7f7f;
            let mut bytes = header(id, flags, [1, 0, 0, 0]);
            bytes.extend_from_slice(&question(&name(qname), rng.u16(), rng.u16()));
            bytes
        }
        // A response (QR=1), valid-looking or not.
        _ => {
            let mut bytes = header(id, QR | (rng.u16() & 0x7fff), [1, 1, 0, 0]);
            bytes.extend_from_slice(&q);
            bytes.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
            if rng.chance(30) {
                bytes.extend(rng.bytes(20));
            }
            bytes
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::Response;

    #[test]
    fn builders_make_parsable_queries() {
        let edns = opt(1232, 0, 0, 0x8000, &[(10, b"12345678")]);
        let bytes = query(9, RD, "www.example.test", 28, Some(&edns));
        let parsed = Response::parse(&bytes).unwrap();
        assert_eq!(parsed.questions.len(), 1);
        let opt = parsed.opt.first().unwrap();
        assert!(opt.dnssec_ok);
        assert_eq!(opt.options.len(), 1);
    }

    #[test]
    fn malformed_cases_really_are_malformed() {
        for case in malformed_cases("example.test") {
            match case.expect {
                Expect::NoResponse => {
                    let short = case.bytes.len() < 12;
                    let response = case.bytes.get(2).is_some_and(|b| b & 0x80 != 0);
                    assert!(short || response, "{}", case.label);
                }
                Expect::FormErr { .. } => {
                    let parsed = Response::parse(&case.bytes);
                    let broken = match &parsed {
                        Err(_) => true,
                        Ok(m) => m.trailing > 0 || m.opt.len() > 1 || m.questions.len() != 1,
                    };
                    assert!(broken, "{} parses cleanly", case.label);
                }
            }
        }
    }

    #[test]
    fn flood_messages_of_kind_nine_are_responses_and_others_are_not() {
        let mut rng = Rng::new(3);
        for round in 0..200 {
            let kind = round % FLOOD_KINDS;
            let bytes = flood_message(&mut rng, kind, "example.test");
            match kind {
                9 => assert!(bytes.get(2).is_some_and(|b| b & 0x80 != 0)),
                2..=8 => assert!(bytes.get(2).is_some_and(|b| b & 0x80 == 0), "kind {kind}"),
                _ => {}
            }
        }
    }
}
