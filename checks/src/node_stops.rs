//! P110: a pool node's stop returns only after its completer stopped and its completion
//! subscriptions closed, judged at its `node_stopped`.
//!
//! `PoolNode::stop` drains the node's workers, then stops its completer (which flushes the
//! completions the drains wrote, or reports what it could not) and then its subscription
//! manager (which delivers every flushed completion event, then closes the subscriptions);
//! the node's token cancelled by its parent starts the same closing before `stop` is called.
//! The completer runs detached from the node's token, so that its drain can outlast the
//! workers': nothing but that explicit stop ends it. A stop that skips it (hunt 47 A's survivor
//! 520: the node's closing task a no-op, MC463) returns while completions are still queued in
//! memory and the subscribers' feeds are still open: a service that exits once `stop` returns,
//! as every service does, loses them, and no completion rule sees it (the completer goes on
//! flushing in a process the simulator keeps alive). So every `node_stopped` of a node whose
//! stop began (`node_stopping`) follows the completer's `stop_returned` and the subscription
//! manager's `subscriptions_closed` (completer `keel:pool:{pool}`) of every run of the two that
//! started in the node's life. A node's crash or start forgets its life.

use std::collections::BTreeMap;

use keel::observe::{CompleterEvent, PoolEvent};

use crate::{Entry, Fact, Violation, plain};

/// What one pool's completer has shown in a node life.
#[derive(Default)]
struct Closing {
    /// The pool's node name, once the pool began its stop (`node_stopping`).
    stopping: Option<String>,
    /// A completer run started and did not return from its stop yet.
    completer_open: bool,
    /// A subscription manager run started and did not close its subscriptions yet.
    subscriptions_open: bool,
}

/// The closing of `completer` in `node`'s life.
fn closing<'m, N: Clone + Ord>(
    lives: &'m mut BTreeMap<(N, String), Closing>,
    node: &N,
    completer: &str,
) -> &'m mut Closing {
    lives.entry((node.clone(), completer.to_owned())).or_default()
}

