//! Operations an operator asks for: rolling a key now, changing the
//! algorithm, going insecure and back, removing a key by hand. They only
//! record the intention (or refuse it); [`plan`](super::plan) carries it
//! out step by step.

use super::{Action, DsState, Goal, KeyId, KeyState, Keyring, ParentDs, Role, RolloverError};
use crate::policy::{Algorithm, Policy};

impl Keyring {
    /// Marks the one live key of a role for replacement.
    fn start_roll(
        &mut self,
        matches_role: impl Fn(Role) -> bool,
        role: Role,
    ) -> Result<KeyId, RolloverError> {
        if matches!(self.goal, Goal::Insecure { .. }) {
            return Err(RolloverError::GoingInsecure);
        }
        // Two algorithms mean an algorithm rollover is under way.
        if has_two(self.live().map(|k| k.algorithm)) {
            return Err(RolloverError::RollInProgress);
        }
        let id = {
            let mut keys = self.live().filter(|k| matches_role(k.role));
            match (keys.next(), keys.next()) {
                (Some(k), None) if k.state == KeyState::Active => k.id,
                (Some(_), Some(_)) => return Err(RolloverError::RollInProgress),
                _ => return Err(RolloverError::NoActiveKey(role)),
            }
        };
        self.key_mut(id)?.roll_requested = true;
        Ok(id)
    }

    /// Asks for the KSK (or, in a CSK layout, the CSK) to be replaced now,
    /// whatever its lifetime. Returns the id of the key to be replaced.
    pub fn start_ksk_roll(&mut self) -> Result<KeyId, RolloverError> {
        let role = if self.live().any(|k| k.role == Role::Csk) { Role::Csk } else { Role::Ksk };
        self.start_roll(Role::is_secure_entry, role)
    }

    /// Asks for the ZSK to be replaced now, whatever its lifetime.
    /// Returns the id of the key to be replaced.
    pub fn start_zsk_roll(&mut self) -> Result<KeyId, RolloverError> {
        self.start_roll(|r| r == Role::Zsk, Role::Zsk)
    }

    /// Asks for all keys to be replaced by keys of `algorithm`, whatever
    /// the policy says, by the conservative algorithm rollover of
    /// RFC 6781 §4.1.4.
    pub fn start_algorithm_roll(&mut self, algorithm: Algorithm) -> Result<(), RolloverError> {
        if matches!(self.goal, Goal::Insecure { .. }) {
            return Err(RolloverError::GoingInsecure);
        }
        if has_two(self.live().map(|k| k.algorithm)) {
            return Err(RolloverError::RollInProgress);
        }
        if self.live().next().is_some() && self.live().all(|k| k.algorithm == algorithm.code()) {
            return Err(RolloverError::SameAlgorithm(algorithm.code()));
        }
        self.algorithm = Some(algorithm);
        Ok(())
    }

    /// Asks for the zone to become unsigned: CDS/CDNSKEY "delete" until
    /// the parent's DS is gone, then no signatures and no DNSKEY
    /// (RFC 8078 §4).
    pub fn go_insecure(&mut self, now: u64) -> Result<(), RolloverError> {
        if matches!(self.goal, Goal::Insecure { .. }) {
            return Err(RolloverError::GoingInsecure);
        }
        self.goal = Goal::Insecure { since: now, no_ds_since: None };
        Ok(())
    }

    /// Asks for the zone to be signed again after [`Keyring::go_insecure`].
    /// Active keys that are still in the zone have their DS submitted
    /// again.
    pub fn go_secure(&mut self) -> Result<(), RolloverError> {
        if self.goal == Goal::Secure {
            return Err(RolloverError::AlreadySecure);
        }
        self.goal = Goal::Secure;
        for key in self.keys.iter_mut() {
            if key.role.is_secure_entry()
                && key.state == KeyState::Active
                && matches!(key.ds, DsState::Withdrawn | DsState::Gone)
            {
                key.ds = DsState::Unsubmitted;
            }
        }
        Ok(())
    }

