//! `sixgate_proxy::sni::peek` on arbitrary bytes.
//!
//! Besides never panicking: a name is a valid lowercase host name (LDH
//! labels of 1 to 63 octets, at most 253 octets, not an IPv4 literal); a
//! final answer needs at least a record header and a handshake header, and
//! a name needs a whole ClientHello; and the answer is stable as bytes
//! arrive: every prefix of the input gives `NeedMore` or the input's own
//! answer, and once the answer is final, appending bytes does not change it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixgate_proxy::sni::{MAX_HOST_NAME, MAX_LABEL, Peek, peek};

fn valid_host_name(name: &str) -> bool {
    let labels: Vec<&str> = name.split('.').collect();
    name.len() <= MAX_HOST_NAME
        && labels.iter().all(|l| {
            (1..=MAX_LABEL).contains(&l.len())
                && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && !labels.last().is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()))
}

fuzz_target!(|data: &[u8]| {
    let p = peek(data);
    match &p {
        Peek::NeedMore => return,
        Peek::Sni(name) => {
            assert!(valid_host_name(name), "{name:?}");
            // Record header, handshake header, version, random, three
            // vector lengths, a suite, a compression method, extensions.
            assert!(data.len() >= 5 + 4 + 2 + 32 + 1 + 2 + 2 + 1 + 1 + 2);
            assert!(data[0] == 22 && data[1] == 3);
        }
        Peek::NoSni => assert!(data.len() >= 5 + 4 + 2 + 32 + 1 + 2 + 2 + 1 + 1),
        _ => {}
    }
    for cut in [1, data.len() / 2, data.len().saturating_sub(1)] {
        if cut < data.len() {
            let q = peek(&data[..cut]);
            assert!(q == Peek::NeedMore || q == p, "prefix of {cut}: {q:?}, whole: {p:?}");
        }
    }
    let more = [data, b"\x16\x03\x01\x00\x01\x01", data].concat();
    assert_eq!(peek(&more), p);
});
