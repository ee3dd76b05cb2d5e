//! Backend choice: the race over real loopback sockets (a backend whose
//! listen queue is full drops SYNs, as one that is down or blackholed
//! does), and its timing, rotation and memory in paused time.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use tokio::net::{TcpListener, TcpSocket, TcpStream};

use super::*;
use crate::policy::BackendPolicy;
use crate::tls::connect_any;

/// Long enough never to be reached while a test passes: a wrong choice
/// shows as a failed connect, not as a slow one.
const NEVER: Duration = Duration::from_secs(60);

fn mapped(a: Ipv4Addr) -> Ipv6Addr {
    a.to_ipv6_mapped()
}

fn at(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(i))
}

fn sock(a: Ipv6Addr, port: u16) -> SocketAddrV6 {
    SocketAddrV6::new(a, port, 0, 0)
}

/// The accept queue length of the IPv4 listener at `addr`, from
/// /proc/net/tcp (a listener's rx_queue).
fn accept_queue(addr: SocketAddr) -> Option<u32> {
    let SocketAddr::V4(v4) = addr else { return None };
    let want = format!("{:08X}:{:04X}", u32::from(*v4.ip()).swap_bytes(), v4.port());
    let text = std::fs::read_to_string("/proc/net/tcp").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(1) == Some(&want.as_str()) && f.get(3) == Some(&"0A"))
            .then(|| f.get(4)?.split_once(':').and_then(|(_, rx)| u32::from_str_radix(rx, 16).ok()))
            .flatten()
    })
}

/// A listener on `ip`:0 whose accept queue is full and never drained:
/// the kernel drops SYNs to it. Returns it, its filler, and its port.
async fn blackhole(ip: Ipv4Addr) -> (TcpListener, std::net::TcpStream, u16) {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(ip.into(), 0)).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    // A backlog of 0 queues one connection; the next SYN is dropped.
    let filler = std::net::TcpStream::connect(addr).unwrap();
    let until = std::time::Instant::now() + NEVER;
    while accept_queue(addr) != Some(1) {
        assert!(std::time::Instant::now() < until, "the filler never reached the accept queue");
        tokio::task::yield_now().await;
    }
    (listener, filler, addr.port())
}

/// A listener at `ip`:`port`, if that port is free there.
async fn listener_at(ip: Ipv4Addr, port: u16) -> Option<TcpListener> {
    TcpListener::bind(SocketAddr::new(ip.into(), port)).await.ok()
}

#[tokio::test]
async fn a_blackholed_backend_is_overtaken_after_the_attempt_delay() {
    let (dead, live) = (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3));
    let (_hole, _filler, port, good) = loop {
        let (hole, filler, port) = blackhole(dead).await;
        if let Some(good) = listener_at(live, port).await {
            break (hole, filler, port, good);
        }
    };
    let choice = Choice::default();
    let policy = BackendPolicy::new(None);
    // The first connection starts at the first address: the dead one.
    let backends = [mapped(dead), mapped(live)];
    let b = connect_any(&backends, port, NEVER, &policy, &choice).await.unwrap();
    assert_eq!(b.peer_addr().unwrap(), SocketAddr::V6(sock(mapped(live), port)));
    // Overtaken, the dead one is remembered and tried last from now on,
    // whatever the rotation says; the live one is not.
    assert!(choice.recently_failed(sock(mapped(dead), port)));
    assert!(!choice.recently_failed(sock(mapped(live), port)));
    for _ in 0..3 {
        assert_eq!(choice.order(&backends, port), [sock(mapped(live), port), sock(mapped(dead), port)]);
    }
    let again = connect_any(&backends, port, NEVER, &policy, &choice).await.unwrap();
    assert_eq!(again.peer_addr().unwrap(), b.peer_addr().unwrap());
    drop(good);
}

