//! The NOTIFY task against local UDP sockets that play secondaries: they
//! count the NOTIFYs, answer them or not, and answer SOA queries with the
//! serial a test sets. Time is tokio's paused clock: retries and back-off
//! are counted and measured in virtual time, never on the wall clock.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use sixgate_dns::message::flags;
use sixgate_dns::tsig::{self, Algorithm, Key};
use sixgate_dns::{Catalog, Zone, name, zonefile};
use sixgate_server::SharedCatalog;
use sixgate_store::{Actor, Secondary, Store, TransferKey};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tokio::time::Instant;

use super::*;
use crate::secondaries::Secondaries;

fn n(s: &str) -> Box<[u8]> {
    name::from_text(s, None).unwrap()
}

fn zone(apex: &str, serial: u32) -> Arc<Zone> {
    let text = format!("@ 300 SOA ns hm {serial} 2 3 4 5\n@ 300 NS ns\nns 300 AAAA 2001:db8::53\n");
    let records = zonefile::parse(&text, &n(apex)).unwrap();
    Arc::new(Zone::build(&n(apex), records, 1).unwrap())
}

/// A secondary played by a UDP socket.
#[derive(Default)]
struct Peer {
    /// Whether NOTIFYs are answered.
    answers: AtomicBool,
    /// Answer NOTIFYs with REFUSED instead.
    refuses: AtomicBool,
    /// The serial SOA queries are answered with (0: not answered).
    serial: AtomicU32,
    /// A NOTIFY sets the serial it announces, as a secondary that
    /// transfers at once would.
    transfers: AtomicBool,
    /// Each NOTIFY received: zone (lowercased) and announced serial.
    notifies: Mutex<Vec<(Box<[u8]>, u32)>>,
    soa_queries: AtomicUsize,
    /// The key NOTIFYs must be signed with; answers are signed with it.
    key: Mutex<Option<Key>>,
    /// NOTIFYs whose signature did not verify.
    bad_signatures: AtomicUsize,
}

impl Peer {
    fn count(&self) -> usize {
        self.notifies.lock().unwrap().len()
    }

    fn serials(&self, apex: &str) -> Vec<u32> {
        let apex = n(apex);
        self.notifies.lock().unwrap().iter().filter(|(z, _)| *z == apex).map(|(_, s)| *s).collect()
    }
}

/// The question name and the position after the question.
fn question(msg: &[u8]) -> (Box<[u8]>, usize) {
    let mut q = sixgate_dns::name::NameBuf::new();
    let end = q.decode(msg, 12).unwrap();
    q.make_lowercase();
    (q.as_slice().into(), end + 4)
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

async fn peer() -> (SocketAddr, Arc<Peer>) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let p = Arc::new(Peer::default());
    p.answers.store(true, Ordering::Relaxed);
    let state = p.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let Ok((len, from)) = sock.recv_from(&mut buf).await else { return };
            let msg = buf[..len].to_vec();
            let (apex, qend) = question(&msg);
            let opcode = (msg[2] >> 3) & 0x0f;
            let key = state.key.lock().unwrap().clone();
            let mut mac = None;
            if let Some(k) = &key {
                let verified = tsig::find(&msg)
                    .ok()
                    .flatten()
                    .and_then(|t| tsig::verify_request(&msg, &t, |_| Some(k.clone()), now_unix()).ok());
                match verified {
                    Some(v) => mac = Some(v.mac),
                    None => {
                        state.bad_signatures.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
            }
            let mut answer = msg[..qend].to_vec();
            answer[6..12].fill(0);
            if opcode == 4 {
                // The serial of the SOA in the answer section: the 20
                // octets before the end of that record, which ends the
                // message unless TSIG follows (that one ends with its
                // own fields, so look for the SOA after the question).
                let soa_end = qend + 2 + 10 + rdlen_at(&msg, qend + 2 + 8);
                let serial = u32::from_be_bytes(msg[soa_end - 20..soa_end - 16].try_into().unwrap());
                state.notifies.lock().unwrap().push((apex.clone(), serial));
                if state.transfers.load(Ordering::Relaxed) {
                    state.serial.store(serial, Ordering::Relaxed);
                }
                if !state.answers.load(Ordering::Relaxed) {
                    continue;
                }
                let rc = if state.refuses.load(Ordering::Relaxed) { 5 } else { 0 };
                let fl = flags::QR | flags::AA | (4 << 11) | rc;
                answer[2..4].copy_from_slice(&fl.to_be_bytes());
            } else {
                state.soa_queries.fetch_add(1, Ordering::Relaxed);
                let serial = state.serial.load(Ordering::Relaxed);
                if serial == 0 {
                    continue;
                }
                answer[2..4].copy_from_slice(&(flags::QR | flags::AA).to_be_bytes());
                answer[6..8].copy_from_slice(&1u16.to_be_bytes());
                let mut rd = vec![2, b'n', b's', 0xC0, 12, 2, b'h', b'm', 0xC0, 12];
                for v in [serial, 2, 3, 4, 5] {
                    rd.extend_from_slice(&v.to_be_bytes());
                }
                answer.extend_from_slice(&[0xC0, 12, 0, 6, 0, 1, 0, 0, 1, 44]);
                answer.extend_from_slice(&(rd.len() as u16).to_be_bytes());
                answer.extend_from_slice(&rd);
            }
            if let (Some(k), Some(mac)) = (&key, &mac) {
                tsig::sign_response(&mut answer, k, mac, now_unix(), 300, 0, &[]).unwrap();
            }
            let _ = sock.send_to(&answer, from).await;
        }
    });
    (addr, p)
}

