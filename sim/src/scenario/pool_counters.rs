//! **P82**: a node's pool counters agree with the events its workers' supervision emitted,
//! judged at each read.
//!
//! `PoolNode::live_workers`, `worker_deaths` and `worker_replacements` are what a health check or
//! a dashboard reads; keel emits `slot_started`, `worker_died`, `worker_replaced` and `slot_ended`
//! at the same steps, with no await between a counter's change and its event. The pool scenarios
//! read the counters right after each `add_worker`, each worker handle's return and each job
//! added (`pool_counters`, the scenario's own event; no await, so no schedule moves). At each
//! read, on that node's life: deaths are its `worker_died` events, replacements its
//! `worker_replaced`, and the live incarnations its slots' first incarnations and replacements
//! less the incarnations ended (each `worker_died`, and each `slot_ended` of an incarnation that
//! stopped without dying). Until round 39 keel counted a worker live only once its slot's
//! supervisor first ran, so a read right after `add_worker` missed it (MC377); MC376 counts a
//! replacement when its backoff begins (a slot stopped meanwhile never makes it), MC378 misses
//! the death that ends a slot. A node's crash or restart starts its counts over (a new pool).

use std::collections::BTreeMap;
use std::sync::Arc;

use keel::observe::PoolEvent;
use keel_checks::plain;

use super::pool::{Rec, rec};
use crate::check::Violation;
use crate::history::{Event, Who, WorldEv};
use crate::world::NodeCtx;

/// Record the node's pool counters now (P82).
pub(super) fn record(ctx: &NodeCtx, node: &Arc<keel::pool::PoolNode<crate::net::SimStore>>) {
    ctx.record(Rec::PoolCounters {
        live: u64::try_from(node.live_workers()).unwrap_or(u64::MAX),
        deaths: node.worker_deaths(),
        replacements: node.worker_replacements(),
    });
}

/// What the events say the counters are.
#[derive(Default, Clone, Copy)]
struct Counts {
    live: u64,
    deaths: u64,
    replacements: u64,
}

/// P82 over a pool run's events. The first 20 violations.
pub fn counters_follow_events(events: &[Event]) -> Vec<Violation> {
    let mut nodes: BTreeMap<Who, Counts> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if let Some(WorldEv::NodeCrash {} | WorldEv::NodeStart {}) = e.world() {
            nodes.remove(&e.node);
            continue;
        }
        let c = nodes.entry(e.node).or_default();
        match e.pool() {
            Some(PoolEvent::SlotStarted { .. }) => c.live += 1,
            Some(PoolEvent::WorkerReplaced { .. }) => {
                c.live += 1;
                c.replacements += 1;
            }
            Some(PoolEvent::WorkerDied { .. }) => {
                c.live = c.live.saturating_sub(1);
                c.deaths += 1;
            }
            Some(PoolEvent::SlotEnded { exit, .. }) if plain(exit) == "Stopped" => c.live = c.live.saturating_sub(1),
            _ => {}
        }
        let Some(Rec::PoolCounters { live, deaths, replacements }) = rec(e) else { continue };
        let read = (*live, *deaths, *replacements);
        if read != (c.live, c.deaths, c.replacements) && v.len() < 20 {
            v.push(Violation::new(
                "P82",
                e.t_us,
                format!(
                    "{}: the pool's counters read live {live}, deaths {deaths}, replacements {replacements}; its events say live {}, deaths {}, replacements {}",
                    e.node, c.live, c.deaths, c.replacements
                ),
            ));
        }
    }
    v
}