#[tokio::test]
async fn a_refused_backend_starts_the_next_at_once() {
    let (closed, live) = (Ipv4Addr::new(127, 0, 0, 4), Ipv4Addr::new(127, 0, 0, 5));
    let (good, port) = loop {
        let good = TcpListener::bind(SocketAddr::new(live.into(), 0)).await.unwrap();
        let port = good.local_addr().unwrap().port();
        // Nothing may listen at the closed address's port.
        if listener_at(closed, port).await.is_some() {
            break (good, port);
        }
    };
    // An hour between attempts: only the refusal can start the next one
    // before NEVER.
    let choice = Choice::new(Duration::from_secs(3600));
    let backends = [mapped(closed), mapped(live)];
    let b = connect_any(&backends, port, NEVER, &BackendPolicy::new(None), &choice).await.unwrap();
    assert_eq!(b.peer_addr().unwrap(), SocketAddr::V6(sock(mapped(live), port)));
    assert!(choice.recently_failed(sock(mapped(closed), port)));
    // With every address refusing, the last refusal is the error, at
    // once, and not a timeout.
    drop(good);
    let e = connect_any(&backends, port, NEVER, &BackendPolicy::new(None), &choice).await.unwrap_err();
    assert!(!e.timed_out && e.last.contains("refused"), "{e}");
}

#[tokio::test]
async fn one_backend_is_connected_without_a_race_and_remembered() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let choice = Choice::default();
    let policy = BackendPolicy::new(None);
    let one = [mapped(Ipv4Addr::LOCALHOST)];
    let s: TcpStream = connect_any(&one, port, NEVER, &policy, &choice).await.unwrap();
    assert_eq!(s.peer_addr().unwrap().port(), port);
    drop(listener);
    let e = connect_any(&one, port, NEVER, &policy, &choice).await.unwrap_err();
    assert!(e.last.contains(&format!("{}", sock(one[0], port))), "{e}");
    assert!(choice.recently_failed(sock(one[0], port)));
}

#[test]
fn the_rotation_spreads_over_the_addresses() {
    let choice = Choice::default();
    let backends = [at(1), at(2), at(3)];
    let mut first = HashMap::<Ipv6Addr, usize>::new();
    for _ in 0..30 {
        let order = choice.order(&backends, 80);
        // A rotation of the records: each once, in their cyclic order.
        let i = backends.iter().position(|b| b == order[0].ip()).unwrap();
        let want: Vec<_> = (0..3).map(|k| sock(backends[(i + k) % 3], 80)).collect();
        assert_eq!(order, want);
        *first.entry(*order[0].ip()).or_default() += 1;
    }
    assert_eq!(first.values().copied().collect::<Vec<_>>(), [10, 10, 10]);
    // Another set of addresses has a counter of its own (unless it hashes
    // alike): its first connection starts at its first address.
    let other = [at(9), at(8)];
    let slot = |b: &[Ipv6Addr]| {
        let bits = u128::from(b[0]);
        crate::proxyproto::mix(bits as u64 ^ (bits >> 64) as u64) as usize % ROTATIONS
    };
    assert_ne!(slot(&other), slot(&backends));
    assert_eq!(choice.order(&other, 80)[0], sock(at(9), 80));
    // One address: no rotation.
    assert_eq!(choice.order(&[at(1)], 443), [sock(at(1), 443)]);
    assert_eq!(choice.order(&[], 443), []);
}

