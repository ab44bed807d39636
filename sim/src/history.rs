//! The recorded history of one run: every protocol-relevant event, typed, with its node and
//! simulated time.
//!
//! Core code reports through keel's observer seam (`keel::observe`): the runner installs a
//! [`Recorder`] on the simulation's thread, which keeps an owned copy of every typed event,
//! tagged with the madsim node it ran on. The simulator's own components (store server, nemesis,
//! resources, scenario workloads) append their own typed events. Checkers match variants, never
//! strings: renaming or removing an event breaks their build.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};

use keel::observe::{self, Observer, events};

/// Who an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Who {
    /// The simulator itself (setup, the main task).
    World,
    /// The fault injector (store-wide faults).
    Nemesis,
    /// The store server node.
    Store,
    /// Application node `n<i>`.
    Node(u8),
}

impl Who {
    /// Application node `i`.
    pub fn node(i: usize) -> Who {
        Who::Node(u8::try_from(i).unwrap_or(u8::MAX))
    }

    /// The index of an application node.
    pub fn index(self) -> Option<usize> {
        match self {
            Who::Node(i) => Some(usize::from(i)),
            _ => None,
        }
    }
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::World => f.write_str("world"),
            Who::Nemesis => f.write_str("nemesis"),
            Who::Store => f.write_str("store"),
            Who::Node(i) => write!(f, "n{i}"),
        }
    }
}

