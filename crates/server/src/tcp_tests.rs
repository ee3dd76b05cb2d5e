//! DNS over TCP: each phase's deadline and the gate on in-memory streams
//! in paused time; UPDATE intake and the accept loop on loopback sockets.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use sixgate_dns::{Catalog, Zone, name, zonefile};
use sixgate_listen::{ListenerMetrics, Refused};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::net::TcpStream;

use super::*;
use crate::queue::{QUEUE, UpdateStats};

/// How long a test waits for something that must happen; only bounds a
/// failing test.
const WAIT: Duration = Duration::from_secs(20);

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\n\
ns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn catalog() -> SharedCatalog {
    let apex = name::from_text("example.test.", None).unwrap();
    let zone = Zone::build(&apex, zonefile::parse(ZONE, &apex).unwrap(), 7).unwrap();
    Arc::new(ArcSwap::from_pointee(Catalog::new().with_zone(Arc::new(zone))))
}

fn phases() -> ListenerLimits {
    ListenerLimits::dns()
}

fn gate(max_connections: usize, per_address: usize) -> Arc<Gate> {
    Gate::new(
        sixgate_listen::Limits { max_connections, per_address },
        Arc::new(ListenerMetrics::new("dns_tcp")),
    )
}

fn shared(phases: ListenerLimits, updates: Option<UpdateQueue>) -> Arc<Shared> {
    Arc::new(Shared {
        catalog: catalog(),
        limits: Limits::default(),
        phases,
        updates,
        transfers: None,
        counters: Arc::default(),
    })
}

const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 5353);

/// A connection served on an in-memory stream of `buffer` octets each
/// way; the client's end and the connection's end.
fn start(slot: Slot, shared: Arc<Shared>, buffer: usize) -> (DuplexStream, tokio::task::JoinHandle<End>) {
    let (client, mut server) = tokio::io::duplex(buffer);
    let task = tokio::spawn(async move { connection(&mut server, PEER, &slot, &shared).await });
    (client, task)
}

/// A query for www.example.test. A with ID `id`.
fn query(id: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    q.extend_from_slice(&name::from_text("www.example.test.", None).unwrap());
    q.extend_from_slice(&[0, 1, 0, 1]);
    q
}

async fn read_answer<R: AsyncRead + Unpin>(r: &mut R) -> Vec<u8> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await.unwrap();
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    r.read_exact(&mut answer).await.unwrap();
    answer
}

#[tokio::test(start_paused = true)]
async fn a_client_that_never_reads_is_cut_off_by_the_write_deadline() {
    let g = gate(10, 10);
    let (mut client, task) = start(g.admit(PEER.ip()).unwrap(), shared(phases(), None), 256);
    // Pipelined queries whose answers fill the stream; none is read.
    let burst: Vec<u8> = (0..200).flat_map(|id| framed(&query(id))).collect();
    let writer = tokio::spawn(async move {
        let _ = client.write_all(&burst).await;
        client
    });
    assert_eq!(task.await.unwrap(), End::TimedOut(Phase::Write));
    writer.abort();
}

