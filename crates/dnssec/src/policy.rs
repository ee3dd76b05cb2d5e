//! The signing policy of a zone: which keys, which algorithm, how long
//! signatures live, and the TTLs and delays that the key rollover timing
//! of RFC 7583 is built from.
//!
//! A [`Policy`] is stored as JSON (every field has a default, unknown
//! fields are refused) and checked once with [`Policy::validate`]. The
//! zone's largest TTL changes with its content, so it is not part of the
//! policy: the planner takes it as an argument and
//! [`Policy::check_zone_max_ttl`] checks it against the signature timing.

use serde::{Deserialize, Serialize};

/// Seconds in a day.
const DAY: u32 = 86_400;

/// Largest TTL accepted for the DNSKEY RRset, the parent's DS RRset and a
/// zone's records: one week, the cap common resolvers put on any TTL.
pub const MAX_TTL: u32 = 7 * DAY;
/// Longest signature validity accepted: 90 days. Longer validity widens
/// the window in which a replayed signature is still accepted.
pub const MAX_SIGNATURE_VALIDITY: u32 = 90 * DAY;
/// Longest propagation delay accepted, for our secondaries and the
/// parent's servers alike: two days.
pub const MAX_PROPAGATION_DELAY: u32 = 2 * DAY;
/// Shortest interval between two queries for the parent's DS RRset.
pub const MIN_DS_CHECK_INTERVAL: u32 = 60;
/// Longest interval between two queries for the parent's DS RRset.
pub const MAX_DS_CHECK_INTERVAL: u32 = DAY;
/// Longest time the private half of a removed key may be kept: a year.
/// Keeping it longer only keeps a secret around that nothing uses.
pub const MAX_KEY_RETENTION: u32 = 365 * DAY;

pub use crate::algorithm::Algorithm;

/// How the signing work is split between keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyLayout {
    /// One combined signing key signs everything and is the key the
    /// parent's DS points at.
    Csk,
    /// A key-signing key signs the DNSKEY RRset (and CDS/CDNSKEY) and is
    /// the key the parent's DS points at; a zone-signing key signs the
    /// rest, so that it can roll without the parent.
    KskZsk,
}

/// How the zone proves that names and types do not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Denial {
    /// NSEC records (RFC 4034 §4).
    Nsec,
    /// NSEC3 records (RFC 5155) with the parameters of RFC 9276 §3.1: no
    /// additional iterations and an empty salt, which are therefore not
    /// configurable.
    Nsec3 {
        /// Opt-out (RFC 5155 §6): unsigned delegations get no NSEC3 of
        /// their own. RFC 9276 §3.1 advises against it unless the zone
        /// has very many unsigned delegations; sixgate does not offer it,
        /// and [`Policy::validate`] refuses `true`.
        #[serde(default)]
        opt_out: bool,
    },
}