impl keel::observe::Field for Who {
    type Static = Who;
    fn to_static(&self) -> Who {
        *self
    }
    fn show(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

events! {
    /// What the world and its nemesis did to nodes, the store and clocks.
    pub enum WorldEv {
        /// An application node (re)started its main function.
        NodeStart {} = "node_start",
        /// An application node was killed.
        NodeCrash {} = "node_crash",
        /// An application node was frozen.
        NodePause {} = "node_pause",
        /// A frozen node was thawed.
        NodeResume {} = "node_resume",
        /// An application node was asked to stop gracefully.
        NodeStop {} = "node_stop",
        /// The store node was killed (and its data lost if `data_loss`).
        StoreCrash { data_loss: bool } = "store_crash",
        /// The store node restarted.
        StoreRestart {} = "store_restart",
        /// A store crash rolled the data back to its last checkpoint: `kept` some of it (the
        /// checkpoint held data), `lost` the writes since (the store held more than the
        /// checkpoint). What the roll-back did, for its coverage goal (`effects`).
        RolledBack { kept: bool, lost: bool } = "rolled_back",
        /// The store refuses every request for `ms`.
        StoreRefusing { ms: u64 } = "store_refusing",
        /// The store answers again after refusing: it refused `refused` requests meanwhile.
        StoreAnswering { refused: u64 } = "store_answering",
        /// Every request waits `extra_ms` more before it is applied, for `ms`.
        LatencySpike { ms: u64, extra_ms: u64 } = "latency_spike",
        /// A latency spike ended: it held `slowed` requests (overlapping spikes: the last one's
        /// value ends them all, as the store keeps one).
        LatencySpikeEnded { slowed: u64 } = "latency_spike_ended",
        /// `pct` % of replies are dropped after the request was applied, for `ms`.
        ReplyLoss { ms: u64, pct: u32 } = "reply_loss",
        /// Replies are delayed by `delay_ms` after the request was applied, for `ms`.
        ReplyDelay { ms: u64, delay_ms: u64 } = "reply_delay",
        /// Every packet to and from `node` takes `extra_ms` more, for `ms`.
        NodeLatency { node: Who, ms: u64, to_ms: u64, from_ms: u64 } = "node_latency",
        /// Every store connection was killed (watches see a gap).
        FeedDisconnect {} = "feed_disconnect",
        /// The store refuses `node`'s requests with a permanent error (`NOPERM`) for `ms`.
        AccessDenied { node: Who, ms: u64 } = "access_denied",
        /// The store serves `node` again after a denial.
        AccessRestored { node: Who } = "access_restored",
        /// `node` is cut from the store (`dir`) for `ms`.
        Partition { node: Who, dir: String, ms: u64 } = "partition",
        /// The partition of `node` healed. `served`: the store applied a request `node` sent
        /// after the cut began (what a cut towards the store forbids and a cut of replies
        /// allows: `effects`).
        PartitionHealed { node: Who, served: bool } = "partition_healed",
        /// Two application nodes cut off from each other.
        NodePartition { a: Who, b: Who, ms: u64 } = "node_partition",
        /// They reach each other again.
        NodePartitionHealed { a: Who, b: Who } = "node_partition_healed",
        /// Every network message slowed by up to `extra_ms` for `ms`.
        NetworkLatency { ms: u64, extra_ms: u64 } = "network_latency",
        /// The network is back to its usual latency (or the largest slowdown still in force):
        /// `extra_ms` is what madsim draws latencies from now, read back (W4).
        NetworkLatencyEnded { extra_ms: u64 } = "network_latency_ended",
        /// The node's clock runs at `rate_ppm` / 1e6; `beyond` the configured drift bound or not.
        ClockRate { rate_ppm: i64, beyond: bool } = "clock_rate",
        /// The node's clock jumped by `delta_ms` (negative: it stalls).
        ClockJump { delta_ms: i64 } = "clock_jump",
        /// What the jump just recorded did to the node's clock: `moved_ms`, its local time's move
        /// (before the monotonic clamp: negative for a stall), with `sleepers` sleeps armed on it
        /// (`effects`: a jump that moves nothing, or moves by another amount, is seen), and
        /// `rate_ppm`, the rate it runs at after the jump, read from its map (W2).
        ClockJumped { moved_ms: i64, sleepers: u64, rate_ppm: i64 } = "clock_jumped",
        /// The node's clock is back at rate 1 (the heal): `on_time` sleeps ended reading exactly
        /// their deadline while it ran at another rate (`effects`).
        ClockDriftEnded { on_time: u64 } = "clock_drift_ended",
        /// The node's workload was told to stall one of its consumers (it stops reading until
        /// the workload's current unit of work ends).
        ConsumerStall {} = "consumer_stall",
        /// A store call of this node went on past the op timeout (`bound_us`) the run declares:
        /// `took_us` from its send to its end (reply, the client's own timeout at
        /// `CLIENT_TIMEOUT_FACTOR` op timeouts, or its caller dropping it). E6 judges it.
        CallOverran { op: String, took_us: u64, bound_us: u64 } = "call_overran",
        /// Every fault ended.
        Heal {} = "heal",
        /// The history reached its size limit: the run fails.
        HistoryFull {} = "history_full",
        /// The simulator itself failed to set something up: the run fails.
        SimError { error: String } = "sim_error",
    }
}

events! {
    /// What the store server saw and judged (it holds the truth of every lease).
    pub enum ServerEv {
        /// The store server accepts connections; its clock reads `now_ms`.
        StoreUp { now_ms: u64 } = "store_up",
        /// A lease grant to `to` under `token`, asked for `ttl_ms`: the store holds it valid for
        /// `valid_ms` from now (its expiry as the store holds it after the grant, read back).
        Grant { lease: String, token: String, fence: u64, ttl_ms: u64, valid_ms: u64, to: Who } = "grant",
        /// A renewal by `to` applied, asked for `ttl_ms`: the store holds the grant of `fence`
        /// valid for `valid_ms` from now (read back from the store after the renewal).
        Renewal { lease: String, fence: u64, ttl_ms: u64, valid_ms: u64, to: Who } = "renewal",
        /// A release by `by` removed the grant of `fence`: from now the store holds none of it.
        Released { lease: String, fence: u64, by: Who } = "released",
        /// A release by `by` naming `token` removed nothing while the store held a live grant,
        /// to `holder` (S7: a graceful stop must name the grant it held).
        ReleaseMissed { lease: String, token: String, holder: String, by: Who } = "release_missed",
        /// An acquisition by `by` under `token` refused because the store holds a live grant to
        /// `holder`, an earlier token of the same owner (S11: a grant its owner stepped away
        /// from without trying to release it).
        AcquireHeldByOwn { lease: String, holder: String, token: String, by: Who } = "acquire_held_by_own",
        /// An acquisition refused by the data-loss quarantine.
        QuarantineRefusal { to: Who } = "quarantine_refusal",
        /// A lease operation by a token that is not the holder's changed the grant.
        ForeignChange { op: String, lease: String, token: String, holder: String, by: Who } = "foreign_change",
        /// A renewal by `token` applied where the store held no live grant (an expired one came
        /// back to life).
        RenewRevived { lease: String, token: String, by: Who } = "renew_revived",
        /// The fence of a lease went down (at the store).
        FenceBackwards { lease: String, from: u64, to: u64 } = "fence_backwards",
        /// An unchecked delete removed the lease held by `holder`.
        ForeignDelete { by: Who, holder: String, fence: u64 } = "foreign_delete",
        /// A reply was dropped after its request was served; `applied`: the store applied it
        /// (not refused), so the caller's outcome is unknown.
        ReplyDropped { to: Who, applied: bool } = "reply_dropped",
        /// A request of `to` held by a latency fault: `before_ms` before the store served it
        /// (the node's request latency), then `after_ms` (its reply latency) plus `delay_ms` (a
        /// reply delay) before the reply left; `applied` as in `reply_dropped`. Recorded after
        /// the store served it, as the reply's hold begins.
        Held { to: Who, before_ms: u64, after_ms: u64, delay_ms: u64, applied: bool } = "held",
        /// A request of `to` held by a latency fault in force as it arrived: the store's latency
        /// spike (`extra_ms`) or `to`'s own latency each way (`to_ms`, `from_ms`), read at that
        /// instant (W4 judges each inside its window).
        Slowed { to: Who, extra_ms: u64, to_ms: u64, from_ms: u64 } = "slowed",
        /// A request of `to` refused by a fault: the store's refusal window (`denied` false,
        /// `LOADING`) or an access denial of `to` (`NOPERM`), at the refusal's instant (W4).
        FaultRefused { to: Who, denied: bool } = "fault_refused",
        /// A write by `by` removed a pool's pending entry of `job` (value `entry`) without a
        /// guard naming the entry's own attempt and worker (`guards`: the write's, as text); the
        /// store node judges each removal as it applies it (`scenario::pool_owners`).
        PendingRemovedUnguarded { job: String, entry: String, guards: String, by: Who } = "pending_removed_unguarded",
        /// A write by `by` removed a pool's pending entry of `job` (value `entry`) fenced by that
        /// value alone, while the store's record of the job named the entry's attempt and worker:
        /// a live entry dropped as if stale (P113; `scenario::pool_owners`).
        PendingRemovedLive { job: String, entry: String, by: Who } = "pending_removed_live",
        /// A write to a pool's keep-alive map was applied at store time `now_ms`: `value` is the
        /// worker's keep-alive after it (`None`: deleted). What the store holds, as opposed to
        /// the `Keepalive` a worker emits before its write lands (or loses).
        KeepaliveWritten { worker: String, value: Option<String>, now_ms: u64 } = "keepalive_written",
        /// A compare-and-set by `by` on worker `worker`'s keep-alive, expecting `expected`, was
        /// refused: the store held `held`. `own`: `held` is what `by`'s last applied
        /// compare-and-set on that keep-alive wrote over `expected` (the store's own memory,
        /// forgotten at its boot): the writer's own landed beat, which it must know (P35).
        /// `landed`: `held` is the keep-alive value the store's last applied write of one (a
        /// beat, or the registration's first write) put there, whatever that write expected: a
        /// value of the worker's own that landed, which it knows or holds in doubt (P70).
        KeepaliveRefused { worker: String, expected: String, held: Option<String>, own: bool, landed: bool, by: Who } = "keepalive_refused",
        /// A beat by `by` (a compare-and-set writing a keep-alive value) expected worker
        /// `worker`'s keep-alive to hold the dead marker, whether or not it was `applied`: the
        /// worker took a cleaner's fence for its own value (P88).
        BeatOverDead { worker: String, applied: bool, by: Who } = "beat_over_dead",
        /// A transaction by `by` on a pool's job map was refused, and one of its guards expected
        /// `job`'s record to be `record`: what a worker's `stale_rejected` must follow (P11).
        JobGuardRefused { job: String, record: String, by: Who } = "job_guard_refused",
        /// A completion of `job`'s `attempt` by `worker` was refused, and the store holds that
        /// attempt's own tombstone: an earlier try landed (its reply was lost). P14: the
        /// worker must not be told its completion is stale.
        CompletionHeld { job: String, attempt: u64, worker: String, by: Who } = "completion_held",
        /// A transaction by `by` on a pool's job map applied and wrote `job`'s tombstone for
        /// `attempt` by `worker`: the job completed at the store, whether or not its worker
        /// learnt it (a reply lost, every retry's too: `complete_failed`). What the rules that
        /// follow a job's owner or its completion read as the job done (P1, P2, P59, P72).
        /// `completed_ms`: the store time the tombstone names, from which its dedup window
        /// counts (P93 judges it against the store's clock; 0 if unparsable).
        CompletionLanded { job: String, attempt: u64, worker: String, completed_ms: u64, by: Who } = "completion_landed",
        /// A transaction by `by` on a pool's job map applied and deleted `job`'s tombstone, which
        /// said the job completed at `completed_ms`, at the store's time `now_ms`: a dedup window
        /// ends, and the key is free for a second life (P84 judges it against the window).
        TombstoneDeleted { job: String, completed_ms: u64, now_ms: u64, by: Who } = "tombstone_deleted",
        /// A transaction by `by` on a pool's job map applied and left it holding both `job`'s
        /// record `record` and its tombstone `tombstone` (P86): a completed key added again
        /// inside its dedup window, or a completion that kept its record.
        RecordBesideTombstone { job: String, record: String, tombstone: String, by: Who } = "record_beside_tombstone",
        /// Node `by` removed worker `worker`'s cleanup lock `lock`, which node `writer` wrote: a
        /// cleaner released a lock it did not hold (P15).
        ForeignLockRemoved { worker: String, lock: String, writer: Who, by: Who } = "foreign_lock_removed",
        /// Node `by` removed worker `worker`'s cleanup lock (`lock`, None: none held) by a plain
        /// delete, without comparing it with its own (P71).
        CleanupLockDeletedBlind { worker: String, lock: Option<String>, by: Who } = "cleanup_lock_deleted_blind",
        /// Node `by` deleted `job`'s entry of a pool's completer map, the store's time `now_ms`,
        /// while the job map held its record (`record`) and its tombstone's completion time
        /// (`tomb_ms`, None: none): what P44 judges against the completer retention.
        CompletionEntryDeleted { job: String, record: bool, tomb_ms: Option<u64>, now_ms: u64, by: Who } = "completion_entry_deleted",
        /// Node `by` deleted worker `worker`'s keep-alive, `value`, without comparing it (P41).
        KeepaliveDeletedBlind { worker: String, value: Option<String>, by: Who } = "keepalive_deleted_blind",
        /// P52: node `by`'s cleanup of `worker` wrote its keep-alive (`what`: `fence`, the dead
        /// marker; `delete`, the marker removed) at store time `now_ms`, while the worker's
        /// cleanup lock held `lock` (`None`: no lock); `by` sent the write at `sent_us`.
        CleanupWrite { worker: String, what: String, lock: Option<String>, now_ms: u64, sent_us: u64, by: Who } = "cleanup_write",
        /// P49: `by` registered `worker` before the store ever had a keep-alive of it.
        RegisteredWithoutKeepalive { worker: String, by: Who } = "registered_without_keepalive",

        /// Node `by` deleted dead worker `worker`'s keep-alive while `jobs` (their records
        /// unchanged since the worker's fence) still named it (P18).
        CleanupLeftJobs { worker: String, jobs: Vec<String>, by: Who } = "cleanup_left_jobs",
        /// Node `by` deleted worker `worker`'s live keep-alive (its deregistration) while the
        /// records of `jobs` (at `attempts`, pairwise) still named it (P57).
        DeregisteredWithJobs { worker: String, jobs: Vec<String>, attempts: Vec<u64>, by: Who } = "deregistered_with_jobs",
        /// A transaction by `by` gave `job` an owner (its record now `record`) without writing
        /// the pending entry of that owner's attempt beside it (P32): nothing holds the new
        /// owner to its ack grace.
        OwnedWithoutPending { job: String, record: String, by: Who } = "owned_without_pending",
        /// A write by `by` to `map`/`key` the store refused answered that the key held `told`
        /// while it held `held` (L2): a refusal must say what refused it.
        RefusalMisreported { map: String, key: String, told: Option<String>, held: Option<String>, by: Who } = "refusal_misreported",
        /// A write `write` by `by` to `map`/`key`, which held `before`, came out `applied` with
        /// `after`, where its kind says otherwise (L6).
        WriteMisapplied { map: String, key: String, write: String, before: Option<String>, applied: bool, after: Option<String>, by: Who } = "write_misapplied",
        /// A scan slice of `map` from `cursor` (`count` asked) the store served to `by` was not
        /// the slice the map held (`what`; L8).
        ScanSliceWrong { map: String, cursor: String, count: u64, what: String, by: Who } = "scan_slice_wrong",
        /// A snapshot of `map` at `rev` the store served to `by` said `told` of whether the store
        /// restarted since the map's last commit; the store node's own record of its boots and
        /// of the map's revision at the last one says otherwise (L3).
        RestartMisreported { map: String, rev: u64, told: bool, by: Who } = "restart_misreported",
        /// The store refused `by`'s acquisition of `lease` with token `token` (`remaining_ms` left
        /// to the grant), where the grant it holds is `holder`'s with `valid_ms` left (L5).
        LeaseRefusalWrong { lease: String, token: String, remaining_ms: u64, holder: String, valid_ms: u64, by: Who } = "lease_refusal_wrong",
        /// The store refused `by`'s renewal or release (`op`) of `lease` by `token`, the token of
        /// the live grant it held when the call applied (read before it, at the same store
        /// instant; L7).
        LeaseOwnRefused { op: String, lease: String, token: String, by: Who } = "lease_own_refused",
        /// A `side` ("request" or "reply") of `to`'s call the store's faults owed `owed_ms` of hold
        /// (a node's latency, a reply delay: what `held` records) was held only `held_us` (W3).
        HoldShort { to: Who, side: String, held_us: u64, owed_ms: u64 } = "hold_short",
        /// A feed of `map` served to `by` lost a change without saying so (`why`; L4).
        FeedLost { map: String, why: String, by: Who } = "feed_lost",
        /// The store answered `by`'s acquisition of `lease` at store time `now_ms` against the
        /// quarantine it owed (S34): `refused` (with `remaining_ms` left) where the store node's
        /// own record says the quarantine ends in `from_ms`..=`until_ms`, or granted before
        /// `from_ms` (the end of the quarantine this boot's first acquisition of the lease began).
        QuarantineWrong { lease: String, refused: bool, remaining_ms: u64, now_ms: u64, from_ms: u64, until_ms: u64, by: Who } = "quarantine_wrong",
    }
}

/// One recorded event's payload.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ev {
    /// An event of the keel core.
    Core(observe::Event<'static>),
    /// The world and its nemesis.
    World(WorldEv),
    /// The store server.
    Server(ServerEv),
    /// A scenario's workload.
    App(crate::scenario::AppEv),
}

impl fmt::Display for Ev {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ev::Core(e) => e.fmt(f),
            Ev::World(e) => e.fmt(f),
            Ev::Server(e) => e.fmt(f),
            Ev::App(e) => e.fmt(f),
        }
    }
}

