//! Key rollovers in simulated time, checked by a real validator at every
//! step.
//!
//! A parent zone and a child zone, both signed by sixgate, are served by
//! one `sixgate serve` whose own maintenance is off. The test drives time:
//! every step restarts the server on the simulated clock (it checks every
//! signed version against that clock before serving it), runs
//! `sixgate dnssec maintain` with `SIXGATE_CLOCK` set to the simulated time (the child's keys move, the parent's DS RRset is
//! asked of the running server like any parent), plays the registry (it
//! copies the child's CDS into the parent's DS RRset, on time or days
//! late), and then checks the child in two independent ways:
//!
//! - unbound, with `val-override-date` at the simulated time and a flushed
//!   cache, asks for answers in the child: each must be secure (insecure
//!   before the parent has a DS), with unbound's reason on failure;
//! - sixgate's sans-IO validator (`sixgate_dnssec::validate`) with a
//!   TTL-aware resolver cache: resolvers that cached the DS and DNSKEY
//!   RRsets and the answers at any earlier moment within the caches' reach
//!   (every time the served zones changed) resolve at the step's time.
//!   Real rollover failures come from cached old keys and signatures; no
//!   such combination may be bogus.
//!
//! With a follower ([`Lab::start_followed`]), a knotd secondary carries
//! both zones by NOTIFY and IXFR from the restarting server, and a second
//! unbound validates against knotd alone at every step: several sites
//! serve one key set through a rollover.
//!
//! `ROLLOVER_DEBUG=1` prints the keys at every step.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result, bail, ensure};
use sixgate_dns::catalog::Catalog;
use sixgate_dns::zone::Zone;
use sixgate_dnssec::validate::{Resolver, Timeline, Verdict};
use sixgate_e2e::process::require_program;
use sixgate_e2e::secondary::{Peer, Secondary, SecondaryConfig, XfrKind};
use sixgate_e2e::{Cli, CliOutput, Sixgate, Unbound, UnboundConfig, ZoneFile};

const PARENT: &str = "$ORIGIN parent.test.
$TTL 3600
@         SOA  ns1 hostmaster 1 7200 3600 1209600 300
@         NS   ns1
ns1       A    127.0.0.1
child     NS   ns1.parent.test.
";

const CHILD: &str = "$ORIGIN child.parent.test.
$TTL 600
@         SOA  ns1.parent.test. hostmaster 1 7200 3600 1209600 300
@         NS   ns1.parent.test.
www       AAAA 2001:db8::80
";

/// What is asked at every step, and the status each must have.
const QUERIES: [(&str, &str, &str); 4] = [
    ("child.parent.test.", "DNSKEY", "NOERROR"),
    ("www.child.parent.test.", "AAAA", "NOERROR"),
    ("nope.child.parent.test.", "A", "NXDOMAIN"),
    ("www.child.parent.test.", "TXT", "NOERROR"),
];

/// Most steps one phase may take before the test gives up.
const MAX_STEPS: usize = 300;
const DAY: u64 = 86_400;

/// A key as `dnssec status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Key {
    role: String,
    tag: u16,
    algorithm: String,
    state: String,
}

struct Lab {
    _dir: tempfile::TempDir,
    cli: Cli,
    server: Option<Sixgate>,
    config: std::path::PathBuf,
    addr: SocketAddr,
    /// The child's next key event, from the last maintenance.
    next_key: Option<u64>,
    unbound: Unbound,
    /// Simulated time, Unix seconds.
    now: u64,
    /// How long the registry takes to act on a CDS change.
    registry_delay: u64,
    /// A DS set the registry will install at a time.
    pending: Option<(u64, Vec<String>)>,
    /// The DS set the parent has.
    installed: Vec<String>,
    steps: usize,
    /// The served child and parent zones, each from the time it appeared.
    history: Timeline<Catalog>,
    /// The times the served zones changed, and the text they were.
    changes: Vec<u64>,
    last_served: String,
    /// The largest TTL in any served version of either zone: no cached
    /// entry outlives it, so a cache filled longer ago than that is empty.
    max_ttl: u64,
    /// The cache model has checked every moment up to here.
    model_checked: u64,
    /// A knotd secondary of both zones, and a validator that asks it alone.
    follower: Option<Follower>,
}

/// A secondary that follows the lab's server, judged by its own validator.
struct Follower {
    knot: Secondary,
    unbound: Unbound,
}

