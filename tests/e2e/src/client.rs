//! A tiny blocking DNS client: raw bytes in, raw bytes out.
//!
//! The client does not interpret answers beyond matching the message ID, so a
//! test sees exactly what the server sent. UDP exchanges retry on timeout;
//! "no answer at all" is a legitimate outcome (`Ok(None)`), because servers
//! must stay silent on some inputs. TCP uses the RFC 1035 §4.2.2 two-byte
//! length prefix.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};

use crate::compare::summary;
use crate::normalize::{Response, Rr};

/// Largest UDP payload we accept.
const MAX_UDP: usize = 65_535;

/// A UDP socket bound to 127.0.0.1 and connected to one server, reused for
/// many exchanges.
#[derive(Debug)]
pub struct UdpClient {
    socket: UdpSocket,
    server: SocketAddr,
}

impl UdpClient {
    /// A client for `server` on a fresh ephemeral loopback port.
    pub fn new(server: SocketAddr) -> Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").context("binding a UDP client socket")?;
        socket.connect(server).with_context(|| format!("connecting UDP socket to {server}"))?;
        Ok(Self { socket, server })
    }

    /// The server this client talks to.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    /// Sends `query` without waiting for anything.
    pub fn send(&self, query: &[u8]) -> Result<()> {
        self.socket
            .send(query)
            .with_context(|| format!("sending {} bytes to {}", query.len(), self.server))?;
        Ok(())
    }

    /// The next datagram within `timeout`, whatever it is. A datagram that is
    /// already queued is returned even when `timeout` is zero.
    pub fn receive_any(&self, timeout: Duration) -> Result<Option<Vec<u8>>> {
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; MAX_UDP];
        loop {
            // SO_RCVTIMEO cannot be zero (that means "block forever").
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv(&mut buffer) {
                Ok(len) => return Ok(Some(buffer.get(..len).unwrap_or_default().to_vec())),
                Err(error) if is_timeout(&error) || error.kind() == ErrorKind::Interrupted => {
                    if Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
                // A refused port shows up here as ECONNREFUSED on a connected
                // socket: nobody listens, which is an error, not silence.
                Err(error) => {
                    return Err(error).with_context(|| format!("receiving from {}", self.server));
                }
            }
        }
    }

    /// Reads and drops every datagram already queued, without waiting;
    /// returns how many there were.
    pub fn drain(&self) -> Result<usize> {
        self.socket.set_nonblocking(true)?;
        let mut buffer = [0u8; 512];
        let mut count = 0;
        let result = loop {
            match self.socket.recv(&mut buffer) {
                Ok(_) => count += 1,
                Err(error) if is_timeout(&error) => break Ok(count),
                Err(error) if error.kind() == ErrorKind::ConnectionRefused => break Ok(count),
                Err(error) => break Err(error),
            }
        };
        self.socket.set_nonblocking(false)?;
        Ok(result?)
    }

    /// Sends `query` and waits up to `timeout` for a response with the same ID
    /// (any response if `query` is shorter than two bytes), resending up to
    /// `tries` times in all. Stale datagrams with another ID are skipped.
    pub fn exchange(&self, query: &[u8], timeout: Duration, tries: u32) -> Result<Option<Vec<u8>>> {
        let id = query.get(..2);
        for _ in 0..tries.max(1) {
            self.send(query)?;
            let deadline = Instant::now() + timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                let Some(response) = self.receive_any(left)? else {
                    break;
                };
                if id.is_none() || response.get(..2) == id {
                    return Ok(Some(response));
                }
            }
        }
        Ok(None)
    }
}

/// One UDP exchange on a fresh socket; see [`UdpClient::exchange`].
pub fn udp_exchange(
    server: SocketAddr,
    query: &[u8],
    timeout: Duration,
    tries: u32,
) -> Result<Option<Vec<u8>>> {
    UdpClient::new(server)?.exchange(query, timeout, tries)
}

