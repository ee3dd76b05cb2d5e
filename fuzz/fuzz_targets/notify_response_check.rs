//! The checks of the `notify_response` target, on one input. A module of
//! its own so that `crates/dns/tests/fuzz_targets.rs` runs the same checks
//! over the seeds and mutations of them without cargo-fuzz.
//!
//! `sixgate_dns::notify::decode_notify_response` and `decode_soa_response`
//! on any bytes, as the answers to a NOTIFY and to an SOA query for
//! `example.test.` with ID 0x1234:
//!
//! - never a panic;
//! - a success only for a message that echoes our ID with QR set and the
//!   opcode asked for (NOTIFY, or QUERY with AA for the SOA answer);
//!   another ID never succeeds;
//! - since the whole message is read, no strict prefix of a message that
//!   succeeded succeeds (none, the header, half, all but one octet);
//! - a serial read is the one of an SOA record whose 4 octets are in the
//!   message.

use sixgate_dns::notify::{decode_notify_response, decode_soa_response};

const ID: u16 = 0x1234;
const APEX: &[u8] = b"\x07example\x04test\x00";

/// Runs every check on `data`.
pub(crate) fn check(data: &[u8]) {
    let notify = decode_notify_response(data, ID, APEX);
    let soa = decode_soa_response(data, ID, APEX);
    if notify.is_ok() || soa.is_ok() {
        assert!(data.len() >= 12 && data[..2] == ID.to_be_bytes());
        assert!(data[2] & 0x80 != 0, "success without QR");
        for cut in [0, 12, data.len() / 2, data.len() - 1] {
            if cut < data.len() {
                let prefix = &data[..cut];
                assert!(
                    notify.is_err() || decode_notify_response(prefix, ID, APEX).is_err(),
                    "prefix of {cut}"
                );
                assert!(soa.is_err() || decode_soa_response(prefix, ID, APEX).is_err(), "prefix of {cut}");
            }
        }
        assert!(decode_notify_response(data, ID ^ 1, APEX).is_err(), "another ID");
        assert!(decode_soa_response(data, ID ^ 1, APEX).is_err(), "another ID");
    }
    if notify.is_ok() {
        assert_eq!((data[2] >> 3) & 0x0f, 4, "a NOTIFY response with another opcode");
    }
    if let Ok(serial) = soa {
        assert_eq!((data[2] >> 3) & 0x0f, 0, "an SOA answer with another opcode");
        assert!(data[2] & 0x04 != 0, "an SOA answer without AA");
        assert!(data.windows(4).any(|w| w == serial.to_be_bytes()), "serial not in the message");
    }
}
