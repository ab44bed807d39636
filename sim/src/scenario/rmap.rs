//! The replicated map scenario (SPEC §4, R1–R4): every node runs a `ReplicatedMap` of one map,
//! writes to it, reads it and calls `set_and_wait` (some calls cancelled on purpose), under
//! store crashes with and without data loss, feed disconnects, partitions, pauses and restarts.
//!
//! Writes stop at the heal; after `CONVERGE_MS` every live replica must equal the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use keel::clock::Clock;
use keel::mutants::Mutant;
use keel::rmap::{ReplicatedMap, RmapConfig, RmapError};
use keel::store::Store;
use madsim::rand::Rng;

use super::Scenario;
use crate::check::{Coverage, Violation};
use crate::history::Event;
use crate::net::SimStore;
use crate::plan::{Fault, FaultKind, FaultPlan, PlanSpec};
use crate::world::{NodeCtx, NodeMain};

const MAP: &str = "routes";
/// After the heal, time by which every replica must equal the store (R2) and every
/// `set_and_wait` must have returned (R3).
const CONVERGE_MS: u64 = 4_000;
/// Period of the reader probe; a live, unpaused node whose probes stop for longer than
/// `R1_GAP_MS` has a blocked reader (R1).
const PROBE_MS: u64 = 250;
const R1_GAP_MS: u64 = 2_000;

/// Workload and timing of the scenario.
#[derive(Clone, Debug)]
pub struct RmapScenario {
    /// Nodes, each with its own replica.
    pub nodes: usize,
    /// Fault window before the heal (writes stop then too).
    pub window_ms: u64,
    /// Hot keys shared by the writers (plus unique keys, which expose lost changes forever).
    pub hot_keys: u32,
}

impl Default for RmapScenario {
    fn default() -> Self {
        RmapScenario { nodes: 4, window_ms: 20_000, hot_keys: 24 }
    }
}

/// FNV-1a over `key=value` lines: a replica's or the store's digest.
fn digest<'a>(entries: impl Iterator<Item = (&'a String, &'a String)>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for (k, v) in entries {
        for b in k.bytes().chain([b'=']).chain(v.bytes()).chain([b'\n']) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn rand_ms(lo: u64, hi: u64) -> Duration {
    Duration::from_millis(madsim::rand::thread_rng().gen_range(lo..hi))
}

struct Node {
    ctx: NodeCtx,
    map: ReplicatedMap<SimStore>,
    window_end_us: u64,
    hot_keys: u32,
}

impl Node {
    fn writing(&self) -> bool {
        self.ctx.history.now_us() < self.window_end_us && !self.ctx.shutdown.is_cancelled()
    }

    async fn pause(&self, d: Duration) -> bool {
        tokio::select! {
            biased;
            _ = self.ctx.shutdown.cancelled() => false,
            _ = self.ctx.clock.sleep(d) => true,
        }
    }

    /// Plain writes of every kind, fast enough to fill a 100-slot channel within a second.
    async fn writer(self: Arc<Self>) {
        let mut n = 0u64;
        while self.writing() && self.pause(rand_ms(10, 40)).await {
            n += 1;
            let (pick, key_no, op) = {
                let mut rng = madsim::rand::thread_rng();
                (rng.gen_range(0..100u32), rng.gen_range(0..self.hot_keys), rng.gen_range(0..100u32))
            };
            let key = if pick < 25 { format!("u-{}-{n}", self.ctx.name) } else { format!("k{key_no}") };
            let value = format!("{}-{n}", self.ctx.name);
            let _ = match op {
                0..70 => self.map.set(&key, &value).await,
                70..80 => self.map.delete(&key).await,
                80..90 => match self.map.get(&key) {
                    Some(old) => self.map.compare_and_set(&key, &old, &value).await,
                    None => self.map.set_if_absent(&key, &value).await,
                },
                90..95 => self.map.append(&key, [value.as_str()]).await,
                _ => self.map.remove(&key, [value.as_str()]).await,
            };
        }
    }

