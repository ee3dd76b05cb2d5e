//! `sixgate bench ...`: measurements of the product's own paths, for
//! `scripts/bench`.
//!
//! `bench resign` times one-record changes to a signed zone through
//! [`Store::apply`], the write path every change takes: the records are
//! written, the serial bumped, the changed RRsets and chain links signed
//! again inside the transaction, the diff journaled and the transaction
//! committed with `synchronous=FULL`. The signing part is the store's own
//! measurement ([`sixgate_store::last_signing_time`]). With `--unsigned
//! DIR` (a copy of the same zone, not signed) every change is also made
//! there, in alternating order, for the same write without signing.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::{Change, Record};
use sixgate_store::Store;

use crate::zonecmd::zone_name;

fn open(dir: &Path) -> anyhow::Result<Store> {
    Store::open(dir).with_context(|| format!("opening store in {}", dir.display()))
}

/// The `k`-th change: pairs of add then remove, alternately an A record
/// at a new name (the chain gains and loses a link) and a TXT record at
/// the apex (the apex's types change).
fn change(apex: &[u8], k: usize, tag: u32) -> anyhow::Result<(Change, String)> {
    let pair = k / 2;
    let (owner, rtype, rdata, what) = if pair.is_multiple_of(2) {
        let label = format!("bench-{tag}-{pair}");
        let owner = name::from_text(&label, Some(apex))?;
        (owner, code::A, vec![192, 0, 2, (pair % 250) as u8 + 1], format!("A {label}"))
    } else {
        let text = format!("bench {tag} {pair}");
        let mut rd = vec![text.len() as u8];
        rd.extend_from_slice(text.as_bytes());
        (apex.into(), code::TXT, rd, "TXT apex".to_string())
    };
    let r = Record { owner, rtype, ttl: 300, rdata: rdata.into() };
    Ok(if k.is_multiple_of(2) {
        (Change::Add(r), format!("add {what}"))
    } else {
        (Change::Remove(r), format!("remove {what}"))
    })
}

/// One change through the write path: the milliseconds of the whole
/// apply, and of the signing inside it (signed zones).
fn timed_apply(store: &mut Store, apex: &[u8], c: &Change) -> anyhow::Result<(f64, Option<f64>)> {
    let t = Instant::now();
    let commit = store.by(sixgate_store::Actor::cli()).apply(apex, std::slice::from_ref(c))?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    if commit.journal_id == 0 {
        bail!("a change made nothing: the store already held it");
    }
    Ok((ms, sixgate_store::last_signing_time().map(|d| d.as_secs_f64() * 1000.0)))
}

/// Nearest-rank percentile of ascending values.
fn percentile(sorted: &[f64], p: usize) -> f64 {
    let k = (p * sorted.len()).div_ceil(100).clamp(1, sorted.len().max(1)) - 1;
    sorted.get(k).copied().unwrap_or(f64::NAN)
}

fn summary(label: &str, values: &[f64]) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let median = percentile(&v, 50);
    println!(
        "summary\t{label}\tmedian_ms\t{median:.3}\tp90_ms\t{:.3}\tmax_ms\t{:.3}\tchanges\t{}",
        percentile(&v, 90),
        v.last().copied().unwrap_or(f64::NAN),
        v.len()
    );
}

pub(crate) fn resign(dir: &Path, zone: &str, changes: usize, unsigned: Option<&Path>) -> anyhow::Result<()> {
    let apex = zone_name(zone)?;
    if changes == 0 {
        bail!("--changes must be at least 1");
    }
    let mut store = open(dir)?;
    if store.dnssec_info(&apex)?.is_none() {
        bail!("{} is not signed in {} (sixgate dnssec enable)", name::to_text(&apex), dir.display());
    }
    let mut base = match unsigned {
        Some(d) => {
            let s = open(d)?;
            if s.dnssec_info(&apex)?.is_some() {
                bail!(
                    "{} is signed in {}; --unsigned needs an unsigned copy",
                    name::to_text(&apex),
                    d.display()
                );
            }
            Some(s)
        }
        None => None,
    };
    // Names no earlier run used, so every change changes something.
    let tag = std::process::id();
    // One pair of changes first, not counted: the first write of a
    // process also reads the schema and warms SQLite's page cache.
    for k in 0..2 {
        let (c, _) = change(&apex, k, tag)?;
        timed_apply(&mut store, &apex, &c)?;
        if let Some(b) = base.as_mut() {
            timed_apply(b, &apex, &c)?;
        }
    }
    let (mut signed, mut signing, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for k in 2..changes + 2 {
        let (c, what) = change(&apex, k, tag)?;
        let ((s, sign), u) = match base.as_mut() {
            // Alternate which store goes first, so neither always
            // follows the other's fsync.
            Some(b) if k.is_multiple_of(2) => {
                let s = timed_apply(&mut store, &apex, &c)?;
                (s, Some(timed_apply(b, &apex, &c)?.0))
            }
            Some(b) => {
                let u = timed_apply(b, &apex, &c)?.0;
                (timed_apply(&mut store, &apex, &c)?, Some(u))
            }
            None => (timed_apply(&mut store, &apex, &c)?, None),
        };
        let Some(sign) = sign else {
            bail!("the write path did not sign the change");
        };
        let mut line = format!("change\t{}\t{what}\tsigned_ms\t{s:.3}\tsigning_ms\t{sign:.3}", k - 1);
        if let Some(u) = u {
            line += &format!("\tunsigned_ms\t{u:.3}");
        }
        println!("{line}");
        signed.push(s);
        signing.push(sign);
        plain.extend(u);
    }
    summary("signed", &signed);
    summary("signing", &signing);
    if !plain.is_empty() {
        summary("unsigned", &plain);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_pair_up_and_alternate_kinds() {
        let apex = name::from_text("example.test.", None).unwrap();
        let kinds: Vec<String> = (0..4).map(|k| change(&apex, k, 7).unwrap().1).collect();
        assert_eq!(kinds, ["add A bench-7-0", "remove A bench-7-0", "add TXT apex", "remove TXT apex"]);
        let (Change::Add(a), _) = change(&apex, 0, 7).unwrap() else { panic!() };
        let (Change::Remove(b), _) = change(&apex, 1, 7).unwrap() else { panic!() };
        assert_eq!(a, b);
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!((percentile(&v, 50), percentile(&v, 90), percentile(&v, 100)), (5.0, 9.0, 10.0));
        assert_eq!(percentile(&[3.0], 90), 3.0);
    }
}
