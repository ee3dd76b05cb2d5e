//! The keys of a signed zone and their rollovers, on the timelines of
//! RFC 7583, driven by a clock and by observations of the parent that the
//! caller passes in.
//!
//! A [`Keyring`] holds every key of a zone as a [`KeyRecord`]: an opaque
//! id, a [`Role`], an algorithm number, a key tag, a [`KeyState`] for the
//! zone side and a [`DsState`] for the parent side, and the time of each
//! transition. [`plan`] looks at the keyring, the policy, the zone's
//! largest TTL, the last [`ParentDs`] observation and the time, and
//! returns a [`Plan`]: the [`Action`]s to take now and when to look again.
//! The caller applies the actions with [`Keyring::apply`] (generating key
//! material for [`Action::Generate`] itself), stores the keyring, re-signs
//! the zone as [`zone_view`] says, and calls [`plan`] again at
//! [`Plan::next_event`] or after querying the parent.
//!
//! The rollovers:
//! - ZSK: pre-publication (RFC 7583 §3.2.1). The successor's DNSKEY is
//!   published one publication interval before the switch; the old ZSK's
//!   DNSKEY stays until its signatures have left every cache.
//! - KSK and CSK: double-KSK (RFC 7583 §3.3.1). The new key's DNSKEY is
//!   published and signs the DNSKEY RRset alongside the old one; once it
//!   is in every cache, CDS/CDNSKEY switch to it; once the parent has
//!   served its DS long enough for every cache to hold it, the new key
//!   takes over and the old one retires.
//! - Algorithm (and key layout) changes: the conservative order of
//!   RFC 6781 §4.1.4: signatures of the new keys first, then their
//!   DNSKEYs, then the DS, then the old DNSKEYs out, then the old
//!   signatures.
//! - Going insecure: CDS/CDNSKEY "delete" (RFC 8078 §4), and only once the
//!   parent has served no DS long enough, the signatures and DNSKEYs go.
//! - Starting secure: the first keys publish and sign at once, and their
//!   DS is submitted once the signed zone has replaced the unsigned one in
//!   every cache.
//!
//! Whatever the parent does, a KSK/CSK rollover never passes the DS step
//! until the new DS, with a digest that matches the key, has been seen on
//! every answering server continuously for the parent's DS TTL plus its
//! propagation delay, and a key whose DS any server of the parent still
//! serves is never removed. Waits for a DS to leave caches use the largest
//! DS TTL ever seen at the parent, never the negative TTL of the answer
//! that says the DS is gone.

use serde::{Deserialize, Serialize};

use crate::policy::Algorithm;

mod manual;
mod planner;
mod view;

#[cfg(test)]
mod resolver_model;
#[cfg(test)]
mod tests;

pub use planner::{Plan, Wait, ds_publish_after, plan, signatures_gone_at};
pub use view::{Cds, KeyRef, ZoneKeys, zone_view};

/// The opaque identifier of a key, chosen by whoever stores the key
/// material.
pub type KeyId = u64;

/// What a key signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// Combined signing key: signs everything and is the secure entry
    /// point the parent's DS points at.
    Csk,
    /// Key-signing key: signs the DNSKEY, CDS and CDNSKEY RRsets and is
    /// the secure entry point.
    Ksk,
    /// Zone-signing key: signs every other RRset.
    Zsk,
}

impl Role {
    /// Whether the parent's DS points at keys of this role and they sign
    /// the DNSKEY RRset (the SEP bit of RFC 4034 §2.1.1 is set).
    pub fn is_secure_entry(self) -> bool {
        matches!(self, Role::Csk | Role::Ksk)
    }

    /// Whether keys of this role sign the zone's RRsets other than
    /// DNSKEY, CDS and CDNSKEY.
    pub fn signs_zone(self) -> bool {
        matches!(self, Role::Csk | Role::Zsk)
    }
}

