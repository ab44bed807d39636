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
//! That is a violation when the owner never tried to release that token in this life of its
//! node (`release_ended` naming it, whether or not the store removed anything: a release the
//! store refused is best effort), and either it believed the refusing grant (its `held` of that
//! fence) or it believed none of the token's grants: keel moves to a later token only after a
//! grant it believed, so a token never believed was given up on an acquisition of unknown
//! outcome (MC62, round 7 #1), whose landed grant nobody will release. A late copy of a believed
//! token's old acquisition, granted anew under a new fence, is not the owner's to release.
//! Reported once per orphaned token. A node's crash or restart needs no excuse: the store node
//! records only refusals within one owner instance, and a restarted node is a new one.

use std::collections::{BTreeMap, BTreeSet};

use keel::lease::Token;
use keel::observe::LeaseEvent;

use super::RunView;
use crate::check::Violation;
use crate::history::ServerEv;

/// S11 over the run's events. Tokens name their owner instance (`owner:incarnation:seq`) and
/// fences are unique per lease, so nothing here needs to know which node sent what (a request
/// applied before its connection's hello is the store's `world`).
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    // (lease, token) → the fences of its grants at the store, the latest last
    let mut granted: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    // (lease, fence)s some owner believed (`held`); (lease, token)s some owner tried to release
    let mut believed: BTreeSet<(&str, u64)> = BTreeSet::new();
    let mut released: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut reported: BTreeSet<(&str, &str)> = BTreeSet::new();
    let mut v = Vec::new();
    for e in run.events {
        match (e.server(), e.lease()) {
            (Some(ServerEv::Grant { lease, token, fence, .. }), _) => {
                granted.entry((lease.as_str(), token.as_str())).or_default().push(*fence);
            }
            (_, Some(LeaseEvent::Held { lease, fence, .. })) => {
                believed.insert((keel_checks::plain(lease), *fence));
            }
            (_, Some(LeaseEvent::ReleaseEnded { lease, token, .. })) => {
                released.insert((keel_checks::plain(lease), keel_checks::plain(token)));
            }
            (Some(ServerEv::AcquireHeldByOwn { lease, holder, token, .. }), _) => {
                // The owner moved on from the holder's token (a later one of its sequence); a
                // late copy of an acquisition under an older token is a ghost, not the owner.
                if seq(token) <= seq(holder) {
                    continue;
                }
                let key = (lease.as_str(), holder.as_str());
                let Some(fences) = granted.get(&key) else { continue };
                let Some(&fence) = fences.last() else { continue };
                let held = |f: &u64| believed.contains(&(lease.as_str(), *f));
                // keel moves to a later token only after a grant it believed: a token none of
                // whose grants was believed was given up on an unknown outcome.
                let orphaned = held(&fence) || !fences.iter().any(held);
                if orphaned && !released.contains(&key) && reported.insert(key) {
                    v.push(Violation::new(
                        "S11",
                        e.t_us,
                        format!(
                            "{}: its acquisition of {lease} under {token} refused by its own earlier grant (token {holder}, fence {fence}), which it {} without trying to release it: the lease is blocked until that grant's TTL runs out",
                            Token::parse(holder).map_or(holder.to_string(), |t| format!("{}:{}", t.owner, t.incarnation)),
                            if held(&fence) { "believed and stepped away from" } else { "never believed, moving on from its token" }
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

/// The sequence number of a lease token (0 when keel did not write it).
fn seq(token: &str) -> u64 {
    Token::parse(token).map_or(0, |t| t.seq)
}

#[cfg(test)]
mod tests {
    use keel::observe::Event as CoreEvent;

    use super::*;
    use crate::history::{Ev, Event, Who};
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
            LeaseEvent::ReleaseEnded {
                lease: "l".into(),
                owner: "n1".into(),
                token: "n1:1:1".into(),
                released: false,
                took_us: 1_000,
                error: None,
            },
        );
        // Believed, stepped away from without a release: S11 at the refusal, once.
        let v = rule(&[grant(10, "n1:1:1", 7), held.clone(), refused(30), refused(40)]);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "S11", 30_000), "{v:?}");
        // A release tried (even one the store refused) is all keel can do.
        assert!(rule(&[grant(10, "n1:1:1", 7), held.clone(), release, refused(30)]).is_empty());
        // A late copy of a believed token's acquisition, granted anew under fence 9, is not the
        // owner's to release.
        assert!(rule(&[grant(10, "n1:1:1", 7), held.clone(), grant(25, "n1:1:1", 9), refused(30)]).is_empty());
        // A token none of whose grants the owner believed was given up on an unknown outcome
        // (MC62): S11, whatever the grant's fence.
        let v = rule(&[grant(10, "n1:1:1", 7), refused(30)]);
        assert_eq!((v.len(), v[0].t_us), (1, 30_000), "{v:?}");
        assert!(v[0].detail.contains("never believed"), "{}", v[0].detail);
        // A late copy of an acquisition under an older token than the holder's is a ghost.
        let ghost = store(
            30,
            ServerEv::AcquireHeldByOwn { lease: "l".into(), holder: "n1:1:2".into(), token: "n1:1:1".into(), by: N },
        );
        assert!(rule(&[grant(10, "n1:1:2", 7), held, ghost]).is_empty());
    }
}
