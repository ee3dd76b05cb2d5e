//! The checks of the `http_head` target, on one input. A module of its
//! own so that `crates/proxy/tests/fuzz_targets.rs` runs the same checks
//! over the seeds and mutations of them without cargo-fuzz.
//!
//! `sixgate_proxy::http::parse_head` on any bytes, then `rewrite_forwarded`,
//! `HeadReader` fed the same bytes in two pieces, and, for chunked requests,
//! `ChunkedDecoder` on what follows the head.
//!
//! A parsed head ends within the input and within `MAX_HEAD`, re-parses
//! identically from its own octets, and every shorter prefix of those is
//! `Incomplete`. The reader, fed the input cut in two, answers as the parser
//! does whenever it answers. The rewrite re-parses (limits allowing) to the
//! same request: the same fields but the client's forwarding fields (any
//! spelling, `_` for `-`), Connection, and an h2c upgrade's Upgrade and
//! HTTP2-Settings; exactly one X-Forwarded-For, the client's; one Forwarded
//! only when asked for; no other forwarding field; and a Connection that
//! names none of them, nor Host, Content-Length or Transfer-Encoding. The
//! chunked decoder gives the same answer, and the same body without
//! trailers, fed whole or in two pieces; that body decodes to itself, with
//! no trailers.

use std::net::IpAddr;

use sixgate_proxy::http::{
    ChunkedDecoder, FORWARDING_HEADERS, Framing, Head, HeadError, HeadReader, MAX_HEAD, MAX_HEADERS, Version,
    parse_head, rewrite_forwarded,
};

/// `name` as CGI-style stacks see it: lowercase, `_` for `-`. Written here
/// rather than taken from the crate, so the check does not share the code
/// it checks.
fn cgi(name: &[u8]) -> String {
    name.iter().map(|&b| if b == b'_' { '-' } else { char::from(b.to_ascii_lowercase()) }).collect()
}

fn is_forwarding_name(name: &[u8]) -> bool {
    FORWARDING_HEADERS.contains(&cgi(name).as_str())
}

/// The fields the rewrite keeps as they are.
fn kept(h: &Head) -> Vec<(&str, &[u8])> {
    let h2c = h.headers.iter().any(|f| {
        f.name.eq_ignore_ascii_case("http2-settings")
            || (f.name.eq_ignore_ascii_case("upgrade")
                && f.value.split(|&b| b == b',').any(|p| p.trim_ascii().eq_ignore_ascii_case(b"h2c")))
    });
    h.headers
        .iter()
        .filter(|f| !is_forwarding_name(f.name.as_bytes()) && !f.name.eq_ignore_ascii_case("connection"))
        .filter(|f| {
            !(h2c
                && (f.name.eq_ignore_ascii_case("upgrade") || f.name.eq_ignore_ascii_case("http2-settings")))
        })
        .map(|f| (f.name.as_str(), &f.value[..]))
        .collect()
}

/// What a chunked decoder forwards of `body`, fed whole or cut at `cut`:
/// the octets of the body without its trailer lines, and the decoder's
/// verdict; `None` on an error.
fn chunked_forwarded(body: &[u8], cut: Option<usize>) -> Option<(Vec<u8>, usize, bool)> {
    let mut d = ChunkedDecoder::new();
    let pieces: Vec<&[u8]> = match cut {
        None => vec![body],
        Some(c) => {
            let (a, b) = body.split_at(c.min(body.len()));
            vec![a, b]
        }
    };
    let (mut out, mut consumed, mut done) = (Vec::new(), 0, false);
    for p in pieces {
        let f = d.feed(p).ok()?;
        assert!(f.consumed <= p.len() && f.trailers.end <= f.consumed && f.trailers.start <= f.trailers.end);
        out.extend_from_slice(&p[..f.trailers.start.min(f.consumed)]);
        if f.trailers.is_empty() {
            out.extend_from_slice(&p[f.trailers.start.min(f.consumed)..f.consumed]);
        } else {
            out.extend_from_slice(&p[f.trailers.end..f.consumed]);
        }
        consumed += f.consumed;
        done = f.done;
        if done {
            break;
        }
    }
    Some((out, consumed, done))
}

