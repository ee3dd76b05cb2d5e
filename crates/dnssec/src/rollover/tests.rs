//! Rollovers replayed on a simulated clock, with a simulated parent that
//! acts on CDS/CDNSKEY after a delay, and the resolver cache model checked
//! at every event.

use std::collections::BTreeSet;

use super::resolver_model::{DsSet, History, Model};
use super::*;
use crate::policy::{KeyLayout, Policy};

const T0: u64 = 1_700_000_000;
const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// The parent zone: its DS set, and the CDS change it is about to act on.
struct Parent {
    ds: DsSet,
    ttl: u32,
    /// The negative TTL of its NODATA answer when it serves no DS
    /// (RFC 2308 §5: the SOA's TTL capped by its MINIMUM), which a real
    /// parent reports instead of the DS TTL.
    negative_ttl: u32,
    /// How long after CDS/CDNSKEY change the parent acts on it.
    delay: u64,
    /// Add new DS records but keep the old ones.
    add_only: bool,
    /// Whether queries for the DS RRset get an answer.
    answering: bool,
    /// A second server that still serves an older DS set, if it lags.
    lagging: Option<DsSet>,
    /// The registry enters the DS records it adds with a digest that
    /// matches no key (a typo), though with the right key tag.
    wrong_digest: bool,
    pending: Option<(u64, DsSet)>,
}

impl Parent {
    /// What resolvers can get from some server.
    fn served(&self) -> DsSet {
        self.ds.iter().chain(self.lagging.iter().flatten()).copied().collect()
    }
}

struct Sim {
    policy: Policy,
    max_ttl: u32,
    ring: Keyring,
    now: u64,
    parent: Parent,
    observed: Option<ParentDs>,
    model: Model,
    next_id: KeyId,
    next_tag: u16,
    /// Every action with the time it was taken.
    log: Vec<(u64, Action)>,
    last: Plan,
}

impl Sim {
    fn new(policy: Policy) -> Sim {
        policy.validate().unwrap();
        let max_ttl = 3600;
        policy.check_zone_max_ttl(max_ttl).unwrap();
        let parent_ttl = 86_400;
        let mut zone = History::new();
        zone.record(T0, zone_view(&Keyring::new()));
        let mut parent_history = History::new();
        parent_history.record(T0, DsSet::new());
        let model = Model {
            zone,
            parent: parent_history,
            dnskey_window: policy.publish_delay(),
            rrset_window: policy.zone_delay(max_ttl),
            ds_window: u64::from(parent_ttl) + u64::from(policy.parent_propagation_delay),
        };
        Sim {
            policy,
            max_ttl,
            ring: Keyring::new(),
            now: T0,
            parent: Parent {
                ds: DsSet::new(),
                ttl: parent_ttl,
                // .com and .net: DS TTL 86400, negative TTL 900.
                negative_ttl: 900,
                delay: 2 * HOUR,
                add_only: false,
                answering: true,
                lagging: None,
                wrong_digest: false,
                pending: None,
            },
            observed: None,
            model,
            next_id: 1,
            next_tag: 1000,
            log: Vec::new(),
            last: Plan::default(),
        }
    }

    fn plan(&self) -> Plan {
        plan(&self.policy, &self.ring, self.observed.as_ref(), self.max_ttl, self.now)
    }

    /// Plans and applies until nothing is left to do at this moment.
    fn settle(&mut self) {
        for _ in 0..10 {
            let plan = self.plan();
            if let Some(t) = plan.next_event {
                assert!(t >= self.now, "next event {t} before now {}", self.now);
            }
            let mut generated = false;
            for action in &plan.actions {
                match *action {
                    Action::Generate { role, algorithm } => {
                        let key = KeyRecord::generated(
                            self.next_id,
                            role,
                            algorithm.code(),
                            self.next_tag,
                            self.now,
                        );
                        self.next_id += 1;
                        self.next_tag += 1;
                        self.ring.add(key).unwrap();
                        generated = true;
                    }
                    _ => self.ring.apply(action, self.now).unwrap(),
                }
                self.log.push((self.now, action.clone()));
            }
            if generated {
                continue;
            }
            let query_due = plan.query_parent_at.is_some_and(|q| q <= self.now);
            let fresh = self.observed.as_ref().is_some_and(|o| o.observed_at == self.now);
            if query_due && !fresh && self.parent.answering {
                self.observed = Some(self.observe());
                continue;
            }
            if plan.actions.is_empty() {
                // Only a generation or a parent query may ask to be
                // called again at once.
                assert!(plan.next_event.is_none_or(|t| t > self.now));
                self.last = plan;
                return;
            }
        }
        panic!("no fixpoint at {}", self.now);
    }

    /// What asking every server of the parent shows, with the DS digests
    /// matched against the keys as the store does.
    fn observe(&self) -> ParentDs {
        let every = match &self.parent.lagging {
            Some(l) => self.parent.ds.intersection(l).copied().collect(),
            None => self.parent.ds.clone(),
        };
        let any = self.parent.served();
        let ttl = if any.is_empty() { self.parent.negative_ttl } else { self.parent.ttl };
        let keys =
            self.ring.keys.iter().filter(|k| every.contains(&(k.key_tag, k.algorithm, k.id))).map(|k| k.id);
        ParentDs {
            observed_at: self.now,
            ttl,
            ds: any.iter().map(|&(tag, alg, _)| (tag, alg)).collect(),
            keys: keys.collect(),
            complete: true,
        }
    }

