//! `sixgate token create` and `sixgate tsig ...`: credentials made on the
//! data directory directly, so the first one exists before any API call.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use base64::Engine as _;
use sixgate_dns::name;
use sixgate_dns::tsig::Algorithm;
use sixgate_store::{OPERATOR_ACCOUNT, Scope, Store, ip6_arpa};

use crate::zonecmd::zone_name;

fn open(dir: &Path) -> anyhow::Result<Store> {
    Store::open(dir).with_context(|| format!("opening store in {}", dir.display()))
}

/// Makes a token and prints it, and only it, on stdout.
pub(crate) fn token_create(
    dir: &Path,
    account: Option<&str>,
    zone: Option<&str>,
    acme_only: bool,
    ptr: Option<&str>,
) -> anyhow::Result<()> {
    let mut store = open(dir)?;
    let named = account.map(|a| store.account(a)).transpose()?;
    let (account_id, scope) = match (zone, ptr) {
        (Some(_), Some(_)) => bail!("give --zone or --ptr, not both"),
        (Some(z), None) => {
            let apex = zone_name(z)?;
            let owner = store
                .zone_owner(&apex)?
                .ok_or_else(|| anyhow!("zone {} does not exist", name::to_text(&apex)))?;
            if let Some(a) = &named
                && a.id != owner.account_id
            {
                bail!("zone {} does not belong to account {}", name::to_text(&apex), a.name);
            }
            let key = name::to_lowercase(&apex);
            (owner.account_id, if acme_only { Scope::Acme(key) } else { Scope::Zone(key) })
        }
        (None, Some(prefix)) => {
            let reverse = ip6_arpa(prefix).map_err(|e| anyhow!("--ptr: {e}"))?;
            let a = named.as_ref().ok_or_else(|| anyhow!("--ptr needs --account"))?;
            (a.id, Scope::Ptr { reverse, prefix: prefix.to_string() })
        }
        (None, None) if acme_only => bail!("--acme-only needs --zone"),
        (None, None) => match &named {
            Some(a) => (a.id, Scope::Account),
            None => (OPERATOR_ACCOUNT, Scope::Admin),
        },
    };
    let (token, secret) = store.create_token(account_id, scope)?;
    tracing::info!(id = token.id, "token created");
    println!("{secret}");
    Ok(())
}

/// TSIG algorithms offered, by their names in `-y` strings.
const ALGORITHMS: &[&str] = &["hmac-sha256", "hmac-sha512", "hmac-md5"];

/// Makes a TSIG key for a zone and prints `ALGORITHM:NAME:SECRET`.
pub(crate) fn tsig_create(
    dir: &Path,
    key: &str,
    zone: &str,
    acme_only: bool,
    algorithm: &str,
) -> anyhow::Result<()> {
    let algorithm = algorithm.to_ascii_lowercase();
    if !ALGORITHMS.contains(&algorithm.as_str()) {
        bail!("--algorithm must be one of {}, not {algorithm:?}", ALGORITHMS.join(", "));
    }
    let key_name = zone_name(key).map_err(|e| anyhow!("bad key name: {e}"))?;
    let apex = zone_name(zone)?;
    let mut store = open(dir)?;
    let secret = store.create_tsig_key(&key_name, &algorithm, &apex, acme_only)?;
    let shown = name::to_text(&key_name);
    println!(
        "{algorithm}:{}:{}",
        shown.trim_end_matches('.'),
        base64::engine::general_purpose::STANDARD.encode(secret)
    );
    if algorithm == "hmac-md5" {
        eprintln!("note: hmac-md5 keys work only with [update] hmac_md5 = true in the configuration");
    }
    Ok(())
}

/// The algorithm of a transfer key, read as knsupdate -y reads it: one of
/// the HMAC-SHA-2 ones every secondary supports (RFC 8945 §6 keeps
/// HMAC-MD5 for old peers only). `what` names the option in the error.
fn transfer_algorithm(text: &str, what: &str) -> anyhow::Result<Algorithm> {
    match Algorithm::from_text(text) {
        Some(a @ (Algorithm::HmacSha256 | Algorithm::HmacSha512)) => Ok(a),
        _ => bail!("{what} must be one of hmac-sha256, hmac-sha512, not {text:?}"),
    }
}

/// Makes a zone-transfer key and prints it as kdig -y and knotc take it.
pub(crate) fn transfer_key_create(dir: &Path, key: &str, algorithm: &str) -> anyhow::Result<()> {
    let algorithm = transfer_algorithm(algorithm, "a transfer key's --algorithm")?;
    let key_name = zone_name(key).map_err(|e| anyhow!("bad key name: {e}"))?;
    let made = open(dir)?.create_transfer_key(&key_name, algorithm)?;
    println!("{}", key_text(&made));
    Ok(())
}

