//! Reading the server name from a TLS ClientHello without terminating TLS.
//!
//! [`peek`] looks at everything a client has sent so far and says whether
//! the ClientHello is complete and, if so, which host it names. Nothing is
//! consumed: the caller forwards the same bytes to the backend it picks,
//! which does the handshake. Each call reads the buffer from the start, so
//! the caller simply calls again with a longer buffer after every read,
//! within its own size cap and deadline.
//!
//! The ClientHello may arrive in any number of TCP segments and, as TLS
//! allows, in several handshake records (RFC 8446 §5.1); the handshake
//! message is reassembled from consecutive records. Only what routing
//! depends on is checked strictly: the record and handshake framing, the
//! ClientHello's vectors and extension bounds, and the server_name
//! extension. Everything else is the backend's to judge.

use std::borrow::Cow;

/// The largest ClientHello read, counted as its handshake body length
/// (without the 4-octet handshake header). Post-quantum key shares make
/// ClientHellos of 1.5–2 KB common; 16 KiB leaves ample room.
pub const MAX_CLIENT_HELLO: usize = 16 * 1024;

/// The largest record length accepted: 2^14 + 2048, the most any TLS
/// version allows in a record (RFC 5246 §6.2.3, TLSCiphertext).
pub const MAX_RECORD: usize = (1 << 14) + 2048;

/// The longest host name, in octets, without a trailing dot (RFC 1035
/// §2.3.4's 255 octets in wire form).
pub const MAX_HOST_NAME: usize = 253;

/// The longest label of a host name (RFC 1035 §2.3.4).
pub const MAX_LABEL: usize = 63;

const RECORD_HEADER: usize = 5;
const HANDSHAKE_HEADER: usize = 4;
const CONTENT_HANDSHAKE: u8 = 22;
const HANDSHAKE_CLIENT_HELLO: u8 = 1;
const EXT_SERVER_NAME: u16 = 0;
const NAME_TYPE_HOST_NAME: u8 = 0;

/// What the bytes received so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Peek {
    /// The ClientHello is not complete yet: read more and call again.
    NeedMore,
    /// The ClientHello names this host: lowercased, a valid host name.
    Sni(String),
    /// A well-formed ClientHello without a host_name in server_name.
    NoSni,
    /// The client does not speak TLS (or only SSLv2).
    NotTls(&'static str),
    /// TLS, but not a well-formed ClientHello. A server_name that is not a
    /// valid host name, IP address literals included, is reported here.
    Malformed(&'static str),
    /// The ClientHello announces more than [`MAX_CLIENT_HELLO`] octets.
    TooLarge,
}

/// Reads the ClientHello at the start of `buf`, all the client has sent.
///
/// Returns [`Peek::NeedMore`] as long as the answer depends on bytes not
/// received yet, and a final answer as soon as it does not: a refusal as
/// soon as the bytes that cause it are there (a [`Peek::TooLarge`] as soon
/// as the handshake header announces the length), and [`Peek::Sni`] or
/// [`Peek::NoSni`] once the record that ends the ClientHello is complete.
/// Bytes after that record (further records, early data) are not read, so
/// once the answer is final, longer buffers give the same answer.
///
/// The work is linear in `buf.len()`, and at most [`MAX_CLIENT_HELLO`]
/// plus one record is copied, only when the ClientHello spans records.
pub fn peek(buf: &[u8]) -> Peek {
    match reassemble(buf) {
        Ok(body) => match client_hello(&body) {
            Ok(Some(name)) => Peek::Sni(name),
            Ok(None) => Peek::NoSni,
            Err(why) => Peek::Malformed(why),
        },
        Err(p) => p,
    }
}

/// The ClientHello's body, from as many handshake records as it takes.
fn reassemble(buf: &[u8]) -> Result<Cow<'_, [u8]>, Peek> {
    let mut msg: Cow<'_, [u8]> = Cow::Borrowed(&[]);
    let mut rest = buf;
    let mut first = true;
    loop {
        let (fragment, declared) = record(rest, first)?;
        // The handshake octets this record carries in full, received or not.
        let covered = msg.len().saturating_add(declared);
        if msg.is_empty() {
            msg = Cow::Borrowed(fragment);
        } else {
            msg.to_mut().extend_from_slice(fragment);
        }
        let mut total = None;
        if let Some(&typ) = msg.first()
            && typ != HANDSHAKE_CLIENT_HELLO
        {
            return Err(Peek::Malformed("the first handshake message is not a ClientHello"));
        }
        if let Some(h) = msg.get(..HANDSHAKE_HEADER) {
            let len = h.iter().skip(1).fold(0usize, |n, &b| n << 8 | usize::from(b));
            if len > MAX_CLIENT_HELLO {
                return Err(Peek::TooLarge);
            }
            let t = HANDSHAKE_HEADER + len;
            // Nothing may follow the ClientHello in the handshake stream
            // before the server answers: it is the whole first flight
            // (RFC 8446 §2, RFC 5246 §7.3).
            if covered > t {
                return Err(Peek::Malformed("handshake data after the ClientHello"));
            }
            total = Some(t);
        }
        if fragment.len() < declared {
            return Err(Peek::NeedMore);
        }
        if total == Some(msg.len()) {
            return Ok(match msg {
                Cow::Borrowed(m) => Cow::Borrowed(m.get(HANDSHAKE_HEADER..).unwrap_or_default()),
                Cow::Owned(mut m) => {
                    m.drain(..HANDSHAKE_HEADER);
                    Cow::Owned(m)
                }
            });
        }
        rest = rest.get(RECORD_HEADER + declared..).unwrap_or_default();
        first = false;
    }
}

