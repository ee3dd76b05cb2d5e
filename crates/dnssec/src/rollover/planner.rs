//! The planner: from the keyring, the policy, the last observation of the
//! parent and the time, the steps to take now and when to look again.
//!
//! The planner is a set of rules, each of which moves some keys one step
//! when its conditions hold. It applies them to a copy of the keyring
//! until none applies, so one call takes every step that is due at once
//! (publishing a key and submitting its DS can happen in the same call if
//! both are due). Every rule only moves keys forward, except for the ones
//! that follow what is seen at the parent, which cannot flip back without
//! a new observation; so the loop ends.

use serde::{Deserialize, Serialize};

use super::{Action, DsState, Goal, KeyId, KeyRecord, KeyState, Keyring, ParentDs, Role};
use crate::policy::{Algorithm, KeyLayout, MAX_TTL, Policy};

/// What to do now, and when to look again.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Plan {
    /// Steps to take now, in order. Apply them with
    /// [`Keyring::apply`](super::Keyring::apply); add a key for each
    /// [`Action::Generate`].
    pub actions: Vec<Action>,
    /// When to call [`plan`] again if nothing changes meanwhile (no new
    /// parent observation, key, policy or manual operation). It is after
    /// `now`, except that it equals `now` when keys are to be generated;
    /// `None` when nothing will happen until something changes.
    pub next_event: Option<u64>,
    /// When to query the parent's DS RRset next and call [`plan`] with
    /// the answer (at or before `now`: query now); `None` while nothing
    /// waits for the parent. After a failed query, keep passing the last
    /// successful observation.
    pub query_parent_at: Option<u64>,
    /// What the zone is waiting for, for operators to see.
    pub waiting: Vec<Wait>,
}

/// Something a rollover waits for that sixgate does not control.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Wait {
    /// The parent has not been observed yet.
    ParentUnknown,
    /// The key's DS is listed in CDS/CDNSKEY but the parent does not serve
    /// it.
    DsMissing {
        /// The key.
        id: KeyId,
        /// Listed since.
        since: u64,
    },
    /// The parent serves the key's DS, which must still be seen there at
    /// `until` before the rollover goes on.
    DsSettling {
        /// The key.
        id: KeyId,
        /// Until when.
        until: u64,
    },
    /// The parent still serves the DS of a key no longer listed in
    /// CDS/CDNSKEY; the key stays in the zone meanwhile.
    DsRemoval {
        /// The key.
        id: KeyId,
    },
    /// The parent still serves DS records while the zone goes insecure.
    ParentStillSecure,
    /// Not every server of the parent answered the last query: nothing is
    /// taken as gone from the parent until they all do.
    ParentIncomplete,
}

/// Most rounds of rules in one call; far more than any key can take.
const MAX_ROUNDS: usize = 64;

/// What the rules look at besides the keyring.
struct Ctx<'a> {
    policy: &'a Policy,
    parent: Option<&'a ParentDs>,
    zone_max_ttl: u32,
    now: u64,
    target: Algorithm,
    roles: &'static [Role],
    /// The largest DS TTL seen at the parent, the latest observation
    /// included when it shows a DS.
    ds_ttl: Option<u32>,
}