/// Where a key is in its life on the zone side.
///
/// The usual path is `Generated → Published → Ready → Active → Retired →
/// Removed`. An algorithm rollover takes new keys through `Incoming`
/// (signing before their DNSKEY is published) and old keys through
/// `Outgoing` (signing after their DNSKEY is gone), per RFC 6781 §4.1.4.
///
/// | state     | DNSKEY published | KSK/CSK sign DNSKEY | ZSK/CSK sign zone |
/// |-----------|------------------|---------------------|-------------------|
/// | Generated | no               | no                  | no                |
/// | Incoming  | no               | yes                 | yes               |
/// | Published | yes              | yes                 | no                |
/// | Ready     | yes              | yes                 | no                |
/// | Active    | yes              | yes                 | yes               |
/// | Retired   | yes              | no                  | no                |
/// | Outgoing  | no               | yes                 | yes               |
/// | Removed   | no               | no                  | no                |
///
/// A KSK/CSK signs the DNSKEY RRset from the moment its DNSKEY appears
/// (the double-KSK method of RFC 7583 §3.3.1), so every copy of the
/// DNSKEY RRset that contains it also carries its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum KeyState {
    /// Key material exists; nothing of it is in the zone.
    Generated,
    /// Signs, but its DNSKEY is not yet published (algorithm rollover).
    Incoming,
    /// DNSKEY published, not yet in every cache.
    Published,
    /// DNSKEY in every cache that holds the DNSKEY RRset.
    Ready,
    /// Signs for its role.
    Active,
    /// No longer signs; its DNSKEY stays until its signatures have left
    /// every cache.
    Retired,
    /// DNSKEY withdrawn, still signs until the DNSKEY RRsets that held it
    /// have left every cache (algorithm rollover).
    Outgoing,
    /// Nothing of it is in the zone; the key material may be deleted.
    Removed,
}

impl KeyState {
    /// Whether the key's DNSKEY is in the zone's DNSKEY RRset.
    pub fn dnskey_published(self) -> bool {
        matches!(self, KeyState::Published | KeyState::Ready | KeyState::Active | KeyState::Retired)
    }

    /// Whether a key-signing key in this state signs the DNSKEY RRset.
    fn signs_dnskey(self) -> bool {
        matches!(
            self,
            KeyState::Incoming
                | KeyState::Published
                | KeyState::Ready
                | KeyState::Active
                | KeyState::Outgoing
        )
    }

    /// Whether a zone-signing key in this state signs the zone.
    fn signs_zone(self) -> bool {
        matches!(self, KeyState::Incoming | KeyState::Active | KeyState::Outgoing)
    }
}

/// Where a KSK/CSK is on the parent side. ZSKs stay `Unsubmitted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DsState {
    /// Never listed in CDS/CDNSKEY.
    Unsubmitted,
    /// Listed in CDS/CDNSKEY (RFC 7344 §4); the parent has not been seen
    /// serving its DS (since the last time it was missing).
    Submitted,
    /// Listed in CDS/CDNSKEY and the parent serves its DS, continuously
    /// since [`KeyTimes::ds_seen`] as far as observed.
    Seen,
    /// No longer listed in CDS/CDNSKEY; the parent may still serve it.
    Withdrawn,
    /// No longer listed, and the parent was seen without it.
    Gone,
}

/// When a key went through each transition, in Unix seconds. A field is
/// `None` until the transition happens.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyTimes {
    /// Key material generated.
    pub generated: Option<u64>,
    /// DNSKEY published.
    pub published: Option<u64>,
    /// DNSKEY known to be in every cache.
    pub ready: Option<u64>,
    /// Started signing the zone (ZSK/CSK).
    pub signing: Option<u64>,
    /// Became the active key of its role.
    pub active: Option<u64>,
    /// Stopped signing.
    pub retired: Option<u64>,
    /// DNSKEY withdrawn from the zone.
    pub unpublished: Option<u64>,
    /// Gone from the zone entirely.
    pub removed: Option<u64>,
    /// Listed in CDS/CDNSKEY.
    pub ds_submitted: Option<u64>,
    /// First seen at the parent, continuously since.
    pub ds_seen: Option<u64>,
    /// No longer listed in CDS/CDNSKEY.
    pub ds_withdrawn: Option<u64>,
    /// Seen missing at the parent after being withdrawn.
    pub ds_gone: Option<u64>,
    /// Last seen missing at the parent after having been seen there,
    /// while still listed.
    pub ds_missed: Option<u64>,
}

/// One key of a zone, without its key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyRecord {
    /// Opaque identifier.
    pub id: KeyId,
    /// What the key signs.
    pub role: Role,
    /// DNSSEC algorithm number.
    pub algorithm: u8,
    /// Key tag (RFC 4034 Appendix B).
    pub key_tag: u16,
    /// Zone side.
    pub state: KeyState,
    /// Parent side.
    pub ds: DsState,
    /// When each transition happened.
    #[serde(default)]
    pub times: KeyTimes,
    /// Replace this key as soon as possible (set by
    /// [`Keyring::start_ksk_roll`] and [`Keyring::start_zsk_roll`]).
    #[serde(default)]
    pub roll_requested: bool,
}

