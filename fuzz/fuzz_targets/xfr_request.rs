//! `sixgate_dns::xfr::decode_request` on any bytes, and the transfer an
//! accepted request asks for; the checks are in `xfr_request_check.rs`,
//! which `crates/dns/tests/fuzz_targets.rs` also runs over the seeds and
//! mutations of them.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "xfr_request_check.rs"]
mod check;

fuzz_target!(|data: &[u8]| check::check(data));