impl Ctx<'_> {
    /// Whether the key belongs to the key set the policy asks for.
    fn fits(&self, k: &KeyRecord) -> bool {
        k.algorithm == self.target.code() && self.roles.contains(&k.role)
    }

    /// Ipub of RFC 7583 §3.2.1.
    fn publish_delay(&self) -> u64 {
        self.policy.publish_delay()
    }

    /// Iret of RFC 7583 §3.2.1.
    fn zone_delay(&self) -> u64 {
        self.policy.zone_delay(self.zone_max_ttl)
    }

    /// The DS wait of RFC 7583 §3.3.1: how long a DS RRset fetched from
    /// the parent may stay in caches. It uses the largest DS TTL seen,
    /// never the negative TTL of an answer without DS: a resolver that
    /// fetched the old DS keeps it for the DS TTL whatever the parent
    /// says later.
    fn ds_delay(&self) -> u64 {
        self.policy.ds_delay(self.ds_ttl)
    }

    /// How long a retired key's DNSKEY stays: until the signatures it
    /// made have left every cache (RFC 7583 §3.2.1 for a ZSK; a KSK only
    /// signed the DNSKEY RRset).
    fn retire_delay(&self, k: &KeyRecord) -> u64 {
        if k.role.signs_zone() { self.zone_delay() } else { self.publish_delay() }
    }

    /// Whether the parent has served the key's DS long enough that every
    /// cache holding the parent's DS RRset holds it, as seen by the latest
    /// observation (RFC 7583 §3.3.1: DprpP + TTLds).
    fn established(&self, k: &KeyRecord) -> bool {
        let Some(seen) = k.times.ds_seen else {
            return false;
        };
        k.ds == DsState::Seen
            && self
                .parent
                .is_some_and(|p| p.serves(k) && p.observed_at >= seen.saturating_add(self.ds_delay()))
    }

    /// Whether the key may leave the zone as far as the parent goes: its
    /// DS is neither listed nor served by any server. (`Gone` itself is
    /// only reached when every server answered without it.)
    fn parent_lets_go(&self, k: &KeyRecord) -> bool {
        matches!(k.ds, DsState::Unsubmitted | DsState::Gone)
            && !self.parent.is_some_and(|p| p.names_tag_of(k))
    }

    /// When an active key is due for replacement, if ever.
    fn due_at(&self, k: &KeyRecord) -> Option<u64> {
        let active = k.times.active?;
        if k.roll_requested {
            return Some(active);
        }
        let (lifetime, lead) = if k.role == Role::Zsk {
            // The successor is published one publication interval early,
            // so that it can take over when the lifetime ends.
            (self.policy.zsk_lifetime, self.publish_delay())
        } else {
            (self.policy.ksk_lifetime, 0)
        };
        if lifetime == 0 {
            return None;
        }
        Some(active.saturating_add(u64::from(lifetime)).saturating_sub(lead))
    }
}

/// When `key` may leave the zone without a cached signature of it being
/// left without its DNSKEY: its retirement plus the time its signatures
/// stay in caches (RFC 7583 §3.2.1). `None` for a key that never stopped
/// signing.
pub fn signatures_gone_at(policy: &Policy, key: &KeyRecord, zone_max_ttl: u32) -> Option<u64> {
    let delay = if key.role.signs_zone() { policy.zone_delay(zone_max_ttl) } else { policy.publish_delay() };
    key.times.retired.map(|t| t.saturating_add(delay))
}

/// When the registry may publish the DS of `key`: once the key's DNSKEY
/// and the zone's signatures have replaced what caches held before
/// (the time the planner lists it in CDS/CDNSKEY), or when it was listed.
/// `None` for a key whose DS is not for the parent.
pub fn ds_publish_after(
    policy: &Policy,
    keyring: &Keyring,
    zone_max_ttl: u32,
    key: &KeyRecord,
) -> Option<u64> {
    if let Some(t) = key.times.ds_submitted {
        return Some(t);
    }
    let ctx = Ctx {
        policy,
        parent: None,
        zone_max_ttl,
        now: 0,
        target: keyring.algorithm.unwrap_or(policy.algorithm),
        roles: match policy.layout {
            KeyLayout::Csk => &[Role::Csk],
            KeyLayout::KskZsk => &[Role::Ksk, Role::Zsk],
        },
        ds_ttl: keyring.parent_ds_ttl,
    };
    ds_submittable_at(&ctx, keyring, key)
}

