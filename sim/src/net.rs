//! The store over madsim's simulated network.
//!
//! The store server node runs a [`MemoryStore`] behind madsim's reliable, ordered connections
//! (TCP-like: a partition delays packets, it does not drop them, so a request can be applied long
//! after its caller gave up — exactly the unknown outcome Redis clients face). Application nodes
//! use a [`SimStore`] client that implements keel's `Store` seam, so the real core runs unchanged.
//! The nemesis flips [`ServerFaults`] to refuse requests, add latency, drop replies after
//! applying, or kill every connection (feed disconnects).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use futures::{FutureExt, Stream};
use keel::lease::Token;
use keel::mutants::{self, Mutant};
use keel::store::{
    Acquire, Expect, MapScan, MapSnapshot, MapTxn, MapWrite, Read, ReadOut, Renew, Store, StoreResult, TxnOutcome,
    Watch, WatchEvent, WriteOutcome,
};
use keel::watch;
use keel::{MemoryStore, StoreError};
use madsim::net::Endpoint;
use madsim::rand::Rng;
use tokio::sync::mpsc;

use crate::clock::GlobalTime;
use crate::history::{History, ServerEv, Who, WorldEv};
use crate::linearize::{self, Lent, StoreOp, StoreRet};
use crate::scenario::pool_owners::{self, RemovalJudge};
use crate::scenario::{pool_cleanup, pool_deregister, pool_keepalive, pool_pairs};
use crate::world::lock;

mod feeds;
mod scans;
mod writes;

/// The store server's address.
pub const STORE_ADDR: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 6379);

thread_local! {
    /// Store calls made on this thread (a measure for `bench --baseline`; nothing reads it
    /// inside a run, so it cannot reach behaviour).
    static CALLS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// Each application node's pauses so far on this thread (madsim runs a whole simulation on
    /// one thread; only a change of the count is read, so earlier runs' counts do no harm).
    static PAUSES: std::cell::RefCell<BTreeMap<Who, u64>> = const { std::cell::RefCell::new(BTreeMap::new()) };
}

/// Node `node` was paused (the world's `NodePause`): its connections open now span a pause.
pub fn node_paused(node: Who) {
    PAUSES.with(|p| *p.borrow_mut().entry(node).or_insert(0) += 1);
}

fn pauses(node: Who) -> u64 {
    PAUSES.with(|p| p.borrow().get(&node).copied().unwrap_or(0))
}

/// Store calls the clients on this thread have made so far (each a request and, unless it was
/// lost, a reply), for comparing a run's traffic with a bare program's.
pub fn calls_made() -> u64 {
    CALLS.with(std::cell::Cell::get)
}

/// How often an idle watch probes its connection (a dead one is then replaced and a gap reported).
const FEED_PING: Duration = Duration::from_millis(500);
/// Pause between resubscription attempts while the store is unreachable.
const RESUBSCRIBE_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug)]
enum Op {
    Hello { node: Who },
    Time,
    Acquire { name: String, token: String, ttl_ms: u64, quarantine_ms: u64 },
    Renew { name: String, token: String, ttl_ms: u64 },
    Release { name: String, token: String },
    DeleteUnchecked { name: String },
    Get { map: String, key: String },
    Snapshot { map: String },
    Scan { map: String, cursor: String, count: usize },
    Write { map: String, key: String, write: MapWrite },
    Txn { map: String, guards: Vec<(String, Expect)>, writes: Vec<(String, Option<String>)> },
    Txns { map: String, txns: Vec<MapTxn> },
    Reads { reads: Vec<Read> },
    Watch { map: String, sub: u64 },
}

impl Op {
    fn name(&self) -> &'static str {
        match self {
            Op::Hello { .. } => "hello",
            Op::Time => "time",
            Op::Acquire { .. } => "lease_acquire",
            Op::Renew { .. } => "lease_renew",
            Op::Release { .. } => "lease_release",
            Op::DeleteUnchecked { .. } => "lease_delete_unchecked",
            Op::Get { .. } => "map_get",
            Op::Snapshot { .. } => "map_snapshot",
            Op::Scan { .. } => "map_scan",
            Op::Write { .. } => "map_write",
            Op::Txn { .. } => "map_txn",
            Op::Txns { .. } => "map_txns",
            Op::Reads { .. } => "reads",
            Op::Watch { .. } => "watch",
        }
    }
}

impl Op {
    /// The operation as linearizability records (map operations only): a batch of transactions is
    /// one record per transaction, all sharing the batch's invoke and return.
    fn recorded(&self) -> Vec<StoreOp> {
        vec![match self {
            Op::Get { map, key } => StoreOp::Get { map: map.clone(), key: key.clone() },
            Op::Snapshot { map } => StoreOp::Snapshot { map: map.clone() },
            Op::Write { map, key, write } => {
                StoreOp::Write { map: map.clone(), key: key.clone(), write: write.clone() }
            }
            Op::Txn { map, guards, writes } => {
                StoreOp::Txn { map: map.clone(), guards: guards.clone(), writes: writes.clone() }
            }
            Op::Txns { map, txns } => {
                return txns
                    .iter()
                    .map(|t| StoreOp::Txn { map: map.clone(), guards: t.guards.clone(), writes: t.writes.clone() })
                    .collect();
            }
            // Its gets and snapshots, each one record sharing the batch's invoke and return (a
            // batch is applied in one step, so each read is linearizable within that window).
            Op::Reads { reads } => {
                return reads
                    .iter()
                    .filter_map(|r| match r {
                        Read::Get { map, key } => Some(StoreOp::Get { map: map.clone(), key: key.clone() }),
                        Read::Snapshot { map } => Some(StoreOp::Snapshot { map: map.clone() }),
                        Read::Time | Read::Scan { .. } => None, // not map records (see `Scan` below)
                    })
                    .collect();
            }
            // Not recorded. Each slice is atomic (every entry held its value at the slice's
            // revision, as one `Get` per key would), but which keys it covers is known only from
            // its reply, while an operation must be recorded when invoked; and a pass of slices
            // is no linearizable read at all (HSCAN's contract: keys present throughout come at
            // least once). A read changes nothing, so leaving it out hides no write from the check;
            // what a sweep does with a slice is judged by the scenario's own invariants.
            Op::Scan { .. } => return Vec::new(),
            _ => return Vec::new(),
        }]
    }
}

#[derive(Debug)]
enum Resp {
    Unit,
    Time(u64),
    Acquire(Acquire),
    Renew(Renew),
    Release(bool),
    Get(Option<String>, u64),
    Snapshot(MapSnapshot),
    Scan(MapScan),
    Write(WriteOutcome),
    Txn(TxnOutcome),
    Txns(Vec<TxnOutcome>),
    Reads(Vec<ReadOut>),
}

impl Resp {
    /// The outcomes of [`Op::recorded`]'s records, in the same order.
    fn recorded(&self) -> Vec<StoreRet> {
        vec![match self {
            Resp::Get(v, rev) => StoreRet::Get(v.clone(), *rev),
            Resp::Snapshot(s) => StoreRet::Snapshot(s.clone()),
            Resp::Write(w) => StoreRet::Write(w.clone()),
            Resp::Txn(t) => StoreRet::Txn(t.clone()),
            Resp::Txns(ts) => return ts.iter().map(|t| StoreRet::Txn(t.clone())).collect(),
            _ => return Vec::new(),
        }]
    }
}

struct Req {
    id: u64,
    op: Op,
    /// When the client sent it (the history's clock): how the store node tells a write sent in
    /// time from one that left late, when the network held it (P52).
    sent_us: u64,
}

enum Down {
    Reply { id: u64, result: StoreResult<Resp> },
    Feed { sub: u64, ev: WatchEvent },
}

