//! S42: a lease owner's store call that reports a timeout waited its whole op timeout, judged at
//! each failed store-time read, acquisition and release.
//!
//! An owner announces its op timeout when it starts (`owner_started`: `op_timeout_us`) and cuts
//! its time reads, acquisitions and releases at it (S22 bounds them from above; a renewal is cut
//! sooner still, at the grant's deadline: S43, below). The cut and the measure
//! (`took_us`) are on the owner's clock, so a call that failed by its timeout took the op timeout
//! less a millisecond of rounding. A cut computed wrong gives up early: a release whose deadline
//! is counted back from its send (hunt 45 A's survivor 165, MC421) fails at once every time, so
//! no graceful stop hands its lease back and every successor waits out the TTL, while the store
//! may still apply the release nobody waited for. An acquisition cut by the owner's own stop is
//! no store failure and is not reported as one (keel before round 46 reported it as a timeout,
//! logged as a store error at every stop that met an acquisition: MC423). A jump of the node's
//! clock shortly before the failure excuses it, as for V31; a node's crash or restart ends the
//! judging of its owners.
//!
//! **S43**, the renewals: a renewal is cut at the earlier of its op timeout and the belief's end
//! (the grant's local deadline). One that reports a timeout after less than the op timeout was
//! cut by the belief's end, which has then passed: the owner steps down at that same instant
//! (`stepping_down` or `lost` within [`STEP_DOWN_SLACK_US`]). A renewal that gives up short of
//! both (its cut armed on the runtime's timer, MC459: on a node whose clock runs slow it fires
//! before the op timeout has passed on that clock) is retried while the belief lasts, so no
//! loss follows, and nothing else saw it: the owner counts store errors against a store that
//! would have answered, and near the deadline may lose a lease it could have kept.

use std::collections::BTreeMap;

use keel::observe::LeaseEvent;

use crate::{Entry, Fact, JUMP_WINDOW_TIMEOUTS, Violation, plain, timed_out_short};

/// A lease owner: (node, lease, owner).
type Owner<'a, N> = (N, &'a str, &'a str);

/// How soon after a renewal cut by the belief's end its owner steps down (µs): the same poll of
/// its driver, on the global clock; only rounding.
pub const STEP_DOWN_SLACK_US: u64 = 1_000;