    /// `set_and_wait` on unique keys: most calls run to completion, some are cut short.
    async fn waiter(self: Arc<Self>, lane: u32) {
        let mut n = 0u64;
        while self.writing() && self.pause(rand_ms(300, 2_500)).await {
            n += 1;
            let id = format!("{}-{lane}-{n}", self.ctx.name);
            let key = format!("w-{id}");
            let cut = madsim::rand::thread_rng().gen_bool(0.3).then(|| rand_ms(1, 12));
            self.ctx.record("saw_start", &[("id", id.clone())]);
            let r = match cut {
                None => Some(self.map.set_and_wait_until(&key, &id, &self.ctx.shutdown).await),
                Some(d) => tokio::select! {
                    biased;
                    r = self.map.set_and_wait(&key, &id) => Some(r),
                    _ = self.ctx.clock.sleep(d) => None,
                },
            };
            match r {
                Some(Ok(rev)) => {
                    let replica_rev = self.map.revision();
                    let has = self.map.get(&key).is_some();
                    self.ctx.record(
                        "saw_done",
                        &[
                            ("id", id),
                            ("rev", rev.to_string()),
                            ("replica_rev", replica_rev.to_string()),
                            ("has_key", has.to_string()),
                        ],
                    );
                }
                Some(Err(e)) => {
                    let kind = match e {
                        RmapError::Store(_) => "store",
                        RmapError::Closed => "closed",
                        RmapError::Cancelled => "cancelled",
                        RmapError::DataLost { .. } => "data_lost",
                        _ => "other",
                    };
                    self.ctx.record("saw_err", &[("id", id), ("error", kind.into())]);
                }
                None => self.ctx.record("saw_cancelled", &[("id", id)]),
            }
        }
    }

    /// Reader probes (R1), and after the heal + `CONVERGE_MS` the store view beside the
    /// replica's (R2, R4).
    async fn probe(self: Arc<Self>, store: SimStore, converge_at_us: u64) {
        while self.pause(Duration::from_millis(PROBE_MS)).await {
            let snap = self.map.snapshot();
            let waiters = self.map.waiters();
            if self.ctx.history.now_us() < converge_at_us {
                self.ctx.record("probe", &[("rev", snap.rev.to_string())]);
                continue;
            }
            let Ok(truth) = store.map_snapshot(MAP).await else {
                self.ctx.record("probe", &[("rev", snap.rev.to_string())]);
                continue;
            };
            // Re-read the replica after the store answered: nothing is written any more.
            let snap = self.map.snapshot();
            self.ctx.record(
                "r2",
                &[
                    ("rev", snap.rev.to_string()),
                    ("digest", format!("{:016x}", digest(snap.entries.iter()))),
                    ("keys", snap.entries.len().to_string()),
                    ("store_rev", truth.rev.to_string()),
                    ("store_digest", format!("{:016x}", digest(truth.entries.iter()))),
                    ("store_keys", truth.entries.len().to_string()),
                    ("waiters", waiters.to_string()),
                ],
            );
        }
    }
}