impl From<WorldEv> for Ev {
    fn from(e: WorldEv) -> Self {
        Ev::World(e)
    }
}

impl From<ServerEv> for Ev {
    fn from(e: ServerEv) -> Self {
        Ev::Server(e)
    }
}

/// One recorded event.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// Simulated microseconds since the run started.
    pub t_us: u64,
    /// The node it happened on.
    pub node: Who,
    /// What happened.
    pub ev: Ev,
}

impl Event {
    /// The core event, if it is one.
    pub fn core(&self) -> Option<&observe::Event<'static>> {
        match &self.ev {
            Ev::Core(e) => Some(e),
            _ => None,
        }
    }

    /// The world event, if it is one.
    pub fn world(&self) -> Option<&WorldEv> {
        match &self.ev {
            Ev::World(e) => Some(e),
            _ => None,
        }
    }

    /// One readable line (timelines and divergence reports; never hashed).
    pub fn line(&self) -> String {
        format!("{:>12.6}s {:<8} {}", self.t_us as f64 / 1e6, self.node.to_string(), self.ev)
    }
}

/// Shared, append-only history of a run.
#[derive(Clone, Default)]
pub struct History {
    inner: Arc<Mutex<HistoryInner>>,
}

#[derive(Default)]
struct HistoryInner {
    /// The simulated instant the history started, and the runtime's time to read it against.
    origin: Option<(tokio::time::Instant, crate::clock::GlobalTime)>,
    nodes: BTreeMap<madsim::task::NodeId, Who>,
    events: Vec<Event>,
    /// Keep nothing (`cargo sim bench --baseline` measures a run without its history).
    discard: bool,
}

