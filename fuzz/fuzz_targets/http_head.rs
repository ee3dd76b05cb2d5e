//! `sixgate_proxy::http::parse_head` on any bytes, then `rewrite_forwarded`
//! and, for chunked requests, `ChunkedDecoder` on what follows the head.
//!
//! A parsed head ends within the input and within `MAX_HEAD`, re-parses
//! identically from its own octets, and every shorter prefix of those is
//! `Incomplete`. Its rewrite re-parses (limits allowing) to the same
//! request with exactly one X-Forwarded-For, the client's, no X-Real-IP,
//! and one Forwarded only when asked for. The chunked decoder gives the
//! same answer fed whole or in two pieces.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use sixgate_proxy::http::{
    ChunkedDecoder, Framing, Head, HeadError, Header, MAX_HEAD, MAX_HEADERS, Version, parse_head,
    rewrite_forwarded,
};

fn is_forwarding(h: &Header) -> bool {
    ["x-forwarded-for", "x-real-ip", "forwarded"].iter().any(|n| h.name.eq_ignore_ascii_case(n))
}

fn kept(h: &Head) -> Vec<(&str, &[u8])> {
    h.headers.iter().filter(|h| !is_forwarding(h)).map(|h| (h.name.as_str(), &h.value[..])).collect()
}

/// Fed whole and split at `cut`: the same octets are the body.
fn chunked_agrees(body: &[u8], cut: usize) {
    let whole = ChunkedDecoder::new().feed(body);
    let mut d = ChunkedDecoder::new();
    let (a, b) = body.split_at(cut.min(body.len()));
    let split = d.feed(a).and_then(|f| {
        if f.done {
            Ok(f)
        } else {
            d.feed(b).map(|g| sixgate_proxy::http::Feed { consumed: a.len() + g.consumed, done: g.done })
        }
    });
    match (whole, split) {
        (Ok(w), Ok(s)) => {
            assert_eq!(w, s);
            assert!(w.consumed <= body.len());
            assert!(w.done || w.consumed == body.len());
        }
        (Err(_), Err(_)) => {}
        (w, s) => panic!("whole {w:?} split {s:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let cut = usize::from(data.first().copied().unwrap_or(0));
    chunked_agrees(data, cut);
    let head = match parse_head(data) {
        Ok(h) => h,
        Err(HeadError::Incomplete) => {
            assert!(data.len() < MAX_HEAD);
            return;
        }
        Err(e) => {
            assert!(e.status().is_some() || e == HeadError::Http2Preface);
            return;
        }
    };
    assert!(head.head_len <= data.len() && head.head_len <= MAX_HEAD);
    assert!(head.headers.len() <= MAX_HEADERS);
    let own = &data[..head.head_len];
    assert_eq!(parse_head(own).as_ref(), Ok(&head));
    for cut in [0, head.head_len / 2, head.head_len - 1] {
        assert_eq!(parse_head(&own[..cut]), Err(HeadError::Incomplete), "cut {cut}");
    }
    if head.version == Version::Http11 {
        assert!(head.host.is_some());
    }
    if let Some(h) = &head.host {
        assert!(!h.is_empty() && h.len() <= 253);
        assert!(h.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'));
    }
    if head.framing == Framing::Chunked {
        chunked_agrees(&data[head.head_len..], cut);
    }

    let clients: [IpAddr; 3] = [
        "192.0.2.1".parse().unwrap(),
        "2001:db8::1".parse().unwrap(),
        "::ffff:198.51.100.7".parse().unwrap(),
    ];
    let client = clients[data.len() % 3];
    let forwarded = data.len() % 2 == 1;
    let out = rewrite_forwarded(&head, data, client, forwarded);
    let fields = kept(&head).len() + 1 + usize::from(forwarded);
    if fields > MAX_HEADERS || out.len() > MAX_HEAD {
        return;
    }
    let again = parse_head(&out).unwrap_or_else(|e| panic!("rewrite does not parse: {e}"));
    assert_eq!(again.head_len, out.len());
    assert_eq!(
        (&again.method, &again.target, again.version, &again.host, again.framing),
        (&head.method, &head.target, head.version, &head.host, head.framing)
    );
    assert_eq!(
        (again.expect_continue, again.upgrade, again.keep_alive),
        (head.expect_continue, head.upgrade, head.keep_alive)
    );
    assert_eq!(kept(&again), kept(&head));
    let named = |n: &str| {
        again
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(n))
            .map(|h| &h.value[..])
            .collect::<Vec<_>>()
    };
    let c = client.to_canonical();
    assert_eq!(named("x-forwarded-for"), [c.to_string().as_bytes()]);
    assert!(named("x-real-ip").is_empty());
    let want: Vec<String> = if !forwarded {
        vec![]
    } else if c.is_ipv4() {
        vec![format!("for={c}")]
    } else {
        vec![format!("for=\"[{c}]\"")]
    };
    assert_eq!(named("forwarded"), want.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
});