/// Fault switches of the store server, flipped by the nemesis.
pub struct ServerFaults {
    /// Refuse every request (`LOADING`): not applied.
    pub refuse: AtomicBool,
    /// Extra latency before each request is applied.
    pub extra_latency_ms: AtomicU64,
    /// Requests refused while `refuse` was on, and requests held by `extra_latency_ms`, so far:
    /// what a refusal window and a latency spike did (`effects`).
    pub refused: AtomicU64,
    pub spiked: AtomicU64,
    /// Percentage of replies dropped after the request was applied.
    pub reply_loss_pct: AtomicU32,
    kill_conns: watch::Sender<u64>,
    /// Delay of every reply after its request was applied (ms).
    pub reply_delay_ms: AtomicU64,
    /// Per node: extra delay of its requests before they are applied, and of its replies (ms).
    pub node_latency: Mutex<BTreeMap<Who, (u64, u64)>>,
    /// Nodes whose requests are refused with [`DENIAL`] (a permanent error), with how many
    /// denials are in force on each (they nest, as partitions do).
    pub denied: Mutex<BTreeMap<Who, u32>>,
    /// Highest fence each lease key has had (the server's own judgment; survives restarts and
    /// data loss, not a roll-back: see [`ServerFaults::rolled_back`]).
    max_fence: Mutex<BTreeMap<String, u64>>,
    /// The node that wrote each pool cleanup lock's current value, (map, worker) → writer (the
    /// server's own memory for P15; forgotten at every boot, since a restart may roll values
    /// back).
    lock_writers: Mutex<BTreeMap<(String, String), Who>>,
    /// The job records naming each fenced pool worker at its fence (P18; forgotten at every
    /// boot, as `lock_writers`).
    fences: pool_cleanup::Fences,
    /// Each keep-alive's last applied compare-and-set, its writer and what it replaced (P35;
    /// forgotten at every boot, as `lock_writers`).
    beats: pool_keepalive::Beats,
    /// Every worker whose keep-alive the store applied (P49).
    kept_alive: pool_pairs::KeptAlive,
    /// Each map's revision at the store's last boot (L3: a snapshot at that revision says the
    /// store restarted since the map's last commit, and only such a snapshot says so).
    boot_revs: Mutex<BTreeMap<String, u64>>,
    /// The open feeds and each map's last commit (L4; forgotten at every boot).
    feeds: Arc<feeds::Feeds>,
    /// Per node, the latest send time (µs) of a request of it the store served: whether a cut
    /// let requests through (`effects`).
    served: Mutex<BTreeMap<Who, u64>>,
    /// Each lease's quarantine as the store node reckons it (S34; kept across boots).
    quarantines: Mutex<BTreeMap<String, Quarantine>>,
}

/// S34: the quarantine a lease is owed, reckoned by the store node apart from the store's state
/// machine. The store quarantines a lease at its first acquisition after each boot of the store
/// process (a missing counter, or one judged under an earlier boot), until `quarantine_ms`
/// after it or the end of a quarantine already running, whichever is later; no other call
/// starts or extends one.
#[derive(Default)]
struct Quarantine {
    /// The end (store ms) of the quarantine the lease's first acquisition since the store's
    /// last boot began; `None` until that acquisition. The store refuses grants until then at
    /// least, whatever it kept or lost.
    this_boot: Option<u64>,
    /// The latest end of any quarantine begun (store ms): the store refuses none after it.
    until: u64,
}

impl Default for ServerFaults {
    fn default() -> Self {
        ServerFaults {
            refuse: AtomicBool::new(false),
            extra_latency_ms: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            spiked: AtomicU64::new(0),
            reply_loss_pct: AtomicU32::new(0),
            kill_conns: watch::channel(0).0,
            reply_delay_ms: AtomicU64::new(0),
            node_latency: Mutex::new(BTreeMap::new()),
            denied: Mutex::new(BTreeMap::new()),
            max_fence: Mutex::new(BTreeMap::new()),
            lock_writers: Mutex::new(BTreeMap::new()),
            fences: pool_cleanup::Fences::default(),
            beats: pool_keepalive::Beats::default(),
            kept_alive: pool_pairs::KeptAlive::default(),
            boot_revs: Mutex::new(BTreeMap::new()),
            feeds: Arc::default(),
            served: Mutex::new(BTreeMap::new()),
            quarantines: Mutex::new(BTreeMap::new()),
        }
    }
}

impl ServerFaults {
    /// Drop every client connection (their watches see a gap).
    pub fn kill_connections(&self) {
        self.kill_conns.send_modify(|g| *g += 1);
    }

