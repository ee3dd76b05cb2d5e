//! DNS Cookies (RFC 7873) with interoperable server cookies (RFC 9018).
//!
//! A client sends an 8-octet client cookie in an EDNS COOKIE option; the
//! server answers with that client cookie and a server cookie it can
//! verify later without keeping state. A client that sends back a server
//! cookie which verifies has shown that it receives answers at its
//! address: it is not spoofing it, so response-rate limiting may exempt it.
//!
//! The server cookie is RFC 9018's: Version 1, three Reserved octets, a
//! 32-bit Timestamp and an 8-octet SipHash-2-4 over the client cookie,
//! those eight octets and the client's address, keyed with a 16-octet
//! secret. Every server of an anycast group that shares the secret (and
//! any other implementation of RFC 9018, Knot, BIND, NSD, Unbound) accepts
//! the others' cookies.
//!
//! Everything here is pure: the time and the client's address are passed
//! in, and nothing allocates.

use std::net::IpAddr;

/// Octets of a client cookie (RFC 7873 §4.1).
pub const CLIENT_LEN: usize = 8;
/// Shortest server cookie (RFC 7873 §4.2).
pub const MIN_SERVER_LEN: usize = 8;
/// Longest server cookie (RFC 7873 §4.2).
pub const MAX_SERVER_LEN: usize = 32;
/// Octets of the server cookies made here (RFC 9018 §4).
pub const SERVER_LEN: usize = 16;
/// Octets of the COOKIE option data in every response that carries one:
/// the client cookie and one of our server cookies.
pub const REPLY_LEN: usize = CLIENT_LEN + SERVER_LEN;
/// EDNS option code of COOKIE (RFC 7873 §8).
pub const OPTION_CODE: u16 = 10;
/// The extended rcode BADCOOKIE (RFC 7873 §8).
pub const BADCOOKIE: u16 = 23;
/// Oldest server cookie accepted, in seconds: RFC 9018 §4.3 "SHOULD allow
/// cookies within a 1-hour period in the past".
pub const MAX_AGE: u32 = 3600;
/// Furthest a cookie's timestamp may lie ahead of our clock, in seconds
/// (RFC 9018 §4.3: "a 5-minute period into the future"), for a peer of an
/// anycast group whose clock runs a little ahead.
pub const MAX_AHEAD: u32 = 300;
/// Age past which a valid cookie is replaced by a fresh one, in seconds:
/// RFC 9018 §4.3 "SHOULD generate a new Server Cookie at least if the
/// received Server Cookie from the client is more than half an hour old".
pub const REFRESH_AGE: u32 = 1800;
/// The only version of the construction (RFC 9018 §4.1).
const VERSION: u8 = 1;

/// A COOKIE option that could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieError {
    /// Neither a client cookie alone nor a client cookie and a server
    /// cookie of 8 to 32 octets (RFC 7873 §5.2.2: FORMERR).
    #[error("cookie option of {0} octets")]
    Length(usize),
}

/// A server secret that is not 32 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// Not 32 hexadecimal digits.
    #[error("a cookie secret is 32 hexadecimal digits")]
    Format,
}

/// The COOKIE option of a query, as received.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Cookie {
    client: [u8; CLIENT_LEN],
    server: [u8; MAX_SERVER_LEN],
    server_len: u8,
}

impl Cookie {
    /// Reads a COOKIE option's data (RFC 7873 §4): 8 octets of client
    /// cookie, then nothing or 8 to 32 octets of server cookie.
    pub fn decode(data: &[u8]) -> Result<Cookie, CookieError> {
        let bad = CookieError::Length(data.len());
        let (client, server) = data.split_at_checked(CLIENT_LEN).ok_or(bad)?;
        if !server.is_empty() && !(MIN_SERVER_LEN..=MAX_SERVER_LEN).contains(&server.len()) {
            return Err(bad);
        }
        let mut c = Cookie { client: [0; CLIENT_LEN], server: [0; MAX_SERVER_LEN], server_len: 0 };
        c.client.copy_from_slice(client);
        if let Some(slot) = c.server.get_mut(..server.len()) {
            slot.copy_from_slice(server);
            c.server_len = server.len() as u8;
        }
        Ok(c)
    }

    /// The client cookie.
    pub fn client(&self) -> &[u8; CLIENT_LEN] {
        &self.client
    }