/// The received part of the fragment of the record at the start of `buf`,
/// and the fragment length its header declares. Each header octet is
/// judged as soon as it arrives.
fn record(buf: &[u8], first: bool) -> Result<(&[u8], usize), Peek> {
    let Some(&typ) = buf.first() else { return Err(Peek::NeedMore) };
    if typ != CONTENT_HANDSHAKE {
        return Err(if !first {
            // RFC 8446 §5.1: handshake messages are not interleaved with
            // other record types.
            Peek::Malformed("a non-handshake record inside the ClientHello")
        } else if typ & 0x80 != 0 {
            // An SSLv2 CLIENT-HELLO starts with a two-octet length with the
            // top bit set (RFC 5246 Appendix E.2); no TLS content type does.
            Peek::NotTls("an SSLv2-style hello")
        } else if (20..=24).contains(&typ) {
            Peek::NotTls("a non-handshake record before the ClientHello")
        } else {
            Peek::NotTls("not a TLS record")
        });
    }
    // RFC 8446 §5.1: legacy_record_version "MUST be ignored for all
    // purposes"; only its major version 3 marks TLS (SSL 3.0 and later).
    match buf.get(1) {
        None => return Err(Peek::NeedMore),
        Some(3) => {}
        Some(_) if first => return Err(Peek::NotTls("not a TLS record version")),
        Some(_) => return Err(Peek::Malformed("a record version that is not TLS")),
    }
    let Some(&[hi, lo]) = buf.get(3..RECORD_HEADER) else { return Err(Peek::NeedMore) };
    let declared = usize::from(u16::from_be_bytes([hi, lo]));
    // RFC 8446 §5.1: no zero-length handshake fragments.
    if declared == 0 {
        return Err(Peek::Malformed("an empty handshake record"));
    }
    if declared > MAX_RECORD {
        return Err(Peek::Malformed("a record longer than TLS allows"));
    }
    let body = buf.get(RECORD_HEADER..).unwrap_or_default();
    Ok((body.get(..declared).unwrap_or(body), declared))
}

/// Reads big-endian integers and length-prefixed vectors off a slice.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(rest: &'a [u8]) -> Self {
        Reader { rest }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], &'static str> {
        if n > self.rest.len() {
            return Err(what);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, &'static str> {
        let (&b, tail) = self.rest.split_first().ok_or(what)?;
        self.rest = tail;
        Ok(b)
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, &'static str> {
        let b = self.take(2, what)?;
        Ok(b.iter().fold(0, |n, &o| n << 8 | u16::from(o)))
    }

    /// An `opaque x<..2^8-1>`.
    fn vec8(&mut self, what: &'static str) -> Result<&'a [u8], &'static str> {
        let n = self.u8(what)?;
        self.take(usize::from(n), what)
    }

    /// An `opaque x<..2^16-1>`.
    fn vec16(&mut self, what: &'static str) -> Result<&'a [u8], &'static str> {
        let n = self.u16(what)?;
        self.take(usize::from(n), what)
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }
}