/// One TCP exchange: connect, send `query` with its length prefix, read one
/// length-prefixed response. `Ok(None)` if the server closed the connection
/// without answering.
pub fn tcp_exchange(server: SocketAddr, query: &[u8], timeout: Duration) -> Result<Option<Vec<u8>>> {
    let mut stream = tcp_connect(server, timeout)?;
    write_framed(&mut stream, query)?;
    read_framed(&mut stream)
}

/// A TCP connection to `server` with read and write timeouts set.
pub fn tcp_connect(server: SocketAddr, timeout: Duration) -> Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&server, timeout)
        .with_context(|| format!("connecting TCP to {server}"))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Writes one message with its two-byte length prefix.
pub fn write_framed(stream: &mut TcpStream, message: &[u8]) -> Result<()> {
    let len = u16::try_from(message.len()).context("message longer than 65535 bytes")?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).context("writing to TCP")?;
    Ok(())
}

/// Reads one length-prefixed message; `Ok(None)` on a clean close before the
/// prefix.
pub fn read_framed(stream: &mut TcpStream) -> Result<Option<Vec<u8>>> {
    read_prefixed(stream, false)
}

/// Like [`read_framed`], but waits at most `timeout` and returns `Ok(None)`
/// when nothing arrived in time, or the server closed or reset.
pub fn read_framed_within(stream: &mut TcpStream, timeout: Duration) -> Result<Option<Vec<u8>>> {
    stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
    read_prefixed(stream, true)
}

fn read_prefixed(stream: &mut TcpStream, timeout_is_none: bool) -> Result<Option<Vec<u8>>> {
    let mut prefix = [0u8; 2];
    match stream.read_exact(&mut prefix) {
        Ok(()) => {}
        Err(error) if timeout_is_none && is_timeout(&error) => return Ok(None),
        Err(error) if error.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(error) if error.kind() == ErrorKind::ConnectionReset => return Ok(None),
        Err(error) => return Err(error).context("reading a TCP length prefix"),
    }
    let mut message = vec![0u8; usize::from(u16::from_be_bytes(prefix))];
    stream.read_exact(&mut message).context("reading a TCP message body")?;
    Ok(Some(message))
}

/// Whether the server closed (or reset) `stream` within `timeout`, having
/// sent nothing more. Used to check that bad TCP input ends the connection.
pub fn tcp_closed_within(stream: &mut TcpStream, timeout: Duration) -> Result<bool> {
    stream.set_read_timeout(Some(timeout))?;
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(0) => Ok(true),
        Ok(_) => bail!("server sent data where it should have closed the connection"),
        Err(error) if is_timeout(&error) => Ok(false),
        Err(error) if error.kind() == ErrorKind::ConnectionReset => Ok(true),
        Err(error) => Err(error).context("reading from TCP"),
    }
}

/// All records of `zone` by AXFR over TCP (RFC 5936), the closing SOA
/// excluded. Used to build query corpora from what a reference server really
/// loaded, escapes and all.
pub fn axfr(server: SocketAddr, zone: &Name, timeout: Duration) -> Result<Vec<Rr>> {
    let mut message = Message::query();
    message.metadata.id = 0x5a5a;
    message.add_query(Query::query(zone.clone(), RecordType::AXFR));
    let mut stream = tcp_connect(server, timeout)?;
    write_framed(&mut stream, &message.to_vec()?)?;
    let mut records = Vec::new();
    let mut soa_seen = 0;
    while soa_seen < 2 {
        let Some(bytes) = read_framed(&mut stream)? else {
            bail!("AXFR of {zone} from {server} ended before the closing SOA");
        };
        let response = Response::parse(&bytes).context("parsing an AXFR message")?;
        if response.rcode() != 0 {
            bail!("AXFR of {zone} from {server}: {}", summary(&bytes));
        }
        for record in response.answer {
            if record.rtype == 6 {
                soa_seen += 1;
                if soa_seen == 2 {
                    break;
                }
            }
            records.push(record);
        }
    }
    Ok(records)
}

fn is_timeout(error: &std::io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}