    /// The parent acts on the CDS/CDNSKEY the zone publishes now.
    fn parent_sees_cds(&mut self) {
        let wanted = match &zone_view(&self.ring).cds {
            Cds::Keys(keys) => {
                let kept = |k: &KeyRef| {
                    self.parent.ds.iter().find(|d| (d.0, d.1) == (k.key_tag, k.algorithm)).copied()
                };
                let digest = |k: &KeyRef| if self.parent.wrong_digest { 0 } else { k.id };
                let mut set: DsSet =
                    keys.iter().map(|k| kept(k).unwrap_or((k.key_tag, k.algorithm, digest(k)))).collect();
                if self.parent.add_only {
                    set.extend(self.parent.ds.iter().copied());
                }
                set
            }
            Cds::Delete => DsSet::new(),
            Cds::None => return,
        };
        if wanted == self.parent.ds {
            self.parent.pending = None;
        } else if self.parent.pending.as_ref().is_none_or(|(_, p)| *p != wanted) {
            self.parent.pending = Some((self.now + self.parent.delay.max(1), wanted));
        }
    }

    fn set_parent(&mut self, ds: DsSet) {
        self.parent.ds = ds;
        self.model.parent.record(self.now, self.parent.served());
    }

    /// A lagging server catches up with the others.
    fn parent_catches_up(&mut self) {
        self.parent.lagging = None;
        self.model.parent.record(self.now, self.parent.served());
    }

    /// Everything that happens at the current moment.
    fn tick(&mut self) {
        if let Some((at, ds)) = self.parent.pending.clone()
            && at <= self.now
        {
            self.parent.pending = None;
            self.set_parent(ds);
        }
        self.settle();
        self.model.zone.record(self.now, zone_view(&self.ring));
        self.parent_sees_cds();
        if let Err(e) = self.model.check(self.now) {
            panic!("{e}\nkeys: {:#?}", self.ring.keys);
        }
    }

    /// Runs until `end`, calling `each` after every event.
    fn run_with(&mut self, end: u64, mut each: impl FnMut(&Sim)) {
        let mut steps = 0;
        loop {
            self.tick();
            each(self);
            let next = [self.last.next_event, self.parent.pending.as_ref().map(|(t, _)| *t)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(end);
            if next >= end {
                break;
            }
            assert!(next > self.now, "stuck at {}", self.now);
            self.now = next;
            steps += 1;
            assert!(steps < 10_000, "too many steps");
        }
        self.now = end;
        self.tick();
        each(self);
    }

    fn run(&mut self, end: u64) {
        self.run_with(end, |_| {});
    }

    /// Runs until the zone is secure and settled: one key set, its DS
    /// established, nothing scheduled but lifetimes.
    fn secure(&mut self) {
        self.run(self.now + 3 * DAY);
        assert!(self.last.query_parent_at.is_none(), "{:?}", self.last);
        assert!(self.last.waiting.is_empty(), "{:?}", self.last.waiting);
        assert!(!self.parent.ds.is_empty());
    }

    fn live(&self) -> Vec<&KeyRecord> {
        self.ring.live().collect()
    }

    fn key(&self, id: KeyId) -> &KeyRecord {
        self.ring.key(id).unwrap()
    }

    fn only(&self, role: Role) -> &KeyRecord {
        let keys: Vec<&KeyRecord> = self.ring.live().filter(|k| k.role == role).collect();
        assert_eq!(keys.len(), 1, "{keys:#?}");
        keys[0]
    }

    /// When a key made a transition, from the log.
    fn when(&self, id: KeyId, to: KeyState) -> Option<u64> {
        self.log.iter().find_map(|(t, a)| match a {
            Action::Key { id: i, to: s, .. } if *i == id && *s == to => Some(*t),
            _ => None,
        })
    }
}

fn ksk_zsk() -> Policy {
    Policy { layout: KeyLayout::KskZsk, ..Policy::default() }
}

#[test]
fn starts_secure_once_the_signed_zone_is_everywhere() {
    let mut sim = Sim::new(Policy::default());
    sim.secure();
    let csk = sim.only(Role::Csk);
    assert_eq!(csk.state, KeyState::Active);
    assert_eq!(csk.ds, DsState::Seen);
    assert_eq!(csk.algorithm, 13);
    // Signing started at once; the DS only after the unsigned records
    // (TTL 3600, propagation 300) had left every cache.
    assert_eq!(csk.times.active, Some(T0));
    assert_eq!(csk.times.ds_submitted, Some(T0 + 3900));
    let view = zone_view(&sim.ring);
    let csk = KeyRef::from(csk);
    assert_eq!(view.dnskey, vec![csk]);
    assert_eq!(view.dnskey_signers, vec![csk]);
    assert_eq!(view.zone_signers, vec![csk]);
    assert_eq!(view.cds, Cds::Keys(vec![csk]));
    assert_eq!(view.ds, vec![csk]);
    // A CSK that never expires: nothing more to do.
    assert_eq!(sim.last.next_event, None);
    assert!(sim.last.actions.is_empty());
}

#[test]
fn starts_secure_with_ksk_and_zsk() {
    let mut sim = Sim::new(ksk_zsk());
    sim.secure();
    let ksk = KeyRef::from(sim.only(Role::Ksk));
    let zsk = KeyRef::from(sim.only(Role::Zsk));
    let view = zone_view(&sim.ring);
    assert_eq!(view.dnskey, vec![ksk, zsk]);
    assert_eq!(view.dnskey_signers, vec![ksk]);
    assert_eq!(view.zone_signers, vec![zsk]);
    assert_eq!(view.cds, Cds::Keys(vec![ksk]));
    // The ZSK's lifetime is the next event: 30 days less the publication
    // interval.
    assert_eq!(sim.last.next_event, Some(T0 + 30 * DAY - 3900));
}

#[test]
fn zsk_rolls_by_pre_publication() {
    let mut sim = Sim::new(ksk_zsk());
    sim.run(T0 + 100 * DAY);
    let zsks: Vec<&KeyRecord> = sim.ring.keys.iter().filter(|k| k.role == Role::Zsk).collect();
    assert_eq!(zsks.len(), 4, "{zsks:#?}");
    for pair in zsks.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        let published = new.times.published.unwrap();
        let switch = new.times.active.unwrap();
        // RFC 7583 §3.2.1: the successor is published Ipub before the
        // switch, which happens when the old key's lifetime ends.
        assert_eq!(switch - published, 3900);
        assert_eq!(old.times.retired, Some(switch));
        assert_eq!(switch, old.times.active.unwrap() + 30 * DAY);
        assert_eq!(old.times.removed, Some(switch + 3900));
        assert_eq!(new.ds, DsState::Unsubmitted);
    }
    // The KSK never rolled.
    assert_eq!(sim.ring.keys.iter().filter(|k| k.role == Role::Ksk).count(), 1);
}