#[tokio::test(start_paused = true)]
async fn a_failed_address_goes_last_until_forgotten() {
    let choice = Choice::default();
    let backends = [at(1), at(2), at(3)];
    choice.failed(sock(at(2), 80));
    for _ in 0..6 {
        let order = choice.order(&backends, 80);
        assert_eq!(order[2], sock(at(2), 80), "{order:?}");
        assert_ne!(order[0], order[1]);
    }
    // Only for this port.
    assert!(!choice.recently_failed(sock(at(2), 443)));
    tokio::time::advance(FAILURE_MEMORY).await;
    assert!(!choice.recently_failed(sock(at(2), 80)));
    let firsts: std::collections::HashSet<_> = (0..3).map(|_| choice.order(&backends, 80)[0]).collect();
    assert_eq!(firsts.len(), 3);
    // The old failure is cleared by the first look at the table after it.
    assert!(!choice.any_failed.load(Ordering::Relaxed));
    // A success forgets at once.
    choice.failed(sock(at(3), 80));
    assert!(choice.recently_failed(sock(at(3), 80)));
    choice.succeeded(sock(at(3), 80));
    assert!(!choice.recently_failed(sock(at(3), 80)));
    assert!(!choice.any_failed.load(Ordering::Relaxed));
    // Both failed: tried last both, still tried.
    choice.failed(sock(at(1), 80));
    choice.failed(sock(at(3), 80));
    assert_eq!(choice.order(&backends, 80)[0], sock(at(2), 80));
    assert_eq!(choice.order(&backends, 80).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_failure_table_is_bounded_and_drops_the_oldest() {
    let choice = Choice::default();
    let addr = |i: usize| sock(Ipv6Addr::from(0x2001_0db8_u128 << 96 | i as u128), 80);
    for i in 0..MAX_FAILURES + 100 {
        choice.failed(addr(i));
        tokio::time::advance(Duration::from_micros(1)).await;
    }
    assert_eq!(choice.table().at.len(), MAX_FAILURES);
    assert!(!choice.recently_failed(addr(0)) && !choice.recently_failed(addr(99)));
    assert!(choice.recently_failed(addr(100)) && choice.recently_failed(addr(MAX_FAILURES + 99)));
    // Expired entries go first, all at once.
    tokio::time::advance(FAILURE_MEMORY).await;
    choice.failed(addr(0));
    assert_eq!(choice.table().at.len(), 1);
}

/// A scripted attempt: `Some(d)` connects after `d`, `None` never
/// answers; `Err` after `d` for addresses in `refuse`. Records when each
/// started, and counts the attempts dropped unfinished.
struct Script {
    plan: HashMap<SocketAddrV6, (Option<Duration>, bool)>,
    started: Mutex<Vec<(SocketAddrV6, Duration)>>,
    dropped: Arc<AtomicUsize>,
    t0: Instant,
}

struct DropCount(Arc<AtomicUsize>, bool);

impl Drop for DropCount {
    fn drop(&mut self) {
        if !self.1 {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Script {
    fn new(plan: &[(SocketAddrV6, Option<u64>, bool)]) -> Script {
        Script {
            plan: plan.iter().map(|(a, d, refuse)| (*a, (d.map(Duration::from_millis), *refuse))).collect(),
            started: Mutex::new(Vec::new()),
            dropped: Arc::default(),
            t0: Instant::now(),
        }
    }

    fn attempt(&self, addr: SocketAddrV6) -> impl Future<Output = Result<SocketAddrV6, String>> + use<> {
        self.started.lock().unwrap().push((addr, self.t0.elapsed()));
        let (after, refuse) = self.plan[&addr];
        let guard = DropCount(self.dropped.clone(), false);
        async move {
            // The whole guard, not only its flag, lives in the future.
            let mut guard = guard;
            let Some(after) = after else { return std::future::pending().await };
            tokio::time::sleep(after).await;
            guard.1 = true;
            if refuse { Err(format!("{addr}: refused")) } else { Ok(addr) }
        }
    }

    fn starts(&self) -> Vec<(SocketAddrV6, u64)> {
        self.started.lock().unwrap().iter().map(|(a, d)| (*a, d.as_millis() as u64)).collect()
    }
}

#[tokio::test(start_paused = true)]
async fn the_next_address_starts_after_the_delay_and_the_first_to_connect_wins() {
    let (a, b, c) = (sock(at(1), 80), sock(at(2), 80), sock(at(3), 80));
    // a never answers, b takes 100 ms, c is never needed.
    let script = Script::new(&[(a, None, false), (b, Some(100), false), (c, Some(1), false)]);
    let choice = Choice::default();
    let won = choice.race(&[a, b, c], NEVER, |x| script.attempt(x)).await.unwrap();
    assert_eq!(won, b);
    assert_eq!(script.starts(), [(a, 0), (b, 250)]);
    assert_eq!(script.t0.elapsed(), Duration::from_millis(350));
    // a was dropped unfinished, and remembered as overtaken.
    assert_eq!(script.dropped.load(Ordering::Relaxed), 1);
    assert!(choice.recently_failed(a) && !choice.recently_failed(b));
    assert_eq!(choice.racing.load(Ordering::Relaxed), 0, "every place given back");
}

#[tokio::test(start_paused = true)]
async fn an_earlier_attempt_may_still_win_and_a_later_one_is_not_blamed() {
    let (a, b) = (sock(at(1), 80), sock(at(2), 80));
    let script = Script::new(&[(a, Some(300), false), (b, None, false)]);
    let choice = Choice::default();
    assert_eq!(choice.race(&[a, b], NEVER, |x| script.attempt(x)).await.unwrap(), a);
    assert_eq!(script.starts(), [(a, 0), (b, 250)]);
    assert_eq!(script.t0.elapsed(), Duration::from_millis(300));
    assert!(!choice.recently_failed(a) && !choice.recently_failed(b));
}

#[tokio::test(start_paused = true)]
async fn a_failure_starts_the_next_at_once() {
    let (a, b, c) = (sock(at(1), 80), sock(at(2), 80), sock(at(3), 80));
    let script = Script::new(&[(a, Some(10), true), (b, Some(20), true), (c, Some(5), false)]);
    let choice = Choice::default();
    assert_eq!(choice.race(&[a, b, c], NEVER, |x| script.attempt(x)).await.unwrap(), c);
    assert_eq!(script.starts(), [(a, 0), (b, 10), (c, 30)]);
    assert!(choice.recently_failed(a) && choice.recently_failed(b) && !choice.recently_failed(c));
    // All refusing: the last refusal, once every one has been tried.
    let script = Script::new(&[(a, Some(10), true), (b, Some(5), true)]);
    let e = choice.race(&[a, b], NEVER, |x| script.attempt(x)).await.unwrap_err();
    assert_eq!(e.last, format!("{b}: refused"));
    assert!(!e.timed_out);
    assert_eq!(script.t0.elapsed(), Duration::from_millis(15));
}

#[tokio::test(start_paused = true)]
async fn the_timeout_bounds_the_whole_race_and_its_attempts_are_capped() {
    let all: Vec<_> = (1..=6).map(|i| sock(at(i), 80)).collect();
    let plan: Vec<_> = all.iter().map(|a| (*a, None, false)).collect();
    let script = Script::new(&plan);
    let choice = Choice::default();
    let e = choice.race(&all, Duration::from_secs(2), |x| script.attempt(x)).await.unwrap_err();
    assert!(e.timed_out);
    assert_eq!(e.last, format!("{}: connect timeout", all[0]));
    assert_eq!(script.t0.elapsed(), Duration::from_secs(2));
    // MAX_IN_FLIGHT at once, one per delay; the rest never started.
    let want: Vec<_> = (0..MAX_IN_FLIGHT).map(|i| (all[i], 250 * i as u64)).collect();
    assert_eq!(script.starts(), want);
    assert_eq!(script.dropped.load(Ordering::Relaxed), MAX_IN_FLIGHT);
    for (i, a) in all.iter().enumerate() {
        assert_eq!(choice.recently_failed(*a), i < MAX_IN_FLIGHT, "{a}");
    }
    assert_eq!(choice.racing.load(Ordering::Relaxed), 0);
}

#[tokio::test(start_paused = true)]
async fn without_a_free_place_a_connection_waits_for_its_attempt() {
    let (a, b) = (sock(at(1), 80), sock(at(2), 80));
    let choice = Choice::default();
    choice.racing.store(MAX_RACING, Ordering::Relaxed);
    // a fails after a second: only then does b start, as in a sequential
    // failover.
    let script = Script::new(&[(a, Some(1000), true), (b, Some(10), false)]);
    assert_eq!(choice.race(&[a, b], NEVER, |x| script.attempt(x)).await.unwrap(), b);
    assert_eq!(script.starts(), [(a, 0), (b, 1000)]);
    assert_eq!(choice.racing.load(Ordering::Relaxed), MAX_RACING);
    // A place freed in the meantime is taken.
    choice.racing.store(MAX_RACING - 1, Ordering::Relaxed);
    let script = Script::new(&[(a, None, false), (b, Some(10), false)]);
    assert_eq!(choice.race(&[a, b], NEVER, |x| script.attempt(x)).await.unwrap(), b);
    assert_eq!(script.starts(), [(a, 0), (b, 250)]);
    assert_eq!(choice.racing.load(Ordering::Relaxed), MAX_RACING - 1);
}