/// `ALGORITHM:NAME:SECRET`, the name without its final dot.
fn key_text(key: &sixgate_store::TransferKey) -> String {
    format!(
        "{}:{}:{}",
        key.algorithm,
        name::to_text(&key.name).trim_end_matches('.'),
        base64::engine::general_purpose::STANDARD.encode(&key.secret)
    )
}

/// Reads `ALGORITHM:NAME:SECRET` (kdig -y's form; `hmac-sha256` may be
/// left out, as kdig allows).
fn parse_key(text: &str) -> anyhow::Result<sixgate_store::TransferKey> {
    let parts: Vec<&str> = text.trim().split(':').collect();
    let (algorithm, key_name, secret) = match parts.as_slice() {
        [a, n, s] => (transfer_algorithm(a, "the --tsig algorithm")?, *n, *s),
        [n, s] => (Algorithm::HmacSha256, *n, *s),
        _ => bail!("--tsig must be ALGORITHM:NAME:SECRET, e.g. hmac-sha256:xfr-key:BASE64"),
    };
    let name = zone_name(key_name).map_err(|e| anyhow!("bad key name in --tsig: {e}"))?;
    let secret = base64::engine::general_purpose::STANDARD
        .decode(secret)
        .map_err(|e| anyhow!("the secret in --tsig is not base64: {e}"))?;
    // RFC 8945 §6: a key shorter than half the hash output is too weak.
    if secret.len() < 16 {
        bail!("the secret in --tsig is {} octets; at least 16 are needed", secret.len());
    }
    Ok(sixgate_store::TransferKey { name, algorithm: algorithm.to_text().into(), secret })
}

/// Adds (or replaces) a secondary.
pub(crate) fn secondary_add(
    dir: &Path,
    address: std::net::SocketAddr,
    tsig: Option<&str>,
    catalog: bool,
    zones: &[String],
) -> anyhow::Result<()> {
    let key = tsig.map(parse_key).transpose()?;
    let zones = zones.iter().map(|z| zone_name(z)).collect::<anyhow::Result<Vec<_>>>()?;
    let secondary = sixgate_store::Secondary { address, key, catalog, zones };
    open(dir)?.add_secondary(&secondary)?;
    Ok(())
}

/// Lists the secondaries, a line each: ADDRESS, KEY or -, and `catalog`,
/// `all zones` or the zones named for it.
pub(crate) fn secondary_list(dir: &Path) -> anyhow::Result<()> {
    for s in open(dir)?.secondaries()? {
        let key = s.key.as_ref().map(|k| name::to_text(&k.name)).unwrap_or_else(|| "-".into());
        let carries = if s.catalog {
            "catalog".to_owned()
        } else if s.zones.is_empty() {
            "all zones".to_owned()
        } else {
            s.zones.iter().map(|z| name::to_text(z)).collect::<Vec<_>>().join(",")
        };
        println!("{}\t{key}\t{carries}", s.address);
    }
    Ok(())
}

/// Removes a secondary.
pub(crate) fn secondary_remove(dir: &Path, address: std::net::SocketAddr) -> anyhow::Result<()> {
    if !open(dir)?.remove_secondary(address)? {
        bail!("no secondary {address}");
    }
    Ok(())
}

/// Deletes a TSIG key, an UPDATE key or a transfer key.
pub(crate) fn tsig_delete(dir: &Path, key: &str) -> anyhow::Result<()> {
    let key_name = zone_name(key).map_err(|e| anyhow!("bad key name: {e}"))?;
    let mut store = open(dir)?;
    if !store.delete_tsig_key(&key_name)? && !store.delete_transfer_key(&key_name)? {
        bail!("no TSIG key {}", name::to_text(&key_name));
    }
    Ok(())
}

/// Creates an account on the data directory.
pub(crate) fn account_create(dir: &Path, account: &str) -> anyhow::Result<()> {
    let a = open(dir)?.create_account(account)?;
    println!("{}", a.name);
    Ok(())
}

/// An account's own nameserver names as text; empty when per-account
/// names are not configured (the shared `dns.nameservers` apply, which
/// only `serve`'s configuration knows).
fn own_nameservers(store: &Store, a: &sixgate_store::Account) -> anyhow::Result<Vec<String>> {
    Ok(store.account_nameservers(a.id)?.unwrap_or_default().iter().map(|n| name::to_text(n)).collect())
}