impl Scenario for RmapScenario {
    fn name(&self) -> &'static str {
        "rmap"
    }

    fn plan_spec(&self) -> PlanSpec {
        PlanSpec {
            nodes: self.nodes,
            kinds: vec![
                FaultKind::StoreCrash,
                FaultKind::StoreDataLoss,
                FaultKind::StoreUnavailable,
                FaultKind::LatencySpike,
                FaultKind::ReplyLoss,
                FaultKind::FeedDisconnect,
                FaultKind::Partition,
                FaultKind::PartitionOneWay,
                FaultKind::NodeCrash,
                FaultKind::NodePause,
                FaultKind::NodeRestart,
            ],
            window_ms: self.window_ms,
            unit_ms: 1000,
            drift_bound: 0.1,
        }
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_millis(500)
    }

    fn settle(&self, _plan: &FaultPlan) -> Duration {
        Duration::from_millis(CONVERGE_MS + 2_000)
    }

    fn node_main(&self) -> NodeMain {
        let this = self.clone();
        Arc::new(move |ctx: NodeCtx| {
            let this = this.clone();
            Box::pin(async move {
                let store = ctx.store().await;
                let probe_store = ctx.store().await;
                let Ok(cfg) = RmapConfig::builder(MAP)
                    .op_timeout(this.op_timeout())
                    .retry(Duration::from_millis(50), Duration::from_millis(500))
                    .build()
                else {
                    ctx.record("sim_error", &[("error", "invalid rmap config".into())]);
                    return;
                };
                let clock: Arc<dyn Clock> = Arc::new(ctx.clock.clone());
                let map = ReplicatedMap::builder(store, cfg).clock(clock).parent(&ctx.shutdown).start();
                let node = Arc::new(Node {
                    ctx: ctx.clone(),
                    map: map.clone(),
                    window_end_us: this.window_ms * 1000,
                    hot_keys: this.hot_keys,
                });
                let converge_at_us = (this.window_ms + CONVERGE_MS) * 1000;
                let tasks = vec![
                    tokio::spawn(node.clone().writer()),
                    tokio::spawn(node.clone().waiter(0)),
                    tokio::spawn(node.clone().waiter(1)),
                    tokio::spawn(node.clone().probe(probe_store, converge_at_us)),
                ];
                ctx.shutdown.cancelled().await;
                map.stop().await;
                for t in tasks {
                    let _ = t.await;
                }
                ctx.record("map_stopped", &[("waiters", map.waiters().to_string())]);
            })
        })
    }

    fn check(&self, plan: &FaultPlan, events: &[Event], heal_us: u64, end_us: u64) -> Vec<Violation> {
        let mut v = Vec::new();
        // Without data loss, a completed set_and_wait's own (unique) key must be in the replica.
        let lossless = !plan.has(|f| matches!(f, Fault::StoreCrash { data_loss: true, .. }));
        let converge_us = heal_us + CONVERGE_MS * 1000;
        // Per node: whether its current incarnation is live, its last probe, pauses, pending calls.
        let mut live: BTreeMap<&str, bool> = BTreeMap::new();
        let mut last_probe: BTreeMap<&str, u64> = BTreeMap::new();
        let mut paused: BTreeSet<&str> = BTreeSet::new();
        let mut pending: BTreeMap<(&str, &str), u64> = BTreeMap::new();
        let mut last_r2: BTreeMap<&str, &Event> = BTreeMap::new();
        for e in events {
            let node = e.node.as_str();
            match e.kind.as_str() {
                "node_start" => {
                    live.insert(node, true);
                    last_probe.remove(node);
                    pending.retain(|(n, _), _| *n != node);
                    last_r2.remove(node);
                }
                "node_crash" | "node_stop" | "map_stopped" => {
                    live.insert(node, false);
                    last_probe.remove(node);
                }
                "node_pause" => {
                    paused.insert(node);
                    last_probe.remove(node);
                }
                "node_resume" => {
                    paused.remove(node);
                }
                "probe" | "r2" => {
                    if let Some(prev) = last_probe.insert(node, e.t_us)
                        && e.t_us - prev > R1_GAP_MS * 1000
                    {
                        v.push(Violation::new(
                            "R1",
                            e.t_us,
                            format!("{node}: readers blocked for {:.3}s", (e.t_us - prev) as f64 / 1e6),
                        ));
                    }
                    if e.kind == "r2" {
                        last_r2.insert(node, e);
                    }
                }
                "saw_start" => {
                    pending.insert((node, e.str("id").unwrap_or("?")), e.t_us);
                }
                "saw_done" => {
                    pending.remove(&(node, e.str("id").unwrap_or("?")));
                    let (rev, seen) = (e.u64("rev").unwrap_or(0), e.u64("replica_rev").unwrap_or(0));
                    let id = e.str("id").unwrap_or("?");
                    if seen < rev {
                        v.push(Violation::new(
                            "R3",
                            e.t_us,
                            format!(
                                "{node}: set_and_wait {id} returned at replica revision {seen} < its write's {rev}"
                            ),
                        ));
                    } else if lossless && e.str("has_key") != Some("true") {
                        v.push(Violation::new(
                            "R3",
                            e.t_us,
                            format!("{node}: set_and_wait {id} returned but the replica lacks its key"),
                        ));
                    }
                }
                "saw_err" | "saw_cancelled" => {
                    pending.remove(&(node, e.str("id").unwrap_or("?")));
                }
                _ => {}
            }
            if e.kind == "map_stopped" && e.u64("waiters") != Some(0) {
                v.push(Violation::new(
                    "R4",
                    e.t_us,
                    format!("{node}: {} waiters left after the map stopped", e.str("waiters").unwrap_or("?")),
                ));
            }
        }
        // R1 at the end: a live node whose probes stopped.
        for (node, t) in &last_probe {
            if live.get(node).copied().unwrap_or(false)
                && !paused.contains(node)
                && end_us.saturating_sub(*t) > R1_GAP_MS * 1000
            {
                v.push(Violation::new("R1", end_us, format!("{node}: readers blocked since {:.3}s", *t as f64 / 1e6)));
            }
        }
        // R3: nothing still waiting long after the heal.
        for ((node, id), start) in &pending {
            if live.get(node).copied().unwrap_or(false)
                && end_us.saturating_sub((*start).max(heal_us)) > CONVERGE_MS * 1000
            {
                v.push(Violation::new(
                    "R3",
                    end_us,
                    format!("{node}: set_and_wait {id} started at {:.3}s never returned", *start as f64 / 1e6),
                ));
            }
        }
        // R2 and R4 on the final probe of every live node.
        for (node, is_live) in &live {
            if !is_live {
                continue;
            }
            let Some(e) = last_r2.get(node).filter(|e| e.t_us >= converge_us) else {
                v.push(Violation::new("R2", end_us, format!("{node}: no replica/store comparison after the heal")));
                continue;
            };
            let same = e.str("digest") == e.str("store_digest") && e.str("rev") == e.str("store_rev");
            if !same {
                v.push(Violation::new(
                    "R2",
                    e.t_us,
                    format!(
                        "{node}: replica (rev {}, {} keys, digest {}) differs from the store (rev {}, {} keys, digest {})",
                        e.str("rev").unwrap_or("?"),
                        e.str("keys").unwrap_or("?"),
                        e.str("digest").unwrap_or("?"),
                        e.str("store_rev").unwrap_or("?"),
                        e.str("store_keys").unwrap_or("?"),
                        e.str("store_digest").unwrap_or("?"),
                    ),
                ));
            }
            if e.u64("waiters") != Some(0) {
                v.push(Violation::new(
                    "R4",
                    e.t_us,
                    format!("{node}: {} waiters registered after quiescence", e.str("waiters").unwrap_or("?")),
                ));
            }
        }
        v
    }

    fn coverage(&self, events: &[Event]) -> Coverage {
        let mut c = Coverage::new();
        for e in events {
            match e.kind.as_str() {
                "resynced" => {
                    // A fresh map's first write is a revision jump from 0: only feed gaps count.
                    if e.str("reason") == Some("gap") {
                        c.insert("resync_after_gap");
                    }
                    if e.u64("rev") < e.u64("old_rev") {
                        c.insert("resync_after_data_loss");
                    }
                }
                "waiter_cancelled" if e.str("armed") == Some("true") => {
                    c.insert("waiter_cancelled_mid_apply");
                }
                "saw_done" => {
                    c.insert("set_and_wait_completed");
                }
                "saw_err" if e.str("error") == Some("data_lost") => {
                    c.insert("set_and_wait_data_lost");
                }
                _ => {}
            }
        }
        c
    }

    fn coverage_goals(&self) -> &'static [&'static str] {
        &["resync_after_gap", "resync_after_data_loss", "waiter_cancelled_mid_apply", "set_and_wait_completed"]
    }

    fn mutants(&self) -> &'static [Mutant] {
        &[Mutant::MP1, Mutant::MP11]
    }
}