/// Most events one run may record; past it the run fails loudly instead of eating memory.
pub const MAX_EVENTS: usize = 2_000_000;

impl History {
    /// A history that keeps nothing: for measuring what recording costs.
    pub fn discarding() -> Self {
        let h = History::default();
        h.lock().discard = true;
        h
    }

    /// A history with room for `events` events: a sweep sizes each run's history by the run
    /// before it on the same thread, so recording does not grow (copy, and fault in fresh
    /// pages for) a vector of thousands of events by doubling, seed after seed.
    pub fn with_capacity(events: usize) -> Self {
        let h = History::default();
        h.lock().events.reserve(events.min(MAX_EVENTS));
        h
    }

    /// Start the clock of the history at the current simulated instant.
    pub fn start(&self) {
        let global = crate::clock::GlobalTime::current();
        self.lock().origin = Some((global.now(), global));
    }

    fn lock(&self) -> MutexGuard<'_, HistoryInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Name the madsim node `id` (events emitted on it are tagged `who`).
    pub fn name_node(&self, id: madsim::task::NodeId, who: Who) {
        self.lock().nodes.insert(id, who);
    }

    /// Simulated microseconds since [`start`](History::start).
    /// Global instant `at` as µs from the history's origin (0 before it has one).
    pub fn us_at(&self, at: tokio::time::Instant) -> u64 {
        let inner = self.lock();
        let Some((origin, _)) = &inner.origin else { return 0 };
        u64::try_from(at.saturating_duration_since(*origin).as_micros()).unwrap_or(u64::MAX)
    }

