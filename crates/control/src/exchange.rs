//! One DNS question over UDP to another server, waiting for its answer.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::net::UdpSocket;

/// Why no answer was taken.
#[derive(Debug)]
pub enum NoAnswer {
    /// The socket could not be set up or the query not sent.
    Send(std::io::Error),
    /// Receiving failed (e.g. ICMP port unreachable: connection refused).
    Receive(std::io::Error),
    /// Nothing acceptable arrived in time.
    Timeout,
}

/// Sends `query(id)` (a fresh random id) to `server` from an ephemeral
/// port and returns what `accept` makes of the first datagram it takes:
/// `accept` returns `None` for datagrams that do not answer the query
/// (stray or spoofed), and the wait goes on until `timeout`.
pub async fn udp_ask<T>(
    server: SocketAddr,
    timeout: Duration,
    query: impl FnOnce(u16) -> Vec<u8>,
    mut accept: impl FnMut(&[u8], u16) -> Option<T>,
) -> Result<T, NoAnswer> {
    let local: SocketAddr =
        if server.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(local).await.map_err(NoAnswer::Send)?;
    sock.connect(server).await.map_err(NoAnswer::Send)?;
    let id: u16 = rand::random();
    sock.send(&query(id)).await.map_err(NoAnswer::Send)?;
    let mut buf = vec![0u8; 4096];
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(NoAnswer::Receive(e)),
            Err(_) => return Err(NoAnswer::Timeout),
        };
        if let Some(t) = accept(buf.get(..n).unwrap_or(&[]), id) {
            return Ok(t);
        }
    }
}
