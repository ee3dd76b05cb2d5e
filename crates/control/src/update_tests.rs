//! The UPDATE writer against a real store: what a flood of forged or
//! unsigned UPDATEs may cost (no store lock, a bounded queue, a bounded
//! number of log lines), and that keys made or deleted while it runs take
//! effect.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sixgate_dns::tsig::{Algorithm, Key, sign_request};
use sixgate_dns::{name, zonefile};
use sixgate_store::{Actor, Store};
use tokio::sync::{mpsc, oneshot};

use super::*;

/// How long a test waits for what must happen.
const WAIT: Duration = Duration::from_secs(20);

const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1 hostmaster 1 3600 900 604800 300\n@ NS ns1\n\
ns1 A 192.0.2.53\nwww A 192.0.2.1\n";

fn apex() -> Box<[u8]> {
    name::from_text("example.test.", None).unwrap()
}

/// A store with example.test. and the key `k1.` for it.
fn store() -> (tempfile::TempDir, Key) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    store.by(Actor::Task("test")).replace_zone(&apex(), zonefile::parse(ZONE, &apex()).unwrap()).unwrap();
    let key = make_key(&mut store, "k1.");
    (dir, key)
}

fn make_key(store: &mut Store, text: &str) -> Key {
    let wire = name::from_text(text, None).unwrap();
    let secret = store.create_tsig_key(&wire, "hmac-sha256", &apex(), false).unwrap();
    Key::new(&wire, Algorithm::HmacSha256, secret)
}

/// An UPDATE adding `owner` A 192.0.2.9, unsigned.
fn update(id: u16, owner: &str) -> Vec<u8> {
    let mut m = id.to_be_bytes().to_vec();
    m.extend_from_slice(&[0x28, 0, 0, 1, 0, 0, 0, 1, 0, 0]);
    m.extend_from_slice(&apex());
    m.extend_from_slice(&[0, 6, 0, 1]);
    m.extend_from_slice(&name::from_text(owner, None).unwrap());
    m.extend_from_slice(&[0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 9]);
    m
}

fn signed(id: u16, owner: &str, key: &Key) -> Vec<u8> {
    let mut m = update(id, owner);
    sign_request(&mut m, key, unix_now(), 300).unwrap();
    m
}

/// The answer's rcode and, when it has a TSIG record, that record's error.
fn outcome(resp: &[u8]) -> (u8, Option<u16>) {
    let tsig = sixgate_dns::tsig::find(resp).unwrap();
    (resp[3] & 0x0f, tsig.map(|t| t.error))
}

fn handler(dir: &std::path::Path) -> Arc<UpdateHandler> {
    Arc::new(UpdateHandler::new(dir.to_path_buf(), false, None, Default::default()).unwrap())
}

/// Holds the handler's store lock until the returned sender is dropped,
/// as a long write (an fsync) would.
fn hold_store(h: &Arc<UpdateHandler>) -> std::sync::mpsc::Sender<()> {
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let h = h.clone();
    std::thread::spawn(move || {
        let _guard = h.store.lock().unwrap();
        held_tx.send(()).unwrap();
        let _ = release_rx.recv();
    });
    held_rx.recv().unwrap();
    release_tx
}

/// Regression: the handler took the store's lock (and queried the store)
/// before checking the signature, so every forged update waited behind
/// the real writes and held the lock each real write waits for.
#[test]
fn forged_updates_are_refused_without_taking_the_store_lock() {
    let (dir, key) = store();
    let h = handler(dir.path());
    let unknown = Key::new(&name::from_text("nokey.", None).unwrap(), Algorithm::HmacSha256, b"x".repeat(32));
    let wrong_secret = Key::new(&key.name, key.algorithm, b"y".repeat(64));
    let release = hold_store(&h);
    let (tx, rx) = std::sync::mpsc::channel();
    let worker = h.clone();
    std::thread::spawn(move || {
        let now = unix_now();
        let a = worker.process(&signed(1, "a.example.test.", &unknown), now);
        let b = worker.process(&signed(2, "b.example.test.", &wrong_secret), now);
        let _ = tx.send((a, b));
    });
    let answers = rx.recv_timeout(WAIT);
    drop(release);
    let (a, b) = answers.expect("a forged UPDATE waited for the store lock");
    assert_eq!(outcome(&a.unwrap().0), (9, Some(17)), "unknown key: NOTAUTH, BADKEY");
    assert_eq!(outcome(&b.unwrap().0), (9, Some(16)), "wrong secret: NOTAUTH, BADSIG");
}