    /// The server cookie, empty when the client sent only its own.
    pub fn server(&self) -> &[u8] {
        self.server.get(..usize::from(self.server_len)).unwrap_or(&[])
    }
}

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        write!(f, "Cookie({}/{})", hex(&self.client), hex(self.server()))
    }
}

/// A 16-octet server secret, the SipHash key (RFC 9018 §4.4).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Secret([u8; 16]);

impl Secret {
    /// A secret from its octets.
    pub const fn new(octets: [u8; 16]) -> Secret {
        Secret(octets)
    }

    /// A secret from 32 hexadecimal digits, as Knot, BIND and NSD write
    /// theirs, so that one secret can be shared with them.
    pub fn from_hex(text: &str) -> Result<Secret, SecretError> {
        let digits = text.as_bytes();
        if digits.len() != 32 {
            return Err(SecretError::Format);
        }
        let mut out = [0u8; 16];
        for (o, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
            let hi = hex_digit(*pair.first().ok_or(SecretError::Format)?)?;
            let lo = hex_digit(*pair.get(1).ok_or(SecretError::Format)?)?;
            *o = hi << 4 | lo;
        }
        Ok(Secret(out))
    }
}

fn hex_digit(d: u8) -> Result<u8, SecretError> {
    match d {
        b'0'..=b'9' => Ok(d - b'0'),
        b'a'..=b'f' => Ok(d - b'a' + 10),
        b'A'..=b'F' => Ok(d - b'A' + 10),
        _ => Err(SecretError::Format),
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A secret never reaches a log.
        f.write_str("Secret(..)")
    }
}

/// The secrets a server verifies cookies with, and what it does with a
/// client that has none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secrets {
    /// Makes every new server cookie, and verifies.
    pub current: Secret,
    /// During a rollover, still verifies the cookies made before it
    /// (RFC 9018 §4.4, RFC 7873 §7.1); a cookie made with it is replaced
    /// by one made with `current`.
    pub previous: Option<Secret>,
    /// Answer a UDP query whose COOKIE option has no valid server cookie
    /// with BADCOOKIE and a fresh cookie rather than with the answer
    /// (RFC 7873 §5.2.3; BIND's `require-server-cookie`). Off by default:
    /// the client then has to ask twice.
    pub require: bool,
}

impl Secrets {
    /// Verifying with `current` alone, answering every client.
    pub const fn new(current: Secret) -> Secrets {
        Secrets { current, previous: None, require: false }
    }
}

/// What a query's COOKIE option proved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CookieStatus {
    /// No COOKIE option, or cookies are not in use.
    #[default]
    None,
    /// A client cookie alone: the client has not met this server yet.
    ClientOnly,
    /// A server cookie we made for this client, within its lifetime: the
    /// client receives answers at its address.
    Valid,
    /// A server cookie that does not verify (another secret, another
    /// address, too old or from the future, not our construction).
    Invalid,
}

/// The verdict on a query's cookie and the COOKIE option data to answer
/// with: the client cookie and a server cookie, fresh unless the one
/// received is valid and recent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// What the cookie proved.
    pub status: CookieStatus,
    /// The option data of the response's COOKIE.
    pub reply: [u8; REPLY_LEN],
}

/// Checks the cookie of a query from `ip` at `now` (Unix seconds; RFC 9018
/// timestamps are 32-bit serial numbers, so the time is taken modulo 2^32)
/// and makes the cookie to answer with (RFC 7873 §5.2.3 to §5.2.5).
pub fn check(secrets: &Secrets, cookie: &Cookie, ip: IpAddr, now: u64) -> Checked {
    let now = now as u32;
    let fresh = |status| Checked { status, reply: reply(&secrets.current, cookie.client(), ip, now) };
    let server = cookie.server();
    if server.is_empty() {
        return fresh(CookieStatus::ClientOnly);
    }
    let Some(received) = <&[u8; SERVER_LEN]>::try_from(server).ok().filter(|s| s.first() == Some(&VERSION))
    else {
        return fresh(CookieStatus::Invalid);
    };
    let stamp = u32::from_be_bytes([received[4], received[5], received[6], received[7]]);
    // RFC 1982 serial arithmetic: the signed distance from the timestamp
    // to now.
    let age = now.wrapping_sub(stamp) as i32;
    if age > MAX_AGE as i32 || age < -(MAX_AHEAD as i32) {
        return fresh(CookieStatus::Invalid);
    }
    let made_with = |secret: &Secret| {
        let mut head = [0u8; 8];
        head.copy_from_slice(&received[..8]);
        // The Reserved octets are hashed as received (RFC 9018 §4.2;
        // Appendix A.3 verifies one whose Reserved octets are not zero).
        same(&hash(secret, cookie.client(), &head, ip), &received[8..])
    };
    if made_with(&secrets.current) {
        if age > REFRESH_AGE as i32 {
            return fresh(CookieStatus::Valid);
        }
        let mut reply = [0u8; REPLY_LEN];
        reply[..CLIENT_LEN].copy_from_slice(cookie.client());
        reply[CLIENT_LEN..].copy_from_slice(received);
        return Checked { status: CookieStatus::Valid, reply };
    }
    // A cookie of the previous secret is valid, and replaced with one of
    // the current secret (RFC 9018 Appendix A.4).
    if secrets.previous.as_ref().is_some_and(made_with) {
        return fresh(CookieStatus::Valid);
    }
    fresh(CookieStatus::Invalid)
}

