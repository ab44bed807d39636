//! The simulated world: a store server node, N application nodes running the real core, and a
//! nemesis that executes a [`FaultPlan`].

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::MemoryStore;
use keel::shutdown::Shutdown;
use madsim::net::NetSim;
use madsim::runtime::Handle;
use madsim::task::NodeId;

use crate::clock::SimClock;
use crate::history::{History, Who, WorldEv};
use crate::net::{STORE_ADDR, ServerFaults, SimStore, serve};
use crate::plan::{Direction, Fault, FaultPlan, Knobs};

/// What an application node's main function gets, fresh at every (re)start.
#[derive(Clone)]
pub struct NodeCtx {
    /// `n0`, `n1`, …
    pub name: String,
    /// Index of the node.
    pub index: usize,
    /// The node's own clock (skew, drift, jumps).
    pub clock: SimClock,
    /// The run's history.
    pub history: History,
    /// Cancelled when the nemesis stops this node gracefully.
    pub shutdown: Shutdown,
    ip: IpAddr,
    port: Arc<AtomicU16>,
    op_timeout: Duration,
    stall: Arc<AtomicBool>,
    data: MemoryStore,
    knobs: Knobs,
}

impl NodeCtx {
    /// Whether this run's plan asks the workload to size its bounded queues at the smallest
    /// they legally take ([`FaultKind::SmallBuffers`](crate::plan::FaultKind::SmallBuffers), a
    /// knob for the whole run): with the usual sizes no run fills them, and the code that meets
    /// a full queue never runs. Fixed for the run, the same at every start of the node.
    pub fn small_buffers(&self) -> bool {
        self.knobs.small_buffers
    }

    /// Whether this run's plan asks the workload to keep what it retains (a pool's completion
    /// tombstones, a dedup window) for the shortest window it legally takes
    /// ([`FaultKind::ShortRetention`](crate::plan::FaultKind::ShortRetention), a knob for the
    /// whole run): with the usual windows (minutes) nothing expires inside a simulated run, and
    /// the code that sweeps expired state and frees a key for a second life never runs. Fixed
    /// for the run, the same at every start of the node.
    pub fn short_retention(&self) -> bool {
        self.knobs.short_retention
    }

    /// Every run-wide knob of this run's plan at once.
    pub fn knobs(&self) -> Knobs {
        self.knobs
    }

    /// A store client for this node (one per call; each binds its own port).
    pub async fn store(&self) -> SimStore {
        loop {
            let port = self.port.fetch_add(1, Ordering::Relaxed);
            match SimStore::connect(self.who(), self.ip, port, self.op_timeout, self.history.clone()).await {
                Ok(s) => return s,
                Err(e) => self.record(WorldEv::SimError { error: e.to_string() }),
            }
        }
    }

    /// Whether the nemesis asked this node's workload to stall a consumer (`ConsumerStall`)
    /// since the last call: the request is taken, so one stall freezes one consumer. A request
    /// made while no consumer looks waits for the next one (across restarts of the node too).
    pub fn take_consumer_stall(&self) -> bool {
        self.stall.swap(false, Ordering::SeqCst)
    }

    /// The store server's data itself, read in place: no network, no fault, no record for the
    /// linearizability checker. For a scenario's observers (the pool's auditor), never for the
    /// workload, which must go through [`store`](Self::store) and meet the world's faults.
    pub fn store_data(&self) -> &MemoryStore {
        &self.data
    }

    /// This node in the history.
    pub fn who(&self) -> Who {
        Who::node(self.index)
    }

    /// Record an event from this node.
    pub fn record(&self, ev: impl Into<crate::history::Ev>) {
        self.history.record(self.who(), ev);
    }
}

/// Application node `index`'s address.
pub fn node_ip(index: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 1, u8::try_from(index + 1).unwrap_or(255)))
}

/// A node's main function.
pub type NodeMain = Arc<dyn Fn(NodeCtx) -> Pin<Box<dyn Future<Output = ()>>> + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Up,
    Down,
    Paused,
}

struct Slot {
    id: NodeId,
    clock: SimClock,
    shutdown: Arc<Mutex<Shutdown>>,
    status: Mutex<Status>,
    /// A `ConsumerStall` not yet taken by the node's workload.
    stall: Arc<AtomicBool>,
}

