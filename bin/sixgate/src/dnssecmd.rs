//! `sixgate dnssec ...`: managed DNSSEC on the store directly, then a poke
//! so a server running on the same data directory serves the change.

use std::path::Path;

use anyhow::{Context, anyhow};
use sixgate_control::publish::poke;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::Record;
use sixgate_dns::{name, zonefile};
use sixgate_dnssec::Algorithm;
use sixgate_dnssec::policy::{Denial, KeyLayout, Policy};
use sixgate_store::{Store, denial_name, rfc3339};

use crate::zonecmd::zone_name;

/// Simulated time for the CLI: `SIXGATE_CLOCK` (Unix seconds) makes every
/// time-driven step (signature inception and expiration, key timelines)
/// happen as if it were that time. For tests and rehearsals of rollovers.
pub(crate) const CLOCK_ENV: &str = "SIXGATE_CLOCK";

/// Opens the store, on the simulated clock if `SIXGATE_CLOCK` is set.
pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
    let mut store = Store::open(dir).with_context(|| format!("opening store in {}", dir.display()))?;
    if let Ok(t) = std::env::var(CLOCK_ENV) {
        let t: i64 =
            t.trim().parse().with_context(|| format!("{CLOCK_ENV} must be Unix seconds, not {t:?}"))?;
        let real = store.now();
        store.set_clock_offset(t - real);
    }
    Ok(store)
}