    pub fn now_us(&self) -> u64 {
        let inner = self.lock();
        let Some((origin, global)) = &inner.origin else { return 0 };
        u64::try_from(global.now().saturating_duration_since(*origin).as_micros()).unwrap_or(u64::MAX)
    }

    /// Append an event of `node`.
    pub fn record(&self, node: Who, ev: impl Into<Ev>) {
        let t_us = self.now_us();
        self.push(Event { t_us, node, ev: ev.into() });
    }

    /// Append an event of the madsim node the calling task runs on.
    pub fn record_here(&self, ev: impl Into<Ev>) {
        let id = madsim::plugin::node();
        let node = self.lock().nodes.get(&id).copied().unwrap_or(Who::World);
        self.record(node, ev);
    }

    fn push(&self, e: Event) {
        let mut h = self.lock();
        if h.discard {
            return;
        }
        if h.events.len() < MAX_EVENTS {
            h.events.push(e);
        } else if h.events.len() == MAX_EVENTS {
            h.events.push(Event { t_us: e.t_us, node: Who::World, ev: Ev::World(WorldEv::HistoryFull {}) });
        }
    }

    /// Take every event recorded so far out of the history (the end of a run: no copy).
    pub fn take(&self) -> Vec<Event> {
        std::mem::take(&mut self.lock().events)
    }
}