/// What a store restart keeps of the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Persisted {
    /// Every write (a clean shutdown, `appendfsync always`).
    All,
    /// No write (no persistence).
    Nothing,
    /// What the last checkpoint held (`appendfsync everysec`, a lagging replica).
    Checkpoint,
}

/// The world of one run.
pub struct World {
    /// The run's history.
    pub history: History,
    /// The store server's data (survives store restarts unless the plan loses it).
    pub store: MemoryStore,
    faults: Arc<ServerFaults>,
    store_id: NodeId,
    store_up: Mutex<bool>,
    /// The store's last persistence point, for a [`Fault::StoreRollback`].
    checkpoint: Mutex<Option<keel::store::StoreState>>,
    slots: Vec<Slot>,
    /// Partitions in force per directed link: overlapping partitions of one node nest, so the
    /// end of an earlier one does not heal a later one that is still in force.
    clogs: Mutex<std::collections::BTreeMap<(NodeId, NodeId), u32>>,
    /// Network slowdowns in force (extra ms each).
    slowdowns: Mutex<Vec<u64>>,
}

/// Kill `nodes` at the end of a run (see [`World::reap`]); the executor drops their tasks in
/// the same turn.
pub fn reap(nodes: impl IntoIterator<Item = NodeId>) {
    let handle = Handle::current();
    for id in nodes {
        handle.kill(id);
    }
}

/// Every simulated message's usual latency, ms (madsim draws each one from this range).
pub const SEND_LATENCY_MS: (u64, u64) = (1, 5);