fn rdlen_at(msg: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([msg[at], msg[at + 1]]))
}

/// The task's inputs, held by the test.
struct World {
    catalog: SharedCatalog,
    changed: watch::Sender<u64>,
    secondaries: SharedSecondaries,
    status: Arc<Status>,
    _shutdown: watch::Sender<bool>,
}

impl World {
    fn publish(&self, f: impl FnOnce(&mut Catalog)) {
        let mut c = Catalog::clone(&self.catalog.load());
        f(&mut c);
        self.catalog.store(Arc::new(c));
        self.changed.send_modify(|n| *n += 1);
    }

    fn set_secondaries(&self, list: Vec<Secondary>) {
        let generation = self.secondaries.load().generation + 1;
        self.secondaries.store(Arc::new(Secondaries {
            generation,
            list,
            catalog: n("catalog.invalid."),
            keys: vec![],
        }));
        self.changed.send_modify(|n| *n += 1);
    }
}

fn secondary(address: SocketAddr) -> Secondary {
    Secondary { address, key: None, catalog: false, zones: vec![] }
}

fn start(zones: &[Arc<Zone>], list: Vec<Secondary>, settings: NotifySettings) -> World {
    let mut c = Catalog::new();
    for z in zones {
        c.insert(z.clone());
    }
    let catalog: SharedCatalog = Arc::new(ArcSwap::from_pointee(c));
    let secondaries: SharedSecondaries = Arc::new(ArcSwap::from_pointee(Secondaries {
        generation: 1,
        list,
        catalog: n("catalog.invalid."),
        keys: vec![],
    }));
    let (changed, rx) = watch::channel(0);
    let (sd, sd_rx) = watch::channel(false);
    let status = Status::new();
    let inputs = Inputs { catalog: catalog.clone(), changed: rx, secondaries: secondaries.clone() };
    tokio::spawn(run(inputs, status.clone(), settings, sd_rx));
    World { catalog, changed, secondaries, status, _shutdown: sd }
}