    /// The store restarted from a checkpoint: it may hold again an older grant that a later one
    /// had replaced (a release, then a new grant, both lost), so the fence the store holds may
    /// go down. What may not go down is the fence of a new grant, above every grant ever made:
    /// the lease scenario's S1 judges that on the store's `grant` events.
    pub fn rolled_back(&self) {
        self.max_fence.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// The store serves a request `node` sent at `sent_us`.
    fn note_served(&self, node: Who, sent_us: u64) {
        let mut served = lock(&self.served);
        let latest = served.entry(node).or_insert(0);
        *latest = (*latest).max(sent_us);
    }

    /// The quarantine of `name` owed at store time `now_ms` to an acquisition asking for
    /// `quarantine_ms`, as `(from, until)`: the store refuses grants before `from`, and refuses
    /// none at or after `until` (S34).
    fn quarantine_owed(&self, name: &str, quarantine_ms: u64, now_ms: u64) -> (u64, u64) {
        let mut qs = lock(&self.quarantines);
        let q = qs.entry(name.to_owned()).or_default();
        let from = *q.this_boot.get_or_insert_with(|| {
            q.until = q.until.max(now_ms + quarantine_ms);
            now_ms + quarantine_ms
        });
        (from, q.until)
    }

    /// Whether the store served a request `node` sent at or after `since_us`.
    pub fn served_since(&self, node: Who, since_us: u64) -> bool {
        lock(&self.served).get(&node).is_some_and(|&sent| sent >= since_us)
    }

    /// Clear every switch.
    pub fn heal(&self) {
        self.refuse.store(false, Ordering::SeqCst);
        self.extra_latency_ms.store(0, Ordering::SeqCst);
        self.reply_loss_pct.store(0, Ordering::SeqCst);
        self.reply_delay_ms.store(0, Ordering::SeqCst);
        self.node_latency.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.denied.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}

/// What the store answers a denied node (`FaultKind::AccessDenied`): Redis's reply to a command
/// the connection's ACL user may not run. A permanent error by keel's contract
/// (`StoreError::is_transient` is false), and by the checks' (`keel_checks::is_permanent`).
pub const DENIAL: &str = "NOPERM User keel has no permissions to run the 'evalsha' command (simulated ACL change)";

/// Run the store server on the current node until it is killed.
pub async fn serve(store: MemoryStore, faults: Arc<ServerFaults>, history: History) {
    let ep = match Endpoint::bind(STORE_ADDR).await {
        Ok(ep) => ep,
        Err(e) => {
            history.record(Who::Store, WorldEv::SimError { error: e.to_string() });
            return;
        }
    };
    faults.lock_writers.lock().unwrap_or_else(|p| p.into_inner()).clear();
    faults.fences.clear();
    faults.beats.clear();
    *faults.boot_revs.lock().unwrap_or_else(|p| p.into_inner()) = store.map_revs();
    faults.feeds.clear();
    lock(&faults.quarantines).values_mut().for_each(|q| q.this_boot = None);
    match store.time_ms().await {
        Ok(now_ms) => history.record(Who::Store, ServerEv::StoreUp { now_ms }),
        Err(e) => history.record(Who::Store, WorldEv::SimError { error: format!("store clock: {e}") }),
    }
    while let Ok((tx, rx, _addr)) = ep.accept1().await {
        tokio::spawn(connection(store.clone(), faults.clone(), history.clone(), tx, rx));
    }
}

/// What the requests of one connection share (one allocation per connection, not per request).
struct Served {
    store: MemoryStore,
    faults: Arc<ServerFaults>,
    history: History,
    tx: madsim::net::Sender,
    /// Whose connection it is, once its `Hello` said.
    client: Mutex<Who>,
    /// The kill signal as the connection saw it when it began: a feed forwarder ends with its
    /// connection, as a Redis subscriber's pushes end with its socket.
    kill: watch::Receiver<u64>,
}

async fn connection(
    store: MemoryStore,
    faults: Arc<ServerFaults>,
    history: History,
    tx: madsim::net::Sender,
    mut rx: madsim::net::Receiver,
) {
    let mut kill = faults.kill_conns.subscribe();
    let served = Arc::new(Served { store, faults, history, tx, client: Mutex::new(Who::World), kill: kill.clone() });
    let mut tasks = Vec::new();
    loop {
        tokio::select! {
            biased; // tokio's unbiased order is seeded per process, not per run: keep replays exact
            _ = kill.changed() => break,
            msg = rx.recv() => {
                let Ok(msg) = msg else { break };
                let Ok(req) = msg.downcast::<Req>() else { continue };
                // Applied here when it completes at once (no latency or reply-delay fault in
                // force, no store op that waits): in arrival order, as a Redis connection
                // serves its commands, and without a task per request. A request that waits
                // gets its own task, so the connection goes on reading (and can be killed).
                let mut req = Box::pin(handle(served.clone(), *req));
                if (&mut req).now_or_never().is_none() {
                    tasks.push(tokio::spawn(req));
                    tasks.retain(|t: &tokio::task::JoinHandle<()>| !t.is_finished());
                }
            }
        }
    }
    for t in tasks {
        t.abort(); // in-flight handlers die with the connection (its forwarders watch `kill`)
    }
}

async fn handle(served: Arc<Served>, req: Req) {
    let Served { faults, history, tx, client, .. } = &*served;
    let node = *client.lock().unwrap_or_else(|p| p.into_inner());
    let (to_ms, from_ms) =
        faults.node_latency.lock().unwrap_or_else(|p| p.into_inner()).get(&node).copied().unwrap_or((0, 0));
    // The faults in force as the request is applied, not as it arrived (the pre-apply sleep may
    // outlive a fault's window), but for the two mutants that move a reply's fault before it.
    let delay_now = || faults.reply_delay_ms.load(Ordering::SeqCst);
    let lose = || {
        let loss = faults.reply_loss_pct.load(Ordering::SeqCst);
        loss > 0 && madsim::rand::thread_rng().gen_range(0..100) < loss
    };
    // MC281: the reply delay held before the request applies, not after.
    let held_early = if mutants::active(Mutant::MC281) { delay_now() } else { 0 };
    // MC287: a latency spike recorded, no request held by it.
    let extra = if mutants::active(Mutant::MC287) { 0 } else { faults.extra_latency_ms.load(Ordering::SeqCst) };
    if extra > 0 {
        faults.spiked.fetch_add(1, Ordering::SeqCst);
    }
    if extra > 0 || to_ms > 0 || from_ms > 0 {
        history.record(Who::Store, ServerEv::Slowed { to: node, extra_ms: extra, to_ms, from_ms });
    }
    let latency = extra + to_ms + held_early;
    let arrived_us = history.now_us();
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    // W3: the node's latency fault held its request for what the store records it owed.
    hold_judged(history, node, "request", arrived_us, to_ms);
    if mutants::active(Mutant::MC280) && lose() {
        // MC280: the loss drawn before the request applies, which drops it unapplied.
        history.record(Who::Store, ServerEv::ReplyDropped { to: node, applied: false });
        return;
    }
    let hello = matches!(req.op, Op::Hello { .. });
    let denied = || !hello && lock(&faults.denied).contains_key(&node);
    // A `Hello` names the connection's node even while the store is starting: Redis serves
    // `HELLO` and `AUTH` while it loads. Refused, it left the connection nameless for good
    // (`by=world` on every store event it caused, and the fault rules blind to its node).
    let result = if !hello && faults.refuse.load(Ordering::SeqCst) {
        faults.refused.fetch_add(1, Ordering::SeqCst);
        history.record(Who::Store, ServerEv::FaultRefused { to: node, denied: false });
        Err(StoreError::Refused { reason: "LOADING store is starting".into() })
    } else if denied() {
        history.record(Who::Store, ServerEv::FaultRefused { to: node, denied: true });
        Err(StoreError::Refused { reason: DENIAL.into() })
    } else {
        faults.note_served(node, req.sent_us);
        apply(&served, node, req.op, req.sent_us).await
    };
    let applied = !hello && result.is_ok();
    if !mutants::active(Mutant::MC280) && lose() {
        history.record(Who::Store, ServerEv::ReplyDropped { to: node, applied });
        return;
    }
    // Served; the reply is held back (the caller still waits within its timeout).
    let delay_ms = if mutants::active(Mutant::MC281) { 0 } else { delay_now() };
    if to_ms > 0 || from_ms > 0 || delay_ms > 0 {
        let ev = ServerEv::Held { to: node, before_ms: to_ms, after_ms: from_ms, delay_ms, applied };
        history.record(Who::Store, ev);
    }
    // MC356: the node's reply latency recorded (`held`'s `after_ms`), the reply not held by it.
    let from = if mutants::active(Mutant::MC356) { 0 } else { from_ms };
    let delay = delay_ms + from;
    let served_us = history.now_us();
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    hold_judged(history, node, "reply", served_us, delay_ms + from_ms);
    let _ = tx.send(Box::new(Down::Reply { id: req.id, result })).await;
}

/// W3: a request or reply the store's faults hold (`owed_ms`, as its `held` event records them:
/// a node's latency each way, the reply delay) was held at least that long since `since_us`: a
/// fault recorded and not served (MC356) leaves every rule that excuses or expects its delay
/// judging a run that never had it.
fn hold_judged(history: &History, node: Who, side: &str, since_us: u64, owed_ms: u64) {
    let held_us = history.now_us().saturating_sub(since_us);
    if held_us < owed_ms * 1000 {
        history.record(Who::Store, ServerEv::HoldShort { to: node, side: side.into(), held_us, owed_ms });
    }
}

async fn apply(served: &Arc<Served>, node: Who, op: Op, sent_us: u64) -> StoreResult<Resp> {
    let Served { store, history, faults, client, .. } = &**served;
    // L4: a write's map, to judge its feeds once it applied.
    let written = match &op {
        Op::Write { map, .. } | Op::Txn { map, .. } | Op::Txns { map, .. } => Some(map.clone()),
        _ => None,
    };
    let resp = match op {
        Op::Hello { node } => {
            *client.lock().unwrap_or_else(|p| p.into_inner()) = node;
            Resp::Unit
        }
        Op::Time => Resp::Time(store.time_ms().await?),
        Op::Acquire { name, token, ttl_ms, quarantine_ms } => {
            // S34: the quarantine owed, reckoned at the call's own store instant (once the store
            // took the call: one it refused as invalid began nothing).
            let now_ms = store.time_ms().await?;
            let r = store.lease_acquire(&name, &token, ttl_ms, quarantine_ms).await?;
            let (from_ms, until_ms) = faults.quarantine_owed(&name, quarantine_ms, now_ms);
            let wrong = match &r {
                Acquire::Granted { .. } => (now_ms < from_ms).then_some((false, 0)),
                Acquire::Quarantined { remaining_ms } => {
                    let end = now_ms + remaining_ms;
                    (end <= now_ms || end < from_ms || end > until_ms).then_some((true, *remaining_ms))
                }
                Acquire::Held { .. } => None,
            };
            if let Some((refused, remaining_ms)) = wrong {
                let lease = name.clone();
                let ev =
                    ServerEv::QuarantineWrong { lease, refused, remaining_ms, now_ms, from_ms, until_ms, by: node };
                history.record(Who::Store, ev);
            }
            match &r {
                Acquire::Granted { fence } => {
                    judge_fence(history, faults, &name, Some(*fence));
                    let valid_ms = held_validity(store, &name).await?;
                    let ev = ServerEv::Grant { lease: name, token, fence: *fence, ttl_ms, valid_ms, to: node };
                    history.record(Who::Store, ev)
                }
                Acquire::Quarantined { .. } => history.record(Who::Store, ServerEv::QuarantineRefusal { to: node }),
                Acquire::Held { remaining_ms } => {
                    // L5: a refusal names a live grant of another token and its time left, as the
                    // store holds them (read apart from the reply's own path).
                    let valid_ms = held_validity(store, &name).await?;
                    let holder = store.lease_grant(&name).map(|(h, _, _)| h).unwrap_or_default();
                    if holder == token || remaining_ms.abs_diff(valid_ms) > 1 {
                        let (lease, token, remaining_ms, by) = (name.clone(), token.clone(), *remaining_ms, node);
                        history.record(
                            Who::Store,
                            ServerEv::LeaseRefusalWrong { lease, token, remaining_ms, holder, valid_ms, by },
                        );
                    }
                    // Only a refusal by a grant to the same owner instance (`owner:incarnation`) is
                    // recorded (S11); the refusals of other owners' polls are most of a lease
                    // run's calls.
                    let same = |a: &str, b: &str| match (Token::parse(a), Token::parse(b)) {
                        (Some(a), Some(b)) => a != b && a.same_instance(&b),
                        _ => false,
                    };
                    if let Some((holder, _)) = store.lease_holder(&name)
                        && same(&holder, &token)
                    {
                        history.record(Who::Store, ServerEv::AcquireHeldByOwn { lease: name, holder, token, by: node });
                    }
                }
            }
            Resp::Acquire(r)
        }
        Op::Renew { name, token, ttl_ms } => {
            let before = store.lease_grant(&name);
            let r = store.lease_renew(&name, &token, ttl_ms).await?;
            if before.is_none() && matches!(r, Renew::Renewed { .. }) {
                // Read before the call at the same store instant: no live grant to renew.
                history
                    .record(Who::Store, ServerEv::RenewRevived { lease: name.clone(), token: token.clone(), by: node });
            }
            // L7: the holder's own renewal refused (read before the call, at the same instant).
            if matches!(r, Renew::NotHolder) && before.as_ref().is_some_and(|(h, _, _)| *h == token) {
                let ev = ServerEv::LeaseOwnRefused {
                    op: "renew".into(),
                    lease: name.clone(),
                    token: token.clone(),
                    by: node,
                };
                history.record(Who::Store, ev);
            }
            judge_lease(store, history, faults, node, "renew", &name, &token, before);
            if let Renew::Renewed { fence } = r {
                let valid_ms = held_validity(store, &name).await?;
                history.record(Who::Store, ServerEv::Renewal { lease: name, fence, ttl_ms, valid_ms, to: node });
            }
            Resp::Renew(r)
        }
        Op::Release { name, token } => {
            let before = store.lease_grant(&name);
            let r = store.lease_release(&name, &token).await?;
            judge_lease(store, history, faults, node, "release", &name, &token, before.clone());
            // L7: the holder's own release refused.
            if !r && before.as_ref().is_some_and(|(h, _, _)| *h == token) {
                let ev = ServerEv::LeaseOwnRefused {
                    op: "release".into(),
                    lease: name.clone(),
                    token: token.clone(),
                    by: node,
                };
                history.record(Who::Store, ev);
            }
            match before {
                Some((_, fence, _)) if store.lease_grant(&name).is_none() => {
                    history.record(Who::Store, ServerEv::Released { lease: name, fence, by: node });
                }
                Some((holder, _, _)) if !r => {
                    history.record(Who::Store, ServerEv::ReleaseMissed { lease: name, token, holder, by: node });
                }
                _ => {}
            }
            Resp::Release(r)
        }
        Op::DeleteUnchecked { name } => {
            if let Some((holder, fence)) = store.lease_holder(&name) {
                let owner = Token::parse(&holder).map_or(holder.as_str(), |t| t.owner);
                if owner != node.to_string() {
                    history.record(Who::Store, ServerEv::ForeignDelete { by: node, holder, fence });
                }
            }
            store.lease_delete_unchecked(&name).await?;
            Resp::Unit
        }
        Op::Get { map, key } => {
            let (v, rev) = store.map_get(&map, &key).await?;
            Resp::Get(v, rev)
        }
        Op::Snapshot { map } => {
            let snap = store.map_snapshot(&map).await?;
            restart_flag_judged(faults, history, node, &map, &snap);
            Resp::Snapshot(snap)
        }
        Op::Scan { map, cursor, count } => {
            let slice = store.map_scan(&map, &cursor, count).await?;
            scan_judged(store, history, node, (&map, &cursor, count), &slice);
            Resp::Scan(slice)
        }
        // A pool's pending entries: each removal judged as it applies (P5 at the instant); and
        // every keep-alive write the store applied, with its store time (P3's mirror).
        Op::Write { map, key, write } => {
            let judge = RemovalJudge::write(store, &map, &key, &write).await;
            let pair = pool_pairs::PairJudge::write(store, &faults.kept_alive, (&map, &key), &write).await?;
            let lock = is_pool_cleanup(&map).then(|| (map.clone(), key.clone(), write.clone()));
            // A keep-alive's value before a fence or a delete (P18); a beat's is not needed.
            let keepalive = is_pool_keepalive(&map) && pool_cleanup::may_fence_or_delete(&write);
            // Every write's value before it: L6 judges each write against it (and P18's fences,
            // the locks of P15 read it too).
            let before = store.map_get(&map, &key).await?.0;
            let model = writes::expected(before.as_deref(), &write);
            let beat = is_pool_keepalive(&map).then(|| write.clone());
            let out = store.map_write(&map, &key, write.clone()).await?;
            if model.as_ref().map(|v| v.as_deref()) != out.applied.then_some(out.value.as_deref()) {
                let (map, key, write) = (map.clone(), key.clone(), format!("{write:?}"));
                let (applied, after) = (out.applied, out.value.clone());
                let ev =
                    ServerEv::WriteMisapplied { map, key, write, before: before.clone(), applied, after, by: node };
                history.record(Who::Store, ev);
            }
            if !out.applied {
                // L2: read apart from the write's own path (a store's refusal that misreports
                // the value agrees with itself, and the linearizability check runs its code).
                let held = store.map_get(&map, &key).await?.0;
                if held != out.value {
                    let told = out.value.clone();
                    let (map, key) = (map.clone(), key.clone());
                    history.record(Who::Store, ServerEv::RefusalMisreported { map, key, told, held, by: node });
                }
            }
            if let Some(j) = judge {
                j.applied(&[out.applied], history, node);
            }
            if let Some(p) = pair {
                p.applied(out.applied, history, node);
            }
            if let Some((map, key, write)) = lock.filter(|_| out.applied) {
                lock_written(faults, history, node, map, key, &write, before.clone());
            }
            if out.applied && keepalive {
                let change = (before.as_deref(), out.value.as_deref());
                faults.fences.keepalive_written(store, (&map, &key), change, history, node).await;
                pool_deregister::keepalive_written(store, (&map, &key), change, history, node).await;
            }
            if out.applied && matches!(beat, Some(MapWrite::Delete)) {
                let (worker, value) = (key.clone(), before.clone());
                history.record(Who::Store, ServerEv::KeepaliveDeletedBlind { worker, value, by: node });
            }
            if let Some(write) = beat {
                faults.beats.written((&map, &key), &write, (out.applied, out.value.as_deref()), history, node);
            }
            if out.applied && is_pool_keepalive(&map) {
                faults.kept_alive.written(&map, &key, out.value.as_deref());
                let (value, now_ms) = (out.value.clone(), store.time_ms().await?);
                let change = (before.as_deref(), value.as_deref());
                cleanup_written(store, history, node, (&map, &key), change, (now_ms, sent_us)).await?;
                history.record(Who::Store, ServerEv::KeepaliveWritten { worker: key, value, now_ms });
            }
            Resp::Write(out)
        }
        Op::Txn { map, guards, writes } => {
            let judge = RemovalJudge::txns(store, &map, std::iter::once((&guards[..], &writes[..]))).await;
            let deleted = completion_entries_deleted(store, &map, &writes).await?;
            let tombs = pool_owners::tombstones_deleting(store, &map, std::iter::once(&writes[..])).await;
            let out = store.map_txn(&map, &guards, &writes).await?;
            let once = std::iter::once(&writes[..]);
            pool_owners::tombstone_writes(store, &map, once, &[out.applied], tombs, history, node).await?;
            if out.applied {
                deleted.into_iter().for_each(|e| history.record(Who::Store, e(node)));
            }
            if let Some(j) = judge {
                j.applied(&[out.applied], history, node);
            }
            pool_owners::applied_job_writes(&map, std::iter::once(&writes[..]), &[out.applied], history, node);
            pool_owners::refused(
                store,
                &map,
                std::iter::once((&guards[..], &writes[..])),
                &[out.applied],
                history,
                node,
            )
            .await;
            Resp::Txn(out)
        }
        Op::Txns { map, txns } => {
            let judge = RemovalJudge::txns(store, &map, txns.iter().map(|t| (&t.guards[..], &t.writes[..]))).await;
            let tombs = pool_owners::tombstones_deleting(store, &map, txns.iter().map(|t| &t.writes[..])).await;
            let out = store.map_txns(&map, &txns).await?;
            let applied: Vec<bool> = out.iter().map(|o| o.applied).collect();
            let each = txns.iter().map(|t| &t.writes[..]);
            pool_owners::tombstone_writes(store, &map, each, &applied, tombs, history, node).await?;
            if let Some(j) = judge {
                j.applied(&applied, history, node);
            }
            pool_owners::applied_job_writes(&map, txns.iter().map(|t| &t.writes[..]), &applied, history, node);
            let each = txns.iter().map(|t| (&t.guards[..], &t.writes[..]));
            pool_owners::refused(store, &map, each, &applied, history, node).await;
            Resp::Txns(out)
        }
        Op::Reads { reads } => {
            let mut outs = store.reads(&reads).await?;
            if mutants::active(Mutant::MC319) {
                outs.reverse(); // MC319: the batch's answers in reverse order
            }
            for (read, out) in reads.iter().zip(&outs) {
                if let (Read::Snapshot { map }, ReadOut::Snapshot(snap)) = (read, out) {
                    restart_flag_judged(faults, history, node, map, snap);
                }
                if let (Read::Scan { map, cursor, count }, ReadOut::Scan(slice)) = (read, out) {
                    scan_judged(store, history, node, (map, cursor, *count), slice);
                }
            }
            Resp::Reads(outs)
        }
        Op::Watch { map, sub } => {
            let mut w = store.watch(&map).await?;
            let feed = faults.feeds.opened(&map, store.map_rev(&map), node);
            let (served, mut ended) = (served.clone(), served.kill.clone());
            tokio::spawn(async move {
                let boot_rev = boot_rev(&served.faults, &map);
                loop {
                    let ev = tokio::select! {
                        biased; // deterministic poll order (see `connection`)
                        _ = ended.changed() => return,
                        ev = w.next() => ev,
                    };
                    feed.took(&ev, served.store.map_rev(&map), boot_rev, &served.history);
                    if served.tx.send(Box::new(Down::Feed { sub, ev })).await.is_err() {
                        return;
                    }
                    feed.sent();
                }
            });
            Resp::Unit
        }
    };
    if let Some(map) = written {
        faults.feeds.written(&map, store.map_rev(&map), history);
    }
    Ok(resp)
}

/// L8: a scan slice the store served (alone or in a batch) holds the next `count` keys after its
/// cursor's, with their values, and says more follows exactly when a key does: judged against the
/// map as the store holds it when the slice is served (read in place, nothing runs between; the
/// model is `net/scans.rs`, written apart from keel's `map_scan`). A cursor that is no cursor is
/// the store's to refuse, not judged here.
fn scan_judged(store: &MemoryStore, history: &History, node: Who, asked: (&str, &str, usize), slice: &MapScan) {
    let (map, cursor, count) = asked;
    let Ok(after) = scans::resumes_after(cursor) else { return };
    let mut held = store.map_entries_from(map, after.as_deref().unwrap_or(""));
    if let Some(k) = &after {
        held.remove(k);
    }
    if let Some(what) = scans::slice_wrong(&held, count, &slice.entries, slice.next == keel::store::MAP_SCAN_START) {
        let (map, cursor) = (map.to_owned(), cursor.to_owned());
        history.record(Who::Store, ServerEv::ScanSliceWrong { map, cursor, count: count as u64, what, by: node });
    }
}

/// L3: a snapshot says the store restarted since the map's last commit exactly when the map has
/// a revision and it is still the one the map had at the store's last boot (no commit since).
/// Judged against the store node's own record, read at each boot: a store that never says so
/// lets a replica apply a feed's changes of a history a roll-back lost (MC140), one that says
/// so after a commit makes every load resync again.
fn restart_flag_judged(faults: &ServerFaults, history: &History, node: Who, map: &str, snap: &MapSnapshot) {
    let restarted = snap.rev > 0 && boot_rev(faults, map) == snap.rev;
    if snap.restarted_since_commit != restarted {
        let (map, rev, told) = (map.to_owned(), snap.rev, snap.restarted_since_commit);
        history.record(Who::Store, ServerEv::RestartMisreported { map, rev, told, by: node });
    }
}

/// `map`'s revision at the store's last boot (0 when it had none).
fn boot_rev(faults: &ServerFaults, map: &str) -> u64 {
    faults.boot_revs.lock().unwrap_or_else(|p| p.into_inner()).get(map).copied().unwrap_or(0)
}

/// A pool's keep-alive map (`keel:pool:{pool}:keepalive`): its applied writes are recorded with
/// the store time, so the pool's keep-alive rules judge what the store held, when.
fn is_pool_cleanup(map: &str) -> bool {
    map.starts_with("keel:pool:") && map.ends_with(":cleanup")
}

/// A write to a pool cleanup lock applied: remember its writer, and record a removal of a lock
/// another node wrote (P15: a cleaner releases only its own lock).
fn lock_written(
    faults: &ServerFaults,
    history: &History,
    node: Who,
    map: String,
    worker: String,
    write: &MapWrite,
    before: Option<String>,
) {
    let mut writers = faults.lock_writers.lock().unwrap_or_else(|p| p.into_inner());
    if node == Who::World {
        // A request handled before its connection said whose it is: the writer is unknown.
        writers.remove(&(map, worker));
        return;
    }
    if matches!(write, MapWrite::Delete) {
        let (worker, lock) = (worker.clone(), before.clone());
        history.record(Who::Store, ServerEv::CleanupLockDeletedBlind { worker, lock, by: node });
    }
    match write {
        MapWrite::Delete | MapWrite::CompareAndDelete(_) => {
            if let (Some(writer), Some(lock)) = (writers.remove(&(map, worker.clone())), before)
                && writer != node
            {
                history.record(Who::Store, ServerEv::ForeignLockRemoved { worker, lock, writer, by: node });
            }
        }
        _ => {
            writers.insert((map, worker), node);
        }
    }
}

/// P44: the deletions `writes` makes in a pool's completer map (`keel:pool:{pool}:completions`),
/// each with what the pool's job map holds of its job as it applies: its record, its tombstone's
/// completion time, and the store's time. Recorded once the transaction applied.
async fn completion_entries_deleted(
    store: &MemoryStore,
    map: &str,
    writes: &[(String, Option<String>)],
) -> StoreResult<Vec<impl FnOnce(Who) -> ServerEv + use<>>> {
    let Some(pool) = map.strip_prefix("keel:pool:").and_then(|m| m.strip_suffix(":completions")) else {
        return Ok(Vec::new());
    };
    let jobs = format!("keel:pool:{pool}:jobs");
    let now_ms = store.time_ms().await?;
    let mut out = Vec::new();
    for (job, _) in writes.iter().filter(|(_, v)| v.is_none()) {
        let record = store.map_get(&jobs, &format!("j/{job}")).await?.0.is_some();
        let tomb = store.map_get(&jobs, &format!("d/{job}")).await?.0;
        let tomb_ms = tomb.as_deref().and_then(keel::pool::decode::tombstone).map(|(_, ms)| ms);
        let job = job.clone();
        out.push(move |by| ServerEv::CompletionEntryDeleted { job, record, tomb_ms, now_ms, by });
    }
    Ok(out)
}

/// P52: a cleanup's writes to the keep-alive of the worker it cleans (its fence, the dead
/// marker, and that marker's removal), each with the worker's cleanup lock as the store holds it
/// at that instant, and the store's time.
async fn cleanup_written(
    store: &MemoryStore,
    history: &History,
    node: Who,
    (map, worker): (&str, &str),
    (before, after): (Option<&str>, Option<&str>),
    (now_ms, sent_us): (u64, u64),
) -> StoreResult<()> {
    let dead = keel::pool::decode::DEAD_MARKER;
    let what = match (before, after) {
        (b, Some(a)) if a == dead && b != Some(dead) => "fence",
        (Some(b), None) if b == dead => "delete",
        _ => return Ok(()),
    };
    let Some(pool) = map.strip_suffix(":keepalive") else { return Ok(()) };
    let lock = store.map_get(&format!("{pool}:cleanup"), worker).await?.0;
    let (worker, what) = (worker.to_owned(), what.to_owned());
    history.record(Who::Store, ServerEv::CleanupWrite { worker, what, lock, now_ms, sent_us, by: node });
    Ok(())
}

fn is_pool_keepalive(map: &str) -> bool {
    map.starts_with("keel:pool:") && map.ends_with(":keepalive")
}

/// How long the store holds lease `name`'s live grant valid from now (its expiry, read back after
/// a grant or renewal, less the store's time): what S6 judges a belief against, rather than the
/// TTL the request asked for, so a store that answers `Granted` or `Renewed` without extending
/// the expiry is seen at the instant the belief outlives it (MC33).
async fn held_validity(store: &MemoryStore, name: &str) -> StoreResult<u64> {
    let now = store.time_ms().await?;
    Ok(store.lease_grant(name).map_or(0, |(_, _, expires_at_ms)| expires_at_ms.saturating_sub(now)))
}

/// The store node judges every lease operation against the grant it holds: a renewal or release
/// by a token that is not the holder's must change nothing, and a key's fence never goes down.
#[allow(clippy::too_many_arguments)] // one call site per lease operation; a struct would only rename them
fn judge_lease(
    store: &MemoryStore,
    history: &History,
    faults: &ServerFaults,
    node: Who,
    op: &str,
    name: &str,
    token: &str,
    before: Option<(String, u64, u64)>,
) {
    let after = store.lease_grant(name);
    if let Some((holder, _, _)) = &before
        && holder != token
        && after != before
    {
        let ev = ServerEv::ForeignChange {
            op: op.into(),
            lease: name.into(),
            token: token.into(),
            holder: holder.clone(),
            by: node,
        };
        history.record(Who::Store, ev);
    }
    judge_fence(history, faults, name, after.map(|a| a.1));
}

/// A lease key's fence never goes down at the store, across restarts and data loss (a
/// roll-back starts the judgment again from what the store holds).
fn judge_fence(history: &History, faults: &ServerFaults, name: &str, fence: Option<u64>) {
    let Some(fence) = fence else { return };
    let mut max = faults.max_fence.lock().unwrap_or_else(|p| p.into_inner());
    let high = max.entry(name.to_owned()).or_insert(0);
    if fence < *high {
        history.record(Who::Store, ServerEv::FenceBackwards { lease: name.into(), from: *high, to: fence });
    }
    *high = (*high).max(fence);
}

/// A call's place on its connection: waiting (with the task to wake), or answered.
enum Slot {
    Waiting(Option<Waker>),
    Done(StoreResult<Resp>),
}

struct Conn {
    tx: madsim::net::Sender,
    /// The connection's receiving end while no reader task runs: a caller waiting for its reply
    /// reads here itself and hands out the replies of others, so a call costs no task run and
    /// no hop through a reader. The first watch moves it into a reader task, since a feed must be
    /// read when nobody calls.
    rx: Mutex<Option<madsim::net::Receiver>>,
    pending: Mutex<BTreeMap<u64, Slot>>,
    feeds: Mutex<BTreeMap<u64, mpsc::UnboundedSender<WatchEvent>>>,
    alive: AtomicBool,
    /// Its node, and the node's pauses when it opened ([`Conn::resumed`]).
    node: Who,
    pauses: u64,
}

impl Conn {
    fn new(tx: madsim::net::Sender, rx: madsim::net::Receiver, node: Who) -> Self {
        Conn {
            tx,
            rx: Mutex::new(Some(rx)),
            pending: Mutex::new(BTreeMap::new()),
            feeds: Mutex::new(BTreeMap::new()),
            alive: AtomicBool::new(true),
            node,
            pauses: pauses(node),
        }
    }

    /// Whether its node was paused since it opened. A process resumed from a pause reads its
    /// socket's whole backlog at once, up to the store's end of the connection if the store
    /// ended it meanwhile; madsim hands a backlog out one message per millisecond, so here the
    /// end may come well after the node runs again. Such a connection's end is taken as known
    /// at once: a call takes a new connection instead of failing on it, and the feeds still get
    /// what arrived before the end (in production a feed has a connection of its own,
    /// `RedisWatch`, which a call given up on does not cut). Without it no run reached a replica
    /// resuming with a change of a rolled-back history in its feed (MC45's window; hunt 41 A).
    fn resumed(&self) -> bool {
        pauses(self.node) != self.pauses
    }

    /// Whether the store ended a connection its node was paused across, while a reader task
    /// still hands out what arrived before the end (see [`Conn::resumed`]).
    fn ending(&self) -> bool {
        lock(&self.rx).is_none() && self.tx.is_closed() && self.resumed()
    }

    /// Whether the connection can take a request: not given up, and (while callers read it
    /// themselves, so no reader is there to notice, or after a pause of its node: `resumed`)
    /// its other end not gone.
    fn usable(&self) -> bool {
        self.alive.load(Ordering::SeqCst) && !(self.tx.is_closed() && (lock(&self.rx).is_some() || self.resumed()))
    }

    fn close(&self) {
        self.alive.store(false, Ordering::SeqCst);
        // Calls still waiting fail; a reply already here stays theirs.
        for slot in lock(&self.pending).values_mut() {
            if let Slot::Waiting(w) = slot {
                let w = w.take();
                *slot = Slot::Done(Err(StoreError::Disconnected { reason: "connection reset".into() }));
                w.into_iter().for_each(Waker::wake);
            }
        }
        // Dropping the feed senders ends each watch's stream: it resubscribes and reports a gap.
        // Not yet while a reader hands out a backlog that ends with the store's end (`ending`).
        if !self.ending() {
            lock(&self.feeds).clear();
        }
    }

    /// Hand a message from the store to whom it is for.
    fn dispatch(&self, down: Down) {
        match down {
            Down::Reply { id, result } => {
                // A reply to a call that has gone, or that its closed connection failed, is dropped.
                if let Some(slot) = lock(&self.pending).get_mut(&id)
                    && let Slot::Waiting(w) = slot
                {
                    let w = w.take();
                    *slot = Slot::Done(result);
                    w.into_iter().for_each(Waker::wake);
                }
            }
            Down::Feed { sub, ev } => {
                if let Some(f) = lock(&self.feeds).get(&sub) {
                    let _ = f.send(ev);
                }
            }
        }
    }

    /// Read what has arrived, if no reader task does (registering `cx` for what comes next).
    fn read(&self, cx: &mut Context<'_>) {
        let mut rx = lock(&self.rx);
        let Some(r) = rx.as_mut() else { return };
        loop {
            match Pin::new(&mut *r).poll_next(cx) {
                Poll::Ready(Some(Ok(msg))) => {
                    if let Ok(down) = msg.downcast::<Down>() {
                        self.dispatch(*down);
                    }
                }
                Poll::Ready(Some(Err(_)) | None) => {
                    *rx = None;
                    drop(rx);
                    self.close();
                    return;
                }
                Poll::Pending => return,
            }
        }
    }

    /// The reply to call `id`, once it is here.
    fn poll_reply(&self, id: u64, cx: &mut Context<'_>) -> Poll<StoreResult<Resp>> {
        self.read(cx);
        let mut pending = lock(&self.pending);
        match pending.get_mut(&id) {
            Some(Slot::Waiting(w)) => {
                if !w.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    *w = Some(cx.waker().clone());
                }
                Poll::Pending
            }
            Some(Slot::Done(_)) => match pending.remove(&id) {
                Some(Slot::Done(r)) => {
                    drop(pending);
                    self.hand_over();
                    Poll::Ready(r)
                }
                _ => Poll::Pending, // unreachable: matched just above under the same lock
            },
            None => Poll::Ready(Err(StoreError::Disconnected { reason: "connection reset".into() })),
        }
    }

    /// A caller that read the connection itself is done with it: the runtime wakes only the
    /// last task that polled the receiving end, so wake the other waiting callers to read on.
    fn hand_over(&self) {
        if lock(&self.rx).is_none() {
            return;
        }
        for slot in lock(&self.pending).values() {
            if let Slot::Waiting(Some(w)) = slot {
                w.wake_by_ref();
            }
        }
    }

    /// From now on a reader task reads the connection (feeds must be read when nobody calls).
    fn spawn_reader(self: &Arc<Self>) {
        let Some(mut rx) = lock(&self.rx).take() else { return };
        let reader = self.clone();
        tokio::spawn(async move {
            while let Ok(msg) = rx.recv().await {
                if let Ok(down) = msg.downcast::<Down>() {
                    reader.dispatch(*down);
                }
            }
            reader.close();
            lock(&reader.feeds).clear();
        });
    }
}

/// A request in flight. If its caller drops it (a local deadline of its own ran out first)
/// after it waited at least `after`, the connection is given up exactly as on a timeout: the
/// request may be stuck behind a stalled link, and every later request on the connection would
/// queue behind it. (`RedisStore` counts such abandoned requests as timeouts the same way.)
struct Abandon<'a> {
    conn: &'a Conn,
    id: u64,
    global: &'a GlobalTime,
    sent: tokio::time::Instant,
    after: Duration,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        lock(&self.conn.pending).remove(&self.id);
        self.conn.hand_over();
        if self.global.now().saturating_duration_since(self.sent) >= self.after {
            self.conn.close();
        }
    }
}

