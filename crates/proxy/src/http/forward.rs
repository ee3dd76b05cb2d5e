//! The head as sent to the backend: the client's own forwarding headers
//! out, the proxy's in.
//!
//! The proxy is the edge: nothing a client says about where it comes from
//! is trusted, so every field that tells a backend about the client
//! ([`FORWARDING_HEADERS`]) is removed, however it is spelled, and the
//! proxy's `X-Forwarded-For` (and `Forwarded`, when asked) is added. Three
//! ways around a plain name match are closed here:
//!
//! - Field names are compared with `_` read as `-`: CGI-style stacks
//!   (PHP, Puma before CVE-2024-45614's fix) map both to the same variable,
//!   so `X-Forwarded_For` would reach them as X-Forwarded-For.
//! - A `Connection` option that names one of those fields, or a field the
//!   request's framing and routing rest on (Host, Content-Length,
//!   Transfer-Encoding), is dropped: an intermediate behind the proxy that
//!   honours RFC 9110 §7.6.1 would otherwise delete the proxy's own
//!   X-Forwarded-For, or the length the proxy framed the body by.
//! - Trailer fields never reach the backend: the chunked body is forwarded
//!   without its trailer section ([`super::ChunkedDecoder`] says where it
//!   lies; RFC 9112 §7.1.2 lets a recipient discard trailers).
//!
//! An `h2c` upgrade (RFC 9113 §3.1 deprecates it) is forwarded as a plain
//! request: without Upgrade, HTTP2-Settings and their Connection options.

use std::net::IpAddr;

use super::{Head, Header, Version};

/// The fields proxies use to tell a backend about the client (address,
/// scheme, host, port), lowercase; a client's are never forwarded.
pub const FORWARDING_HEADERS: [&str; 12] = [
    "x-forwarded-for",
    "x-real-ip",
    "forwarded",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    // Defence in depth: what popular frameworks read the client from.
    "x-client-ip",
    "client-ip",
    "true-client-ip",
    "x-cluster-client-ip",
    "cf-connecting-ip",
    "fastly-client-ip",
];

/// `name` equals `lower` (lowercase, with `-`), case ignored and `_` read
/// as `-`.
fn same_name(name: &[u8], lower: &str) -> bool {
    name.len() == lower.len()
        && name.iter().zip(lower.bytes()).all(|(&a, b)| {
            let a = a.to_ascii_lowercase();
            a == b || (a == b'_' && b == b'-')
        })
}

/// Is `name` one of [`FORWARDING_HEADERS`], however spelled (case, `_` for
/// `-`)?
pub fn is_forwarding_name(name: &[u8]) -> bool {
    FORWARDING_HEADERS.iter().any(|f| same_name(name, f))
}

/// A Connection option the client may not send on: one that names a
/// forwarding field, or a field the framing and routing rest on; with
/// `h2c`, also the h2c upgrade's own options.
fn dropped_option(option: &[u8], drop: Drops) -> bool {
    is_forwarding_name(option)
        || ["host", "content-length", "transfer-encoding"].iter().any(|f| same_name(option, f))
        || (drop.h2c && ["upgrade", "http2-settings"].iter().any(|f| same_name(option, f)))
        || (drop.close && same_name(option, "close"))
}

/// Which Connection options a forwarded head loses beyond the ones named
/// in [`dropped_option`].
#[derive(Clone, Copy)]
struct Drops {
    /// The h2c upgrade's own options.
    h2c: bool,
    /// `close`: the client's hop ends after this request, the backend's
    /// connection need not (RFC 9110 §7.6.1: Connection is hop-by-hop).
    close: bool,
}