/// Waits (in virtual time) until `cond` holds, checking after every
/// change of the status table and every 10 ms.
async fn until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + within;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_change_is_notified_with_its_soa_and_the_status_shows_the_ack_and_the_serial() {
    let (addr, p) = peer().await;
    p.transfers.store(true, Ordering::Relaxed);
    let w = start(&[zone("a.test.", 7)], vec![secondary(addr)], NotifySettings::default());
    // At start every zone is announced: a secondary that missed changes
    // while we were down catches up.
    until("the first notify", Duration::from_secs(5), || p.serials("a.test.") == [7]).await;
    w.publish(|c| c.insert(zone("a.test.", 8)));
    until("the second notify", Duration::from_secs(5), || p.serials("a.test.") == [7, 8]).await;
    until("the serial read back", Duration::from_secs(5), || {
        w.status.zone(&n("a.test.")).is_some_and(|z| z.secondaries.iter().all(|s| s.in_sync))
    })
    .await;
    let z = w.status.zone(&n("A.test.")).unwrap();
    assert_eq!(z.serial, 8);
    let s = &z.secondaries[0];
    assert_eq!(s.address, addr);
    let notified = s.notified.as_ref().unwrap();
    assert_eq!((notified.serial, notified.tries, notified.failed), (8, 1, false));
    assert!(notified.acked.is_some());
    assert_eq!(s.reported.unwrap().serial, 8);
    assert_eq!(s.lag, None);
    let c = w.status.counters();
    assert_eq!(c, [(addr, status::Counters { sent: 2, retried: 0, failed: 0 })]);
    // A new catalog with the zone unchanged (the same Arc) announces nothing.
    w.publish(|c| c.insert(zone("b.test.", 1)));
    until("b.test.'s notify", Duration::from_secs(5), || p.serials("b.test.") == [1]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(p.serials("a.test."), [7, 8]);
}

#[tokio::test(start_paused = true)]
async fn an_unanswered_notify_is_retried_with_doubling_timeouts_then_given_up() {
    let (addr, p) = peer().await;
    p.answers.store(false, Ordering::Relaxed);
    let started = Instant::now();
    let w = start(&[zone("a.test.", 3)], vec![secondary(addr)], NotifySettings::default());
    until("the give-up", Duration::from_secs(120), || {
        w.status.counters().first().is_some_and(|(_, c)| c.failed == 1)
    })
    .await;
    let elapsed = started.elapsed();
    assert_eq!(p.count(), 5, "five tries");
    assert_eq!(w.status.counters(), [(addr, status::Counters { sent: 5, retried: 4, failed: 1 })]);
    // 1 + 2 + 4 + 8 + 16 s, each give or take a quarter (virtual time).
    assert!(
        elapsed >= Duration::from_millis(23_250) && elapsed <= Duration::from_millis(39_000),
        "{elapsed:?}"
    );
    let z = w.status.zone(&n("a.test.")).unwrap();
    let notified = z.secondaries[0].notified.as_ref().unwrap();
    assert!(notified.failed && notified.acked.is_none() && notified.tries == 5);
    assert!(!z.secondaries[0].in_sync);
    // A refusal is an answer: given up on at once, not retried.
    let (addr2, p2) = peer().await;
    p2.refuses.store(true, Ordering::Relaxed);
    w.set_secondaries(vec![secondary(addr), secondary(addr2)]);
    until("the refusal", Duration::from_secs(5), || {
        w.status.counters().iter().any(|(a, c)| *a == addr2 && c.failed == 1)
    })
    .await;
    assert_eq!(p2.count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_costs_far_fewer_notifies_than_changes() {
    let (addr, p) = peer().await;
    p.transfers.store(true, Ordering::Relaxed);
    let w = start(&[zone("a.test.", 1)], vec![secondary(addr)], NotifySettings::default());
    until("the first notify", Duration::from_secs(5), || p.count() == 1).await;
    // 200 changes, one every 2 ms.
    for serial in 2..=201 {
        w.publish(|c| c.insert(zone("a.test.", serial)));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    until("the last serial announced", Duration::from_secs(5), || p.serials("a.test.").last() == Some(&201))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let serials = p.serials("a.test.");
    // 400 ms of changes at one NOTIFY per 50 ms at most.
    assert!(serials.len() <= 12, "{} notifies for 200 changes: {serials:?}", serials.len());
    assert!(serials.windows(2).all(|w| sixgate_dns::xfr::serial_gt(w[1], w[0])), "{serials:?}");
    assert_eq!(serials.last(), Some(&201));
}

#[tokio::test(start_paused = true)]
async fn a_secondary_added_while_running_is_notified_of_every_zone_it_carries() {
    let (a1, p1) = peer().await;
    let (a2, p2) = peer().await;
    let w = start(&[zone("a.test.", 1), zone("b.test.", 2)], vec![secondary(a1)], NotifySettings::default());
    until("the first secondary's notifies", Duration::from_secs(5), || p1.count() == 2).await;
    let mut only_b = secondary(a2);
    only_b.zones = vec![n("b.test.")];
    w.set_secondaries(vec![secondary(a1), only_b]);
    until("the new secondary's notify", Duration::from_secs(5), || p2.count() == 1).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(p2.serials("b.test."), [2]);
    assert_eq!(p1.count(), 2, "the first secondary is not told again");
    // Its status lists only the zones it carries.
    assert_eq!(w.status.zone(&n("a.test.")).unwrap().secondaries.len(), 1);
    assert_eq!(w.status.zone(&n("b.test.")).unwrap().secondaries.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_secondary_does_not_delay_the_others() {
    let (dead, pd) = peer().await;
    pd.answers.store(false, Ordering::Relaxed);
    let (live, pl) = peer().await;
    let zones: Vec<Arc<Zone>> = (0..100).map(|i| zone(&format!("z{i}.test."), 1)).collect();
    let w = start(&zones, vec![secondary(dead), secondary(live)], NotifySettings::default());
    // Every zone reaches the live secondary well before the dead one's
    // first timeout.
    until("every zone on the live secondary", Duration::from_millis(500), || pl.count() == 100).await;
    assert!(pd.count() <= PER_SECONDARY, "{} in flight to the dead one", pd.count());
    let acked = w.status.counters().into_iter().find(|(a, _)| *a == live).map(|(_, c)| c.sent).unwrap();
    assert_eq!(acked, 100);
}

#[tokio::test(start_paused = true)]
async fn the_status_shows_a_secondary_behind_and_for_how_long() {
    let (addr, p) = peer().await;
    // It acknowledges but stays at serial 4.
    p.serial.store(4, Ordering::Relaxed);
    let w = start(&[zone("a.test.", 4)], vec![secondary(addr)], NotifySettings::default());
    until("in sync", Duration::from_secs(5), || {
        w.status.zone(&n("a.test.")).is_some_and(|z| z.secondaries[0].in_sync)
    })
    .await;
    w.publish(|c| c.insert(zone("a.test.", 5)));
    tokio::time::sleep(Duration::from_secs(30)).await;
    let z = w.status.zone(&n("a.test.")).unwrap();
    let s = &z.secondaries[0];
    assert!(!s.in_sync);
    assert_eq!(s.reported.unwrap().serial, 4);
    let lag = s.lag.unwrap();
    assert!(lag >= Duration::from_secs(30) && lag < Duration::from_secs(31), "{lag:?}");
    let metrics = w.status.metrics_text();
    assert!(
        metrics.contains(&format!("sixgate_secondary_zones_behind{{address=\"{addr}\"}} 1\n")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!("sixgate_notify_sent_total{{address=\"{addr}\"}} 2\n")), "{metrics}");
    // Once it catches up (read by the follow-up or the periodic probe),
    // it is in sync and no longer counted.
    p.serial.store(5, Ordering::Relaxed);
    until("in sync again", Duration::from_secs(120), || {
        w.status.zone(&n("a.test.")).is_some_and(|z| z.secondaries[0].in_sync)
    })
    .await;
    assert!(
        w.status
            .metrics_text()
            .contains(&format!("sixgate_secondary_zones_behind{{address=\"{addr}\"}} 0\n"))
    );
}

#[tokio::test(start_paused = true)]
async fn the_periodic_probe_reads_every_pair_within_its_interval_at_a_bounded_rate() {
    let (addr, p) = peer().await;
    p.answers.store(false, Ordering::Relaxed);
    p.serial.store(1, Ordering::Relaxed);
    let zones: Vec<Arc<Zone>> = (0..50).map(|i| zone(&format!("z{i}.test."), 1)).collect();
    let settings = NotifySettings {
        retry: Retry { tries: 1, timeout: Duration::from_millis(100) },
        probe_interval: Duration::from_secs(10),
        probes_per_second: 20,
    };
    let w = start(&zones, vec![secondary(addr)], settings.clone());
    // No NOTIFY is answered: only the periodic probe reads serials, the
    // first after one interval, then one pair every 10 s / 50 = 200 ms.
    tokio::time::sleep(Duration::from_millis(10_000 + 10_000 + 100)).await;
    let queries = p.soa_queries.load(Ordering::Relaxed);
    assert!((50..=52).contains(&queries), "{queries} SOA queries in two intervals");
    let all = (0..50).all(|i| w.status.zone(&n(&format!("z{i}.test."))).unwrap().secondaries[0].in_sync);
    assert!(all, "every pair was read");
    // An interval too short for the pairs: the rate bound holds (20 a
    // second), and each pair waits its turn.
    let (addr2, p2) = peer().await;
    p2.answers.store(false, Ordering::Relaxed);
    let _w2 = start(
        &zones,
        vec![secondary(addr2)],
        NotifySettings { probe_interval: Duration::from_secs(1), ..settings },
    );
    tokio::time::sleep(Duration::from_millis(1_000 + 10_000 + 10)).await;
    let queries = p2.soa_queries.load(Ordering::Relaxed);
    assert!((195..=202).contains(&queries), "{queries} SOA queries in 10 s at 20 a second");
}

#[tokio::test(start_paused = true)]
async fn a_deleted_zone_leaves_the_status_and_waits_end_at_once() {
    let (addr, p) = peer().await;
    p.transfers.store(true, Ordering::Relaxed);
    let w =
        start(&[zone("a.test.", 1), zone("b.test.", 1)], vec![secondary(addr)], NotifySettings::default());
    until("notifies", Duration::from_secs(5), || p.count() == 2).await;
    w.publish(|c| c.remove(&n("a.test.")));
    until("a.test. gone", Duration::from_secs(5), || w.status.zone(&n("a.test.")).is_none()).await;
    let waited = w.status.wait(&n("a.test."), 5, Duration::from_secs(10)).await;
    assert!(waited.reached && waited.secondaries.is_empty());
    assert_eq!(p.count(), 2, "a deletion is not announced");
}

#[tokio::test(start_paused = true)]
async fn a_wait_ends_when_every_secondary_reports_the_serial_or_at_its_timeout() {
    let (a1, p1) = peer().await;
    let (a2, p2) = peer().await;
    p1.transfers.store(true, Ordering::Relaxed);
    p2.serial.store(1, Ordering::Relaxed);
    let w = start(&[zone("a.test.", 1)], vec![secondary(a1), secondary(a2)], NotifySettings::default());
    until("in sync", Duration::from_secs(5), || {
        w.status.zone(&n("a.test.")).is_some_and(|z| z.secondaries.iter().all(|s| s.in_sync))
    })
    .await;
    w.publish(|c| c.insert(zone("a.test.", 2)));
    // p2 never takes serial 2: the wait times out, showing who is behind.
    let started = Instant::now();
    let waited = w.status.wait(&n("a.test."), 2, Duration::from_secs(3)).await;
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(!waited.reached);
    let by: Vec<(SocketAddr, u32)> =
        waited.secondaries.iter().map(|s| (s.address, s.reported.unwrap().serial)).collect();
    assert!(by.contains(&(a1, 2)) && by.contains(&(a2, 1)), "{by:?}");
    // Once p2 has it (its follow-up probe reads it), a wait ends before
    // its timeout.
    p2.serial.store(2, Ordering::Relaxed);
    let started = Instant::now();
    let waited = w.status.wait(&n("a.test."), 2, Duration::from_secs(30)).await;
    assert!(waited.reached, "{waited:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // A zone no secondary carries: at once.
    let mut only_b = secondary(a1);
    only_b.zones = vec![n("b.test.")];
    w.set_secondaries(vec![only_b]);
    until("the list taken", Duration::from_secs(5), || {
        w.status.zone(&n("a.test.")).unwrap().secondaries.is_empty()
    })
    .await;
    let started = Instant::now();
    let waited = w.status.wait(&n("a.test."), 99, Duration::from_secs(30)).await;
    assert!(waited.reached && waited.secondaries.is_empty() && started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn notifies_and_probes_are_signed_with_the_secondarys_key_and_answers_verified() {
    let (addr, p) = peer().await;
    p.transfers.store(true, Ordering::Relaxed);
    let secret = vec![7u8; 32];
    *p.key.lock().unwrap() = Some(Key::new(&n("xfr-key."), Algorithm::HmacSha256, secret.clone()));
    let mut s = secondary(addr);
    s.key = Some(TransferKey { name: n("xfr-key."), algorithm: "hmac-sha256".into(), secret });
    let w = start(&[zone("a.test.", 3)], vec![s], NotifySettings::default());
    until("in sync", Duration::from_secs(5), || {
        w.status.zone(&n("a.test.")).is_some_and(|z| z.secondaries[0].in_sync)
    })
    .await;
    assert_eq!(p.bad_signatures.load(Ordering::Relaxed), 0);
    let c = w.status.counters();
    assert_eq!(c, [(addr, status::Counters { sent: 1, retried: 0, failed: 0 })], "acknowledged at once");
    // With another key, the secondary ignores us: no acknowledgement.
    *p.key.lock().unwrap() = Some(Key::new(&n("xfr-key."), Algorithm::HmacSha256, vec![8u8; 32]));
    w.publish(|c| c.insert(zone("a.test.", 4)));
    until("the give-up", Duration::from_secs(120), || {
        w.status.counters().first().is_some_and(|(_, c)| c.failed == 1)
    })
    .await;
    assert_eq!(p.bad_signatures.load(Ordering::Relaxed), 5);
}

/// A zone changed by another process on the data directory (as the CLI's
/// `zone import` does) reaches the publisher through the store and is
/// announced like an API change.
#[tokio::test(start_paused = true)]
async fn a_change_committed_by_another_process_is_notified() {
    let dir = tempfile::tempdir().unwrap();
    let text = |serial: u32, extra: &str| {
        let t = format!("@ 300 SOA ns hm {serial} 2 3 4 5\n@ 300 NS ns\nns 300 AAAA 2001:db8::53\n{extra}");
        zonefile::parse(&t, &n("a.test.")).unwrap()
    };
    let mut store = Store::open(dir.path()).unwrap();
    store.by(Actor::Task("test")).replace_zone(&n("a.test."), text(1, "")).unwrap();
    let (addr, p) = peer().await;
    store.add_secondary(&secondary(addr)).unwrap();
    let (mut follower, catalog) = crate::publish::Follower::load(store, 1).unwrap();
    follower.catch_up().unwrap();
    let status = Status::new();
    let (_sd, sd_rx) = watch::channel(false);
    let inputs =
        Inputs { catalog: catalog.clone(), changed: follower.changed(), secondaries: follower.secondaries() };
    tokio::spawn(run(inputs, status.clone(), NotifySettings::default(), sd_rx));
    until("the first notify", Duration::from_secs(5), || p.count() == 1).await;
    let first = p.serials("a.test.")[0];
    // The "CLI": its own connection to the same database.
    let mut cli = Store::open(dir.path()).unwrap();
    let commit = cli
        .by(Actor::Cli("test".into()))
        .replace_zone(&n("a.test."), text(1, "www 300 AAAA 2001:db8::1\n"))
        .unwrap();
    assert!(sixgate_dns::xfr::serial_gt(commit.serial, first));
    follower.catch_up().unwrap();
    until("the CLI's change announced", Duration::from_secs(5), || p.count() == 2).await;
    assert_eq!(p.serials("a.test."), [first, commit.serial]);
}

#[tokio::test(start_paused = true)]
async fn the_catalog_zones_changes_go_to_its_followers_only_and_a_deletion_to_nobody() {
    let (follower, pf) = peer().await;
    let (plain, pp) = peer().await;
    let mut f = secondary(follower);
    f.catalog = true;
    let w = start(
        &[zone("a.test.", 1), zone("b.test.", 1), zone("catalog.invalid.", 10)],
        vec![f, secondary(plain)],
        NotifySettings::default(),
    );
    until("the start's notifies", Duration::from_secs(5), || pf.count() == 3 && pp.count() == 2).await;
    assert_eq!(pf.serials("catalog.invalid."), [10]);
    assert!(pp.serials("catalog.invalid.").is_empty(), "the catalog zone is for its followers");
    // b.test. deleted: the catalog moves, and only that is announced.
    w.publish(|c| {
        c.remove(&n("b.test."));
        c.insert(zone("catalog.invalid.", 11));
    });
    until("the catalog's notify", Duration::from_secs(5), || pf.serials("catalog.invalid.") == [10, 11])
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!((pf.count(), pp.count()), (4, 2), "nothing announced for the deleted zone");
}
