//! `sixgate_dns::tsig` on arbitrary bytes: find the TSIG record, verify it
//! with a fixed key, and answer as a server would.
//!
//! Decode, encode, decode: a well-formed message without a TSIG record is
//! signed with the key, and the result must be found and verified, and
//! the signed response to it must verify as the client would check it.
//! Besides never panicking:
//! - a found record lies inside the message, and its key name and
//!   algorithm name are plain lowercased names;
//! - only a correct MAC passes, so anything the fuzzer makes verifies
//!   only if it is one of our own signatures;
//! - every failure's answer record can be appended, and is found again as
//!   the last record, unsigned (empty MAC) for BADKEY and BADSIG;
//! - a request accepted once is refused the second time by the replay
//!   cache.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixgate_dns::message::HEADER_LEN;
use sixgate_dns::name;
use sixgate_dns::tsig::{self, Algorithm, Key, ReplayCache, Truncation, TsigFailure};

/// The key the seeds (fuzz/seeds/gen.py) sign with.
fn keys() -> [Key; 2] {
    [
        Key::new(b"\x08test-key\x00", Algorithm::HmacSha256, b"sixgate fuzz key".to_vec()),
        Key::new(b"\x07md5-key\x00", Algorithm::HmacMd5, b"sixgate fuzz key".to_vec()),
    ]
}

fn answer(data: &[u8], t: &tsig::Tsig<'_>, keys: &[Key], now: u64, truncation: Truncation) {
    let lookup = |n: &[u8]| keys.iter().find(|k| k.name[..] == *n);
    let mut resp = data[..HEADER_LEN].to_vec();
    resp[2] |= 0x80;
    resp[4..12].fill(0);
    match tsig::verify_request_with(data, t, lookup, now, truncation) {
        Ok(v) => {
            let mut cache = ReplayCache::new(4);
            let v = cache.check(v, now).expect("first sight");
            assert!(matches!(cache.check(v.clone(), now), Err(TsigFailure::BadTime(_))));
            tsig::sign_response(&mut resp, v.key, &v.mac, now, v.fudge, 0, &[]).expect("sign response");
            tsig::verify_response(&resp, v.key, &v.mac, now).expect("our response verifies");
        }
        Err(e) => {
            let before = resp.len();
            e.append_tsig(&mut resp, t, now).expect("error record appends");
            match e {
                TsigFailure::MacLength(_) => assert_eq!(resp.len(), before),
                _ => {
                    let rt = tsig::find(&resp).expect("answer parses").expect("answer is signed");
                    assert_eq!(rt.offset, before);
                    assert_eq!(rt.error, e.error());
                    let unsigned = matches!(e, TsigFailure::BadKey | TsigFailure::BadSig);
                    assert_eq!(rt.mac.is_empty(), unsigned);
                }
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    match tsig::find(data) {
        Ok(Some(t)) => {
            assert!(t.offset >= HEADER_LEN && t.offset < data.len());
            for n in [t.key_name.as_slice(), t.algorithm.as_slice()] {
                assert!(name::validate(n).is_ok());
                assert!(!n.iter().any(u8::is_ascii_uppercase));
            }
            assert!(t.time_signed <= 0xFFFF_FFFF_FFFF);
            // At the signing time, far from it, and with truncation allowed.
            answer(data, &t, &keys, t.time_signed, Truncation::Refuse);
            answer(data, &t, &keys, t.time_signed.wrapping_add(100_000), Truncation::Refuse);
            answer(data, &t, &keys, t.time_signed, Truncation::AtLeast(0));
        }
        Ok(None) => {
            // Sign it, then find and verify the signature we made.
            for key in &keys {
                let mut m = data.to_vec();
                let Ok(mac) = tsig::sign_request(&mut m, key, 1_700_000_000, 300) else {
                    continue;
                };
                let t = tsig::find(&m).expect("signed message parses").expect("signed message has tsig");
                assert_eq!(t.offset, data.len());
                assert_eq!(t.mac, &mac[..]);
                let v = tsig::verify_request(
                    &m,
                    &t,
                    |n: &[u8]| keys.iter().find(|k| k.name[..] == *n),
                    1_700_000_100,
                )
                .expect("our own signature verifies");
                assert_eq!(v.full_mac, mac);
            }
        }
        Err(_) => {}
    }
});
