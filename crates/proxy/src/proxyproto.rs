//! PROXY protocol headers (HAProxy's proxy-protocol.txt, versions 1 and 2):
//! the line or block sent to a backend before the client's bytes so the
//! backend learns the client's address.
//!
//! The proxy only ever encodes. The decoders exist for tests, for the fuzz
//! target and for `proxy check`, which reads what a peer would see; they
//! are strict, bounded, and report `Incomplete` when more bytes are needed.
//!
//! Both versions carry source and destination of one address family. Our
//! clients are IPv4 and our backends IPv6, so the natural pair is mixed.
//! The caller should pass the proxy's own IPv4 listen address as the
//! destination when it has one (then both are IPv4 and the header says
//! TCP4). When the families still differ, the IPv4 address is written as
//! an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) and the header says TCP6:
//! the spec forbids mixing families in one header, and a mapped address is
//! what a dual-stack socket would have reported for the same client.
//! [`same_family`] is that rule.
//!
//! Version 2 headers also carry TLVs (§2.2): `PP2_TYPE_AUTHORITY`, the
//! name the client asked for (the SNI or the Host), so that a backend
//! serving many names knows which one, as HAProxy's `proxy-v2-options
//! authority` sends it; and, where configured, `PP2_TYPE_UNIQUE_ID`, an ID
//! of the connection ([`UniqueIds`]) to match the proxy's logs with the
//! backend's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};

/// The longest version 1 header, CRLF included (proxy-protocol.txt §2.1).
pub const V1_MAX: usize = 107;

/// The version 2 signature (proxy-protocol.txt §2.2).
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// The longest version 2 header we read, TLVs included. The format allows
/// 16 + 65535 octets; nothing we talk to sends TLVs anywhere near 4 KiB.
pub const V2_MAX: usize = 4096;

/// The fixed part of a version 2 header: signature, version and command,
/// family and protocol, length.
const V2_FIXED: usize = 16;

/// `PP2_TYPE_AUTHORITY` (proxy-protocol.txt §2.2.2): the host name the
/// client asked for, UTF-8.
pub const PP2_TYPE_AUTHORITY: u8 = 0x02;

/// `PP2_TYPE_UNIQUE_ID` (proxy-protocol.txt §2.2.5): an opaque ID of the
/// connection.
pub const PP2_TYPE_UNIQUE_ID: u8 = 0x05;

/// The longest authority sent: a DNS name's 255 octets (RFC 1035 §2.3.4),
/// and the most HAProxy accepts (`PP2_AUTHORITY_MAX`); a receiver refuses
/// the whole header over a longer one, so a longer name is left out.
pub const MAX_AUTHORITY: usize = 255;

/// The longest unique ID: "up to 128 bytes" (proxy-protocol.txt §2.2.5).
pub const MAX_UNIQUE_ID: usize = 128;

/// What a version 2 header carries beyond the addresses. Version 1 has
/// no room for it and ignores it. A value that is empty or longer than
/// its limit ([`MAX_AUTHORITY`], [`MAX_UNIQUE_ID`]) is left out, so the
/// header always stays within [`V2_MAX`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tlvs<'a> {
    /// `PP2_TYPE_AUTHORITY`: the SNI, or the Host without its port.
    pub authority: Option<&'a str>,
    /// `PP2_TYPE_UNIQUE_ID`: the connection's ID.
    pub unique_id: Option<&'a [u8]>,
}

impl<'a> Tlvs<'a> {
    /// The authority `host`, and the connection's ID if it has one.
    pub fn new(host: &'a str, id: Option<&'a UniqueId>) -> Tlvs<'a> {
        Tlvs { authority: Some(host), unique_id: id.map(UniqueId::as_bytes) }
    }

    /// The TLVs that will be written, in order: type and value.
    fn each(&self) -> impl Iterator<Item = (u8, &'a [u8])> {
        let authority =
            self.authority.map(str::as_bytes).filter(|a| !a.is_empty() && a.len() <= MAX_AUTHORITY);
        let id = self.unique_id.filter(|i| !i.is_empty() && i.len() <= MAX_UNIQUE_ID);
        authority.map(|a| (PP2_TYPE_AUTHORITY, a)).into_iter().chain(id.map(|i| (PP2_TYPE_UNIQUE_ID, i)))
    }
}

/// A decoded header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Source and destination, or `None` for `UNKNOWN`, `LOCAL`,
    /// `AF_UNSPEC`, UDP and UNIX sockets: the receiver then uses the
    /// connection's own addresses.
    pub addresses: Option<(SocketAddr, SocketAddr)>,
    /// Octets the header takes; the peer's data starts there.
    pub len: usize,
}