impl KeyRecord {
    /// A freshly generated key.
    pub fn generated(id: KeyId, role: Role, algorithm: u8, key_tag: u16, now: u64) -> KeyRecord {
        KeyRecord {
            id,
            role,
            algorithm,
            key_tag,
            state: KeyState::Generated,
            ds: DsState::Unsubmitted,
            times: KeyTimes { generated: Some(now), ..KeyTimes::default() },
            roll_requested: false,
        }
    }

    /// Whether the key has not been removed.
    pub fn is_live(&self) -> bool {
        self.state != KeyState::Removed
    }

    /// Whether the key signs the DNSKEY, CDS and CDNSKEY RRsets.
    pub fn signs_dnskey(&self) -> bool {
        self.role.is_secure_entry() && self.state.signs_dnskey()
    }

    /// Whether the key signs the zone's other RRsets.
    pub fn signs_zone(&self) -> bool {
        self.role.signs_zone() && self.state.signs_zone()
    }

    /// Whether CDS/CDNSKEY list this key.
    pub fn ds_listed(&self) -> bool {
        matches!(self.ds, DsState::Submitted | DsState::Seen)
    }

    /// Time of the last change on the parent side; observations older
    /// than this say nothing new about the key.
    fn ds_changed(&self) -> u64 {
        let t = &self.times;
        [t.ds_submitted, t.ds_seen, t.ds_withdrawn, t.ds_gone, t.ds_missed]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0)
    }
}

/// What was last observed of the zone's DS RRset at the parent.
///
/// The two directions of a DS change need different evidence. A DS counts
/// as *served* only when every answering server serves it with a digest
/// that matches the key ([`ParentDs::serves`]), so a rollover never goes on
/// while some server, or a wrong digest, would leave resolvers without a
/// usable DS. A DS counts as *gone* only when no server serves anything
/// with its key tag and algorithm and every server answered
/// ([`ParentDs::serves_no_ds`], [`ParentDs::may_serve`]), so a key is never
/// removed while one lagging or silent server may still hand out its DS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParentDs {
    /// When the parent was queried (Unix seconds).
    pub observed_at: u64,
    /// TTL of the DS RRset; when no server serves a DS, the NODATA
    /// answer's negative TTL (RFC 2308 §5), which says nothing about how
    /// long resolvers keep a DS they fetched before (the planner then
    /// uses the largest DS TTL it has seen, [`Keyring::parent_ds_ttl`]).
    pub ttl: u32,
    /// Every DS record that at least one answering server serves, as
    /// (key tag, algorithm) pairs, whatever its digest.
    pub ds: Vec<(u16, u8)>,
    /// The keys whose DS every answering server serves with a digest that
    /// matches the key's DNSKEY ([`crate::ds::Ds::matches`]); the caller,
    /// which holds the DNSKEYs, fills it in.
    #[serde(default)]
    pub keys: Vec<KeyId>,
    /// Whether every server of the parent answered. Without that, nothing
    /// is known to be gone.
    #[serde(default)]
    pub complete: bool,
}

impl ParentDs {
    /// Whether every answering server serves a DS that matches `key`,
    /// digest and all.
    pub fn serves(&self, key: &KeyRecord) -> bool {
        self.keys.contains(&key.id)
    }

    /// Whether some server may serve a DS for `key`: one serves a DS with
    /// its key tag and algorithm, or not every server answered.
    pub fn may_serve(&self, key: &KeyRecord) -> bool {
        !self.complete || self.names_tag_of(key)
    }

    /// Whether a server was seen serving a DS with `key`'s key tag and
    /// algorithm.
    pub fn names_tag_of(&self, key: &KeyRecord) -> bool {
        self.ds.contains(&(key.key_tag, key.algorithm))
    }

    /// Whether every server answered and none serves any DS.
    pub fn serves_no_ds(&self) -> bool {
        self.complete && self.ds.is_empty()
    }
}

/// Whether the zone is to be signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "goal", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Goal {
    /// Signed, with a chain of trust from the parent.
    Secure,
    /// Unsigned, after removing the chain of trust (RFC 8078 §4).
    Insecure {
        /// When going insecure was asked for.
        since: u64,
        /// Since when the parent has been seen serving no DS at all.
        no_ds_since: Option<u64>,
    },
}

/// The keys of one zone and what is intended for them. Stored as JSON by
/// the caller between calls to [`plan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keyring {
    /// Every key, live or removed (see [`Keyring::prune`]).
    pub keys: Vec<KeyRecord>,
    /// Signed or unsigned.
    pub goal: Goal,
    /// The algorithm asked for by [`Keyring::start_algorithm_roll`],
    /// which takes precedence over the policy's.
    #[serde(default)]
    pub algorithm: Option<Algorithm>,
    /// The largest TTL of a DS RRset seen at the parent. While going
    /// insecure the parent answers NODATA, whose negative TTL is often far
    /// shorter (900 s under .com against a DS TTL of 86400 s); resolvers
    /// keep the DS they fetched before for this long.
    #[serde(default)]
    pub parent_ds_ttl: Option<u32>,
}

