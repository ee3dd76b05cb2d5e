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
//! summary of the first 50 (`SIXGATE_E2E_SHOW=N` shows N) and the total
//! count.
//!
//! The same comparison runs on the zones signed by sixgate, once with NSEC
//! and once with NSEC3: sixgate imports the zones, `dnssec enable`s them
//! and serves them; `zone export --as-served` hands exactly what it serves
//! to knotd, which serves a signed zone file as it is (no signing of its
//! own). The corpus is built the same way from what Knot loaded (RRSIG,
//! NSEC, NSEC3 and the hashed owner names included), with the DO bit in
//! every query, EDNS 512, 1232 and 4096, and the DNSSEC types asked too.
//!
//! The corpus is seeded; the seed is printed, and `SIXGATE_E2E_SEED=N`
//! replays a run.
//!
//! Where sixgate deliberately differs from Knot, the difference is listed in
//! [`INTENDED`] below, one entry with a comment each, and explained in
//! `docs/differences-from-knot.md`. Nothing else may differ.

use std::fs;

use anyhow::{Context, Result, bail, ensure};
use sixgate_e2e::compare::{Difference, Section};
use sixgate_e2e::differential::{self, Case, Mismatch, Options, Target};
use sixgate_e2e::normalize::Rr;
use sixgate_e2e::{Cli, Knot, Response, Rng, Sixgate, ZoneFile, corpus};

/// A deliberate difference from Knot.
struct Intended {
    /// The heading of its entry in docs/differences-from-knot.md.
    doc: &'static str,
    /// True if this difference in this case is the intended one.
    applies: fn(&Seen<'_>, &Difference) -> bool,
}

/// A mismatching case as the matchers see it: the case and both responses,
/// parsed where they parse.
struct Seen<'m> {
    case: &'m Case,
    knot: Option<Response>,
    sixgate: Option<Response>,
}

impl Seen<'_> {
    /// The query type: from the spec, or from the question echoed by Knot.
    fn qtype(&self) -> Option<u16> {
        match &self.case.spec {
            Some(spec) => Some(spec.qtype),
            None => self.knot.as_ref()?.questions.first().map(|q| q.qtype),
        }
    }

    /// The labels of the query name, lower-cased, leftmost first.
    fn qname_labels(&self) -> Vec<Vec<u8>> {
        let name = match &self.case.spec {
            Some(spec) => Some(spec.name.clone()),
            None => self.knot.as_ref().and_then(|r| r.questions.first().map(|q| q.name.clone())),
        };
        name.map(|n| n.iter().map(<[u8]>::to_ascii_lowercase).collect()).unwrap_or_default()
    }

    /// Both servers answered with the DO bit (the query had it).
    fn dnssec_ok(&self) -> bool {
        let has_do =
            |r: &Option<Response>| r.as_ref().is_some_and(|r| r.opt.first().is_some_and(|o| o.dnssec_ok));
        has_do(&self.knot) && has_do(&self.sixgate)
    }

    /// Knot's response has TC set and sixgate's has not.
    fn knot_truncated_alone(&self) -> bool {
        self.knot.as_ref().is_some_and(Response::tc) && self.sixgate.as_ref().is_some_and(|r| !r.tc())
    }

    /// Every record of Knot's response is in the same section of sixgate's.
    fn sixgate_holds_all_of_knot(&self) -> bool {
        let (Some(knot), Some(sixgate)) = (&self.knot, &self.sixgate) else { return false };
        let holds = |ours: &[Rr], theirs: &[Rr]| theirs.iter().all(|rr| ours.contains(rr));
        holds(&sixgate.answer, &knot.answer)
            && holds(&sixgate.authority, &knot.authority)
            && holds(&sixgate.additional, &knot.additional)
    }

    /// sixgate's authority section holds an NSEC whose RDATA is that of an
    /// NSEC in its answer section.
    fn sixgate_repeats_answer_nsec(&self) -> bool {
        let Some(sixgate) = &self.sixgate else { return false };
        sixgate
            .answers_of(47)
            .any(|answer| sixgate.authority.iter().any(|rr| rr.rtype == 47 && rr.rdata == answer.rdata))
    }

    /// Both responses have TC set.
    fn both_truncated(&self) -> bool {
        self.knot.as_ref().is_some_and(Response::tc) && self.sixgate.as_ref().is_some_and(Response::tc)
    }
}

/// Whether `difference` says an RRset is only in sixgate's response.
fn only_from_sixgate(difference: &Difference) -> bool {
    difference.kind.ends_with("only from sixgate")
}

