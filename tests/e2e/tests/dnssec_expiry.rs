//! The signature expiry watchdog, end to end: a signed zone whose
//! maintenance has stopped is reported days before its signatures expire
//! (metrics, `dnssec status`, the log).

use std::fs;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use sixgate_e2e::metrics::Metrics;
use sixgate_e2e::process::wait_until;
use sixgate_e2e::{Cli, Sixgate, ZoneFile};

const ZONE: &str = "$ORIGIN example.test.
$TTL 3600
@        SOA  ns1 hostmaster 1 7200 3600 1209600 300
@        NS   ns1
ns1      A    192.0.2.1
www      AAAA 2001:db8::80
";

const DAY: u64 = 86_400;

fn write(dir: &Path, name: &str, text: &str) -> Result<std::path::PathBuf> {
    let path = dir.join(name);
    fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The server's metrics, once the watchdog has reported a signed zone.
fn metrics_with_zone(server: &Sixgate, token: &str, zone: &str) -> Result<Metrics> {
    let base = server.api_url().context("no api url")?;
    let series = format!("sixgate_dnssec_signatures_expiring{{zone=\"{zone}\"}}");
    wait_until("the watchdog to report the signed zone", Duration::from_secs(30), || {
        let m = sixgate_e2e::metrics::fetch(&base, token)?;
        Ok(m.get::<i64>(&series).is_some().then_some(m))
    })
}

/// Regression (issue fault 8): signatures were looked at only when
/// something was published, so with maintenance stopped a zone's
/// signatures ran out with no alert. Twelve days after signing (14-day
/// validity, refresh 7 days before expiry) with maintenance off, the
/// watchdog must report the zone: metric, status, log.
#[test]
fn fault8_the_expiry_watchdog_reports_a_zone_whose_maintenance_stopped() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let cli = Cli::new(dir.path().join("data"))?;
    cli.import(&ZoneFile::new("example.test.", write(dir.path(), "example.test.zone", ZONE)?))?;
    cli.run(&["dnssec", "enable"], &["example.test."])?.ok()?;
    let config = write(dir.path(), "sixgate.toml", "[dnssec]\nmaintain = false\n")?;
    let config = config.display().to_string();

    // Freshly signed: reported, not alerting.
    let server = Sixgate::serve_with(cli.clone(), &["--config", &config])?;
    let token = server.admin_token()?;
    let body = metrics_with_zone(&server, &token, "example.test.")?;
    ensure!(body.get::<i64>("sixgate_dnssec_zones_expiring") == Some(0), "{}", body.0);
    let left = body
        .get::<i64>("sixgate_dnssec_signature_expiry_seconds{zone=\"example.test.\"}")
        .context(body.0.clone())?;
    ensure!(left > 13 * DAY as i64, "{}", body.0);
    drop(server);

    // Twelve days on, nothing re-signed: an alert with two days to go.
    let clock = (unix_now() + 12 * DAY).to_string();
    let env = [("SIXGATE_CLOCK", clock.as_str())];
    let server = Sixgate::serve_with_env(cli.clone(), &["--config", &config], &env)?;
    let body = metrics_with_zone(&server, &token, "example.test.")?;
    ensure!(body.get::<i64>("sixgate_dnssec_zones_expiring") == Some(1), "{}", body.0);
    let expiring = body.get::<i64>("sixgate_dnssec_signatures_expiring{zone=\"example.test.\"}");
    ensure!(expiring.is_some_and(|n| n > 0), "{}", body.0);
    let left = body
        .get::<i64>("sixgate_dnssec_signature_expiry_seconds{zone=\"example.test.\"}")
        .context(body.0.clone())?;
    ensure!(left > 0 && left < 3 * DAY as i64, "{}", body.0);
    // Still served: two days of validity pass the pre-serve check.
    let soa = sixgate_e2e::kdig::kdig(server.udp_addr(), &["example.test.", "SOA"])?;
    ensure!(soa.status == "NOERROR" && soa.aa(), "{}", soa.text);
    let status = cli.run_env(&env, &["dnssec", "status"], &["example.test."])?.ok()?;
    ensure!(status.stdout.contains("alert\tsignatures expire soon"), "{status}");
    wait_until("the watchdog's log line", Duration::from_secs(30), || {
        let log = server.stderr_tail(200);
        Ok((log.contains("WARN") && log.contains("expire soon") && log.contains("example.test."))
            .then_some(()))
    })?;
    Ok(())
}
