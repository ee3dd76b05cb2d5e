//! DNS over TCP (RFC 7766): pipelining, the idle timeout and the
//! connection limit, against a private `sixgate serve`.
//!
//! Deadlines are generous and only bound how long a test waits; nothing
//! asserts how fast the server is.

use std::collections::HashSet;
use std::fs;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use sixgate_e2e::client::{read_framed_within, tcp_closed_within, tcp_connect, write_framed};
use sixgate_e2e::normalize::Response;
use sixgate_e2e::{Cli, QuerySpec, Sixgate};

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

#[test]
fn connections_over_the_limit_wait_until_a_slot_frees() -> Result<()> {
    let (server, _dir) = server_with_config("[dns]\ntcp_max_connections = 2\ntcp_idle_timeout = 60\n")?;
    let addr = server.tcp_addr();
    let mut first = tcp_connect(addr, WAIT)?;
    let mut second = tcp_connect(addr, WAIT)?;
    for (s, id) in [(&mut first, 1), (&mut second, 2)] {
        write_framed(s, &query(id)?)?;
        ensure!(read_framed_within(s, WAIT)?.is_some(), "connection {id} not served");
    }
    // The third connection is not served while both slots are taken.
    let mut third = tcp_connect(addr, WAIT)?;
    write_framed(&mut third, &query(3)?)?;
    ensure!(
        read_framed_within(&mut third, Duration::from_millis(500))?.is_none(),
        "a connection over the limit was served"
    );
    // Freeing a slot lets it through.
    drop(first);
    ensure!(read_framed_within(&mut third, WAIT)?.is_some(), "waiting connection never served");
    Ok(())
}
