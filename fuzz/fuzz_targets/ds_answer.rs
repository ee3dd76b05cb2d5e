//! `sixgate_dns::dsquery::parse_ds_response` on arbitrary bytes, as the
//! answer to `ds_query(ID, secure.dnssec.test.)` and to the same query for
//! `insecure.dnssec.test.`.
//!
//! Besides never panicking: a message that does not echo our ID with QR
//! and AA set is never a success; a success holds at most `MAX_DS` DS
//! rdatas, sorted and distinct, each one the rdata of a DS record in the
//! answer section; and since the whole message is read, no strict prefix
//! of a message that succeeded succeeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixgate_dns::dsquery::{MAX_DS, parse_ds_response};

const ID: u16 = 0x1234;
const QR: u8 = 0x80;
const AA: u8 = 0x04;

fuzz_target!(|data: &[u8]| {
    let apexes: [&[u8]; 2] = [b"\x06secure\x06dnssec\x04test\x00", b"\x08insecure\x06dnssec\x04test\x00"];
    for apex in apexes {
        let Ok(answer) = parse_ds_response(data, ID, apex) else { continue };
        assert!(data.len() >= 12 && data[..2] == ID.to_be_bytes());
        assert!(data[2] & QR != 0 && data[2] & AA != 0, "success without QR and AA");
        assert!(answer.rdatas.len() <= MAX_DS);
        assert!(answer.rdatas.windows(2).all(|w| w[0] < w[1]), "rdatas not sorted and distinct");
        // Every rdata kept occurs in the message.
        for rd in &answer.rdatas {
            assert!(rd.is_empty() || data.windows(rd.len()).any(|w| w == &rd[..]));
        }
        if !answer.rdatas.is_empty() {
            assert!(answer.ttl <= i32::MAX as u32);
        }
        for cut in [0, 12, data.len() / 2, data.len() - 1] {
            if cut < data.len() {
                assert!(parse_ds_response(&data[..cut], ID, apex).is_err(), "prefix of {cut} octets");
            }
        }
        assert!(parse_ds_response(data, ID ^ 1, apex).is_err(), "another ID");
    }
});
