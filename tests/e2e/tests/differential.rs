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

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use sixgate_e2e::compare::{Difference, Section};
use sixgate_e2e::corpus::{ZoneContent, name_from_wire};
use sixgate_e2e::differential::{self, Case, Mismatch, Options, Target};
use sixgate_e2e::knot::free_port_pair;
use sixgate_e2e::normalize::{Rr, name_wire, name_wire_lower};
use sixgate_e2e::{
    Cli, Knot, QuerySpec, Response, Rng, Sixgate, UdpClient, Unbound, UnboundConfig, ZoneFile, corpus,
    tcp_exchange,
};

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

    /// sixgate answered YXDOMAIN with a DNAME above the query name, or
    /// above a name a CNAME of the answer leads to (a chain), whose
    /// substitution would make a name longer than 255 octets.
    fn dname_overflow(&self) -> bool {
        let Some(sixgate) = &self.sixgate else { return false };
        let Some(question) = sixgate.questions.first() else { return false };
        let mut names = vec![question.name.clone()];
        names.extend(sixgate.answers_of(5).filter_map(|cname| name_from_wire(&cname.rdata)));
        sixgate.rcode() == 6
            && sixgate.answers_of(39).any(|dname| {
                let owner_len = name_wire(&dname.owner).len();
                names.iter().any(|name| {
                    let len = name_wire(name).len();
                    dname.owner.zone_of(name) && len > owner_len && len - owner_len + dname.rdata.len() > 255
                })
            })
    }

    /// Both responses hold the same records, section by section.
    fn same_records(&self) -> bool {
        let (Some(knot), Some(sixgate)) = (&self.knot, &self.sixgate) else { return false };
        let same = |a: &[Rr], b: &[Rr]| a.len() == b.len() && a.iter().all(|rr| b.contains(rr));
        same(&knot.answer, &sixgate.answer)
            && same(&knot.authority, &sixgate.authority)
            && same(&knot.additional, &sixgate.additional)
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
            // A chain that Knot's response cuts short ends, in sixgate's,
            // at a name with an rcode of its own (RFC 6604 §3).
            seen.knot_truncated_alone()
                && seen.sixgate_holds_all_of_knot()
                && (difference.kind == "flags differ in tc"
                    || difference.kind.starts_with("rcode ")
                    || (in_records(difference)
                        && (only_from_sixgate(difference) || difference.kind.ends_with(" record count"))))
        },
    },
    // The same, where both set TC: RFC 2181 §9 has the client discard
    // either and ask again over TCP; sixgate's holds every record Knot's
    // does and more (a DNAME loop's synthesized CNAMEs, say). Where the
    // more is a chain's last link, the rcode is that of the name it ends at
    // (RFC 6604 §3), which Knot's cut-short response never reached.
    Intended {
        doc: "Tighter name compression fits more before the cut",
        applies: |seen, difference| {
            seen.both_truncated()
                && seen.sixgate_holds_all_of_knot()
                && ((in_records(difference)
                    && (only_from_sixgate(difference) || difference.kind.ends_with(" record count")))
                    || difference.kind.starts_with("rcode "))
        },
    },
    // RFC 6672 §2.2: where the substituted name would be longer than 255
    // octets, the answer is YXDOMAIN with the DNAME. Knot 3.2 goes on to
    // answer for the DNAME's target, and at small payloads what it adds
    // no longer fits: it sets TC where sixgate's answer fits.
    Intended {
        doc: "Over-long DNAME substitutions: only Knot truncates",
        applies: |seen, difference| {
            seen.dname_overflow() && seen.knot_truncated_alone() && difference.kind == "flags differ in tc"
        },
    },
    // RFC 4035 §3.1.3: a negative answer with DO carries the NSEC or NSEC3
    // records that prove it, and they are required: where they do not fit,
    // TC is set (RFC 2181 §9). At the end of a long signed CNAME or DNAME
    // chain, with a small payload, neither server fits the SOA; Knot then
    // ends the response there without TC and without the proof, so its
    // chain stops unproven; sixgate sends the same records with TC.
    Intended {
        doc: "Denial proofs that do not fit set TC",
        applies: |seen, difference| {
            let sixgate_only_truncated = seen.sixgate.as_ref().is_some_and(Response::tc)
                && seen.knot.as_ref().is_some_and(|r| !r.tc());
            let unproven_chain = seen.knot.as_ref().is_some_and(|r| {
                let last = r.answer.iter().rev().find(|rr| rr.rtype != 46).map(|rr| rr.rtype);
                matches!(r.rcode(), 0 | 3) && last == Some(5) && r.authority.is_empty()
            });
            seen.dnssec_ok()
                && sixgate_only_truncated
                && unproven_chain
                && seen.same_records()
                && difference.kind == "flags differ in tc"
        },
    },
    // RFC 4035 §3.1.1: signatures of additional-section RRsets are
    // included where they fit and may be left out where they do not. With
    // the tighter compression above, sixgate's response still has room
    // for one that Knot (neither side truncating) leaves out.
    Intended {
        doc: "Tighter name compression leaves room for additional signatures",
        applies: |seen, difference| {
            let neither_truncated =
                seen.knot.as_ref().is_some_and(|r| !r.tc()) && seen.sixgate.as_ref().is_some_and(|r| !r.tc());
            seen.dnssec_ok()
                && neither_truncated
                && seen.sixgate_holds_all_of_knot()
                && difference.kind == "additional RRSIG only from sixgate"
        },
    },
    // RFC 2308 §3: a negative answer carries the SOA. Where it does not
    // fit, both servers leave it out without TC; after a DNAME near the
    // 512-octet limit sixgate's tighter compression leaves room for the SOA
    // (with DO, its proofs too) that Knot, neither side truncating, leaves
    // out.
    Intended {
        doc: "Tighter name compression leaves room for the SOA",
        applies: |seen, difference| {
            let neither_truncated =
                seen.knot.as_ref().is_some_and(|r| !r.tc()) && seen.sixgate.as_ref().is_some_and(|r| !r.tc());
            let knot_no_soa = seen.knot.as_ref().is_some_and(|r| r.authority.is_empty());
            let sixgate_soa =
                seen.sixgate.as_ref().is_some_and(|r| r.authority.iter().any(|rr| rr.rtype == 6));
            neither_truncated
                && knot_no_soa
                && sixgate_soa
                && seen.sixgate_holds_all_of_knot()
                && difference.section == Section::Authority
                && only_from_sixgate(difference)
        },
    },
    // RFC 9471 §3: glue for name servers outside the delegated zone is
    // optional, added where it fits. In a referral (after a DNAME, say)
    // sixgate's tighter compression leaves room for an address of such a
    // name server that Knot, neither side truncating, leaves out.
    Intended {
        doc: "Tighter name compression leaves room for optional glue",
        applies: |seen, difference| {
            let neither_truncated =
                seen.knot.as_ref().is_some_and(|r| !r.tc()) && seen.sixgate.as_ref().is_some_and(|r| !r.tc());
            let referral = seen.sixgate.as_ref().is_some_and(|r| r.authority.iter().any(|rr| rr.rtype == 2));
            neither_truncated
                && referral
                && seen.sixgate_holds_all_of_knot()
                && matches!(
                    difference.kind.as_str(),
                    "additional A only from sixgate" | "additional AAAA only from sixgate"
                )
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
            // The answer's last DNAME has no CNAME synthesized after it
            // (the links of a chain before it have theirs).
            let dname_no_cname = |r: &Response| {
                let last = |t: u16| r.answer.iter().rposition(|rr| rr.rtype == t);
                last(39).is_some_and(|dname| last(5).is_none_or(|cname| cname < dname))
            };
            let sixgate_yxdomain = seen.sixgate.as_ref().is_some_and(|r| {
                r.rcode() == 6 && dname_no_cname(r) && r.authority.is_empty() && r.additional.is_empty()
            });
            // Knot's answer holds sixgate's (the chain up to the DNAME)
            // and what it added for the DNAME's target.
            let knot_went_on = seen.knot.as_ref().is_some_and(|r| {
                // Signatures aside: for type RRSIG Knot answers the
                // target's signatures, not the DNAME's.
                let holds = seen.sixgate.as_ref().is_some_and(|s| {
                    s.answer.iter().filter(|rr| rr.rtype != 46).all(|rr| r.answer.contains(rr))
                });
                matches!(r.rcode(), 3 | 6) && dname_no_cname(r) && holds
            });
            // With DO, what Knot adds may not fit where the DNAME does.
            let knot_only_truncated = seen.knot_truncated_alone() && difference.kind == "flags differ in tc";
            seen.dname_overflow()
                && sixgate_yxdomain
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
    // RFC 7873 §5.2.3: sixgate answers a client cookie with a server
    // cookie; the reference knotd has no cookies module and ignores it.
    // The OPTs are otherwise the same.
    Intended {
        doc: "A COOKIE option is answered with a server cookie",
        applies: |seen, difference| {
            let (Some(knot), Some(sixgate)) = (&seen.knot, &seen.sixgate) else { return false };
            let without_cookie = |r: &Response| {
                let mut opts = r.opt.clone();
                for o in &mut opts {
                    o.options.retain(|(code, _)| *code != 10);
                }
                opts
            };
            let cookie = |r: &Response| r.opt.iter().any(|o| o.options.iter().any(|(c, _)| *c == 10));
            difference.kind == "OPT fields"
                && cookie(sixgate)
                && !cookie(knot)
                && without_cookie(sixgate) == knot.opt
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

/// Zones with data below a DNAME, which RFC 6672 §2.3 makes unreachable
/// (the DNAME redirects every name below its owner): the label, the origin
/// and the zone's records after the SOA and NS.
const BELOW_A_DNAME: &[(&str, &str, &str)] = &[
    ("data right below the DNAME", "bd1.test.", "d DNAME t.bd1.test.\nhost.d A 192.0.2.2\n"),
    (
        "data below an empty non-terminal below the DNAME",
        "bd2.test.",
        "d DNAME t.bd2.test.\nz.y.d TXT \"x\"\n",
    ),
    ("a delegation below the DNAME", "bd3.test.", "d DNAME t.bd3.test.\nsub.d NS ns1.bd3.test.\n"),
    ("a DNAME at the apex", "bd4.test.", "@ DNAME elsewhere.test.\n"),
];

/// A zone with data below a DNAME is refused by knotd, which will not load
/// it ("child record exists under DNAME"), and so by sixgate's import,
/// with an error that names the DNAME, and nothing of it is stored.
#[test]
fn zones_with_data_below_a_dname_are_refused_like_knot() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut zones = Vec::new();
    for (_, origin, records) in BELOW_A_DNAME {
        let text = format!(
            "$ORIGIN {origin}\n$TTL 600\n@ SOA ns1 hostmaster 1 3600 900 604800 120\n@ NS ns1\nns1 A 192.0.2.1\n{records}"
        );
        let path = dir.path().join(format!("{origin}zone"));
        fs::write(&path, text)?;
        zones.push(ZoneFile::new(origin, path));
    }
    let good: Vec<ZoneFile> =
        ZoneFile::all_testdata()?.into_iter().filter(|z| z.origin == "other.test.").collect();
    let mut configured = zones.clone();
    configured.extend(good.iter().cloned());
    let knot = Knot::start_awaiting(&configured, &good)?;
    let cli = Cli::new(dir.path().join("data"))?;
    let mut wrong = Vec::new();
    for ((label, origin, _), zone) in BELOW_A_DNAME.iter().zip(&zones) {
        let refused = sixgate_e2e::wait_until("knotd to refuse the zone", Duration::from_secs(20), || {
            let log = knot.log_text();
            Ok(log
                .lines()
                .find(|l| l.contains(&format!("[{origin}]")) && l.contains("child record exists under DNAME"))
                .map(str::to_owned))
        });
        let query = QuerySpec::parse(origin, 6)?.with_id(0x0d0d).encode()?;
        let answer = UdpClient::new(knot.addr())?.exchange(&query, Duration::from_secs(2), 2)?;
        let knot_rcode = answer.as_deref().map(Response::parse).transpose()?.map(|r| r.rcode());
        if refused.is_err() || knot_rcode != Some(2) {
            wrong.push(format!(
                "{label}: knotd loaded it (SOA rcode {knot_rcode:?}); the test's premise is wrong"
            ));
        }
        let path = zone.path.display().to_string();
        let import = cli.run(&["zone", "import"], &[zone.name(), &path])?;
        if import.success() {
            wrong.push(format!("{label}: sixgate imported it:\n{import}"));
        } else if !import.stderr.to_ascii_lowercase().contains("dname") {
            wrong.push(format!("{label}: sixgate refused it without naming the DNAME:\n{import}"));
        }
    }
    let list = cli.run(&["zone", "list"], &[])?.ok()?;
    for (label, origin, _) in BELOW_A_DNAME {
        let name = origin.trim_end_matches('.');
        if list.stdout.lines().any(|l| l.split('\t').next().is_some_and(|n| n.trim_end_matches('.') == name))
        {
            wrong.push(format!("{label}: {origin} is stored after the refused import:\n{}", list.stdout));
        }
    }
    ensure!(wrong.is_empty(), "{}", wrong.join("\n"));
    Ok(())
}

/// The zones of `testdata/zones/` signed by sixgate and served, and the
/// same zones exported `--as-served` for knotd.
struct Signed {
    // Field order matters: the server stops before its directory goes.
    sixgate: Sixgate,
    exported: Vec<ZoneFile>,
    /// Each zone's DS, as `dnssec enable` printed it: unbound's anchors.
    anchors: Vec<String>,
    _dir: tempfile::TempDir,
}

/// The zones of `testdata/zones/` signed by sixgate: imported into a fresh
/// data directory, `dnssec enable`d (with `--nsec3` when asked) and served
/// on one loopback port for UDP and TCP (so that a resolver can use it as
/// a stub); then exported `--as-served` for knotd, which serves a signed
/// zone file as it is.
fn signed_by_sixgate(nsec3: bool) -> Result<Signed> {
    let dir = tempfile::Builder::new().prefix("sixgate-e2e-signed-").tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    let zones = ZoneFile::all_testdata()?;
    let mut anchors = Vec::new();
    for zone in &zones {
        cli.import(zone)?;
        let mut args = vec![zone.name()];
        if nsec3 {
            args.push("--nsec3");
        }
        let enabled = cli.run(&["dnssec", "enable"], &args)?.ok()?;
        // The DS lines; comment lines after them are for the operator.
        let ds: Vec<String> =
            enabled.stdout.lines().filter(|l| l.contains(" IN DS ")).map(str::to_owned).collect();
        ensure!(!ds.is_empty(), "dnssec enable {} printed no DS:\n{}", zone.name(), enabled.stdout);
        anchors.extend(ds);
    }
    let dns = SocketAddr::from(([127, 0, 0, 1], free_port_pair()?));
    let sixgate = Sixgate::serve_at(cli.clone(), dns, &[]).context("starting sixgate")?;
    let mut exported = Vec::new();
    for zone in &zones {
        let out = cli.run(&["zone", "export"], &[zone.name(), "--as-served"])?.ok()?;
        let path = dir.path().join(format!("{}signed", zone.origin));
        fs::write(&path, &out.stdout).with_context(|| format!("writing {}", path.display()))?;
        exported.push(ZoneFile::new(&zone.origin, path));
    }
    Ok(Signed { sixgate, exported, anchors, _dir: dir })
}

/// The differential test on zones signed by sixgate, every query with DO;
/// then a validating unbound in front of sixgate must find every answer of
/// the validation sample secure. Both parts run and both are reported.
fn signed_zones_answer_like_knot(nsec3: bool) -> Result<()> {
    let Signed { mut sixgate, exported, anchors, _dir } = signed_by_sixgate(nsec3)?;
    let knot = Knot::start(&exported).context("starting the reference knotd on the signed zones")?;
    let (mut rng, seed) = Rng::from_env_or_clock();
    println!("differential seed {seed} (replay: SIXGATE_E2E_SEED={seed})");
    let contents = knot.zone_contents()?;
    let signatures = contents.iter().flat_map(|z| &z.records).filter(|rr| rr.rtype == 46).count();
    ensure!(signatures > 100, "knotd serves only {signatures} RRSIGs from the signed files");
    let mut cases = corpus::build_with(&contents, &mut rng, &corpus::Profile::DNSSEC);
    cases.extend(corpus::handwritten_dnssec("example.test"));
    cases.extend(corpus::handwritten_dnssec("child.example.test"));
    let compared = compare_with_knot(&knot, &mut sixgate, &cases, seed);
    let validated = validated_by_unbound(&sixgate, &knot, &anchors, &contents, &mut rng);
    match (compared, validated) {
        (Ok(()), Ok(summary)) => {
            println!("{summary}");
            Ok(())
        }
        (compared, validated) => {
            let mut message = String::new();
            for error in [compared.err(), validated.err()].into_iter().flatten() {
                message.push_str(&format!("{error:#}\n\n"));
            }
            bail!("{message}(seed {seed})")
        }
    }
}

/// Why a query of the validation sample cannot be answered from the
/// served zones alone, judged by Knot's answer from the same signed zones:
/// a referral (the resolver would go to the child's servers, which are
/// not on loopback), a chain that leaves the served zones or loops, an
/// RCODE other than NOERROR and NXDOMAIN, DS at a CNAME, a chain that takes one DNAME
/// twice (unbound finds that bogus from Knot as from sixgate), DS at an
/// apex whose parent is
/// not served (the resolver asks the parent), or a name starting with a `*`
/// label that owns nothing (`*.x.wild` answered from `*.wild`): unbound
/// finds such an expansion bogus from Knot as from sixgate, since its owner
/// looks like a wildcard owner to the label count of RFC 4035 §5.3.2.
/// `None` keeps the query.
fn left_out(knot: &Knot, spec: &QuerySpec, served: &Served) -> Result<Option<&'static str>> {
    let bytes = tcp_exchange(knot.addr(), &spec.encode()?, Duration::from_secs(5))?
        .with_context(|| format!("knotd closed the connection on {spec}"))?;
    let response = Response::parse(&bytes).with_context(|| format!("knotd's answer to {spec}"))?;
    let qname = name_wire_lower(&spec.name);
    if spec.name.is_wildcard() && !served.owners.contains(&qname) {
        return Ok(Some("a name starting with * that owns nothing"));
    }
    if spec.qtype == 43 && served.apexes.contains(&qname) {
        let parent = name_wire_lower(&spec.name.base_name());
        if !served.apexes.contains(&parent) {
            return Ok(Some("DS at an apex whose parent is not served"));
        }
    }
    // A DS query is the parent side's (RFC 4035 §3.1.4.1); unbound does
    // not follow a CNAME there and answers SERVFAIL.
    if spec.qtype == 43 && response.answer.iter().any(|rr| rr.rtype == 5) {
        return Ok(Some("DS at a CNAME"));
    }
    if !response.aa() || response.authority.iter().any(|rr| rr.rtype == 2) {
        return Ok(Some("a referral"));
    }
    if !matches!(response.rcode(), 0 | 3) {
        return Ok(Some("neither NOERROR nor NXDOMAIN"));
    }
    let dnames: Vec<&Rr> = response.answer.iter().filter(|rr| rr.rtype == 39).collect();
    let mut uses = vec![0usize; dnames.len()];
    let mut name = qname;
    let mut visited = BTreeSet::new();
    while let Some(cname) =
        response.answer.iter().find(|rr| rr.rtype == 5 && name_wire_lower(&rr.owner) == name)
    {
        if !visited.insert(name.clone()) {
            return Ok(Some("a CNAME loop"));
        }
        // A CNAME synthesized from a DNAME above it (RFC 6672 §3.1): the
        // same DNAME twice in one chain is in the message once, and
        // unbound then looks for a cut below it and finds the answer
        // bogus, from Knot as from sixgate.
        let owner = &cname.owner;
        for (dname, count) in dnames.iter().zip(uses.iter_mut()) {
            if dname.owner.zone_of(owner) && name_wire(&dname.owner).len() < name_wire(owner).len() {
                *count += 1;
                if *count > 1 {
                    return Ok(Some("one DNAME twice in a chain"));
                }
            }
        }
        name = name_from_wire(&cname.rdata).map(|n| name_wire_lower(&n)).context("CNAME RDATA")?;
    }
    let answered = response.answer.iter().any(|rr| rr.rtype != 5 && name_wire_lower(&rr.owner) == name);
    let denied = response.authority.iter().any(|rr| rr.rtype == 6);
    if !answered && !denied {
        return Ok(Some("a chain that leaves the served zones"));
    }
    Ok(None)
}

/// The served zones' apexes and owner names, lower-cased wire form.
struct Served {
    apexes: BTreeSet<Vec<u8>>,
    owners: BTreeSet<Vec<u8>>,
}

/// Worker threads asking unbound.
const VALIDATION_THREADS: usize = 4;

/// unbound, with every served zone as a stub at sixgate and each zone's DS
/// as a trust anchor, asked the validation sample
/// ([`corpus::validation_sample`], less what [`left_out`] leaves out):
/// each answer must be NOERROR or NXDOMAIN with AD set (RFC 4035 §3.2.3),
/// or YXDOMAIN, never SERVFAIL, and unbound must log no validation failure. Returns a
/// summary.
fn validated_by_unbound(
    sixgate: &Sixgate,
    knot: &Knot,
    anchors: &[String],
    contents: &[ZoneContent],
    rng: &mut Rng,
) -> Result<String> {
    let server = sixgate.udp_addr();
    ensure!(server == sixgate.tcp_addr(), "sixgate serves UDP and TCP on different ports");
    let config = anchors.iter().fold(
        contents.iter().fold(UnboundConfig::new(), |config, zone| config.stub(&zone.apex.to_ascii(), server)),
        |config, anchor| config.trust_anchor(anchor),
    );
    let unbound = Unbound::start(config)?;
    let served = Served {
        apexes: contents.iter().map(|zone| name_wire_lower(&zone.apex)).collect(),
        owners: contents.iter().flat_map(|zone| &zone.records).map(|rr| name_wire_lower(&rr.owner)).collect(),
    };
    let mut kept = Vec::new();
    let mut skipped: BTreeMap<&str, usize> = BTreeMap::new();
    for spec in corpus::validation_sample(contents, rng) {
        match left_out(knot, &spec, &served)? {
            Some(reason) => *skipped.entry(reason).or_default() += 1,
            None => kept.push(spec),
        }
    }
    ensure!(kept.len() > 200, "only {} queries left to validate; left out: {skipped:?}", kept.len());
    let failures = Mutex::new(Vec::new());
    let chunk = kept.len().div_ceil(VALIDATION_THREADS);
    thread::scope(|scope| {
        for part in kept.chunks(chunk) {
            let (failures, unbound) = (&failures, &unbound);
            scope.spawn(move || {
                let verdicts = part.iter().map(|spec| (spec, ask_validated(unbound.addr(), spec)));
                let bad: Vec<String> = verdicts
                    .filter_map(|(spec, verdict)| match verdict {
                        Ok(None) => None,
                        Ok(Some(why)) => Some(format!("{spec}: {why}")),
                        Err(error) => Some(format!("{spec}: {error:#}")),
                    })
                    .collect();
                if let Ok(mut failures) = failures.lock() {
                    failures.extend(bad);
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_default();
    failures.sort();
    let logged = unbound.validation_failures();
    if !failures.is_empty() || !logged.is_empty() {
        bail!(
            "unbound in front of sixgate: {} of {} answers not secure, {} validation failures logged \
             (left out: {skipped:?}; log {}):\n{}\nvalidation failures:\n{}",
            failures.len(),
            kept.len(),
            logged.len(),
            unbound.log_path().display(),
            failures.iter().take(shown()).cloned().collect::<Vec<_>>().join("\n"),
            logged.iter().take(20).cloned().collect::<Vec<_>>().join("\n"),
        );
    }
    Ok(format!("unbound validated {} answers from sixgate as secure (left out: {skipped:?})", kept.len()))
}

/// Asks unbound `spec` (over TCP if the UDP answer is truncated); `None` if
/// the answer is secure (NOERROR or NXDOMAIN with AD) or YXDOMAIN.
fn ask_validated(resolver: SocketAddr, spec: &QuerySpec) -> Result<Option<String>> {
    let query = spec.encode()?;
    let mut bytes = UdpClient::new(resolver)?
        .exchange(&query, Duration::from_secs(5), 2)?
        .context("unbound did not answer")?;
    if Response::parse(&bytes)?.tc() {
        bytes = tcp_exchange(resolver, &query, Duration::from_secs(5))?.context("unbound closed TCP")?;
    }
    let response = Response::parse(&bytes)?;
    let ad = response.flags & 0x0020 != 0;
    let rcode = response.rcode();
    // YXDOMAIN (RFC 6672 §2.2) is never marked AD by unbound, but it is
    // not bogus either: that would be SERVFAIL.
    if (matches!(rcode, 0 | 3) && ad) || rcode == 6 {
        return Ok(None);
    }
    let status = match rcode {
        0 => "NOERROR".to_owned(),
        2 => "SERVFAIL".to_owned(),
        3 => "NXDOMAIN".to_owned(),
        other => format!("rcode {other}"),
    };
    Ok(Some(format!("{status}{}", if ad { "" } else { " without AD" })))
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