/// Whether `difference` is in a record section.
fn in_records(difference: &Difference) -> bool {
    matches!(difference.section, Section::Answer | Section::Authority | Section::Additional)
}

/// Every deliberate difference from Knot, in one place. Each entry needs a
/// comment saying why, and an entry of the same name in
/// docs/differences-from-knot.md. Keep matchers narrow: match the case (e.g.
/// [`Seen::qtype`]) *and* the difference (`difference.section`, or
/// `difference.kind` as printed in the report, e.g. `flags differ in cd`).
///
/// Example of the shape (not an actual entry):
///
/// ```text
/// // RFC 4035 §3.1.6: a security-aware server copies CD; Knot clears it.
/// Intended {
///     doc: "CD is copied from the query",
///     applies: |seen, difference| {
///         seen.case.spec.as_ref().is_some_and(|q| q.cd) && difference.kind == "flags differ in cd"
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
    // RFC 5155 §7.2.8: a query with DO for type NSEC3 at an NSEC3 owner
    // name gets that NSEC3 and its RRSIG; Knot answers NXDOMAIN as for any
    // other type there.
    Intended {
        doc: "NSEC3 queries at NSEC3 owner names get the NSEC3",
        applies: |seen, difference| {
            let hashed = seen.qname_labels().first().is_some_and(|label| label.len() == 32);
            // Knot's NXDOMAIN proof (three NSEC3s) may not fit where the
            // one NSEC3 does.
            let knot_only_truncated = seen.knot_truncated_alone() && difference.kind == "flags differ in tc";
            seen.qtype() == Some(50)
                && hashed
                && seen.dnssec_ok()
                && (in_records(difference)
                    || difference.kind == "rcode NXDOMAIN/NOERROR"
                    || knot_only_truncated)
        },
    },
    // RFC 2181 §9: a client that gets TC "should ignore that response,
    // and query again". What a truncated DNSSEC response carries before
    // the cut differs: Knot writes a section's signatures after all of
    // its RRsets, sixgate each RRset's signatures right after it.
    Intended {
        doc: "Truncated DNSSEC responses carry different partial content",
        applies: |seen, difference| seen.both_truncated() && seen.dnssec_ok() && in_records(difference),
    },
    // RFC 1035 §4.1.4 leaves compression to the server. sixgate points
    // every name at the longest suffix already in the message; Knot only
    // at names it has hints for, so near the size limit Knot sets TC where
    // sixgate's response, holding all Knot's records and more, still fits
    // (a DNAME loop's synthesized CNAMEs, say).
    Intended {
        doc: "Tighter name compression fits responses Knot truncates",
        applies: |seen, difference| {
            seen.knot_truncated_alone()
                && seen.sixgate_holds_all_of_knot()
                && (difference.kind == "flags differ in tc"
                    || (in_records(difference) && only_from_sixgate(difference)))
        },
    },
    // RFC 4035 §3.1.3.3: an answer from a wildcard carries the NSEC
    // proving the name itself does not exist. For a query of type NSEC
    // that proof can be the wildcard's own NSEC, which then also answers
    // (under the query name); Knot leaves out the RRset it already put in
    // the message (it compares RDATA, not owners), so its answer cannot be
    // validated. sixgate sends the proof.
    Intended {
        doc: "Wildcard answers of type NSEC carry their proof",
        applies: |seen, difference| {
            seen.qtype() == Some(47)
                && seen.dnssec_ok()
                && difference.section == Section::Authority
                && only_from_sixgate(difference)
                && seen.sixgate_repeats_answer_nsec()
        },
    },
    // RFC 4592 §3.3.1: a query name whose first label is `*` but which is
    // not the wildcard's owner (`*.x.wild` under `*.wild`) is answered by
    // expansion like any other name, so RFC 4035 §3.1.3.3 / RFC 5155
    // §7.2.6 ask for the proof that it does not exist. Knot skips the
    // proof for any query name starting with `*`. sixgate sends it; where
    // it does not fit, sixgate sets TC (required) or has less room for
    // optional additional signatures.
    Intended {
        doc: "Names starting with a * label get wildcard proofs",
        applies: |seen, difference| {
            let star = seen.qname_labels().first().is_some_and(|label| label == b"*");
            let sixgate_only_truncated = seen.sixgate.as_ref().is_some_and(Response::tc)
                && !seen.knot.as_ref().is_some_and(Response::tc);
            star && seen.dnssec_ok()
                && (matches!(difference.section, Section::Authority | Section::Additional)
                    || (difference.kind == "flags differ in tc" && sixgate_only_truncated))
        },
    },
    // RFC 8482 §4.2 answers ANY with one RRset. Knot picks the node's
    // lowest type, RRSIG included, so where every other type is above 46
    // (CAA, HTTPS, SVCB, TLSA, and NSEC in an NSEC zone) it answers with
    // the RRSIG RRset alone: signatures without the data they cover, which
    // no validator can use (RRSIGs are not signed themselves, RFC 4035
    // §2.2). sixgate answers with the lowest type other than RRSIG and its
    // signatures (and that RRset's additional records).
    Intended {
        doc: "ANY is answered with an RRset, not its signatures alone",
        applies: |seen, difference| {
            let knot_only_rrsigs = seen
                .knot
                .as_ref()
                .is_some_and(|r| !r.answer.is_empty() && r.answer.iter().all(|rr| rr.rtype == 46));
            seen.qtype() == Some(255)
                && seen.dnssec_ok()
                && knot_only_rrsigs
                && matches!(difference.section, Section::Answer | Section::Additional)
        },
    },
    // RFC 6672 §2.2: a substitution over 255 octets is YXDOMAIN with the
    // DNAME (and its RRSIG) as the proof. Knot 3.2 then resolves the
    // DNAME's target name as if it were a CNAME target: for a target in
    // the zone it adds the SOA and proofs, the target's own records, or
    // turns the answer into NXDOMAIN. It never synthesizes the CNAME.
    Intended {
        doc: "Over-long DNAME substitutions are answered with the DNAME alone",
        applies: |seen, difference| {
            let dname_no_cname = |r: &Response| {
                r.answer.iter().any(|rr| rr.rtype == 39) && !r.answer.iter().any(|rr| rr.rtype == 5)
            };
            let sixgate_yxdomain = seen.sixgate.as_ref().is_some_and(|r| {
                r.rcode() == 6 && dname_no_cname(r) && r.authority.is_empty() && r.additional.is_empty()
            });
            let knot_went_on =
                seen.knot.as_ref().is_some_and(|r| matches!(r.rcode(), 3 | 6) && dname_no_cname(r));
            // With DO, what Knot adds may not fit where the DNAME does.
            let knot_only_truncated = seen.knot_truncated_alone() && difference.kind == "flags differ in tc";
            sixgate_yxdomain
                && knot_went_on
                && (matches!(difference.section, Section::Answer | Section::Authority)
                    || difference.kind == "rcode NXDOMAIN/YXDOMAIN"
                    || knot_only_truncated)
        },
    },
    // RFC 6891 §6.1.1: a request with an OPT gets one back; §7: a FORMERR
    // for a fault in the OPT itself "MUST include an OPT record". Knot 3.2
    // sends its FORMERR without one (crafted cases: two OPT records, an
    // option longer than its RDATA).
    Intended {
        doc: "A FORMERR keeps the query's OPT",
        applies: |seen, difference| {
            let formerr = |r: &Option<Response>| r.as_ref().is_some_and(|r| r.rcode() == 1);
            seen.case.spec.is_none()
                && formerr(&seen.knot)
                && formerr(&seen.sixgate)
                && difference.kind == "OPT only from sixgate"
        },
    },
    // RFC 6891 §6.1.2: the OPT's owner "MUST be 0 (root domain)"; a fault
    // in the OPT is a FORMERR with an OPT (§7). Knot 3.2 ignores the owner
    // and answers. The corpus has one such crafted query (the owner is a
    // pointer to the question name).
    Intended {
        doc: "An OPT owned by a name other than the root is a FORMERR",
        applies: |seen, _| {
            let sixgate_formerr = seen.sixgate.as_ref().is_some_and(|r| {
                r.rcode() == 1 && !r.opt.is_empty() && r.answer.is_empty() && r.authority.is_empty()
            });
            seen.case.spec.is_none() && seen.case.label == "OPT owner is not the root" && sixgate_formerr
        },
    },
];