/// Lists accounts: NAME, ID, ZONES and NAMESERVERS, tab-separated.
pub(crate) fn account_list(dir: &Path) -> anyhow::Result<()> {
    let store = open(dir)?;
    for a in store.accounts()? {
        let ns = own_nameservers(&store, &a)?;
        let ns = if ns.is_empty() { "-".to_string() } else { ns.join(",") };
        println!("{}\t{}\t{}\t{ns}", a.name, a.id, a.zones);
    }
    Ok(())
}

/// Shows one account of the data directory.
pub(crate) fn account_show(dir: &Path, account: Option<&str>) -> anyhow::Result<()> {
    let account = account.ok_or_else(|| anyhow!("give the account's name (or use --api with its token)"))?;
    let store = open(dir)?;
    let a = store.account(account)?;
    print_account(&a.name, &a.id.to_string(), &a.zones.to_string(), &own_nameservers(&store, &a)?);
    Ok(())
}

/// `account show`'s output: `KEY<TAB>VALUE` lines, one `nameserver` line
/// per name, in order.
pub(crate) fn print_account(name: &str, id: &str, zones: &str, nameservers: &[String]) {
    println!("name\t{name}\nid\t{id}\nzones\t{zones}");
    for n in nameservers {
        println!("nameserver\t{n}");
    }
}

/// `account limits NAME [--LIMIT N|default]...`: sets the limits given (in
/// the order records_per_rrset, rrsets_per_name, names_per_zone, zones,
/// records, tokens), then prints every limit in force.
pub(crate) fn account_limits(dir: &Path, account: &str, set: [Option<String>; 6]) -> anyhow::Result<()> {
    const NAMES: [&str; 6] =
        ["records_per_rrset", "rrsets_per_name", "names_per_zone", "zones", "records", "tokens"];
    let mut store = open(dir)?;
    let a = store.account(account)?;
    if a.id == sixgate_store::OPERATOR_ACCOUNT {
        anyhow::bail!(
            "the operator account has no limits but the RRset size ({} octets)",
            sixgate_dns::limits::RRSET_OCTETS
        );
    }
    if set.iter().any(Option::is_some) {
        // Values as stored: `None` takes the default.
        let stored = store.stored_account_limits(a.id)?;
        let mut v = stored;
        for (i, given) in set.iter().enumerate() {
            if let Some(text) = given {
                let slot = v.get_mut(i).ok_or_else(|| anyhow!("no limit {i}"))?;
                *slot = match text.as_str() {
                    "default" => None,
                    n => Some(
                        n.parse::<u64>()
                            .map_err(|_| anyhow!("--{}: not a number: {n:?}", NAMES[i].replace('_', "-")))?,
                    ),
                };
            }
        }
        let [rr, rn, nz, z, rec, tok] = v;
        let size =
            sixgate_store::SizeLimits { records_per_rrset: rr, rrsets_per_name: rn, names_per_zone: nz };
        let quotas = sixgate_store::Quotas { zones: z, records: rec, tokens: tok };
        store.set_account_limits(a.id, &size, &quotas)?;
    }
    let l = store.account_limits(a.id)?;
    let shown = [
        l.size.records_per_rrset,
        l.size.rrsets_per_name,
        l.size.names_per_zone,
        l.quotas.zones,
        l.quotas.records,
        l.quotas.tokens,
    ];
    println!("rrset_octets\t{}", sixgate_dns::limits::RRSET_OCTETS);
    for (n, v) in NAMES.iter().zip(shown) {
        println!("{n}\t{}", v.map_or_else(|| "-".to_owned(), |v| v.to_string()));
    }
    Ok(())
}

/// `account prefixes set NAME PREFIX...` (`set` given) and `account
/// prefixes show NAME`: prints the account's backend prefixes, one per
/// line, after replacing them. A running server routes by them at once.
pub(crate) fn account_prefixes(dir: &Path, account: &str, set: Option<&[String]>) -> anyhow::Result<()> {
    let mut store = open(dir)?;
    let a = store.account(account)?;
    let list = match set {
        Some(texts) => {
            let parsed = texts
                .iter()
                .map(|t| sixgate_store::BackendPrefix::parse(t))
                .collect::<Result<Vec<_>, _>>()?;
            let stored = store.set_backend_prefixes(a.id, &parsed)?;
            sixgate_control::publish::poke(dir);
            stored
        }
        None if a.id == OPERATOR_ACCOUNT => {
            bail!(
                "the operator account's backend prefixes are [proxy] allow_backend in serve's configuration"
            )
        }
        None => store.backend_prefixes(a.id)?,
    };
    for p in list {
        println!("{p}");
    }
    Ok(())
}
