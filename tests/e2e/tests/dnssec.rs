//! Managed DNSSEC end to end: zones signed by `sixgate dnssec enable`,
//! changed through the CLI, exported `--as-served`, must pass the real
//! verifiers (ldns-verify-zone from ldnsutils, kzonecheck from
//! knot-dnssecutils) for NSEC and NSEC3, P-256 and Ed25519; bad input gets
//! a clear error; and validating resolvers (unbound) get the AD bit.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use sixgate_e2e::process::require_program;
use sixgate_e2e::{Cli, ZoneFile};

const ZONE: &str = "$ORIGIN example.test.
$TTL 3600
@        SOA  ns1 hostmaster 1 7200 3600 1209600 300
@        NS   ns1
@        MX   10 Mail
ns1      A    192.0.2.1
Mail     AAAA 2001:db8::25
www      A    192.0.2.80
www      AAAA 2001:db8::80
*.w      TXT  \"wild\"
a.b.c    A    192.0.2.7
_sip._tcp SRV 0 5 5060 sip
sip      CNAME www
sub      NS   ns.sub
ns.sub   A    192.0.2.53
secure   NS   ns1
secure   DS   1 13 2 0000000000000000000000000000000000000000000000000000000000000000
";

fn write(dir: &Path, name: &str, text: &str) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Runs a verifier on a zone file; fails with its output unless it exits 0.
fn verifier(program: &str, args: &[&str]) -> Result<String> {
    let out = Command::new(program).args(args).output().with_context(|| format!("running {program}"))?;
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        bail!("{program} {} failed:\n{text}", args.join(" "));
    }
    Ok(text)
}

/// Both verifiers accept `file` as a complete signed zone.
fn verify(file: &Path) -> Result<()> {
    let path = file.display().to_string();
    let text = verifier("ldns-verify-zone", &[&path])?;
    ensure!(text.contains("Zone is verified and complete"), "ldns-verify-zone said: {text}");
    verifier("kzonecheck", &["-o", "example.test.", "-d", "on", &path])?;
    Ok(())
}

fn export_as_served(cli: &Cli, dir: &Path, name: &str) -> Result<std::path::PathBuf> {
    let out = cli.run(&["zone", "export"], &["example.test.", "--as-served"])?.ok()?;
    write(dir, name, &out.stdout)
}

/// Signs, changes and re-verifies the zone for one algorithm and denial.
fn sign_change_verify(algorithm: &str, nsec3: bool) -> Result<()> {
    require_program("ldns-verify-zone", "ldnsutils")?;
    require_program("kzonecheck", "knot-dnssecutils")?;
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&ZoneFile::new("example.test.", write(dir.path(), "example.test.zone", ZONE)?))?;
    let mut args = vec!["example.test.", "--algorithm", algorithm];
    if nsec3 {
        args.push("--nsec3");
    }
    let enabled = cli.run(&["dnssec", "enable"], &args)?.ok()?;
    // The DS line as before, then when the registry may publish it.
    let ds: Vec<&str> = enabled.stdout.lines().collect();
    ensure!(ds.len() == 2 && ds[0].starts_with("example.test. 3600 IN DS "), "DS lines: {ds:?}");
    let after = ds[1].strip_prefix("; publish-after ").with_context(|| format!("DS lines: {ds:?}"))?;
    ensure!(
        after.len() == 20 && after.as_bytes()[10] == b'T' && after.ends_with('Z'),
        "not an RFC 3339 time: {after:?}"
    );
    let first = export_as_served(&cli, dir.path(), "signed.zone")?;
    verify(&first)?;
    let text = fs::read_to_string(&first)?;
    let chain = if nsec3 { " IN NSEC3 " } else { " IN NSEC " };
    ensure!(text.contains(chain) && text.contains(" IN RRSIG ") && text.contains(" IN DNSKEY "), "{text}");
    // CDS/CDNSKEY follow once the DNSKEY has had time to reach caches
    // (the store's rollover tests step the clock through that).
    ensure!(text.contains(" IN NSEC3PARAM ") == nsec3, "NSEC3PARAM presence:\n{text}");
    // Changes: a new deep name (new empty non-terminals), a removed name,
    // a new delegation with glue, a delegation removed, a TTL change.
    for (command, args) in [
        (&["record", "set"][..], &["example.test.", "new.deep.x", "A", "192.0.2.99"][..]),
        (&["record", "delete"], &["example.test.", "a.b.c", "A"]),
        // Glue first: kzonecheck rightly refuses a delegation without it.
        (&["record", "set"], &["example.test.", "ns.sub2", "A", "192.0.2.2"]),
        (&["record", "set"], &["example.test.", "sub2", "NS", "ns.sub2.example.test."]),
        (&["record", "delete"], &["example.test.", "sub", "NS"]),
        (&["record", "set"], &["example.test.", "www", "A", "192.0.2.81", "--ttl", "60"]),
    ] {
        cli.run(command, args)?.ok()?;
        let file = export_as_served(&cli, dir.path(), "changed.zone")?;
        verify(&file).with_context(|| format!("after {command:?} {args:?}"))?;
    }
    // The DS printed by `dnssec ds` is the one printed at enable time.
    let again = cli.run(&["dnssec", "ds"], &["example.test."])?.ok()?;
    ensure!(again.stdout.trim() == ds[0], "dnssec ds: {}", again.stdout);
    // A tampered export fails the verifiers: the check is real.
    let tampered = fs::read_to_string(dir.path().join("changed.zone"))?.replace("192.0.2.99", "192.0.2.98");
    let bad = write(dir.path(), "tampered.zone", &tampered)?;
    ensure!(verify(&bad).is_err(), "a tampered zone passed verification");
    // The plain export stays the unsigned, re-importable source.
    let plain = cli.run(&["zone", "export"], &["example.test."])?.ok()?;
    ensure!(!plain.stdout.contains("RRSIG") && !plain.stdout.contains("DNSKEY"), "{}", plain.stdout);
    let copy = Cli::new(dir.path().join("copy"))?;
    copy.import(&ZoneFile::new("example.test.", write(dir.path(), "plain.zone", &plain.stdout)?))?;
    Ok(())
}