/// Drops every difference an [`INTENDED`] entry covers; returns what is left
/// and how many differences were excused, per entry.
fn without_intended(mismatches: Vec<Mismatch>) -> (Vec<Mismatch>, Vec<(&'static str, usize)>) {
    let mut excused = vec![0usize; INTENDED.len()];
    let mut left = Vec::new();
    for mut mismatch in mismatches {
        let [knot, sixgate] = &mismatch.responses;
        let parse = |r: &Option<Vec<u8>>| r.as_deref().and_then(|bytes| Response::parse(bytes).ok());
        let seen = Seen { case: &mismatch.case, knot: parse(knot), sixgate: parse(sixgate) };
        let mut kept = Vec::new();
        for difference in &mismatch.differences {
            match INTENDED.iter().position(|i| (i.applies)(&seen, difference)) {
                Some(index) => {
                    if let Some(count) = excused.get_mut(index) {
                        *count += 1;
                    }
                }
                None => kept.push(difference.clone()),
            }
        }
        mismatch.differences = kept;
        if !mismatch.differences.is_empty() {
            left.push(mismatch);
        }
    }
    let tally = INTENDED.iter().map(|i| i.doc).zip(excused).collect();
    (left, tally)
}

/// How many mismatches a failing run shows: `SIXGATE_E2E_SHOW`, or 50.
fn shown() -> usize {
    std::env::var("SIXGATE_E2E_SHOW").ok().and_then(|v| v.parse().ok()).unwrap_or(50)
}

/// Sends `cases` to `knot` and `sixgate`, drops the [`INTENDED`]
/// differences, and fails on anything else.
fn compare_with_knot(knot: &Knot, sixgate: &mut Sixgate, cases: &[Case], seed: u64) -> Result<()> {
    println!("{} cases", cases.len());
    let targets = [
        Target::new("knot", knot.addr(), knot.addr()),
        Target::new("sixgate", sixgate.udp_addr(), sixgate.tcp_addr()),
    ];
    let mut report = differential::run(cases, [&targets[0], &targets[1]], &Options::default());
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
            report.render(shown())
        );
    }
    println!("{}", report.render(50));
    Ok(())
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
    compare_with_knot(&knot, &mut sixgate, &cases, seed)
}

