//! The UDP exchanges with one secondary: a NOTIFY with its retries, and
//! one SOA query. The messages and the reading of the answers are
//! `sixgate_dns::notify`'s; here are the socket, the clock and TSIG.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sixgate_dns::notify::{
    ResponseError, decode_notify_response, decode_soa_response, notify_message, soa_query,
};
use sixgate_dns::tsig::{self, Key};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::Retry;
use super::status::{Key as PairKey, Status};

/// The largest answer read: a NOTIFY response or an SOA answer is far
/// smaller; a bigger datagram is cut and then fails to decode.
const MAX_ANSWER: usize = 4096;

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn socket_to(peer: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr =
        if peer.is_ipv4() { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(peer).await?;
    Ok(sock)
}

/// A message to send: its ID, its octets, and the MAC its answer must be
/// signed over when it is signed.
type Made = (u16, Vec<u8>, Option<Vec<u8>>);

/// A message with a fresh ID, signed when there is a key.
fn make(build: &dyn Fn(u16) -> Vec<u8>, key: Option<&Key>) -> Result<Made, String> {
    let id: u16 = rand::random();
    let mut msg = build(id);
    let mac = match key {
        Some(k) => Some(
            tsig::sign_request(&mut msg, k, unix_now(), tsig::DEFAULT_FUDGE).map_err(|e| e.to_string())?,
        ),
        None => None,
    };
    Ok((id, msg, mac))
}

/// What one datagram says about one of our messages.
enum Verdict<T> {
    /// Not an answer to it (another ID, a forged or stray datagram).
    Ignore,
    /// The answer.
    Answer(Result<T, String>),
}

/// Reads `answer` as the response `decode` looks for, to a message
/// signed with `mac` when there is a key.
fn judge<T>(
    answer: &[u8],
    key: Option<&Key>,
    mac: Option<&[u8]>,
    decode: impl Fn(&[u8]) -> Result<T, ResponseError>,
) -> Verdict<T> {
    let decoded = match decode(answer) {
        Err(ResponseError::Mismatch | ResponseError::Malformed(_)) => return Verdict::Ignore,
        d => d,
    };
    if let (Some(k), Some(mac)) = (key, mac) {
        match tsig::verify_response(answer, k, mac, unix_now()) {
            Ok(()) => {}
            // The secondary rejects our signature (RFC 8945 §5.3.2): an
            // answer, and a failure no retry mends.
            Err(tsig::ResponseError::Server(code)) => {
                return Verdict::Answer(Err(format!("the secondary rejects our tsig (error {code})")));
            }
            // Not signed by the secondary: anybody may have sent it.
            Err(_) => return Verdict::Ignore,
        }
    }
    Verdict::Answer(decoded.map_err(|e| e.to_string()))
}

/// Sends the NOTIFY for `serial` to the pair's secondary, trying again
/// with a doubling, jittered timeout until it is answered or
/// `retry.tries` have gone unanswered. `Ok` when acknowledged; `Err`
/// with the reason otherwise. Every try is counted in `status`.
pub(crate) async fn notify(
    status: &Status,
    pair: &PairKey,
    key: Option<&Key>,
    serial: u32,
    soa: Option<(u32, &[u8])>,
    retry: &Retry,
) -> Result<(), String> {
    let (peer, apex) = (pair.0, &pair.1[..]);
    let sock = socket_to(peer).await.map_err(|e| format!("cannot reach {peer}: {e}"))?;
    let build = |id: u16| notify_message(id, apex, soa);
    // Every try's ID and MAC: a late answer to an earlier try counts.
    let mut sent: Vec<(u16, Option<Vec<u8>>)> = Vec::new();
    let mut buf = vec![0u8; MAX_ANSWER];
    let mut timeout = retry.timeout;
    let mut last = String::from("no answer");
    for attempt in 0..retry.tries.max(1) {
        let (id, msg, mac) = make(&build, key)?;
        status.notify_sent(pair, serial, attempt == 0);
        sent.push((id, mac));
        if let Err(e) = sock.send(&msg).await {
            last = format!("send failed: {e}");
        }
        let deadline = Instant::now() + jitter(timeout);
        loop {
            let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
                Ok(Ok(n)) => n,
                // ICMP unreachable comes back as an error: the try is
                // lost, but the next waits its turn.
                Ok(Err(e)) => {
                    last = format!("receive failed: {e}");
                    tokio::time::sleep_until(deadline).await;
                    break;
                }
                Err(_) => break,
            };
            let answer = buf.get(..n).unwrap_or(&[]);
            for (id, mac) in &sent {
                let decode = |m: &[u8]| decode_notify_response(m, *id, apex);
                if let Verdict::Answer(a) = judge(answer, key, mac.as_deref(), decode) {
                    return a;
                }
            }
        }
        timeout = timeout.saturating_mul(2);
    }
    Err(format!("{last} after {} tries", retry.tries.max(1)))
}

/// One SOA query to the pair's secondary: the serial it serves, or why
/// none was read within `timeout`.
pub(crate) async fn soa(pair: &PairKey, key: Option<&Key>, timeout: Duration) -> Result<u32, String> {
    let (peer, apex) = (pair.0, &pair.1[..]);
    let sock = socket_to(peer).await.map_err(|e| format!("cannot reach {peer}: {e}"))?;
    let (id, msg, mac) = make(&|id| soa_query(id, apex), key)?;
    sock.send(&msg).await.map_err(|e| format!("send failed: {e}"))?;
    let mut buf = vec![0u8; MAX_ANSWER];
    let deadline = Instant::now() + timeout;
    loop {
        let n = match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("receive failed: {e}")),
            Err(_) => return Err("no answer".into()),
        };
        let answer = buf.get(..n).unwrap_or(&[]);
        if let Verdict::Answer(a) = judge(answer, key, mac.as_deref(), |m| decode_soa_response(m, id, apex)) {
            return a;
        }
    }
}

/// `d` give or take a quarter, so that NOTIFYs that failed together are
/// not retried in lockstep.
fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::random_range(0.75..1.25);
    d.mul_f64(f)
}