impl Default for Keyring {
    fn default() -> Keyring {
        Keyring::new()
    }
}

/// One step for the caller to take. Everything but [`Action::Generate`]
/// is applied with [`Keyring::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Action {
    /// Generate a key and add it with [`Keyring::add`] as
    /// [`KeyRecord::generated`]; then call [`plan`] again. Its key tag
    /// must differ from those of the zone's live keys.
    Generate {
        /// Its role.
        role: Role,
        /// Its algorithm.
        algorithm: Algorithm,
    },
    /// Move a key on the zone side. To [`KeyState::Removed`], the key
    /// material may be deleted.
    Key {
        /// The key.
        id: KeyId,
        /// Its state now.
        from: KeyState,
        /// Its next state.
        to: KeyState,
    },
    /// Move a key on the parent side.
    Ds {
        /// The key.
        id: KeyId,
        /// Its state now.
        from: DsState,
        /// Its next state.
        to: DsState,
        /// When the new state began: the observation time for what was
        /// seen at the parent, the present otherwise.
        since: u64,
    },
    /// Record since when the parent has served no DS (while going
    /// insecure); `None` when it serves some again.
    ParentEmpty {
        /// Since when.
        since: Option<u64>,
    },
    /// Record the largest TTL of a DS RRset seen at the parent
    /// ([`Keyring::parent_ds_ttl`]).
    ParentDsTtl {
        /// The TTL.
        ttl: u32,
    },
}

/// Why a manual operation or an action was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RolloverError {
    /// No key has this id.
    #[error("no key with id {0}")]
    UnknownKey(KeyId),
    /// A key with this id exists already.
    #[error("a key with id {0} exists already")]
    DuplicateId(KeyId),
    /// A live key of the same algorithm has this key tag; validators
    /// would have to try both (RFC 4034 Appendix B).
    #[error("key tag {key_tag} of algorithm {algorithm} is in use by key {other}")]
    KeyTagInUse {
        /// The tag.
        key_tag: u16,
        /// The algorithm.
        algorithm: u8,
        /// The key that has it.
        other: KeyId,
    },
    /// The key is not in the zone-side state the action starts from.
    #[error("key {id} is {actual:?}, not {expected:?}")]
    StaleKeyAction {
        /// The key.
        id: KeyId,
        /// The state the action expected.
        expected: KeyState,
        /// The state the key is in.
        actual: KeyState,
    },
    /// The key is not in the parent-side state the action starts from.
    #[error("the ds of key {id} is {actual:?}, not {expected:?}")]
    StaleDsAction {
        /// The key.
        id: KeyId,
        /// The state the action expected.
        expected: DsState,
        /// The state the key is in.
        actual: DsState,
    },
    /// [`Action::Generate`] is carried out by the caller.
    #[error("a generate action is carried out by adding the new key")]
    NotApplicable,
    /// The zone is being made insecure.
    #[error("the zone is going insecure")]
    GoingInsecure,
    /// The zone is already secure or going secure.
    #[error("the zone is already signed")]
    AlreadySecure,
    /// No single active key of this role to roll.
    #[error("no active {0:?} key to roll")]
    NoActiveKey(Role),
    /// A rollover of this kind is under way.
    #[error("a rollover is already under way")]
    RollInProgress,
    /// Every key already uses this algorithm.
    #[error("the zone's keys already use algorithm {0}")]
    SameAlgorithm(u8),
    /// The parent serves a DS for this key; removing it could break the
    /// chain of trust.
    #[error("the parent still serves a DS for key {0}")]
    DsAtParent(KeyId),
    /// The parent has not been observed, so it may serve a DS for the key.
    #[error("the parent's DS for key {0} has not been observed gone")]
    ParentUnknown(KeyId),
    /// The key signs the zone, is the only key signing the DNSKEY RRset,
    /// or is listed in CDS/CDNSKEY.
    #[error("key {0} is in use (signing or listed in cds)")]
    KeyInUse(KeyId),
    /// The key stopped signing recently: resolvers may hold its
    /// signatures, which would be left without their DNSKEY.
    #[error("signatures by key {id} may still be cached until {until}")]
    SignaturesCached {
        /// The key.
        id: KeyId,
        /// When the last of them has left every cache (Unix seconds).
        until: u64,
    },
    /// The parent serves a DS for the zone: without keys the zone is
    /// bogus to validators.
    #[error("the parent serves a ds for the zone")]
    ParentServesDs,
    /// The parent has not been asked (or not every server answered), so
    /// it may serve a DS.
    #[error("the parent has not been seen without a ds")]
    ParentNotSeen,
    /// The parent served a DS before; resolvers may still hold it.
    #[error("the parent's ds may still be cached{}", until.map(|t| format!(" until {t}")).unwrap_or_default())]
    DsCached {
        /// When the last copy has left every cache, if known (Unix
        /// seconds).
        until: Option<u64>,
    },
}