pub(crate) fn maintain(dir: &Path, zone: &str, parents: &[String]) -> anyhow::Result<()> {
    use sixgate_control::dnssec::{DnssecSettings, maintain_zone};
    let apex = zone_name(zone)?;
    let servers = parents
        .iter()
        .map(|p| p.parse::<std::net::SocketAddr>().with_context(|| format!("bad parent server {p:?}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let settings = DnssecSettings {
        parents: if servers.is_empty() { Vec::new() } else { vec![(Box::from(&[0u8][..]), servers)] },
        resolvers: sixgate_control::verify::system_resolvers(),
        check_interval: std::time::Duration::from_secs(3600),
    };
    let store = std::sync::Arc::new(std::sync::Mutex::new(open(dir)?));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let step = rt.block_on(maintain_zone(&store, &settings, &apex)).map_err(|e| anyhow!(e))?;
    if let Some(e) = &step.parent_error {
        eprintln!("could not ask the parent for DS: {e}");
    }
    let done = step.maintained;
    if let Some(c) = done.commit {
        poke(dir);
        eprintln!("{} changed (serial {})", name::to_text(&apex), c.serial);
    }
    let store = store.lock().unwrap_or_else(|p| p.into_inner());
    match store.dnssec_info(&apex)? {
        Some(i) => println!("verdict\t{}\nnext_event\t{}", i.verdict().as_str(), time(done.next_event)),
        None => println!("verdict\tinsecure"),
    }
    Ok(())
}

pub(crate) fn roll(dir: &Path, zone: &str, what: &str, algorithm: Option<&str>) -> anyhow::Result<()> {
    use sixgate_store::Roll;
    let apex = zone_name(zone)?;
    let roll = match (what, algorithm) {
        ("ksk", None) => Roll::Ksk,
        ("zsk", None) => Roll::Zsk,
        ("algorithm", Some(a)) => Roll::Algorithm(a.parse()?),
        ("algorithm", None) => return Err(anyhow!("an algorithm rollover needs --algorithm")),
        (_, Some(_)) => return Err(anyhow!("--algorithm goes with `roll ZONE algorithm`")),
        _ => return Err(anyhow!("roll ksk, zsk or algorithm")),
    };
    let mut store = open(dir)?;
    let done = store.by(sixgate_store::Actor::cli()).dnssec_roll(&apex, roll)?;
    if done.commit.is_some() {
        poke(dir);
    }
    eprintln!("{} rollover started; next step at {}", what, time(done.next_event));
    Ok(())
}

/// DS records in presentation format, one per line.
fn ds_line(r: &Record) -> String {
    format!("{} {} IN DS {}", name::to_text(&r.owner), r.ttl, zonefile::rdata_text(code::DS, &r.rdata))
}

fn ds_lines(store: &Store, apex: &[u8]) -> anyhow::Result<Vec<String>> {
    Ok(store.dnssec_ds(apex)?.iter().map(ds_line).collect())
}

/// The DS lines, each with when the registry may publish it.
fn ds_lines_publish_after(store: &Store, apex: &[u8]) -> anyhow::Result<Vec<(String, Option<u64>)>> {
    Ok(store.dnssec_ds_publish_after(apex)?.iter().map(|(r, t)| (ds_line(r), *t)).collect())
}

pub(crate) fn enable(
    dir: &Path,
    zone: &str,
    algorithm: &str,
    nsec3: bool,
    ksk_zsk: bool,
    policy: Option<&str>,
) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let algorithm: Algorithm = algorithm.parse()?;
    let base: Policy = match policy {
        Some(json) => serde_json::from_str(json).map_err(|e| anyhow!("--policy: {e}"))?,
        None => Policy::default(),
    };
    let policy = Policy {
        algorithm,
        // --nsec3 picks NSEC3 without overriding what --policy says about
        // it: an opt-out asked for there is refused, not dropped.
        denial: if nsec3 && base.denial == Denial::Nsec {
            Denial::Nsec3 { opt_out: false }
        } else {
            base.denial
        },
        layout: if ksk_zsk { KeyLayout::KskZsk } else { base.layout },
        ..base
    };
    let mut store = open(dir)?;
    let commit = store.by(sixgate_store::Actor::cli()).dnssec_enable(&apex, &policy)?;
    poke(dir);
    if commit.journal_id == 0 {
        eprintln!("{} is already signed with {algorithm}", name::to_text(&apex));
    } else {
        eprintln!(
            "signed {} with {algorithm} and {} (serial {}); give the registry this DS:",
            name::to_text(&apex),
            denial_name(&policy.denial),
            commit.serial
        );
    }
    // The DS lines stay as they were (outside checks parse them); each is
    // followed by when the registry may publish it.
    for (line, after) in ds_lines_publish_after(&store, &apex)? {
        println!("{line}");
        if let Some(t) = after {
            println!("; publish-after {}", rfc3339(t.min(i64::MAX as u64) as i64));
        }
    }
    Ok(())
}

pub(crate) fn disable(dir: &Path, zone: &str, now: bool, force: bool) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let mut store = open(dir)?;
    if now {
        let commit = store.by(sixgate_store::Actor::cli()).dnssec_unsign(&apex, force)?;
        poke(dir);
        eprintln!(
            "{} is unsigned (serial {}); if the parent still has a DS for it, remove it there now",
            name::to_text(&apex),
            commit.serial
        );
    } else {
        store.by(sixgate_store::Actor::cli()).dnssec_start_unsigning(&apex)?;
        poke(dir);
        eprintln!(
            "{} publishes CDS/CDNSKEY delete; it stays signed until the parent has removed its DS",
            name::to_text(&apex)
        );
    }
    Ok(())
}

fn time(t: Option<u64>) -> String {
    t.map_or_else(|| "-".into(), |t| rfc3339(t as i64))
}

