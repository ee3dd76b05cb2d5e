//! A minimal blocking HTTP/1.1 client for loopback APIs.
//!
//! Enough for the JSON APIs the tests talk to (PowerDNS's, sixgate's): one
//! request per connection (`Connection: close`), a body read to the end,
//! `Content-Length` or chunked. Plain `http://` only: the one HTTPS peer
//! (pebble) is reached by the ACME clients themselves, and by `curl` for
//! its readiness probe. Kept this small so that the tests do not pull in an
//! HTTP stack, and so that nothing here shares code with sixgate's server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// One HTTP response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy UTF-8).
    pub body: String,
}

impl HttpResponse {
    /// The first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }
}

/// Sends `method url` with `headers` and an optional JSON `body`, and reads
/// the whole response. `url` is `http://HOST:PORT/path`.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    timeout: Duration,
) -> Result<HttpResponse> {
    let (addr, path) = split_url(url)?;
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout).with_context(|| format!("connecting to {url}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    head.push_str(body.unwrap_or_default());
    stream.write_all(head.as_bytes()).with_context(|| format!("sending {method} {url}"))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).with_context(|| format!("reading the response to {method} {url}"))?;
    parse_response(&raw).with_context(|| format!("parsing the response to {method} {url}"))
}

/// The `Authorization` value of HTTP Basic authentication (RFC 7617):
/// `Basic ` and base64 of `user:password`, as lego's httpreq provider
/// sends it.
pub fn basic_auth(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

/// One request with `Authorization: Bearer TOKEN` and an optional JSON
/// body.
pub fn bearer(
    method: &str,
    base: &str,
    path: &str,
    token: &str,
    body: Option<&serde_json::Value>,
    timeout: Duration,
) -> Result<HttpResponse> {
    let auth = format!("Bearer {token}");
    let body = body.map(serde_json::Value::to_string);
    request(method, &format!("{base}{path}"), &[("Authorization", &auth)], body.as_deref(), timeout)
}

/// `http://127.0.0.1:8080/a/b` → (`127.0.0.1:8080`, `/a/b`).
fn split_url(url: &str) -> Result<(SocketAddr, String)> {
    let Some(rest) = url.strip_prefix("http://") else {
        bail!("only http:// URLs are supported: {url}");
    };
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, "/"),
    };
    let addr =
        authority.parse().with_context(|| format!("{url}: the host must be an IP address and port"))?;
    Ok((addr, path.to_owned()))
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse> {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        bail!("no end of headers in {} bytes", raw.len());
    };
    let head = String::from_utf8_lossy(raw.get(..end).unwrap_or_default()).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    let rest = raw.get(end + 4..).unwrap_or_default();
    let chunked =
        headers.iter().any(|(n, v)| n == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if chunked { dechunk(rest)? } else { rest.to_vec() };
    Ok(HttpResponse { status, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// RFC 9112 §7.1 chunked transfer coding, trailers ignored.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            bail!("chunk size line without CRLF");
        };
        let line = String::from_utf8_lossy(rest.get(..line_end).unwrap_or_default()).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size =
            usize::from_str_radix(size_text, 16).with_context(|| format!("bad chunk size {line:?}"))?;
        let start = line_end + 2;
        if size == 0 {
            return Ok(body);
        }
        let chunk = rest.get(start..start + size).context("chunk shorter than its size")?;
        body.extend_from_slice(chunk);
        rest = rest.get(start + size + 2..).context("chunk without its CRLF")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_length_or_chunks() {
        let plain = parse_response(b"HTTP/1.1 204 No Content\r\nX-A: b\r\n\r\n").unwrap();
        assert_eq!(plain.status, 204);
        assert_eq!(plain.header("x-a"), Some("b"));
        assert_eq!(plain.body, "");
        let chunked = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[1,\r\n2;x=y\r\n2]\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked.body, "[1,2]");
    }

    #[test]
    fn urls_split_into_address_and_path() {
        let (addr, path) = split_url("http://127.0.0.1:8081/api/v1/servers").unwrap();
        assert_eq!(addr.port(), 8081);
        assert_eq!(path, "/api/v1/servers");
        assert_eq!(split_url("http://127.0.0.1:1").unwrap().1, "/");
        assert!(split_url("https://127.0.0.1:1/").is_err());
    }

    #[test]
    fn basic_auth_is_base64_of_user_and_password() {
        // RFC 7617 §2's example.
        assert_eq!(basic_auth("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
        assert_eq!(basic_auth("a", ""), "Basic YTo=");
        assert_eq!(basic_auth("ab", "c"), "Basic YWI6Yw==");
    }
}