/// The simulated client gives up on a call on its own only after this many op timeouts, as a
/// client configured with a generous socket timeout: the caller's own timeout is what bounds
/// a call, so a call its caller does not bound is seen (E6, [`Timed`]) instead of cut.
pub const CLIENT_TIMEOUT_FACTOR: u32 = 4;

/// Who makes a call: the service under test (keel, or the service's own code, through the
/// `Store` trait), or a watch of the client itself (its probes and re-subscriptions, which a
/// real client bounds by its own socket timeout: cut at the op timeout, not judged by E6).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    Service,
    Watch,
}

/// One call, from its caller's first poll to its end: its reply, the client's own timeout, or
/// its caller dropping it (the caller's timeout, a crash, the run's end). A call that went on
/// past the op timeout is recorded (`call_overran`) for E6 to judge against its node's clock.
struct Timed<'a> {
    client: &'a Client,
    op: &'static str,
    sent: tokio::time::Instant,
}

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        let took = self.client.global.now().saturating_duration_since(self.sent);
        if took > self.client.op_timeout {
            let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            let (took_us, bound_us) = (us(took), us(self.client.op_timeout));
            self.client
                .history
                .record(self.client.node, WorldEv::CallOverran { op: self.op.to_owned(), took_us, bound_us });
        }
    }
}

