//! Multi-message TSIG against a real implementation: a signed AXFR and
//! IXFR that knotd sent kdig (testdata/xfr/capture.py), verified message
//! by message, and signed again by [`StreamSigner`] to the same octets.

use super::*;
use crate::tsig::Tsig;

const AXFR_REQUEST: &[u8] = include_bytes!("../../../../testdata/xfr/knot-axfr.request");
const AXFR_RESPONSE: &[u8] = include_bytes!("../../../../testdata/xfr/knot-axfr.response");
const IXFR_REQUEST: &[u8] = include_bytes!("../../../../testdata/xfr/knot-ixfr.request");
const IXFR_RESPONSE: &[u8] = include_bytes!("../../../../testdata/xfr/knot-ixfr.response");

/// The key of testdata/xfr/capture.py.
fn key() -> Key {
    Key::new(b"\x0cxfr-test-key\x00", Algorithm::HmacSha256, b"sixgate xfr test key, hmac-sha256!".to_vec())
}

/// The messages of a TCP stream (two-octet length, message).
fn split(mut stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while !stream.is_empty() {
        let len = usize::from(u16::from_be_bytes([stream[0], stream[1]]));
        out.push(stream[2..2 + len].to_vec());
        stream = &stream[2 + len..];
    }
    out
}

fn tsig_of(msg: &[u8]) -> Tsig<'_> {
    find(msg).unwrap().expect("signed")
}

/// `msg` without its TSIG record, as it was before signing.
fn unsigned(msg: &[u8]) -> Vec<u8> {
    let t = tsig_of(msg);
    let mut m = msg[..t.offset].to_vec();
    m[11] -= 1;
    m
}

#[test]
fn knots_signed_transfers_verify_message_by_message() {
    let key = key();
    for (request, response, count) in [(AXFR_REQUEST, AXFR_RESPONSE, 3), (IXFR_REQUEST, IXFR_RESPONSE, 1)] {
        let msgs = split(response);
        assert_eq!(msgs.len(), count);
        let mut v = StreamVerifier::new(&key, tsig_of(request).mac);
        for m in &msgs {
            v.verify(m, tsig_of(m).time_signed).unwrap();
        }
        v.finish().unwrap();
        assert_eq!(v.signed(), count);
    }
}

/// RFC 8945 §5.3.1 as Knot reads it: the same request MAC, messages,
/// times and fudge give the same MACs, octet for octet.
#[test]
fn the_signer_signs_as_knot_does() {
    let request_mac = tsig_of(AXFR_REQUEST).mac.to_vec();
    let msgs = split(AXFR_RESPONSE);
    let mut signer = StreamSigner::new(key(), &request_mac, tsig_of(&msgs[0]).fudge);
    for (i, m) in msgs.iter().enumerate() {
        let mut ours = unsigned(m);
        let before = ours.len();
        signer.sign(&mut ours, tsig_of(m).time_signed).unwrap();
        assert_eq!(ours.len() - before, signer.record_len(), "record_len is the record's length");
        assert_eq!(ours, *m, "message {i}");
    }
}

#[test]
fn a_changed_message_breaks_it_and_every_later_one() {
    let key = key();
    let request_mac = tsig_of(AXFR_REQUEST).mac;
    let msgs = split(AXFR_RESPONSE);
    let now = tsig_of(&msgs[0]).time_signed;
    let mut changed = msgs.clone();
    changed[1][100] ^= 0x20;
    let mut v = StreamVerifier::new(&key, request_mac);
    v.verify(&changed[0], now).unwrap();
    assert_eq!(v.verify(&changed[1], now), Err(ResponseError::BadSig));
    assert_eq!(v.verify(&changed[2], now), Err(ResponseError::BadSig), "after a failure, all fail");
    assert_eq!(v.finish(), Err(ResponseError::BadSig));
    // Without message 1, message 2's MAC does not chain.
    let mut v = StreamVerifier::new(&key, request_mac);
    v.verify(&msgs[0], now).unwrap();
    assert_eq!(v.verify(&msgs[2], now), Err(ResponseError::BadSig));
    // Out of the fudge.
    let mut v = StreamVerifier::new(&key, request_mac);
    assert_eq!(v.verify(&msgs[0], now + 301), Err(ResponseError::BadTime));
    // Another key.
    let other = Key::new(b"\x0cxfr-test-key\x00", Algorithm::HmacSha256, b"another secret".to_vec());
    assert_eq!(StreamVerifier::new(&other, request_mac).verify(&msgs[0], now), Err(ResponseError::BadSig));
    let renamed = Key::new(b"\x05other\x00", Algorithm::HmacSha256, key.secret.clone());
    assert_eq!(
        StreamVerifier::new(&renamed, request_mac).verify(&msgs[0], now),
        Err(ResponseError::WrongKey)
    );
}