pub(crate) fn status(dir: &Path, zone: &str) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let store = open(dir)?;
    let Some(info) = store.dnssec_info(&apex)? else {
        println!("zone\t{}\nsigned\tno\nverdict\tinsecure", name::to_text(&apex));
        return Ok(());
    };
    println!("zone\t{}", name::to_text(&apex));
    println!("signed\tyes");
    println!("algorithm\t{}", info.policy.algorithm);
    println!("denial\t{}", denial_name(&info.policy.denial));
    println!("verdict\t{}", info.verdict().as_str());
    println!("next_event\t{}", time(info.state.next_event));
    let parent = match (&info.state.parent, &info.state.parent_error) {
        (_, Some(e)) => format!("error at {}: {e}", time(info.state.parent_checked_at)),
        (Some(p), None) if p.serves_no_ds() => format!("no DS (seen {})", time(Some(p.observed_at))),
        (Some(p), None) if p.ds.is_empty() => {
            format!("no DS from the servers that answered (seen {})", time(Some(p.observed_at)))
        }
        (Some(p), None) => {
            let tags: Vec<String> = p.ds.iter().map(|(t, a)| format!("{t}/{a}")).collect();
            format!("DS {} TTL {} (seen {})", tags.join(" "), p.ttl, time(Some(p.observed_at)))
        }
        (None, None) => "not checked yet".into(),
    };
    println!("parent\t{parent}");
    for k in &info.keys {
        let r = &k.record;
        let alg =
            Algorithm::from_code(r.algorithm).map_or_else(|| r.algorithm.to_string(), |a| a.to_string());
        println!(
            "key\t{:?}\t{}\t{alg}\t{:?}\tds={:?}\tpublished {}\tactive {}",
            r.role,
            r.key_tag,
            r.state,
            r.ds,
            time(r.times.published),
            time(r.times.active)
        );
    }
    for line in ds_lines(&store, &apex)? {
        println!("ds\t{line}");
    }
    for w in &info.state.waiting {
        println!("waiting\t{w:?}");
    }
    if let Some(alert) = &info.state.alert {
        println!("alert\t{alert}");
    }
    Ok(())
}

pub(crate) fn ds(dir: &Path, zone: &str) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let store = open(dir)?;
    if store.dnssec_info(&apex)?.is_none() {
        return Err(anyhow!("{} is not signed (sixgate dnssec enable {})", name::to_text(&apex), zone));
    }
    for line in ds_lines(&store, &apex)? {
        println!("{line}");
    }
    Ok(())
}

