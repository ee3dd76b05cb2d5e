//! Zone files: `zonefile::parse` on arbitrary text, then decode, encode,
//! decode: records that parse are rendered with `zonefile::render` and
//! must parse back to exactly the same records (the export promise in
//! `zonefile.rs`). Records that parse must also build a zone.
//!
//! Input that is not UTF-8 is read lossily (invalid sequences become
//! U+FFFD) rather than skipped, so the fuzzer's byte-level mutations still
//! reach the scanner.
//!
//! `zonefile::parse` wraps the third-party scanner in `catch_unwind` and
//! turns a panic into an error. That does not hide panics from this target,
//! because libfuzzer-sys installs a panic hook that aborts on any panic,
//! caught or not. So a scanner panic is still reported as a crash, as the
//! domain 0.12.3 one in `regressions/zonefile/` was.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sixgate_dns::{Zone, name, zonefile};

/// `example.test.`
const ORIGIN: &[u8] = b"\x07example\x04test\x00";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(records) = zonefile::parse(&text, ORIGIN) else {
        return;
    };
    let origin_l = name::to_lowercase(ORIGIN);
    for r in &records {
        assert!(name::validate(&r.owner).is_ok(), "owner is not a wire name: {:02x?}", r.owner);
        assert!(name::is_at_or_below(&name::to_lowercase(&r.owner), &origin_l), "owner outside the zone");
        assert!(r.rdata.len() <= usize::from(u16::MAX));
        assert!(zonefile::check_rdata(r.rtype, &r.rdata).is_ok(), "parse kept rdata check_rdata refuses");
    }

    let rendered = zonefile::render(ORIGIN, &records);
    match zonefile::parse(&rendered, ORIGIN) {
        Ok(again) => {
            assert_eq!(records.len(), again.len(), "record count changed; rendered:\n{rendered}");
            for (a, b) in records.iter().zip(&again) {
                assert_eq!(a, b, "record changed; rendered:\n{rendered}");
            }
        }
        Err(err) => panic!("rendered zone does not parse: {err}\n{rendered}"),
    }

    // A zone from these records builds, or is refused for an RRset too
    // large for a message: never a panic.
    let _ = Zone::build(ORIGIN, records, 0);
});
