//! HTTP/1.1 request heads (RFC 9112): reading one strictly enough that the
//! proxy and the backend can never disagree about where it ends or which
//! host it names, and writing it back out with our forwarding headers.
//!
//! The proxy routes plain HTTP by Host, so a request we pass on must mean
//! the same thing to every parser behind us. Anything RFC 9112 lets a
//! server reject, or that is a known request-smuggling vector, is
//! refused here with its own [`HeadError`]: bare LF, obs-fold, whitespace
//! before a colon, loose request-lines, Content-Length together with
//! Transfer-Encoding, repeated Content-Length, and any Transfer-Encoding
//! other than a single `chunked`. `httparse` tokenizes; the line and
//! framing rules are checked here first, so each refusal is precise.
//!
//! The body that follows a head is framed by [`Framing`]: a length, or
//! chunks read by [`ChunkedDecoder`], which finds where the next
//! pipelined request starts.

use std::ops::Range;

mod chunked;
mod forward;
mod reader;
mod response;
pub use chunked::{ChunkError, ChunkedDecoder, Feed, MAX_CHUNK_LINE, MAX_TRAILERS};
pub use forward::{
    FORWARDING_HEADERS, forwarding_lines, is_forwarding_name, rewrite_forwarded, rewrite_forwarded_into,
    rewrite_keeping_backend, rewrite_with,
};
pub use reader::HeadReader;
pub use response::{MAX_RESPONSE_HEAD, ResponseError, ResponseEvent, Responses, Step, status_of, with_close};

/// The largest head read, request-line to the empty line included.
pub const MAX_HEAD: usize = 16 * 1024;

/// The most header fields in one head.
pub const MAX_HEADERS: usize = 100;

/// The HTTP version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

/// How the request's body is delimited (RFC 9112 §6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Framing {
    /// No body: neither Content-Length nor Transfer-Encoding.
    None,
    /// Exactly this many octets.
    ContentLength(u64),
    /// Chunked; read it with [`ChunkedDecoder`].
    Chunked,
}

/// One header field line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The field name as sent.
    pub name: String,
    /// The field value without surrounding whitespace. Not necessarily
    /// UTF-8 (RFC 9110 §5.5 obs-text).
    pub value: Vec<u8>,
    /// Where the whole line, CRLF included, lies in the parsed buffer.
    line: Range<usize>,
}

impl Header {
    fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// A checked request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method, case preserved (methods are case-sensitive).
    pub method: String,
    /// The request-target as sent.
    pub target: String,
    /// 1.0 or 1.1.
    pub version: Version,
    /// The header fields, in order.
    pub headers: Vec<Header>,
    /// Octets the head takes in the buffer, leading empty lines and the
    /// final empty line included: the body starts there.
    pub head_len: usize,
    /// The host to route by: lowercased, without port or trailing dot,
    /// from the Host header or an absolute-form target (which must agree).
    /// `None` only for HTTP/1.0 without either.
    pub host: Option<String>,
    /// How the body is delimited.
    pub framing: Framing,
    /// HTTP/1.1 with `Expect: 100-continue` (RFC 9110 §10.1.1; ignored
    /// for 1.0).
    pub expect_continue: bool,
    /// HTTP/1.1 with an `upgrade` Connection option and an Upgrade header
    /// (RFC 9110 §7.8), other than `h2c`.
    pub upgrade: bool,
    /// The request asks for the h2c upgrade (an `h2c` Upgrade protocol, or
    /// HTTP2-Settings): RFC 9113 §3.1 deprecates it, so it is never an
    /// upgrade here, and its fields are not forwarded.
    h2c: bool,
    /// Whether the connection stays open after this exchange: 1.1 unless
    /// `Connection: close`, 1.0 only with `Connection: keep-alive`.
    pub keep_alive: bool,
    /// The request-line, CRLF included.
    request_line: Range<usize>,
}