/// The signing policy of a zone. Durations are in seconds.
///
/// The defaults follow common practice in Knot DNS and BIND: one ECDSA
/// P-256 combined signing key that is rolled only on demand, NSEC,
/// signatures valid for 14 days and refreshed a week before they expire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Algorithm of newly generated keys. Changing it on a signed zone
    /// starts an algorithm rollover.
    pub algorithm: Algorithm,
    /// One combined key, or a KSK and a ZSK. Changing it on a signed
    /// zone replaces all keys the way an algorithm rollover does.
    pub layout: KeyLayout,
    /// NSEC or NSEC3.
    pub denial: Denial,
    /// How long a new signature is valid (expiration minus inception).
    pub signature_validity: u32,
    /// A signature is made again when less than this remains of its
    /// validity.
    pub signature_refresh: u32,
    /// Spread of signature expirations: each signature expires up to this
    /// much earlier than `signature_validity` says, so that the signatures
    /// of a large zone do not all fall due for refresh at once.
    pub signature_jitter: u32,
    /// TTL of the DNSKEY, CDS and CDNSKEY RRsets.
    pub dnskey_ttl: u32,
    /// Longest time until every secondary serves a change of the zone.
    pub propagation_delay: u32,
    /// How long a ZSK signs before it is replaced; 0 means never.
    pub zsk_lifetime: u32,
    /// How long a KSK or CSK is in use before it is replaced; 0 means
    /// never automatically (it still rolls on demand).
    pub ksk_lifetime: u32,
    /// TTL of the parent's DS RRset, used until the parent has been seen
    /// serving a DS (then the largest DS TTL seen is used).
    pub parent_ds_ttl: u32,
    /// Longest time until every server of the parent zone serves a change
    /// of the DS RRset that one of them serves.
    pub parent_propagation_delay: u32,
    /// How often to query the parent's DS RRset while waiting for it to
    /// change.
    pub ds_check_interval: u32,
    /// How long a key's private half is kept after the key has left the
    /// zone (state `Removed`) before it is deleted; 0 deletes it at the
    /// next maintenance.
    pub key_retention: u32,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            algorithm: Algorithm::EcdsaP256Sha256,
            layout: KeyLayout::Csk,
            denial: Denial::Nsec,
            signature_validity: 14 * DAY,
            signature_refresh: 7 * DAY,
            // BIND's default signatures-jitter.
            signature_jitter: DAY / 2,
            dnskey_ttl: 3600,
            propagation_delay: 300,
            zsk_lifetime: 30 * DAY,
            ksk_lifetime: 0,
            parent_ds_ttl: DAY,
            parent_propagation_delay: 3600,
            ds_check_interval: 3600,
            // BIND keeps removed keys 90 days (purge-keys). A removed key
            // has no DNSKEY and no DS left and sixgate never brings one
            // back, so its private half only serves an operator looking
            // into a rollover that went wrong; a month is time enough for
            // that, and a database copied later no longer holds it.
            key_retention: 30 * DAY,
        }
    }
}

/// Why a policy, or a zone's largest TTL under a policy, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The signature refresh is zero.
    #[error("signature refresh must be more than 0 seconds")]
    RefreshZero,
    /// Signatures would be refreshed as soon as they are made.
    #[error("signature refresh ({refresh} s) must be less than the signature validity ({validity} s)")]
    RefreshNotBelowValidity {
        /// The refresh.
        refresh: u32,
        /// The validity.
        validity: u32,
    },
    /// The signature validity is longer than [`MAX_SIGNATURE_VALIDITY`].
    #[error("signature validity ({0} s) is longer than the limit of {MAX_SIGNATURE_VALIDITY} s")]
    ValidityTooLong(u32),
    /// The jitter is not below the refresh, or a fresh signature could be
    /// due for refresh at once.
    #[error(
        "signature jitter ({jitter} s) must be less than the refresh ({refresh} s) and less than validity minus refresh ({margin} s)"
    )]
    JitterTooLarge {
        /// The jitter.
        jitter: u32,
        /// The refresh.
        refresh: u32,
        /// Validity minus refresh.
        margin: u32,
    },
    /// A TTL is 0 or above [`MAX_TTL`].
    #[error("{what} ({value} s) must be between 1 and {MAX_TTL} seconds")]
    TtlOutOfRange {
        /// Which TTL.
        what: &'static str,
        /// Its value.
        value: u32,
    },
    /// A propagation delay is above [`MAX_PROPAGATION_DELAY`].
    #[error("{what} ({value} s) must be at most {MAX_PROPAGATION_DELAY} seconds")]
    DelayTooLong {
        /// Which delay.
        what: &'static str,
        /// Its value.
        value: u32,
    },
    /// The DS check interval is outside its limits.
    #[error(
        "ds check interval ({0} s) must be between {MIN_DS_CHECK_INTERVAL} and {MAX_DS_CHECK_INTERVAL} seconds"
    )]
    DsCheckInterval(u32),
    /// The key retention is longer than [`MAX_KEY_RETENTION`].
    #[error("key retention ({0} s) is longer than the limit of {MAX_KEY_RETENTION} s")]
    RetentionTooLong(u32),
    /// A key lifetime is shorter than one rollover of that key takes.
    #[error("{what} ({value} s) must be 0 (never roll) or longer than one rollover takes ({minimum} s)")]
    LifetimeTooShort {
        /// Which lifetime.
        what: &'static str,
        /// Its value.
        value: u32,
        /// The shortest accepted lifetime.
        minimum: u64,
    },
    /// NSEC3 opt-out was asked for. It would leave unsigned delegations
    /// without a proof of their own, and RFC 9276 §3.1 advises against it;
    /// sixgate does not offer it rather than accept it and ignore it.
    #[error(
        "nsec3 opt-out is not supported (RFC 9276 section 3.1 advises against it): leave out opt_out or set it to false"
    )]
    OptOut,
    /// Signatures could expire while resolvers still hold them.
    #[error(
        "signature refresh ({refresh} s) must be more than the zone's largest TTL plus the propagation delay ({needed} s)"
    )]
    RefreshBelowMaxTtl {
        /// The refresh.
        refresh: u32,
        /// Largest TTL plus propagation delay.
        needed: u64,
    },
}