/// S42 over keel's lease events: see the module's doc. `jumped(node, from, to)` says whether the
/// node's clock jumped between two instants. The first 20 violations.
pub fn lease_timeouts_take_the_op_timeout<E: Entry>(
    events: &[E],
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    // (node, lease, owner) → its op timeout (µs)
    let mut timeouts: BTreeMap<(E::Node, &str, &str), u64> = BTreeMap::new();
    // (node, lease, owner) → a renewal cut short of its op timeout: (when, took µs, op timeout)
    let mut cut_short: BTreeMap<Owner<'_, E::Node>, (u64, u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        while let Some(k) = cut_short.iter().find(|(_, c)| c.0 + STEP_DOWN_SLACK_US < t).map(|(k, _)| k.clone()) {
            let Some((at, took_us, bound)) = cut_short.remove(&k) else { break };
            if v.len() < 20 {
                let (n, l, o) = &k;
                v.push(Violation::new(
                    "S43",
                    at,
                    format!(
                        "{n}: lease {l} owner {o}: a renewal timed out after {took_us} µs, short of the owner's op timeout of {bound} µs, and the owner did not step down: it was cut before its belief ended"
                    ),
                ));
            }
        }
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            timeouts.retain(|k, _| &k.0 != node);
            cut_short.retain(|k, _| &k.0 != node);
            continue;
        }
        let Some(ev) = e.lease() else { continue };
        let (l, o) = crate::lease_owner(ev);
        let key = (node.clone(), l, o);
        use LeaseEvent as L;
        let (error, took_us, what) = match ev {
            L::OwnerStarted { op_timeout_us, .. } => {
                timeouts.insert(key, *op_timeout_us);
                continue;
            }
            L::SteppingDown { .. } | L::Lost { .. } => {
                cut_short.remove(&key);
                continue;
            }
            L::RenewFailed { error, took_us, .. } => {
                let Some(&bound) = timeouts.get(&key) else { continue };
                let window = t.saturating_sub(bound.saturating_mul(JUMP_WINDOW_TIMEOUTS));
                if timed_out_short(plain(error), *took_us, bound) && !jumped(node, window, t) {
                    cut_short.insert(key, (t, *took_us, bound));
                }
                continue;
            }
            L::TimeFailed { error, took_us, .. } => (error, *took_us, "a store-time read"),
            L::AcquireFailed { error, took_us, .. } => (error, *took_us, "an acquisition"),
            L::ReleaseEnded { error: Some(error), took_us, .. } => (error, *took_us, "a release"),
            _ => continue,
        };
        let Some(&bound) = timeouts.get(&key) else { continue };
        let window = t.saturating_sub(bound.saturating_mul(JUMP_WINDOW_TIMEOUTS));
        if timed_out_short(plain(error), took_us, bound) && !jumped(node, window, t) && v.len() < 20 {
            v.push(Violation::new(
                "S42",
                t,
                format!(
                    "{node}: lease {l} owner {o}: {what} timed out after {took_us} µs, short of the owner's op timeout of {bound} µs"
                ),
            ));
        }
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

    const TIMED_OUT: &str = "store operation lease_release timed out (outcome unknown)";

    fn release(t_ms: u64, took_ms: u64, error: Option<&str>) -> Ev {
        at(
            t_ms,
            LeaseEvent::ReleaseEnded {
                lease: "L".into(),
                owner: "a".into(),
                token: "t".into(),
                released: false,
                took_us: took_ms * 1000,
                error: error.map(Into::into),
            },
        )
    }

    fn acquire_failed(t_ms: u64, took_ms: u64) -> Ev {
        let error = "store operation lease_acquire timed out (outcome unknown)".into();
        at(t_ms, LeaseEvent::AcquireFailed { lease: "L".into(), owner: "a".into(), error, took_us: took_ms * 1000 })
    }

    fn judge(h: &[Ev]) -> Vec<(&'static str, u64)> {
        at_ms(&lease_timeouts_take_the_op_timeout(h, |_, _, _| false))
    }

    #[test]
    fn a_release_that_times_out_before_its_op_timeout_fires_s40() {
        // owner_started's op timeout: 250 ms.
        let started = crate::test_entry::owner_started(Some((100_000, 10_000_000)));
        assert_eq!(judge(&[started.clone(), release(300, 250, Some(TIMED_OUT))]), []);
        assert_eq!(judge(&[started.clone(), release(300, 0, Some(TIMED_OUT))]), [("S42", 300)]);
        // Refused by the store, or failed otherwise (a reset connection): not a timeout.
        assert_eq!(judge(&[started.clone(), release(300, 0, None)]), []);
        assert_eq!(judge(&[started.clone(), release(300, 0, Some("connection reset"))]), []);
        // A jump of the node's clock excuses it.
        let jumped = lease_timeouts_take_the_op_timeout(&[started, release(300, 0, Some(TIMED_OUT))], |_, _, _| true);
        assert!(jumped.is_empty());
    }

    fn renew_failed(t_ms: u64, took_ms: u64) -> Ev {
        let error = "store operation lease_renew timed out (outcome unknown)".into();
        at(t_ms, LeaseEvent::RenewFailed { lease: "L".into(), owner: "a".into(), error, took_us: took_ms * 1000 })
    }

    #[test]
    fn a_renewal_cut_short_without_a_step_down_fires_s43() {
        let started = crate::test_entry::owner_started(Some((100_000, 10_000_000)));
        let stepping = at(300, LeaseEvent::SteppingDown { lease: "L".into(), owner: "a".into(), fence: 1 });
        let later = at(400, LeaseEvent::Awaiting { lease: "L".into(), owner: "a".into() });
        // Its whole op timeout: no step-down needed.
        assert_eq!(judge(&[started.clone(), renew_failed(300, 250), later.clone()]), []);
        // Cut by the belief's end: the owner steps down at once.
        assert_eq!(judge(&[started.clone(), renew_failed(300, 40), stepping, later.clone()]), []);
        // Cut short, and the owner went on: fired at the failure.
        assert_eq!(judge(&[started.clone(), renew_failed(300, 40), later.clone()]), [("S43", 300)]);
        // A crash ends the judging of the node's owners.
        let crash = Ev(300_500, "n1", None, Some(Fact::NodeCrash));
        assert_eq!(judge(&[started, renew_failed(300, 40), crash, later]), []);
    }

    #[test]
    fn an_acquisition_that_times_out_short_fires_s42() {
        let started = crate::test_entry::owner_started(Some((100_000, 10_000_000)));
        assert_eq!(judge(&[started.clone(), acquire_failed(250, 20)]), [("S42", 250)]);
        assert_eq!(judge(&[started, acquire_failed(250, 250)]), []);
    }
}
