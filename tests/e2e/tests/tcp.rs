//! DNS over TCP (RFC 7766): pipelining, the deadline of each phase (idle,
//! a message's rest, a write the client does not read) and the connection
//! caps, against a private `sixgate serve`.
//!
//! Deadlines are generous and only bound how long a test waits; nothing
//! asserts how fast the server is.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sixgate_e2e::client::{read_framed_within, tcp_closed_within, tcp_connect, write_framed};
use sixgate_e2e::normalize::Response;
use sixgate_e2e::{Cli, QuerySpec, Sixgate, ZoneFile, wait_until};
use socket2::{Domain, Socket, Type};

const WAIT: Duration = Duration::from_secs(20);

/// A server on a fresh data directory (demo zone) with `config` as its file.
fn server_with_config(config: &str) -> Result<(Sixgate, tempfile::TempDir)> {
    let dir = tempfile::Builder::new().prefix("sixgate-e2e-tcp-").tempdir()?;
    let path = dir.path().join("sixgate.toml");
    fs::write(&path, config)?;
    let cli = Cli::new(dir.path().join("data"))?;
    let server = Sixgate::serve_with(cli, &["--config", &path.display().to_string()])?;
    Ok((server, dir))
}

fn query(id: u16) -> Result<Vec<u8>> {
    let mut q = QuerySpec::parse("www.demo.sixgate.test.", 28)?;
    q.id = id;
    q.encode()
}

#[test]
fn pipelined_queries_are_all_answered_on_one_connection() -> Result<()> {
    let (server, _dir) = server_with_config("")?;
    let mut stream = tcp_connect(server.tcp_addr(), WAIT)?;
    // All queries in one write, before reading anything (RFC 7766 §6.2.1.1).
    let mut burst = Vec::new();
    for id in 1..=50u16 {
        let q = query(id)?;
        burst.extend_from_slice(&(q.len() as u16).to_be_bytes());
        burst.extend_from_slice(&q);
    }
    stream.write_all(&burst)?;
    let mut ids = HashSet::new();
    for _ in 0..50 {
        let bytes = read_framed_within(&mut stream, WAIT)?.context("connection closed early")?;
        let r = Response::parse(&bytes)?;
        ensure!(r.qr() && r.aa() && r.rcode() == 0, "bad answer {r:?}");
        ensure!(r.answers_of(28).count() == 1, "no AAAA in {r:?}");
        ids.insert(r.id);
    }
    ensure!(ids == (1..=50).collect(), "some queries were not answered: {ids:?}");
    Ok(())
}

#[test]
fn idle_connections_are_closed_after_the_idle_timeout() -> Result<()> {
    let (server, _dir) = server_with_config("[dns]\ntcp_idle_timeout = 1\n")?;
    let mut stream = tcp_connect(server.tcp_addr(), WAIT)?;
    // Still usable right after connecting ...
    write_framed(&mut stream, &query(7)?)?;
    ensure!(read_framed_within(&mut stream, WAIT)?.is_some(), "no answer");
    // ... and closed by the server once idle.
    ensure!(tcp_closed_within(&mut stream, WAIT)?, "idle connection was not closed");
    Ok(())
}

/// The zone of the tests below that need large answers: `big.big.test.`
/// TXT is about 25 KB on the wire, so a few answers fill a socket buffer.
const BIG_ZONE: &str = "big.test.";

fn big_zone_text() -> String {
    let mut text = String::from(
        "$ORIGIN big.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\nns1 A 192.0.2.53\n",
    );
    for i in 0..100 {
        text.push_str(&format!("big TXT \"{i:03}-{}\"\n", "x".repeat(236)));
    }
    text
}

/// Like [`server_with_config`], with the zone `big.test.` imported.
fn big_server_with_config(config: &str) -> Result<(Sixgate, tempfile::TempDir)> {
    let dir = tempfile::Builder::new().prefix("sixgate-e2e-tcp-").tempdir()?;
    let path = dir.path().join("sixgate.toml");
    fs::write(&path, config)?;
    let zone = dir.path().join("big.test.zone");
    fs::write(&zone, big_zone_text())?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&ZoneFile::new(BIG_ZONE, &zone))?;
    let server = Sixgate::serve_with(cli, &["--config", &path.display().to_string()])?;
    Ok((server, dir))
}

/// A TCP connection from `source` (any 127.0.0.0/8 address, standing for
/// a client of its own), with read and write timeouts set; `recv_buffer`
/// shrinks its receive buffer before connecting (which also stops the
/// kernel from growing it), to stand for a client that reads slowly.
fn connect_from(source: Ipv4Addr, server: SocketAddr, recv_buffer: Option<usize>) -> Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(&SocketAddr::from((source, 0)).into())?;
    socket.connect_timeout(&server.into(), WAIT)?;
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(WAIT))?;
    stream.set_write_timeout(Some(WAIT))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// True when a connection from `source` was reset (or closed) by the
/// server at once, during the connect or right after it.
fn reset_at_once(source: Ipv4Addr, server: SocketAddr) -> Result<bool> {
    match connect_from(source, server, None) {
        Ok(mut s) => tcp_closed_within(&mut s, WAIT),
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset)
            }) =>
        {
            Ok(true)
        }
        Err(e) => Err(e),
    }
}

