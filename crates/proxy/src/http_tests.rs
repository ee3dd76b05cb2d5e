use super::*;
use std::net::IpAddr;

fn parse(s: &str) -> Result<Head, HeadError> {
    parse_head(s.as_bytes())
}

fn err(s: &str) -> HeadError {
    parse(s).expect_err(s)
}

fn names(h: &Head) -> Vec<&str> {
    h.headers.iter().map(|h| h.name.as_str()).collect()
}

#[test]
fn rfc9112_example_request() {
    // RFC 9112 §2.1 (the RFC 9110 §1.2 example request).
    let req = "GET /hello.txt HTTP/1.1\r\n\
               User-Agent: curl/7.64.1\r\n\
               Host: www.example.com\r\n\
               Accept-Language: en, mi\r\n\r\n";
    let h = parse(req).unwrap();
    assert_eq!((h.method.as_str(), h.target.as_str(), h.version), ("GET", "/hello.txt", Version::Http11));
    assert_eq!(names(&h), ["User-Agent", "Host", "Accept-Language"]);
    assert_eq!(h.headers[2].value, b"en, mi");
    assert_eq!(h.head_len, req.len());
    assert_eq!(h.host.as_deref(), Some("www.example.com"));
    assert_eq!(h.framing, Framing::None);
    assert!(h.keep_alive && !h.expect_continue && !h.upgrade);
}

