//! The validating unbound of the DNSSEC tests, proved against zones signed
//! here with ldnsutils and served as they are by a private knotd.
//!
//! The chain: the trust anchor is the KSK of `parent.test.`, which delegates
//! - `child.parent.test.`, signed, with its DS in the parent: secure;
//! - `insecure.parent.test.`, unsigned, no DS: insecure;
//! - `bad.parent.test.`, signed, but the parent's DS is for another key:
//!   bogus, the case that proves the harness can fail;
//! - `future.parent.test.`, signed with signatures valid only from 100 to
//!   200 days from now: bogus, unless unbound's validation clock is moved
//!   into that window.
//!
//! Every zone is a stub zone of unbound at knotd's address, since unbound
//! follows referrals only to port 53.

use std::net::SocketAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Result, ensure};
use sixgate_e2e::knot::Knot;
use sixgate_e2e::ldns::{Key, Validity, sign_zone, unsigned_zone};
use sixgate_e2e::{Unbound, UnboundConfig};

const DAY: u64 = 86_400;

/// The zones, knotd serving them, and the trust anchor's key.
struct Chain {
    // Field order matters: knotd stops before its zone files go.
    knot: Knot,
    parent_ksk: Key,
    _dir: tempfile::TempDir,
}

impl Chain {
    fn build() -> Result<Self> {
        let dir = tempfile::Builder::new().prefix("sixgate-e2e-chain-").tempdir()?;
        let d = dir.path();
        let now = now()?;
        let current = Validity { inception: now - DAY, expiration: now + 400 * DAY };
        let future = Validity { inception: now + 100 * DAY, expiration: now + 200 * DAY };

        let child_key = Key::generate(d, "child.parent.test", true)?;
        let bad_key = Key::generate(d, "bad.parent.test", true)?;
        let bad_other_key = Key::generate(d, "bad.parent.test", true)?;
        let future_key = Key::generate(d, "future.parent.test", true)?;
        let parent_ksk = Key::generate(d, "parent.test", true)?;
        let parent_zsk = Key::generate(d, "parent.test", false)?;

        let zones = vec![
            sign_zone(d, "child.parent.test", &leaf("child.parent.test."), &[&child_key], Some(current))?,
            sign_zone(d, "bad.parent.test", &leaf("bad.parent.test."), &[&bad_key], Some(current))?,
            sign_zone(d, "future.parent.test", &leaf("future.parent.test."), &[&future_key], Some(future))?,
            unsigned_zone(
                d,
                "insecure.parent.test",
                &format!("{}out CNAME www.example.com.\n", leaf("insecure.parent.test.")),
            )?,
            sign_zone(
                d,
                "parent.test",
                &format!(
                    "$ORIGIN parent.test.\n$TTL 300\n\
                     @ SOA ns.parent.test. hostmaster.parent.test. 1 3600 900 604800 300\n\
                     @ NS ns\n\
                     ns A 127.0.0.1\n\
                     www A 192.0.2.2\n\
                     child NS ns\n{}\n\
                     bad NS ns\n{}\n\
                     future NS ns\n{}\n\
                     insecure NS ns\n",
                    child_key.ds()?,
                    // The tamper: a DS for a key that signs nothing.
                    bad_other_key.ds()?,
                    future_key.ds()?,
                ),
                &[&parent_ksk, &parent_zsk],
                Some(current),
            )?,
        ];
        let knot = Knot::start(&zones)?;
        Ok(Self { knot, parent_ksk, _dir: dir })
    }

    /// unbound with every zone of the chain as a stub at knotd, trusting
    /// the parent's KSK through its DS.
    fn unbound_config(&self) -> Result<UnboundConfig> {
        let server = self.knot.addr();
        Ok(stubs(server).trust_anchor(&self.parent_ksk.ds()?))
    }
}

fn stubs(server: SocketAddr) -> UnboundConfig {
    ["parent.test", "child.parent.test", "bad.parent.test", "future.parent.test", "insecure.parent.test"]
        .iter()
        .fold(UnboundConfig::new(), |config, zone| config.stub(zone, server))
}

/// A small zone at `origin`: an address, a wildcard, a TXT record.
fn leaf(origin: &str) -> String {
    format!(
        "$ORIGIN {origin}\n$TTL 300\n\
         @ SOA ns.parent.test. hostmaster.parent.test. 1 3600 900 604800 300\n\
         @ NS ns.parent.test.\n\
         www A 192.0.2.1\n\
         *.wild A 192.0.2.7\n\
         txt TXT \"hello\"\n"
    )
}

fn now() -> Result<u64> {
    Ok(SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs())
}

#[test]
fn positive_nxdomain_nodata_and_wildcard_answers_of_a_signed_child_are_secure() -> Result<()> {
    let chain = Chain::build()?;
    let unbound = Unbound::start(chain.unbound_config()?)?;

    let dig = unbound.expect_secure("www.child.parent.test", "A", "NOERROR")?;
    ensure!(dig.data("A") == ["192.0.2.1"], "{dig}");
    unbound.expect_secure("www.parent.test", "A", "NOERROR")?;

    let dig = unbound.expect_secure("nothing.child.parent.test", "A", "NXDOMAIN")?;
    ensure!(dig.answer.is_empty(), "{dig}");

    let dig = unbound.expect_secure("www.child.parent.test", "AAAA", "NOERROR")?;
    ensure!(dig.answer.is_empty(), "NODATA expected:\n{dig}");

    let dig = unbound.expect_secure("anything.wild.child.parent.test", "A", "NOERROR")?;
    ensure!(dig.data("A") == ["192.0.2.7"], "{dig}");
    // RFC 4035 §5.3.4: the RRSIG of a wildcard expansion has fewer labels
    // than the owner (4 for *.wild.child.parent.test, owner has 5).
    let labels = dig.data("RRSIG").first().and_then(|d| d.split_whitespace().nth(2).map(str::to_owned));
    ensure!(labels.as_deref() == Some("4"), "wildcard RRSIG labels {labels:?}\n{dig}");

    ensure!(unbound.validation_failures().is_empty(), "{:?}", unbound.validation_failures());
    Ok(())
}