struct Client {
    node: Who,
    ep: Endpoint,
    /// The longest a call of this node's code may take (E6); a caller that drops a call after
    /// half of it gives the connection up.
    op_timeout: Duration,
    history: History,
    global: GlobalTime,
    next_id: AtomicU64,
    conn: tokio::sync::Mutex<Option<Arc<Conn>>>,
    /// Connections given up while callers read them: kept open, so the store still applies
    /// (and answers, to nobody) what was sent on them, as it does on a connection a reader
    /// task keeps. Closing one would abort the store's delayed requests on it.
    retired: Mutex<Vec<Arc<Conn>>>,
}

/// A `Store` client on an application node, talking to the store server over the simulated network.
#[derive(Clone)]
pub struct SimStore {
    inner: Arc<Client>,
}

impl SimStore {
    /// Bind a client endpoint on the current node.
    pub async fn connect(
        node: Who,
        ip: IpAddr,
        port: u16,
        op_timeout: Duration,
        history: History,
    ) -> std::io::Result<Self> {
        let ep = Endpoint::bind(SocketAddr::new(ip, port)).await?;
        Ok(SimStore {
            inner: Arc::new(Client {
                node,
                ep,
                op_timeout,
                history,
                global: GlobalTime::current(),
                next_id: AtomicU64::new(1),
                conn: tokio::sync::Mutex::new(None),
                retired: Mutex::new(Vec::new()),
            }),
        })
    }