/// P110 over keel's pool and completer events: see the module's doc. The first 20 violations.
pub fn node_stops_close_their_completions<E: Entry>(events: &[E]) -> Vec<Violation> {
    // (node, completer name `keel:pool:{pool}`) → its closing
    let mut lives: BTreeMap<(E::Node, String), Closing> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let node = e.node();
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            lives.retain(|(n, _), _| n != node);
            continue;
        }
        match (e.completer(), e.pool()) {
            (Some(CompleterEvent::CompleterStarted { completer, .. }), _) => {
                closing(&mut lives, node, plain(completer)).completer_open = true
            }
            (Some(CompleterEvent::SmStarted { completer, .. }), _) => {
                closing(&mut lives, node, plain(completer)).subscriptions_open = true
            }
            (Some(CompleterEvent::StopReturned { completer, .. }), _) => {
                closing(&mut lives, node, plain(completer)).completer_open = false
            }
            (Some(CompleterEvent::SubscriptionsClosed { completer, .. }), _) => {
                closing(&mut lives, node, plain(completer)).subscriptions_open = false;
            }
            (_, Some(PoolEvent::NodeStopping { pool, node: name })) => {
                closing(&mut lives, node, &format!("keel:pool:{}", plain(pool))).stopping =
                    Some(plain(name).to_owned());
            }
            (_, Some(PoolEvent::NodeStopped { node: name })) => {
                for ((n, completer), c) in lives.iter_mut() {
                    if n != node || c.stopping.as_deref() != Some(plain(name)) {
                        continue;
                    }
                    let mut open = Vec::new();
                    if c.completer_open {
                        open.push("its completer was not stopped (completions queued in memory are not flushed)");
                    }
                    if c.subscriptions_open {
                        open.push("its completion subscriptions were not closed (events flushed at the end are not delivered)");
                    }
                    c.stopping = None;
                    if !open.is_empty() && v.len() < 20 {
                        v.push(Violation::new(
                            "P110",
                            e.t_us(),
                            format!(
                                "{node}: pool node {} ({completer}) reported its stop: {}",
                                plain(name),
                                open.join("; ")
                            ),
                        ));
                    }
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
    use crate::test_entry::{E, at_ms, completer_at, pool_at};

    const C: &str = "keel:pool:p";

    fn started(t: u64) -> Vec<E> {
        let completer = completer_at(
            t,
            CompleterEvent::CompleterStarted {
                completer: C.into(),
                run: 1,
                batch_size: 8,
                flush_interval_us: 20_000,
                retry_min_us: 10_000,
                retry_max_us: 200_000,
                retry_budget: 6,
                op_timeout_us: 200_000,
                backlog: 4096,
            },
        );
        let manager = completer_at(t, CompleterEvent::SmStarted { completer: C.into(), run: 1, source_run: 1 });
        vec![manager, completer]
    }

    fn stopping(t: u64) -> E {
        pool_at(t, PoolEvent::NodeStopping { pool: "p".into(), node: "a".into() })
    }

    fn stopped(t: u64) -> E {
        pool_at(t, PoolEvent::NodeStopped { node: "a".into() })
    }

    fn completer_stopped(t: u64) -> E {
        let e = CompleterEvent::StopReturned {
            completer: C.into(),
            run: 1,
            ok: true,
            unflushed: 0,
            undelivered: 0,
            producers_left: 0,
        };
        completer_at(t, e)
    }

    fn closed(t: u64) -> E {
        let e = CompleterEvent::SubscriptionsClosed { completer: C.into(), run: 1, subs: 1, delivered: 3, dropped: 0 };
        completer_at(t, e)
    }

    fn p110(mut h: Vec<E>) -> Vec<(&'static str, u64)> {
        h.sort_by_key(|e| e.0);
        at_ms(&node_stops_close_their_completions(&h))
    }

    #[test]
    fn a_stop_that_closes_both_passes() {
        let mut h = started(10);
        h.extend([stopping(100), completer_stopped(120), closed(130), stopped(140)]);
        assert_eq!(p110(h), []);
    }

    #[test]
    fn a_stop_that_leaves_either_open_fires_p110() {
        let mut h = started(10);
        h.extend([stopping(100), stopped(140)]);
        assert_eq!(p110(h), [("P110", 140)]);
        let mut h = started(10);
        h.extend([stopping(100), completer_stopped(120), stopped(140)]);
        assert_eq!(p110(h), [("P110", 140)], "the subscriptions still open");
        let mut h = started(10);
        h.extend([stopping(100), closed(130), stopped(140)]);
        assert_eq!(p110(h), [("P110", 140)], "the completer still running");
    }

    /// The node's token cancelled before `stop` was called (its parent's): the completer
    /// and its subscriptions close before `node_stopping`, which is in time.
    #[test]
    fn a_close_before_the_stop_began_counts() {
        let mut h = started(10);
        h.extend([completer_stopped(50), closed(60), stopping(100), stopped(140)]);
        assert_eq!(p110(h), []);
    }

    /// Another node's stop, or another pool node's on the same node, judges nothing here.
    #[test]
    fn only_the_stopping_node_is_judged() {
        let mut h = started(10);
        h.push(stopping(100));
        let other = stopped(120);
        h.push(E(other.0, "n2", other.2.clone(), None));
        h.push(pool_at(130, PoolEvent::NodeStopped { node: "b".into() }));
        assert_eq!(p110(h.clone()), []);
        h.push(stopped(140));
        assert_eq!(p110(h), [("P110", 140)]);
    }

    #[test]
    fn what_never_started_need_not_stop() {
        assert_eq!(p110(vec![stopping(100), stopped(140)]), []);
    }

    #[test]
    fn a_crash_forgets_the_life() {
        let mut h = started(10);
        h.push(E(50_000, "n1", None, Some(Fact::NodeCrash)));
        h.extend([stopping(100), stopped(140)]);
        assert_eq!(p110(h), []);
    }
}