/// Has the server closed `stream` (its end or a reset is waiting)? Does
/// not wait.
fn closed_now(stream: &TcpStream) -> Result<bool> {
    let mut byte = [0u8; 1];
    stream.set_nonblocking(true)?;
    let read = (&*stream).read(&mut byte);
    stream.set_nonblocking(false)?;
    match read {
        Ok(0) => Ok(true),
        Ok(_) => bail!("an idle connection was sent data"),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(true),
        Err(e) => Err(e.into()),
    }
}

/// The `/metrics` sample `series` (name and labels exactly), read with the
/// first admin token; an error when absent.
fn metric(server: &Sixgate, series: &str) -> Result<u64> {
    server.metrics()?.require(series)
}

/// A message prefix and the start of a message, never finished: the
/// connection is busy reading it once the server has read what came,
/// which this waits for.
fn start_a_message(stream: &mut TcpStream) -> Result<()> {
    let q = query(99)?;
    let mut partial = (q.len() as u16).to_be_bytes().to_vec();
    partial.extend_from_slice(&q[..5]);
    stream.write_all(&partial)?;
    let (client, server) = (stream.local_addr()?, stream.peer_addr()?);
    wait_until("the server to read the message's start", WAIT, || {
        Ok(unread_by_server(server, client)?.then_some(()))
    })
}

/// `/proc/net/tcp`'s form of an IPv4 socket address.
fn proc_net_address(addr: SocketAddr) -> Result<String> {
    let SocketAddr::V4(a) = addr else { bail!("{addr} is not IPv4") };
    Ok(format!("{:08X}:{:04X}", u32::from_le_bytes(a.ip().octets()), a.port()))
}

/// True once the server's side of the connection from `client` has no
/// octets left unread in the kernel (or is gone): the server has read,
/// in the same step, what the client sent.
fn unread_by_server(server: SocketAddr, client: SocketAddr) -> Result<bool> {
    let (local, remote) = (proc_net_address(server)?, proc_net_address(client)?);
    let table = fs::read_to_string("/proc/net/tcp")?;
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if let [_, l, r, _, queues, ..] = fields.as_slice()
            && *l == local
            && *r == remote
        {
            let rx = queues.split_once(':').map_or("0", |(_, rx)| rx);
            return Ok(u64::from_str_radix(rx, 16)? == 0);
        }
    }
    Ok(true)
}

#[test]
fn a_client_that_never_reads_its_answers_is_cut_off_by_the_write_timeout() -> Result<()> {
    let (server, _dir) = big_server_with_config("[dns.limits]\nwrite_timeout = 1\nidle_timeout = 60\n")?;
    // A 4 KiB receive buffer: the server's writes stop once its own send
    // buffer is full too.
    let mut stream = connect_from(Ipv4Addr::LOCALHOST, server.tcp_addr(), Some(4096))?;
    let sent = 400u16;
    let mut burst = Vec::new();
    for id in 1..=sent {
        let q = QuerySpec::parse("big.big.test.", 16)?.with_id(id).encode()?;
        burst.extend_from_slice(&(q.len() as u16).to_be_bytes());
        burst.extend_from_slice(&q);
    }
    // 400 answers of 25 KB: far more than the kernel buffers hold.
    stream.write_all(&burst)?;
    wait_until("the stalled write to time out", WAIT, || {
        let stalled =
            metric(&server, "sixgate_listener_timeouts_total{listener=\"dns_tcp\",phase=\"write\"}")?;
        let open = metric(&server, "sixgate_listener_open_connections{listener=\"dns_tcp\"}")?;
        Ok((stalled == 1 && open == 0).then_some(()))
    })?;
    // What the server had written before it gave up is all there is.
    let mut answers = 0;
    while let Ok(Some(_)) = read_framed_within(&mut stream, Duration::from_secs(2)) {
        answers += 1;
    }
    ensure!(answers < sent, "all {sent} answers arrived: the server never gave up on the stalled writes");
    Ok(())
}

#[test]
fn one_client_address_cannot_take_every_slot() -> Result<()> {
    let (server, _dir) = server_with_config(
        "[dns.limits]\nmax_connections = 4\nper_address = 2\nidle_timeout = 60\nhead_timeout = 60\n",
    )?;
    let addr = server.tcp_addr();
    let flood = Ipv4Addr::LOCALHOST;
    // Four connections from one address, each busy with a message it
    // never finishes: only two are admitted ...
    let mut busy = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(flood, addr, None)?;
        start_a_message(&mut s)?;
        busy.push(s);
    }
    // ... and the other two are reset at once, not left waiting.
    for _ in 0..2 {
        ensure!(reset_at_once(flood, addr)?, "a connection over the address's cap was left open");
    }
    // Another client still gets in, and at once, not after a slot frees.
    let mut other = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr, None)?;
    write_framed(&mut other, &query(7)?)?;
    ensure!(read_framed_within(&mut other, WAIT)?.is_some(), "a client of another address was not served");
    ensure!(metric(&server, "sixgate_listener_refused_total{listener=\"dns_tcp\",cap=\"address\"}")? == 2);
    // The two admitted ones finish their messages and are answered.
    for s in &mut busy {
        s.write_all(&query(99)?[5..])?;
        ensure!(read_framed_within(s, WAIT)?.is_some(), "an admitted connection was not served");
    }
    Ok(())
}