    async fn conn(&self) -> StoreResult<Arc<Conn>> {
        let mut slot = self.inner.conn.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| c.usable()) {
            return Ok(c.clone());
        }
        if let Some(old) = slot.take() {
            let mut retired = lock(&self.inner.retired);
            retired.retain(|c| !c.tx.is_closed()); // the store ended those: nothing to keep open
            retired.push(old);
        }
        let unavailable = |e: std::io::Error| StoreError::Unavailable { reason: e.to_string() };
        let (tx, rx) = self.inner.ep.connect1(STORE_ADDR).await.map_err(unavailable)?;
        let conn = Arc::new(Conn::new(tx, rx, self.inner.node));
        let hello = Req { id: 0, op: Op::Hello { node: self.inner.node }, sent_us: self.inner.history.now_us() };
        conn.tx.send(Box::new(hello)).await.map_err(unavailable)?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    async fn call(&self, op: Op) -> StoreResult<Resp> {
        self.call_for(op, Caller::Service).await
    }

    async fn call_for(&self, op: Op, caller: Caller) -> StoreResult<Resp> {
        let _timed = (caller == Caller::Service).then(|| Timed {
            client: &self.inner,
            op: op.name(),
            sent: self.inner.global.now(),
        });
        let cut = match caller {
            Caller::Service => self.inner.op_timeout * CLIENT_TIMEOUT_FACTOR,
            Caller::Watch => self.inner.op_timeout,
        };
        let recorded = linearize::InFlight::invoke(op.recorded());
        let r = self.exchange(op, cut).await;
        match &r {
            // Judged where it lies: a snapshot is a whole map, not copied for the checker.
            Ok(Resp::Snapshot(s)) => recorded.complete_snapshot(s),
            Ok(Resp::Reads(outs)) => recorded.complete_lent(outs.iter().filter_map(|o| match o {
                ReadOut::Get(v, rev) => Some(Lent::Owned(StoreRet::Get(v.clone(), *rev))),
                ReadOut::Snapshot(s) => Some(Lent::Snapshot(s)),
                ReadOut::Time(_) | ReadOut::Scan(_) => None,
            })),
            Ok(resp) => recorded.complete(resp.recorded()),
            Err(e) if e.outcome() == keel::Outcome::NotApplied => recorded.not_applied(),
            // Unknown outcome: abandoned as `recorded` drops (writes stay open forever), as when
            // this call is dropped with its node.
            Err(_) => {}
        }
        r
    }