#[test]
fn csk_rolls_with_the_parent_on_time() {
    let mut sim = Sim::new(Policy::default());
    sim.secure();
    let old = sim.ring.start_ksk_roll().unwrap();
    let started = sim.now;
    sim.run_with(sim.now + 5 * DAY, |sim| {
        // The old key signs the DNSKEY RRset until the new one takes over.
        if sim.key(old).state != KeyState::Removed {
            assert!(zone_view(&sim.ring).dnskey.iter().any(|k| k.id == old));
        }
    });
    let new = sim.only(Role::Csk);
    assert_ne!(new.id, old);
    assert_eq!((new.state, new.ds), (KeyState::Active, DsState::Seen));
    let seen = new.times.ds_seen.unwrap();
    // The parent acted two hours after the CDS changed; the switch waited
    // for the DS TTL and the parent's propagation delay after that.
    assert_eq!(new.times.ds_submitted, Some(started + 3900));
    assert_eq!(seen, started + 3900 + 2 * HOUR);
    assert!(new.times.active.unwrap() >= seen + DAY + HOUR);
    let old = sim.key(old);
    assert_eq!(old.state, KeyState::Removed);
    assert_eq!(old.ds, DsState::Gone);
    assert_eq!(old.times.retired, new.times.active);
    assert!(old.times.removed.unwrap() >= old.times.retired.unwrap() + 3900);
    assert_eq!(sim.last.next_event, None);
}

#[test]
fn ksk_and_zsk_roll_on_their_lifetimes_with_the_parent_on_time() {
    let mut sim =
        Sim::new(Policy { layout: KeyLayout::KskZsk, ksk_lifetime: 45 * 86_400, ..Policy::default() });
    sim.run(T0 + 200 * DAY);
    let ksks: Vec<&KeyRecord> = sim.ring.keys.iter().filter(|k| k.role == Role::Ksk).collect();
    assert_eq!(ksks.len(), 5, "{ksks:#?}");
    for pair in ksks.windows(2) {
        let (old, new) = (pair[0], pair[1]);
        // The successor appears when the lifetime is up, and takes over
        // only after its DS has been served for TTL + propagation.
        assert_eq!(new.times.published, Some(old.times.active.unwrap() + 45 * DAY));
        assert!(new.times.active.unwrap() >= new.times.ds_seen.unwrap() + DAY + HOUR);
    }
    assert!(sim.ring.keys.iter().filter(|k| k.role == Role::Zsk).count() >= 6);
    assert_eq!(sim.parent.ds.len(), 1);
}

