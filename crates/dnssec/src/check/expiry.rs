//! When a signed zone's signatures run out: the earliest RRSIG
//! expiration, for the expiry watchdog.
//!
//! Signatures are refreshed long before they expire (the policy's
//! `signature_refresh`), so an expiration that comes close means the
//! refresh has stopped: a dead maintenance task, a zone held on an old
//! version, a key that cannot sign. Nothing else notices until
//! validators call the zone bogus.

use sixgate_dns::name;
use sixgate_dns::rtype::code;
use sixgate_dns::zone::Zone;

use crate::rrsig::Rrsig;

/// A signed zone's signatures as seen at one time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expiry {
    /// The earliest expiration, unix seconds (may be in the past).
    pub earliest: i64,
    /// The owner (presentation form) and type of an RRset whose
    /// signature expires first.
    pub first: (String, u16),
    /// Signatures that expire before `now + within`.
    pub expiring: u64,
    /// Signatures in the zone.
    pub signatures: u64,
}

/// The 32-bit `expiration` as unix seconds near `now`, in serial number
/// arithmetic (RFC 4034 §3.1.5): within 68 years either side.
pub fn expiration_time(expiration: u32, now: u64) -> i64 {
    let delta = expiration.wrapping_sub(now as u32) as i32;
    (now as i64).saturating_add(i64::from(delta))
}

/// The signatures of `zone` at `now`; `None` for an unsigned zone (no
/// DNSKEY at the apex) or one without a readable RRSIG.
pub fn signature_expiry(zone: &Zone, now: u64, within: u32) -> Option<Expiry> {
    zone.apex_node().and_then(|n| n.rrset(code::DNSKEY))?;
    let until = (now as i64).saturating_add(i64::from(within));
    let mut out: Option<Expiry> = None;
    for node in zone.nodes() {
        let Some(sigs) = node.rrset(code::RRSIG) else { continue };
        for rd in sigs.rdatas() {
            let Ok(sig) = Rrsig::decode(rd) else { continue };
            let at = expiration_time(sig.expiration, now);
            let e = out.get_or_insert_with(|| Expiry {
                earliest: at,
                first: (name::to_text(node.name()), sig.type_covered),
                expiring: 0,
                signatures: 0,
            });
            e.signatures += 1;
            if at < until {
                e.expiring += 1;
            }
            if at < e.earliest {
                e.earliest = at;
                e.first = (name::to_text(node.name()), sig.type_covered);
            }
        }
    }
    out
}