    async fn exchange(&self, op: Op, cut: Duration) -> StoreResult<Resp> {
        CALLS.with(|c| c.set(c.get() + 1));
        let name = op.name();
        let conn = self.conn().await?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&conn.pending).insert(id, Slot::Waiting(None));
        let sent_us = self.inner.history.now_us();
        if let Err(e) = conn.tx.send(Box::new(Req { id, op, sent_us })).await {
            lock(&conn.pending).remove(&id);
            conn.close();
            return Err(StoreError::Unavailable { reason: e.to_string() });
        }
        let global = &self.inner.global;
        let abandon = Abandon { conn: &conn, id, global, sent: global.now(), after: self.inner.op_timeout / 2 };
        // The timeout's timer does not wake this task once the reply has come (`QuietSleep`).
        let r = tokio::select! {
            biased; // deterministic poll order (see `connection`)
            r = std::future::poll_fn(|cx| conn.poll_reply(id, cx)) => r,
            // Like a client with a socket timeout: `abandon` gives up on this connection when
            // it drops here. Requests already queued on it may still be delivered and applied.
            () = crate::clock::quiet_sleep(global, cut) => return Err(StoreError::Timeout { op: name }),
        };
        std::mem::forget(abandon);
        r
    }

    async fn subscribe(&self, map: &str, caller: Caller) -> StoreResult<mpsc::UnboundedReceiver<WatchEvent>> {
        let conn = self.conn().await?;
        let sub = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::unbounded_channel();
        conn.feeds.lock().unwrap_or_else(|p| p.into_inner()).insert(sub, tx);
        conn.spawn_reader();
        match self.call_for(Op::Watch { map: map.to_owned(), sub }, caller).await {
            Ok(_) => Ok(rx),
            Err(e) => {
                conn.feeds.lock().unwrap_or_else(|p| p.into_inner()).remove(&sub);
                Err(e)
            }
        }
    }
}

