//! Binding DNS listeners: per address, `workers` UDP sockets sharing the
//! port through `SO_REUSEPORT`, and one TCP listener on the same port.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};

use socket2::{Domain, Protocol, Socket, Type};

/// Attempts at finding a port free for both UDP and TCP when port 0 is asked.
const PORT_ATTEMPTS: usize = 20;
/// Receive buffer asked for each UDP socket: bursts of queries queue here.
const UDP_RCVBUF: usize = 4 << 20;

/// The sockets for one configured address.
pub struct Bound {
    /// The address actually bound (port 0 resolved).
    pub addr: SocketAddr,
    /// One UDP socket per worker.
    pub udp: Vec<UdpSocket>,
    /// The TCP listener.
    pub tcp: TcpListener,
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_port(true)?;
    let _ = s.set_recv_buffer_size(UDP_RCVBUF);
    s.bind(&addr.into())?;
    Ok(s.into())
}

fn tcp_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.set_reuse_address(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    Ok(s.into())
}

fn try_bind(addr: SocketAddr, workers: usize) -> io::Result<Bound> {
    let first = udp_socket(addr)?;
    let addr = first.local_addr()?;
    let mut udp = vec![first];
    for _ in 1..workers.max(1) {
        udp.push(udp_socket(addr)?);
    }
    let tcp = tcp_listener(addr)?;
    Ok(Bound { addr, udp, tcp })
}

/// Binds `addr` for UDP and TCP. With port 0, retries until a port is
/// free for both.
pub fn bind(addr: SocketAddr, workers: usize) -> io::Result<Bound> {
    if addr.port() != 0 {
        return try_bind(addr, workers);
    }
    let mut last = None;
    for _ in 0..PORT_ATTEMPTS {
        match try_bind(addr, workers) {
            Ok(b) => return Ok(b),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no free port")))
}
