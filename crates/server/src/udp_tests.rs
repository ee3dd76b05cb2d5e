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

/// What `sub_batches` did, in order.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Answered(usize),
    Sent(Vec<usize>),
}

fn run(n: usize, reply: impl Fn(usize) -> bool) -> (Vec<Event>, usize) {
    let mut bufs = vec![0u8; BATCH];
    let log = std::cell::RefCell::new(Vec::new());
    let total = sub_batches(
        &mut bufs,
        n,
        |i, out| {
            *out = i as u8;
            log.borrow_mut().push(Event::Answered(i));
            reply(i)
        },
        |bufs, pending| {
            // Every reply handed over is already written.
            assert!(pending.iter().all(|&i| bufs[i] == i as u8));
            log.borrow_mut().push(Event::Sent(pending.to_vec()))
        },
    );
    (log.into_inner(), total)
}

/// Regression: a worker answered the whole batch of up to 32 before its
/// first `sendmmsg`, so the first query of a burst waited for the other
/// 31 answers.
#[test]
fn the_first_answers_of_a_full_batch_are_sent_before_its_last_query_is_answered() {
    let (log, total) = run(BATCH, |_| true);
    assert_eq!(total, BATCH);
    let first_send = log.iter().position(|e| matches!(e, Event::Sent(_))).unwrap();
    let last_answer = log.iter().position(|e| *e == Event::Answered(BATCH - 1)).unwrap();
    assert!(first_send < last_answer, "{log:?}");
    assert_eq!(log[first_send], Event::Sent((0..SUB_BATCH).collect()));
    let sends: Vec<&Event> = log.iter().filter(|e| matches!(e, Event::Sent(_))).collect();
    assert_eq!(sends.len(), BATCH / SUB_BATCH);
    // Each sub-batch goes out right after its last answer.
    for (k, e) in log.iter().enumerate() {
        if let Event::Sent(p) = e {
            assert_eq!(log[k - 1], Event::Answered(*p.last().unwrap()));
        }
    }
}

#[test]
fn a_sub_batch_counts_replies_and_the_rest_goes_out_at_the_end_of_the_batch() {
    // Every third datagram gets no answer: a sub-batch is SUB_BATCH
    // replies, not datagrams.
    let (log, total) = run(20, |i| i % 3 != 0);
    let sent: Vec<Vec<usize>> =
        log.iter().filter_map(|e| if let Event::Sent(p) = e { Some(p.clone()) } else { None }).collect();
    let replies: Vec<usize> = (0..20).filter(|i| i % 3 != 0).collect();
    assert_eq!(total, replies.len());
    assert_eq!(sent, vec![replies[..8].to_vec(), replies[8..].to_vec()]);
    assert_eq!(log.last(), Some(&Event::Sent(replies[8..].to_vec())));
    // A batch with no answer sends nothing.
    let (log, total) = run(3, |_| false);
    assert_eq!((total, log.len()), (0, 3));
}

/// Waits until `done` holds for the worker's published totals.
fn totals_when(stats: &UdpStats, done: impl Fn(&crate::counters::Totals) -> bool) -> crate::counters::Totals {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let t = stats.totals();
        if done(&t) || std::time::Instant::now() > deadline {
            return t;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_burst_of_32_queued_queries_is_one_batch_sent_in_sub_batches_and_counted() {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(sock.local_addr().unwrap()).unwrap();
    client.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Queued before the worker exists, so its first receive takes them all.
    for id in 0..BATCH as u16 {
        let q = if id == 5 { nxdomain(id) } else { query(id) };
        client.send(&q).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let stats = Arc::new(UdpStats::default());
    let handles =
        spawn(vec![sock], catalog(), Limits::default(), stop.clone(), stats.clone(), None, None, None)
            .unwrap();
    let _w = Worker { client: client.try_clone().unwrap(), stop, handles };
    let mut ids = Vec::new();
    let mut buf = [0u8; 512];
    for _ in 0..BATCH {
        let n = client.recv(&mut buf).expect("an answer");
        assert!(n >= 12);
        ids.push(u16::from_be_bytes([buf[0], buf[1]]));
    }
    assert_eq!(ids, (0..BATCH as u16).collect::<Vec<_>>(), "answers leave in the order of the queries");
    // Answers are published before they are sent; the send calls and the
    // waits, measured after each send, once the batch is done.
    let t = totals_when(&stats, |t| t.answered == BATCH as u64 && t.wait.iter().sum::<u64>() == BATCH as u64);
    assert_eq!((t.received, t.answered, t.dropped), (32, 32, 0));
    assert_eq!(t.batches, [0, 0, 0, 0, 0, 1, 0], "one receive took all 32");
    assert_eq!(t.sends, (BATCH / SUB_BATCH) as u64, "one send call per sub-batch");
    assert_eq!(t.wait.iter().sum::<u64>(), 32, "every reply's wait is in the histogram");
    assert_eq!((t.rcodes[0], t.rcodes[3]), (31, 1));
    assert_eq!(t.types[crate::counters::type_slot(1)], 32);
}

/// A query for a name the zone does not have.
fn nxdomain(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&name::from_text("nope.example.test.", None).unwrap());
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}