#[test]
fn a_delegation_without_ds_is_insecure_and_its_absence_is_proved_securely() -> Result<()> {
    let chain = Chain::build()?;
    let unbound = Unbound::start(chain.unbound_config()?)?;

    let dig = unbound.expect_insecure("www.insecure.parent.test", "A", "NOERROR")?;
    ensure!(dig.data("A") == ["192.0.2.1"], "{dig}");
    // The parent's NSEC proves there is no DS (RFC 4035 §5.2).
    let dig = unbound.expect_secure("insecure.parent.test", "DS", "NOERROR")?;
    ensure!(dig.answer.is_empty(), "{dig}");
    Ok(())
}

#[test]
fn a_ds_for_another_key_makes_the_child_bogus() -> Result<()> {
    let chain = Chain::build()?;
    let unbound = Unbound::start(chain.unbound_config()?)?;

    let reason = unbound.expect_bogus("www.bad.parent.test", "A")?;
    ensure!(reason.contains("no keys have a DS"), "unexpected reason: {reason}");
    // And the harness says so when a secure answer was expected.
    let mut unbound = unbound;
    unbound.flush()?;
    let error = unbound.expect_secure("www.bad.parent.test", "A", "NOERROR").unwrap_err().to_string();
    ensure!(
        error.contains("got SERVFAIL") && error.contains("validation failure <www.bad.parent.test."),
        "{error}"
    );
    // The rest of the chain is unaffected.
    unbound.expect_secure("www.child.parent.test", "A", "NOERROR")?;
    Ok(())
}

#[test]
fn val_override_date_moves_the_validation_clock_into_the_signature_window() -> Result<()> {
    let chain = Chain::build()?;
    let mut unbound = Unbound::start(chain.unbound_config()?)?;

    let reason = unbound.expect_bogus("www.future.parent.test", "A")?;
    ensure!(reason.contains("before inception"), "unexpected reason: {reason}");

    // 150 days on: inside the child's window and still inside the parent's.
    // The reload also drops the cached bogus answer.
    unbound.set_override_date(Some(now()? + 150 * DAY))?;
    unbound.expect_secure("www.future.parent.test", "A", "NOERROR")?;

    // 300 days on: past the child's expiration.
    unbound.set_override_date(Some(now()? + 300 * DAY))?;
    let reason = unbound.expect_bogus("www.future.parent.test", "A")?;
    ensure!(reason.contains("expired"), "unexpected reason: {reason}");

    // Started with the override, too.
    let config = chain.unbound_config()?.override_date(now()? + 150 * DAY);
    let unbound = Unbound::start(config)?;
    unbound.expect_secure("www.future.parent.test", "A", "NOERROR")?;
    Ok(())
}

#[test]
fn flush_empties_the_cache() -> Result<()> {
    let chain = Chain::build()?;
    let mut unbound = Unbound::start(chain.unbound_config()?)?;

    unbound.expect_secure("www.child.parent.test", "A", "NOERROR")?;
    let cached = unbound.control(&["dump_cache"])?;
    ensure!(cached.contains("www.child.parent.test."), "not cached:\n{cached}");
    unbound.flush()?;
    let cached = unbound.control(&["dump_cache"])?;
    ensure!(!cached.contains("child.parent.test."), "still cached after flush:\n{cached}");
    unbound.expect_secure("www.child.parent.test", "A", "NOERROR")?;
    Ok(())
}

#[test]
fn unbound_asks_nothing_but_the_stubs_on_loopback() -> Result<()> {
    let chain = Chain::build()?;
    let server = chain.knot.addr();
    // verbosity 3 logs every query sent upstream; the anchor is the DNSKEY
    // this time.
    let config = stubs(server).trust_anchor(&chain.parent_ksk.dnskey()?).verbosity(3);
    let unbound = Unbound::start(config)?;

    unbound.expect_secure("www.child.parent.test", "A", "NOERROR")?;
    // A CNAME out of the stubs: unbound would have to start from the root,
    // whose addresses it may not query.
    let dig = unbound.query("out.insecure.parent.test", "A")?;
    ensure!(dig.status == "SERVFAIL" && dig.data("A").is_empty(), "{dig}");
    // Outside the stubs, questions are refused without resolving.
    let dig = unbound.query("www.example.com", "A")?;
    ensure!(dig.status == "REFUSED", "{dig}");

    let log = unbound.log_text();
    let targets: Vec<&str> = log.lines().filter_map(|l| l.split("sending to target: ").nth(1)).collect();
    ensure!(!targets.is_empty(), "no upstream query logged; log {}", unbound.log_path().display());
    let stub = format!("127.0.0.1#{}", server.port());
    let elsewhere: Vec<&&str> = targets.iter().filter(|t| !t.ends_with(&stub)).collect();
    ensure!(elsewhere.is_empty(), "queries sent elsewhere than {stub}: {elsewhere:?}");
    // It did try the root (the CNAME), and stopped at the address list.
    ensure!(
        log.contains("priming . IN NS"),
        "no root priming attempted; log {}",
        unbound.log_path().display()
    );
    Ok(())
}