impl Head {
    /// May this request be sent again if the connection it went over
    /// closes before any octet of its answer? Only an idempotent method
    /// (RFC 9110 §9.2.2) without a body, so that the head alone is the
    /// whole request.
    pub fn may_be_sent_again(&self) -> bool {
        matches!(self.framing, Framing::None | Framing::ContentLength(0))
            && matches!(self.method.as_str(), "GET" | "HEAD" | "OPTIONS" | "TRACE" | "PUT" | "DELETE")
    }
}

/// Why a head was refused. Every variant but `Incomplete` is final: answer
/// [`HeadError::status`] and close.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// No complete head yet: read more.
    #[error("incomplete request head")]
    Incomplete,
    /// No end of head within [`MAX_HEAD`] octets.
    #[error("request head larger than 16384 octets")]
    TooLarge,
    /// More than [`MAX_HEADERS`] fields.
    #[error("more than 100 header fields")]
    TooManyHeaders,
    /// An HTTP/2 connection preface on an HTTP/1 port.
    #[error("http/2 connection preface")]
    Http2Preface,
    /// A version other than HTTP/1.0 and HTTP/1.1.
    #[error("unsupported http version")]
    UnsupportedVersion,
    /// Not `method SP request-target SP HTTP-version` with single spaces.
    #[error("malformed request-line")]
    BadRequestLine,
    /// A request-target that is not origin-form, absolute-form (http or
    /// https, no userinfo) or `*` for OPTIONS. CONNECT is refused here.
    #[error("unsupported request-target")]
    InvalidTarget,
    /// A LF not preceded by CR (RFC 9112 §2.2).
    #[error("bare lf line ending")]
    BareLf,
    /// A CR not followed by LF (RFC 9112 §2.2).
    #[error("bare cr")]
    BareCr,
    /// A field line starting with whitespace: obs-fold, or whitespace
    /// before the first field (RFC 9112 §5.2, §2.2).
    #[error("obsolete line folding")]
    ObsFold,
    /// Whitespace between a field name and its colon (RFC 9112 §5.1).
    #[error("whitespace before colon in header field")]
    SpaceBeforeColon,
    /// A field name that is empty, not a token, or without a colon.
    #[error("invalid header field name")]
    InvalidHeaderName,
    /// A control character (NUL, DEL, ...) in a field value.
    #[error("invalid header field value")]
    InvalidHeaderValue,
    /// HTTP/1.1 without Host (RFC 9112 §3.2).
    #[error("missing host header")]
    MissingHost,
    /// More than one Host header (RFC 9112 §3.2).
    #[error("duplicate host header")]
    DuplicateHost,
    /// A Host that is not a DNS name with an optional port.
    #[error("invalid host")]
    InvalidHost,
    /// A Host that is an IP address: the proxy routes by name only.
    #[error("ip literal host")]
    IpLiteralHost,
    /// An absolute-form target whose host differs from the Host header.
    #[error("host header does not match the request-target")]
    HostMismatch,
    /// Both Content-Length and Transfer-Encoding (RFC 9112 §6.3 item 3).
    #[error("both content-length and transfer-encoding")]
    ContentLengthWithTransferEncoding,
    /// More than one Content-Length, or a list in one, even with equal
    /// values (RFC 9112 §6.3 item 5 allows collapsing equal values; we
    /// refuse, as no correct client sends them).
    #[error("duplicate content-length")]
    DuplicateContentLength,
    /// A Content-Length that is not 1*DIGIT within u64.
    #[error("invalid content-length")]
    InvalidContentLength,
    /// Transfer-Encoding whose final coding is not `chunked`, or `chunked`
    /// applied more than once (RFC 9112 §6.3 item 4, §7).
    #[error("chunked is not the final transfer coding")]
    ChunkedNotFinal,
    /// A transfer coding besides `chunked` (RFC 9112 §6.1: 501).
    #[error("unsupported transfer coding")]
    UnsupportedTransferEncoding,
    /// Transfer-Encoding in an HTTP/1.0 request: faulty framing (RFC 9112 §6.1).
    #[error("transfer-encoding in an http/1.0 request")]
    TransferEncodingInHttp10,
    /// httparse refused what the checks above let through.
    #[error("malformed request head: {0}")]
    Syntax(&'static str),
}