#[test]
fn ksk_roll_on_demand() {
    let mut sim = Sim::new(ksk_zsk());
    sim.secure();
    let zsk = sim.only(Role::Zsk).id;
    let old = sim.ring.start_ksk_roll().unwrap();
    // Asking twice before anything happened is harmless; once the
    // successor exists, a roll is under way.
    assert_eq!(sim.ring.start_ksk_roll(), Ok(old));
    sim.tick();
    assert_eq!(sim.ring.start_ksk_roll(), Err(RolloverError::RollInProgress));
    sim.run(sim.now + 5 * DAY);
    let new = sim.only(Role::Ksk);
    assert_ne!(new.id, old);
    assert_eq!(sim.key(old).state, KeyState::Removed);
    // The ZSK is untouched by a KSK rollover.
    assert_eq!(sim.only(Role::Zsk).id, zsk);
}

#[test]
fn late_parent_ds_keeps_the_old_key_signing() {
    let mut sim = Sim::new(Policy::default());
    sim.secure();
    let old = sim.ring.start_ksk_roll().unwrap();
    let old_tag = sim.key(old).key_tag;
    // The registry takes six days to act on the new CDS.
    sim.parent.delay = 6 * DAY;
    let mut waited_for_ds = false;
    let mut new_id = None;
    sim.run_with(sim.now + 12 * DAY, |sim| {
        let new = sim.ring.live().find(|k| k.id != old).map(|k| k.id);
        new_id = new_id.or(new);
        let Some(new) = new_id else { return };
        let established = sim.key(new).state == KeyState::Active;
        if !established {
            // All the while, the old key stays published and signing the
            // DNSKEY RRset and the zone, and nothing is removed.
            let view = zone_view(&sim.ring);
            assert!(view.dnskey.iter().any(|k| k.id == old));
            assert!(view.dnskey_signers.iter().any(|k| k.id == old));
            assert!(view.zone_signers.iter().any(|k| k.id == old));
            assert!(sim.ring.keys.iter().all(|k| k.is_live()));
            // And the parent still has the old DS until it acts.
            if sim.parent.ds.iter().any(|d| (d.0, d.1) == (old_tag, 13)) {
                assert_eq!(sim.key(old).state, KeyState::Active);
            }
        }
        if sim.last.waiting.iter().any(|w| matches!(w, Wait::DsMissing { id, .. } if *id == new)) {
            waited_for_ds = true;
        }
    });
    assert!(waited_for_ds);
    let new = sim.key(new_id.unwrap());
    assert_eq!(new.state, KeyState::Active);
    let submitted = new.times.ds_submitted.unwrap();
    assert_eq!(new.times.ds_seen, Some(submitted + 6 * DAY));
    assert!(new.times.active.unwrap() >= submitted + 6 * DAY + DAY + HOUR);
    assert_eq!(sim.key(old).state, KeyState::Removed);
}

#[test]
fn parent_that_keeps_the_old_ds_keeps_the_old_key() {
    let mut sim = Sim::new(Policy::default());
    sim.secure();
    sim.parent.add_only = true;
    let old = sim.ring.start_ksk_roll().unwrap();
    sim.run(sim.now + 6 * DAY);
    // The new key took over, but the parent still serves the old DS: the
    // old key is retired, not removed, and manual removal is refused.
    let k = sim.key(old);
    assert_eq!((k.state, k.ds), (KeyState::Retired, DsState::Withdrawn));
    assert!(sim.last.waiting.contains(&Wait::DsRemoval { id: old }));
    let observed = sim.observed.clone();
    let now = sim.now;
    assert_eq!(
        sim.ring.remove(old, observed.as_ref(), &sim.policy.clone(), 3600, now, false),
        Err(RolloverError::DsAtParent(old))
    );
    assert_eq!(
        sim.ring.remove(old, None, &sim.policy.clone(), 3600, now, false),
        Err(RolloverError::ParentUnknown(old))
    );
    // The registry removes the stale DS; the key goes at the next check.
    let tag = sim.key(old).key_tag;
    let mut ds = sim.parent.ds.clone();
    ds.retain(|d| (d.0, d.1) != (tag, 13));
    sim.set_parent(ds);
    sim.run(sim.now + 2 * HOUR);
    assert_eq!(sim.key(old).state, KeyState::Removed);
    assert_eq!(sim.last.query_parent_at, None);
}

fn algorithm_roll(policy: Policy) {
    let mut sim = Sim::new(policy);
    sim.secure();
    let old: BTreeSet<KeyId> = sim.ring.live().map(|k| k.id).collect();
    // A registry that acts on CDS at once leaves no slack in the timing.
    sim.parent.delay = 0;
    sim.ring.start_algorithm_roll(Algorithm::Ed25519).unwrap();
    assert_eq!(
        sim.ring.start_algorithm_roll(Algorithm::Ed25519),
        Ok(()),
        "asking again before anything happened is harmless"
    );
    sim.run(sim.now + 8 * DAY);
    let live = sim.live();
    assert!(live.iter().all(|k| k.algorithm == 15 && k.state == KeyState::Active));
    assert_eq!(sim.parent.ds.iter().map(|d| d.1).collect::<Vec<_>>(), vec![15]);
    let new_entry = live.iter().find(|k| k.role.is_secure_entry()).unwrap();
    let established = new_entry.times.ds_seen.unwrap() + DAY + HOUR;
    for &id in &old {
        let k = sim.key(id);
        assert_eq!(k.state, KeyState::Removed);
        // RFC 6781 §4.1.4: old DNSKEYs out only after the new DS is
        // established, old signatures only after that has propagated.
        let unpublished = sim.when(id, KeyState::Outgoing).unwrap();
        assert!(unpublished >= established);
        assert_eq!(k.times.removed, Some(unpublished + 3900));
    }
    for k in &live {
        // New signatures came before the new DNSKEYs, by the largest TTL
        // plus the propagation delay.
        let incoming = sim.when(k.id, KeyState::Incoming).unwrap();
        assert_eq!(k.times.published, Some(incoming + 3900));
    }
    assert_eq!(sim.last.query_parent_at, None);
}