/// The trace hasher: FNV-1a's xor-multiply step over whole words rather than bytes (derived
/// `Hash` writes integers as words). Stable across runs and processes of one build. Also the
/// scenarios' digests of whole maps (a byte loop over every entry was a seventh of a calm rmap
/// run).
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    const PRIME: u64 = 0x0100_0000_01b3;

    fn mix(&mut self, word: u64) {
        // The rotation carries high bits down, which a bare multiply never does.
        self.0 = (self.0 ^ word).wrapping_mul(Self::PRIME).rotate_left(29);
    }
}

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        // The length keeps "ab" + "" apart from "a" + "b".
        self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
    }
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.mix(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }
}

/// The run's trace hash: [`Fnv`] over the typed events as recorded (their derived `Hash`, a
/// compact binary encoding; no text is formatted).
pub fn trace_hash(events: &[Event]) -> u64 {
    let mut h = Fnv::default();
    for e in events {
        e.hash(&mut h);
    }
    h.finish()
}

/// The first index where two histories differ, with both lines (None if identical).
pub fn first_divergence(a: &[Event], b: &[Event]) -> Option<(usize, String, String)> {
    let n = a.len().max(b.len());
    (0..n).find(|&i| a.get(i) != b.get(i)).map(|i| {
        let line = |e: Option<&Event>| e.map_or_else(|| "<end>".into(), Event::line);
        (i, line(a.get(i)), line(b.get(i)))
    })
}

