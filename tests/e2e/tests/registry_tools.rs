//! Checked by the tools that registries and operators run: Zonemaster and
//! DNSViz, against a zone that sixgate signs and serves.
//!
//! Each test builds a lab in a loopback network of its own
//! ([`sixgate_e2e::lab`]): a signed root zone on knotd at 127.0.X.1:53
//! that delegates `example.` to sixgate on 127.0.X.2:53 and 127.0.X.3:53
//! (glue in the root), with the DS that `sixgate dnssec enable` printed.
//! The zone has two delegations with glue, served by the lab's knotd on
//! 127.0.X.4: `sub`, signed by ldns-signzone with its DS in the zone, and
//! `plain`, unsigned and without DS. It also has a wildcard, a CNAME, and
//! an ANAME at the apex whose target is in `cdn.`, a second signed zone on
//! the same sixgate, also delegated from the lab root. Zonemaster must
//! report nothing at WARNING or above but what a lab cannot avoid
//! (loopback addresses, no PTRs), and DNSViz, trusting only the lab root's
//! key, must find the delegations to `example.`, `cdn.` and `sub.example.`
//! SECURE, every answer it asked for SECURE, and no error or warning. A DS
//! with a wrong digest in the root must make both fail.
//!
//! The tools need port 53 (neither can be given another), so the tests run
//! as root (scripts/test does); lab networks: 53 (NSEC), 54 (NSEC3) and 55
//! (wrong DS).

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use sixgate_e2e::lab::{self, LabNet, LabRoot, ROOT_SERVER};
use sixgate_e2e::ldns::{self, Key};
use sixgate_e2e::process::ZoneFile;
use sixgate_e2e::{Cli, Sixgate, dnsviz, kdig, wait_until, zonemaster};

/// The zone under test; `NET` is the lab's third octet.
const ZONE: &str = "$ORIGIN example.
$TTL 3600
@        SOA   ns1 hostmaster.mail 1 14400 3600 1209600 3600
@        NS    ns1
@        NS    ns2
@        ANAME origin.cdn.
ns1      A     127.0.NET.2
ns2      A     127.0.NET.3
mail     A     192.0.2.25
mail     MX    10 mail
www      A     192.0.2.80
www      AAAA  2001:db8::80
*.wild   TXT   \"wild\"
alias    CNAME www
sub      NS    ns.sub
ns.sub   A     127.0.NET.4
plain    NS    ns.plain
ns.plain A     127.0.NET.4
";

/// The ANAME's target zone.
const CDN: &str = "$ORIGIN cdn.
$TTL 3600
@        SOA   ns1.example. hostmaster.mail.example. 1 14400 3600 1209600 3600
@        NS    ns1.example.
@        NS    ns2.example.
origin   A     192.0.2.44
origin   AAAA  2001:db8::44
";

/// A child below a delegation, on the lab's knotd; `CHILD` is `sub` or
/// `plain`.
const CHILD: &str = "$ORIGIN CHILD.example.
$TTL 3600
@        SOA   ns.CHILD.example. hostmaster.mail.example. 1 14400 3600 1209600 3600
@        NS    ns.CHILD.example.
ns       A     127.0.NET.4
www      A     192.0.2.81
";

/// The names DNSViz analyses: the root, the apex (ANAME addresses), a
/// plain name, the CNAME, a wildcard expansion, a name with MX, a name
/// that does not exist, the ANAME's target and its zone, and the signed
/// child through the DS that sixgate serves. The unsigned child is left
/// out: DNSViz 0.9.4's grok stops with a KeyError on the SOA of its
/// DNSKEY NODATA answer, whoever serves the parent (Knot too; a DNSViz
/// fault of the kind of dnsviz/dnsviz#44).
const NAMES: &[&str] = &[
    ".",
    "example.",
    "www.example.",
    "alias.example.",
    "anything.wild.example.",
    "mail.example.",
    "nothere.example.",
    "cdn.",
    "origin.cdn.",
    "sub.example.",
    "www.sub.example.",
];

/// How long the ANAME may take to be resolved, written and signed.
const ANAME_DEADLINE: Duration = Duration::from_secs(30);

fn write(dir: &Path, name: &str, text: &str) -> Result<ZoneFile> {
    let path = dir.join(name);
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(ZoneFile::new(name.trim_end_matches("zone"), path))
}

/// The DS lines that `dnssec enable` printed (comment lines skipped).
fn ds_lines(stdout: &str) -> Vec<String> {
    stdout.lines().filter(|line| line.contains(" IN DS ")).map(|line| line.trim().to_owned()).collect()
}