#[test]
fn algorithm_rollover_csk_13_to_15() {
    algorithm_roll(Policy::default());
}

#[test]
fn algorithm_rollover_ksk_zsk_13_to_15() {
    algorithm_roll(ksk_zsk());
}

#[test]
fn algorithm_rollover_from_a_policy_change() {
    let mut sim = Sim::new(ksk_zsk());
    sim.secure();
    sim.policy.algorithm = Algorithm::Ed25519;
    sim.run(sim.now + 8 * DAY);
    assert!(sim.live().iter().all(|k| k.algorithm == 15));
    assert_eq!(sim.live().len(), 2);
}

#[test]
fn layout_change_replaces_the_keys() {
    let mut sim = Sim::new(ksk_zsk());
    sim.secure();
    sim.policy.layout = KeyLayout::Csk;
    sim.run(sim.now + 8 * DAY);
    let live = sim.live();
    assert_eq!(live.len(), 1);
    assert_eq!((live[0].role, live[0].state), (Role::Csk, KeyState::Active));
    assert_eq!(sim.parent.ds.len(), 1);
}

#[test]
fn goes_insecure_only_after_the_parent_drops_the_ds() {
    let mut sim = Sim::new(ksk_zsk());
    sim.secure();
    sim.ring.go_insecure(sim.now).unwrap();
    assert_eq!(sim.ring.go_insecure(sim.now), Err(RolloverError::GoingInsecure));
    sim.parent.delay = 3 * DAY;
    let mut parent_emptied = None;
    let mut saw_delete = false;
    sim.run_with(sim.now + 8 * DAY, |sim| {
        let view = zone_view(&sim.ring);
        saw_delete |= view.cds == Cds::Delete;
        if sim.parent.ds.is_empty() {
            parent_emptied.get_or_insert(sim.now);
        } else {
            // RFC 8078 §4: signing goes on while the parent has a DS.
            assert_eq!(view.dnskey.len(), 2);
            assert_eq!(view.zone_signers.len(), 1);
            assert_eq!(view.dnskey_signers.len(), 1);
        }
    });
    assert!(saw_delete);
    assert!(sim.live().is_empty());
    let removed = sim.ring.keys.iter().filter_map(|k| k.times.removed).min().unwrap();
    assert!(removed >= parent_emptied.unwrap() + DAY + HOUR);
    let view = zone_view(&sim.ring);
    assert!(view.dnskey.is_empty() && view.zone_signers.is_empty());
    assert_eq!(view.cds, Cds::None);
    assert_eq!(sim.last.next_event, None);
    // And back: a new key set, submitted again.
    sim.parent.delay = 2 * HOUR;
    sim.ring.go_secure().unwrap();
    sim.secure();
    assert_eq!(sim.live().len(), 2);
}

/// Regression: once the parent had dropped the DS, the planner waited for
/// the negative TTL of the NODATA answer (900 s under .com) instead of the
/// TTL of the DS it had served (86400 s), so a resolver that fetched the
/// DS just before its removal met a zone without DNSKEY for most of a day.
/// The resolver model, checked at every event, holds the parent's DS for
/// the DS TTL plus the parent's propagation delay.
#[test]
fn going_insecure_waits_for_the_old_ds_ttl_not_the_negative_ttl() {
    for policy in [Policy::default(), ksk_zsk()] {
        let mut sim = Sim::new(policy);
        assert_eq!((sim.parent.ttl, sim.parent.negative_ttl), (86_400, 900));
        sim.secure();
        sim.ring.go_insecure(sim.now).unwrap();
        let mut parent_emptied = None;
        // Every event checks the resolver model (in `tick`): no cached DS
        // may be left without a DNSKEY it matches, signing what is cached.
        sim.run_with(sim.now + 5 * DAY, |sim| {
            if sim.parent.ds.is_empty() {
                parent_emptied.get_or_insert(sim.now);
            }
            if let Some(empty) = parent_emptied
                && sim.now < empty + DAY + HOUR
            {
                // A DS fetched just before the removal is still cached.
                let view = zone_view(&sim.ring);
                assert!(!view.dnskey.is_empty() && !view.dnskey_signers.is_empty(), "at {}", sim.now);
            }
        });
        assert!(sim.live().is_empty(), "{:#?}", sim.ring.keys);
        let removed = sim.ring.keys.iter().filter_map(|k| k.times.removed).min().unwrap();
        let emptied = parent_emptied.unwrap();
        assert!(removed >= emptied + DAY + HOUR, "removed {} s after the ds left", removed - emptied);
        // And not much later: one check interval after the wait.
        assert!(removed <= emptied + DAY + 2 * HOUR, "removed {} s after the ds left", removed - emptied);
    }
}

