//! **S14**: a release reports `released` only when the store removed its grant.
//!
//! `release_ended { released: true }` tells the owner (and its logs) that the lease is free at
//! once, so a successor need not wait out the TTL. A release that errored or timed out, reported
//! as done (blind-spot hunt, round 9, #7), hides a grant still in the store: the lease sits held
//! by nobody's belief until its TTL runs out, while the logs say it was handed back.
//!
//! Judged at each `release_ended` that says `released`: the store node records every release it
//! applied that removed a grant (`released`, by fence), and the grants of each token (`grant`);
//! one of the token's grants must have been removed by a release not already claimed by an
//! earlier `release_ended`. A release whose reply was lost is reported not released, which this
//! rule does not judge (the outcome is unknown to the owner).

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use super::RunView;
use crate::check::Violation;
use crate::history::ServerEv;

/// S14 over the run's events: see the module's doc. The first 20 violations.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    // (lease, token) → the fences of its grants at the store
    let mut granted: BTreeMap<(&str, &str), Vec<u64>> = BTreeMap::new();
    // (lease, fence) → releases the store applied that removed that grant, not yet claimed
    let mut removed: BTreeMap<(&str, u64), u32> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        match (e.server(), e.lease()) {
            (Some(ServerEv::Grant { lease, token, fence, .. }), _) => {
                granted.entry((lease.as_str(), token.as_str())).or_default().push(*fence);
            }
            (Some(ServerEv::Released { lease, fence, .. }), _) => {
                *removed.entry((lease.as_str(), *fence)).or_default() += 1;
            }
            (_, Some(LeaseEvent::ReleaseEnded { lease, token, released: true, .. })) => {
                let (lease, token) = (keel_checks::plain(lease), keel_checks::plain(token));
                let fences = granted.get(&(lease, token)).map(Vec::as_slice).unwrap_or_default();
                let claim = fences.iter().copied().find(|f| removed.get(&(lease, *f)).is_some_and(|n| *n > 0));
                match claim.and_then(|f| removed.get_mut(&(lease, f))) {
                    Some(n) => *n -= 1,
                    None if v.len() < 20 => v.push(Violation::new(
                        "S14",
                        e.t_us,
                        format!(
                            "{}: lease {lease}: the release of token {token} reported released, but the store removed none of its grants (fences {fences:?})",
                            e.node
                        ),
                    )),
                    None => {}
                }
            }
            _ => {}
        }
    }
    v
}
