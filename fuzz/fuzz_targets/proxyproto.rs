//! `sixgate_proxy::proxyproto` decoders on any bytes, and the encoders on
//! addresses taken from the input.
//!
//! A decoded header lies within the input and its version's limit, decodes
//! the same from its own octets, and its addresses (if any) survive being
//! encoded again. Encoding any address pair in either version gives a
//! header within the limits that decodes to the pair as one family
//! (`same_family`), with the header's length, also with data after it.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use sixgate_proxy::proxyproto::{Header, V1_MAX, V2_MAX, decode, decode_v1, decode_v2, same_family, v1, v2};

fn check_decoded(data: &[u8], h: &Header, max: usize) {
    assert!(h.len <= data.len() && h.len <= max);
    assert_eq!(decode(&data[..h.len]).as_ref(), Ok(h));
    if let Some((s, d)) = h.addresses {
        assert_eq!(s.is_ipv4(), d.is_ipv4());
        for enc in [v1(s, d), v2(s, d)] {
            assert_eq!(decode(&enc).unwrap().addresses, Some((s, d)));
        }
    }
}

fn addr(b: &[u8], v4: bool) -> SocketAddr {
    let port = u16::from_be_bytes([b[16], b[17]]);
    let ip: IpAddr = if v4 {
        Ipv4Addr::new(b[0], b[1], b[2], b[3]).into()
    } else {
        Ipv6Addr::from(<[u8; 16]>::try_from(&b[..16]).unwrap()).into()
    };
    SocketAddr::new(ip, port)
}

fuzz_target!(|data: &[u8]| {
    if let Ok(h) = decode_v1(data) {
        check_decoded(data, &h, V1_MAX);
    }
    if let Ok(h) = decode_v2(data) {
        check_decoded(data, &h, V2_MAX);
    }
    let _ = decode(data);

    if let [flags, rest @ ..] = data
        && rest.len() >= 36
    {
        let src = addr(&rest[..18], flags & 1 != 0);
        let dst = addr(&rest[18..36], flags & 2 != 0);
        let want = same_family(src, dst);
        for (enc, max) in [(v1(src, dst), V1_MAX), (v2(src, dst), V2_MAX)] {
            assert!(enc.len() <= max);
            let mut with_data = enc.clone();
            with_data.extend_from_slice(&rest[36..]);
            let h = decode(&with_data).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&enc)));
            assert_eq!(h, Header { addresses: Some(want), len: enc.len() });
        }
    }
});