/// The host name in a ClientHello body (RFC 8446 §4.1.2, RFC 5246
/// §7.4.1.2), if it has one.
fn client_hello(body: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader::new(body);
    let version = r.u16("truncated legacy_version")?;
    if version >> 8 != 3 {
        return Err("legacy_version is not TLS");
    }
    r.take(32, "truncated random")?;
    if r.vec8("truncated legacy_session_id")?.len() > 32 {
        return Err("legacy_session_id longer than 32 octets");
    }
    let suites = r.vec16("truncated cipher_suites")?;
    if suites.len() < 2 || suites.len() % 2 != 0 {
        return Err("cipher_suites is empty or of odd length");
    }
    if r.vec8("truncated legacy_compression_methods")?.is_empty() {
        return Err("legacy_compression_methods is empty");
    }
    // RFC 5246 §7.4.1.2: a ClientHello may end here, without extensions.
    if r.is_empty() {
        return Ok(None);
    }
    let mut exts = Reader::new(r.vec16("truncated extensions")?);
    if !r.is_empty() {
        return Err("data after the extensions");
    }
    let mut name = None;
    let mut seen = false;
    while !exts.is_empty() {
        let typ = exts.u16("truncated extension type")?;
        let data = exts.vec16("truncated extension data")?;
        if typ != EXT_SERVER_NAME {
            continue;
        }
        // RFC 8446 §4.2: no more than one extension of each type. Another
        // server_name could name another host to the backend.
        if seen {
            return Err("two server_name extensions");
        }
        seen = true;
        name = server_name(data)?;
    }
    Ok(name)
}

/// The host_name in a server_name extension's data (RFC 6066 §3).
fn server_name(data: &[u8]) -> Result<Option<String>, &'static str> {
    let mut r = Reader::new(data);
    let mut list = Reader::new(r.vec16("truncated server_name_list")?);
    if !r.is_empty() {
        return Err("data after the server_name_list");
    }
    if list.is_empty() {
        return Err("an empty server_name_list");
    }
    let mut host = None;
    while !list.is_empty() {
        let typ = list.u8("truncated name_type")?;
        // Every name type's data starts with a 16-bit length, so unknown
        // types can be stepped over (RFC 6066 §3).
        let name = list.vec16("truncated server name")?;
        if typ == NAME_TYPE_HOST_NAME {
            // RFC 6066 §3: no two names of the same name_type.
            if host.is_some() {
                return Err("two host_names in server_name");
            }
            host = Some(host_name(name)?);
        }
    }
    Ok(host)
}

/// A host_name checked and lowercased. RFC 6066 §3: "the fully qualified
/// DNS hostname of the server", ASCII (A-labels), without a trailing dot,
/// and "Literal IPv4 and IPv6 addresses are not permitted". Labels are
/// LDH labels (RFC 1123 §2.1, RFC 5890 §2.3.1).
fn host_name(raw: &[u8]) -> Result<String, &'static str> {
    if raw.is_empty() {
        return Err("an empty host_name");
    }
    if raw.len() > MAX_HOST_NAME {
        return Err("a host_name longer than 253 octets");
    }
    if raw.contains(&b':') {
        return Err("an IPv6 address literal as host_name");
    }
    let mut last = &[][..];
    for label in raw.split(|&b| b == b'.') {
        if label.is_empty() {
            return Err("an empty label in host_name (or a trailing dot)");
        }
        if label.len() > MAX_LABEL {
            return Err("a label longer than 63 octets in host_name");
        }
        if !label.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-') {
            return Err("a host_name character that is not a letter, digit or hyphen");
        }
        if label.first() == Some(&b'-') || label.last() == Some(&b'-') {
            return Err("a host_name label that starts or ends with a hyphen");
        }
        last = label;
    }
    // A top-level label is never all digits (RFC 3696 §2), so a name whose
    // last label is a number is an address literal: dotted-quad and the
    // other forms that URL parsers read as IPv4 (WHATWG URL, "ends in a
    // number"), hexadecimal ones included.
    let hex = last.len() > 2 && last.get(..2).is_some_and(|p| p.eq_ignore_ascii_case(b"0x"));
    let digits = if hex { last.get(2..).unwrap_or_default() } else { last };
    if digits.iter().all(|b| if hex { b.is_ascii_hexdigit() } else { b.is_ascii_digit() }) {
        return Err("an IPv4 address literal as host_name");
    }
    Ok(raw.iter().map(|b| char::from(b.to_ascii_lowercase())).collect())
}

#[cfg(test)]
#[path = "sni_tests.rs"]
mod tests;