impl HeadError {
    /// The status to answer with before closing, or `None` when nothing
    /// should be answered (read more, or not an HTTP/1 client).
    pub fn status(&self) -> Option<u16> {
        match self {
            HeadError::Incomplete | HeadError::Http2Preface => None,
            HeadError::TooLarge | HeadError::TooManyHeaders => Some(431),
            HeadError::UnsupportedVersion => Some(505),
            HeadError::UnsupportedTransferEncoding => Some(501),
            _ => Some(400),
        }
    }
}

/// Reads the request head at the start of `buf`.
pub fn parse_head(buf: &[u8]) -> Result<Head, HeadError> {
    let mut lines = Lines { buf, pos: 0 };
    // RFC 9112 §2.2: ignore empty lines before the request-line.
    let mut request_line = lines.next_line()?;
    while request_line.is_empty() {
        request_line = lines.next_line()?;
    }
    let version = check_request_line(line_bytes(buf, &request_line))?;
    let mut spans = Vec::new();
    loop {
        let line = lines.next_line()?;
        if line.is_empty() {
            break;
        }
        if spans.len() == MAX_HEADERS {
            return Err(HeadError::TooManyHeaders);
        }
        check_field_line(line_bytes(buf, &line))?;
        spans.push(line);
    }
    let head_len = lines.pos;

    let mut raw = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut raw);
    let tail = buf.get(request_line.start..head_len).ok_or(HeadError::Incomplete)?;
    match req.parse(tail) {
        Ok(httparse::Status::Complete(n)) if n == tail.len() => {}
        Ok(_) => return Err(HeadError::Syntax("head ends elsewhere")),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooManyHeaders),
        Err(e) => return Err(HeadError::Syntax(httparse_error(e))),
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(HeadError::Syntax("no request-line"));
    };
    if req.headers.len() != spans.len() {
        return Err(HeadError::Syntax("field count differs"));
    }
    let headers: Vec<Header> = req
        .headers
        .iter()
        .zip(spans)
        .map(|(h, line)| Header { name: h.name.to_string(), value: trim_ows(h.value).to_vec(), line })
        .collect();

    let host = host(method, target, version, &headers)?;
    let framing = framing(version, &headers)?;
    let options = list(&headers, "connection");
    let has_option = |o: &str| options.iter().any(|t| t.eq_ignore_ascii_case(o.as_bytes()));
    let http11 = version == Version::Http11;
    let expect_continue =
        http11 && headers.iter().any(|h| h.is("expect") && h.value.eq_ignore_ascii_case(b"100-continue"));
    let h2c = list(&headers, "upgrade").iter().any(|p| p.eq_ignore_ascii_case(b"h2c"))
        || headers.iter().any(|h| h.is("http2-settings"));
    let upgrade = http11
        && !h2c
        && has_option("upgrade")
        && headers.iter().any(|h| h.is("upgrade") && !h.value.is_empty());
    let keep_alive = !has_option("close") && (http11 || has_option("keep-alive"));
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        version,
        headers,
        head_len,
        host,
        framing,
        expect_continue,
        upgrade,
        h2c,
        keep_alive,
        request_line,
    })
}

fn httparse_error(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid new line",
        httparse::Error::Token => "invalid token",
        httparse::Error::Version => "invalid version",
        _ => "invalid request",
    }
}

/// Splits the head into lines ending in CRLF, enforcing [`MAX_HEAD`].
struct Lines<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Lines<'_> {
    /// The next line's content (without CRLF), as a range of `buf`.
    fn next_line(&mut self) -> Result<Range<usize>, HeadError> {
        let start = self.pos;
        let mut i = start;
        loop {
            if i >= MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            match self.buf.get(i) {
                None => return Err(HeadError::Incomplete),
                Some(b'\n') => return Err(HeadError::BareLf),
                Some(b'\r') => {
                    // The LF must fit within the limit too.
                    if i + 1 >= MAX_HEAD {
                        return Err(HeadError::TooLarge);
                    }
                    return match self.buf.get(i + 1) {
                        None => Err(HeadError::Incomplete),
                        Some(b'\n') => {
                            self.pos = i + 2;
                            Ok(start..i)
                        }
                        Some(_) => Err(HeadError::BareCr),
                    };
                }
                Some(_) => i += 1,
            }
        }
    }
}