    /// Removes a key at the operator's request, at time `now`. Refused
    /// while the parent serves (or may serve) its DS, while resolvers may
    /// still hold signatures it made ([`super::signatures_gone_at`]), and
    /// while it signs the zone, is the only key signing the DNSKEY RRset
    /// or is listed in CDS/CDNSKEY. `force` (the operator's, never a
    /// customer's) skips the first two, which would only make the zone
    /// bogus for a while; the last ones it never skips.
    pub fn remove(
        &mut self,
        id: KeyId,
        parent: Option<&ParentDs>,
        policy: &Policy,
        zone_max_ttl: u32,
        now: u64,
        force: bool,
    ) -> Result<(), RolloverError> {
        let key = self.key(id).ok_or(RolloverError::UnknownKey(id))?;
        if !key.is_live() {
            return Ok(());
        }
        if key.role.is_secure_entry() {
            let submitted = key.ds != DsState::Unsubmitted && key.ds != DsState::Gone;
            match parent {
                _ if force => {}
                Some(p) if p.names_tag_of(key) => return Err(RolloverError::DsAtParent(id)),
                // Some server did not answer: it may still serve the DS.
                Some(p) if submitted && !p.complete => return Err(RolloverError::ParentUnknown(id)),
                None if submitted => return Err(RolloverError::ParentUnknown(id)),
                _ => {}
            }
            if key.ds_listed() {
                return Err(RolloverError::KeyInUse(id));
            }
        }
        let only_dnskey_signer = key.signs_dnskey() && !self.live().any(|k| k.id != id && k.signs_dnskey());
        if key.signs_zone() || only_dnskey_signer {
            return Err(RolloverError::KeyInUse(id));
        }
        if !force
            && let Some(until) = super::signatures_gone_at(policy, key, zone_max_ttl)
            && now < until
        {
            return Err(RolloverError::SignaturesCached { id, until });
        }
        let from = key.state;
        self.apply(&Action::Key { id, from, to: KeyState::Removed }, now)
    }

    /// Whether the zone may become unsigned at once at `now` (every key
    /// and signature gone) without validators that hold the parent's DS
    /// seeing it as bogus: every server of the parent answered without a
    /// DS, and if it served one before, that DS has been gone for the DS
    /// TTL plus the parent's propagation delay (while going insecure).
    pub fn unsign_check(
        &self,
        parent: Option<&ParentDs>,
        policy: &Policy,
        now: u64,
    ) -> Result<(), RolloverError> {
        let Some(p) = parent else {
            return Err(RolloverError::ParentNotSeen);
        };
        if !p.ds.is_empty() {
            return Err(RolloverError::ParentServesDs);
        }
        if !p.complete {
            return Err(RolloverError::ParentNotSeen);
        }
        let served_before = self.parent_ds_ttl.is_some()
            || self.keys.iter().any(|k| {
                let t = &k.times;
                t.ds_seen.is_some() || t.ds_missed.is_some() || t.ds_gone.is_some()
            });
        if !served_before {
            return Ok(());
        }
        let until = match self.goal {
            Goal::Insecure { no_ds_since: Some(since), .. } => {
                let ttl = self.parent_ds_ttl.map(|t| t.min(crate::policy::MAX_TTL));
                Some(since.saturating_add(policy.ds_delay(ttl)))
            }
            _ => None,
        };
        match until {
            Some(t) if now >= t => Ok(()),
            _ => Err(RolloverError::DsCached { until }),
        }
    }

    /// Forgets keys removed before `before`.
    pub fn prune(&mut self, before: u64) {
        self.keys.retain(|k| k.is_live() || k.times.removed.is_none_or(|t| t >= before));
    }

    /// Forgets keys that were removed at least `retention` seconds before
    /// `now` and returns their ids: the caller deletes their key material.
    /// Nothing in the zone refers to a removed key (no DNSKEY, no
    /// signature, no DS the parent was last seen serving), so nothing
    /// needs it any more.
    pub fn purge(&mut self, retention: u32, now: u64) -> Vec<KeyId> {
        let due = |k: &super::KeyRecord| {
            !k.is_live() && k.times.removed.is_some_and(|t| t.saturating_add(u64::from(retention)) <= now)
        };
        let ids = self.keys.iter().filter(|k| due(k)).map(|k| k.id).collect();
        self.keys.retain(|k| !due(k));
        ids
    }
}

/// Whether the iterator yields two different values.
fn has_two(mut values: impl Iterator<Item = u8>) -> bool {
    match values.next() {
        Some(first) => values.any(|v| v != first),
        None => false,
    }
}
