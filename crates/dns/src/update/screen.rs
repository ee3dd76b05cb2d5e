//! The checks a listener makes on an UPDATE before anything is queued.
//!
//! Every UPDATE costs the writer an allocation, a place in its bounded
//! queue and a signature check; a flood of them crowds out the real ones.
//! So the listener first looks at what costs it nothing: the header, the
//! zone section (RFC 2136 §3.1.1) and the presence of a TSIG record as
//! the message's last record (RFC 8945 §5.1). Only a message that could
//! be authentic is queued; one that cannot is answered at once, or
//! dropped when it is not even a header. Nothing here allocates: names
//! are read into stack buffers.
//!
//! The writer checks everything again: passing here proves nothing about
//! the signature.

use super::{CLASS_NONE, OPCODE, Rcode};
use crate::message::HEADER_LEN;
use crate::name::NameBuf;
use crate::octets::be16;
use crate::rtype::{CLASS_ANY, code};
use crate::tsig;

/// What a listener does with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Not an UPDATE request (another opcode, or QR set): answered as a
    /// query is.
    NotUpdate,
    /// An UPDATE shorter than a header: no answer (RFC 1035 §7.3), as for
    /// any message that short.
    Drop,
    /// Answer at once with this rcode; nothing is queued.
    Answer(Rcode),
    /// Well formed as far as the listener looks, and signed: queue it.
    Queue,
}

/// Is `msg` an UPDATE request (opcode 5, QR clear)? Reads one octet.
pub fn is_update(msg: &[u8]) -> bool {
    msg.get(2).is_some_and(|&b| b & 0x80 == 0 && (b >> 3) & 0x0f == OPCODE)
}

/// Screens `msg` (see the module docs).
pub fn screen(msg: &[u8]) -> Screen {
    if !is_update(msg) {
        return Screen::NotUpdate;
    }
    if msg.len() < HEADER_LEN {
        return Screen::Drop;
    }
    // RFC 2136 §3.1.1: one zone, of type SOA, in a real class; FORMERR
    // otherwise, as the writer's decoding answers.
    if be16(msg, 4) != Some(1) {
        return Screen::Answer(Rcode::FormErr);
    }
    let mut zone = NameBuf::new();
    let Ok(p) = zone.decode(msg, HEADER_LEN) else {
        return Screen::Answer(Rcode::FormErr);
    };
    match (be16(msg, p), be16(msg, p + 2)) {
        (Some(code::SOA), Some(class)) if class != CLASS_ANY && class != CLASS_NONE => {}
        _ => return Screen::Answer(Rcode::FormErr),
    }
    // The walk to the last record also checks that every record is whole
    // and nothing trails them.
    match tsig::find(msg) {
        Ok(Some(_)) => Screen::Queue,
        // Unsigned updates are refused: there is no address-based trust.
        Ok(None) => Screen::Answer(Rcode::Refused),
        // RFC 8945 §5.2: a misplaced or malformed TSIG record is FORMERR.
        Err(_) => Screen::Answer(Rcode::FormErr),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name;
    use crate::tsig::{Algorithm, Key};
    use crate::update::{UpdateError, decode, response, response_into};

    const KNSUPDATE: &[u8] = include_bytes!("../../../../testdata/update/knsupdate.bin");

    /// An UPDATE of example.test. adding `www A 192.0.2.1`, unsigned.
    fn unsigned() -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x28, 0x00, 0, 1, 0, 0, 0, 1, 0, 0];
        m.extend_from_slice(&name::from_text("example.test.", None).unwrap());
        m.extend_from_slice(&[0, 6, 0, 1]);
        m.extend_from_slice(&name::from_text("www.example.test.", None).unwrap());
        m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
        m
    }

    fn signed() -> Vec<u8> {
        let mut m = unsigned();
        let key = Key::new(b"\x02k1\x00", Algorithm::HmacSha256, b"0123456789abcdef".to_vec());
        tsig::sign_request(&mut m, &key, 1_700_000_000, 300).unwrap();
        m
    }

    #[test]
    fn only_signed_updates_are_queued() {
        assert_eq!(screen(&signed()), Screen::Queue);
        assert_eq!(screen(&unsigned()), Screen::Answer(Rcode::Refused));
        // A capture of knsupdate without -y: well formed, unsigned.
        assert_eq!(screen(KNSUPDATE), Screen::Answer(Rcode::Refused));
    }

    #[test]
    fn what_is_not_an_update_request_is_left_to_the_query_path() {
        let mut query = unsigned();
        query[2] = 0x01;
        assert_eq!(screen(&query), Screen::NotUpdate);
        let mut response = signed();
        response[2] |= 0x80;
        assert_eq!(screen(&response), Screen::NotUpdate);
        assert_eq!(screen(&[]), Screen::NotUpdate);
        assert_eq!(screen(&[0x12, 0x34]), Screen::NotUpdate);
    }

    #[test]
    fn a_message_shorter_than_a_header_is_dropped() {
        assert_eq!(screen(&[0x12, 0x34, 0x28]), Screen::Drop);
        assert_eq!(screen(&signed()[..11]), Screen::Drop);
    }

    #[test]
    fn a_bad_zone_section_is_formerr_before_any_signature_is_looked_for() {
        for (at, value) in [(5, 0u8), (5, 2)] {
            let mut m = signed();
            m[at] = value;
            assert_eq!(screen(&m), Screen::Answer(Rcode::FormErr), "zocount {value}");
        }
        let zone_end = 12 + name::from_text("example.test.", None).unwrap().len();
        let mut not_soa = signed();
        not_soa[zone_end + 1] = 1;
        assert_eq!(screen(&not_soa), Screen::Answer(Rcode::FormErr));
        for class in [255u8, 254] {
            let mut m = signed();
            m[zone_end + 2] = 0;
            m[zone_end + 3] = class;
            assert_eq!(screen(&m), Screen::Answer(Rcode::FormErr), "class {class}");
        }
        // A header alone: the zone name runs past the end.
        assert_eq!(screen(&signed()[..12]), Screen::Answer(Rcode::FormErr));
    }

    #[test]
    fn a_misplaced_or_cut_tsig_record_is_formerr() {
        let m = signed();
        assert_eq!(screen(&m[..m.len() - 1]), Screen::Answer(Rcode::FormErr));
        let mut trailing = m.clone();
        trailing.push(0);
        assert_eq!(screen(&trailing), Screen::Answer(Rcode::FormErr));
    }

    /// The writer would answer what the listener answers: screening
    /// changes who answers, not the answer.
    #[test]
    fn the_listener_answers_as_the_writer_would() {
        for m in [unsigned(), KNSUPDATE.to_vec()] {
            assert!(decode(&m).is_ok());
            assert!(tsig::find(&m).unwrap().is_none());
        }
        let mut bad_zone = signed();
        bad_zone[5] = 2;
        assert_eq!(decode(&bad_zone), Err(UpdateError::ZoneCount(2)));
        let mut out = vec![0xff; 3];
        for (m, rcode) in [(unsigned(), Rcode::Refused), (bad_zone, Rcode::FormErr)] {
            response_into(&m, rcode.code(), &mut out);
            assert_eq!(out, response(&m, rcode.code()));
        }
    }
}