/// Why a header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// A prefix of a valid header: read more.
    #[error("incomplete proxy protocol header")]
    Incomplete,
    /// The bytes do not start with this version's signature.
    #[error("not a proxy protocol header")]
    NotProxy,
    /// Longer than [`V1_MAX`] or [`V2_MAX`].
    #[error("proxy protocol header too long")]
    TooLong,
    /// Starts like a header but breaks the format.
    #[error("malformed proxy protocol header: {0}")]
    Malformed(&'static str),
}

/// The pair as one family: unchanged when the families agree, else the
/// IPv4 one as IPv4-mapped IPv6. Flow info and scope IDs are dropped (the
/// headers cannot carry them).
pub fn same_family(src: SocketAddr, dst: SocketAddr) -> (SocketAddr, SocketAddr) {
    let plain = |a: SocketAddr| SocketAddr::new(a.ip(), a.port());
    let mapped = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), a.port()),
        IpAddr::V6(_) => plain(a),
    };
    if src.is_ipv4() == dst.is_ipv4() { (plain(src), plain(dst)) } else { (mapped(src), mapped(dst)) }
}

/// The header for PROXY protocol `version` (1 or 2), with `tlvs` in
/// version 2; empty for 0 (off) and anything else.
pub fn header(version: u8, src: SocketAddr, dst: SocketAddr, tlvs: &Tlvs<'_>) -> Vec<u8> {
    match version {
        1 => v1(src, dst),
        2 => v2_with(src, dst, tlvs),
        _ => Vec::new(),
    }
}

/// The version 1 (text) header: `PROXY TCP4 src dst sport dport\r\n`, or
/// TCP6. Single spaces, RFC 5952 IPv6 text, ports without leading zeros:
/// the form nginx's strict reader expects. At most [`V1_MAX`] octets.
pub fn v1(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    let (s, d) = same_family(src, dst);
    let proto = if s.is_ipv4() { "TCP4" } else { "TCP6" };
    format!("PROXY {proto} {} {} {} {}\r\n", s.ip(), d.ip(), s.port(), d.port()).into_bytes()
}

/// The version 2 (binary) header without TLVs ([`v2_with`]).
pub fn v2(src: SocketAddr, dst: SocketAddr) -> Vec<u8> {
    v2_with(src, dst, &Tlvs::default())
}

/// The version 2 (binary) header: signature, version 2 with command PROXY
/// (0x21), TCP over IPv4 (0x11) or IPv6 (0x21), the length of what
/// follows, the addresses and ports in network order, then the TLVs
/// (type, 16-bit length, value). At most `16 + 36 + 3 + 255 + 3 + 128`
/// octets, well within [`V2_MAX`].
pub fn v2_with(src: SocketAddr, dst: SocketAddr, tlvs: &Tlvs<'_>) -> Vec<u8> {
    let (s, d) = same_family(src, dst);
    let tlv_len: usize = tlvs.each().map(|(_, v)| 3 + v.len()).sum();
    let mut out = Vec::with_capacity(V2_FIXED + 36 + tlv_len);
    out.extend_from_slice(&V2_SIGNATURE);
    out.push(0x21);
    let addr_len = match (s.ip(), d.ip()) {
        (IpAddr::V4(_), IpAddr::V4(_)) => 12,
        _ => 36,
    };
    // §2.2: the length counts the addresses and the TLVs. The values are
    // bounded ([`Tlvs`]), so this fits in 16 bits; saturating keeps the
    // encoder free of panics all the same.
    let len = u16::try_from(addr_len + tlv_len).unwrap_or(u16::MAX);
    out.push(if addr_len == 12 { 0x11 } else { 0x21 });
    out.extend_from_slice(&len.to_be_bytes());
    match (s.ip(), d.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            out.extend_from_slice(&a.octets());
            out.extend_from_slice(&b.octets());
        }
        (a, b) => {
            out.extend_from_slice(&v6(a).octets());
            out.extend_from_slice(&v6(b).octets());
        }
    }
    out.extend_from_slice(&s.port().to_be_bytes());
    out.extend_from_slice(&d.port().to_be_bytes());
    for (kind, value) in tlvs.each() {
        out.push(kind);
        // At most MAX_AUTHORITY octets.
        out.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    }
}

/// Reads a version 2 header if `buf` starts with its signature, else a
/// version 1 header.
pub fn decode(buf: &[u8]) -> Result<Header, ProxyError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf.first() == Some(&b'\r') && buf.get(..n) == V2_SIGNATURE.get(..n) {
        decode_v2(buf)
    } else {
        decode_v1(buf)
    }
}

