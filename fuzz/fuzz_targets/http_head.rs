//! `sixgate_proxy::http::parse_head`, `HeadReader`, `rewrite_forwarded`
//! and `ChunkedDecoder` on any bytes; the checks are in
//! `http_head_check.rs`, which `crates/proxy/tests/fuzz_targets.rs` also
//! runs over the seeds and mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "http_head_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check(data));