#[test]
fn at_the_cap_an_idle_connection_is_closed_and_newcomers_never_wait_in_the_backlog() -> Result<()> {
    let (server, _dir) = server_with_config(
        "[dns.limits]\nmax_connections = 2\nper_address = 2\nidle_timeout = 60\nhead_timeout = 60\n",
    )?;
    let addr = server.tcp_addr();
    let mut first = tcp_connect(addr, WAIT)?;
    let mut second = tcp_connect(addr, WAIT)?;
    for (s, id) in [(&mut first, 1), (&mut second, 2)] {
        write_framed(s, &query(id)?)?;
        ensure!(read_framed_within(s, WAIT)?.is_some(), "connection {id} not served");
    }
    // Both idle, the listener full: an idle one makes room for a new
    // client (RFC 7766 §6.2.3: the oldest, which the gate's own tests
    // check in paused time; here a connection counts as idle only once its
    // answer is flushed, so which of the two went idle first is the
    // scheduler's call). The newcomers come from addresses of their own,
    // so that the listener's cap is the one reached.
    let mut third = connect_from(Ipv4Addr::new(127, 0, 0, 2), addr, None)?;
    write_framed(&mut third, &query(3)?)?;
    ensure!(read_framed_within(&mut third, WAIT)?.is_some(), "a new client at the cap was not served");
    let closed = wait_until("an idle connection to be closed", WAIT, || {
        let closed = [closed_now(&first)?, closed_now(&second)?];
        Ok((closed.iter().filter(|c| **c).count() == 1).then_some(closed))
    })?;
    let mut survivor = if closed[0] { second } else { first };
    ensure!(metric(&server, "sixgate_listener_evicted_total{listener=\"dns_tcp\"}")? == 1);
    // Both busy: nothing may be closed for a newcomer, which is accepted
    // and reset at once rather than left in the kernel's backlog.
    start_a_message(&mut survivor)?;
    start_a_message(&mut third)?;
    ensure!(reset_at_once(Ipv4Addr::new(127, 0, 0, 3), addr)?, "a newcomer at the cap was left waiting");
    ensure!(metric(&server, "sixgate_listener_refused_total{listener=\"dns_tcp\",cap=\"listener\"}")? == 1);
    // The busy ones were left alone: each finishes its message and is
    // answered.
    for s in [&mut survivor, &mut third] {
        let q = query(99)?;
        s.write_all(&q[5..])?;
        ensure!(read_framed_within(s, WAIT)?.is_some(), "a busy connection was closed for a newcomer");
    }
    Ok(())
}

#[test]
fn the_rest_of_a_message_must_come_within_the_head_timeout_not_the_idle_timeout() -> Result<()> {
    let (server, _dir) = server_with_config("[dns.limits]\nidle_timeout = 60\nhead_timeout = 1\n")?;
    let addr = server.tcp_addr();
    // An idle connection may stay idle ...
    let mut idle = tcp_connect(addr, WAIT)?;
    write_framed(&mut idle, &query(1)?)?;
    ensure!(read_framed_within(&mut idle, WAIT)?.is_some(), "no answer");
    // ... but a message announced and never sent is cut off ...
    let mut stuck = tcp_connect(addr, WAIT)?;
    start_a_message(&mut stuck)?;
    ensure!(tcp_closed_within(&mut stuck, WAIT)?, "a message that never came kept its connection");
    // ... and so is one that comes a byte at a time, long before its end.
    let mut slow = tcp_connect(addr, WAIT)?;
    let q = query(2)?;
    let framed = [&(q.len() as u16).to_be_bytes()[..], &q].concat();
    let mut sent = 0;
    for byte in &framed {
        if slow.write_all(&[*byte]).is_err() || tcp_closed_within(&mut slow, Duration::from_millis(400))? {
            break;
        }
        sent += 1;
    }
    ensure!(sent < framed.len(), "a message sent a byte every 400 ms was read whole");
    ensure!(metric(&server, "sixgate_listener_timeouts_total{listener=\"dns_tcp\",phase=\"head\"}")? == 2);
    ensure!(!tcp_closed_within(&mut idle, Duration::from_millis(200))?, "the idle connection was closed");
    Ok(())
}

#[test]
fn an_answer_is_not_held_back_by_a_split_message_behind_it() -> Result<()> {
    let (server, _dir) = server_with_config("")?;
    let mut stream = tcp_connect(server.tcp_addr(), WAIT)?;
    // One whole query and the first octet of the next one's prefix.
    let q = query(1)?;
    let mut bytes = (q.len() as u16).to_be_bytes().to_vec();
    bytes.extend_from_slice(&q);
    bytes.push(0);
    stream.write_all(&bytes)?;
    ensure!(read_framed_within(&mut stream, WAIT)?.is_some(), "the answer waited for the next message");
    Ok(())
}