#[test]
fn rfc9112_request_target_forms() {
    // §3.2.1 origin-form, §3.2.2 absolute-form, §3.2.4 asterisk-form.
    let h = parse("GET /where?q=now HTTP/1.1\r\nHost: www.example.org\r\n\r\n").unwrap();
    assert_eq!(h.host.as_deref(), Some("www.example.org"));
    let h =
        parse("GET http://www.example.org/pub/WWW/TheProject.html HTTP/1.1\r\nHost: www.example.org\r\n\r\n")
            .unwrap();
    assert_eq!(h.host.as_deref(), Some("www.example.org"));
    let h = parse("OPTIONS * HTTP/1.1\r\nHost: www.example.org:8001\r\n\r\n").unwrap();
    assert_eq!(h.host.as_deref(), Some("www.example.org"));
    // §3.2.3 authority-form is for CONNECT, which a reverse proxy refuses.
    assert_eq!(
        err("CONNECT www.example.com:80 HTTP/1.1\r\nHost: www.example.com\r\n\r\n"),
        HeadError::InvalidTarget
    );
    assert_eq!(err("GET * HTTP/1.1\r\nHost: a.test\r\n\r\n"), HeadError::InvalidTarget);
    assert_eq!(err("GET ftp://a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), HeadError::InvalidTarget);
    assert_eq!(err("GET http://u@a.test/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), HeadError::InvalidTarget);
    assert_eq!(err("GET /a#frag HTTP/1.1\r\nHost: a.test\r\n\r\n"), HeadError::InvalidTarget);
}

#[test]
fn host_is_lowercased_without_port_and_required_once() {
    let h = parse("GET / HTTP/1.1\r\nHost: WWW.Example.COM.:8080\r\n\r\n").unwrap();
    assert_eq!(h.host.as_deref(), Some("www.example.com"));
    assert_eq!(err("GET / HTTP/1.1\r\n\r\n"), HeadError::MissingHost);
    assert_eq!(err("GET / HTTP/1.1\r\nHost: a.test\r\nhost: a.test\r\n\r\n"), HeadError::DuplicateHost);
    assert_eq!(err("GET / HTTP/1.0\r\nHost: a.test\r\nHost: b.test\r\n\r\n"), HeadError::DuplicateHost);
    // HTTP/1.0 may omit it.
    assert_eq!(parse("GET / HTTP/1.0\r\n\r\n").unwrap().host, None);
    for bad in [
        "",
        "-a.test",
        "a-.test",
        "a..test",
        "a_b.test",
        "a.test:",
        "a.test:65536",
        "a.test:1:2",
        "-",
        ".",
        "\u{e9}.test",
    ] {
        assert_eq!(err(&format!("GET / HTTP/1.1\r\nHost: {bad}\r\n\r\n")), HeadError::InvalidHost, "{bad:?}");
    }
    let long = format!("{}.test", "a".repeat(64));
    assert_eq!(err(&format!("GET / HTTP/1.1\r\nHost: {long}\r\n\r\n")), HeadError::InvalidHost);
}

#[test]
fn absolute_form_authority_must_agree_with_host() {
    let h = parse("GET HTTP://A.test:81/x HTTP/1.1\r\nHost: a.test\r\n\r\n").unwrap();
    assert_eq!(h.host.as_deref(), Some("a.test"));
    assert_eq!(err("GET http://a.test/ HTTP/1.1\r\nHost: b.test\r\n\r\n"), HeadError::HostMismatch);
    let h = parse("GET http://a.test?x HTTP/1.0\r\n\r\n").unwrap();
    assert_eq!(h.host.as_deref(), Some("a.test"));
    assert_eq!(err("GET http://192.0.2.1/ HTTP/1.1\r\nHost: a.test\r\n\r\n"), HeadError::IpLiteralHost);
}

#[test]
fn ip_literal_hosts_are_refused() {
    for ip in
        ["192.0.2.1", "192.0.2.1:80", "[2001:db8::1]", "[::1]:8080", "127.1", "0x7f000001", "a.0x7f", "a.123"]
    {
        assert_eq!(err(&format!("GET / HTTP/1.1\r\nHost: {ip}\r\n\r\n")), HeadError::IpLiteralHost, "{ip}");
    }
    assert_eq!(err("GET / HTTP/1.1\r\nHost: [zz]\r\n\r\n"), HeadError::InvalidHost);
    // A numeric label that is not last is part of a name.
    assert!(parse("GET / HTTP/1.1\r\nHost: 123.a.test\r\n\r\n").is_ok());
}

#[test]
fn versions() {
    assert_eq!(err("GET / HTTP/2.0\r\nHost: a.test\r\n\r\n"), HeadError::UnsupportedVersion);
    assert_eq!(err("GET / HTTP/0.9\r\n\r\n"), HeadError::UnsupportedVersion);
    assert_eq!(err("GET / http/1.1\r\nHost: a.test\r\n\r\n"), HeadError::BadRequestLine);
    assert_eq!(err("GET /\r\n\r\n"), HeadError::BadRequestLine);
    // RFC 9113 §3.4 preface.
    assert_eq!(err("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), HeadError::Http2Preface);
    assert_eq!(err("PRI * HTTP/2.0\r\n"), HeadError::Http2Preface);
    assert_eq!(HeadError::Http2Preface.status(), None);
}

#[test]
fn request_line_with_extra_spaces_is_refused() {
    for line in
        ["GET  / HTTP/1.1", "GET / HTTP/1.1 ", " GET / HTTP/1.1", "GET /  HTTP/1.1", "GET\t/ HTTP/1.1"]
    {
        assert_eq!(err(&format!("{line}\r\nHost: a.test\r\n\r\n")), HeadError::BadRequestLine, "{line:?}");
    }
    assert_eq!(err("GET /a\x01 HTTP/1.1\r\nHost: a.test\r\n\r\n"), HeadError::InvalidTarget);
    assert_eq!(err("G(T / HTTP/1.1\r\nHost: a.test\r\n\r\n"), HeadError::BadRequestLine);
}

#[test]
fn incomplete_until_the_empty_line() {
    let req = "POST /x HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\n";
    for cut in 0..req.len() {
        assert_eq!(parse(&req[..cut]), Err(HeadError::Incomplete), "{cut}");
    }
    assert!(parse(req).is_ok());
}

#[test]
fn leading_empty_lines_are_skipped() {
    // RFC 9112 §2.2: e.g. a CRLF a client sent after a previous body.
    let req = "\r\n\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let h = parse(req).unwrap();
    assert_eq!(h.head_len, req.len());
    assert!(rewrite_forwarded(&h, req.as_bytes(), "192.0.2.1".parse().unwrap(), false).starts_with(b"GET /"));
}

#[test]
fn a_20_kib_head_is_too_large() {
    let big = format!("GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: {}\r\n\r\n", "a".repeat(20 * 1024));
    assert_eq!(err(&big), HeadError::TooLarge);
    // Also while it is still arriving: no end of head in the first 16 KiB.
    assert_eq!(parse_head(&big.as_bytes()[..MAX_HEAD]), Err(HeadError::TooLarge));
    assert_eq!(parse_head(&big.as_bytes()[..MAX_HEAD - 1]), Err(HeadError::Incomplete));
    assert_eq!(HeadError::TooLarge.status(), Some(431));
    // Exactly MAX_HEAD fits.
    let fixed = "GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: \r\n\r\n".len();
    let exact = format!("GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: {}\r\n\r\n", "a".repeat(MAX_HEAD - fixed));
    assert_eq!(parse(&exact).unwrap().head_len, MAX_HEAD);
}

#[test]
fn at_most_100_headers() {
    let mut req = String::from("GET / HTTP/1.1\r\nHost: a.test\r\n");
    for i in 0..99 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    assert_eq!(parse(&format!("{req}\r\n")).unwrap().headers.len(), 100);
    assert_eq!(err(&format!("{req}X-100: v\r\n\r\n")), HeadError::TooManyHeaders);
}

#[test]
fn framing_by_content_length_and_chunked() {
    let h = parse("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0012\r\n\r\n").unwrap();
    assert_eq!(h.framing, Framing::ContentLength(12));
    let h = parse("POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: Chunked\r\n\r\n").unwrap();
    assert_eq!(h.framing, Framing::Chunked);
    let max = format!("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: {}\r\n\r\n", u64::MAX);
    assert_eq!(parse(&max).unwrap().framing, Framing::ContentLength(u64::MAX));
    let over = format!("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: {}0\r\n\r\n", u64::MAX);
    assert_eq!(err(&over), HeadError::InvalidContentLength);
}

fn with_headers(fields: &str) -> HeadError {
    err(&format!("POST / HTTP/1.1\r\nHost: a.test\r\n{fields}\r\n"))
}

#[test]
fn smuggling_content_length_and_transfer_encoding() {
    // RFC 9112 §6.3 item 3: the classic CL.TE / TE.CL desync.
    assert_eq!(
        with_headers("Content-Length: 6\r\nTransfer-Encoding: chunked\r\n"),
        HeadError::ContentLengthWithTransferEncoding
    );
    assert_eq!(
        with_headers("Transfer-Encoding: chunked\r\nContent-Length: 6\r\n"),
        HeadError::ContentLengthWithTransferEncoding
    );
}

#[test]
fn smuggling_duplicate_content_length() {
    // Strict: even equal values are refused.
    assert_eq!(with_headers("Content-Length: 6\r\nContent-Length: 5\r\n"), HeadError::DuplicateContentLength);
    assert_eq!(with_headers("Content-Length: 6\r\nContent-Length: 6\r\n"), HeadError::DuplicateContentLength);
    assert_eq!(with_headers("Content-Length: 6, 5\r\n"), HeadError::DuplicateContentLength);
    assert_eq!(with_headers("Content-Length: 6,6\r\n"), HeadError::DuplicateContentLength);
    for bad in ["+6", "-1", "6 5", "0x6", "", "6.0", "６"] {
        assert_eq!(
            with_headers(&format!("Content-Length: {bad}\r\n")),
            HeadError::InvalidContentLength,
            "{bad}"
        );
    }
}

#[test]
fn smuggling_transfer_encoding_other_than_final_chunked() {
    assert_eq!(with_headers("Transfer-Encoding: chunked, identity\r\n"), HeadError::ChunkedNotFinal);
    assert_eq!(with_headers("Transfer-Encoding: xchunked\r\n"), HeadError::ChunkedNotFinal);
    assert_eq!(
        with_headers("Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n"),
        HeadError::ChunkedNotFinal
    );
    assert_eq!(with_headers("Transfer-Encoding: chunked, chunked\r\n"), HeadError::ChunkedNotFinal);
    assert_eq!(
        with_headers("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
        HeadError::ChunkedNotFinal
    );
    assert_eq!(with_headers("Transfer-Encoding: identity\r\n"), HeadError::ChunkedNotFinal);
    assert_eq!(with_headers("Transfer-Encoding: \"chunked\"\r\n"), HeadError::ChunkedNotFinal);
    assert_eq!(with_headers("Transfer-Encoding: gzip, chunked\r\n"), HeadError::UnsupportedTransferEncoding);
    assert_eq!(with_headers("Transfer-Encoding: chunked,\r\n"), HeadError::UnsupportedTransferEncoding);
    assert_eq!(with_headers("Transfer-Encoding:\r\n"), HeadError::UnsupportedTransferEncoding);
    assert_eq!(HeadError::UnsupportedTransferEncoding.status(), Some(501));
    assert_eq!(
        err("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
        HeadError::TransferEncodingInHttp10
    );
}

#[test]
fn smuggling_obs_fold() {
    assert_eq!(with_headers("X-A: a\r\n b\r\n"), HeadError::ObsFold);
    assert_eq!(with_headers("Transfer-Encoding: gzip\r\n\tchunked\r\n"), HeadError::ObsFold);
    // RFC 9112 §2.2: whitespace between the request-line and the first field.
    assert_eq!(err("GET / HTTP/1.1\r\n Host: a.test\r\n\r\n"), HeadError::ObsFold);
}

#[test]
fn smuggling_bare_lf_and_bare_cr() {
    assert_eq!(err("GET / HTTP/1.1\nHost: a.test\r\n\r\n"), HeadError::BareLf);
    assert_eq!(err("GET / HTTP/1.1\r\nHost: a.test\n\r\n"), HeadError::BareLf);
    assert_eq!(err("GET / HTTP/1.1\r\nHost: a.test\r\n\n"), HeadError::BareLf);
    assert_eq!(err("GET / HTTP/1.1\r\nHost: a.test\r\nX: a\rb\r\n\r\n"), HeadError::BareCr);
    // Refused as soon as seen, not only once the head is complete.
    assert_eq!(err("GET / HTTP/1.1\n"), HeadError::BareLf);
}

#[test]
fn smuggling_whitespace_before_colon() {
    assert_eq!(with_headers("Transfer-Encoding : chunked\r\n"), HeadError::SpaceBeforeColon);
    assert_eq!(with_headers("Content-Length\t: 5\r\n"), HeadError::SpaceBeforeColon);
    assert_eq!(err("GET / HTTP/1.1\r\nHost : a.test\r\n\r\n"), HeadError::SpaceBeforeColon);
}

#[test]
fn invalid_field_names_and_values() {
    assert_eq!(with_headers("X-A\0: b\r\n"), HeadError::InvalidHeaderName);
    assert_eq!(with_headers("X A: b\r\n"), HeadError::InvalidHeaderName);
    assert_eq!(with_headers(": b\r\n"), HeadError::InvalidHeaderName);
    assert_eq!(with_headers("no colon\r\n"), HeadError::InvalidHeaderName);
    assert_eq!(with_headers("X-A: a\0b\r\n"), HeadError::InvalidHeaderValue);
    assert_eq!(with_headers("X-A: a\x7fb\r\n"), HeadError::InvalidHeaderValue);
    assert_eq!(with_headers("X-A: a\x0bb\r\n"), HeadError::InvalidHeaderValue);
    // HTAB and obs-text are allowed in values (RFC 9110 §5.5).
    let h = parse_head(b"GET / HTTP/1.1\r\nHost: a.test\r\nX-A: \ta\tb\xff \r\n\r\n").unwrap();
    assert_eq!(h.headers[1].value, b"a\tb\xff");
}

#[test]
fn expect_continue() {
    let h =
        parse("PUT / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nExpect: 100-Continue\r\n\r\n").unwrap();
    assert!(h.expect_continue);
    // RFC 9110 §10.1.1: ignored in HTTP/1.0.
    let h = parse("PUT / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n").unwrap();
    assert!(!h.expect_continue);
}

#[test]
fn upgrade_websocket() {
    // RFC 6455 §1.2.
    let req = "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
               Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
               Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
               Sec-WebSocket-Version: 13\r\n\r\n";
    let h = parse(req).unwrap();
    assert!(h.upgrade && h.keep_alive);
    assert_eq!(h.host.as_deref(), Some("server.example.com"));
    let h = parse(
        "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: keep-alive, upgrade\r\nUpgrade: IRC/6.9\r\n\r\n",
    )
    .unwrap();
    assert!(h.upgrade);
    assert!(!parse("GET / HTTP/1.1\r\nHost: a.test\r\nUpgrade: websocket\r\n\r\n").unwrap().upgrade);
    assert!(!parse("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: upgrade\r\n\r\n").unwrap().upgrade);
    assert!(!parse("GET / HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n").unwrap().upgrade);
}

#[test]
fn keep_alive_by_version_and_connection() {
    let ka = |r: &str| parse(r).unwrap().keep_alive;
    assert!(ka("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: foo, CLOSE\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.0\r\n\r\n"));
    assert!(ka("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    assert!(!ka("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"));
}

#[test]
fn pipelined_requests_with_content_length() {
    let buf = b"POST /a HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\nHost: b.test\r\n\r\n";
    let first = parse_head(buf).unwrap();
    let Framing::ContentLength(n) = first.framing else { panic!("{:?}", first.framing) };
    let next = first.head_len + n as usize;
    assert_eq!(&buf[first.head_len..next], b"hello");
    let second = parse_head(&buf[next..]).unwrap();
    assert_eq!((second.target.as_str(), second.host.as_deref()), ("/b", Some("b.test")));
    assert_eq!(next + second.head_len, buf.len());
}

#[test]
fn pipelined_requests_with_chunked_bodies() {
    // RFC 9112 §7.1 grammar: two chunks, an extension, a trailer field.
    let buf = b"POST /a HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n\
                4;name=value\r\nWiki\r\n5\r\npedia\r\n0\r\nExpires: never\r\n\r\n\
                GET /b HTTP/1.1\r\nHost: b.test\r\n\r\n";
    let first = parse_head(buf).unwrap();
    assert_eq!(first.framing, Framing::Chunked);
    let body = &buf[first.head_len..];
    let end = b"0\r\nExpires: never\r\n\r\n";
    let body_len = body.windows(end.len()).position(|w| w == end).unwrap() + end.len();
    // Fed whole, and fed one octet at a time.
    let mut d = ChunkedDecoder::new();
    assert_eq!(d.feed(body).map(|f| (f.consumed, f.done)), Ok((body_len, true)));
    let mut d = ChunkedDecoder::new();
    let mut total = 0;
    for b in body.chunks(1) {
        let f = d.feed(b).unwrap();
        total += f.consumed;
        if f.done {
            break;
        }
    }
    assert!(d.is_done());
    assert_eq!(total, body_len);
    assert_eq!(d.feed(b"more").map(|f| (f.consumed, f.done)), Ok((0, true)));
    let second = parse_head(&body[body_len..]).unwrap();
    assert_eq!(second.target, "/b");
}

fn chunked(body: &[u8]) -> Result<(usize, bool), ChunkError> {
    ChunkedDecoder::new().feed(body).map(|f| (f.consumed, f.done))
}

#[test]
fn chunked_bodies_are_strict() {
    assert_eq!(chunked(b"0\r\n\r\n"), Ok((5, true)));
    assert_eq!(chunked(b"A\r\n0123456789\r\n0 ; x=\"y\"\r\n\r\n").map(|f| f.1), Ok(true));
    assert_eq!(chunked(b"ffffffffffffffff\r\n"), Ok((18, false)));
    assert_eq!(chunked(b"10000000000000000\r\n"), Err(ChunkError::BadSize));
    assert_eq!(chunked(b"\r\n"), Err(ChunkError::BadSize));
    assert_eq!(chunked(b"-1\r\n"), Err(ChunkError::BadSize));
    assert_eq!(chunked(b"0x5\r\n"), Err(ChunkError::BadSize));
    assert_eq!(chunked(b"5\n"), Err(ChunkError::BareLf));
    assert_eq!(chunked(b"5;a\n"), Err(ChunkError::BareLf));
    assert_eq!(chunked(b"5\rx"), Err(ChunkError::BareCr));
    assert_eq!(chunked(b"5;a\0\r\n"), Err(ChunkError::BadExtension));
    assert_eq!(chunked(b"3\r\nabcd\r\n"), Err(ChunkError::MissingCrlf));
    assert_eq!(chunked(b"3\r\nabc\n"), Err(ChunkError::MissingCrlf));
    assert_eq!(chunked(b"0\r\n\n"), Err(ChunkError::BareLf));
    assert_eq!(chunked(b"0\r\nX: a\n\r\n"), Err(ChunkError::BareLf));
    assert_eq!(chunked(b"0\r\n x: a\r\n\r\n"), Err(ChunkError::BadTrailer));
    assert_eq!(chunked(b"0\r\nX : a\r\n\r\n"), Err(ChunkError::BadTrailer));
    assert_eq!(chunked(b"0\r\nX\r\n\r\n"), Err(ChunkError::BadTrailer));
    let long = [b"1;".as_slice(), &[b'a'; MAX_CHUNK_LINE]].concat();
    assert_eq!(chunked(&long), Err(ChunkError::LineTooLong));
    let zeros = [&[b'0'; MAX_CHUNK_LINE][..], b"\r\n\r\n"].concat();
    assert_eq!(chunked(&zeros).map(|f| f.1), Ok(true));
    let trailers = [b"0\r\nX: ".as_slice(), &[b'a'; MAX_TRAILERS]].concat();
    assert_eq!(chunked(&trailers), Err(ChunkError::TrailersTooLarge));
    // Errors stick.
    let mut d = ChunkedDecoder::new();
    assert!(d.feed(b"z").is_err());
    assert_eq!(d.feed(b"0\r\n\r\n"), Err(ChunkError::BadSize));
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn rewrite_replaces_client_forwarding_headers() {
    let req = "GET /x HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 10.0.0.1\r\nAccept:  */*  \r\n\
               x-real-ip: 10.0.0.2\r\nFORWARDED: for=10.0.0.3\r\nX-Forwarded-For: 10.0.0.4, 10.0.0.5\r\n\
               X-Forwarded-Proto: http\r\n\r\nbody";
    let h = parse(req).unwrap();
    let out = rewrite_forwarded(&h, req.as_bytes(), ip("192.0.2.9"), false);
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "GET /x HTTP/1.1\r\nHost: a.test\r\nAccept:  */*  \r\nX-Forwarded-For: 192.0.2.9\r\n\r\n"
    );
    let again = parse_head(&out).unwrap();
    assert_eq!(again.head_len, out.len());
    let out = rewrite_forwarded(&h, req.as_bytes(), ip("192.0.2.9"), true);
    assert!(out.ends_with(b"X-Forwarded-For: 192.0.2.9\r\nForwarded: for=192.0.2.9\r\n\r\n"));
}

#[test]
fn rewrite_writes_ipv6_per_rfc7239() {
    let req = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    let h = parse(req).unwrap();
    let out = rewrite_forwarded(&h, req.as_bytes(), ip("2001:db8:cafe::17"), true);
    assert!(
        out.ends_with(
            b"X-Forwarded-For: 2001:db8:cafe::17\r\nForwarded: for=\"[2001:db8:cafe::17]\"\r\n\r\n"
        )
    );
    // A dual-stack socket's mapped address is the IPv4 client.
    let out = rewrite_forwarded(&h, req.as_bytes(), ip("::ffff:192.0.2.60"), true);
    assert!(out.ends_with(b"X-Forwarded-For: 192.0.2.60\r\nForwarded: for=192.0.2.60\r\n\r\n"));
}

#[test]
fn rewrite_header_injection_attempts() {
    // Each trick to keep a forged header past the rewrite is refused by the
    // parser, so it never reaches rewrite_forwarded.
    for (fields, e) in [
        ("X-A: a\r\nX-Forwarded-For: 1.2.3.4\n", HeadError::BareLf),
        ("X-A: a\rX-Forwarded-For: 1.2.3.4\r\n", HeadError::BareCr),
        ("X-Forwarded-For : 1.2.3.4\r\n", HeadError::SpaceBeforeColon),
        ("X-A: a\r\n X-Forwarded-For: 1.2.3.4\r\n", HeadError::ObsFold),
        ("X-A: a\0X-Forwarded-For: 1.2.3.4\r\n", HeadError::InvalidHeaderValue),
        ("X-Forwarded-For\0: 1.2.3.4\r\n", HeadError::InvalidHeaderName),
    ] {
        assert_eq!(err(&format!("GET / HTTP/1.1\r\nHost: a.test\r\n{fields}\r\n")), e, "{fields:?}");
    }
    // A value that merely mentions the header stays one opaque value.
    let req = "GET / HTTP/1.1\r\nHost: a.test\r\nX-A: X-Forwarded-For: 1.2.3.4\r\n\r\n";
    let h = parse(req).unwrap();
    let out = rewrite_forwarded(&h, req.as_bytes(), ip("192.0.2.9"), false);
    let again = parse_head(&out).unwrap();
    let xff: Vec<_> =
        again.headers.iter().filter(|h| h.name.eq_ignore_ascii_case("x-forwarded-for")).collect();
    assert_eq!(xff.len(), 1);
    assert_eq!(xff[0].value, b"192.0.2.9");
}

#[test]
fn rewrite_with_a_foreign_buffer_rebuilds_lines() {
    let req = "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 1.1.1.1\r\nAccept: */*\r\n\r\n";
    let h = parse(req).unwrap();
    let out = rewrite_forwarded(&h, b"", ip("192.0.2.9"), false);
    assert_eq!(out, b"GET / HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.9\r\n\r\n");
}

#[test]
fn a_head_reparses_identically_from_its_own_bytes() {
    let buf = b"\r\nPOST /a HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\n\r\nhi";
    let h = parse_head(buf).unwrap();
    assert_eq!(parse_head(&buf[..h.head_len]), Ok(h));
}

/// Regression: forwarding headers were matched by their exact names, so a
/// client's `X-Forwarded_For` (the underscore class of CVE-2024-45614)
/// reached the backend, where CGI-style stacks read it as X-Forwarded-For.
#[test]
fn forwarding_headers_spelled_with_underscores_were_forwarded() {
    for name in [
        "X-Forwarded_For",
        "X_FORWARDED_FOR",
        "x-real_ip",
        "X_Forwarded-Proto",
        "X-Forwarded_Host",
        "x-forwarded_port",
        "Forwarded",
        "X-Client_IP",
        "True-Client-IP",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{name}: 6.6.6.6\r\n\r\n");
        let h = parse(&req).unwrap();
        let out = rewrite_forwarded(&h, req.as_bytes(), ip("192.0.2.9"), false);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 192.0.2.9\r\n\r\n",
            "{name}"
        );
    }
    // Other names with underscores are the client's own business.
    let req = "GET / HTTP/1.1\r\nHost: a.test\r\nX_Forwarded: 1\r\nMy_Header: 2\r\n\r\n";
    let out = rewrite_forwarded(&parse(req).unwrap(), req.as_bytes(), ip("192.0.2.9"), false);
    assert!(out.starts_with(b"GET / HTTP/1.1\r\nHost: a.test\r\nX_Forwarded: 1\r\nMy_Header: 2\r\n"));
}

/// Regression: Connection was forwarded as sent, so a client could name
/// X-Forwarded-For as a hop-by-hop field (RFC 9110 §7.6.1) and have the
/// next intermediate behind the proxy delete the one the proxy adds; or
/// name Content-Length, Transfer-Encoding or Host, which frame and route
/// the request.
#[test]
fn connection_could_nominate_forwarding_headers_as_hop_by_hop() {
    for (options, kept) in [
        ("close, X-Forwarded-For", Some("Connection: close")),
        ("X_Forwarded_For", None),
        ("keep-alive, x-real-ip, Forwarded, TE", Some("Connection: keep-alive, TE")),
        ("Content-Length,close,Transfer-Encoding", Some("Connection: close")),
        ("Host, X-Forwarded-Proto", None),
        ("close, , X-Custom", Some("Connection: close, , X-Custom")),
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: {options}\r\nAccept: */*\r\n\r\n");
        let h = parse(&req).unwrap();
        let out = String::from_utf8(rewrite_forwarded(&h, req.as_bytes(), ip("192.0.2.9"), false)).unwrap();
        let want = match kept {
            Some(c) => format!(
                "GET / HTTP/1.1\r\nHost: a.test\r\n{c}\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.9\r\n\r\n"
            ),
            None => {
                "GET / HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.9\r\n\r\n".into()
            }
        };
        assert_eq!(out, want, "{options}");
        assert_eq!(parse(&out).unwrap().keep_alive, h.keep_alive, "{options}");
    }
    // A Connection that nominates nothing of ours is copied byte for byte.
    let req = "GET / HTTP/1.1\r\nHost: a.test\r\nconnection:  Keep-Alive \r\n\r\n";
    let out = rewrite_forwarded(&parse(req).unwrap(), req.as_bytes(), ip("192.0.2.9"), false);
    assert!(out.starts_with(b"GET / HTTP/1.1\r\nHost: a.test\r\nconnection:  Keep-Alive \r\n"));
}

/// Regression: `Upgrade: h2c` was an upgrade like any other, so the proxy
/// tunnelled whatever followed once a backend that speaks h2c switched
/// protocols (h2c smuggling). RFC 9113 §3.1 deprecates the h2c upgrade:
/// the request goes on as plain HTTP/1.1, without Upgrade, HTTP2-Settings
/// and their Connection options.
#[test]
fn an_h2c_upgrade_was_a_tunnel() {
    for fields in [
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
        "Connection: upgrade\r\nUpgrade: websocket, H2C\r\n",
        "Upgrade: h2c\r\nConnection: http2-settings, upgrade\r\n",
        "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n",
    ] {
        let req = format!("GET / HTTP/1.1\r\nHost: a.test\r\n{fields}Accept: */*\r\n\r\n");
        let h = parse(&req).unwrap();
        assert!(!h.upgrade, "{fields:?}");
        let out = String::from_utf8(rewrite_forwarded(&h, req.as_bytes(), ip("192.0.2.9"), false)).unwrap();
        assert_eq!(
            out, "GET / HTTP/1.1\r\nHost: a.test\r\nAccept: */*\r\nX-Forwarded-For: 192.0.2.9\r\n\r\n",
            "{fields:?}"
        );
    }
    // A WebSocket upgrade keeps its fields.
    let req = "GET / HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
    let h = parse(req).unwrap();
    assert!(h.upgrade);
    let out = rewrite_forwarded(&h, req.as_bytes(), ip("192.0.2.9"), false);
    assert!(out.starts_with(req.trim_end_matches("\r\n").as_bytes()));
}

/// Regression: every read re-parsed the head from its first octet, so a
/// 16 KiB head sent one octet at a time cost about 134 million octet
/// steps. Fed one octet at a time, the reader looks at each octet once and
/// parses once.
#[test]
fn a_head_in_one_octet_segments_was_parsed_from_the_start_on_every_read() {
    let fixed = "GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: \r\n\r\n".len();
    let head = format!("GET / HTTP/1.1\r\nHost: a.test\r\nX-Pad: {}\r\n\r\n", "a".repeat(MAX_HEAD - fixed));
    let bytes = head.as_bytes();
    let mut reader = HeadReader::new();
    let mut got = None;
    for n in 1..=bytes.len() {
        match reader.read(&bytes[..n]) {
            Err(HeadError::Incomplete) => assert!(n < bytes.len(), "incomplete at the end"),
            r => {
                got = Some((n, r));
                break;
            }
        }
    }
    let (n, r) = got.unwrap();
    assert_eq!(n, bytes.len());
    assert_eq!(r.unwrap().head_len, MAX_HEAD);
    assert!(
        reader.work() <= 2 * bytes.len(),
        "{} octet steps for a {}-octet head",
        reader.work(),
        bytes.len()
    );
}

/// The reader's answers are the parser's: for every prefix that the reader
/// answers, `parse_head` on the same bytes gives the same; the limit and
/// bare line endings are refused as soon as they arrive.
#[test]
fn the_head_reader_answers_as_the_parser_does() {
    let cases: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\nGET /next".to_vec(),
        b"\r\n\r\nGET / HTTP/1.1\r\nHost: a.test\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\nHost: a.test\r\n\r\n".to_vec(),
        b"GET / HTTP/1.1\r\nHost: a.test\rX\r\n\r\n".to_vec(),
        b"GET  / HTTP/1.1\r\nHost: a.test\r\n\r\n".to_vec(),
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec(),
        format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(MAX_HEAD)).into_bytes(),
    ];
    for case in &cases {
        let mut reader = HeadReader::new();
        let mut answered = false;
        for n in 0..=case.len() {
            match reader.read(&case[..n]) {
                Err(HeadError::Incomplete) => {}
                r => {
                    assert_eq!(r, parse_head(&case[..n]), "{:?} at {n}", String::from_utf8_lossy(case));
                    answered = true;
                    break;
                }
            }
        }
        assert!(answered, "{:?}", String::from_utf8_lossy(case));
    }
    // After a reset the next head is read from the start of the buffer.
    let mut reader = HeadReader::new();
    let first = reader.read(b"GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n").unwrap();
    assert_eq!(first.target, "/a");
    reader.reset();
    assert_eq!(reader.read(b"GET /b HTTP/1.1\r\n"), Err(HeadError::Incomplete));
    assert_eq!(reader.read(b"GET /b HTTP/1.1\r\nHost: a.test\r\n\r\n").unwrap().target, "/b");
}

/// Trailer fields of a forwarded chunked body are found, so they can be
/// left out: whole or one octet at a time, what is forwarded ends with the
/// last chunk and the final empty line.
#[test]
fn chunked_trailers_are_found_so_they_can_be_left_out() {
    let body = b"5\r\nhello\r\n0;ext=1\r\nX-Forwarded-For: 6.6.6.6\r\nX-A: b\r\n\r\nGET";
    let want = b"5\r\nhello\r\n0;ext=1\r\n\r\n";
    let forwarded = |input: &[u8], f: &Feed| {
        let mut out = input[..f.trailers.start.min(f.consumed)].to_vec();
        if !f.trailers.is_empty() {
            out.extend_from_slice(&input[f.trailers.end..f.consumed]);
        } else {
            out = input[..f.consumed].to_vec();
        }
        out
    };
    let f = ChunkedDecoder::new().feed(body).unwrap();
    assert!(f.done && f.consumed == body.len() - 3);
    assert_eq!(&body[f.trailers.clone()], b"X-Forwarded-For: 6.6.6.6\r\nX-A: b\r\n");
    assert_eq!(forwarded(body, &f), want);
    let mut d = ChunkedDecoder::new();
    let mut out = Vec::new();
    for b in body.chunks(1) {
        let f = d.feed(b).unwrap();
        out.extend_from_slice(&forwarded(b, &f));
        if f.done {
            break;
        }
    }
    assert_eq!(out, want);
    assert!(ChunkedDecoder::new().feed(b"3\r\nabc\r\n0\r\n\r\n").unwrap().trailers.is_empty());
}

/// Only a bodiless request with an idempotent method (RFC 9110 §9.2.2)
/// may be sent again over a new connection.
#[test]
fn only_a_bodiless_idempotent_request_may_be_sent_again() {
    let may = |req: &str| parse(req).unwrap().may_be_sent_again();
    for method in ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"] {
        assert!(may(&format!("{method} / HTTP/1.1\r\nHost: a.test\r\n\r\n")), "{method}");
    }
    assert!(may("GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n"));
    assert!(!may("POST / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    assert!(!may("PATCH / HTTP/1.1\r\nHost: a.test\r\n\r\n"));
    assert!(!may("get / HTTP/1.1\r\nHost: a.test\r\n\r\n"), "methods are case-sensitive");
    assert!(!may("PUT / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 2\r\n\r\n"));
    assert!(!may("GET / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n"));
}
