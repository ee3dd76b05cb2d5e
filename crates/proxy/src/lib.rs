//! sixgate's IPv4-to-IPv6 reverse proxy.
//!
//! # Architecture
//!
//! The protocol pieces are sans-IO, pure functions over bytes, each with a
//! fuzz target: reading the SNI from a TLS ClientHello without consuming
//! it ([`sni`]), reading and rewriting HTTP/1.1 request heads ([`http`]),
//! encoding PROXY protocol v1 and v2 headers ([`proxyproto`]), and the
//! rule that decides which backend addresses may ever be connected to
//! ([`policy`]). The async shells that accept, route and splice
//! connections build on them: [`tls`] and [`plain`], admitted by a
//! [`Front`] (connection caps in total, per client address and per
//! hostname) and bounded in every phase by its deadlines, with tunnels
//! in `tunnel` and lazily moved timers in `deadline`. Tunnels and large
//! Content-Length bodies move through `splice` (socket to pipe to
//! socket, no copy), falling back to copying where it is not available.
//! Which backend address a connection goes to is [`backends`]'s: rotated,
//! raced as RFC 8305 §5 does, recently failed ones last.
//! Their access log lines go through [`accesslog`] to a writer thread of
//! their own.
#![warn(missing_docs)]
#![warn(clippy::unwrap_used, clippy::indexing_slicing)]
// Tests may index and unwrap: a panic there is a failed test.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::indexing_slicing))]

pub mod accesslog;
pub mod backends;
mod deadline;
mod front;
pub mod http;
pub mod own;
pub mod plain;
pub mod policy;
pub mod proxyproto;
pub mod route;
pub mod sni;
mod splice;
pub mod threads;
pub mod tls;
mod tunnel;

pub use front::{DRAIN, Front};

/// What the shells' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use std::net::SocketAddr;

    use tokio::net::{TcpListener, TcpStream};

    /// A connection to a listener of the test's and that listener's end
    /// of it, as the proxy's accept loop gets it: (client, server, peer).
    pub(crate) async fn accepted() -> (TcpStream, TcpStream, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, peer) = l.accept().await.unwrap();
        (client, server, peer)
    }
}