/// Regression: `run` spawned a task for every job the moment it arrived,
/// so the queue never filled: under a flood the tasks (each waiting for
/// the store) grew without bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_update_queue_bounds_the_updates_in_flight() {
    let (dir, key) = store();
    let h = handler(dir.path());
    let (tx, rx) = mpsc::channel(4);
    let running = tokio::spawn(run(h.clone(), rx));
    let release = hold_store(&h);
    // Authentic updates, each stuck behind the store lock once taken.
    let (mut full, mut answers) = (0, Vec::new());
    for i in 0..50u16 {
        let (reply, answer) = oneshot::channel();
        let job = Job { msg: signed(i, &format!("n{i}.example.test."), &key), reply: Reply::Tcp(reply) };
        match tx.try_send(job) {
            Ok(()) => answers.push(answer),
            Err(_) => full += 1,
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(full >= 40, "only {full} of 50 updates found the queue full: it bounds nothing");
    // Once the store is free, every accepted update is answered.
    drop(release);
    for answer in answers {
        let resp = tokio::time::timeout(WAIT, answer).await.unwrap().unwrap();
        assert_eq!(outcome(&resp).0, 0);
    }
    drop(tx);
    tokio::time::timeout(WAIT, running).await.unwrap().unwrap();
}

/// Counts events at INFO and above.
struct Counting(Arc<AtomicU64>);

impl tracing::Subscriber for Counting {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        if *e.metadata().level() <= tracing::Level::INFO {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// Regression: every refused update was logged at info level, so a flood
/// of unsigned or forged updates wrote a log line per packet.
#[test]
fn refused_updates_are_logged_at_a_limited_rate() {
    let (dir, key) = store();
    let h = handler(dir.path());
    let wrong_secret = Key::new(&key.name, key.algorithm, b"y".repeat(64));
    let unknown = Key::new(&name::from_text("nokey.", None).unwrap(), Algorithm::HmacSha256, b"x".repeat(32));
    let lines = Arc::new(AtomicU64::new(0));
    let started = std::time::Instant::now();
    tracing::subscriber::with_default(Counting(lines.clone()), || {
        for i in 0..300u16 {
            let now = unix_now();
            h.process(&signed(i, "a.example.test.", &wrong_secret), now);
            h.process(&signed(i, "a.example.test.", &unknown), now);
            h.process(&update(i, "a.example.test."), now);
        }
    });
    // A few lines a second at most, whatever the machine's speed.
    let seconds = started.elapsed().as_secs() + 2;
    let lines = lines.load(Ordering::Relaxed);
    assert!(lines <= 10 * seconds, "{lines} log lines for 900 refused updates in about {seconds} s");
}

#[test]
fn keys_made_or_deleted_while_running_take_effect() {
    let (dir, _key) = store();
    let h = handler(dir.path());
    // Another process (`sixgate tsig create`) makes a key ...
    let mut cli = Store::open(dir.path()).unwrap();
    let k2 = make_key(&mut cli, "k2.");
    let (resp, _) = h.process(&signed(1, "made.example.test.", &k2), unix_now()).unwrap();
    assert_eq!(outcome(&resp), (0, Some(0)), "a new key was not accepted");
    // ... and deletes it.
    assert!(cli.delete_tsig_key(&k2.name).unwrap());
    let (resp, _) = h.process(&signed(2, "gone.example.test.", &k2), unix_now()).unwrap();
    assert_eq!(outcome(&resp), (9, Some(17)), "a deleted key was still accepted");
}

/// Regression: an error of the store while looking up the key was taken
/// for an unknown key (BADKEY), telling a client with a good key that its
/// key is wrong.
#[test]
fn a_store_error_during_the_key_lookup_is_servfail_not_badkey() {
    let (dir, key) = store();
    let h = handler(dir.path());
    rusqlite::Connection::open(dir.path().join(sixgate_store::DB_FILE))
        .unwrap()
        .execute_batch("ALTER TABLE tsig_keys RENAME TO tsig_keys_gone")
        .unwrap();
    let (resp, _) = h.process(&signed(1, "a.example.test.", &key), unix_now()).unwrap();
    assert_eq!(outcome(&resp), (2, None), "SERVFAIL, unsigned");
}
