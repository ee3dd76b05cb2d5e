//! Record content through the PowerDNS-compatible API, against a real
//! PowerDNS: the same PATCHes go to both, and sixgate must take exactly
//! what PowerDNS takes (names absolute, with the final dot) and refuse
//! what it refuses (a relative name, a name without its dot, `@`), and
//! what both take must read back as the same content.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sixgate_e2e::http::request;
use sixgate_e2e::powerdns::PowerDns;
use sixgate_e2e::{Sixgate, ZoneFile};

const TIMEOUT: Duration = Duration::from_secs(30);
const ORIGIN: &str = "example.test.";
const ZONE: &str = "$ORIGIN example.test.\n$TTL 300\n@ SOA ns1.example.test. hostmaster.example.test. 1 3600 900 604800 300\n\
@ NS ns1.example.test.\nns1 A 192.0.2.53\n";

/// (type, content).
const CASES: &[(&str, &str)] = &[
    ("CNAME", "target.example.net."),
    ("CNAME", "target.example.net"),
    ("CNAME", "target"),
    ("CNAME", "@"),
    ("CNAME", "a\\.b.example.net."),
    ("MX", "10 mail.example.test."),
    ("MX", "10 mail"),
    ("MX", "10 ."),
    ("SRV", "0 5 443 www.example.test."),
    ("SRV", "0 5 443 www"),
    ("NS", "ns.example.net."),
    ("NS", "ns"),
    ("PTR", "host.example.net."),
    ("TXT", "\"@ stays text\""),
    ("A", "192.0.2.1"),
];

// Not compared: `\@.example.net.`, a label made of `@`. PowerDNS wants
// content exactly as it would print it, and prints that label unescaped,
// so it refuses the escaped form (and misreads the bare one as `@.`);
// sixgate takes the escaped form (RFC 1035 §5.1) and prints it so.

fn zone_file(dir: &Path) -> Result<ZoneFile> {
    let path = dir.join("example.test.zone");
    std::fs::write(&path, ZONE)?;
    Ok(ZoneFile::new(ORIGIN, path))
}

/// PATCHes one RRset; returns the status and the stored content of the
/// RRset afterwards (sorted), if any.
fn patch(base: &str, key: &str, owner: &str, rtype: &str, content: &str) -> Result<(u16, Vec<String>)> {
    let zone = format!("{base}/api/v1/servers/localhost/zones/{ORIGIN}");
    let body = json!({"rrsets": [{
        "name": owner, "type": rtype, "ttl": 60, "changetype": "REPLACE",
        "records": [{"content": content, "disabled": false}],
    }]});
    let r = request("PATCH", &zone, &[("X-API-Key", key)], Some(&body.to_string()), TIMEOUT)?;
    let g = request("GET", &zone, &[("X-API-Key", key)], None, TIMEOUT)?;
    ensure!(g.status == 200, "GET {zone}: {} {}", g.status, g.body);
    let v: Value = serde_json::from_str(&g.body).context("zone JSON")?;
    let mut stored: Vec<String> = v["rrsets"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["name"] == owner && s["type"] == rtype)
        .flat_map(|s| s["records"].as_array().cloned().unwrap_or_default())
        .filter_map(|r| r["content"].as_str().map(str::to_string))
        .collect();
    stored.sort();
    Ok((r.status, stored))
}

#[test]
fn content_names_are_taken_and_refused_as_powerdns_does() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let zone = zone_file(dir.path())?;
    let pdns = PowerDns::start(&zone, "key")?;
    let sixgate = Sixgate::start(std::slice::from_ref(&zone))?;
    let base = sixgate.api_url().context("serve printed no `listening api` line")?;
    let token = sixgate.cli().run(&["token", "create"], &[])?.ok()?.stdout.trim().to_string();
    let mut wrong = Vec::new();
    let (mut taken, mut refused) = (0, 0);
    for (i, &(rtype, content)) in CASES.iter().enumerate() {
        let owner = format!("n{i}.{ORIGIN}");
        let (ps, pstored) = patch(pdns.api_url(), pdns.api_key(), &owner, rtype, content)?;
        let (ss, sstored) = patch(&base, &token, &owner, rtype, content)?;
        let (pok, sok) = ((200..300).contains(&ps), (200..300).contains(&ss));
        if pok != sok || pstored != sstored {
            wrong.push(format!("{rtype} {content:?}: PowerDNS {ps} {pstored:?}, sixgate {ss} {sstored:?}"));
        }
        if pok { taken += 1 } else { refused += 1 }
    }
    ensure!(wrong.is_empty(), "sixgate and PowerDNS differ:\n{}", wrong.join("\n"));
    // Both kinds of case were tried.
    ensure!(taken > 3 && refused > 3, "{taken} taken, {refused} refused");
    Ok(())
}