#[tokio::test(start_paused = true)]
async fn a_slow_reader_that_keeps_reading_is_served() {
    let g = gate(10, 10);
    let (client, task) = start(g.admit(PEER.ip()).unwrap(), shared(phases(), None), 256);
    let (mut rd, mut wr) = tokio::io::split(client);
    let burst: Vec<u8> = (0..200).flat_map(|id| framed(&query(id))).collect();
    tokio::spawn(async move { wr.write_all(&burst).await.unwrap() });
    for id in 0..200u16 {
        // Each read well within the write deadline.
        tokio::time::sleep(phases().write / 4).await;
        assert_eq!(read_answer(&mut rd).await[..2], id.to_be_bytes());
    }
    // The client hangs up between messages.
    drop(rd);
    assert_eq!(task.await.unwrap(), End::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_idle_connection_is_closed_by_the_idle_deadline() {
    let g = gate(10, 10);
    let (mut client, task) = start(g.admit(PEER.ip()).unwrap(), shared(phases(), None), 4096);
    client.write_all(&framed(&query(1))).await.unwrap();
    read_answer(&mut client).await;
    let started = tokio::time::Instant::now();
    assert_eq!(task.await.unwrap(), End::TimedOut(Phase::Idle));
    assert!(started.elapsed() >= phases().idle);
}

/// A message sent one octet a second: the head deadline counts from its
/// first octet, so it ends long before the message would.
#[tokio::test(start_paused = true)]
async fn a_message_sent_an_octet_at_a_time_is_cut_off_by_the_head_deadline() {
    let g = gate(10, 10);
    let p = ListenerLimits { head: Duration::from_secs(5), idle: Duration::from_secs(60), ..phases() };
    let (client, task) = start(g.admit(PEER.ip()).unwrap(), shared(p, None), 4096);
    let (_rd, mut wr) = tokio::io::split(client);
    let message = framed(&query(1));
    let sent = Arc::new(AtomicUsize::new(0));
    let count = sent.clone();
    tokio::spawn(async move {
        for b in message {
            if wr.write_all(&[b]).await.is_err() {
                return;
            }
            count.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    assert_eq!(task.await.unwrap(), End::TimedOut(Phase::Head));
    let sent = sent.load(Ordering::Relaxed);
    assert!(sent <= 6, "{sent} octets were read before the deadline");
}

#[tokio::test(start_paused = true)]
async fn only_an_idle_connection_is_closed_to_make_room() {
    let g = gate(1, 1);
    let (mut busy, busy_task) = start(g.admit(PEER.ip()).unwrap(), shared(phases(), None), 4096);
    // A prefix and part of a message: busy, so a newcomer is refused.
    busy.write_all(&framed(&query(1))[..6]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(g.admit(PEER.ip()).unwrap_err(), Refused::Address);
    // Finished and answered: idle now, so it makes room.
    busy.write_all(&framed(&query(1))[6..]).await.unwrap();
    read_answer(&mut busy).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    let _newcomer = g.admit(PEER.ip()).unwrap();
    assert_eq!(busy_task.await.unwrap(), End::Evicted);
    assert_eq!(g.metrics().evicted.load(Ordering::Relaxed), 1);
}

/// Regression: answers were flushed only when the read buffer was empty,
/// so an answer waited behind the first octets of the next message (and
/// was lost when the rest never came).
#[tokio::test(start_paused = true)]
async fn an_answer_is_not_held_back_by_a_split_message_behind_it() {
    let g = gate(10, 10);
    let (mut client, _task) = start(g.admit(PEER.ip()).unwrap(), shared(phases(), None), 4096);
    let mut bytes = framed(&query(1));
    bytes.push(0);
    client.write_all(&bytes).await.unwrap();
    assert_eq!(read_answer(&mut client).await[..2], [0, 1]);
}

/// An UPDATE of example.test. without a TSIG record.
fn unsigned_update() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x28, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(b"\x07example\x04test\x00\x00\x06\x00\x01");
    m
}

fn framed(msg: &[u8]) -> Vec<u8> {
    [&(msg.len() as u16).to_be_bytes()[..], msg].concat()
}

/// A DNS TCP listener on 127.0.0.1 with `updates`, until the returned
/// sender says stop.
fn listen(
    gate: Arc<Gate>,
    updates: Option<UpdateQueue>,
) -> (SocketAddr, watch::Sender<bool>, tokio::task::JoinHandle<io::Result<()>>) {
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, shutdown) = watch::channel(false);
    let task = tokio::spawn(serve(
        listener,
        catalog(),
        Limits::default(),
        phases(),
        gate,
        updates,
        None,
        Arc::default(),
        shutdown,
    ));
    (addr, stop, task)
}

/// Regression: any message with opcode 5, even 3 octets long, was queued
/// for the writer (an allocation, a place in the queue, a task), to be
/// refused there.
#[tokio::test]
async fn short_and_unsigned_updates_are_answered_by_the_listener_and_never_queued() {
    let stats = Arc::new(UpdateStats::default());
    let (queue, mut jobs) = UpdateQueue::new(QUEUE, stats.clone());
    let (addr, _stop, _task) = listen(gate(10, 10), Some(queue));

    let mut unsigned = TcpStream::connect(addr).await.unwrap();
    unsigned.write_all(&framed(&unsigned_update())).await.unwrap();
    let mut len = [0u8; 2];
    tokio::select! {
        job = jobs.recv() => panic!("an unsigned update was queued: {job:?}"),
        r = tokio::time::timeout(WAIT, unsigned.read_exact(&mut len)) => r.unwrap().unwrap(),
    };
    let mut answer = vec![0u8; usize::from(u16::from_be_bytes(len))];
    unsigned.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer[3] & 0x0f, 5, "REFUSED");

    let mut short = TcpStream::connect(addr).await.unwrap();
    short.write_all(&framed(&[0x12, 0x34, 0x28])).await.unwrap();
    let mut rest = Vec::new();
    tokio::select! {
        job = jobs.recv() => panic!("a 3-octet update was queued: {job:?}"),
        r = tokio::time::timeout(WAIT, short.read_to_end(&mut rest)) => {
            assert!(r.is_ok(), "a 3-octet update kept its connection");
        }
    };
    assert!(rest.is_empty(), "a 3-octet message was answered");
    let get = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    assert_eq!([&stats.received, &stats.ignored, &stats.screened, &stats.queued].map(get), [2, 1, 1, 0]);
}

/// Regression: a failed accept (EMFILE: out of descriptors) was retried at
/// once, in a loop that spun at full CPU on a runtime worker the API and
/// the proxy share, for as long as the descriptors stayed short.
///
/// The test lowers its own process's descriptor limit (nextest runs each
/// test in a process of its own) and puts it back before it ends.
#[test]
fn an_accept_error_pauses_the_accept_loop_instead_of_spinning() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let listener = StdListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // A client whose connection waits in the backlog: every accept fails.
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let open = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    setrlimit(Resource::RLIMIT_NOFILE, open + 8, hard).unwrap();
    let mut hogs = Vec::new();
    while let Ok(f) = std::fs::File::open("/dev/null") {
        hogs.push(f);
    }
    let (stop, shutdown) = watch::channel(false);
    let g = gate(10, 10);
    let server = rt.spawn(serve(
        listener,
        catalog(),
        Limits::default(),
        phases(),
        g.clone(),
        None,
        None,
        Arc::default(),
        shutdown,
    ));
    // A second of failing accepts. Backing off from 5 ms, doubling, they
    // are a handful; spinning, they were hundreds of thousands.
    std::thread::sleep(Duration::from_secs(1));
    let failures = g.metrics().accept_errors.load(Ordering::Relaxed);
    drop(hogs);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    assert!((1..=20).contains(&failures), "{failures} failed accepts in one second");
    // With descriptors back, the waiting client is served.
    use std::io::{Read, Write};
    let mut q = vec![0x00, 0x07, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    q.extend_from_slice(b"\x07example\x04test\x00\x00\x01\x00\x01");
    client.write_all(&framed(&q)).unwrap();
    let mut len = [0u8; 2];
    client.read_exact(&mut len).unwrap();
    let _ = stop.send(true);
    rt.block_on(server).unwrap().unwrap();
}

/// A listener's shared parts serving a zone of `hosts` names to anyone.
fn transfer_shared(hosts: usize) -> Arc<Shared> {
    use crate::transfer::tests::Fake;
    use crate::transfer::{Access, TransferCaps, TransferStats};
    let apex = name::from_text("example.test.", None).unwrap();
    let mut text = String::from(ZONE);
    for i in 0..hosts {
        text.push_str(&format!("h{i} 300 TXT \"host number {i} of a zone larger than a socket buffer\"\n"));
    }
    let zone = Zone::build(&apex, zonefile::parse(&text, &apex).unwrap(), 7).unwrap();
    let catalog = Arc::new(ArcSwap::from_pointee(Catalog::new().with_zone(Arc::new(zone))));
    let source = Arc::new(Fake { access: Access::Unsigned, history: None, known: None });
    let transfers = Transfers::new(source, TransferCaps::default(), Arc::new(TransferStats::default()));
    Arc::new(Shared {
        catalog,
        limits: Limits::default(),
        phases: phases(),
        updates: None,
        transfers: Some(Arc::new(transfers)),
        counters: Arc::default(),
    })
}

/// A transfer larger than the socket's buffers keeps its connection busy
/// while it streams, so the gate never closes it for a newcomer, and the
/// connection takes further queries after it (RFC 5936 §4.1) until it is
/// idle again.
#[tokio::test(start_paused = true)]
async fn a_connection_streaming_a_transfer_is_busy_and_goes_on_after_it() {
    use crate::transfer::tests::{answers, axfr_request};
    let g = gate(1, 1);
    let (mut client, task) = start(g.admit(PEER.ip()).unwrap(), transfer_shared(3000), 4096);
    client.write_all(&framed(&axfr_request("example.test."))).await.unwrap();
    let first = read_answer(&mut client).await;
    assert_eq!(answers(&first).first().map(|a| a.0), Some(sixgate_dns::rtype::code::SOA));
    // The client pauses (within the write deadline) with most of the zone
    // unsent: the connection is busy, so a newcomer is refused.
    tokio::time::sleep(phases().write / 2).await;
    assert_eq!(g.admit(PEER.ip()).unwrap_err(), Refused::Address);
    let mut soas = 1;
    let mut messages = 1;
    while soas < 2 {
        let msg = read_answer(&mut client).await;
        soas += answers(&msg).iter().filter(|a| a.0 == sixgate_dns::rtype::code::SOA).count();
        messages += 1;
    }
    assert!(messages > 10, "{messages} messages: the zone is larger than the buffers");
    // Another query on the same connection is answered.
    client.write_all(&framed(&query(9))).await.unwrap();
    assert_eq!(read_answer(&mut client).await[..2], [0, 9]);
    tokio::time::sleep(Duration::from_millis(10)).await;
    // Idle again: it makes room.
    let _newcomer = g.admit(PEER.ip()).unwrap();
    assert_eq!(task.await.unwrap(), End::Evicted);
}

/// A secondary that asks for a zone and stops reading is cut off by the
/// write deadline like any client, and the transfer counts as failed and
/// frees its place under the caps.
#[tokio::test(start_paused = true)]
async fn a_transfer_the_client_stops_reading_is_cut_off_by_the_write_deadline() {
    use crate::transfer::tests::axfr_request;
    use crate::transfer::{XfrKind, XfrOutcome};
    let g = gate(10, 10);
    let shared = transfer_shared(3000);
    let (mut client, task) = start(g.admit(PEER.ip()).unwrap(), shared.clone(), 4096);
    client.write_all(&framed(&axfr_request("example.test."))).await.unwrap();
    assert_eq!(task.await.unwrap(), End::TimedOut(Phase::Write));
    let stats = shared.transfers.as_ref().unwrap().stats();
    assert_eq!(stats.requests(XfrKind::Axfr, XfrOutcome::Failed), 1);
    assert_eq!(stats.requests(XfrKind::Axfr, XfrOutcome::Done), 0);
    assert_eq!(stats.active.load(Ordering::Relaxed), 0);
    drop(client);
}

#[tokio::test(start_paused = true)]
async fn every_response_written_is_counted_by_rcode_and_type() {
    let g = gate(10, 10);
    let shared = shared(phases(), None);
    let (mut client, task) = start(g.admit(PEER.ip()).unwrap(), shared.clone(), 4096);
    let mut nx = query(2);
    // www -> wxw: a name the zone does not have.
    let at = nx.iter().position(|&b| b == b'w').unwrap() + 1;
    nx[at] = b'x';
    for q in [query(1), nx, query(3)] {
        client.write_all(&framed(&q)).await.unwrap();
    }
    for _ in 0..3 {
        read_answer(&mut client).await;
    }
    drop(client);
    assert_eq!(task.await.unwrap(), End::Closed);
    let t = shared.counters.totals();
    assert_eq!((t.answered, t.rcodes[0], t.rcodes[3], t.truncated), (3, 2, 1, 0));
    assert_eq!(t.types[crate::counters::type_slot(1)], 3);
}