/// Regression: "no DS" was decided as soon as one parent server lacked
/// it. Here one of two servers keeps serving the old DS for two days after
/// the other dropped it; resolvers can fetch it from that server, so the
/// keys stay until it too has served none for the DS TTL.
#[test]
fn going_insecure_waits_until_no_parent_server_serves_the_ds() {
    let mut sim = Sim::new(ksk_zsk());
    sim.secure();
    sim.parent.lagging = Some(sim.parent.ds.clone());
    sim.ring.go_insecure(sim.now).unwrap();
    let started = sim.now;
    sim.run(started + 2 * DAY);
    assert!(sim.parent.ds.is_empty(), "the first server acted on the delete");
    assert_eq!(sim.live().len(), 2, "keys removed while a server still serves the ds");
    assert!(sim.last.waiting.contains(&Wait::ParentStillSecure));
    sim.parent_catches_up();
    let caught_up = sim.now;
    sim.run(sim.now + 3 * DAY);
    assert!(sim.live().is_empty());
    let removed = sim.ring.keys.iter().filter_map(|k| k.times.removed).min().unwrap();
    assert!(removed >= caught_up + DAY + HOUR);
}

/// Regression: an answer from only some of the parent's servers, none of
/// them with a DS, counted as "no DS". A server that did not answer may
/// still serve it.
#[test]
fn no_ds_is_not_decided_while_a_parent_server_is_silent() {
    let policy = Policy::default();
    let mut sim = Sim::new(policy.clone());
    sim.secure();
    sim.ring.go_insecure(sim.now).unwrap();
    sim.run(sim.now + HOUR);
    let t = sim.now + HOUR;
    let partial = ParentDs { observed_at: t, ttl: 900, ds: Vec::new(), keys: Vec::new(), complete: false };
    for at in [t, t + 3 * DAY] {
        let p = ParentDs { observed_at: at, ..partial.clone() };
        let plan = plan(&policy, &sim.ring, Some(&p), 3600, at);
        for a in &plan.actions {
            assert!(
                !matches!(a, Action::Key { to: KeyState::Removed, .. } | Action::ParentEmpty { .. }),
                "{a:?}"
            );
            sim.ring.apply(a, at).unwrap();
        }
        assert!(plan.waiting.contains(&Wait::ParentIncomplete), "{:?}", plan.waiting);
    }
    assert_eq!(sim.live().len(), 1);
}

/// Regression: the planner took a DS at the parent with the key's tag and
/// algorithm as the key's, whatever its digest. A registry that keeps the
/// old DS and adds the new one with a mistyped digest must not let a CSK
/// rollover retire the old key: validators would find no DS for a key
/// that signs the DNSKEY RRset.
#[test]
fn a_ds_with_a_wrong_digest_does_not_count_as_the_keys() {
    let mut sim = Sim::new(Policy::default());
    sim.secure();
    sim.parent.add_only = true;
    sim.parent.wrong_digest = true;
    let old = sim.ring.start_ksk_roll().unwrap();
    // The resolver model (checked at every event) holds the wrong DS too.
    sim.run(sim.now + 10 * DAY);
    let new = sim.ring.live().find(|k| k.id != old).unwrap().id;
    let tag = sim.key(new).key_tag;
    assert!(sim.parent.ds.iter().any(|d| (d.0, d.1, d.2) == (tag, 13, 0)), "{:?}", sim.parent.ds);
    assert_eq!(sim.key(old).state, KeyState::Active);
    assert_eq!((sim.key(new).state, sim.key(new).ds), (KeyState::Ready, DsState::Submitted));
    assert!(sim.last.waiting.iter().any(|w| matches!(w, Wait::DsMissing { id, .. } if *id == new)));
    // The registry corrects the digest: the rollover completes.
    sim.parent.wrong_digest = false;
    let fixed: DsSet =
        sim.parent.ds.iter().map(|&(t, a, d)| if t == tag { (t, a, new) } else { (t, a, d) }).collect();
    sim.set_parent(fixed);
    sim.run(sim.now + 5 * DAY);
    assert_eq!(sim.key(new).state, KeyState::Active);
    assert_ne!(sim.key(old).state, KeyState::Active);
}