fn protocol_error(op: &str) -> StoreError {
    StoreError::Refused { reason: format!("simulated store: unexpected reply to {op}") }
}

macro_rules! expect_resp {
    ($self:ident, $op:expr, $pat:pat => $out:expr) => {{
        let op = $op;
        let name = op.name();
        match $self.call(op).await? {
            $pat => Ok($out),
            _ => Err(protocol_error(name)),
        }
    }};
}

/// A watch over the simulated network: reconnects by itself and reports each break as a gap.
pub struct SimWatch {
    store: SimStore,
    map: String,
    rx: Option<mpsc::UnboundedReceiver<WatchEvent>>,
}

impl Watch for SimWatch {
    async fn next(&mut self) -> WatchEvent {
        loop {
            if let Some(rx) = self.rx.as_mut() {
                tokio::select! {
                    biased; // deterministic poll order (see `connection`)
                    ev = rx.recv() => match ev {
                        Some(ev) => return ev,
                        None => self.rx = None,
                    },
                    // Probe the connection; a timed-out probe closes it, which ends `rx`.
                    _ = tokio::time::sleep(FEED_PING) => { let _ = self.store.call_for(Op::Time, Caller::Watch).await; }
                }
                continue;
            }
            match self.store.subscribe(&self.map, Caller::Watch).await {
                Ok(rx) => {
                    self.rx = Some(rx);
                    return WatchEvent::Gap;
                }
                Err(_) => tokio::time::sleep(RESUBSCRIBE_BACKOFF).await,
            }
        }
    }
}

impl Store for SimStore {
    type Watch = SimWatch;

    async fn time_ms(&self) -> StoreResult<u64> {
        expect_resp!(self, Op::Time, Resp::Time(t) => t)
    }

    async fn lease_acquire(&self, name: &str, token: &str, ttl_ms: u64, quarantine_ms: u64) -> StoreResult<Acquire> {
        let op = Op::Acquire { name: name.into(), token: token.into(), ttl_ms, quarantine_ms };
        expect_resp!(self, op, Resp::Acquire(a) => a)
    }

    async fn lease_renew(&self, name: &str, token: &str, ttl_ms: u64) -> StoreResult<Renew> {
        expect_resp!(self, Op::Renew { name: name.into(), token: token.into(), ttl_ms }, Resp::Renew(r) => r)
    }

    async fn lease_release(&self, name: &str, token: &str) -> StoreResult<bool> {
        expect_resp!(self, Op::Release { name: name.into(), token: token.into() }, Resp::Release(b) => b)
    }

    async fn lease_delete_unchecked(&self, name: &str) -> StoreResult<()> {
        expect_resp!(self, Op::DeleteUnchecked { name: name.into() }, Resp::Unit => ())
    }

    async fn map_get(&self, map: &str, key: &str) -> StoreResult<(Option<String>, u64)> {
        expect_resp!(self, Op::Get { map: map.into(), key: key.into() }, Resp::Get(v, r) => (v, r))
    }

    async fn map_snapshot(&self, map: &str) -> StoreResult<MapSnapshot> {
        expect_resp!(self, Op::Snapshot { map: map.into() }, Resp::Snapshot(s) => s)
    }

    async fn map_scan(&self, map: &str, cursor: &str, count: usize) -> StoreResult<MapScan> {
        let op = Op::Scan { map: map.into(), cursor: cursor.into(), count };
        expect_resp!(self, op, Resp::Scan(s) => s)
    }

    async fn map_write(&self, map: &str, key: &str, write: MapWrite) -> StoreResult<WriteOutcome> {
        expect_resp!(self, Op::Write { map: map.into(), key: key.into(), write }, Resp::Write(w) => w)
    }

    async fn map_txn(
        &self,
        map: &str,
        guards: &[(String, Expect)],
        writes: &[(String, Option<String>)],
    ) -> StoreResult<TxnOutcome> {
        let op = Op::Txn { map: map.into(), guards: guards.to_vec(), writes: writes.to_vec() };
        expect_resp!(self, op, Resp::Txn(t) => t)
    }

    async fn map_txns(&self, map: &str, txns: &[MapTxn]) -> StoreResult<Vec<TxnOutcome>> {
        match self.call(Op::Txns { map: map.into(), txns: txns.to_vec() }).await? {
            Resp::Txns(t) if t.len() == txns.len() => Ok(t),
            _ => Err(protocol_error("map_txns")),
        }
    }

    async fn reads(&self, reads: &[Read]) -> StoreResult<Vec<ReadOut>> {
        match self.call(Op::Reads { reads: reads.to_vec() }).await? {
            Resp::Reads(r) if r.len() == reads.len() => Ok(r),
            _ => Err(protocol_error("reads")),
        }
    }

    async fn watch(&self, map: &str) -> StoreResult<SimWatch> {
        let rx = self.subscribe(map, Caller::Service).await?;
        Ok(SimWatch { store: self.clone(), map: map.to_owned(), rx: Some(rx) })
    }
}