fn line_bytes<'a>(buf: &'a [u8], r: &Range<usize>) -> &'a [u8] {
    buf.get(r.clone()).unwrap_or_default()
}

/// RFC 9110 §5.6.2 tchar.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `method SP request-target SP HTTP-version`, single spaces (RFC 9112 §3).
fn check_request_line(line: &[u8]) -> Result<Version, HeadError> {
    if line == b"PRI * HTTP/2.0" {
        return Err(HeadError::Http2Preface);
    }
    let mut parts = line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::BadRequestLine);
    };
    if method.is_empty() || target.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::BadRequestLine);
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(HeadError::UnsupportedVersion);
        }
        _ => return Err(HeadError::BadRequestLine),
    };
    // Printable ASCII only: no controls, spaces, obs-text; no fragment.
    if !target.iter().all(|&b| b.is_ascii_graphic() && b != b'#') {
        return Err(HeadError::InvalidTarget);
    }
    Ok(version)
}

/// `field-name ":" OWS field-value OWS` (RFC 9112 §5).
fn check_field_line(line: &[u8]) -> Result<(), HeadError> {
    if matches!(line.first(), Some(b' ' | b'\t')) {
        return Err(HeadError::ObsFold);
    }
    let colon = line.iter().position(|&b| b == b':').ok_or(HeadError::InvalidHeaderName)?;
    let (name, value) = line.split_at(colon);
    if matches!(name.last(), Some(b' ' | b'\t')) {
        return Err(HeadError::SpaceBeforeColon);
    }
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(HeadError::InvalidHeaderName);
    }
    // RFC 9110 §5.5: VCHAR, obs-text, SP and HTAB; never NUL or other CTLs.
    if !value.iter().skip(1).all(|&b| b == b'\t' || (b' '..=b'~').contains(&b) || b >= 0x80) {
        return Err(HeadError::InvalidHeaderValue);
    }
    Ok(())
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// The elements of every `name` field's comma-separated list, trimmed;
/// empty elements kept (callers decide).
fn list<'a>(headers: &'a [Header], name: &str) -> Vec<&'a [u8]> {
    headers.iter().filter(|h| h.is(name)).flat_map(|h| h.value.split(|&b| b == b',').map(trim_ows)).collect()
}

/// The routing host (RFC 9112 §3.2, §3.2.2).
fn host(
    method: &str,
    target: &str,
    version: Version,
    headers: &[Header],
) -> Result<Option<String>, HeadError> {
    let mut hosts = headers.iter().filter(|h| h.is("host"));
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err(HeadError::DuplicateHost);
    }
    if header.is_none() && version == Version::Http11 {
        return Err(HeadError::MissingHost);
    }
    let from_header = header.map(|h| authority_host(&h.value)).transpose()?;
    let from_target = match target_authority(method, target)? {
        Some(a) => Some(authority_host(a.as_bytes()).map_err(|e| match e {
            HeadError::InvalidHost => HeadError::InvalidTarget,
            e => e,
        })?),
        None => None,
    };
    match (from_header, from_target) {
        (Some(h), Some(t)) if h != t => Err(HeadError::HostMismatch),
        (h, t) => Ok(t.or(h)),
    }
}

