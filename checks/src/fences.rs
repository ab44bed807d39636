//! P108: a worker fences itself no sooner than its TTL less its drift margin after the send of
//! its last confirmed beat, judged at each `fenced`.
//!
//! A worker counts its keep-alive as live until `sent + worker_ttl − drift_margin` of the last
//! beat the store applied and confirmed (its registration is the first), on its own clock, and
//! fences itself (stops every run) when that passes. P7 judges the late side, safety: the belief
//! ends before the store's. Nothing judged the early side: a fence deadline computed short (MC461
//! keeps a keep-alive interval in reserve) stops the runs of a worker the store holds live
//! whenever a beat is slow, and unfences it a beat later: the work is redone elsewhere or waits,
//! and every rule of safety agrees with it. The node announces its margin (`node_started`:
//! `drift_margin_us`, the largest of its pools), the worker its TTL (`keepalive`: `ttl_ms`), each
//! confirmation its duration (`worker_registered`, `beat_ended` with `confirmed`: `took_us` from
//! the send). At the fence the worker's clock can have measured at most the confirmation's
//! duration plus the global time since its end at the fastest rate allowed; less than the TTL
//! less the margin is a fence too soon. A jump of the node's clock meanwhile excuses it; a crash
//! or restart forgets the node's workers.

use std::collections::BTreeMap;

use keel::observe::PoolEvent;

use crate::{Entry, Fact, Violation, plain};

/// Rounding between a clock's reading and the global instant of an event (µs).
const SLACK_US: u64 = 1_000;

/// P108 over keel's pool events: see the module's doc. `fastest`: the fastest rate a node's
/// clock runs at within the drift bound; `jumped(node, from, to)`: whether its clock jumped
/// between two instants. The first 20 violations.
pub fn workers_fence_no_sooner_than_their_margin<E: Entry>(
    events: &[E],
    fastest: f64,
    jumped: impl Fn(&E::Node, u64, u64) -> bool,
) -> Vec<Violation> {
    // node → the largest drift margin it announced (µs)
    let mut margins: BTreeMap<E::Node, u64> = BTreeMap::new();
    // (node, worker) → its TTL (µs)
    let mut ttls: BTreeMap<(E::Node, &str), u64> = BTreeMap::new();
    // (node, worker) → its last confirmation: (when it ended, its duration µs)
    let mut confirmed: BTreeMap<(E::Node, &str), (u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        let (node, t) = (e.node(), e.t_us());
        if let Some(Fact::NodeCrash | Fact::NodeStart) = e.fact() {
            margins.remove(node);
            ttls.retain(|k, _| &k.0 != node);
            confirmed.retain(|k, _| &k.0 != node);
            continue;
        }
        match e.pool() {
            Some(PoolEvent::NodeStarted { drift_margin_us, .. }) => {
                let m = margins.entry(node.clone()).or_insert(0);
                *m = (*m).max(*drift_margin_us);
            }
            Some(PoolEvent::Keepalive { worker, ttl_ms, .. }) => {
                ttls.insert((node.clone(), plain(worker)), ttl_ms.saturating_mul(1000));
            }
            Some(
                PoolEvent::WorkerRegistered { worker, took_us, .. }
                | PoolEvent::BeatEnded { worker, took_us, confirmed: true },
            ) => {
                confirmed.insert((node.clone(), plain(worker)), (t, *took_us));
            }
            Some(PoolEvent::Fenced { worker, .. }) => {
                let key = (node.clone(), plain(worker));
                let (Some(&margin), Some(&ttl), Some(&(at, took))) =
                    (margins.get(node), ttls.get(&key), confirmed.get(&key))
                else {
                    continue;
                };
                let need = ttl.saturating_sub(margin);
                // Float: a bound on a clock's reading, never a decision of the code judged.
                let since = (t.saturating_sub(at) as f64 * fastest) as u64;
                let measured = took.saturating_add(since).saturating_add(SLACK_US);
                if measured < need && !jumped(node, at.saturating_sub(took), t) && v.len() < 20 {
                    v.push(Violation::new(
                        "P108",
                        t,
                        format!(
                            "{node}: worker {} fenced itself at most {measured} µs of its clock after its last confirmed beat was sent, sooner than its TTL less its drift margin ({need} µs)",
                            plain(worker)
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
    use crate::test_entry::{E, at_ms, pool_at as at};

    fn history(fence_ms: u64) -> Vec<E> {
        let started = PoolEvent::NodeStarted {
            pool: "p".into(),
            node: "n1".into(),
            ack_grace_us: 1,
            sweep_interval_us: 1,
            cleanup_lock_ttl_us: 1,
            op_timeout_us: 1,
            dedup_window_us: 1,
            drift_margin_us: 150_000,
        };
        vec![
            at(0, started),
            at(1, PoolEvent::Keepalive { worker: "w".into(), ms: 1, ttl_ms: 1500, stopping: false }),
            at(
                10,
                PoolEvent::WorkerRegistered {
                    worker: "w".into(),
                    keepalive_interval_us: 500_000,
                    shutdown_deadline_us: 1,
                    took_us: 10_000,
                },
            ),
            // A beat sent at 500 ms, confirmed 100 ms later: the fence moves to 500 + 1350.
            at(600, PoolEvent::BeatEnded { worker: "w".into(), took_us: 100_000, confirmed: true }),
            // A refused or failed beat moves nothing.
            at(1200, PoolEvent::BeatEnded { worker: "w".into(), took_us: 100_000, confirmed: false }),
            at(fence_ms, PoolEvent::Fenced { worker: "w".into(), running: 1 }),
        ]
    }

    #[test]
    fn a_fence_sooner_than_the_ttl_less_the_margin_fires_p108() {
        let judge = |h: &[E]| at_ms(&workers_fence_no_sooner_than_their_margin(h, 1.0, |_, _, _| false));
        assert_eq!(judge(&history(1850)), []);
        assert_eq!(judge(&history(1350)), [("P108", 1350)]);
        // A clock running fast measures more: at rate 1.1 a fence 110 ms sooner is in time.
        let fast = workers_fence_no_sooner_than_their_margin(&history(1740), 1.1, |_, _, _| false);
        assert!(fast.is_empty(), "{fast:?}");
        // A jump of the node's clock excuses it.
        assert!(workers_fence_no_sooner_than_their_margin(&history(1350), 1.0, |_, _, _| true).is_empty());
    }
}
