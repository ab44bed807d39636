//! S22: a lease owner's store call ends by its op timeout, judged at each call's outcome.
//!
//! An owner announces its op timeout when it starts (`owner_started`: `op_timeout_us`) and cuts
//! every store call at it (a renewal earlier still, at the grant's deadline): each outcome event
//! reports the call's own duration on the owner's clock (`took_us` of `granted`,
//! `acquire_refused`, `quarantined`, `acquire_failed`, `renewed`, `renew_refused`, `renew_failed`,
//! `time_failed`, `release_ended`), and none may exceed the op timeout by more than the clocks'
//! late slack. A call that outlives it holds the owner: a renewal that hangs past the grant (MS7),
//! a release that waits a TTL for a lost reply (blind-spot hunt, round 18, A #27) and with it a
//! graceful stop or the competing again after a step-down. The duration is measured on the same
//! clock as the cut, so no rate conversion; a call across a freeze of its node or a jump of its
//! clock is excused.
//!
//! And a release's `took_us` is no longer than the owner has been at it: the owner's driver is
//! one task that emits every event of the owner, so its release was sent after the owner's
//! previous event, and reports its duration at `release_ended`. A release reported longer than
//! the running time since that event (at the clocks' fastest rate, with their early slack) lies:
//! a release latency that reads a flat op timeout sends an operator chasing slow stops to the
//! store (blind-spot hunt, round 29, B #12, MC270).

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use crate::cadence::Clocks;
use crate::{Entry, Fact, Span, Violation, plain};

/// S22 over keel's lease events: see the module's doc. The clocks give the late slack, frozen
/// spans and jumps. The first 20 violations.
pub fn lease_calls_end_by_their_timeout<E: Entry>(
    events: &[E],
    clocks: Clocks<impl Fn(&E::Node) -> Vec<Span>, impl Fn(&E::Node, u64, u64) -> bool>,
) -> Vec<Violation> {
    let mut timeouts: BTreeMap<(E::Node, &str, &str), u64> = BTreeMap::new();
    let mut frozen: BTreeMap<E::Node, Vec<Span>> = BTreeMap::new();
    // (node, lease, owner) → the instant of the owner's latest event
    let mut latest: BTreeMap<(E::Node, &str, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            timeouts.retain(|k, _| &k.0 != node);
            latest.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(ev) = e.lease() else { continue };
        let (l, o) = crate::lease_owner(ev);
        let since = latest.insert((node.clone(), l, o), t);
        if let (LeaseEvent::ReleaseEnded { took_us, .. }, Some(since)) = (ev, since)
            && clocks.longest_local(node, since, t).is_some_and(|most| *took_us > most)
            && v.len() < 20
        {
            v.push(Violation::new(
                "S22",
                t,
                format!(
                    "{node}: lease {l} owner {o}: a release reported it took {took_us} µs, but the owner's previous event was {running} µs before its end",
                    running = t - since
                ),
            ));
        }
        use LeaseEvent as L;
        let (lease, owner, took_us, what) = match Some(ev) {
            Some(L::OwnerStarted { lease, owner, op_timeout_us, .. }) => {
                timeouts.insert((node.clone(), plain(lease), plain(owner)), *op_timeout_us);
                continue;
            }
            Some(
                L::Granted { lease, owner, took_us, .. }
                | L::AcquireRefused { lease, owner, took_us, .. }
                | L::Quarantined { lease, owner, took_us, .. }
                | L::AcquireFailed { lease, owner, took_us, .. },
            ) => (lease, owner, *took_us, "acquisition"),
            Some(
                L::Renewed { lease, owner, took_us, .. }
                | L::RenewRefused { lease, owner, took_us }
                | L::RenewFailed { lease, owner, took_us, .. },
            ) => (lease, owner, *took_us, "renewal"),
            Some(L::TimeFailed { lease, owner, took_us, .. } | L::TimeRead { lease, owner, took_us }) => {
                (lease, owner, *took_us, "time read")
            }
            Some(L::ReleaseEnded { lease, owner, took_us, .. }) => (lease, owner, *took_us, "release"),
            _ => continue,
        };
        let (lease, owner) = (plain(lease), plain(owner));
        let Some(&timeout_us) = timeouts.get(&(node.clone(), lease, owner)) else { continue };
        if took_us <= timeout_us.saturating_add(clocks.slacks.0) {
            continue;
        }
        let began = t.saturating_sub(took_us);
        let call = Span { start: began, end: t };
        let holes = frozen.entry(node.clone()).or_insert_with(|| (clocks.frozen)(node));
        if holes.iter().any(|s| s.overlap(&call).is_some()) || (clocks.jumped)(node, began, t) || v.len() >= 20 {
            continue;
        }
        v.push(Violation::new(
            "S22",
            t,
            format!(
                "{node}: lease {lease} owner {owner}: a {what} took {took_us} µs, past its op timeout of {timeout_us} µs"
            ),
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use keel::observe::Event;

    use super::*;
    use crate::test_entry::{E as Ev, at_ms};

    fn at(t_ms: u64, e: LeaseEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Lease(e.to_static())), None)
    }

    #[test]
    fn calls_end_by_the_op_timeout() {
        let started = crate::test_entry::owner_started(Some((100_000, 10_000_000)));
        let release = |t_ms: u64, took_ms: u64| {
            let took_us = took_ms * 1000;
            at(
                t_ms,
                LeaseEvent::ReleaseEnded {
                    lease: "L".into(),
                    owner: "a".into(),
                    token: "t".into(),
                    released: false,
                    took_us,
                    error: None,
                },
            )
        };
        let judge = |h: &[Ev]| at_ms(&lease_calls_end_by_their_timeout(h, crate::steady_clocks(2_000)));
        assert_eq!(judge(&[started.clone(), release(300, 250)]), []);
        assert_eq!(judge(&[started.clone(), release(1100, 1000)]), [("S22", 1100)]);
        let failed = at(
            900,
            LeaseEvent::RenewFailed { lease: "L".into(), owner: "a".into(), error: "x".into(), took_us: 600_000 },
        );
        assert_eq!(judge(&[started.clone(), failed]), [("S22", 900)]);
        // A release that reports more than the owner has been at it since its previous event.
        let stepped = at(200, LeaseEvent::SteppingDown { lease: "L".into(), owner: "a".into(), fence: 3 });
        assert_eq!(judge(&[started.clone(), stepped.clone(), release(210, 8)]), []);
        assert_eq!(judge(&[started, stepped, release(210, 250)]), [("S22", 210)]);
    }
}
