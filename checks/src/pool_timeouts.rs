//! P97: a pool node's store call that reports a timeout waited its whole op timeout, judged at
//! each failed call that reports its duration.
//!
//! A pool node announces its op timeout when it starts (`node_started`: `op_timeout_us`) and
//! cuts every store call at it on its own clock (`Core::op`, the job map's group commits, a
//! watch's opening). The calls that fail and are tried again report how long the failed try took
//! (`complete_retry`, `requeue_retry`, `router_resync_failed`, `watch_open_failed`,
//! `keepalive_resync_failed`, a failed `worker_deregistered`, each `took_us` on the node's clock, from before its first call), so
//! one that failed by a timeout took at least the op timeout, less a millisecond of rounding. A
//! cut armed on another timer than the node's clock (the runtime's, MC328) gives up early on a
//! node whose clock runs slow: every call of a store slower than the cut but within the timeout
//! the service configured fails, and the node's completions, requeues and resyncs retry against
//! a store that would have answered. A jump or a freeze of the node's clock within ten op
//! timeouts before the failure excuses it (as a jump does for V31, S42, R24, the same rule for
//! the completer, the lease and the map): a frozen clock measures less than the time that passed
//! while the store client's own timeout, on real time, may end the call first (pool seed 222, a
//! keep-alive snapshot timed out after 0 µs of a frozen clock); a node's crash or restart ends
//! the judging of its calls. The node's op timeout is the
//! shortest it announced for any pool (the workers' events do not name theirs), and its calls
//! before its first `node_started` (a start's reads) are not judged.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::{Entry, Fact, JUMP_WINDOW_TIMEOUTS, Violation, plain, timed_out_short};

/// P97 over keel's pool events: see the module's doc. `unsteady(node, from, to)` says whether the
/// node's clock jumped or froze between two instants. The first 20 violations.
pub fn pool_timeouts_take_the_op_timeout<E: Entry>(
    events: &[E],
    unsteady: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    // node → the shortest op timeout (µs) it announced
    let mut timeouts: BTreeMap<E::Node, u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            timeouts.remove(node);
            continue;
        }
        use PoolEvent as P;
        let (error, took_us, what) = match e.pool() {
            Some(P::NodeStarted { op_timeout_us, .. }) => {
                timeouts.entry(node.clone()).and_modify(|b| *b = (*b).min(*op_timeout_us)).or_insert(*op_timeout_us);
                continue;
            }
            Some(P::CompleteRetry { error, took_us, .. }) => (error, *took_us, "a completion"),
            Some(P::RequeueRetry { error, took_us, .. }) => (error, *took_us, "a requeue"),
            Some(P::RouterResyncFailed { error, took_us, .. }) => (error, *took_us, "a router resync"),
            Some(P::WatchOpenFailed { error, took_us, .. }) => (error, *took_us, "a watch's opening"),
            Some(P::KeepaliveResyncFailed { error, took_us, .. }) => (error, *took_us, "a keep-alive resync"),
            Some(P::WorkerDeregistered { error: Some(error), took_us, .. }) => (error, *took_us, "a deregistration"),
            _ => continue,
        };
        let Some(&bound) = timeouts.get(node) else { continue };
        let window = t.saturating_sub(bound.saturating_mul(JUMP_WINDOW_TIMEOUTS));
        if timed_out_short(plain(error), took_us, bound) && !unsteady(node, window, t) && v.len() < 20 {
            v.push(Violation::new(
                "P97",
                t,
                format!("{node}: {what} timed out after {took_us} µs, short of the node's op timeout of {bound} µs"),
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

    fn at(t_ms: u64, e: PoolEvent<'_>) -> Ev {
        Ev(t_ms * 1000, "n1", Some(Event::Pool(e.to_static())), None)
    }

    fn started() -> Ev {
        let (pool, node) = ("p".into(), "n1".into());
        let e = PoolEvent::NodeStarted {
            pool,
            node,
            ack_grace_us: 1,
            sweep_interval_us: 1,
            cleanup_lock_ttl_us: 1,
            op_timeout_us: 250_000,
            dedup_window_us: 1,
            drift_margin_us: 150_000,
        };
        at(0, e)
    }

    fn resync_failed(t_ms: u64, took_ms: u64, error: &'static str) -> Ev {
        let e = PoolEvent::RouterResyncFailed {
            pool: "p".into(),
            took_us: took_ms * 1000,
            retry_us: 1,
            error: error.into(),
        };
        at(t_ms, e)
    }

    const TIMED_OUT: &str = "store operation map_scan timed out (outcome unknown)";

    #[test]
    fn a_call_that_times_out_before_the_op_timeout_fires_p97() {
        let judge = |h: &[Ev]| at_ms(&pool_timeouts_take_the_op_timeout(h, |_, _, _| false));
        assert_eq!(judge(&[started(), resync_failed(500, 250, TIMED_OUT)]), []);
        assert_eq!(judge(&[started(), resync_failed(500, 120, TIMED_OUT)]), [("P97", 500)]);
        // Another error, or no announced op timeout: not judged.
        assert_eq!(judge(&[started(), resync_failed(500, 120, "connection reset")]), []);
        assert_eq!(judge(&[resync_failed(500, 120, TIMED_OUT)]), []);
        // A jump or freeze of the node's clock excuses it.
        let h = [started(), resync_failed(500, 120, TIMED_OUT)];
        assert!(pool_timeouts_take_the_op_timeout(&h, |_, _, _| true).is_empty());
    }
}
