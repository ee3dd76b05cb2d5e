//! Whole-zone signature verification off the publisher's thread.
//!
//! Verifying every signature of a zone costs a public-key operation per
//! RRSIG: about a second for a zone of 10 000 names on one core, minutes
//! for a million. At start and at each whole reload the publisher hands
//! the zone to these worker threads instead of waiting, so every other
//! zone is served and published meanwhile; the zone's previous version
//! (or nothing, at start) is served until the verdict comes back. Diffs
//! are small and are verified on the publisher's thread.

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
        check::verify_zone(&job.zone, None, job.now, job.margin)
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

    /// A verdict, if one is ready.
    pub(crate) fn try_recv(&self) -> Option<Verdict> {
        self.results.try_recv().ok()
    }

    /// Waits up to `timeout` for a verdict. `None` also when no worker
    /// is left to give one.
    pub(crate) fn recv_timeout(&mut self, timeout: Duration) -> Option<Verdict> {
        if self.workers.is_empty() || self.workers.iter().all(JoinHandle::is_finished) {
            self.run_queued();
            return self.try_recv();
        }
        self.results.recv_timeout(timeout).ok()
    }
}