/// `ds` with the first digit of its digest changed: same key tag and
/// algorithm, wrong digest.
fn wrong_digest(ds: &str) -> Result<String> {
    let (head, digest) = ds.rsplit_once(' ').context("DS line without a digest")?;
    let mut chars: Vec<char> = digest.chars().collect();
    let first = chars.first_mut().context("empty digest")?;
    *first = if *first == '0' { '1' } else { '0' };
    Ok(format!("{head} {}", chars.into_iter().collect::<String>()))
}

/// The outcome of one lab: both tools' verdicts.
struct Verdicts {
    zonemaster: zonemaster::Report,
    dnsviz: dnsviz::Assessment,
}

/// Builds a lab on 127.0.`net`.0/24 with `example.` signed by sixgate
/// (`nsec3` or NSEC), its DS in the root (with a wrong digest if
/// `wrong_ds`), and runs both tools.
fn lab(net: u8, nsec3: bool, wrong_ds: bool) -> Result<Verdicts> {
    let net = LabNet::new(net)?;
    let octet = net.third_octet().to_string();
    for host in [2, 3] {
        net.check_free(host)?;
    }
    let dir = tempfile::tempdir()?;
    // The signed child first: its DS goes into the zone under test.
    let children = dir.path().join("children");
    fs::create_dir_all(&children)?;
    let child_ksk = Key::generate(&children, "sub.example.", true)?;
    let child = |name: &str| CHILD.replace("CHILD", name).replace("NET", &octet);
    let sub =
        ldns::sign_zone(&children, "sub.example.", &child("sub"), &[&child_ksk], Some(lab::validity()?))?;
    let plain = ldns::unsigned_zone(&children, "plain.example.", &child("plain"))?;
    let zone = format!("{}{}\n", ZONE.replace("NET", &octet), child_ksk.ds()?);
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&write(dir.path(), "example.zone", &zone)?)?;
    cli.import(&write(dir.path(), "cdn.zone", CDN)?)?;
    let mut root_records = format!(
        "example. 3600 NS ns1.example.\nexample. 3600 NS ns2.example.\n\
         ns1.example. 3600 A {}\nns2.example. 3600 A {}\n\
         cdn. 3600 NS ns1.example.\ncdn. 3600 NS ns2.example.\n",
        net.ip(2),
        net.ip(3)
    );
    for zone in ["example.", "cdn."] {
        let mut args = vec![zone];
        if nsec3 {
            args.push("--nsec3");
        }
        let enabled = cli.run(&["dnssec", "enable"], &args)?.ok()?;
        let ds = ds_lines(&enabled.stdout);
        ensure!(!ds.is_empty(), "dnssec enable {zone} printed no DS line: {enabled}");
        for line in ds {
            let line = if wrong_ds && zone == "example." { wrong_digest(&line)? } else { line };
            root_records.push_str(&line);
            root_records.push('\n');
        }
    }
    let config = dir.path().join("sixgate.toml");
    // No maintenance task: nothing changes the keys or asks for the DS
    // while the tools look.
    fs::write(&config, "[dnssec]\nmaintain = false\n[aname]\nmin_refresh = 1\n")?;
    let second = net.addr(3).to_string();
    let config_arg = config.display().to_string();
    let server = Sixgate::serve_at(cli, net.addr(2), &["--dns", &second, "--config", &config_arg])?;
    for addr in [net.addr(2), net.addr(3)] {
        wait_until("the apex's ANAME addresses, signed", ANAME_DEADLINE, || {
            let dig = kdig::kdig(addr, &["+dnssec", "+norec", "example.", "AAAA"])?;
            Ok((!dig.answers("RRSIG").is_empty() && !dig.answers("AAAA").is_empty()).then_some(()))
        })?;
    }
    let root = LabRoot::start(net, &root_records, &[sub, plain], &[4])?;

    let started = Instant::now();
    let zonemaster = zonemaster::zonemaster("example.", &root.hints()?, &root.dir().join("zonemaster.json"))?;
    let zonemaster_time = started.elapsed();

    let started = Instant::now();
    let probe = root.dir().join("probe.json");
    dnsviz::probe(&format!("{ROOT_SERVER}={}", root.addr().ip()), NAMES, &probe)?;
    // Keep the probe after the lab's directory goes: `dnsviz grok -r` on
    // it replays the assessment.
    let kept = sixgate_e2e::process::new_log_path("dnsviz-probe-json")?;
    fs::copy(&probe, &kept)?;
    eprintln!("dnsviz probe kept in {}", kept.display());
    let dnsviz = dnsviz::grok(&probe, &root.trust_anchor()?, root.dir())?;
    let dnsviz_time = started.elapsed();
    eprintln!("zonemaster-cli took {zonemaster_time:?}, dnsviz probe and grok {dnsviz_time:?}");
    // Keep both reports after the lab's directory goes, for reading a
    // failure.
    for (stem, path) in [
        ("zonemaster-json", root.dir().join("zonemaster.json")),
        ("dnsviz-grok-json", dnsviz.path().to_owned()),
    ] {
        let kept = sixgate_e2e::process::new_log_path(stem)?;
        fs::copy(&path, &kept)?;
        eprintln!("{stem} kept in {}", kept.display());
    }
    drop(server);
    drop(root);
    Ok(Verdicts { zonemaster, dnsviz })
}

