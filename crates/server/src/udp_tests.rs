//! The UDP workers' intake of RFC 2136 UPDATEs: what reaches the queue.

use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use arc_swap::ArcSwap;
use sixgate_dns::{Catalog, Limits, Zone, name, zonefile};

use super::*;

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\n\
ns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn catalog() -> SharedCatalog {
    let apex = name::from_text("example.test.", None).unwrap();
    let zone = Zone::build(&apex, zonefile::parse(ZONE, &apex).unwrap(), 7).unwrap();
    Arc::new(ArcSwap::from_pointee(Catalog::new().with_zone(Arc::new(zone))))
}

/// An UPDATE header for example.test. with its zone section and nothing
/// else: well formed, and unsigned.
fn unsigned_update(id: u16) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    m.extend_from_slice(&name::from_text("example.test.", None).unwrap());
    m.extend_from_slice(&[0, 6, 0, 1]);
    m
}

fn query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&name::from_text("www.example.test.", None).unwrap());
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

struct Worker {
    client: UdpSocket,
    stop: Arc<AtomicBool>,
    handles: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn worker(queue: UpdateQueue) -> Worker {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = sock.local_addr().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(UdpStats::default());
    let handles =
        spawn(vec![sock], catalog(), Limits::default(), stop.clone(), stats, Some(queue), None, None)
            .unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(addr).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    Worker { client, stop, handles }
}

/// The next datagram whose ID is `id`.
fn answer(client: &UdpSocket, id: u16) -> Vec<u8> {
    let mut buf = [0u8; 4096];
    loop {
        let n = client.recv(&mut buf).expect("no answer");
        if buf.get(..2) == Some(&id.to_be_bytes()[..]) {
            return buf[..n].to_vec();
        }
    }
}

/// Regression: every datagram with opcode 5, even 3 octets long, was
/// copied and queued for the writer (and cost it a task), to be refused
/// there; a flood of them took the queue's room from real updates.
#[test]
fn updates_that_cannot_be_authentic_are_answered_by_the_worker_and_never_queued() {
    let stats = Arc::new(crate::queue::UpdateStats::default());
    let (tx, mut rx) = UpdateQueue::new(16, stats.clone());
    let w = worker(tx);
    // Three octets with opcode UPDATE: not even a header.
    w.client.send(&[0x12, 0x34, 0x28]).unwrap();
    // Well formed but unsigned: REFUSED, from the worker itself.
    w.client.send(&unsigned_update(0x4242)).unwrap();
    let refused = answer(&w.client, 0x4242);
    assert_eq!(refused[3] & 0x0f, 5, "unsigned UPDATE: {refused:?}");
    // A query after them: once it is answered, the worker has handled the
    // datagrams before it.
    w.client.send(&query(7)).unwrap();
    answer(&w.client, 7);
    assert!(rx.try_recv().is_err(), "an UPDATE that cannot be authentic was queued");
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    assert_eq!([&stats.received, &stats.ignored, &stats.screened, &stats.queued].map(get), [2, 1, 1, 0]);
    // A signed one is queued, whatever its signature is worth: the writer
    // checks that.
    let mut signed = unsigned_update(0x4343);
    let key = sixgate_dns::tsig::Key::new(
        b"\x02k1\x00",
        sixgate_dns::tsig::Algorithm::HmacSha256,
        b"0123456789abcdef".to_vec(),
    );
    sixgate_dns::tsig::sign_request(&mut signed, &key, 1_700_000_000, 300).unwrap();
    w.client.send(&signed).unwrap();
    let job = rx.blocking_recv().unwrap();
    assert_eq!(job.msg, signed);
}

/// Two workers on one port share one limiter: a client gets the rate in
/// full answers and, with slip 1, a truncated reply to every other query,
/// whichever worker reads it.
#[test]
fn workers_limit_answers_with_one_shared_rrl_table() {
    use crate::rrl::{Rrl, RrlConfig};
    let rate = 5;
    let config =
        RrlConfig { rate, slip: 1, ipv4_prefix: 24, ipv6_prefix: 56, exempt: Vec::new(), table_size: 1024 };
    let rrl = Rrl::with_seed(config, 11).unwrap();
    let bound = crate::bind::bind("127.0.0.1:0".parse().unwrap(), 2).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(UdpStats::default());
    let handles =
        spawn(bound.udp, catalog(), Limits::default(), stop.clone(), stats, None, None, Some(rrl.clone()))
            .unwrap();
    let w = Worker { client: UdpSocket::bind("127.0.0.1:0").unwrap(), stop, handles };
    w.client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = std::time::Instant::now();
    let (mut full, mut truncated) = (0u32, 0u32);
    // Each from a new port, so that SO_REUSEPORT spreads them over both
    // workers.
    for id in 0..60u16 {
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.connect(bound.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        c.send(&query(id)).unwrap();
        let a = answer(&c, id);
        if a[2] & 0x02 != 0 {
            assert_eq!(&a[6..10], &[0, 0, 0, 0], "a slipped reply has no records");
            truncated += 1;
        } else {
            full += 1;
        }
    }
    // A burst of `rate`, and the refill of the time the loop took.
    let refill = (started.elapsed().as_secs_f64() * f64::from(rate)).ceil() as u32;
    assert!((rate..=rate + refill).contains(&full), "{full} full answers in {:?}", started.elapsed());
    assert_eq!(full + truncated, 60);
    let counts = rrl.counts();
    assert_eq!(counts.slipped.iter().sum::<u64>(), u64::from(truncated));
    assert_eq!(counts.dropped.iter().sum::<u64>(), 0);
}