fn trim(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// How one field line is forwarded.
enum Line {
    Copy,
    Drop,
    /// A Connection field with some options dropped.
    Connection,
}

fn line(h: &Header, drop: Drops) -> Line {
    if is_forwarding_name(h.name.as_bytes()) {
        return Line::Drop;
    }
    if drop.h2c && (h.is("upgrade") || h.is("http2-settings")) {
        return Line::Drop;
    }
    if h.is("connection") && h.value.split(|&b| b == b',').any(|o| dropped_option(trim(o), drop)) {
        return Line::Connection;
    }
    Line::Copy
}

/// The head as sent to the backend: the request-line and every field line
/// byte for byte and in order, except that every forwarding field the
/// client sent ([`FORWARDING_HEADERS`], `_` read as `-`) is removed, not
/// appended to, and Connection loses the options that name such fields (a
/// Connection left with none is removed). Then `X-Forwarded-For: <client>`
/// is added, and with `forwarded`, `Forwarded: for=<client>` (RFC 7239
/// §6: IPv6 quoted and bracketed). An IPv4-mapped client address is
/// written as IPv4. Empty lines before the request-line are dropped.
///
/// `buf` must be the buffer `head` was parsed from; if it is not, lines
/// are rebuilt from the parsed fields instead of copied.
pub fn rewrite_forwarded(head: &Head, buf: &[u8], client: IpAddr, forwarded: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(head.head_len + 64);
    rewrite_forwarded_into(head, buf, client, forwarded, &mut out);
    out
}

/// [`rewrite_forwarded`], appended to `out` (a buffer kept for the
/// connection, so a request costs no allocation).
pub fn rewrite_forwarded_into(head: &Head, buf: &[u8], client: IpAddr, forwarded: bool, out: &mut Vec<u8>) {
    rewrite_with(head, buf, &forwarding_lines(client, forwarded), out);
}

/// The field lines the proxy adds: `X-Forwarded-For: <client>`, and with
/// `forwarded`, `Forwarded: for=<client>`. The same for every request of a
/// connection, so a connection builds them once.
pub fn forwarding_lines(client: IpAddr, forwarded: bool) -> Vec<u8> {
    use std::io::Write as _;
    let mut out = Vec::with_capacity(64);
    let client = client.to_canonical();
    let _ = write!(out, "X-Forwarded-For: {client}\r\n");
    if forwarded {
        let _ = match client {
            IpAddr::V4(a) => write!(out, "Forwarded: for={a}\r\n"),
            IpAddr::V6(a) => write!(out, "Forwarded: for=\"[{a}]\"\r\n"),
        };
    }
    out
}

/// [`rewrite_forwarded_into`] with the lines of [`forwarding_lines`]
/// already built.
pub fn rewrite_with(head: &Head, buf: &[u8], ours: &[u8], out: &mut Vec<u8>) {
    rewrite_lines(head, buf, ours, Drops { h2c: head.h2c, close: false }, out);
}

/// [`rewrite_with`], and the client's `Connection: close` is not passed
/// on: the client's connection closes after this request, and the backend
/// connection stays open for another (backend reuse). Without another
/// Connection option the field is removed, and HTTP/1.1 is persistent.
pub fn rewrite_keeping_backend(head: &Head, buf: &[u8], ours: &[u8], out: &mut Vec<u8>) {
    rewrite_lines(head, buf, ours, Drops { h2c: head.h2c, close: true }, out);
}

fn rewrite_lines(head: &Head, buf: &[u8], ours: &[u8], drop: Drops, out: &mut Vec<u8>) {
    use std::io::Write as _;
    match buf.get(head.request_line.start..head.request_line.end + 2) {
        Some(line) if line.starts_with(head.method.as_bytes()) => out.extend_from_slice(line),
        _ => {
            let v = if head.version == Version::Http10 { "HTTP/1.0" } else { "HTTP/1.1" };
            let _ = write!(out, "{} {} {v}\r\n", head.method, head.target);
        }
    }
    for h in &head.headers {
        match line(h, drop) {
            Line::Drop => {}
            Line::Copy => match buf.get(h.line.start..h.line.end + 2) {
                Some(line) if line.starts_with(h.name.as_bytes()) => out.extend_from_slice(line),
                _ => {
                    out.extend_from_slice(h.name.as_bytes());
                    out.extend_from_slice(b": ");
                    out.extend_from_slice(&h.value);
                    out.extend_from_slice(b"\r\n");
                }
            },
            Line::Connection => {
                let mut kept = h.value.split(|&b| b == b',').map(trim).filter(|o| !dropped_option(o, drop));
                let Some(first) = kept.next() else { continue };
                out.extend_from_slice(h.name.as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(first);
                for o in kept {
                    out.extend_from_slice(b", ");
                    out.extend_from_slice(o);
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(ours);
    out.extend_from_slice(b"\r\n");
}