/// Both tools accept the lab: only lab-only Zonemaster findings, and a
/// SECURE delegation with every answer SECURE and nothing to complain
/// about for DNSViz. `denial` is the Zonemaster tag that proves the
/// chain it saw (DS10_HAS_NSEC or DS10_HAS_NSEC3).
fn accepted(verdicts: &Verdicts, denial: &str) -> Result<()> {
    let Verdicts { zonemaster, dnsviz } = verdicts;
    let faults: Vec<String> = zonemaster.faults().iter().map(ToString::to_string).collect();
    ensure!(faults.is_empty(), "Zonemaster found faults:\n{}\nfull report:\n{zonemaster}", faults.join("\n"));
    // The DNSSEC test cases ran and saw the zone signed as intended.
    for tag in ["ALGORITHM_OK", denial] {
        ensure!(zonemaster.has(tag), "Zonemaster never said {tag}:\n{zonemaster}");
    }
    let errors: Vec<String> = dnsviz.errors().iter().map(ToString::to_string).collect();
    let warnings: Vec<String> = dnsviz.warnings().iter().map(ToString::to_string).collect();
    ensure!(
        errors.is_empty() && warnings.is_empty(),
        "DNSViz errors:\n{}\nwarnings:\n{}\n(assessment: {})",
        errors.join("\n"),
        warnings.join("\n"),
        dnsviz.path().display()
    );
    for zone in ["example.", "cdn.", "sub.example."] {
        let status = dnsviz.delegation(zone);
        ensure!(status == Some("SECURE"), "delegation of {zone}: {status:?}");
    }
    for name in NAMES {
        let statuses = dnsviz.statuses(name);
        ensure!(!statuses.is_empty(), "DNSViz assessed no response for {name}");
        let insecure: Vec<_> = statuses.iter().filter(|(_, status)| status != "SECURE").collect();
        ensure!(insecure.is_empty(), "not SECURE at {name}: {insecure:?}");
    }
    Ok(())
}

#[test]
fn zonemaster_and_dnsviz_accept_an_nsec_signed_zone() -> Result<()> {
    let verdicts = lab(53, false, false)?;
    accepted(&verdicts, "DS10_HAS_NSEC")
}

#[test]
fn zonemaster_and_dnsviz_accept_an_nsec3_signed_zone() -> Result<()> {
    let verdicts = lab(54, true, false)?;
    accepted(&verdicts, "DS10_HAS_NSEC3")
}

/// The checks can fail: the same lab with a wrong digest in the root's DS
/// is an error for Zonemaster (DNSSEC02) and a BOGUS delegation for DNSViz.
#[test]
fn zonemaster_and_dnsviz_reject_a_ds_with_a_wrong_digest() -> Result<()> {
    let Verdicts { zonemaster, dnsviz } = lab(55, false, true)?;
    let faults = zonemaster.faults();
    ensure!(
        faults.iter().any(|m| m.tag == "DS02_NO_MATCH_DS_DNSKEY" && m.level == "ERROR"),
        "Zonemaster did not reject the wrong DS:\n{zonemaster}"
    );
    ensure!(
        dnsviz.delegation("example.") == Some("BOGUS"),
        "delegation: {:?}",
        dnsviz.delegation("example.")
    );
    let errors = dnsviz.errors();
    ensure!(errors.iter().any(|p| p.code == "DIGEST_INVALID"), "DNSViz errors: {errors:?}");
    Ok(())
}

#[test]
fn a_wrong_digest_keeps_the_key_tag_and_algorithm() -> Result<()> {
    let ds = "example. 3600 IN DS 54000 13 2 0e9480da";
    ensure!(wrong_digest(ds)? == "example. 3600 IN DS 54000 13 2 1e9480da");
    ensure!(wrong_digest(&wrong_digest(ds)?)? == "example. 3600 IN DS 54000 13 2 0e9480da");
    Ok(())
}