pub(crate) fn sign_file(
    file: &Path,
    origin: &str,
    algorithm: &str,
    nsec3: bool,
    threads: Option<usize>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    use sixgate_dns::zone::sort_canonical;
    use sixgate_dnssec::denial::Nsec3Params;
    use sixgate_dnssec::key::flags;
    use sixgate_dnssec::sign::{ActiveKey, Signer};
    use sixgate_dnssec::{KeyPair, ds};

    let apex = zone_name(origin)?;
    let algorithm: Algorithm = algorithm.parse()?;
    let mut records = crate::zonecmd::read_zone_file(file, &apex)?;
    let policy = Policy::default();
    let key = KeyPair::generate(algorithm, flags::ZONE | flags::SEP)?;
    let dnskey = key.dnskey_rdata();
    records.push(Record {
        owner: apex.clone(),
        rtype: code::DNSKEY,
        ttl: policy.dnskey_ttl,
        rdata: dnskey.clone().into(),
    });
    let params = nsec3.then(Nsec3Params::default);
    if let Some(p) = &params {
        records.push(Record {
            owner: apex.clone(),
            rtype: code::NSEC3PARAM,
            ttl: 0,
            rdata: p.nsec3param_rdata().into(),
        });
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let signer = Signer {
        apex: apex.clone(),
        keys: vec![ActiveKey { key: &key, tag: key.key_tag(), signs_keys: true, signs_zone: true }],
        nsec3: params,
        now,
        inception_offset: 3600,
        validity: policy.signature_validity,
        jitter: policy.signature_jitter,
    };
    let threads = threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let signed = signer.sign_zone(&records, threads)?.records;
    records.extend(signed);
    sort_canonical(&mut records);
    match out {
        Some(path) => {
            let mut f =
                std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
            write_zone(&mut f, &apex, &records, threads, RENDER_PIECE)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => write_zone(&mut std::io::stdout().lock(), &apex, &records, threads, RENDER_PIECE)?,
    }
    if let Some(d) = ds::ds_rdata(&apex, &dnskey, ds::SHA256) {
        eprintln!(
            "{} {} IN DS {}",
            name::to_text(&apex),
            policy.dnskey_ttl,
            zonefile::rdata_text(code::DS, &d)
        );
    }
    Ok(())
}

pub(crate) fn export_keys(dir: &Path, zone: &str) -> anyhow::Result<()> {
    use base64::Engine as _;
    let apex = zone_name(zone)?;
    let store = open(dir)?;
    let keys = store.dnssec_private_keys(&apex)?;
    if keys.is_empty() {
        return Err(anyhow!("{} has no keys (is it signed?)", name::to_text(&apex)));
    }
    for (info, pkcs8) in keys {
        let r = &info.record;
        let alg =
            Algorithm::from_code(r.algorithm).map_or_else(|| r.algorithm.to_string(), |a| a.to_string());
        println!("# {} key {} {alg} {:?} flags {}", name::to_text(&apex), r.key_tag, r.role, info.flags);
        println!("-----BEGIN PRIVATE KEY-----");
        let b64 = base64::engine::general_purpose::STANDARD.encode(&pkcs8);
        for chunk in b64.as_bytes().chunks(64) {
            println!("{}", String::from_utf8_lossy(chunk));
        }
        println!("-----END PRIVATE KEY-----");
    }
    tracing::warn!(zone = %name::to_text(&apex), "private keys exported");
    eprintln!("exported the private keys of {}; keep the output secret", name::to_text(&apex));
    Ok(())
}

pub(crate) fn remove_key(dir: &Path, zone: &str, key_tag: u16, force: bool) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let mut store = open(dir)?;
    let done = store.by(sixgate_store::Actor::cli()).dnssec_remove_key(&apex, key_tag, force)?;
    if done.commit.is_some() {
        poke(dir);
    }
    eprintln!("key {key_tag} of {} removed", name::to_text(&apex));
    Ok(())
}

/// Records per piece when a signed zone is written: small enough that the
/// pieces in memory at a time cost little next to the zone itself.
const RENDER_PIECE: usize = 32 * 1024;

/// Writes `records` as a zone file, the same text as
/// [`zonefile::render`]: rendered in pieces of `piece` records on
/// `threads` threads, and written in order as they are done, so the whole
/// text is never in memory.
fn write_zone(
    out: &mut impl std::io::Write,
    apex: &[u8],
    records: &[sixgate_dns::zone::Record],
    threads: usize,
    piece: usize,
) -> std::io::Result<()> {
    writeln!(out, "$ORIGIN {}", name::to_text(apex))?;
    let piece = piece.max(1);
    for batch in records.chunks(piece.saturating_mul(threads.max(1))) {
        let texts: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> =
                batch.chunks(piece).map(|p| s.spawn(move || zonefile::render_records(p))).collect();
            handles
                .into_iter()
                .map(|h| h.join().map_err(|_| std::io::Error::other("rendering the zone failed")))
                .collect::<std::io::Result<_>>()
        })?;
        for t in &texts {
            out.write_all(t.as_bytes())?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zone_written_in_pieces_is_the_rendered_zone() {
        let apex = name::from_text("example.test.", None).unwrap();
        let text = (0..50).map(|i| format!("h{i} 300 IN AAAA 2001:db8::{i:x}\nh{i} 300 IN TXT \"t{i}\"\n"));
        let records = zonefile::parse(&text.collect::<String>(), &apex).unwrap();
        let whole = zonefile::render(&apex, &records);
        for (threads, piece) in [(1, 1000), (1, 7), (3, 7), (4, 1)] {
            let mut out = Vec::new();
            write_zone(&mut out, &apex, &records, threads, piece).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), whole, "{threads} threads, pieces of {piece}");
        }
    }
}
