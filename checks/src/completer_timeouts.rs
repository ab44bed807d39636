//! V31: a completer's store write that timed out waited its whole op timeout, judged at each
//! failed write.
//!
//! A run announces its op timeout when it starts (`completer_started`: `op_timeout_us`) and cuts
//! each write attempt at it, outside a drain (a drain cuts at the stop's bound, sooner). Each
//! `flush_failed` reports the attempt's own duration on the run's clock (`took_us`), so a write
//! that failed by its timeout took the op timeout less a millisecond of rounding: the cut and the
//! measure are on the same clock, so no rate slack applies. A cut armed on another timer than
//! the run's clock (the runtime's, MC289) gives up early on a slow clock: on a store slower than
//! the cut but within the timeout the service configured, every write fails and the run's
//! backlog fills. A jump of the node's clock shortly before the failure excuses it (a backward
//! jump shortens what the clock measured, while the store client's own timeout runs on real
//! time); a node's crash or restart ends the judging of its runs.

use std::collections::BTreeMap;

use keel::observe::CompleterEvent;

use crate::{Entry, Fact, JUMP_WINDOW_TIMEOUTS, Violation, plain, timed_out_short};

/// V31 over keel's completer events: see the module's doc. `jumped(node, from, to)` says whether
/// the node's clock jumped between two instants. The first 20 violations.
pub fn completer_timeouts_take_the_op_timeout<E: Entry>(
    events: &[E],
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    // (node, completer, run) → its op timeout (µs), while it is not draining
    let mut timeouts: BTreeMap<(E::Node, &str, u64), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            timeouts.retain(|k, _| &k.0 != node);
            continue;
        }
        match e.completer() {
            Some(CompleterEvent::CompleterStarted { completer, run, op_timeout_us, .. }) => {
                timeouts.insert((node.clone(), plain(completer), *run), *op_timeout_us);
            }
            Some(CompleterEvent::DrainStarted { completer, run, .. }) => {
                timeouts.remove(&(node.clone(), plain(completer), *run));
            }
            Some(CompleterEvent::FlushFailed { completer, run, error, took_us, .. }) => {
                let Some(&bound) = timeouts.get(&(node.clone(), plain(completer), *run)) else { continue };
                let window = t.saturating_sub(bound.saturating_mul(JUMP_WINDOW_TIMEOUTS));
                if timed_out_short(plain(error), *took_us, bound) && !jumped(node, window, t) && v.len() < 20 {
                    v.push(Violation::new(
                        "V31",
                        t,
                        format!(
                            "{node}: completer {} run {run}: a write timed out after {took_us} µs, short of the run's op timeout of {bound} µs",
                            plain(completer)
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::test_entry::E as Ev;

    use crate::test_entry::completer_at as at;

    fn started() -> Ev {
        at(
            0,
            CompleterEvent::CompleterStarted {
                completer: "c".into(),
                run: 1,
                batch_size: 8,
                flush_interval_us: 50_000,
                retry_min_us: 10_000,
                retry_max_us: 200_000,
                retry_budget: 4,
                op_timeout_us: 200_000,
                backlog: 4096,
            },
        )
    }

    fn failed(t_ms: u64, error: &'static str, took_ms: u64) -> Ev {
        at(
            t_ms,
            CompleterEvent::FlushFailed {
                completer: "c".into(),
                run: 1,
                n: 3,
                error: error.into(),
                outcome: keel::Outcome::Unknown,
                took_us: took_ms * 1000,
            },
        )
    }

    const TIMED_OUT: &str = "store operation map_txn timed out (outcome unknown)";

    #[test]
    fn a_write_cut_short_of_its_op_timeout_fires_v31() {
        let never = |_: &&str, _, _| false;
        // Cut at the op timeout, or failing sooner for another reason: nothing.
        assert!(completer_timeouts_take_the_op_timeout(&[started(), failed(500, TIMED_OUT, 200)], never).is_empty());
        assert!(completer_timeouts_take_the_op_timeout(&[started(), failed(500, "refused", 3)], never).is_empty());
        // Timed out after 184 ms of a 200 ms timeout (MC289 on a clock of rate 0.92).
        let v = completer_timeouts_take_the_op_timeout(&[started(), failed(500, TIMED_OUT, 184)], never);
        assert_eq!((v.len(), v[0].invariant, v[0].t_us), (1, "V31", 500_000), "{v:?}");
        // A jump of the node's clock shortly before, or a drain (cut at the stop's bound): excused.
        let jumped = |_: &&str, from: u64, to: u64| (from..=to).contains(&400_000);
        assert!(completer_timeouts_take_the_op_timeout(&[started(), failed(500, TIMED_OUT, 184)], jumped).is_empty());
        let drain = at(
            450,
            CompleterEvent::DrainStarted {
                completer: "c".into(),
                run: 1,
                pending: 3,
                producers: 0,
                bound_ms: 600,
                retry_max_ms: 200,
            },
        );
        assert!(
            completer_timeouts_take_the_op_timeout(&[started(), drain, failed(500, TIMED_OUT, 50)], never).is_empty()
        );
    }
}