/// The zones of `testdata/zones/` signed by sixgate: imported into a fresh
/// data directory, `dnssec enable`d (with `--nsec3` when asked) and served;
/// then exported `--as-served` for knotd, which serves a signed zone file
/// as it is. Returns the directory holding both, the server and the
/// exported zones (in that order, so that the directory outlives the
/// server when the bindings drop).
fn signed_by_sixgate(nsec3: bool) -> Result<(tempfile::TempDir, Sixgate, Vec<ZoneFile>)> {
    let dir = tempfile::Builder::new().prefix("sixgate-e2e-signed-").tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    let zones = ZoneFile::all_testdata()?;
    for zone in &zones {
        cli.import(zone)?;
        let mut args = vec![zone.name()];
        if nsec3 {
            args.push("--nsec3");
        }
        cli.run(&["dnssec", "enable"], &args)?.ok()?;
    }
    let sixgate = Sixgate::serve(cli.clone()).context("starting sixgate")?;
    let mut exported = Vec::new();
    for zone in &zones {
        let out = cli.run(&["zone", "export"], &[zone.name(), "--as-served"])?.ok()?;
        let path = dir.path().join(format!("{}signed", zone.origin));
        fs::write(&path, &out.stdout).with_context(|| format!("writing {}", path.display()))?;
        exported.push(ZoneFile::new(&zone.origin, path));
    }
    Ok((dir, sixgate, exported))
}

/// The differential test on zones signed by sixgate, every query with DO.
fn signed_zones_answer_like_knot(nsec3: bool) -> Result<()> {
    let (_dir, mut sixgate, exported) = signed_by_sixgate(nsec3)?;
    let knot = Knot::start(&exported).context("starting the reference knotd on the signed zones")?;
    let (mut rng, seed) = Rng::from_env_or_clock();
    println!("differential seed {seed} (replay: SIXGATE_E2E_SEED={seed})");
    let contents = knot.zone_contents()?;
    let signatures = contents.iter().flat_map(|z| &z.records).filter(|rr| rr.rtype == 46).count();
    ensure!(signatures > 100, "knotd serves only {signatures} RRSIGs from the signed files");
    let mut cases = corpus::build_with(&contents, &mut rng, &corpus::Profile::DNSSEC);
    cases.extend(corpus::handwritten_dnssec("example.test"));
    cases.extend(corpus::handwritten_dnssec("child.example.test"));
    compare_with_knot(&knot, &mut sixgate, &cases, seed)
}

#[test]
fn sixgate_signed_nsec_answers_like_knot() -> Result<()> {
    signed_zones_answer_like_knot(false)
}

#[test]
fn sixgate_signed_nsec3_answers_like_knot() -> Result<()> {
    signed_zones_answer_like_knot(true)
}

/// Every [`INTENDED`] entry has its section in docs/differences-from-knot.md.
#[test]
fn every_intended_difference_is_documented() -> Result<()> {
    let path = sixgate_e2e::process::workspace_root().join("docs/differences-from-knot.md");
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    for intended in INTENDED {
        ensure!(
            text.lines().any(|line| line == format!("### {}", intended.doc)),
            "{} has no section \"### {}\"",
            path.display(),
            intended.doc
        );
    }
    Ok(())
}