/// Reads a version 1 header at the start of `buf`. Strict: `TCP4` with
/// dotted-quad addresses or `TCP6` with IPv6 text, single spaces, decimal
/// ports without leading zeros, CRLF. `UNKNOWN` gives no addresses, and
/// whatever follows it up to the CRLF is ignored, as the spec says.
pub fn decode_v1(buf: &[u8]) -> Result<Header, ProxyError> {
    const PREFIX: &[u8] = b"PROXY ";
    let n = buf.len().min(PREFIX.len());
    if buf.get(..n) != PREFIX.get(..n) {
        return Err(ProxyError::NotProxy);
    }
    let window = buf.get(..buf.len().min(V1_MAX)).unwrap_or(buf);
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return Err(if buf.len() >= V1_MAX { ProxyError::TooLong } else { ProxyError::Incomplete });
    };
    let line =
        window.get(..lf).and_then(|l| l.strip_suffix(b"\r")).ok_or(ProxyError::Malformed("bare lf"))?;
    let line = line.strip_prefix(PREFIX).ok_or(ProxyError::Malformed("short line"))?;
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("not ascii"))?;
    let len = lf + 1;
    if let Some(rest) = line.strip_prefix("UNKNOWN") {
        if rest.is_empty() || rest.starts_with(' ') {
            return Ok(Header { addresses: None, len });
        }
        return Err(ProxyError::Malformed("unknown protocol"));
    }
    let mut fields = line.split(' ');
    let (Some(proto), Some(src), Some(dst), Some(sport), Some(dport), None) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(ProxyError::Malformed("want five fields separated by single spaces"));
    };
    let bad_addr = |_| ProxyError::Malformed("bad address");
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match proto {
        "TCP4" => (
            src.parse::<Ipv4Addr>().map_err(bad_addr)?.into(),
            dst.parse::<Ipv4Addr>().map_err(bad_addr)?.into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>().map_err(bad_addr)?.into(),
            dst.parse::<Ipv6Addr>().map_err(bad_addr)?.into(),
        ),
        _ => return Err(ProxyError::Malformed("unknown protocol")),
    };
    let addresses = (SocketAddr::new(src_ip, port(sport)?), SocketAddr::new(dst_ip, port(dport)?));
    Ok(Header { addresses: Some(addresses), len })
}

/// A decimal port, 0..=65535, without sign, spaces or leading zeros.
fn port(text: &str) -> Result<u16, ProxyError> {
    let bad = ProxyError::Malformed("bad port");
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad);
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(bad);
    }
    text.parse().map_err(|_| bad)
}

/// Reads a version 2 header at the start of `buf`: version 2, command
/// LOCAL or PROXY, a length within [`V2_MAX`], addresses that fit the
/// length, and TLVs (skipped) that fill the rest exactly.
pub fn decode_v2(buf: &[u8]) -> Result<Header, ProxyError> {
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf.get(..n) != V2_SIGNATURE.get(..n) {
        return Err(ProxyError::NotProxy);
    }
    let fixed = buf.get(..V2_FIXED).ok_or(ProxyError::Incomplete)?;
    let (ver_cmd, fam, hi, lo) = match fixed {
        [.., a, b, c, d] => (*a, *b, *c, *d),
        _ => return Err(ProxyError::Incomplete),
    };
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::Malformed("version is not 2"));
    }
    let local = match ver_cmd & 0x0f {
        0 => true,
        1 => false,
        _ => return Err(ProxyError::Malformed("unknown command")),
    };
    let len = V2_FIXED + usize::from(u16::from_be_bytes([hi, lo]));
    if len > V2_MAX {
        return Err(ProxyError::TooLong);
    }
    let body = buf.get(V2_FIXED..len).ok_or(ProxyError::Incomplete)?;
    let addr_len = address_len(fam)?;
    if !matches!(fam & 0x0f, 0..=2) {
        return Err(ProxyError::Malformed("unknown transport protocol"));
    }
    let (addrs, tlvs) =
        body.split_at_checked(addr_len).ok_or(ProxyError::Malformed("addresses exceed length"))?;
    check_tlvs(tlvs)?;
    // LOCAL: "the receiver must ignore the address information".
    let addresses = if local { None } else { tcp_addresses(fam, addrs) };
    Ok(Header { addresses, len })
}

/// proxy-protocol.txt §2.2: the address block's size follows from the
/// family; UNSPEC has none.
fn address_len(fam: u8) -> Result<usize, ProxyError> {
    match fam >> 4 {
        0 => Ok(0),
        1 => Ok(12),
        2 => Ok(36),
        3 => Ok(216),
        _ => Err(ProxyError::Malformed("unknown address family")),
    }
}

