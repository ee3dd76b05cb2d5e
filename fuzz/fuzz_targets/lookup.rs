//! `sixgate_dns::lookup::parse_response` on arbitrary bytes, as the
//! answer to `query(ID, target.test., A)` and to the same query for AAAA.
//!
//! Besides never panicking: a message that does not echo our ID with QR
//! set is never a success; addresses are 4 octets for A and 16 for AAAA,
//! at most `MAX_ADDRESSES`, sorted and distinct; a CNAME target is a
//! valid lowercased name; and since the whole message is read, no strict
//! prefix of a message that succeeded succeeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixgate_dns::lookup::{MAX_ADDRESSES, Outcome, parse_response};
use sixgate_dns::name;
use sixgate_dns::rtype::code;

const ID: u16 = 0x1234;

fuzz_target!(|data: &[u8]| {
    let target = b"\x06target\x04test\x00";
    for (qtype, len) in [(code::A, 4), (code::AAAA, 16)] {
        let Ok(outcome) = parse_response(data, ID, target, qtype) else { continue };
        assert!(data.len() >= 12 && data[..2] == ID.to_be_bytes() && data[2] & 0x80 != 0);
        match &outcome {
            Outcome::Addresses { addresses, .. } => {
                assert!(!addresses.is_empty() && addresses.len() <= MAX_ADDRESSES);
                assert!(addresses.iter().all(|a| a.len() == len));
                assert!(addresses.windows(2).all(|w| w[0] < w[1]));
            }
            Outcome::Cname { target: t, .. } => {
                assert!(name::validate(t).is_ok());
                assert_eq!(&name::to_lowercase(t)[..], &t[..]);
            }
            Outcome::NxDomain | Outcome::NoData => {}
        }
        for cut in [data.len() / 2, data.len() - 1] {
            assert!(parse_response(&data[..cut], ID, target, qtype).is_err(), "prefix of {cut} octets");
        }
    }
});