/// The authority of an absolute-form target; `None` for origin-form and
/// `*` (OPTIONS only). Authority-form (CONNECT) is refused: a reverse
/// proxy opens no tunnels.
fn target_authority<'a>(method: &str, target: &'a str) -> Result<Option<&'a str>, HeadError> {
    if target.starts_with('/') {
        return Ok(None);
    }
    if target == "*" && method == "OPTIONS" {
        return Ok(None);
    }
    let lower = |n: usize| target.get(..n).map(str::to_ascii_lowercase);
    let rest = if lower(7).as_deref() == Some("http://") {
        target.get(7..)
    } else if lower(8).as_deref() == Some("https://") {
        target.get(8..)
    } else {
        None
    };
    let rest = rest.ok_or(HeadError::InvalidTarget)?;
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = rest.get(..end).unwrap_or_default();
    // RFC 9110 §4.2.4: userinfo is deprecated and a phishing vector.
    if authority.is_empty() || authority.contains('@') {
        return Err(HeadError::InvalidTarget);
    }
    Ok(Some(authority))
}

/// `host [":" port]` to the lowercased DNS name. An IPv4 literal, any
/// name whose last label is a number (which URL parsers read as IPv4,
/// WHATWG URL §3.5 "ends in a number"), or a bracketed IPv6 literal is
/// [`HeadError::IpLiteralHost`].
fn authority_host(value: &[u8]) -> Result<String, HeadError> {
    let text = std::str::from_utf8(value).map_err(|_| HeadError::InvalidHost)?;
    if let Some(rest) = text.strip_prefix('[') {
        let (ip, after) = rest.split_once(']').ok_or(HeadError::InvalidHost)?;
        let port_ok = after.is_empty() || after.strip_prefix(':').is_some_and(valid_port);
        if ip.parse::<std::net::Ipv6Addr>().is_ok() && port_ok {
            return Err(HeadError::IpLiteralHost);
        }
        return Err(HeadError::InvalidHost);
    }
    let name = match text.split_once(':') {
        Some((name, port)) if valid_port(port) => name,
        Some(_) => return Err(HeadError::InvalidHost),
        None => text,
    };
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Err(HeadError::InvalidHost);
    }
    for label in name.split('.') {
        // RFC 1123 §2.1 host names: letters, digits and inner hyphens.
        let bad = label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if bad {
            return Err(HeadError::InvalidHost);
        }
    }
    let last = name.rsplit('.').next().unwrap_or_default();
    let hex = last.strip_prefix("0x").or_else(|| last.strip_prefix("0X"));
    if last.bytes().all(|b| b.is_ascii_digit())
        || hex.is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(HeadError::IpLiteralHost);
    }
    Ok(name.to_ascii_lowercase())
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
}

/// RFC 9112 §6.1 and §6.3, refusing every ambiguity.
fn framing(version: Version, headers: &[Header]) -> Result<Framing, HeadError> {
    let has_te = headers.iter().any(|h| h.is("transfer-encoding"));
    let mut lengths = headers.iter().filter(|h| h.is("content-length"));
    let length = lengths.next();
    if has_te && version == Version::Http10 {
        return Err(HeadError::TransferEncodingInHttp10);
    }
    if has_te && length.is_some() {
        return Err(HeadError::ContentLengthWithTransferEncoding);
    }
    if has_te {
        let codings = list(headers, "transfer-encoding");
        let chunked = |c: &&[u8]| c.eq_ignore_ascii_case(b"chunked");
        if codings.iter().any(|c| c.is_empty()) {
            return Err(HeadError::UnsupportedTransferEncoding);
        }
        let (last, before) = codings.split_last().ok_or(HeadError::UnsupportedTransferEncoding)?;
        if !chunked(last) || before.iter().any(chunked) {
            return Err(HeadError::ChunkedNotFinal);
        }
        if !before.is_empty() {
            return Err(HeadError::UnsupportedTransferEncoding);
        }
        return Ok(Framing::Chunked);
    }
    let Some(length) = length else { return Ok(Framing::None) };
    if lengths.next().is_some() || length.value.contains(&b',') {
        return Err(HeadError::DuplicateContentLength);
    }
    let v = &length.value;
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return Err(HeadError::InvalidContentLength);
    }
    let n =
        std::str::from_utf8(v).ok().and_then(|s| s.parse().ok()).ok_or(HeadError::InvalidContentLength)?;
    Ok(Framing::ContentLength(n))
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