/// How far back before now the cache model looks for changes: a step
/// (at most a day) plus longer than every TTL in these zones (3600 at
/// most, checked as the zones are recorded) and the validator's caps.
const CACHE_REACH: u64 = 2 * DAY;

fn write(dir: &Path, name: &str, text: &str) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    fs::write(&path, text)?;
    Ok(path)
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` as printed by `dnssec status` and
/// `dnssec maintain`.
fn parse_time(t: &str) -> Option<u64> {
    sixgate_e2e::aname::rfc3339_utc(t).ok().and_then(|s| u64::try_from(s).ok())
}

impl Lab {
    fn start(enable_args: &[&str], registry_delay: u64) -> Result<Lab> {
        Lab::start_with(enable_args, registry_delay, false)
    }

    /// [`Lab::start`] with a knotd secondary following both zones.
    fn start_followed(enable_args: &[&str], registry_delay: u64) -> Result<Lab> {
        Lab::start_with(enable_args, registry_delay, true)
    }

    fn start_with(enable_args: &[&str], registry_delay: u64, followed: bool) -> Result<Lab> {
        require_program("unbound", "unbound")?;
        let dir = tempfile::tempdir()?;
        let cli = Cli::new(dir.path().join("data"))?;
        for (origin, text) in [("parent.test.", PARENT), ("child.parent.test.", CHILD)] {
            cli.import(&ZoneFile::new(origin, write(dir.path(), &format!("{origin}zone"), text)?))?;
        }
        let enabled = cli.run(&["dnssec", "enable"], &["parent.test."])?.ok()?.stdout;
        // The DS lines, without the "; publish-after" comments.
        let parent_ds = enabled.lines().filter(|l| !l.starts_with(';')).collect::<Vec<_>>().join("\n");
        let mut args = vec!["child.parent.test."];
        args.extend_from_slice(enable_args);
        cli.run(&["dnssec", "enable"], &args)?.ok()?;
        let port = sixgate_e2e::knot::free_port_pair()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let now = cli.run(&["dnssec", "status"], &["child.parent.test."])?.ok()?;
        let now = now
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("key\t"))
            .and_then(|l| l.split('\t').find_map(|f| f.strip_prefix("published ")))
            .and_then(parse_time)
            .context("the key's publication time")?;
        let validator = |server: SocketAddr| {
            UnboundConfig::new()
                .stub("parent.test.", server)
                .stub("child.parent.test.", server)
                .trust_anchor(&parent_ds)
                .override_date(now)
        };
        let unbound = Unbound::start(validator(addr))?;
        let follower = match followed {
            true => {
                let config =
                    SecondaryConfig::new(addr).with_zone("parent.test.").with_zone("child.parent.test.");
                let knot = Secondary::start(Peer::Knot, &config)?;
                // Every zone, no key: transfers from its address.
                cli.run(&["secondary", "add"], &[&knot.addr().to_string()])?.ok()?;
                let unbound = Unbound::start(validator(knot.addr()))?;
                Some(Follower { knot, unbound })
            }
            false => None,
        };
        let config = write(dir.path(), "sixgate.toml", "[dnssec]\nmaintain = false\n")?;
        let mut lab = Lab {
            _dir: dir,
            cli,
            server: None,
            config,
            addr,
            next_key: None,
            unbound,
            now,
            registry_delay,
            pending: None,
            installed: Vec::new(),
            steps: 0,
            history: Timeline::new(),
            changes: Vec::new(),
            last_served: String::new(),
            max_ttl: 0,
            model_checked: 0,
            follower,
        };
        lab.restart()?;
        lab.next_key = lab.maintain()?;
        Ok(lab)
    }

    /// (Re)starts the server on the simulated clock.
    fn restart(&mut self) -> Result<()> {
        self.server = None;
        let clock = self.now.to_string();
        let config = self.config.display().to_string();
        let server = Sixgate::serve_at_env(
            self.cli.clone(),
            self.addr,
            &["--config", &config],
            &[("SIXGATE_CLOCK", &clock)],
        )?;
        self.server = Some(server);
        Ok(())
    }

    fn run(&self, command: &[&str], args: &[&str]) -> Result<CliOutput> {
        let clock = self.now.to_string();
        self.cli.run_env(&[("SIXGATE_CLOCK", &clock)], command, args)?.ok()
    }

    /// The child's CDS records (presentation rdata), as served: `None`
    /// without CDS, an empty list for the "delete" CDS.
    fn cds(&self) -> Result<Option<Vec<String>>> {
        let out = self.run(&["zone", "export"], &["child.parent.test.", "--as-served"])?;
        let cds: Vec<String> = out
            .stdout
            .lines()
            .filter_map(|l| l.split_once(" IN CDS ").map(|(_, rd)| rd.to_owned()))
            .collect();
        if cds.is_empty() {
            return Ok(None);
        }
        if cds.iter().any(|c| c.starts_with("0 0 0 ")) {
            return Ok(Some(Vec::new()));
        }
        Ok(Some(cds))
    }

    /// The registry: takes a CDS change `registry_delay` after it appears
    /// into the parent's DS RRset (RFC 7344 automation).
    fn registry(&mut self) -> Result<()> {
        if let Some(mut wanted) = self.cds()? {
            wanted.sort();
            let scheduled = self.pending.as_ref().map(|(_, s)| s);
            if wanted != self.installed && scheduled != Some(&wanted) {
                self.pending = Some((self.now + self.registry_delay, wanted));
            }
        }
        if let Some((at, set)) = self.pending.clone()
            && at <= self.now
        {
            if set.is_empty() {
                self.run(&["record", "delete"], &["parent.test.", "child", "DS"])?;
            } else {
                let mut args = vec!["parent.test.", "child", "DS", "--ttl", "3600"];
                args.extend(set.iter().map(String::as_str));
                self.run(&["record", "set"], &args)?;
            }
            self.installed = set;
            self.pending = None;
        }
        Ok(())
    }

    /// One maintenance run of both zones; the child's next event.
    fn maintain(&self) -> Result<Option<u64>> {
        let parent = self.addr.to_string();
        self.run(&["dnssec", "maintain"], &["parent.test.", "--parent", &parent])?;
        let out = self.run(&["dnssec", "maintain"], &["child.parent.test.", "--parent", &parent])?;
        Ok(out.stdout.lines().find_map(|l| l.strip_prefix("next_event\t")).and_then(parse_time))
    }

    fn status(&self) -> Result<String> {
        Ok(self.run(&["dnssec", "status"], &["child.parent.test."])?.stdout)
    }

    fn verdict(&self) -> Result<String> {
        let s = self.status()?;
        Ok(s.lines().find_map(|l| l.strip_prefix("verdict\t")).unwrap_or("").to_owned())
    }

    fn keys(&self) -> Result<Vec<Key>> {
        Ok(self
            .status()?
            .lines()
            .filter_map(|l| l.strip_prefix("key\t"))
            .filter_map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                Some(Key {
                    role: (*f.first()?).to_owned(),
                    tag: f.get(1)?.parse().ok()?,
                    algorithm: (*f.get(2)?).to_owned(),
                    state: (*f.get(3)?).to_owned(),
                })
            })
            .collect())
    }

    /// The zone must validate at the simulated time, for unbound from a
    /// flushed cache and for the cache model from every earlier cache
    /// state within reach: secure once the parent has a DS for it,
    /// insecure (never bogus) before.
    fn check(&mut self) -> Result<()> {
        self.unbound.set_override_date(Some(self.now))?;
        let at = format!("at step {} (t = {}, parent DS {:?})", self.steps, self.now, self.installed);
        let insecure = self.installed.is_empty();
        let judge = |unbound: &Unbound, at: &str| -> Result<()> {
            for (name, rtype, rcode) in QUERIES {
                match insecure {
                    true => unbound.expect_insecure(name, rtype, rcode).map(|_| ()),
                    false => unbound.expect_secure(name, rtype, rcode).map(|_| ()),
                }
                .context(at.to_owned())?;
            }
            Ok(())
        };
        judge(&self.unbound, &at)?;
        if self.follower.is_some() {
            self.follow()?;
        }
        if let Some(f) = &mut self.follower {
            f.unbound.set_override_date(Some(self.now))?;
            judge(&f.unbound, &format!("{at}, validating against the knotd secondary"))?;
        }
        self.model_check().context(at)
    }

    /// Waits until the follower serves both zones at the serials the
    /// server serves. The server was restarted since the last step, so the
    /// follower is asked to refresh as well as notified.
    fn follow(&self) -> Result<()> {
        let Some(f) = &self.follower else { return Ok(()) };
        for zone in ["parent.test.", "child.parent.test."] {
            let serial = sixgate_e2e::secondary::soa_serial(self.addr, zone)?
                .with_context(|| format!("the server serves no SOA for {zone}"))?;
            if f.knot.serial(zone)? != Some(serial) {
                f.knot.refresh(zone)?;
                f.knot.wait_for_serial(zone, serial)?;
            }
        }
        Ok(())
    }

    /// Records the served zones if they changed, then resolves every query
    /// at now with resolvers whose caches were filled at each earlier
    /// change within reach (keys and answers at different moments too).
    fn model_check(&mut self) -> Result<()> {
        self.record()?;
        self.model_resolve()
    }

    /// A manual operation (`dnssec roll`, `dnssec disable`), a second
    /// after the last check, recorded in the history when it happens.
    fn operate(&mut self, command: &[&str], args: &[&str]) -> Result<()> {
        self.now += 1;
        self.restart()?;
        self.run(command, args)?;
        self.record()
    }

    /// Adds the served zones to the history if they changed.
    fn record(&mut self) -> Result<()> {
        let mut served = String::new();
        let mut catalog = Catalog::new();
        for zone in ["parent.test.", "child.parent.test."] {
            let text = self.run(&["zone", "export"], &[zone, "--as-served"])?.stdout;
            let apex = sixgate_dns::name::from_text(zone, None)?;
            let records = sixgate_dns::zonefile::parse(&text, &apex).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let ttl = records.iter().map(|r| u64::from(r.ttl)).max().unwrap_or(0);
            self.max_ttl = self.max_ttl.max(ttl);
            catalog.insert(std::sync::Arc::new(Zone::build(&apex, records, 7)?));
            served.push_str(&text);
        }
        ensure!(
            self.max_ttl + DAY < CACHE_REACH,
            "a TTL of {} s is beyond the cache model's reach",
            self.max_ttl
        );
        if served != self.last_served {
            self.history.push(self.now, catalog);
            self.changes.push(self.now);
            self.last_served = served;
        }
        Ok(())
    }

    /// Resolves every query at every moment since the last check with
    /// resolvers whose caches were filled at each earlier moment within
    /// reach.
    fn model_resolve(&mut self) -> Result<()> {
        let apex = sixgate_dns::name::from_text("child.parent.test.", None)?;
        let queries: Vec<(Box<[u8]>, u16)> = QUERIES
            .iter()
            .map(|(n, t, _)| {
                Ok((
                    sixgate_dns::name::from_text(n, None)?,
                    sixgate_dns::zonefile::type_from_text(t).context("type")?,
                ))
            })
            .collect::<Result<_>>()?;
        // The moments that matter: just before, at and just after each
        // change within reach (a resolver that cached the old zone a
        // second before a change asks a second after it), and now.
        let mut times: Vec<u64> = self
            .changes
            .iter()
            .filter(|c| **c + CACHE_REACH >= self.now)
            .flat_map(|c| [c.saturating_sub(1), *c, c + 1])
            .chain([self.now])
            .filter(|t| *t <= self.now && self.changes.first().is_some_and(|first| t >= first))
            .collect();
        times.sort_unstable();
        times.dedup();
        let fresh = Resolver::new(&apex, &self.history, &self.history);
        for &at in times.iter().filter(|t| **t > self.model_checked || **t == self.now) {
            // A cache filled max_ttl or more before `at` holds nothing
            // fresh at `at` (every cache lifetime is at most a TTL): it
            // resolves as a cache filled at `at`, which is checked.
            let filled = || times.iter().copied().filter(|t| *t == at || (*t < at && *t + self.max_ttl > at));
            for keys_at in filled() {
                for answers_at in filled() {
                    let mut r = fresh.clone();
                    if answers_at < keys_at {
                        queries.iter().for_each(|(n, t)| r.warm_answer(n, *t, answers_at));
                        r.warm_keys(keys_at);
                    } else {
                        r.warm_keys(keys_at);
                        queries.iter().for_each(|(n, t)| r.warm_answer(n, *t, answers_at));
                    }
                    for (n, t) in &queries {
                        let verdict = r.resolve(n, *t, at);
                        let fresh_now = keys_at == at && answers_at == at && at == self.now;
                        match verdict {
                            Verdict::Bogus(b) => bail!(
                                "the cache model finds {} {t} bogus at {at} (keys cached at {keys_at}, answers at {answers_at}): {b}",
                                sixgate_dns::name::to_text(n)
                            ),
                            Verdict::Insecure if fresh_now && !self.installed.is_empty() => bail!(
                                "the cache model finds {} insecure with the DS in place",
                                sixgate_dns::name::to_text(n)
                            ),
                            _ => {}
                        }
                    }
                }
            }
        }
        self.model_checked = self.now;
        Ok(())
    }

    /// Moves the clock to the next thing that happens (a key event or the
    /// registry acting), at most `max` ahead, restarts the server there,
    /// runs maintenance and the registry, and checks.
    fn step(&mut self, max: u64) -> Result<()> {
        let next = [self.next_key, self.pending.as_ref().map(|(t, _)| *t), Some(self.now + max)]
            .into_iter()
            .flatten()
            .filter(|t| *t > self.now)
            .min()
            .unwrap_or(self.now + max);
        self.now = next;
        self.steps += 1;
        self.restart()?;
        self.next_key = self.maintain()?;
        self.registry()?;
        if std::env::var_os("ROLLOVER_DEBUG").is_some() {
            eprintln!("--- t={} next={:?}\n{}", self.now, self.next_key, self.status()?);
        }
        self.check()
    }

    /// Steps until `done` holds.
    fn until(&mut self, what: &str, max: u64, mut done: impl FnMut(&Lab) -> Result<bool>) -> Result<()> {
        for _ in 0..MAX_STEPS {
            if done(self)? {
                return Ok(());
            }
            self.step(max)?;
        }
        bail!("{what}: not reached in {MAX_STEPS} steps; status:\n{}", self.status()?)
    }

    fn secure(&mut self) -> Result<()> {
        self.check()?;
        self.until("secure", DAY, |lab| Ok(lab.verdict()? == "secure" && lab.pending.is_none()))
    }
}

fn live(keys: &[Key]) -> Vec<&Key> {
    keys.iter().filter(|k| k.state != "Removed").collect()
}

/// A CSK or KSK rollover by double signature: starts secure with one key,
/// rolls, and ends secure with one new key.
fn ksk_roll(enable: &[&str], registry_delay: u64) -> Result<Lab> {
    // The first DS goes in promptly; the delay is for the roll's.
    let mut lab = Lab::start(enable, 3600)?;
    lab.secure()?;
    lab.registry_delay = registry_delay;
    let before = lab.keys()?;
    let old = before.iter().find(|k| k.role == "Csk" || k.role == "Ksk").context("a KSK or CSK")?.clone();
    lab.operate(&["dnssec", "roll"], &["child.parent.test.", "ksk"])?;
    let started = lab.now;
    // The key the parent's DS names cannot be removed by hand.
    let clock = lab.now.to_string();
    let out = lab.cli.run_env(
        &[("SIXGATE_CLOCK", &clock)],
        &["dnssec", "remove-key"],
        &["child.parent.test.", &old.tag.to_string()],
    )?;
    ensure!(!out.success() && out.stderr.contains("parent"), "removing the key the parent's DS names: {out}");
    // While the parent has only the old DS, the old key must stay published
    // and sign the DNSKEY RRset.
    let mut waited_for_parent = false;
    lab.until("the new key alone", DAY, |lab| {
        let keys = lab.keys()?;
        let old_now = keys.iter().find(|k| k.tag == old.tag);
        if lab.installed.iter().all(|ds| ds.starts_with(&format!("{} ", old.tag)))
            && !lab.installed.is_empty()
        {
            let state = old_now.map(|k| k.state.as_str()).unwrap_or("gone");
            if !matches!(state, "Active" | "Ready" | "Published") {
                bail!("key {} is {state} while the parent's DS still names only it", old.tag);
            }
            waited_for_parent = waited_for_parent || lab.pending.is_some();
        }
        let secure = live(&keys).iter().filter(|k| k.role == old.role).count() == 1
            && old_now.is_none_or(|k| k.state == "Removed")
            && lab.verdict()? == "secure";
        Ok(secure)
    })?;
    let after = lab.keys()?;
    let new = live(&after).into_iter().find(|k| k.role == old.role).context("the new key")?.clone();
    ensure!(new.tag != old.tag, "the key did not change: {after:?}");
    if registry_delay > 0 {
        ensure!(waited_for_parent, "the roll never waited for the parent");
        ensure!(lab.now - started >= registry_delay, "the roll ended before the parent acted");
    }
    Ok(lab)
}

#[test]
fn csk_rollover_with_the_parent_on_time() -> Result<()> {
    ksk_roll(&[], 3600).map(|_| ())
}

/// A policy that asks the parent every 6 hours rather than every hour
/// (the default, which the other tests keep), for the tests where the
/// parent is days late: every question to the parent is a step (a server
/// restart, maintenance and both checks), and nothing else happens while
/// the parent is late.
const SLOW_DS_CHECKS: &str = r#"{"ds_check_interval": 21600}"#;

#[test]
fn ksk_rollover_waits_for_a_parent_days_late() -> Result<()> {
    ksk_roll(&["--ksk-zsk", "--policy", SLOW_DS_CHECKS], 6 * DAY).map(|_| ())
}

/// Rolls the child's ZSK, checked at every step, until the new one alone
/// is live.
fn roll_the_zsk(lab: &mut Lab) -> Result<()> {
    let zsk = lab.keys()?.into_iter().find(|k| k.role == "Zsk").context("a ZSK")?;
    lab.operate(&["dnssec", "roll"], &["child.parent.test.", "zsk"])?;
    lab.until("the new ZSK alone", DAY, |lab| {
        let keys = lab.keys()?;
        let zsks: Vec<&Key> = live(&keys).into_iter().filter(|k| k.role == "Zsk").collect();
        Ok(zsks.len() == 1 && zsks.first().is_some_and(|k| k.tag != zsk.tag && k.state == "Active"))
    })
}

#[test]
fn zsk_rollover_by_pre_publication() -> Result<()> {
    let mut lab = Lab::start(&["--ksk-zsk"], 3600)?;
    lab.secure()?;
    roll_the_zsk(&mut lab)?;
    ensure!(lab.verdict()? == "secure");
    Ok(())
}

/// A ZSK rollover that a knotd secondary follows by IXFR: a validator that
/// asks only knotd finds every step secure, and knotd's copy of the child
/// passes `kzonecheck -d on` at the end.
#[test]
fn a_zsk_rollover_reaches_a_knot_secondary_by_ixfr_and_validates_there() -> Result<()> {
    let mut lab = Lab::start_followed(&["--ksk-zsk"], 3600)?;
    lab.secure()?;
    roll_the_zsk(&mut lab)?;
    lab.follow()?;
    let f = lab.follower.as_ref().context("a follower")?;
    let log = f.knot.log_text();
    let child = "child.parent.test.";
    let last = f.knot.last_transfer(child)?.context("knotd logged no transfer of the child")?;
    ensure!(last.kind == XfrKind::Ixfr, "the child's last version came by {:?}:\n{log}", last.kind);
    ensure!(!log.contains("AXFR-style"), "an IXFR was answered in full:\n{log}");
    let copy = lab._dir.path().join("knot-copy.zone");
    fs::write(&copy, f.knot.zone_text(child)?)?;
    let check = std::process::Command::new(require_program("kzonecheck", "knot")?)
        .args(["-o", child, "-d", "on", "-t", &lab.now.to_string()])
        .arg(&copy)
        .output()?;
    ensure!(
        check.status.success(),
        "kzonecheck -d on of knotd's copy: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    Ok(())
}

#[test]
fn algorithm_rollover_from_p256_to_ed25519() -> Result<()> {
    let mut lab = Lab::start(&[], 3600)?;
    lab.secure()?;
    lab.operate(&["dnssec", "roll"], &["child.parent.test.", "algorithm", "--algorithm", "ed25519"])?;
    lab.until("only Ed25519 keys", DAY, |lab| {
        let keys = lab.keys()?;
        let live = live(&keys);
        Ok(!live.is_empty() && live.iter().all(|k| k.algorithm == "ed25519") && lab.verdict()? == "secure")
    })?;
    Ok(())
}

/// The parent is asked every 6 hours, as in the late parent's KSK roll.
#[test]
fn going_insecure_waits_for_the_parent_to_drop_the_ds() -> Result<()> {
    let mut lab = Lab::start(&["--policy", SLOW_DS_CHECKS], 3600)?;
    lab.secure()?;
    lab.registry_delay = 2 * DAY;
    lab.operate(&["dnssec", "disable"], &["child.parent.test."])?;
    ensure!(lab.verdict()? == "going insecure");
    let asked = lab.now;
    lab.until("unsigned", DAY, |lab| {
        let signed = lab.status()?.lines().any(|l| l == "signed\tyes");
        if !signed {
            ensure!(lab.installed.is_empty(), "unsigned while the parent still has DS {:?}", lab.installed);
        }
        Ok(!signed)
    })?;
    ensure!(lab.now - asked >= 2 * DAY, "unsigned before the parent removed the DS");
    let export = lab.run(&["zone", "export"], &["child.parent.test.", "--as-served"])?.stdout;
    ensure!(!export.contains("RRSIG") && !export.contains("DNSKEY"), "{export}");
    Ok(())
}