/// The server cookie for `client` at `ip`, made with `secret` at `now`
/// (RFC 9018 §4.2): Version 1, Reserved 0, Timestamp, Hash.
pub fn server_cookie(secret: &Secret, client: &[u8; CLIENT_LEN], ip: IpAddr, now: u32) -> [u8; SERVER_LEN] {
    let mut head = [0u8; 8];
    head[0] = VERSION;
    head[4..].copy_from_slice(&now.to_be_bytes());
    let mut out = [0u8; SERVER_LEN];
    out[..8].copy_from_slice(&head);
    out[8..].copy_from_slice(&hash(secret, client, &head, ip));
    out
}

/// The COOKIE option data of a response: the client cookie, then a fresh
/// server cookie.
fn reply(secret: &Secret, client: &[u8; CLIENT_LEN], ip: IpAddr, now: u32) -> [u8; REPLY_LEN] {
    let mut out = [0u8; REPLY_LEN];
    out[..CLIENT_LEN].copy_from_slice(client);
    out[CLIENT_LEN..].copy_from_slice(&server_cookie(secret, client, ip, now));
    out
}

/// Hash = SipHash-2-4(Client Cookie | Version | Reserved | Timestamp |
/// Client-IP, Server Secret), the 64-bit result in little-endian order, as
/// the reference implementation writes it (RFC 9018 §4.2, Appendix A).
fn hash(secret: &Secret, client: &[u8; CLIENT_LEN], head: &[u8; 8], ip: IpAddr) -> [u8; 8] {
    // An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; it is
    // an IPv4 client, hashed as 4 octets, as its other servers see it.
    let mut input = [0u8; 32];
    input[..8].copy_from_slice(client);
    input[8..16].copy_from_slice(head);
    let len = match ip.to_canonical() {
        IpAddr::V4(v4) => {
            input[16..20].copy_from_slice(&v4.octets());
            20
        }
        IpAddr::V6(v6) => {
            input[16..32].copy_from_slice(&v6.octets());
            32
        }
    };
    siphash24(&secret.0, input.get(..len).unwrap_or(&input)).to_le_bytes()
}

/// Compares two hashes in time independent of where they differ, so that
/// the answer's timing tells a forger nothing about a guess.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input
/// PRF", 2012) over `data` with the 128-bit `key`. Written here rather than
/// taken from a crate: it is thirty lines, used for one input shape, and
/// checked against the paper's vectors and RFC 9018's; the DNS core keeps
/// its dependencies to what it cannot do itself.
fn siphash24(key: &[u8; 16], data: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes([key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7]]);
    let k1 = u64::from_le_bytes([key[8], key[9], key[10], key[11], key[12], key[13], key[14], key[15]]);
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let mut compress = |m: u64| {
        v[3] ^= m;
        round(&mut v);
        round(&mut v);
        v[0] ^= m;
    };
    let mut blocks = data.chunks_exact(8);
    for b in blocks.by_ref() {
        let mut w = [0u8; 8];
        w.copy_from_slice(b);
        compress(u64::from_le_bytes(w));
    }
    // The last block: the remaining octets, and the length's low octet
    // in the top byte.
    let mut last = [0u8; 8];
    let rest = blocks.remainder();
    if let Some(slot) = last.get_mut(..rest.len()) {
        slot.copy_from_slice(rest);
    }
    last[7] = data.len() as u8;
    compress(u64::from_le_bytes(last));
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[cfg(test)]
#[path = "cookie_tests.rs"]
mod tests;