impl Policy {
    /// Checks that the policy makes sense on its own.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.denial == (Denial::Nsec3 { opt_out: true }) {
            return Err(PolicyError::OptOut);
        }
        if self.signature_refresh == 0 {
            return Err(PolicyError::RefreshZero);
        }
        if self.signature_validity > MAX_SIGNATURE_VALIDITY {
            return Err(PolicyError::ValidityTooLong(self.signature_validity));
        }
        if self.signature_refresh >= self.signature_validity {
            return Err(PolicyError::RefreshNotBelowValidity {
                refresh: self.signature_refresh,
                validity: self.signature_validity,
            });
        }
        // A signature must not be due for refresh the moment it is made,
        // whatever its jitter.
        let margin = self.signature_validity - self.signature_refresh;
        if self.signature_jitter >= self.signature_refresh || self.signature_jitter >= margin {
            return Err(PolicyError::JitterTooLarge {
                jitter: self.signature_jitter,
                refresh: self.signature_refresh,
                margin,
            });
        }
        for (what, value) in [("dnskey ttl", self.dnskey_ttl), ("parent ds ttl", self.parent_ds_ttl)] {
            if !(1..=MAX_TTL).contains(&value) {
                return Err(PolicyError::TtlOutOfRange { what, value });
            }
        }
        for (what, value) in [
            ("propagation delay", self.propagation_delay),
            ("parent propagation delay", self.parent_propagation_delay),
        ] {
            if value > MAX_PROPAGATION_DELAY {
                return Err(PolicyError::DelayTooLong { what, value });
            }
        }
        if !(MIN_DS_CHECK_INTERVAL..=MAX_DS_CHECK_INTERVAL).contains(&self.ds_check_interval) {
            return Err(PolicyError::DsCheckInterval(self.ds_check_interval));
        }
        if self.key_retention > MAX_KEY_RETENTION {
            return Err(PolicyError::RetentionTooLong(self.key_retention));
        }
        for (what, value, minimum) in [
            ("zsk lifetime", self.zsk_lifetime, self.min_zsk_lifetime()),
            ("ksk lifetime", self.ksk_lifetime, self.min_ksk_lifetime()),
        ] {
            if value != 0 && u64::from(value) <= minimum {
                return Err(PolicyError::LifetimeTooShort { what, value, minimum });
            }
        }
        Ok(())
    }

    /// Checks a zone's largest TTL against the policy: a signature must
    /// stay valid for as long as a resolver may hold it, so the refresh
    /// must exceed the largest TTL plus the propagation delay, or a
    /// validator could meet a cached signature past its expiration
    /// (RFC 4035 §5.3.1).
    pub fn check_zone_max_ttl(&self, zone_max_ttl: u32) -> Result<(), PolicyError> {
        if !(1..=MAX_TTL).contains(&zone_max_ttl) {
            return Err(PolicyError::TtlOutOfRange { what: "zone max ttl", value: zone_max_ttl });
        }
        let needed = u64::from(zone_max_ttl.max(self.dnskey_ttl)) + u64::from(self.propagation_delay);
        if u64::from(self.signature_refresh) <= needed {
            return Err(PolicyError::RefreshBelowMaxTtl { refresh: self.signature_refresh, needed });
        }
        Ok(())
    }

    /// The largest TTL a record of a zone signed under this policy may
    /// have: the largest that [`Policy::check_zone_max_ttl`] accepts (at
    /// most [`MAX_TTL`], and below the refresh less the propagation
    /// delay). Every write to a signed zone is held to it, since the
    /// rollover waits for the zone's largest TTL: one record with a TTL of
    /// years would keep every retired key published and stall the move to
    /// secure.
    pub fn max_record_ttl(&self) -> u32 {
        let below_refresh =
            u64::from(self.signature_refresh).saturating_sub(u64::from(self.propagation_delay) + 1);
        below_refresh.min(u64::from(MAX_TTL)) as u32
    }

    /// How long after its DNSKEY is published a key is known to every
    /// resolver that holds the DNSKEY RRset: the publication interval
    /// Ipub of RFC 7583 §3.2.1.
    pub fn publish_delay(&self) -> u64 {
        u64::from(self.dnskey_ttl) + u64::from(self.propagation_delay)
    }

    /// How long after a change to the zone's records (signatures
    /// included) no resolver holds the old data: the largest TTL of the
    /// zone (at least the DNSKEY TTL) plus the propagation delay, the
    /// retire interval Iret of RFC 7583 §3.2.1.
    pub fn zone_delay(&self, zone_max_ttl: u32) -> u64 {
        u64::from(zone_max_ttl.max(self.dnskey_ttl)) + u64::from(self.propagation_delay)
    }

    /// How long a DS change must be seen at the parent before no resolver
    /// holds the parent's old DS RRset: the parent's propagation delay
    /// plus the DS TTL (RFC 7583 §3.3.1). `observed_ttl` is the largest TTL
    /// of a DS RRset seen at the parent, if any; never the negative TTL of
    /// an answer without DS, which says nothing about how long a DS
    /// fetched before stays cached.
    pub fn ds_delay(&self, observed_ttl: Option<u32>) -> u64 {
        u64::from(observed_ttl.unwrap_or(self.parent_ds_ttl)) + u64::from(self.parent_propagation_delay)
    }

    /// The shortest ZSK lifetime: a pre-publication rollover publishes
    /// the successor one publication interval before the switch and keeps
    /// the old key for at least one more (RFC 7583 §3.2.1).
    pub fn min_zsk_lifetime(&self) -> u64 {
        2 * self.publish_delay()
    }

    /// The shortest KSK/CSK lifetime: publication, one DS check, the DS
    /// wait at the parent and the retirement of the old key (RFC 7583
    /// §3.3.1).
    pub fn min_ksk_lifetime(&self) -> u64 {
        2 * self.publish_delay() + u64::from(self.ds_check_interval) + self.ds_delay(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let p = Policy::default();
        assert_eq!(p.validate(), Ok(()));
        assert_eq!(p.check_zone_max_ttl(86_400), Ok(()));
        assert_eq!(p.algorithm.code(), 13);
        assert_eq!(p.signature_validity, 14 * DAY);
        assert_eq!(p.signature_refresh, 7 * DAY);
        assert_eq!(p.key_retention, 30 * DAY);
        assert_eq!(Policy { key_retention: 0, ..p }.validate(), Ok(()));
    }

    #[test]
    fn json_defaults_and_round_trip() {
        let p: Policy = serde_json::from_str("{}").unwrap();
        assert_eq!(p, Policy::default());
        let p: Policy = serde_json::from_str(
            r#"{"algorithm":"ed25519","layout":"ksk_zsk","denial":{"type":"nsec3","opt_out":true},"zsk_lifetime":0}"#,
        )
        .unwrap();
        assert_eq!(p.algorithm, Algorithm::Ed25519);
        assert_eq!(p.layout, KeyLayout::KskZsk);
        assert_eq!(p.denial, Denial::Nsec3 { opt_out: true });
        assert_eq!(p.zsk_lifetime, 0);
        let back: Policy = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    /// Regression: `opt_out: true` was accepted and then ignored (the
    /// signer makes no opt-out chain), so a customer asking for it got
    /// something else without a word.
    #[test]
    fn opt_out_is_refused_not_ignored() {
        let p: Policy = serde_json::from_str(r#"{"denial":{"type":"nsec3","opt_out":true}}"#).unwrap();
        let err = p.validate().unwrap_err();
        assert!(err.to_string().contains("opt-out is not supported"), "{err}");
        assert!(err.to_string().contains("RFC 9276"), "{err}");
        let p: Policy = serde_json::from_str(r#"{"denial":{"type":"nsec3","opt_out":false}}"#).unwrap();
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn json_refuses_unknown_fields() {
        assert!(serde_json::from_str::<Policy>(r#"{"rrsig_lifetime":5}"#).is_err());
        assert!(serde_json::from_str::<Policy>(r#"{"denial":{"type":"nsec3","iterations":10}}"#).is_err());
        assert!(serde_json::from_str::<Policy>(r#"{"algorithm":"RSASHA1"}"#).is_err());
    }

    #[test]
    fn algorithm_numbers() {
        for a in [Algorithm::EcdsaP256Sha256, Algorithm::Ed25519] {
            assert_eq!(Algorithm::from_code(a.code()), Some(a));
        }
        assert_eq!(Algorithm::from_code(8), None);
    }

    #[test]
    fn refuses_nonsense() {
        let ok = Policy::default();
        type Expect = fn(&PolicyError) -> bool;
        let cases: Vec<(Policy, Expect)> = vec![
            (Policy { signature_refresh: 0, ..ok.clone() }, |e| matches!(e, PolicyError::RefreshZero)),
            (Policy { signature_refresh: 14 * DAY, ..ok.clone() }, |e| {
                matches!(e, PolicyError::RefreshNotBelowValidity { .. })
            }),
            (Policy { signature_validity: 400 * DAY, ..ok.clone() }, |e| {
                matches!(e, PolicyError::ValidityTooLong(_))
            }),
            (Policy { signature_jitter: 7 * DAY, ..ok.clone() }, |e| {
                matches!(e, PolicyError::JitterTooLarge { .. })
            }),
            (
                // Refresh 12 days leaves 2 days of margin; a 3-day jitter
                // would make fresh signatures due at once.
                Policy { signature_refresh: 12 * DAY, signature_jitter: 3 * DAY, ..ok.clone() },
                |e| matches!(e, PolicyError::JitterTooLarge { .. }),
            ),
            (Policy { dnskey_ttl: 0, ..ok.clone() }, |e| {
                matches!(e, PolicyError::TtlOutOfRange { what: "dnskey ttl", .. })
            }),
            (Policy { parent_ds_ttl: MAX_TTL + 1, ..ok.clone() }, |e| {
                matches!(e, PolicyError::TtlOutOfRange { what: "parent ds ttl", .. })
            }),
            (Policy { propagation_delay: 3 * DAY, ..ok.clone() }, |e| {
                matches!(e, PolicyError::DelayTooLong { .. })
            }),
            (Policy { ds_check_interval: 10, ..ok.clone() }, |e| {
                matches!(e, PolicyError::DsCheckInterval(10))
            }),
            (Policy { key_retention: 400 * DAY, ..ok.clone() }, |e| {
                matches!(e, PolicyError::RetentionTooLong(_))
            }),
            (Policy { zsk_lifetime: 3600, ..ok.clone() }, |e| {
                matches!(e, PolicyError::LifetimeTooShort { what: "zsk lifetime", .. })
            }),
            (Policy { ksk_lifetime: DAY, ..ok.clone() }, |e| {
                matches!(e, PolicyError::LifetimeTooShort { what: "ksk lifetime", .. })
            }),
        ];
        for (policy, expected) in cases {
            let err = policy.validate().unwrap_err();
            assert!(expected(&err), "{policy:?} gave {err:?}");
            // Messages are lowercase sentences naming the setting.
            assert!(err.to_string().starts_with(char::is_lowercase), "{err}");
        }
    }

    #[test]
    fn zone_max_ttl_must_fit_below_refresh() {
        let p = Policy::default();
        assert!(matches!(p.check_zone_max_ttl(0), Err(PolicyError::TtlOutOfRange { .. })));
        assert!(matches!(p.check_zone_max_ttl(MAX_TTL), Err(PolicyError::RefreshBelowMaxTtl { .. })));
        assert_eq!(p.check_zone_max_ttl(2 * DAY), Ok(()));
    }

    #[test]
    fn max_record_ttl_is_the_largest_the_zone_check_accepts() {
        for p in [
            Policy::default(),
            Policy { signature_refresh: 3 * DAY, signature_validity: 7 * DAY, ..Policy::default() },
            Policy { signature_refresh: 20 * DAY, signature_validity: 30 * DAY, ..Policy::default() },
        ] {
            let max = p.max_record_ttl();
            assert_eq!(p.check_zone_max_ttl(max), Ok(()), "{p:?}");
            assert!(p.check_zone_max_ttl(max + 1).is_err(), "{p:?}");
        }
    }
}
