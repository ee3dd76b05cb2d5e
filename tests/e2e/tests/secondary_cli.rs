//! The `sixgate secondary` and `sixgate tsig create --transfer` command
//! line, as outside checks drive it: what is stored reads back, and bad
//! input is refused with a clear message and nothing stored.

use anyhow::{Context, Result, ensure};
use sixgate_e2e::Cli;

#[test]
fn secondaries_and_transfer_keys_are_added_listed_and_removed() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;

    // A transfer key prints as kdig -y takes it; a second of the name is
    // refused.
    let made = cli.run(&["tsig", "create"], &["xfr-key", "--transfer"])?.ok()?;
    let line = made.stdout.trim();
    let parts: Vec<&str> = line.split(':').collect();
    ensure!(parts.len() == 3 && parts[0] == "hmac-sha256" && parts[1] == "xfr-key", "{line}");
    ensure!(parts[2].len() == 44, "a 256-bit secret in base64: {line}");
    let again = cli.run(&["tsig", "create"], &["xfr-key", "--transfer"])?;
    ensure!(!again.success() && again.stderr.contains("already exists"), "{again}");

    // Every form of `secondary add`.
    cli.run(&["secondary", "add"], &["[::1]:5301", "--tsig", line, "--catalog"])?.ok()?;
    cli.run(&["secondary", "add"], &["127.0.0.1:5302", "--zone", "Example.COM", "--zone", "b.test."])?
        .ok()?;
    cli.run(&["secondary", "add"], &["127.0.0.1:5303"])?.ok()?;
    let list = cli.run(&["secondary", "list"], &[])?.ok()?;
    let want = "127.0.0.1:5302\t-\tb.test.,example.com.\n\
                127.0.0.1:5303\t-\tall zones\n\
                [::1]:5301\txfr-key.\tcatalog\n";
    ensure!(list.stdout == want, "{list}");

    // The key of a secondary stays until the secondary goes.
    let busy = cli.run(&["tsig", "delete"], &["xfr-key"])?;
    ensure!(!busy.success() && busy.stderr.contains("remove the secondary first"), "{busy}");
    cli.run(&["secondary", "remove"], &["[::1]:5301"])?.ok()?;
    cli.run(&["tsig", "delete"], &["xfr-key"])?.ok()?;
    let gone = cli.run(&["secondary", "remove"], &["[::1]:5301"])?;
    ensure!(!gone.success() && gone.stderr.contains("no secondary [::1]:5301"), "{gone}");

    // Bad input: a clear error, nothing stored.
    for (args, says) in [
        (&["1.2.3.4"][..], "invalid socket address"),
        (&["127.0.0.1:0"][..], "needs an address and a port"),
        (&["127.0.0.1:53", "--tsig", "hmac-md5:k:AAAAAAAAAAAAAAAAAAAAAA=="][..], "must be one of"),
        (&["127.0.0.1:53", "--tsig", "hmac-sha256:k:c2hvcnQ="][..], "at least 16"),
        (&["127.0.0.1:53", "--tsig", "hmac-sha256:k:not base64!"][..], "not base64"),
    ] {
        let out = cli.run(&["secondary", "add"], args)?;
        ensure!(!out.success() && out.stderr.contains(says), "{args:?}: {out}");
    }
    let list = cli.run(&["secondary", "list"], &[])?.ok()?;
    ensure!(list.stdout.lines().count() == 2, "{list}");
    let no_zone = cli.run(&["tsig", "create"], &["k"])?;
    ensure!(!no_zone.success() && no_zone.stderr.contains("--zone"), "{no_zone}");
    Ok(())
}

/// The line of `zone list` for `zone`, split at tabs.
fn listed(cli: &Cli, zone: &str) -> Result<Option<Vec<String>>> {
    let list = cli.run(&["zone", "list"], &[])?.ok()?;
    Ok(list
        .stdout
        .lines()
        .find(|l| l.split('\t').next() == Some(zone))
        .map(|l| l.split('\t').map(str::to_owned).collect()))
}

#[test]
fn the_catalog_zone_is_listed_once_a_secondary_follows_it_and_moves_with_the_zones() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    let zone = dir.path().join("a.test.zone");
    std::fs::write(&zone, "@ 60 SOA ns h 1 2 3 4 5\n@ 60 NS ns.x.\n")?;
    cli.run(&["zone", "import"], &["a.test.", &zone.display().to_string()])?.ok()?;
    ensure!(listed(&cli, "catalog.invalid.")?.is_none(), "no catalog without a catalog secondary");
    cli.run(&["secondary", "add"], &["127.0.0.1:5301"])?.ok()?;
    ensure!(
        listed(&cli, "catalog.invalid.")?.is_none(),
        "a secondary of every zone does not follow the catalog"
    );

    cli.run(&["secondary", "add"], &["127.0.0.1:5302", "--catalog"])?.ok()?;
    let one = listed(&cli, "catalog.invalid.")?.context("the catalog zone is not listed")?;
    ensure!(
        one.len() == 4 && one[2] == "5" && one[3] == "catalog",
        "SOA, NS, version and one member with its group: {one:?}"
    );
    let serial: u32 = one[1].parse()?;

    cli.run(&["zone", "delete"], &["a.test."])?.ok()?;
    let none = listed(&cli, "catalog.invalid.")?.context("the catalog zone is not listed")?;
    ensure!(none[2] == "3", "no member after the delete: {none:?}");
    ensure!(none[1].parse::<u32>()? > serial, "the serial moves with the list: {none:?} after {serial}");
    Ok(())
}