/// A mutex's guard, poisoned or not (a panic elsewhere must not take the simulation down).
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl World {
    /// Build the world: a store node and `nodes` application nodes running `main`.
    /// `knobs`: the plan's run-wide knobs, handed to every node ([`NodeCtx::small_buffers`],
    /// [`NodeCtx::short_retention`]).
    pub fn build(history: History, nodes: usize, op_timeout: Duration, knobs: Knobs, main: NodeMain) -> Arc<World> {
        let handle = Handle::current();
        let store = MemoryStore::new();
        let faults = Arc::new(ServerFaults::default());
        let (s, f, h) = (store.clone(), faults.clone(), history.clone());
        let store_node = handle
            .create_node()
            .name("store")
            .ip(STORE_ADDR.ip())
            .init(move || serve(s.clone(), f.clone(), h.clone()))
            .build();
        history.name_node(store_node.id(), Who::Store);
        let mut slots = Vec::new();
        for index in 0..nodes {
            let name = format!("n{index}");
            let ip = node_ip(index);
            let clock = SimClock::new(Duration::from_millis(997 * index as u64));
            let shutdown = Arc::new(Mutex::new(Shutdown::new(name.clone())));
            let port = Arc::new(AtomicU16::new(10_000));
            let stall = Arc::new(AtomicBool::new(false));
            let (main, h, c, sd, n) = (main.clone(), history.clone(), clock.clone(), shutdown.clone(), name.clone());
            let (st, data) = (stall.clone(), store.clone());
            let node = handle
                .create_node()
                .name(name.clone())
                .ip(ip)
                .init(move || {
                    let token = Shutdown::new(n.clone());
                    *lock(&sd) = token.clone();
                    h.record(Who::node(index), WorldEv::NodeStart {});
                    let ctx = NodeCtx {
                        name: n.clone(),
                        index,
                        clock: c.clone(),
                        history: h.clone(),
                        shutdown: token,
                        ip,
                        port: port.clone(),
                        op_timeout,
                        stall: st.clone(),
                        data: data.clone(),
                        knobs,
                    };
                    main(ctx)
                })
                .build();
            history.name_node(node.id(), Who::node(index));
            slots.push(Slot { id: node.id(), clock, shutdown, status: Mutex::new(Status::Up), stall });
        }
        Arc::new(World {
            history,
            store,
            faults,
            store_id: store_node.id(),
            store_up: Mutex::new(true),
            checkpoint: Mutex::new(None),
            slots,
            clogs: Mutex::default(),
            slowdowns: Mutex::default(),
        })
    }

    /// End the run's world: kill the store and every application node, so their tasks are
    /// dropped with the runtime. madsim drops only what is queued when a runtime ends: a task
    /// parked on a connection whose other end parks on it (a client's reader and the server's
    /// connection task, each holding the other's sender) is a cycle of wakers that outlives the
    /// runtime. Without this every run leaked its connections and tasks (~0.3 MB a lease seed),
    /// and a sweep's memory, and its page faults, grew with every seed. Call it after the last
    /// event that counts: dropped tasks record nothing, but nothing they would do later counts.
    pub fn reap(&self) {
        reap(std::iter::once(self.store_id).chain(self.slots.iter().map(|n| n.id)));
    }

    /// Number of application nodes.
    pub fn nodes(&self) -> usize {
        self.slots.len()
    }

    fn rec(&self, ev: WorldEv) {
        self.history.record(Who::Nemesis, ev);
    }

    fn rec_node(&self, i: usize, ev: WorldEv) {
        self.history.record(Who::node(i), ev);
    }

    fn node(&self, i: usize) -> Option<&Slot> {
        self.slots.get(i)
    }

    /// Kill the store node; it comes back with `data`: all of it, none, or what it had
    /// persisted at its last checkpoint. Recorded as a data loss unless every write was kept.
    pub(crate) fn kill_store(&self, data: Persisted) {
        Handle::current().kill(self.store_id);
        *lock(&self.store_up) = false;
        self.rec(WorldEv::StoreCrash { data_loss: data != Persisted::All });
        match data {
            Persisted::All => {
                self.store.restart();
                crate::linearize::restarted();
            }
            Persisted::Nothing => self.store.reset(),
            Persisted::Checkpoint => {
                let saved = if keel::mutants::active(keel::mutants::Mutant::MC282) {
                    self.store.checkpoint() // MC282: "rolled back" to the data as it is now
                } else {
                    lock(&self.checkpoint).clone().unwrap_or_default()
                };
                let (kept, lost) = (!saved.holds_nothing(), !self.store.holds_the_data_of(&saved));
                self.rec(WorldEv::RolledBack { kept, lost });
                crate::linearize::rolled_back_to(&saved);
                self.store.restart_from(saved);
                self.faults.rolled_back();
            }
        }
        if data == Persisted::Nothing {
            crate::linearize::reset();
        }
    }

    /// Persist the store's data as it is now: what a [`Persisted::Checkpoint`] crash keeps.
    pub(crate) fn checkpoint_store(&self) {
        *lock(&self.checkpoint) = Some(self.store.checkpoint());
    }

    pub(crate) fn restart_store(&self) {
        let mut up = lock(&self.store_up);
        if !*up {
            Handle::current().restart(self.store_id);
            *up = true;
            self.rec(WorldEv::StoreRestart {});
        }
    }

    fn clog(&self, i: usize, dir: Direction, on: bool) {
        let Some(n) = self.node(i) else { return };
        let links = match dir {
            Direction::Both => vec![(n.id, self.store_id), (self.store_id, n.id)],
            Direction::ToStore => vec![(n.id, self.store_id)],
            Direction::FromStore => vec![(self.store_id, n.id)],
        };
        // MC283: a one-way cut the other way round.
        let links = if dir != Direction::Both && keel::mutants::active(keel::mutants::Mutant::MC283) {
            links.into_iter().map(|(a, b)| (b, a)).collect()
        } else {
            links
        };
        self.clog_links(links, on);
    }

    /// Add (or end) a network slowdown of `extra_ms`: madsim draws every message's latency from
    /// one range, so the largest slowdown in force sets it. Returns the extra now in force.
    fn slow_network(&self, extra_ms: u64, on: bool) -> u64 {
        let mut slow = lock(&self.slowdowns);
        if on {
            slow.push(extra_ms);
        } else if keel::mutants::active(keel::mutants::Mutant::MC395) {
            slow.pop(); // MC395: windows taken to end in the reverse order they began.
        } else if let Some(i) = slow.iter().position(|&e| e == extra_ms) {
            slow.swap_remove(i);
        }
        let extra = slow.iter().copied().max().unwrap_or(0);
        let (lo, hi) = SEND_LATENCY_MS;
        let net = NetSim::current();
        net.update_config(|c| {
            c.send_latency = Duration::from_millis(lo)..Duration::from_millis(hi + extra);
        });
        // What madsim now draws latencies from, read back rather than taken from the list: W4
        // judges it against the windows the plan recorded (`network_latency_ended`).
        let mut drawn_to = Duration::ZERO;
        net.update_config(|c| drawn_to = c.send_latency.end);
        u64::try_from(drawn_to.as_millis()).unwrap_or(u64::MAX).saturating_sub(hi)
    }

    /// Cut (or restore) both directions between application nodes `a` and `b`.
    fn clog_between(&self, a: usize, b: usize, on: bool) {
        let (Some(x), Some(y)) = (self.node(a), self.node(b)) else { return };
        if a != b {
            self.clog_links(vec![(x.id, y.id), (y.id, x.id)], on);
        }
    }

    /// Clog or unclog links, counting per link so that overlapping partitions nest.
    fn clog_links(&self, links: Vec<(NodeId, NodeId)>, on: bool) {
        let net = NetSim::current();
        let mut clogs = lock(&self.clogs);
        for link in links {
            let n = clogs.entry(link).or_insert(0);
            match (on, *n) {
                (true, 0) => net.clog_link(link.0, link.1),
                (false, 1) => net.unclog_link(link.0, link.1),
                _ => {}
            }
            *n = if on { *n + 1 } else { n.saturating_sub(1) };
        }
    }

    /// Lift every partition at once (the heal).
    fn unclog_all(&self) {
        let net = NetSim::current();
        for ((a, b), n) in std::mem::take(&mut *lock(&self.clogs)) {
            if n > 0 {
                net.unclog_link(a, b);
            }
        }
    }

    fn kill_node(&self, i: usize) {
        let Some(n) = self.node(i) else { return };
        let mut st = lock(&n.status);
        if *st == Status::Paused {
            Handle::current().resume(n.id);
        }
        Handle::current().kill(n.id);
        *st = Status::Down;
        self.rec_node(i, WorldEv::NodeCrash {});
    }

    fn restart_node(&self, i: usize) {
        let Some(n) = self.node(i) else { return };
        let mut st = lock(&n.status);
        if *st == Status::Down {
            Handle::current().restart(n.id);
            *st = Status::Up;
        }
    }

    fn pause_node(&self, i: usize, on: bool) {
        let Some(n) = self.node(i) else { return };
        let mut st = lock(&n.status);
        match (on, *st) {
            (true, Status::Up) => {
                if !keel::mutants::active(keel::mutants::Mutant::MC278) {
                    Handle::current().pause(n.id); // MC278: the pause recorded, the node not frozen
                }
                *st = Status::Paused;
                crate::net::node_paused(Who::node(i));
                self.rec_node(i, WorldEv::NodePause {});
            }
            (false, Status::Paused) => {
                Handle::current().resume(n.id);
                *st = Status::Up;
                self.rec_node(i, WorldEv::NodeResume {});
            }
            _ => {}
        }
    }

    /// Apply one fault now; its end (if any) is scheduled on a task returned to the caller.
    fn inject(self: &Arc<Self>, fault: &Fault) -> Option<tokio::task::JoinHandle<()>> {
        let after = |ms: u64, w: Arc<World>, f: Box<dyn FnOnce(&World) + Send>| {
            Some(tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                f(&w);
            }))
        };
        let w = self.clone();
        match fault.clone() {
            Fault::StoreCrash { down_ms, data_loss } => {
                if !*lock(&self.store_up) {
                    return None;
                }
                self.kill_store(if data_loss { Persisted::Nothing } else { Persisted::All });
                after(down_ms, w, Box::new(|w| w.restart_store()))
            }
            Fault::StoreRollback { down_ms } => {
                if !*lock(&self.store_up) {
                    return None;
                }
                self.kill_store(Persisted::Checkpoint);
                after(down_ms, w, Box::new(|w| w.restart_store()))
            }
            Fault::StoreUnavailable { ms } => {
                // MC286: the refusal window recorded, the store never told to refuse.
                if !keel::mutants::active(keel::mutants::Mutant::MC286) {
                    self.faults.refuse.store(true, Ordering::SeqCst);
                }
                let before = self.faults.refused.load(Ordering::SeqCst);
                self.rec(WorldEv::StoreRefusing { ms });
                after(
                    ms,
                    w,
                    Box::new(move |w| {
                        // MC391: the window's end leaving the store refusing (until the heal).
                        if !keel::mutants::active(keel::mutants::Mutant::MC391) {
                            w.faults.refuse.store(false, Ordering::SeqCst);
                        }
                        let refused = w.faults.refused.load(Ordering::SeqCst) - before;
                        w.rec(WorldEv::StoreAnswering { refused });
                    }),
                )
            }
            Fault::LatencySpike { ms, extra_ms } => {
                self.faults.extra_latency_ms.store(extra_ms, Ordering::SeqCst);
                let before = self.faults.spiked.load(Ordering::SeqCst);
                self.rec(WorldEv::LatencySpike { ms, extra_ms });
                after(
                    ms,
                    w,
                    Box::new(move |w| {
                        // MC392: the spike's end leaving its latency on (until the heal).
                        if !keel::mutants::active(keel::mutants::Mutant::MC392) {
                            w.faults.extra_latency_ms.store(0, Ordering::SeqCst);
                        }
                        let slowed = w.faults.spiked.load(Ordering::SeqCst) - before;
                        w.rec(WorldEv::LatencySpikeEnded { slowed });
                    }),
                )
            }
            Fault::ReplyLoss { ms, pct } => {
                self.faults.reply_loss_pct.store(pct, Ordering::SeqCst);
                self.rec(WorldEv::ReplyLoss { ms, pct });
                after(ms, w, Box::new(|w| w.faults.reply_loss_pct.store(0, Ordering::SeqCst)))
            }
            Fault::ReplyDelay { ms, delay_ms } => {
                self.faults.reply_delay_ms.store(delay_ms, Ordering::SeqCst);
                self.rec(WorldEv::ReplyDelay { ms, delay_ms });
                // MC390: the delay's end turning off the loss switch (a copy-paste slip).
                let switch = if keel::mutants::active(keel::mutants::Mutant::MC390) {
                    |w: &World| w.faults.reply_loss_pct.store(0, Ordering::SeqCst)
                } else {
                    |w: &World| w.faults.reply_delay_ms.store(0, Ordering::SeqCst)
                };
                after(ms, w, Box::new(switch))
            }
            Fault::NodeLatency { node, ms, to_ms, from_ms } => {
                let who = Who::node(node);
                self.faults.node_latency.lock().unwrap_or_else(|p| p.into_inner()).insert(who, (to_ms, from_ms));
                self.rec(WorldEv::NodeLatency { node: who, ms, to_ms, from_ms });
                after(
                    ms,
                    w,
                    Box::new(move |w| {
                        // MC393: the window's end leaving the node's latency on (until the heal).
                        if !keel::mutants::active(keel::mutants::Mutant::MC393) {
                            w.faults.node_latency.lock().unwrap_or_else(|p| p.into_inner()).remove(&who);
                        }
                    }),
                )
            }
            Fault::AccessDenied { node, ms } => {
                let who = Who::node(node);
                *lock(&self.faults.denied).entry(who).or_insert(0) += 1;
                self.rec(WorldEv::AccessDenied { node: who, ms });
                after(
                    ms,
                    w,
                    Box::new(move |w| {
                        let mut denied = lock(&w.faults.denied);
                        let ended = match denied.get_mut(&who) {
                            // MC394: the last window's end restoring access in the record only.
                            Some(1) if keel::mutants::active(keel::mutants::Mutant::MC394) => true,
                            Some(1) => denied.remove(&who).is_some(),
                            Some(n) => {
                                *n -= 1;
                                false
                            }
                            None => false, // healed meanwhile
                        };
                        drop(denied);
                        if ended {
                            w.rec(WorldEv::AccessRestored { node: who });
                        }
                    }),
                )
            }
            Fault::FeedDisconnect => {
                self.faults.kill_connections();
                self.rec(WorldEv::FeedDisconnect {});
                None
            }
            Fault::Partition { node, dir, ms } => {
                self.clog(node, dir, true);
                let began_us = self.history.now_us();
                self.rec(WorldEv::Partition { node: Who::node(node), dir: format!("{dir:?}"), ms });
                after(
                    ms,
                    w,
                    Box::new(move |w| {
                        w.clog(node, dir, false);
                        let served = w.faults.served_since(Who::node(node), began_us);
                        w.rec(WorldEv::PartitionHealed { node: Who::node(node), served });
                    }),
                )
            }
            Fault::NodePartition { a, b, ms } => {
                self.clog_between(a, b, true);
                self.rec(WorldEv::NodePartition { a: Who::node(a), b: Who::node(b), ms });
                after(
                    ms,
                    w,
                    Box::new(move |w| {
                        w.clog_between(a, b, false);
                        w.rec(WorldEv::NodePartitionHealed { a: Who::node(a), b: Who::node(b) });
                    }),
                )
            }
            Fault::NetworkLatency { ms, extra_ms } => {
                self.slow_network(extra_ms, true);
                self.rec(WorldEv::NetworkLatency { ms, extra_ms });
                after(
                    ms,
                    w,
                    Box::new(move |w| {
                        let now = w.slow_network(extra_ms, false);
                        w.rec(WorldEv::NetworkLatencyEnded { extra_ms: now });
                    }),
                )
            }
            Fault::ConsumerStall { node } => {
                let n = self.node(node)?;
                n.stall.store(true, Ordering::SeqCst);
                self.rec_node(node, WorldEv::ConsumerStall {});
                None
            }
            Fault::NodeCrash { node, down_ms } => {
                self.kill_node(node);
                after(down_ms, w, Box::new(move |w| w.restart_node(node)))
            }
            Fault::NodePause { node, ms } => {
                self.pause_node(node, true);
                after(ms, w, Box::new(move |w| w.pause_node(node, false)))
            }
            Fault::NodeRestart { node, down_ms } => {
                let n = self.node(node)?;
                if *lock(&n.status) != Status::Up {
                    return None;
                }
                let token = lock(&n.shutdown).clone();
                self.rec_node(node, WorldEv::NodeStop {});
                token.cancel();
                // The node's main returns after a graceful stop; then it is restarted.
                after(
                    down_ms.max(1),
                    w,
                    Box::new(move |w| {
                        w.kill_node(node);
                        w.restart_node(node);
                    }),
                )
            }
            Fault::ClockRate { node, rate, beyond } => {
                let n = self.node(node)?;
                n.clock.set_rate(rate);
                let rate_ppm = (rate * 1e6).round() as i64;
                self.rec_node(node, WorldEv::ClockRate { rate_ppm, beyond });
                None
            }
            Fault::ClockJump { node, delta_ms } => {
                let n = self.node(node)?;
                let (moved_ms, sleepers, rate_ppm) = n.clock.jump(delta_ms);
                self.rec_node(node, WorldEv::ClockJump { delta_ms });
                self.rec_node(node, WorldEv::ClockJumped { moved_ms, sleepers, rate_ppm });
                None
            }
        }
    }

    /// End every fault: store up and answering, links unclogged, nodes resumed or restarted,
    /// clocks back to rate 1.
    pub fn heal(&self) {
        self.faults.heal();
        self.restart_store();
        self.unclog_all();
        if !lock(&self.slowdowns).is_empty() {
            lock(&self.slowdowns).clear();
            self.slow_network(0, false);
        }
        for i in 0..self.slots.len() {
            self.pause_node(i, false);
            self.restart_node(i);
            if let Some(on_time) = self.slots[i].clock.set_rate(1.0) {
                self.rec_node(i, WorldEv::ClockDriftEnded { on_time });
            }
            self.slots[i].stall.store(false, Ordering::SeqCst); // a stall not yet taken ends here
        }
        self.rec(WorldEv::Heal {});
    }

    /// Run the plan's schedule, then heal. Returns when healed.
    pub async fn nemesis(self: &Arc<Self>, plan: &FaultPlan) {
        let start = tokio::time::Instant::now();
        let mut pending = Vec::new();
        if plan.has(|f| matches!(f, Fault::StoreRollback { .. })) {
            // The store persists every `FSYNC_MS` while it is up (a plan without roll-backs
            // arms no such timer, so its schedule is what it always was).
            let w = self.clone();
            pending.push(tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(crate::plan::FSYNC_MS)).await;
                    if *lock(&w.store_up) {
                        w.checkpoint_store();
                    }
                }
            }));
        }
        for ev in &plan.events {
            tokio::time::sleep_until(start + Duration::from_millis(ev.at_ms)).await;
            if let Some(t) = self.inject(&ev.fault) {
                pending.push(t);
            }
            pending.retain(|t| !t.is_finished());
        }
        tokio::time::sleep_until(start + Duration::from_millis(plan.heal_at_ms)).await;
        for t in pending {
            t.abort();
        }
        self.heal();
    }

    /// Stop every live node gracefully (for end-of-run checks of clean shutdown).
    pub fn stop_all(&self) {
        for (i, n) in self.slots.iter().enumerate() {
            if *lock(&n.status) == Status::Up {
                self.rec_node(i, WorldEv::NodeStop {});
                lock(&n.shutdown).cancel();
            }
        }
    }
}