#[test]
fn nsec_p256_zone_verifies_after_changes() -> Result<()> {
    sign_change_verify("ecdsap256sha256", false)
}

#[test]
fn nsec3_p256_zone_verifies_after_changes() -> Result<()> {
    sign_change_verify("ecdsap256sha256", true)
}

#[test]
fn nsec_ed25519_zone_verifies_after_changes() -> Result<()> {
    sign_change_verify("ed25519", false)
}

#[test]
fn nsec3_ed25519_zone_verifies_after_changes() -> Result<()> {
    sign_change_verify("ed25519", true)
}

#[test]
fn signed_input_and_bad_policies_get_clear_errors() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    // A zone that already carries signatures.
    let signed =
        format!("{ZONE}@ 3600 RRSIG SOA 13 2 3600 20270101000000 20260101000000 1 example.test. AAAA\n");
    let file = write(dir.path(), "signed.zone", &signed)?;
    let out = cli.run(&["zone", "import"], &["example.test.", &file.display().to_string()])?;
    ensure!(!out.success() && out.stderr.contains("RRSIG records are made by sixgate's signer"), "{out}");
    ensure!(out.stderr.contains("signed.zone:18"), "the error names the line: {out}");
    // A DNSKEY of an unknown algorithm.
    let file = write(dir.path(), "dnskey.zone", &format!("{ZONE}@ 3600 DNSKEY 257 3 99 AAAA\n"))?;
    let out = cli.run(&["zone", "import"], &["example.test.", &file.display().to_string()])?;
    ensure!(!out.success() && out.stderr.contains("unknown or unsupported algorithm 99"), "{out}");
    // Nothing was stored.
    let list = cli.run(&["zone", "list"], &[])?.ok()?;
    ensure!(list.stdout.trim().is_empty(), "{list}");
    // An unknown algorithm on enable; enabling a zone that is not there.
    cli.import(&ZoneFile::new("example.test.", write(dir.path(), "z.zone", ZONE)?))?;
    let out = cli.run(&["dnssec", "enable"], &["example.test.", "--algorithm", "rsasha1"])?;
    ensure!(!out.success() && out.stderr.contains("rsasha1"), "{out}");
    let out = cli.run(
        &["dnssec", "enable"],
        &["example.test.", "--policy", r#"{"signature_validity":100,"signature_refresh":200}"#],
    )?;
    ensure!(!out.success() && out.stderr.contains("must be less than the signature validity"), "{out}");
    let out = cli.run(&["dnssec", "enable"], &["example.test.", "--policy", r#"{"dnskey_ttl":0}"#])?;
    ensure!(!out.success() && out.stderr.contains("DNSSEC policy"), "{out}");
    let status = cli.run(&["dnssec", "status"], &["example.test."])?.ok()?;
    ensure!(status.stdout.contains("signed\tno"), "a refused policy left the zone signed: {status}");
    let out = cli.run(&["dnssec", "enable"], &["nothere.test."])?;
    ensure!(!out.success() && out.stderr.contains("does not exist"), "{out}");
    // A signed zone refuses DNSSEC records from the user, too.
    cli.run(&["dnssec", "enable"], &["example.test."])?.ok()?;
    let out = cli.run(&["record", "set"], &["example.test.", "@", "DNSKEY", "257 3 13 AAAA"])?;
    ensure!(!out.success() && out.stderr.contains("made by sixgate's signer"), "{out}");
    // Enabling again is a no-op; with another algorithm it is refused.
    cli.run(&["dnssec", "enable"], &["example.test."])?.ok()?;
    let out = cli.run(&["dnssec", "enable"], &["example.test.", "--algorithm", "ed25519"])?;
    ensure!(!out.success() && out.stderr.contains("rollover"), "{out}");
    Ok(())
}

/// Regressions, through the CLI: a record with a TTL above what a signed
/// zone's policy allows was stored (it stalled the rollovers), `opt_out:
/// true` was accepted and ignored, and `dnssec disable --now` and `zone
/// delete` dropped the keys whatever the parent's DS. Each is refused in
/// one line with exit code 1, and nothing changes; `--force` goes past the
/// last two.
#[test]
fn the_cli_refuses_what_would_stall_or_break_a_signed_zone() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&ZoneFile::new("example.test.", write(dir.path(), "z.zone", ZONE)?))?;
    let out = cli.run(
        &["dnssec", "enable"],
        &["example.test.", "--nsec3", "--policy", r#"{"denial":{"type":"nsec3","opt_out":true}}"#],
    )?;
    ensure!(out.code == Some(1) && out.stderr.contains("opt-out is not supported"), "{out}");
    cli.run(&["dnssec", "enable"], &["example.test."])?.ok()?;
    let refused = |out: &sixgate_e2e::CliOutput, words: &str| -> Result<()> {
        ensure!(out.code == Some(1), "{out}");
        ensure!(out.stderr.trim().lines().count() == 1 && out.stderr.contains(words), "{out}");
        Ok(())
    };
    let before = cli.run(&["zone", "export"], &["example.test.", "--as-served"])?.ok()?.stdout;
    let out =
        cli.run(&["record", "set"], &["example.test.", "big", "A", "192.0.2.9", "--ttl", "2147483647"])?;
    refused(&out, "big.example.test. A: 2147483647 seconds of ttl over the signed zone ttl limit of 604499")?;
    // The parent was never asked, so it may serve a DS.
    refused(&cli.run(&["dnssec", "disable"], &["example.test.", "--now"])?, "refused unsigning it now")?;
    refused(&cli.run(&["zone", "delete"], &["example.test."])?, "refused deleting it with its keys")?;
    let after = cli.run(&["zone", "export"], &["example.test.", "--as-served"])?.ok()?.stdout;
    ensure!(before == after, "a refused command changed the zone");
    cli.run(&["dnssec", "disable"], &["example.test.", "--now", "--force"])?.ok()?;
    cli.run(&["zone", "delete"], &["example.test."])?.ok()?;
    Ok(())
}

const PARENT: &str = "$ORIGIN parent.test.
$TTL 3600
@         SOA  ns1 hostmaster 1 7200 3600 1209600 300
@         NS   ns1
ns1       A    127.0.0.1
target    A    192.0.2.44
target    AAAA 2001:db8::44
child     NS   ns1.parent.test.
insecure  NS   ns1.parent.test.
";

const CHILD: &str = "$ORIGIN child.parent.test.
$TTL 600
@         SOA  ns1.parent.test. hostmaster 1 7200 3600 1209600 300
@         NS   ns1.parent.test.
@         ANAME target.parent.test.
www       A    192.0.2.80
www       AAAA 2001:db8::80
*.w       TXT  \"wild\"
deep.a.b  TXT  \"ent above\"
";

const INSECURE: &str = "$ORIGIN insecure.parent.test.
$TTL 600
@         SOA  ns1.parent.test. hostmaster 1 7200 3600 1209600 300
@         NS   ns1.parent.test.
www       A    192.0.2.90
";

/// A parent and a child signed by sixgate, the child's DS in the parent,
/// an unsigned zone delegated without DS, all served by one sixgate; unbound
/// trusts the parent's DS and must validate everything in the child.
fn validated_by_unbound(nsec3: bool) -> Result<()> {
    require_program("unbound", "unbound")?;
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    for (origin, text) in
        [("parent.test.", PARENT), ("child.parent.test.", CHILD), ("insecure.parent.test.", INSECURE)]
    {
        cli.import(&ZoneFile::new(origin, write(dir.path(), &format!("{origin}zone"), text)?))?;
    }
    let enable = |zone: &str| -> Result<String> {
        let mut args = vec![zone];
        if nsec3 {
            args.push("--nsec3");
        }
        let out = cli.run(&["dnssec", "enable"], &args)?.ok()?.stdout;
        Ok(out.lines().filter(|l| !l.starts_with(';')).collect::<Vec<_>>().join("\n"))
    };
    let child_ds = enable("child.parent.test.")?;
    let parent_ds = enable("parent.test.")?;
    // The registry step: the child's DS goes into the parent.
    let ds_rdata = child_ds.split(" IN DS ").nth(1).context("DS line")?.to_owned();
    cli.run(&["record", "set"], &["parent.test.", "child", "DS", &ds_rdata])?.ok()?;
    let server_config =
        write(dir.path(), "sixgate.toml", "[dnssec]\nmaintain = false\n[aname]\nmin_refresh = 1\n")?;
    let server =
        sixgate_e2e::Sixgate::serve_with(cli.clone(), &["--config", &server_config.display().to_string()])?;
    let addr = server.udp_addr();
    // The ANAME's addresses are resolved internally, then signed.
    sixgate_e2e::wait_until("the ANAME's addresses", std::time::Duration::from_secs(30), || {
        let dig = sixgate_e2e::kdig::kdig(addr, &["+dnssec", "child.parent.test.", "AAAA"])?;
        Ok((!dig.answers("RRSIG").is_empty() && !dig.answers("AAAA").is_empty()).then_some(()))
    })?;
    let config = ["parent.test.", "child.parent.test.", "insecure.parent.test."]
        .into_iter()
        .fold(sixgate_e2e::UnboundConfig::new(), |c, z| c.stub(z, addr))
        .trust_anchor(&parent_ds);
    let unbound = sixgate_e2e::Unbound::start(config)?;
    // Positive, in the parent and the child.
    unbound.expect_secure("ns1.parent.test.", "A", "NOERROR")?;
    let www = unbound.expect_secure("www.child.parent.test.", "AAAA", "NOERROR")?;
    ensure!(www.data("AAAA") == vec!["2001:db8::80".to_string()], "{www}");
    // NXDOMAIN, NODATA, an empty non-terminal, a wildcard, wildcard NODATA.
    unbound.expect_secure("nope.child.parent.test.", "A", "NXDOMAIN")?;
    unbound.expect_secure("www.child.parent.test.", "TXT", "NOERROR")?;
    unbound.expect_secure("a.b.child.parent.test.", "TXT", "NOERROR")?;
    let wild = unbound.expect_secure("anything.w.child.parent.test.", "TXT", "NOERROR")?;
    ensure!(wild.data("TXT").iter().any(|t| t.contains("wild")), "{wild}");
    unbound.expect_secure("anything.w.child.parent.test.", "A", "NOERROR")?;
    // ANAME-derived answers at the apex, both families.
    let a = unbound.expect_secure("child.parent.test.", "A", "NOERROR")?;
    ensure!(a.data("A") == vec!["192.0.2.44".to_string()], "{a}");
    let aaaa = unbound.expect_secure("child.parent.test.", "AAAA", "NOERROR")?;
    ensure!(aaaa.data("AAAA") == vec!["2001:db8::44".to_string()], "{aaaa}");
    // An insecure delegation: the absence of its DS is proven, and what is
    // below it is answered without AD.
    unbound.expect_secure("insecure.parent.test.", "DS", "NOERROR")?;
    unbound.expect_insecure("www.insecure.parent.test.", "A", "NOERROR")?;
    let failures = unbound.validation_failures();
    ensure!(failures.is_empty(), "validation failures: {failures:?}");
    // A restart keeps the keys: the same DS afterwards.
    drop(server);
    let again =
        sixgate_e2e::Sixgate::serve_with(cli.clone(), &["--config", &server_config.display().to_string()])?;
    let ds_after = cli.run(&["dnssec", "ds"], &["child.parent.test."])?.ok()?.stdout.trim().to_owned();
    ensure!(ds_after == child_ds, "the DS changed across a restart: {child_ds} then {ds_after}");
    drop(again);
    Ok(())
}

#[test]
fn unbound_validates_nsec_answers() -> Result<()> {
    validated_by_unbound(false)
}

#[test]
fn unbound_validates_nsec3_answers() -> Result<()> {
    validated_by_unbound(true)
}
