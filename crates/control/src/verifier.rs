//! Whole-zone signature verification off the publisher's thread.
//!
//! Verifying every signature of a zone costs a public-key operation per
//! RRSIG: about a second for a zone of 10 000 names on one core, minutes
//! for a million. At start and at each whole reload the publisher hands
//! the zone to these worker threads instead of waiting, so every other
//! zone is served and published meanwhile; the zone's previous version
//! (or nothing, at start) is served until the verdict comes back. A
//! large zone's nodes are split between a few threads. Diffs are small
//! and are verified on the publisher's thread.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sixgate_dns::Zone;
use sixgate_dnssec::check::{self, Problem};

/// A zone version to verify whole.
pub(crate) struct Job {
    /// The zone's apex, lowercased.
    pub(crate) apex: Box<[u8]>,
    /// Which of the publisher's requests this answers; a later request
    /// for the same zone supersedes it.
    pub(crate) generation: u64,
    /// The version to verify.
    pub(crate) zone: Zone,
    /// The time to check validity at (unix seconds).
    pub(crate) now: u64,
    /// How long past `now` a signature must stay valid.
    pub(crate) margin: u32,
}

/// What a worker found.
pub(crate) struct Verdict {
    pub(crate) apex: Box<[u8]>,
    pub(crate) generation: u64,
    pub(crate) problems: Vec<Problem>,
    pub(crate) elapsed: Duration,
}

/// The worker threads and their queues.
pub(crate) struct Verifier {
    /// `None` with no workers: jobs wait in `queued` for [`Verifier::run_queued`].
    jobs: Option<Sender<Job>>,
    queued: Vec<Job>,
    results_tx: Sender<Verdict>,
    results: Receiver<Verdict>,
    workers: Vec<JoinHandle<()>>,
}

fn run(job: Job) -> Verdict {
    let started = Instant::now();
    // A fault in the check must not lose the zone's verdict (it would
    // stay unserved for good): it is reported as a problem instead.
    let problems = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        verify_whole(&job.zone, job.now, job.margin)
    }))
    .unwrap_or_else(|_| {
        vec![Problem {
            owner: sixgate_dns::name::to_text(&job.apex),
            rtype: 0,
            reason: "the check itself failed",
        }]
    });
    Verdict { apex: job.apex, generation: job.generation, problems, elapsed: started.elapsed() }
}

/// Zones with more nodes than this have their signatures verified by
/// several threads at once.
const SPLIT_AT: usize = 4096;
/// At most this many threads per zone.
const MAX_SPLIT: usize = 4;

/// [`check::verify_zone`] over the whole zone, a large zone's nodes
/// split between threads (the cost is one public-key operation per RRSIG).
fn verify_whole(zone: &Zone, now: u64, margin: u32) -> Vec<Problem> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(MAX_SPLIT);
    if threads < 2 || zone.node_count() < SPLIT_AT {
        return check::verify_zone(zone, None, now, margin);
    }
    let mut problems = check::check_zone(zone, None, now, margin);
    let nodes: Vec<_> = zone.nodes().collect();
    let chunk = nodes.len().div_ceil(threads).max(1);
    let found: Vec<Vec<Problem>> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .chunks(chunk)
            .map(|part| {
                let work = move || check::verify_nodes(zone, part.iter().copied(), check::MAX_PROBLEMS);
                // A thread that cannot start does its part here.
                std::thread::Builder::new().spawn_scoped(s, work).map_err(|_| work)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_else(|_| {
                    vec![Problem { owner: String::new(), rtype: 0, reason: "the check itself failed" }]
                }),
                Err(work) => work(),
            })
            .collect()
    });
    for p in found.into_iter().flatten() {
        if problems.len() >= check::MAX_PROBLEMS {
            break;
        }
        if !problems.iter().any(|q| q.owner == p.owner && q.rtype == p.rtype) {
            problems.push(p);
        }
    }
    problems
}

