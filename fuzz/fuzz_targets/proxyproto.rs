//! `sixgate_proxy::proxyproto` decoders on any bytes, and the encoders on
//! addresses taken from the input.
//!
//! A decoded header lies within the input and its version's limit, decodes
//! the same from its own octets, and its addresses (if any) survive being
//! encoded again. The TLVs of a version 2 header are read exactly when
//! the header is, and lie within it. Encoding any address pair in either
//! version gives a header within the limits that decodes to the pair as
//! one family (`same_family`), with the header's length, also with data
//! after it; version 2 with an authority and a unique ID taken from the
//! input carries each of them when within its limit, else leaves it out.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use libfuzzer_sys::fuzz_target;
use sixgate_proxy::proxyproto::{
    Header, MAX_AUTHORITY, MAX_UNIQUE_ID, PP2_TYPE_AUTHORITY, PP2_TYPE_UNIQUE_ID, Tlvs, V1_MAX, V2_MAX, decode,
    decode_v1, decode_v2, decode_v2_tlvs, same_family, v1, v2, v2_with,
};

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
    match (decode_v2(data), decode_v2_tlvs(data)) {
        (Ok(h), Ok(tlvs)) => {
            let start = data.as_ptr() as usize;
            for (_, value) in tlvs {
                let at = value.as_ptr() as usize - start;
                assert!(at + value.len() <= h.len);
            }
        }
        (Err(a), Err(b)) => assert_eq!(a, b),
        (a, b) => panic!("decode_v2 {a:?}, decode_v2_tlvs {b:?}"),
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
        // The rest, cut at its first octet's value, as an authority and a
        // unique ID.
        let tail = &rest[36..];
        let cut = usize::from(tail.first().copied().unwrap_or(0)).min(tail.len());
        let (name, id) = tail.split_at(cut);
        let name = String::from_utf8_lossy(name);
        let tlvs = Tlvs { authority: Some(&name), unique_id: Some(id) };
        let enc = v2_with(src, dst, &tlvs);
        assert!(enc.len() <= V2_MAX);
        assert_eq!(decode(&enc).unwrap(), Header { addresses: Some(want), len: enc.len() });
        let mut want_tlvs = Vec::new();
        if !name.is_empty() && name.len() <= MAX_AUTHORITY {
            want_tlvs.push((PP2_TYPE_AUTHORITY, name.as_bytes()));
        }
        if !id.is_empty() && id.len() <= MAX_UNIQUE_ID {
            want_tlvs.push((PP2_TYPE_UNIQUE_ID, id));
        }
        assert_eq!(decode_v2_tlvs(&enc).unwrap(), want_tlvs);
    }
});