/// A response whose message 1 of 3 is unsigned, as RFC 8945 §5.3.1
/// allows: message 2's MAC covers message 1 whole.
fn with_unsigned_middle(key: &Key, request_mac: &[u8]) -> Vec<Vec<u8>> {
    let msgs = split(AXFR_RESPONSE);
    let now = tsig_of(&msgs[0]).time_signed;
    let mut signer = StreamSigner::new(key.clone(), request_mac, 300);
    let mut first = unsigned(&msgs[0]);
    signer.sign(&mut first, now).unwrap();
    let middle = unsigned(&msgs[1]);
    let mut last = unsigned(&msgs[2]);
    let mut h = Hasher::new(key).unwrap();
    h.prior_mac(tsig_of(&first).mac);
    h.message(&middle, middle.len(), u16::from_be_bytes([middle[0], middle[1]]), 0);
    h.message(&last, last.len(), u16::from_be_bytes([last[0], last[1]]), 0);
    h.timers(now, 300);
    let mac = h.finish();
    let key_name = NameBuf::lowercased(&key.name);
    let v = Variables {
        key_name: key_name.as_slice(),
        algorithm: key.algorithm.name_wire(),
        ttl: 0,
        time_signed: now,
        fudge: 300,
        error: 0,
        other: &[],
    };
    append(&mut last, &v, &mac).unwrap();
    vec![first, middle, last]
}

#[test]
fn unsigned_messages_between_signed_ones_are_digested_into_the_next() {
    let key = key();
    let request_mac = tsig_of(AXFR_REQUEST).mac;
    let msgs = with_unsigned_middle(&key, request_mac);
    let now = tsig_of(&msgs[0]).time_signed;
    let mut v = StreamVerifier::new(&key, request_mac);
    for m in &msgs {
        v.verify(m, now).unwrap();
    }
    v.finish().unwrap();
    assert_eq!(v.signed(), 2);
    // Ending on the unsigned one is not a complete response.
    let mut v = StreamVerifier::new(&key, request_mac);
    v.verify(&msgs[0], now).unwrap();
    v.verify(&msgs[1], now).unwrap();
    assert_eq!(v.finish(), Err(ResponseError::Unsigned));
    // Nor is an unsigned first message, or the 100th unsigned in a row.
    let mut v = StreamVerifier::new(&key, request_mac);
    assert_eq!(v.verify(&msgs[1], now), Err(ResponseError::Unsigned));
    let mut v = StreamVerifier::new(&key, request_mac);
    v.verify(&msgs[0], now).unwrap();
    for _ in 0..StreamVerifier::MAX_UNSIGNED {
        v.verify(&msgs[1], now).unwrap();
    }
    assert_eq!(v.verify(&msgs[1], now), Err(ResponseError::Unsigned));
}

#[test]
fn the_signer_chains_from_the_request_mac() {
    let key = key();
    let msgs = split(AXFR_RESPONSE);
    let now = tsig_of(&msgs[0]).time_signed;
    // Signed for another request: the first MAC differs, and so does
    // every later one, although their digests share all else.
    let mut a = StreamSigner::new(key.clone(), &[1; 32], 300);
    let mut b = StreamSigner::new(key, &[2; 32], 300);
    for m in &msgs {
        let (mut x, mut y) = (unsigned(m), unsigned(m));
        a.sign(&mut x, now).unwrap();
        b.sign(&mut y, now).unwrap();
        assert_ne!(tsig_of(&x).mac, tsig_of(&y).mac);
    }
    // A message that cannot be signed leaves the chain as it was.
    let mut c = StreamSigner::new(self::key(), &[1; 32], 300);
    assert_eq!(c.sign(&mut vec![0; 5], now), Err(SignError::NoHeader));
    let (mut x, mut y) = (unsigned(&msgs[0]), unsigned(&msgs[0]));
    c.sign(&mut x, now).unwrap();
    StreamSigner::new(self::key(), &[1; 32], 300).sign(&mut y, now).unwrap();
    assert_eq!(x, y);
}
