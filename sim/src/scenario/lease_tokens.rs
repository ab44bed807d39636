//! **S31**: an owner instance is one process: the tokens a lease owner's life is granted name
//! an instance (`owner:incarnation`) no other life was granted under.
//!
//! keel names its tokens `owner:incarnation:seq`, the incarnation the store's time when the
//! owner started, so that two processes under one owner name (a restarted node, a replacement
//! that overlaps the old one) never share a token: a shared token lets one process re-acquire
//! the other's grant without a new fence, renew it, or release it (MC302, blind-spot hunt,
//! round 36, A #12: the time read for the jitter and not kept, every token `owner:0:n`; no rule
//! saw it, since S11 and S14 trust the tokens to tell instances apart).
//!
//! Judged at each `held`: the store's grant of that fence names its token (`grant`, the latest
//! one of the fence), and the token's instance must not be one a grant believed by another life
//! of any node named (a node's life is the span between its starts). A late copy of an old
//! life's acquisition granted after a restart is nobody's belief, so it is not judged.

use std::collections::BTreeMap;

use keel::lease::Token;
use keel::observe::LeaseEvent;

use super::RunView;
use crate::check::Violation;
use crate::history::{Event, ServerEv, Who, WorldEv};

/// Each `held` of the run, in order, with the token the store last granted its fence under
/// (a fence the store did not grant is skipped) and the node's life (how many times it started):
/// what S31 and S32 judge.
fn held_under<'a>(run: &RunView<'a>, mut on_held: impl FnMut(&'a Event, u32, &'a str, u64, &'a str)) {
    // (lease, fence) → the token the store last granted it under
    let mut tokens: BTreeMap<(&str, u64), &str> = BTreeMap::new();
    let mut lives: BTreeMap<Who, u32> = BTreeMap::new();
    for e in run.events {
        if let Some(WorldEv::NodeStart {}) = e.world() {
            *lives.entry(e.node).or_default() += 1;
            continue;
        }
        match (e.server(), e.lease()) {
            (Some(ServerEv::Grant { lease, token, fence, .. }), _) => {
                tokens.insert((lease.as_str(), *fence), token.as_str());
            }
            (_, Some(LeaseEvent::Held { lease, fence, .. })) => {
                let lease = keel_checks::plain(lease);
                if let Some(token) = tokens.get(&(lease, *fence)) {
                    on_held(e, lives.get(&e.node).copied().unwrap_or(0), lease, *fence, token);
                }
            }
            _ => {}
        }
    }
}

/// S31 over the run's events: the first 20 violations.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    // (lease, owner, incarnation) → the (node, life) that believed a grant of it first
    let mut instances: BTreeMap<(&str, String, u64), (Who, u32)> = BTreeMap::new();
    let mut v = Vec::new();
    held_under(run, |e, life, lease, fence, token| {
        let Some(t) = Token::parse(token) else { return };
        let life = (e.node, life);
        let first = *instances.entry((lease, t.owner.to_owned(), t.incarnation)).or_insert(life);
        if first != life && v.len() < 20 {
            v.push(Violation::new(
                "S31",
                e.t_us,
                format!(
                    "{} (life {}): believes fence {fence} of {lease}, granted under {token}, an instance ({}:{}) that {} (life {}) was granted under before: two processes share tokens",
                    e.node, life.1, t.owner, t.incarnation, first.0, first.1
                ),
            ));
        }
    });
    v
}

/// **S32**: a token is believed under one grant: each `held` names a fence the store granted to
/// a token (`grant`, the latest of that fence) no earlier `held` of another fence was granted
/// under. keel rotates its token at every grant's end (SPEC §3: "a fresh one for every
/// acquisition after a grant ends"), so that a renewal or release of an old grant still in
/// flight (or replayed by a client's retry) can never act on a new one, and a checker or an
/// operator reading the key tells the grants apart. A late copy of an acquisition re-granted
/// under a token whose grant ended is never believed (the owner steps down from it and releases
/// it), so it is not judged. MC350 keeps the token after a step-down for `taken` (blind-spot
/// hunt, round 38, A #8: nothing judged a token's reuse; S31 judges only instances across lives).
pub fn tokens_held_once(run: &RunView<'_>) -> Vec<Violation> {
    // (lease, token) → the fence first believed under it, and by which node
    let mut held: BTreeMap<(&str, &str), (u64, Who)> = BTreeMap::new();
    let mut v = Vec::new();
    held_under(run, |e, _, lease, fence, token| {
        let (first, by) = *held.entry((lease, token)).or_insert((fence, e.node));
        if first != fence && v.len() < 20 {
            v.push(Violation::new(
                "S32",
                e.t_us,
                format!(
                    "{}: believes fence {fence} of {lease}, granted under {token}, the token {by} believed fence {first} under: a token reused after its grant ended",
                    e.node
                ),
            ));
        }
    });
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event as CoreEvent;

    use super::*;
    use crate::history::{Ev, Event};
    use crate::scenario::test_history::{at, judge};

    const N: Who = Who::Node(1);

    fn grant(t_ms: u64, token: &str, fence: u64) -> Event {
        let g =
            ServerEv::Grant { lease: "l".into(), token: token.into(), fence, ttl_ms: 1_000, valid_ms: 1_000, to: N };
        at(t_ms, Who::Store, g)
    }

    fn held(t_ms: u64, fence: u64) -> Event {
        at(t_ms, N, Ev::Core(CoreEvent::Lease(LeaseEvent::Held { lease: "l".into(), owner: "n1".into(), fence })))
    }

    fn start(t_ms: u64) -> Event {
        at(t_ms, N, WorldEv::NodeStart {})
    }

    #[test]
    fn a_second_life_under_the_first_lifes_instance_fires_s31() {
        let rule = |h: &[Event]| judge(h, 0, 100_000, check);
        // Each life under its own incarnation: fine, as are two grants of one life.
        let fine = [
            start(0),
            grant(10, "n1:100:1", 7),
            held(11, 7),
            grant(20, "n1:100:2", 8),
            held(21, 8),
            start(30),
            grant(40, "n1:130:1", 9),
            held(41, 9),
        ];
        assert!(rule(&fine).is_empty(), "{:?}", rule(&fine));
        // The second life under the first's incarnation: S31 at its held.
        let shared = [start(0), grant(10, "n1:0:1", 7), held(11, 7), start(30), grant(40, "n1:0:2", 9), held(41, 9)];
        let v = rule(&shared);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "S31", 41_000), "{v:?}");
        // A late copy of the first life's acquisition granted after the restart is not believed.
        let ghost = [start(0), grant(10, "n1:100:1", 7), held(11, 7), start(30), grant(35, "n1:100:1", 8)];
        assert!(rule(&ghost).is_empty());
    }

    #[test]
    fn a_token_believed_under_a_second_grant_fires_s32() {
        let rule = |h: &[Event]| judge(h, 0, 100_000, tokens_held_once);
        // A fresh token per grant, a re-published held of one grant, and a late re-grant of an
        // old token nobody believes: fine.
        let fine = [
            grant(10, "n1:100:1", 7),
            held(11, 7),
            held(15, 7),
            grant(20, "n1:100:2", 8),
            held(21, 8),
            grant(30, "n1:100:1", 9),
        ];
        assert!(rule(&fine).is_empty(), "{:?}", rule(&fine));
        // The old token granted and believed again: S32 at that held.
        let reused = [grant(10, "n1:100:1", 7), held(11, 7), grant(20, "n1:100:1", 8), held(21, 8)];
        let v = rule(&reused);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "S32", 21_000), "{v:?}");
    }
}