/// Regression: `remove-key` took a retired ZSK (or CSK) at once, while
/// resolvers could still hold the signatures it made for the zone's
/// largest TTL plus the propagation delay: those answers turned bogus.
#[test]
fn removing_a_retired_key_waits_until_its_signatures_left_caches() {
    let mut sim = Sim::new(ksk_zsk());
    sim.secure();
    let old = sim.only(Role::Zsk).id;
    sim.ring.start_zsk_roll().unwrap();
    // Until the old ZSK retires.
    sim.run_with(sim.now + DAY, |_| {});
    let retired = sim.key(old).times.retired.expect("the old zsk retired");
    let policy = sim.policy.clone();
    // Back to the moment it retired, when its signatures are everywhere.
    let mut ring = sim.ring.clone();
    let k = ring.keys.iter_mut().find(|k| k.id == old).unwrap();
    (k.state, k.times.removed) = (KeyState::Retired, None);
    let observed = sim.observed.clone();
    let until = retired + policy.zone_delay(3600);
    for at in [retired, until - 1] {
        assert_eq!(
            ring.clone().remove(old, observed.as_ref(), &policy, 3600, at, false),
            Err(RolloverError::SignaturesCached { id: old, until })
        );
    }
    assert_eq!(ring.clone().remove(old, observed.as_ref(), &policy, 3600, until, false), Ok(()));
    // The operator may force it, knowing the cost.
    assert_eq!(ring.clone().remove(old, observed.as_ref(), &policy, 3600, retired, true), Ok(()));
    // A key that signs is never removed, forced or not.
    let active = sim.only(Role::Zsk).id;
    assert_eq!(
        ring.remove(active, observed.as_ref(), &policy, 3600, until, true),
        Err(RolloverError::KeyInUse(active))
    );
}

/// Regression: unsigning at once (`dnssec disable --now`) ignored the
/// parent's DS. It is refused while the parent serves one, has not been
/// seen without one, or served one that may still be cached.
#[test]
fn unsigning_at_once_is_refused_while_a_ds_may_be_cached() {
    let policy = Policy::default();
    let mut sim = Sim::new(policy.clone());
    // Before the parent was asked: it may have a DS.
    assert_eq!(sim.ring.unsign_check(None, &policy, sim.now), Err(RolloverError::ParentNotSeen));
    sim.secure();
    let observed = sim.observed.clone();
    assert_eq!(
        sim.ring.unsign_check(observed.as_ref(), &policy, sim.now),
        Err(RolloverError::ParentServesDs)
    );
    sim.ring.go_insecure(sim.now).unwrap();
    let mut checked = false;
    sim.run_with(sim.now + 4 * DAY, |sim| {
        let Goal::Insecure { no_ds_since: Some(since), .. } = sim.ring.goal else { return };
        if sim.live().is_empty() {
            return;
        }
        let until = since + DAY + HOUR;
        let verdict = sim.ring.unsign_check(sim.observed.as_ref(), &sim.policy, sim.now);
        if sim.now < until {
            assert_eq!(verdict, Err(RolloverError::DsCached { until: Some(until) }));
            checked = true;
        }
    });
    assert!(checked);
    // A zone whose DS never reached the parent may go at once.
    let mut fresh = Sim::new(policy.clone());
    fresh.parent.delay = 10 * DAY;
    fresh.run(fresh.now + DAY);
    assert!(fresh.parent.ds.is_empty());
    assert_eq!(fresh.ring.unsign_check(fresh.observed.as_ref(), &policy, fresh.now), Ok(()));
    let silent = ParentDs { complete: false, ..fresh.observed.clone().unwrap() };
    assert_eq!(fresh.ring.unsign_check(Some(&silent), &policy, fresh.now), Err(RolloverError::ParentNotSeen));
}

#[test]
fn parent_ds_must_be_seen_continuously() {
    let policy = Policy::default();
    let mut ring = Keyring::new();
    let mut old = KeyRecord::generated(1, Role::Csk, 13, 1, T0);
    old.state = KeyState::Active;
    old.ds = DsState::Withdrawn;
    old.times.active = Some(T0);
    old.times.published = Some(T0);
    old.times.signing = Some(T0);
    let mut new = KeyRecord::generated(2, Role::Csk, 13, 2, T0);
    new.state = KeyState::Ready;
    new.ds = DsState::Submitted;
    new.times.published = Some(T0);
    new.times.ds_submitted = Some(T0 + DAY);
    ring.keys = vec![old, new];
    let seen = |at: u64, tags: &[u16]| ParentDs {
        observed_at: at,
        ttl: 7200,
        ds: tags.iter().map(|&t| (t, 13)).collect(),
        keys: tags.iter().map(|&t| KeyId::from(t)).collect(),
        complete: true,
    };
    let step = |ring: &mut Keyring, p: &ParentDs, now: u64| {
        let plan = plan(&policy, ring, Some(p), 3600, now);
        for a in &plan.actions {
            ring.apply(a, now).unwrap();
        }
        plan
    };
    let t1 = T0 + 2 * DAY;
    step(&mut ring, &seen(t1, &[1, 2]), t1);
    assert_eq!(ring.key(2).unwrap().ds, DsState::Seen);
    // Gone again an hour later (a registry glitch): the wait starts over.
    let t2 = t1 + HOUR;
    step(&mut ring, &seen(t2, &[1]), t2);
    assert_eq!(ring.key(2).unwrap().ds, DsState::Submitted);
    // An observation older than the loss changes nothing.
    step(&mut ring, &seen(t1, &[1, 2]), t2);
    assert_eq!(ring.key(2).unwrap().ds, DsState::Submitted);
    let t3 = t2 + HOUR;
    step(&mut ring, &seen(t3, &[2]), t3);
    assert_eq!(ring.key(2).unwrap().times.ds_seen, Some(t3));
    // With the observed TTL of 7200 and the parent's propagation delay of
    // 3600, the switch needs an observation at t3 + 10800 or later.
    let plan = step(&mut ring, &seen(t3 + 10_799, &[2]), t3 + 10_799);
    assert_eq!(ring.key(2).unwrap().state, KeyState::Ready);
    assert!(plan.waiting.contains(&Wait::DsSettling { id: 2, until: t3 + 10_800 }));
    step(&mut ring, &seen(t3 + 10_800, &[2]), t3 + 10_800);
    assert_eq!(ring.key(2).unwrap().state, KeyState::Active);
    assert_eq!(ring.key(1).unwrap().state, KeyState::Retired);
}