/// TCP over IPv4 or IPv6 from an address block of the right size, else
/// `None` (UNSPEC, UDP, UNIX).
fn tcp_addresses(fam: u8, a: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    let port = |i: usize| a.get(i..i + 2).and_then(|p| p.try_into().ok()).map(u16::from_be_bytes);
    match fam {
        0x11 => {
            let s: [u8; 4] = a.get(0..4)?.try_into().ok()?;
            let d: [u8; 4] = a.get(4..8)?.try_into().ok()?;
            Some((
                SocketAddr::new(Ipv4Addr::from(s).into(), port(8)?),
                SocketAddr::new(Ipv4Addr::from(d).into(), port(10)?),
            ))
        }
        0x21 => {
            let s: [u8; 16] = a.get(0..16)?.try_into().ok()?;
            let d: [u8; 16] = a.get(16..32)?.try_into().ok()?;
            Some((
                SocketAddr::new(Ipv6Addr::from(s).into(), port(32)?),
                SocketAddr::new(Ipv6Addr::from(d).into(), port(34)?),
            ))
        }
        _ => None,
    }
}

/// TLVs (type, 16-bit length, value) must tile the rest of the header.
fn check_tlvs(rest: &[u8]) -> Result<(), ProxyError> {
    walk_tlvs(rest, |_, _| {})
}

/// Calls `each` with the type and value of every TLV in `rest`, which
/// they must tile.
fn walk_tlvs<'a>(mut rest: &'a [u8], mut each: impl FnMut(u8, &'a [u8])) -> Result<(), ProxyError> {
    while !rest.is_empty() {
        let [kind, hi, lo, tail @ ..] = rest else {
            return Err(ProxyError::Malformed("truncated tlv"));
        };
        let n = usize::from(u16::from_be_bytes([*hi, *lo]));
        let (value, after) = tail.split_at_checked(n).ok_or(ProxyError::Malformed("tlv exceeds length"))?;
        each(*kind, value);
        rest = after;
    }
    Ok(())
}

/// The TLVs of the version 2 header at the start of `buf` ([`decode_v2`]
/// checks it first), as type and value, in order: at most `V2_MAX / 3`.
pub fn decode_v2_tlvs(buf: &[u8]) -> Result<Vec<(u8, &[u8])>, ProxyError> {
    let h = decode_v2(buf)?;
    let fam = buf.get(13).copied().ok_or(ProxyError::Incomplete)?;
    let body = buf.get(V2_FIXED..h.len).ok_or(ProxyError::Incomplete)?;
    let tlvs = body.get(address_len(fam)?..).ok_or(ProxyError::Malformed("addresses exceed length"))?;
    let mut out = Vec::new();
    walk_tlvs(tlvs, |kind, value| out.push((kind, value)))?;
    Ok(out)
}

/// An ID of one connection, for `PP2_TYPE_UNIQUE_ID` and the logs: 16
/// octets, shown as 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UniqueId([u8; 16]);

impl UniqueId {
    /// The octets, as the TLV carries them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Display for UniqueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// Makes [`UniqueId`]s, each different from every other this process
/// makes, and different from other processes' with overwhelming odds.
///
/// An ID is a per-process prefix of 8 random octets, then a 64-bit
/// counter through a keyed bijective mix (xor with a key, SplitMix64's
/// finaliser, twice): distinct counters give distinct IDs, and the
/// counter does not show, so a backend cannot count the proxy's
/// connections by them. They are not secrets and not unguessable tokens.
#[derive(Debug)]
pub struct UniqueIds {
    prefix: [u8; 8],
    keys: [u64; 2],
    next: AtomicU64,
}

impl UniqueIds {
    /// IDs from `key`: the prefix and the two mixing keys.
    pub fn new(key: [u64; 3]) -> UniqueIds {
        let [prefix, k1, k2] = key;
        UniqueIds { prefix: prefix.to_be_bytes(), keys: [k1, k2], next: AtomicU64::new(0) }
    }

    /// IDs from a key the standard library draws from the system's
    /// randomness (`RandomState`).
    pub fn random() -> UniqueIds {
        use std::hash::BuildHasher;
        let draw = |i: u64| std::hash::RandomState::new().hash_one(i);
        UniqueIds::new([draw(0), draw(1), draw(2)])
    }

    /// The next ID.
    pub fn next(&self) -> UniqueId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let [k1, k2] = self.keys;
        let body = mix(mix(n ^ k1) ^ k2);
        let mut id = [0u8; 16];
        let (head, tail) = id.split_at_mut(8);
        head.copy_from_slice(&self.prefix);
        tail.copy_from_slice(&body.to_be_bytes());
        UniqueId(id)
    }
}

/// SplitMix64's finaliser: a bijection of 64-bit words (each step, an
/// xor-shift or a product with an odd constant, can be undone).
pub(crate) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
#[path = "proxyproto_tests.rs"]
mod tests;
