//! `sixgate_dns::notify::decode_notify_response` and `decode_soa_response`
//! on any bytes; the checks are in `notify_response_check.rs`, which
//! `crates/dns/tests/fuzz_targets.rs` also runs over the seeds and
//! mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "notify_response_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check(data));