/// Plans the next steps of the zone's keys at time `now` (Unix seconds).
///
/// `parent` is the last observation of the parent's DS RRset, `None` if
/// none was made or the last query failed. `zone_max_ttl` is the largest
/// TTL of the zone's records. The policy should have passed
/// [`Policy::validate`]; a policy that did not is planned with anyway,
/// without panicking, but the timing may then be unsafe.
pub fn plan(
    policy: &Policy,
    keyring: &Keyring,
    parent: Option<&ParentDs>,
    zone_max_ttl: u32,
    now: u64,
) -> Plan {
    // A TTL above what resolvers keep anything for would only stall the
    // rollover (RFC 8767 §4 and common resolvers cap TTLs at a week or
    // less).
    let observed = parent.filter(|p| !p.ds.is_empty()).map(|p| p.ttl);
    let ds_ttl = observed.max(keyring.parent_ds_ttl).map(|t| t.min(MAX_TTL));
    let ctx = Ctx {
        policy,
        parent,
        zone_max_ttl,
        now,
        target: keyring.algorithm.unwrap_or(policy.algorithm),
        roles: match policy.layout {
            KeyLayout::Csk => &[Role::Csk],
            KeyLayout::KskZsk => &[Role::Ksk, Role::Zsk],
        },
        ds_ttl,
    };
    let mut ring = keyring.clone();
    let mut actions = Vec::new();
    'rounds: for _ in 0..MAX_ROUNDS {
        let batch = step(&ctx, &ring);
        if batch.is_empty() {
            break;
        }
        for action in &batch {
            if ring.apply(action, now).is_err() {
                // The rules only propose actions that fit the keyring; if
                // one does not, stop here rather than go on from a state
                // the rules did not foresee.
                break 'rounds;
            }
            actions.push(action.clone());
        }
    }
    let generate = generation(&ctx, &ring);
    let query_parent_at = query_parent_at(&ctx, &ring);
    // A query due now is the caller's to make before calling again; if it
    // fails, the next attempt is one check interval later.
    let retry = query_parent_at
        .map(|q| if q > now { q } else { now.saturating_add(u64::from(policy.ds_check_interval)) });
    let mut next_event = timers(&ctx, &ring).into_iter().filter(|&t| t > now).chain(retry).min();
    if !generate.is_empty() {
        next_event = Some(now);
    }
    let waiting = waiting(&ctx, &ring, query_parent_at.is_some());
    actions.extend(generate);
    Plan { actions, next_event, query_parent_at, waiting }
}