impl Verifier {
    /// Starts `workers` threads; with 0, jobs run only in
    /// [`Verifier::run_queued`], on the caller's thread (for tests that
    /// look at what is served before a verdict).
    pub(crate) fn new(workers: usize) -> Verifier {
        let (results_tx, results) = mpsc::channel();
        let mut threads = Vec::new();
        let mut jobs = None;
        if workers > 0 {
            let (tx, rx) = mpsc::channel::<Job>();
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..workers {
                let (rx, out) = (rx.clone(), results_tx.clone());
                let spawned = std::thread::Builder::new().name(format!("zone-verify-{i}")).spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(p) => p.into_inner().recv(),
                        };
                        let Ok(job) = job else { return };
                        if out.send(run(job)).is_err() {
                            return;
                        }
                    }
                });
                match spawned {
                    Ok(t) => threads.push(t),
                    Err(e) => tracing::warn!(error = %e, "could not start a zone verification thread"),
                }
            }
            if !threads.is_empty() {
                jobs = Some(tx);
            }
        }
        Verifier { jobs, queued: Vec::new(), results_tx, results, workers: threads }
    }

    /// Queues a job.
    pub(crate) fn submit(&mut self, job: Job) {
        match &self.jobs {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    self.queued.push(job);
                }
            }
            None => self.queued.push(job),
        }
    }

    /// Runs the jobs that have no worker, here.
    pub(crate) fn run_queued(&mut self) {
        for job in std::mem::take(&mut self.queued) {
            let _ = self.results_tx.send(run(job));
        }
    }

    /// True when no worker thread is left and no job waits here.
    pub(crate) fn stopped(&self) -> bool {
        self.queued.is_empty() && self.workers.iter().all(JoinHandle::is_finished)
    }

    /// A verdict, if one is ready.
    pub(crate) fn try_recv(&self) -> Option<Verdict> {
        self.results.try_recv().ok()
    }

    /// Waits up to `timeout` for a verdict. `None` also when no worker
    /// is left to give one.
    pub(crate) fn recv_timeout(&mut self, timeout: Duration) -> Option<Verdict> {
        if self.workers.is_empty() || self.workers.iter().all(JoinHandle::is_finished) {
            self.run_queued();
            let got = self.try_recv();
            if got.is_none() {
                std::thread::sleep(timeout);
            }
            return got;
        }
        self.results.recv_timeout(timeout).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sixgate_dns::name;
    use sixgate_dns::rtype::code;
    use sixgate_dns::zone::Record;
    use sixgate_dnssec::key::flags;
    use sixgate_dnssec::sign::{ActiveKey, Signer};
    use sixgate_dnssec::{Algorithm, KeyPair};

    const NOW: u64 = 1_800_000_000;

    /// A signed zone of `names` names (above [`SPLIT_AT`]: split).
    fn big(names: usize) -> (Box<[u8]>, Vec<Record>) {
        let apex = name::from_text("big.test.", None).unwrap();
        let mut text = String::from("@ 3600 SOA ns hm 1 2 3 4 300\n@ 3600 NS ns\nns 3600 A 192.0.2.1\n");
        for i in 0..names {
            text.push_str(&format!("h{i} 300 A 192.0.2.{}\n", i % 250 + 1));
        }
        let mut records = sixgate_dns::zonefile::parse(&text, &apex).unwrap();
        let key = KeyPair::generate(Algorithm::Ed25519, flags::ZONE | flags::SEP).unwrap();
        records.push(Record {
            owner: apex.clone(),
            rtype: code::DNSKEY,
            ttl: 3600,
            rdata: key.dnskey_rdata().into(),
        });
        let signer = Signer {
            apex: apex.clone(),
            keys: vec![ActiveKey { key: &key, tag: key.key_tag(), signs_keys: true, signs_zone: true }],
            nsec3: None,
            now: NOW,
            inception_offset: 3600,
            validity: 14 * 86400,
            jitter: 3600,
        };
        let out = signer.sign_zone(&records, 2).unwrap();
        records.extend(out.records);
        (apex, records)
    }

    #[test]
    fn a_large_zone_is_verified_in_parts_and_a_bad_signature_is_found() {
        let (apex, mut records) = big(SPLIT_AT + 100);
        let zone = Zone::build(&apex, records.clone(), 1).unwrap();
        assert!(zone.node_count() >= SPLIT_AT);
        assert_eq!(verify_whole(&zone, NOW, 3600), vec![]);
        // One bad signature, somewhere in one of the parts.
        let bad = name::from_text("h4000.big.test.", None).unwrap();
        for r in records.iter_mut().filter(|r| r.rtype == code::RRSIG && name::to_lowercase(&r.owner) == bad)
        {
            let mut rd = r.rdata.to_vec();
            *rd.last_mut().unwrap() ^= 1;
            r.rdata = rd.into();
        }
        let zone = Zone::build(&apex, records, 1).unwrap();
        let p = verify_whole(&zone, NOW, 3600);
        assert!(!p.is_empty() && p.iter().all(|p| p.owner == "h4000.big.test."), "{p:?}");
    }

    #[test]
    fn verdicts_come_back_from_workers_and_from_the_queue() {
        let (apex, records) = big(10);
        let zone = Zone::build(&apex, records, 1).unwrap();
        for workers in [0, 2] {
            let mut v = Verifier::new(workers);
            v.submit(Job { apex: apex.clone(), generation: 7, zone: zone.clone(), now: NOW, margin: 3600 });
            let got = (0..600).find_map(|_| v.recv_timeout(Duration::from_millis(100))).expect("a verdict");
            assert_eq!((got.generation, got.problems), (7, vec![]), "workers: {workers}");
        }
    }
}
