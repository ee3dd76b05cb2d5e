//! `sixgate dnssec ...`: managed DNSSEC on the store directly, then a poke
//! so a server running on the same data directory serves the change.

use std::path::Path;

use anyhow::{Context, anyhow};
use sixgate_dns::rtype::code;
use sixgate_dns::{name, zonefile};
use sixgate_dnssec::Algorithm;
use sixgate_dnssec::policy::{Denial, KeyLayout, Policy};
use sixgate_server::publish::poke;
use sixgate_store::{Store, denial_name, rfc3339};

use crate::zonecmd::zone_name;

fn open(dir: &Path) -> anyhow::Result<Store> {
    Store::open(dir).with_context(|| format!("opening store in {}", dir.display()))
}

/// DS records in presentation format, one per line.
fn ds_lines(store: &Store, apex: &[u8]) -> anyhow::Result<Vec<String>> {
    Ok(store
        .dnssec_ds(apex)?
        .iter()
        .map(|r| {
            format!(
                "{} {} IN DS {}",
                name::to_text(&r.owner),
                r.ttl,
                zonefile::rdata_text(code::DS, &r.rdata)
            )
        })
        .collect())
}

pub(crate) fn enable(
    dir: &Path,
    zone: &str,
    algorithm: &str,
    nsec3: bool,
    ksk_zsk: bool,
) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let algorithm: Algorithm = algorithm.parse()?;
    let policy = Policy {
        algorithm,
        denial: if nsec3 { Denial::Nsec3 { opt_out: false } } else { Denial::Nsec },
        layout: if ksk_zsk { KeyLayout::KskZsk } else { KeyLayout::Csk },
        ..Policy::default()
    };
    let mut store = open(dir)?;
    let commit = store.dnssec_enable(&apex, &policy)?;
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
    for line in ds_lines(&store, &apex)? {
        println!("{line}");
    }
    Ok(())
}

pub(crate) fn disable(dir: &Path, zone: &str, now: bool) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    let mut store = open(dir)?;
    if now {
        let commit = store.dnssec_unsign(&apex)?;
        poke(dir);
        eprintln!(
            "{} is unsigned (serial {}); if the parent still has a DS for it, remove it there now",
            name::to_text(&apex),
            commit.serial
        );
    } else {
        let commit = store.dnssec_start_unsigning(&apex)?;
        poke(dir);
        eprintln!(
            "{} publishes CDS/CDNSKEY delete (serial {}); it stays signed until the parent has removed its DS",
            name::to_text(&apex),
            commit.serial
        );
    }
    Ok(())
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
    let verdict = if info.state.unsigning { "going insecure" } else { "waiting for DS" };
    println!("verdict\t{verdict}");
    for k in &info.keys {
        let alg =
            Algorithm::from_code(k.algorithm).map_or_else(|| k.algorithm.to_string(), |a| a.to_string());
        let mut states = Vec::new();
        if k.state.published {
            states.push("published");
        }
        if k.state.signing {
            states.push("signing");
        }
        if k.state.submitted {
            states.push("ds-submitted");
        }
        println!(
            "key\t{}\t{}\t{}\t{}\tsince {}",
            k.state.role.as_str(),
            k.key_tag,
            alg,
            states.join(","),
            rfc3339(k.state.since)
        );
    }
    for line in ds_lines(&store, &apex)? {
        println!("ds\t{line}");
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
    use sixgate_dns::check::check_zone;
    use sixgate_dns::zone::{Record, sort_canonical};
    use sixgate_dnssec::denial::Nsec3Params;
    use sixgate_dnssec::key::flags;
    use sixgate_dnssec::sign::{ActiveKey, Signer};
    use sixgate_dnssec::{KeyPair, ds};

    let apex = zone_name(origin)?;
    let algorithm: Algorithm = algorithm.parse()?;
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (mut records, lines) = zonefile::parse_with_lines(&text, &apex)
        .map_err(|e| anyhow!("{}:{}: {}", file.display(), e.line, e.reason))?;
    drop(text);
    if let Err(e) = check_zone(&apex, &mut records) {
        return Err(match e.index.and_then(|i| lines.get(i)) {
            Some(line) => anyhow!("{}:{}: {}", file.display(), line, e.reason),
            None => anyhow!("{}: {}", file.display(), e.reason),
        });
    }
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
    drop(lines);
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