/// One round: the actions of the first rule that applies.
fn step(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let rules: [fn(&Ctx<'_>, &Keyring) -> Vec<Action>; 12] = [
        follow_parent,
        go_insecure,
        drop_stray,
        start_signing,
        introduce,
        ready,
        promote_incoming,
        submit_ds,
        switch_secure_entry,
        switch_zsk,
        retire_old_generation,
        remove,
    ];
    rules.into_iter().map(|rule| rule(ctx, ring)).find(|batch| !batch.is_empty()).unwrap_or_default()
}

fn key_action(k: &KeyRecord, to: KeyState) -> Action {
    Action::Key { id: k.id, from: k.state, to }
}

fn ds_action(k: &KeyRecord, to: DsState, since: u64) -> Action {
    Action::Ds { id: k.id, from: k.ds, to, since }
}

/// Records what the latest observation of the parent says about each
/// KSK/CSK's DS, and while going insecure, whether the parent serves any.
fn follow_parent(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let Some(p) = ctx.parent else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if !p.ds.is_empty() && ring.parent_ds_ttl.is_none_or(|t| t < p.ttl) {
        out.push(Action::ParentDsTtl { ttl: p.ttl });
    }
    for k in ring.live().filter(|k| k.role.is_secure_entry()) {
        // An observation made before the last change of the key's DS
        // state says nothing about the new state.
        if p.observed_at < k.ds_changed() {
            continue;
        }
        let to = match k.ds {
            DsState::Submitted if p.serves(k) => DsState::Seen,
            // Not seen continuously: the wait starts over.
            DsState::Seen if !p.serves(k) => DsState::Submitted,
            DsState::Withdrawn if !p.may_serve(k) => DsState::Gone,
            DsState::Gone if p.names_tag_of(k) => DsState::Withdrawn,
            _ => continue,
        };
        out.push(ds_action(k, to, p.observed_at));
    }
    if let Goal::Insecure { since, no_ds_since } = ring.goal
        && p.observed_at >= since
    {
        // "No DS" starts only when every server answered without one, and
        // any DS seen anywhere starts it over. An answer from only some
        // servers that shows none proves nothing either way.
        match (p.serves_no_ds(), p.ds.is_empty(), no_ds_since) {
            (true, _, None) => out.push(Action::ParentEmpty { since: Some(p.observed_at) }),
            (_, false, Some(_)) => out.push(Action::ParentEmpty { since: None }),
            _ => {}
        }
    }
    out
}

/// RFC 8078 §4: list "delete" in CDS/CDNSKEY instead of any key, and
/// take the keys out only once no server of the parent has served any DS
/// for the largest DS TTL seen plus the parent's propagation delay: a
/// resolver that fetched the DS just before it went keeps it that long,
/// whatever the negative TTL of the parent's answers now. Until then
/// everything keeps signing.
fn go_insecure(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let Goal::Insecure { no_ds_since, .. } = ring.goal else {
        return Vec::new();
    };
    let withdraw: Vec<Action> =
        ring.live().filter(|k| k.ds_listed()).map(|k| ds_action(k, DsState::Withdrawn, ctx.now)).collect();
    if !withdraw.is_empty() {
        return withdraw;
    }
    let abandon: Vec<Action> = ring
        .live()
        .filter(|k| k.state == KeyState::Generated)
        .map(|k| key_action(k, KeyState::Removed))
        .collect();
    if !abandon.is_empty() {
        return abandon;
    }
    let unsigned_at_parent = match (no_ds_since, ctx.parent) {
        (Some(since), Some(p)) => p.serves_no_ds() && p.observed_at >= since.saturating_add(ctx.ds_delay()),
        _ => false,
    };
    if unsigned_at_parent {
        return ring.live().map(|k| key_action(k, KeyState::Removed)).collect();
    }
    Vec::new()
}

/// Generated keys that no longer fit the policy, or that duplicate
/// another generated key of the same role, are dropped.
fn drop_stray(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let generated: Vec<&KeyRecord> = ring.live().filter(|k| k.state == KeyState::Generated).collect();
    generated
        .iter()
        .enumerate()
        .filter(|&(i, k)| {
            !ctx.fits(k)
                || generated
                    .iter()
                    .take(i)
                    .any(|other| other.role == k.role && other.algorithm == k.algorithm)
        })
        .map(|(_, k)| key_action(k, KeyState::Removed))
        .collect()
}

/// Whether nothing of any key is in the zone yet.
fn unsigned(ring: &Keyring) -> bool {
    ring.live().all(|k| k.state == KeyState::Generated)
}

/// Starting secure: with no DS at the parent, resolvers treat the zone as
/// insecure and do not validate, so the first keys publish and sign at
/// once. Their DS waits (in [`submit_ds`]) until the signed zone has
/// replaced the unsigned one in every cache.
fn start_signing(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    if !unsigned(ring) {
        return Vec::new();
    }
    let first: Vec<&KeyRecord> = ctx
        .roles
        .iter()
        .filter_map(|&role| {
            ring.live().find(|k| k.role == role && k.state == KeyState::Generated && ctx.fits(k))
        })
        .collect();
    if first.len() < ctx.roles.len() {
        return Vec::new();
    }
    first.into_iter().map(|k| key_action(k, KeyState::Active)).collect()
}

/// A generated key enters a signed zone: as the successor of an active
/// key of the same role and algorithm, its DNSKEY is published (RFC 7583
/// §3.2.1, §3.3.1); as part of a new key set, it starts by signing
/// without a DNSKEY (RFC 6781 §4.1.4, "new RRSIGs").
fn introduce(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    if unsigned(ring) {
        return Vec::new();
    }
    ring.live()
        .filter(|k| k.state == KeyState::Generated && ctx.fits(k))
        .map(|k| {
            let succeeds = ring
                .live()
                .any(|a| a.state == KeyState::Active && a.role == k.role && a.algorithm == k.algorithm);
            if succeeds { key_action(k, KeyState::Published) } else { key_action(k, KeyState::Incoming) }
        })
        .collect()
}

/// A published DNSKEY is in every cache after the publication interval
/// (RFC 7583 §3.2.1: Ipub = DprpC + TTLkey).
fn ready(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    ring.live()
        .filter(|k| {
            k.state == KeyState::Published
                && k.times.published.is_some_and(|t| ctx.now >= t.saturating_add(ctx.publish_delay()))
        })
        .map(|k| key_action(k, KeyState::Ready))
        .collect()
}

/// RFC 6781 §4.1.4, "new DNSKEY": once the new key set's signatures are
/// in every cache, its DNSKEYs are published (ZSK and CSK go on signing
/// as active keys; a KSK waits for its DS as a published one). A new key
/// set that is no longer wanted leaves without ever being published.
fn promote_incoming(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let (fitting, unwanted): (Vec<&KeyRecord>, Vec<&KeyRecord>) =
        ring.live().filter(|k| k.state == KeyState::Incoming).partition(|k| ctx.fits(k));
    if !unwanted.is_empty() {
        return unwanted.into_iter().map(|k| key_action(k, KeyState::Removed)).collect();
    }
    let complete = ctx.roles.iter().all(|&role| ring.live().any(|k| k.role == role && ctx.fits(k)));
    let settled = fitting
        .iter()
        .all(|k| k.times.signing.is_some_and(|t| ctx.now >= t.saturating_add(ctx.zone_delay())));
    if fitting.is_empty() || !complete || !settled {
        return Vec::new();
    }
    fitting
        .into_iter()
        .map(|k| {
            let to = if k.role.signs_zone() { KeyState::Active } else { KeyState::Published };
            key_action(k, to)
        })
        .collect()
}

/// When a KSK/CSK's DS may be listed in CDS/CDNSKEY: its DNSKEY (and its
/// signature over the DNSKEY RRset) is in every cache, and every key
/// signing the zone has been doing so long enough that no cache holds
/// records without its signatures. For the first keys of a zone the
/// latter is the wait for the unsigned records to expire.
fn ds_submittable_at(ctx: &Ctx<'_>, ring: &Keyring, k: &KeyRecord) -> Option<u64> {
    if !(k.role.is_secure_entry()
        && ctx.fits(k)
        && k.ds == DsState::Unsubmitted
        && matches!(k.state, KeyState::Ready | KeyState::Active))
    {
        return None;
    }
    let published = k.times.published?.saturating_add(ctx.publish_delay());
    let signed = ring
        .live()
        .filter(|z| z.signs_zone())
        .map(|z| z.times.signing.map_or(u64::MAX, |t| t.saturating_add(ctx.zone_delay())))
        .max()
        .unwrap_or(u64::MAX);
    Some(published.max(signed))
}

/// RFC 7583 §3.3.1: the new KSK/CSK's DS is submitted (CDS/CDNSKEY list
/// it, RFC 7344 §4) and the old key's withdrawn, so the parent replaces
/// one with the other. The old key keeps signing until the new DS is
/// established.
fn submit_ds(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let Some(new) = ring.live().find(|k| ds_submittable_at(ctx, ring, k).is_some_and(|t| ctx.now >= t))
    else {
        return Vec::new();
    };
    let mut out = vec![ds_action(new, DsState::Submitted, ctx.now)];
    out.extend(
        ring.live()
            .filter(|k| k.id != new.id && k.role.is_secure_entry() && k.ds_listed())
            .map(|k| ds_action(k, DsState::Withdrawn, ctx.now)),
    );
    out
}

/// RFC 7583 §3.3.1: once the new DS is established at the parent, the new
/// KSK/CSK becomes the active one and its predecessor retires.
fn switch_secure_entry(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let Some(new) = ring.live().find(|k| {
        k.role.is_secure_entry() && k.state == KeyState::Ready && ctx.fits(k) && ctx.established(k)
    }) else {
        return Vec::new();
    };
    let mut out = vec![key_action(new, KeyState::Active)];
    out.extend(predecessors(ring, new).map(|k| key_action(k, KeyState::Retired)));
    out
}

/// RFC 7583 §3.2.1: a ready ZSK takes over from its predecessor, whose
/// DNSKEY stays until its signatures have expired from caches.
fn switch_zsk(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let Some(new) = ring.live().find(|k| k.role == Role::Zsk && k.state == KeyState::Ready && ctx.fits(k))
    else {
        return Vec::new();
    };
    let mut out = vec![key_action(new, KeyState::Active)];
    out.extend(predecessors(ring, new).map(|k| key_action(k, KeyState::Retired)));
    out
}

/// The active keys that `new` replaces.
fn predecessors<'a>(ring: &'a Keyring, new: &'a KeyRecord) -> impl Iterator<Item = &'a KeyRecord> {
    ring.live().filter(move |k| {
        k.id != new.id && k.state == KeyState::Active && k.role == new.role && k.algorithm == new.algorithm
    })
}

/// RFC 6781 §4.1.4, "DNSKEY removal": once a new KSK/CSK is established
/// at the parent, the old key set's DNSKEYs go, KSK/CSK first (each only
/// once the parent no longer serves its DS), the rest after them. They go
/// on signing until the old DNSKEY RRsets have expired from caches.
fn retire_old_generation(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let anchored = ring.live().any(|k| {
        k.role.is_secure_entry() && k.state == KeyState::Active && ctx.fits(k) && ctx.established(k)
    });
    if !anchored {
        return Vec::new();
    }
    let published_old = |k: &&KeyRecord| {
        !ctx.fits(k) && matches!(k.state, KeyState::Published | KeyState::Ready | KeyState::Active)
    };
    let entries: Vec<Action> = ring
        .live()
        .filter(|k| k.role.is_secure_entry())
        .filter(published_old)
        .filter(|k| ctx.parent_lets_go(k))
        .map(|k| key_action(k, KeyState::Outgoing))
        .collect();
    if !entries.is_empty() {
        return entries;
    }
    let old_entry_left =
        ring.live().any(|k| k.role.is_secure_entry() && !ctx.fits(k) && k.state.dnskey_published());
    if old_entry_left {
        return Vec::new();
    }
    ring.live()
        .filter(|k| !k.role.is_secure_entry())
        .filter(published_old)
        .map(|k| key_action(k, KeyState::Outgoing))
        .collect()
}

/// Keys leave the zone: a retired key once its signatures have expired
/// from caches and the parent serves no DS for it (RFC 7583 §3.2.1,
/// §3.3.1); outgoing keys of one algorithm together, once the DNSKEY
/// RRsets that held them have expired from caches (RFC 6781 §4.1.4,
/// "RRSIGs removal", keeping RFC 4035 §2.2: while a cache may hold a
/// DNSKEY of an algorithm, every RRset carries a signature of it).
fn remove(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    let mut out: Vec<Action> = ring
        .live()
        .filter(|k| {
            k.state == KeyState::Retired
                && k.times.retired.is_some_and(|t| ctx.now >= t.saturating_add(ctx.retire_delay(k)))
                && ctx.parent_lets_go(k)
        })
        .map(|k| key_action(k, KeyState::Removed))
        .collect();
    let outgoing = || ring.live().filter(|k| k.state == KeyState::Outgoing);
    for k in outgoing() {
        let algorithm_done = outgoing()
            .filter(|o| o.algorithm == k.algorithm)
            .all(|o| o.times.unpublished.is_some_and(|t| ctx.now >= t.saturating_add(ctx.publish_delay())));
        if algorithm_done {
            out.push(key_action(k, KeyState::Removed));
        }
    }
    out
}

/// The keys to generate: the first keys of a zone, the new key set of an
/// algorithm or layout change (started only when no other rollover is
/// under way), or the successor of an active key whose lifetime is up or
/// whose replacement was asked for.
fn generation(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<Action> {
    if ring.goal != Goal::Secure {
        return Vec::new();
    }
    let generate = |role| Action::Generate { role, algorithm: ctx.target };
    let missing: Vec<Role> = ctx
        .roles
        .iter()
        .copied()
        .filter(|&role| !ring.live().any(|k| k.role == role && ctx.fits(k)))
        .collect();
    if !missing.is_empty() {
        let start = ring.live().next().is_none()
            || ring.live().any(|k| ctx.fits(k))
            || ring.live().all(|k| k.state == KeyState::Active);
        return if start { missing.into_iter().map(generate).collect() } else { Vec::new() };
    }
    if ring.live().any(|k| !ctx.fits(k)) {
        return Vec::new();
    }
    ctx.roles
        .iter()
        .copied()
        .filter(|&role| {
            let mut keys = ring.live().filter(|k| k.role == role);
            match (keys.next(), keys.next()) {
                (Some(k), None) => k.state == KeyState::Active && ctx.due_at(k).is_some_and(|t| ctx.now >= t),
                _ => false,
            }
        })
        .map(generate)
        .collect()
}

/// Whether anything waits for news from the parent.
fn waits_for_parent(ctx: &Ctx<'_>, ring: &Keyring) -> bool {
    if matches!(ring.goal, Goal::Insecure { .. }) {
        return ring.live().next().is_some();
    }
    ring.live().any(|k| {
        k.role.is_secure_entry()
            && match k.ds {
                DsState::Submitted | DsState::Withdrawn => true,
                DsState::Seen => !ctx.established(k) || k.state != KeyState::Active,
                DsState::Unsubmitted | DsState::Gone => false,
            }
    })
}

/// When to query the parent next: one check interval after the last
/// query, or now if there was none.
fn query_parent_at(ctx: &Ctx<'_>, ring: &Keyring) -> Option<u64> {
    if !waits_for_parent(ctx, ring) {
        return None;
    }
    Some(match ctx.parent {
        Some(p) => p.observed_at.saturating_add(u64::from(ctx.policy.ds_check_interval)).max(ctx.now),
        None => ctx.now,
    })
}

/// The times at which a rule's clock condition comes true.
fn timers(ctx: &Ctx<'_>, ring: &Keyring) -> Vec<u64> {
    let mut out = Vec::new();
    for k in ring.live() {
        let t = &k.times;
        let at = match k.state {
            KeyState::Published => t.published.map(|p| p.saturating_add(ctx.publish_delay())),
            KeyState::Incoming => t.signing.map(|s| s.saturating_add(ctx.zone_delay())),
            KeyState::Retired => t.retired.map(|r| r.saturating_add(ctx.retire_delay(k))),
            KeyState::Outgoing => t.unpublished.map(|u| u.saturating_add(ctx.publish_delay())),
            KeyState::Generated | KeyState::Ready | KeyState::Active | KeyState::Removed => None,
        };
        out.extend(at);
        out.extend(ds_submittable_at(ctx, ring, k));
        if k.state == KeyState::Active && ring.goal == Goal::Secure {
            out.extend(ctx.due_at(k));
        }
    }
    out
}

/// What the zone waits for at the parent.
fn waiting(ctx: &Ctx<'_>, ring: &Keyring, parent_needed: bool) -> Vec<Wait> {
    let mut out = Vec::new();
    if parent_needed && ctx.parent.is_none() {
        out.push(Wait::ParentUnknown);
    }
    if parent_needed && ctx.parent.is_some_and(|p| !p.complete) {
        out.push(Wait::ParentIncomplete);
    }
    for k in ring.live().filter(|k| k.role.is_secure_entry()) {
        match k.ds {
            DsState::Submitted => {
                out.push(Wait::DsMissing { id: k.id, since: k.times.ds_submitted.unwrap_or(ctx.now) })
            }
            DsState::Seen if !ctx.established(k) => out.push(Wait::DsSettling {
                id: k.id,
                until: k.times.ds_seen.unwrap_or(ctx.now).saturating_add(ctx.ds_delay()),
            }),
            DsState::Withdrawn => out.push(Wait::DsRemoval { id: k.id }),
            _ => {}
        }
    }
    if matches!(ring.goal, Goal::Insecure { .. }) && ctx.parent.is_some_and(|p| !p.ds.is_empty()) {
        out.push(Wait::ParentStillSecure);
    }
    out
}