/// Does the complete chunked body `body` end its last chunk with the
/// final empty line, no trailer field between? A walk of its own, so the
/// check does not share the decoder it checks.
fn without_trailers(body: &[u8]) -> bool {
    let mut at = 0;
    loop {
        let Some(eol) = body[at..].windows(2).position(|w| w == b"\r\n") else { return false };
        let line = &body[at..at + eol];
        let digits: Vec<u8> = line.iter().copied().take_while(u8::is_ascii_hexdigit).collect();
        let size = digits
            .iter()
            .try_fold(0u64, |n, &d| n.checked_mul(16)?.checked_add(u64::from(char::from(d).to_digit(16)?)));
        let Some(size) = size else { return false };
        at += eol + 2;
        if size == 0 {
            return &body[at..] == b"\r\n";
        }
        let Some(next) = usize::try_from(size).ok().and_then(|s| at.checked_add(s)?.checked_add(2)) else {
            return false;
        };
        if next > body.len() {
            return false;
        }
        at = next;
    }
}

/// Fed whole and split at `cut`: the same octets are the body, and the
/// same remain once its trailers are left out.
fn chunked_agrees(body: &[u8], cut: usize) {
    let whole = chunked_forwarded(body, None);
    let split = chunked_forwarded(body, Some(cut));
    match (&whole, &split) {
        (Some(w), Some(s)) => {
            assert_eq!(w, s);
            assert!(w.1 <= body.len());
            assert!(w.2 || w.1 == body.len());
            if w.2 {
                // What is forwarded is a complete body of its own, without
                // trailers.
                let f = ChunkedDecoder::new().feed(&w.0).expect("the forwarded body decodes");
                assert!(f.done && f.consumed == w.0.len() && f.trailers.is_empty());
                assert!(without_trailers(&w.0), "trailers forwarded: {:?}", String::from_utf8_lossy(&w.0));
            }
        }
        (None, None) => {}
        (w, s) => panic!("whole {w:?} split {s:?}"),
    }
}

/// The reader fed `data` cut at `cut`: when it answers, it answers as
/// `parse_head` does on the same octets.
fn reader_agrees(data: &[u8], cut: usize) {
    let mut r = HeadReader::new();
    for end in [cut.min(data.len()), data.len()] {
        match r.read(&data[..end]) {
            Err(HeadError::Incomplete) => {}
            got => {
                assert_eq!(got, parse_head(&data[..end]), "reader at {end}");
                return;
            }
        }
    }
    // Still incomplete: the parser saw no end either (it may have refused a
    // complete line early; the reader refuses at the end of the head).
    assert!(data.len() < MAX_HEAD);
    assert!(parse_head(data).is_err(), "the parser found a head the reader did not");
}

/// The target's checks on `data`.
pub(crate) fn check(data: &[u8]) {
    let cut = usize::from(data.first().copied().unwrap_or(0));
    chunked_agrees(data, cut);
    reader_agrees(data, cut);
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
    // The rewrite may add fields and octets (ours, and a rebuilt
    // Connection); past the limits it need not parse.
    let fields = head.headers.len() + 1 + usize::from(forwarded);
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
    let want: Vec<String> = if !forwarded {
        vec![]
    } else if c.is_ipv4() {
        vec![format!("for={c}")]
    } else {
        vec![format!("for=\"[{c}]\"")]
    };
    assert_eq!(named("forwarded"), want.iter().map(|s| s.as_bytes()).collect::<Vec<_>>());
    for f in &again.headers {
        let ours = f.name == "X-Forwarded-For" || f.name == "Forwarded";
        assert!(ours || !is_forwarding_name(f.name.as_bytes()), "{} survived the rewrite", f.name);
        if f.name.eq_ignore_ascii_case("connection") {
            for o in f.value.split(|&b| b == b',').map(<[u8]>::trim_ascii) {
                let framing = ["host", "content-length", "transfer-encoding"].contains(&cgi(o).as_str());
                assert!(
                    !is_forwarding_name(o) && !framing,
                    "Connection still names {:?}",
                    String::from_utf8_lossy(o)
                );
            }
        }
    }
}
