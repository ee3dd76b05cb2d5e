//! `sixgate_proxy::http::Responses` on any bytes; the checks are in
//! `http_response_check.rs`, which `crates/proxy/tests/fuzz_targets.rs`
//! also runs over the seeds and mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "http_response_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check(data));
