//! The differential test: sixgate must answer like Knot.
//!
//! One knotd and one sixgate load the same zone files (`testdata/zones/`).
//! The corpus is generated from the records Knot loaded (see
//! `sixgate_e2e::corpus`): every owner name, nonexistent names, names under
//! wildcards, × many query types, × EDNS off/512/1232/4096 × DO off/on, with
//! random 0x20 case, mostly over UDP and partly over TCP; plus hand-written
//! cases (EDNS versions, opcodes, classes, names in no zone, odd flags and
//! malformed messages where Knot does what sixgate must). Every case goes to
//! both servers; every difference is collected and the test fails with a
//! summary of the first 50 and the total count.
//!
//! The corpus is seeded; the seed is printed, and `SIXGATE_E2E_SEED=N`
//! replays a run.
//!
//! Where sixgate deliberately differs from Knot, the difference is listed in
//! [`INTENDED`] below, one entry with a comment each, and explained in
//! `docs/differences-from-knot.md`. Nothing else may differ.

use anyhow::{Context, Result, bail};
use sixgate_e2e::compare::Difference;
use sixgate_e2e::differential::{self, Case, Mismatch, Options, Target};
use sixgate_e2e::{Knot, Rng, Sixgate, ZoneFile, corpus};

/// A deliberate difference from Knot.
struct Intended {
    /// The heading of its entry in docs/differences-from-knot.md.
    doc: &'static str,
    /// True if this difference in this case is the intended one.
    applies: fn(&Case, &Difference) -> bool,
}

/// Every deliberate difference from Knot, in one place. Each entry needs a
/// comment saying why, and an entry of the same name in
/// docs/differences-from-knot.md. Keep matchers narrow: match the case (e.g.
/// `case.spec` qtype) *and* the difference (`difference.section`, or
/// `difference.kind` as printed in the report, e.g. `flags differ in cd`).
///
/// Example of the shape (not an actual entry):
///
/// ```text
/// // RFC 4035 §3.1.6: a security-aware server copies CD; Knot clears it.
/// Intended {
///     doc: "CD is copied from the query",
///     applies: |case, difference| {
///         case.spec.as_ref().is_some_and(|q| q.cd) && difference.kind == "flags differ in cd"
///     },
/// },
/// ```
const INTENDED: &[Intended] = &[
    // RFC 4035 §3.1.6: "The name server side MUST copy the setting of the
    // CD bit from a query to the corresponding response." Knot 3.2 clears it.
    Intended {
        doc: "CD is copied from the query",
        // Crafted cases (every bit set) have no spec, so match on the
        // difference alone: only CD, nothing else.
        applies: |_, difference| difference.kind == "flags differ in cd",
    },
];

/// Drops every difference an [`INTENDED`] entry covers; returns what is left
/// and how many differences were excused, per entry.
fn without_intended(mismatches: Vec<Mismatch>) -> (Vec<Mismatch>, Vec<(&'static str, usize)>) {
    let mut excused = vec![0usize; INTENDED.len()];
    let mut left = Vec::new();
    for mut mismatch in mismatches {
        let case = mismatch.case.clone();
        mismatch.differences.retain(|difference| {
            match INTENDED.iter().position(|i| (i.applies)(&case, difference)) {
                Some(index) => {
                    if let Some(count) = excused.get_mut(index) {
                        *count += 1;
                    }
                    false
                }
                None => true,
            }
        });
        if !mismatch.differences.is_empty() {
            left.push(mismatch);
        }
    }
    let tally = INTENDED.iter().map(|i| i.doc).zip(excused).collect();
    (left, tally)
}

#[test]
fn sixgate_answers_like_knot() -> Result<()> {
    let zones = ZoneFile::all_testdata()?;
    let knot = Knot::start(&zones).context("starting the reference knotd")?;
    let mut sixgate = Sixgate::start(&zones).context("starting sixgate")?;
    let (mut rng, seed) = Rng::from_env_or_clock();
    println!("differential seed {seed} (replay: SIXGATE_E2E_SEED={seed})");

    let mut cases = corpus::build(&knot.zone_contents()?, &mut rng);
    cases.extend(corpus::handwritten("example.test"));
    cases.extend(corpus::handwritten("child.example.test"));
    println!("{} cases", cases.len());

    let targets = [
        Target::new("knot", knot.addr(), knot.addr()),
        Target::new("sixgate", sixgate.udp_addr(), sixgate.tcp_addr()),
    ];
    let mut report = differential::run(&cases, [&targets[0], &targets[1]], &Options::default());
    let (left, excused) = without_intended(std::mem::take(&mut report.mismatches));
    report.mismatches = left;
    for (doc, count) in excused {
        println!("intended difference {doc:?}: {count} excused");
    }
    if !sixgate.is_running() {
        bail!("sixgate died during the differential run:\n{}", sixgate.stderr_tail(40));
    }
    if !report.is_clean() {
        bail!(
            "sixgate differs from Knot (seed {seed}; replay with SIXGATE_E2E_SEED={seed}):\n{}",
            report.render(50)
        );
    }
    println!("{}", report.render(50));
    Ok(())
}
