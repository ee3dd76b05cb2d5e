//! The HTTP fuzz targets' checks, run as tests without cargo-fuzz: over
//! every seed in `fuzz/seeds/` (and `fuzz/regressions/`), and over a few
//! thousand inputs mutated from them by a seeded generator. The mutations
//! are the kind libFuzzer makes (flips, insertions, deletions, copies)
//! plus tokens the checks care about (forwarding field names spelled both
//! ways, Connection, chunked framing, h2c). A failure prints the input, so
//! it can be kept as a regression.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/fuzz_targets/http_head_check.rs"]
mod http_head_check;
#[path = "../../../fuzz/fuzz_targets/http_response_check.rs"]
mod http_response_check;

/// Mutated inputs per seed.
const MUTATIONS: usize = 80;

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b": ",
    b",",
    b"X-Forwarded-For: 6.6.6.6\r\n",
    b"X-Forwarded_For: 6.6.6.6\r\n",
    b"x_real_ip: 6.6.6.6\r\n",
    b"X-Forwarded-Proto: https\r\n",
    b"X_Forwarded-Host: a\r\n",
    b"Forwarded: for=6.6.6.6\r\n",
    b"Connection: close, X-Forwarded-For\r\n",
    b"Connection: Upgrade\r\nUpgrade: h2c\r\n",
    b"Upgrade: websocket\r\n",
    b"HTTP2-Settings: AAMA\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"Content-Length: 5\r\n",
    b"0\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\n",
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
            let r = std::panic::catch_unwind(|| check(input));
            if r.is_err() {
                panic!("{target} fails on {:?}", String::from_utf8_lossy(input));
            }
        }
    }
    inputs
}

#[test]
fn the_http_head_target_holds_on_its_seeds_and_mutations() {
    let n = run("http_head", http_head_check::check);
    assert!(n >= 2000, "{n} inputs");
}

#[test]
fn the_http_response_target_holds_on_its_seeds_and_mutations() {
    let n = run("http_response", http_response_check::check);
    assert!(n >= 1000, "{n} inputs");
}
