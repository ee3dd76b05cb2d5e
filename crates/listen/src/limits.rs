//! The limits of one listener: caps, a deadline per phase, TCP options.
//!
//! One type for every listener, so that `[dns.limits]`, `[api.limits]` and
//! `[proxy.limits]` read alike; each listener uses the phases it has. The
//! defaults are meant for the public internet. Each follows a peer's
//! anchor, named on the constructor.

use std::time::Duration;

use crate::gate::Limits;
use crate::io::TcpOptions;

/// Caps and deadlines of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenerLimits {
    /// Connections in total and per client address.
    pub caps: Limits,
    /// Most connections for one hostname, so that one site under attack
    /// cannot take every slot of a listener. Only the proxy routes by name;
    /// the others keep a quarter of `max_connections` here, unused.
    pub per_host: usize,
    /// The TLS handshake (API) or the whole ClientHello (proxy).
    pub handshake: Duration,
    /// A whole request head (HTTP), or the rest of a DNS message once its
    /// first octet has come.
    pub head: Duration,
    /// Between two reads of a request body.
    pub body: Duration,
    /// Waiting for the next request on an open connection.
    pub idle: Duration,
    /// A write that makes no progress (the peer does not read).
    pub write: Duration,
    /// A tunnel (TLS pass-through, upgraded HTTP) with no traffic either way.
    pub tunnel: Duration,
    /// Connecting to a backend.
    pub connect: Duration,
    /// Keepalive and `TCP_USER_TIMEOUT` on long-lived sockets.
    pub tcp: TcpOptions,
}

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

impl ListenerLimits {
    /// DNS over TCP. Knot: `tcp-max-clients`, `tcp-idle-timeout` (10 s),
    /// `tcp-io-timeout` (a message in transfer); NSD: `tcp-count`,
    /// `tcp-timeout`. A whole message must follow its first octet within
    /// 5 s; an answer the client does not read for 10 s closes the
    /// connection.
    pub const fn dns() -> ListenerLimits {
        ListenerLimits {
            caps: Limits { max_connections: 1000, per_address: 64 },
            per_host: 250,
            handshake: secs(5),
            head: secs(5),
            body: secs(5),
            idle: secs(10),
            write: secs(10),
            tunnel: secs(10),
            connect: secs(3),
            tcp: TcpOptions { keepalive: None, user_timeout: None },
        }
    }

    /// The HTTP API. nginx: `client_header_timeout` (60 s),
    /// `client_body_timeout` (60 s between reads), `keepalive_timeout`
    /// (75 s), `send_timeout` (60 s), shortened for an API whose clients
    /// send small requests at once.
    pub const fn api() -> ListenerLimits {
        ListenerLimits {
            caps: Limits { max_connections: 1024, per_address: 64 },
            per_host: 256,
            handshake: secs(10),
            head: secs(10),
            body: secs(30),
            idle: secs(30),
            write: secs(10),
            tunnel: secs(30),
            connect: secs(3),
            tcp: TcpOptions { keepalive: None, user_timeout: None },
        }
    }

    /// The proxy, both sides. HAProxy: `timeout http-request` (a whole
    /// head, 10 s), `timeout client`/`timeout server` (no progress),
    /// `timeout http-keep-alive`, `timeout tunnel` (1 h), `timeout
    /// connect`, `tcp-ut`; `maxconn`. The ClientHello must come whole
    /// within 5 s.
    ///
    /// The cap holds for each of the two proxy listeners (HTTP and TLS),
    /// and a proxied connection holds two descriptors: 2 × 2 × 15,000 plus
    /// the DNS and API caps stays below the `LimitNOFILE=65536` of
    /// docs/deployment.md, so a full proxy cannot starve DNS of
    /// descriptors. One hostname gets at most a quarter of the slots.
    pub const fn proxy() -> ListenerLimits {
        ListenerLimits {
            caps: Limits { max_connections: 15_000, per_address: 512 },
            per_host: 3750,
            handshake: secs(5),
            head: secs(10),
            body: secs(30),
            idle: secs(30),
            write: secs(10),
            tunnel: secs(3600),
            connect: secs(3),
            tcp: TcpOptions { keepalive: Some(secs(60)), user_timeout: Some(secs(30)) },
        }
    }
}