/// The observer the runner installs on a simulation's thread: records every core event.
pub struct Recorder {
    history: History,
}

impl Recorder {
    /// Record into `history`.
    pub fn new(history: History) -> Self {
        Recorder { history }
    }
}

impl Observer for Recorder {
    fn event(&self, e: &observe::Event<'_>) {
        self.history.record_here(Ev::Core(e.to_static()));
    }
}

/// Shorthands for checkers: the event as one part's type, if it is one.
impl Event {
    /// A lease event of the core.
    pub fn lease(&self) -> Option<&observe::LeaseEvent<'static>> {
        match &self.ev {
            Ev::Core(observe::Event::Lease(e)) => Some(e),
            _ => None,
        }
    }

    /// A replicated-map event of the core.
    pub fn rmap(&self) -> Option<&observe::RmapEvent<'static>> {
        match &self.ev {
            Ev::Core(observe::Event::Rmap(e)) => Some(e),
            _ => None,
        }
    }

    /// A pool event of the core.
    pub fn pool(&self) -> Option<&observe::PoolEvent<'static>> {
        match &self.ev {
            Ev::Core(observe::Event::Pool(e)) => Some(e),
            _ => None,
        }
    }

    /// A completer or subscription-manager event of the core.
    pub fn completer(&self) -> Option<&observe::CompleterEvent<'static>> {
        match &self.ev {
            Ev::Core(observe::Event::Completer(e)) => Some(e),
            _ => None,
        }
    }

    /// A store-server event.
    pub fn server(&self) -> Option<&ServerEv> {
        match &self.ev {
            Ev::Server(e) => Some(e),
            _ => None,
        }
    }

    /// A scenario workload event.
    pub fn app(&self) -> Option<&crate::scenario::AppEv> {
        match &self.ev {
            Ev::App(e) => Some(e),
            _ => None,
        }
    }
}

pub use keel_checks::plain;

/// The shared rules (`keel-checks`) read the simulator's history directly: no copy.
impl keel_checks::Entry for Event {
    type Node = Who;
    fn t_us(&self) -> u64 {
        self.t_us
    }
    fn node(&self) -> &Who {
        &self.node
    }
    fn keel(&self) -> Option<&observe::Event<'static>> {
        self.core()
    }
    fn fact(&self) -> Option<keel_checks::Fact> {
        use keel_checks::Fact;
        match self.world()? {
            WorldEv::NodeStart {} => Some(Fact::NodeStart),
            WorldEv::NodeCrash {} => Some(Fact::NodeCrash),
            WorldEv::StoreCrash { data_loss: true } => Some(Fact::StoreLostData),
            WorldEv::StoreRestart {} => Some(Fact::StoreUp),
            _ => None,
        }
    }
    fn freed_key(&self) -> Option<&str> {
        match self.server()? {
            ServerEv::TombstoneDeleted { job, .. } => Some(job),
            _ => None,
        }
    }
}
