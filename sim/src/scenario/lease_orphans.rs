//! **S11**: a lease owner that steps away from a grant it believed tries to release it.
//!
//! A step-down at the local deadline, or after the guarded work ended, leaves the grant in the
//! store when renewals landed with their replies lost; keel then releases the grant's token
//! (best effort) before it asks again under a fresh token. One that does not (MC61, blind-spot
//! hunt, round 7, #2) leaves an orphan: a grant nobody believes in, which blocks every node, its
//! own owner too, until its TTL runs out.
//!
//! Judged at the store when the orphan shows: the store node records an acquisition refused
//! because it holds a live grant to another token of the same owner instance
//! (`owner:incarnation`, `acquire_held_by_own`), and the rule takes those under a later token of
//! the owner's sequence (a late copy of an older acquisition is a ghost, not the owner).
//! That is a violation when the refusing grant is one the owner believed (its `held` of that
//! fence, in this life of its node) and the owner never tried to release that token in this
//! life (`release_ended` naming it, whether or not the store removed anything: a release the
//! store refused is best effort). A grant the owner never learned of (a late copy of an old
//! acquisition granted again under a new fence), or one from before its node's crash or
//! restart, is not its to release. Reported once per orphaned token.

use std::collections::{BTreeMap, BTreeSet};

use keel::observe::LeaseEvent;

use super::RunView;
use crate::check::Violation;
use crate::history::{ServerEv, Who, WorldEv};

/// S11 over the run's events.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    // (lease, token) → the fence of its latest grant at the store
    let mut granted: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    // node → the (lease, fence)s its owners believed, and the (lease, token)s they released, in
    // its current life
    let mut believed: BTreeMap<Who, BTreeSet<(&str, u64)>> = BTreeMap::new();
    let mut released: BTreeMap<Who, BTreeSet<(&str, &str)>> = BTreeMap::new();
    let mut reported: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut v = Vec::new();
    for e in run.events {
        let n = e.node;
        match (e.server(), e.lease(), e.world()) {
            (Some(ServerEv::Grant { lease, token, fence, .. }), _, _) => {
                granted.insert((lease.as_str(), token.as_str()), *fence);
            }
            (_, Some(LeaseEvent::Held { lease, fence, .. }), _) => {
                believed.entry(n).or_default().insert((keel_checks::plain(lease), *fence));
            }
            (_, Some(LeaseEvent::ReleaseEnded { lease, token, .. }), _) => {
                released.entry(n).or_default().insert((keel_checks::plain(lease), keel_checks::plain(token)));
            }
            (_, _, Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {})) => {
                believed.remove(&n);
                released.remove(&n);
            }
            (Some(ServerEv::AcquireHeldByOwn { lease, holder, token, by }), _, _) => {
                // The owner moved on from the holder's token (a later one of its sequence); a
                // late copy of an acquisition under an older token is a ghost, not the owner.
                if seq(token) <= seq(holder) {
                    continue;
                }
                let key = (lease.as_str(), holder.as_str());
                let Some(&fence) = granted.get(&key) else { continue };
                let was_believed = believed.get(by).is_some_and(|b| b.contains(&(lease.as_str(), fence)));
                let was_released = released.get(by).is_some_and(|r| r.contains(&key));
                if was_believed && !was_released && reported.insert(key) {
                    v.push(Violation::new(
                        "S11",
                        e.t_us,
                        format!(
                            "{by}: its acquisition of {lease} under {token} refused by its own earlier grant (token {holder}, fence {fence}), which it believed and stepped away from without trying to release it: the lease is blocked until that grant's TTL runs out"
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v.truncate(20);
    v
}

/// The sequence number of a lease token (`owner:incarnation:seq`; 0 when it has none).
fn seq(token: &str) -> u64 {
    token.rsplit_once(':').and_then(|(_, s)| s.parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use keel::observe::Event as CoreEvent;

    use super::*;
    use crate::history::{Ev, Event};
    use crate::scenario::test_history::{at, judge};

    const N: Who = Who::Node(1);

    fn store(t_ms: u64, e: ServerEv) -> Event {
        at(t_ms, Who::Store, e)
    }

    fn lease(t_ms: u64, e: LeaseEvent<'_>) -> Event {
        at(t_ms, N, Ev::Core(CoreEvent::Lease(e.to_static())))
    }

    fn grant(t_ms: u64, token: &str, fence: u64) -> Event {
        let g =
            ServerEv::Grant { lease: "l".into(), token: token.into(), fence, ttl_ms: 1_000, valid_ms: 1_000, to: N };
        store(t_ms, g)
    }

    fn refused(t_ms: u64) -> Event {
        store(
            t_ms,
            ServerEv::AcquireHeldByOwn { lease: "l".into(), holder: "n1:1:1".into(), token: "n1:1:2".into(), by: N },
        )
    }

    #[test]
    fn a_believed_grant_left_without_a_release_fires_s11() {
        let rule = |h: &[Event]| judge(h, 0, 100_000, check);
        let held = lease(11, LeaseEvent::Held { lease: "l".into(), owner: "n1".into(), fence: 7 });
        let release = lease(
            20,
            LeaseEvent::ReleaseEnded { lease: "l".into(), owner: "n1".into(), token: "n1:1:1".into(), released: false },
        );
        // Believed, stepped away from without a release: S11 at the refusal, once.
        let v = rule(&[grant(10, "n1:1:1", 7), held.clone(), refused(30), refused(40)]);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "S11", 30_000), "{v:?}");
        // A release tried (even one the store refused) is all keel can do.
        assert!(rule(&[grant(10, "n1:1:1", 7), held.clone(), release, refused(30)]).is_empty());
        // A grant the owner never believed (a late copy granted anew under fence 9), or one from
        // before its node restarted, is not its to release.
        assert!(rule(&[grant(10, "n1:1:1", 7), held.clone(), grant(25, "n1:1:1", 9), refused(30)]).is_empty());
        let restart = at(20, N, WorldEv::NodeStart {});
        assert!(rule(&[grant(10, "n1:1:1", 7), held.clone(), restart, refused(30)]).is_empty());
        // A late copy of an acquisition under an older token than the holder's is a ghost.
        let ghost = store(
            30,
            ServerEv::AcquireHeldByOwn { lease: "l".into(), holder: "n1:1:2".into(), token: "n1:1:1".into(), by: N },
        );
        assert!(rule(&[grant(10, "n1:1:2", 7), held, ghost]).is_empty());
    }
}
