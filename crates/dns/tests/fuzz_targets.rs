//! The zone transfer fuzz target's checks, run as a test without
//! cargo-fuzz: over every seed in `fuzz/seeds/xfr_request/` (and
//! `fuzz/regressions/xfr_request/`), and over a few thousand inputs
//! mutated from them by a seeded generator. The mutations are the kind
//! libFuzzer makes (flips, insertions, deletions, copies) plus pieces of
//! DNS the checks care about (transfer question tails, an SOA, an OPT, a
//! TSIG record's head, compression pointers). A failure prints the input
//! in hex, so it can be kept as a regression.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/fuzz_targets/xfr_request_check.rs"]
mod xfr_request_check;

#[path = "../../../fuzz/fuzz_targets/notify_response_check.rs"]
mod notify_response_check;

/// Mutated inputs per seed.
const MUTATIONS: usize = 200;

const TOKENS: &[&[u8]] = &[
    // QTYPE and QCLASS: AXFR IN, IXFR IN, AXFR CH.
    b"\x00\xfc\x00\x01",
    b"\x00\xfb\x00\x01",
    b"\x00\xfc\x00\x03",
    // A client SOA owned by the question name, serial 2024010100.
    b"\xc0\x0c\x00\x06\x00\x01\x00\x00\x00\x00\x00\x16\x00\x00\x78\xa3\xf1\x74\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    // An OPT record, EDNS version 0 and 1.
    b"\x00\x00\x29\x10\x00\x00\x00\x80\x00\x00\x00",
    b"\x00\x00\x29\x10\x00\x00\x01\x00\x00\x00\x00",
    // A TSIG record's owner, type and class.
    b"\x08test-key\x00\x00\xfa\x00\xff",
    b"\xc0\x0c",
    b"\x00\x01",
    b"\x00\x00",
];

/// xorshift64*: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut d = seed.to_vec();
    // Half the inputs keep the seed's shape: one octet changed in place,
    // so counts and lengths still hold and the checks past decoding run.
    if rng.below(2) == 0 && !d.is_empty() {
        let i = rng.below(d.len());
        d[i] = if rng.below(2) == 0 { d[i] ^ 1 << rng.below(8) } else { rng.next() as u8 };
        return d;
    }
    for _ in 0..=rng.below(4) {
        let at = rng.below(d.len() + 1);
        match rng.below(6) {
            0 if !d.is_empty() => {
                let i = rng.below(d.len());
                d[i] ^= 1 << rng.below(8);
            }
            1 => d.insert(at, rng.next() as u8),
            2 if at < d.len() => {
                let n = rng.below(d.len() - at).min(16) + 1;
                d.drain(at..(at + n).min(d.len()));
            }
            3 if !d.is_empty() => {
                let from = rng.below(d.len());
                let n = rng.below(d.len() - from).min(64) + 1;
                let piece = d[from..(from + n).min(d.len())].to_vec();
                d.splice(at..at, piece);
            }
            _ => {
                let t = TOKENS[rng.below(TOKENS.len())];
                d.splice(at..at, t.iter().copied());
            }
        }
    }
    d
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    out.sort();
    out
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `check` over the target's seeds, regressions and their mutations.
fn run(target: &str, check: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let seeds: Vec<Vec<u8>> = [root.join("seeds").join(target), root.join("regressions").join(target)]
        .iter()
        .flat_map(|d| files(d))
        .filter_map(|p| std::fs::read(p).ok())
        .collect();
    assert!(!seeds.is_empty(), "no seeds for {target}");
    let mut rng = Rng(0x5158_6a7e ^ target.len() as u64);
    let mut inputs = 0;
    for seed in &seeds {
        let mutants: Vec<Vec<u8>> = (0..MUTATIONS).map(|_| mutate(&mut rng, seed)).collect();
        for input in std::iter::once(seed).chain(&mutants) {
            inputs += 1;
            if std::panic::catch_unwind(|| check(input)).is_err() {
                panic!("{target} fails on {}", hex(input));
            }
        }
    }
    inputs
}

#[test]
fn the_xfr_request_target_holds_on_its_seeds_and_mutations() {
    let n = run("xfr_request", xfr_request_check::check);
    assert!(n >= 5000, "{n} inputs");
}

#[test]
fn the_notify_response_target_holds_on_its_seeds_and_mutations() {
    let n = run("notify_response", notify_response_check::check);
    assert!(n >= 1000, "{n} inputs");
}
