//! `sixgate_dns::delegation::parse_ns_response` on arbitrary bytes, as
//! the answer to the query `ns_query(ID, alice.test.)`.
//!
//! Besides never panicking: a success lists at most `MAX_NS` distinct,
//! valid, lowercased names; a message that does not echo our ID with QR
//! set is never a success; and the parse of a prefix of a message that
//! succeeded is never a success with more names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixgate_dns::delegation::{MAX_NS, parse_ns_response};
use sixgate_dns::name;

const ID: u16 = 0x1234;

fuzz_target!(|data: &[u8]| {
    let apex = b"\x05alice\x04test\x00";
    let Ok(ns) = parse_ns_response(data, ID, apex) else { return };
    assert!(ns.len() <= MAX_NS);
    assert!(data.len() >= 12 && data[..2] == ID.to_be_bytes() && data[2] & 0x80 != 0);
    for (i, n) in ns.iter().enumerate() {
        assert!(name::validate(n).is_ok());
        assert_eq!(&name::to_lowercase(n)[..], &n[..]);
        assert!(!ns[..i].contains(n));
    }
    for cut in [data.len() / 2, data.len().saturating_sub(1)] {
        if let Ok(shorter) = parse_ns_response(&data[..cut], ID, apex) {
            assert!(shorter.len() <= ns.len());
        }
    }
});