impl Keyring {
    /// An empty keyring of a zone that is to be signed.
    pub fn new() -> Keyring {
        Keyring { keys: Vec::new(), goal: Goal::Secure, algorithm: None, parent_ds_ttl: None }
    }

    /// The key with this id.
    pub fn key(&self, id: KeyId) -> Option<&KeyRecord> {
        self.keys.iter().find(|k| k.id == id)
    }

    fn key_mut(&mut self, id: KeyId) -> Result<&mut KeyRecord, RolloverError> {
        self.keys.iter_mut().find(|k| k.id == id).ok_or(RolloverError::UnknownKey(id))
    }

    /// Keys that have not been removed.
    pub fn live(&self) -> impl Iterator<Item = &KeyRecord> {
        self.keys.iter().filter(|k| k.is_live())
    }

    /// Adds a key, normally one asked for by [`Action::Generate`].
    pub fn add(&mut self, key: KeyRecord) -> Result<(), RolloverError> {
        if self.key(key.id).is_some() {
            return Err(RolloverError::DuplicateId(key.id));
        }
        if let Some(other) = self.live().find(|k| k.key_tag == key.key_tag && k.algorithm == key.algorithm) {
            return Err(RolloverError::KeyTagInUse {
                key_tag: key.key_tag,
                algorithm: key.algorithm,
                other: other.id,
            });
        }
        self.keys.push(key);
        Ok(())
    }

    /// Applies one action of a [`Plan`] at time `now`.
    pub fn apply(&mut self, action: &Action, now: u64) -> Result<(), RolloverError> {
        match *action {
            Action::Generate { .. } => Err(RolloverError::NotApplicable),
            Action::Key { id, from, to } => {
                let key = self.key_mut(id)?;
                if key.state != from {
                    return Err(RolloverError::StaleKeyAction { id, expected: from, actual: key.state });
                }
                key.state = to;
                let t = &mut key.times;
                match to {
                    KeyState::Generated => {}
                    KeyState::Incoming => t.signing = Some(now),
                    KeyState::Published => t.published = Some(now),
                    KeyState::Ready => t.ready = Some(now),
                    KeyState::Active => {
                        t.active = Some(now);
                        t.published.get_or_insert(now);
                        t.signing.get_or_insert(now);
                    }
                    KeyState::Retired => t.retired = Some(now),
                    KeyState::Outgoing => t.unpublished = Some(now),
                    KeyState::Removed => {
                        t.removed = Some(now);
                        if from.dnskey_published() {
                            t.unpublished = Some(now);
                        }
                        if from.signs_zone() || from.signs_dnskey() {
                            t.retired.get_or_insert(now);
                        }
                    }
                }
                Ok(())
            }
            Action::Ds { id, from, to, since } => {
                let key = self.key_mut(id)?;
                if key.ds != from {
                    return Err(RolloverError::StaleDsAction { id, expected: from, actual: key.ds });
                }
                key.ds = to;
                let t = &mut key.times;
                match to {
                    DsState::Unsubmitted => {}
                    DsState::Submitted => {
                        // Back from Seen means the DS went missing: the
                        // continuous sighting starts over.
                        if from == DsState::Seen {
                            t.ds_seen = None;
                            t.ds_missed = Some(since);
                        } else {
                            t.ds_submitted = Some(since);
                        }
                    }
                    DsState::Seen => t.ds_seen = Some(since),
                    DsState::Withdrawn => t.ds_withdrawn = Some(since),
                    DsState::Gone => t.ds_gone = Some(since),
                }
                Ok(())
            }
            Action::ParentEmpty { since } => {
                if let Goal::Insecure { no_ds_since, .. } = &mut self.goal {
                    *no_ds_since = since;
                }
                Ok(())
            }
            Action::ParentDsTtl { ttl } => {
                self.parent_ds_ttl = Some(self.parent_ds_ttl.map_or(ttl, |t| t.max(ttl)));
                Ok(())
            }
        }
    }
}