#[test]
fn unreachable_parent_does_not_busy_loop() {
    let mut sim = Sim::new(Policy::default());
    sim.parent.answering = false;
    sim.run(T0 + DAY);
    let plan = sim.plan();
    assert!(plan.waiting.contains(&Wait::ParentUnknown));
    assert_eq!(plan.query_parent_at, Some(sim.now));
    assert_eq!(plan.next_event, Some(sim.now + 3600));
    assert_eq!(sim.only(Role::Csk).ds, DsState::Submitted);
}

#[test]
fn manual_operations_refuse_nonsense() {
    let mut sim = Sim::new(Policy::default());
    assert!(matches!(sim.ring.start_ksk_roll(), Err(RolloverError::NoActiveKey(_))));
    sim.secure();
    assert_eq!(sim.ring.start_zsk_roll(), Err(RolloverError::NoActiveKey(Role::Zsk)));
    assert_eq!(
        sim.ring.start_algorithm_roll(Algorithm::EcdsaP256Sha256),
        Err(RolloverError::SameAlgorithm(13))
    );
    let csk = sim.only(Role::Csk).id;
    let observed = sim.observed.clone();
    let now = sim.now;
    assert_eq!(
        sim.ring.remove(csk, observed.as_ref(), &sim.policy.clone(), 3600, now, false),
        Err(RolloverError::DsAtParent(csk))
    );
    assert_eq!(
        sim.ring.remove(99, None, &sim.policy.clone(), 3600, now, false),
        Err(RolloverError::UnknownKey(99))
    );
    assert_eq!(sim.ring.go_secure(), Err(RolloverError::AlreadySecure));
    assert!(matches!(
        sim.ring.add(KeyRecord::generated(50, Role::Csk, 13, sim.key(csk).key_tag, now)),
        Err(RolloverError::KeyTagInUse { .. })
    ));
    assert_eq!(
        sim.ring.apply(&Action::Key { id: csk, from: KeyState::Ready, to: KeyState::Active }, now),
        Err(RolloverError::StaleKeyAction { id: csk, expected: KeyState::Ready, actual: KeyState::Active })
    );
    sim.ring.go_insecure(now).unwrap();
    assert_eq!(sim.ring.start_ksk_roll(), Err(RolloverError::GoingInsecure));
}

#[test]
fn keyring_round_trips_as_json() {
    let mut sim = Sim::new(ksk_zsk());
    sim.secure();
    sim.ring.start_ksk_roll().unwrap();
    sim.run(sim.now + DAY);
    let json = serde_json::to_string(&sim.ring).unwrap();
    let back: Keyring = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sim.ring);
    assert!(serde_json::from_str::<Keyring>(r#"{"keys":[],"goal":{"goal":"secure"},"extra":1}"#).is_err());
    let empty: Keyring = serde_json::from_str(r#"{"keys":[],"goal":{"goal":"secure"}}"#).unwrap();
    assert_eq!(empty, Keyring::new());
}

#[test]
fn prune_forgets_old_removed_keys() {
    let mut sim = Sim::new(ksk_zsk());
    sim.run(T0 + 70 * DAY);
    let before = sim.ring.keys.len();
    sim.ring.prune(sim.now);
    assert_eq!(sim.ring.keys.len(), sim.live().len());
    assert!(before > sim.ring.keys.len());
}

#[test]
fn purge_returns_keys_removed_for_the_retention_time() {
    let mut sim = Sim::new(ksk_zsk());
    sim.run(T0 + 70 * DAY);
    let removed: Vec<(KeyId, u64)> =
        sim.ring.keys.iter().filter(|k| !k.is_live()).map(|k| (k.id, k.times.removed.unwrap())).collect();
    assert_eq!(removed.len(), 2, "{:#?}", sim.ring.keys);
    let (first, at) = removed[0];
    let retention = 10 * DAY as u32;
    // A second before its retention ends, the first removed key stays.
    let mut ring = sim.ring.clone();
    assert!(ring.purge(retention, at + u64::from(retention) - 1).is_empty());
    assert_eq!(ring, sim.ring);
    assert_eq!(ring.purge(retention, at + u64::from(retention)), vec![first]);
    assert!(ring.key(first).is_none());
    // Live keys are never purged, however old.
    let mut ring = sim.ring.clone();
    let purged = ring.purge(0, u64::MAX);
    assert_eq!(purged, removed.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    assert_eq!(ring.keys.len(), sim.live().len());
}
