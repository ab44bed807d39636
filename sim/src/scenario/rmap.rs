//! The replicated map scenario (SPEC §4, R1–R4): every node runs a `ReplicatedMap` of one map,
//! writes to it, reads it and calls `set_and_wait` (some calls cancelled on purpose), under
//! store crashes with and without data loss, feed disconnects, partitions, pauses and restarts.
//!
//! Writes stop at the heal; after `CONVERGE_MS` every live replica must equal the store.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use keel::clock::Clock;
use keel::mutants::Mutant;
use keel::observe::{Field, ResyncReason, RmapEvent, events};
use keel::rmap::{ReplicatedMap, RmapConfig, RmapError};
use keel::store::{MapSnapshot, Store};
use madsim::rand::Rng;

use super::{AppEv, RunView};
use crate::check::{Coverage, Span, Violation};
use crate::harness::Sim;
use crate::history::{Event, ServerEv, Who, WorldEv};
use crate::net::SimStore;
use crate::plan::{FaultKind, PlanSpec};
use crate::world::{NodeCtx, NodeMain};

/// How a `set_and_wait` call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SawError {
    /// A store error.
    Store,
    /// The map closed.
    Closed,
    /// The call was cancelled.
    Cancelled,
    /// The store lost the write.
    DataLost,
    /// Anything else.
    Other,
}

impl Field for SawError {
    type Static = SawError;
    fn to_static(&self) -> Self {
        *self
    }
    fn show(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

events! {
    /// What the replicated map scenario's workload recorded.
    pub enum Rec {
        /// A `set_and_wait` call started; `until`: with a token of the caller's
        /// (`set_and_wait_until`, cancelled by the node's stop).
        SawStart { id: String, until: bool } = "saw_start",
        /// A `set_and_wait` call returned the write's revision `rev`; right after, the replica was
        /// at `replica_rev` and had (`has_key`) the call's key.
        SawDone { id: String, rev: u64, replica_rev: u64, has_key: bool } = "saw_done",
        /// A `set_and_wait` call failed.
        SawErr { id: String, error: SawError } = "saw_err",
        /// A `set_and_wait` call failed `DataLost` naming revision `rev` (recorded just before
        /// its `SawErr`).
        SawLost { id: String, rev: u64 } = "saw_lost",
        /// A `set_and_wait` call failed `DataLost` while the store held its write.
        SawLostKept { id: String } = "saw_lost_kept",
        /// A `set_and_wait` caller was descheduled for `ms` after its first poll.
        SawDescheduled { id: String, ms: u64 } = "saw_descheduled",
        /// A `set_and_wait` call was cut short by the workload.
        SawCancelled { id: String } = "saw_cancelled",
        /// R18: a plain write failed with a timeout `took_us` after it was sent, short of the
        /// map's op timeout.
        /// `sent_us`: when it was sent, in global time (a backward jump of the node's clock
        /// during the call shortens what the node's clock measured).
        WriteTimedOutEarly { took_us: u64, sent_us: u64 } = "write_timed_out_early",
        /// R32: a plain write failed with an error that says nothing was applied (`outcome()`
        /// `NotApplied`) `took_us` after it was sent, its whole op timeout or more: past it only
        /// keel's own cut ends a call, and the request went out. `sent_us`: when it was sent, in
        /// global time.
        WriteNotAppliedLate { took_us: u64, sent_us: u64, error: String } = "write_not_applied_late",
        /// R33: the map's point reads disagreed with its snapshot read in the same poll (no
        /// await between, so one replica state), or a call was refused as over a limit it was
        /// under: `what` names the call and both answers.
        ReadDisagrees { what: String } = "read_disagrees",
        /// A reader probe: the replica's revision, its `syncs()`, its `subscribers()` (`subs`)
        /// and the subscriptions the node's tasks hold (`held`), its `waiters()` (R27).
        Probe { rev: u64, syncs: u64, subs: u64, held: u64, waiters: u64 } = "probe",
        /// The application awaits `joined()` (R14).
        JoinAwaited {} = "join_awaited",
        /// `joined()` returned `rev` (`ok`; else an error); right after, the map said it was
        /// joined (`loaded`), and held `keys` keys where its snapshot held `snapshot_keys`.
        JoinReturned { ok: bool, rev: u64, loaded: bool, keys: u64, snapshot_keys: u64 } = "join_returned",
        /// The replica beside the store, after quiescence.
        R2 {
            rev: u64,
            digest: u64,
            keys: usize,
            store_rev: u64,
            store_digest: u64,
            store_keys: usize,
            waiters: usize,
        } = "r2",
        /// The map stopped with `waiters` left.
        MapStopped { waiters: usize } = "map_stopped",
        /// R26: the node's `map.stop()` returned (recorded in the poll it returns in).
        StopReturned {} = "stop_returned",
        /// R22: a `set_and_wait` called after the map stopped returned `outcome` (`closed`, or
        /// what else it returned), and the store then held its write (`written`); a
        /// subscription made then ended at its first poll (`sub_ended`), and `joined()`
        /// answered at its first poll with `join` (`ok`, `closed`, or `waits`).
        LateCall { outcome: String, written: bool, sub_ended: bool, join: String } = "late_call",
        /// Subscriber `sub` received a change of `key` at revision `rev` after one at `last`
        /// (R5: revisions go back), or a second time since its revisions last went back
        /// (`again`: R5, a duplicate).
        SubDisorder { sub: String, key: String, rev: u64, last: u64, again: bool } = "sub_disorder",
        /// Subscriber `sub` received a change of `key` at revision `rev` right after one at
        /// `last` < `rev` − 1, its subscription having dropped `dropped` changes so far: the
        /// revisions between are accounted for by drops or a resync of the map, or R5 (skipped).
        SubJump { sub: String, key: String, rev: u64, last: u64, dropped: u64 } = "sub_jump",
        /// Subscriber `sub` subscribed (recorded in the same poll, so every change the map offers
        /// its subscribers after this event is offered to `sub` too: R7 counts them).
        SubStart { sub: String } = "sub_start",
        /// Subscriber `sub` ended (the map stopped): `received` changes, `dropped` for a full
        /// buffer; `mirror` is the digest of its picture of the map (the replica when it
        /// subscribed, then every change it got), `replica` the digest of its map's replica then
        /// (R5: equal when nothing was dropped).
        SubEnd { sub: String, received: u64, dropped: u64, mirror: u64, replica: u64 } = "sub_end",
        /// R21: after a freeze subscriber `sub` found `held` changes buffered, with `dropped`
        /// counted during the freeze, against the configured `buffer` (recorded only when they
        /// disagree).
        SubBufferHeld { sub: String, held: u64, dropped: u64, buffer: u64 } = "sub_buffer_held",
        /// Subscriber `sub`, having dropped nothing, caught up with its map: its feed empty and
        /// the replica at `rev`, the revision of the last change it got; `mirror` and `replica`
        /// as in `SubEnd` (R5: equal). Taken at most every [`SUB_CHECK_MS`] per subscriber.
        SubCaughtUp { sub: String, rev: u64, mirror: u64, replica: u64 } = "sub_caught_up",
    }
}

/// keel's default `max_subscribers` and `max_waiters` (the scenario sets neither; R33).
const DEFAULT_MAX_SUBSCRIBERS: usize = 64;
const DEFAULT_MAX_WAITERS: usize = 10_000;

pub(super) fn rec(e: &Event) -> Option<&Rec> {
    match e.app() {
        Some(AppEv::Rmap(r)) => Some(r),
        _ => None,
    }
}

const MAP: &str = "routes";
/// After the heal, time by which every replica must equal the store (R2) and every
/// `set_and_wait` must have returned (R3).
const CONVERGE_MS: u64 = 4_000;
/// Period of the reader probe; a live, unpaused node whose probes stop for longer than
/// `R1_GAP_MS` has a blocked reader (R1).
const PROBE_MS: u64 = 250;
/// How often a subscriber that caught up with its map compares its picture with the replica (R5
/// at the instant): a copy of the replica each time, so not at every change.
const SUB_CHECK_MS: u64 = 100;
/// Each subscriber's buffer: a subscriber frozen for a second overflows it.
const SUB_BUFFER: usize = 64;
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
    /// Each map's anti-entropy period (R12). `rmapae` sets it; `rmap` keeps the maps without
    /// one, so its schedules (and the corpus plans of its narrowest mutants) stay as they were.
    pub anti_entropy: Option<Duration>,
    /// Nodes' clocks drift and jump (`rmapclock`): keel's map times its calls and waits on the
    /// clock it is given, so a timeout armed on the runtime's timer instead shows only when the
    /// two disagree (blind-spot hunt 33 B #24). `rmap` keeps true clocks, so its schedules stay.
    pub clock_faults: bool,
}

impl Default for RmapScenario {
    fn default() -> Self {
        RmapScenario { nodes: 4, window_ms: 20_000, hot_keys: 24, anti_entropy: None, clock_faults: false }
    }
}

impl RmapScenario {
    /// The `rmapae` scenario: every map checks itself against the store every 1.5 s (R12).
    pub fn with_anti_entropy() -> Self {
        RmapScenario { anti_entropy: Some(Duration::from_millis(1_500)), ..RmapScenario::default() }
    }

    /// The `rmapclock` scenario: the nodes' clocks drift within the bound and jump.
    pub fn with_clock_faults() -> Self {
        RmapScenario { clock_faults: true, ..RmapScenario::default() }
    }

    fn name(&self) -> &'static str {
        match (self.anti_entropy.is_some(), self.clock_faults) {
            (_, true) => "rmapclock",
            (true, false) => "rmapae",
            (false, false) => "rmap",
        }
    }
}

/// R1 on the apply loop: keel's reads never wait for a lock (the replica's lock is never held
/// across an `.await`), so a blocked apply loop does not stall a reader the way pulse's did; it
/// freezes every read at a stale revision instead. An apply step (from `Applied` to `Notified`:
/// handing the change to waiters and subscribers) that takes longer than `R1_GAP_MS` of the
/// node's unfrozen time is that stall.
fn apply_stall(run: &RunView<'_>, node: Who, since: u64, until: u64, rev: u64, what: &str) -> Option<Violation> {
    let frozen: u64 = run.timeline.frozen(node).map(|p| p.end.min(until).saturating_sub(p.start.max(since))).sum();
    let busy = until.saturating_sub(since).saturating_sub(frozen);
    (busy > R1_GAP_MS * 1000).then(|| {
        Violation::new(
            "R1",
            until,
            format!(
                "{node}: apply loop {what} for {:.3}s handing out change {rev} (since {:.3}s): every read is frozen at a stale revision",
                busy as f64 / 1e6,
                since as f64 / 1e6
            ),
        )
    })
}

/// A digest of a replica's or the store's entries: the trace hasher's word-wise FNV over each
/// key and value (each write ends with its length, so `ab=` and `a=b` differ).
fn digest<'a>(entries: impl Iterator<Item = (&'a String, &'a String)>) -> u64 {
    use std::hash::Hasher;
    let mut h = crate::history::Fnv::default();
    for (k, v) in entries {
        h.write(k.as_bytes());
        h.write(v.as_bytes());
    }
    h.finish()
}

/// [`digest`] of a whole map snapshot: its entries, its seedings and its restart flag (a
/// converged replica is the store's own snapshot, not only its entries: round 16 #8, a load
/// that kept the replica's old seedings).
fn snapshot_digest(s: &MapSnapshot) -> u64 {
    let seedings = s.reseeds.iter().map(|r| format!("{}>{}", r.kept, r.seed)).collect::<Vec<_>>().join(",");
    let meta = [("reseeds".to_owned(), seedings), ("restarted".to_owned(), s.restarted_since_commit.to_string())];
    digest(s.entries.iter().chain(meta.iter().map(|(k, v)| (k, v))))
}

fn rand_ms(lo: u64, hi: u64) -> Duration {
    Duration::from_millis(madsim::rand::thread_rng().gen_range(lo..hi))
}

struct Node {
    ctx: NodeCtx,
    map: ReplicatedMap<SimStore>,
    window_end_us: u64,
    hot_keys: u32,
    /// The map's op timeout (R18).
    op_timeout: Duration,
    /// Subscriptions this node's tasks hold now (R19).
    live_subs: std::sync::atomic::AtomicU64,
}

/// Counts a subscription held by one of the node's tasks, while it holds it (R19).
struct Held<'a>(&'a std::sync::atomic::AtomicU64);

impl<'a> Held<'a> {
    fn new(n: &'a std::sync::atomic::AtomicU64) -> Held<'a> {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Held(n)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
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
            let (sent, sent_us) = (self.ctx.clock.now(), self.ctx.history.now_us());
            let r = match op {
                0..70 => self.map.set(&key, &value).await,
                70..80 => self.map.delete(&key).await,
                80..90 => match self.read_agreeing(&key) {
                    Some(old) => self.map.compare_and_set(&key, &old, &value).await,
                    None => self.map.set_if_absent(&key, &value).await,
                },
                90..95 => self.map.append(&key, [value.as_str()]).await,
                _ => self.map.remove(&key, [value.as_str()]).await,
            };
            // R18: a write that timed out waited its whole op timeout, on this node's clock (the
            // one keel's timer reads, so no rate to convert).
            if let Err(RmapError::Store(keel::StoreError::Timeout { .. })) = r {
                let took_us = self.ctx.clock.now().saturating_duration_since(sent).as_micros() as u64;
                if took_us + 1_000 < self.op_timeout.as_micros() as u64 {
                    self.ctx.record(Rec::WriteTimedOutEarly { took_us, sent_us });
                }
            }
            // R32: a write answered "not applied" (refused, or never sent) is answered before
            // its op timeout; one that ran the whole timeout was cut by keel with its request out.
            if let Err(RmapError::Store(e)) = &r
                && e.outcome() == keel::Outcome::NotApplied
            {
                let took_us = self.ctx.clock.now().saturating_duration_since(sent).as_micros() as u64;
                if took_us >= self.op_timeout.as_micros() as u64 {
                    self.ctx.record(Rec::WriteNotAppliedLate { took_us, sent_us, error: e.to_string() });
                }
            }
        }
    }

    /// R33: `get(key)`, with `keys()`, `len()`, `is_empty()` and `revision()` read in the same
    /// poll as `snapshot()` (no await between, and the apply loop is another task: one replica
    /// state) must agree with it; a disagreement is recorded. Returns what `get` answered.
    fn read_agreeing(&self, key: &str) -> Option<String> {
        let got = self.map.get(key);
        let (keys, len, empty, rev) = (self.map.keys(), self.map.len(), self.map.is_empty(), self.map.revision());
        let snap = self.map.snapshot();
        let mut what = Vec::new();
        if got.as_ref() != snap.entries.get(key) {
            what.push(format!("get({key:?}) = {got:?} where the snapshot holds {:?}", snap.entries.get(key)));
        }
        if !keys.iter().eq(snap.entries.keys()) {
            what.push(format!("keys() has {} keys where the snapshot holds {}", keys.len(), snap.entries.len()));
        }
        if len != snap.entries.len() || empty != snap.entries.is_empty() {
            what.push(format!(
                "len() = {len}, is_empty() = {empty} where the snapshot holds {} keys",
                snap.entries.len()
            ));
        }
        if rev != snap.rev {
            what.push(format!("revision() = {rev} where the snapshot is at {}", snap.rev));
        }
        if !what.is_empty() {
            self.ctx.record(Rec::ReadDisagrees { what: what.join("; ") });
        }
        got
    }

    /// `set_and_wait` on unique keys: most calls run to completion, some are cut short.
    async fn waiter(self: Arc<Self>, lane: u32) {
        let mut n = 0u64;
        while self.writing() && self.pause(rand_ms(300, 2_500)).await {
            n += 1;
            let id = format!("{}-{lane}-{n}", self.ctx.name);
            let key = format!("w-{id}");
            let cut = madsim::rand::thread_rng().gen_bool(0.3).then(|| rand_ms(1, 12));
            // Drawn before the record (the same draws in the same order as when drawn in the match).
            let descheduled = cut.is_none() && madsim::rand::thread_rng().gen_bool(0.25);
            let until = cut.is_none() && (descheduled || lane != 1);
            self.ctx.record(Rec::SawStart { id: id.clone(), until });
            let r = match cut {
                None if descheduled => {
                    // A caller descheduled mid-call: polled once, then left alone for a while
                    // (its write may land and its waiter be woken meanwhile), then awaited.
                    let call = self.map.set_and_wait_until(&key, &id, &self.ctx.shutdown);
                    tokio::pin!(call);
                    match futures::poll!(call.as_mut()) {
                        std::task::Poll::Ready(r) => Some(r),
                        std::task::Poll::Pending => {
                            let d = rand_ms(20, 400);
                            self.ctx.clock.sleep(d).await;
                            self.ctx.record(Rec::SawDescheduled { id: id.clone(), ms: d.as_millis() as u64 });
                            Some(call.await)
                        }
                    }
                }
                // Lane 1 waits on the map alone: its node's stop ends the call through the map's
                // own stop (`Closed`, R20), not through a token of the caller's.
                None if lane == 1 => Some(self.map.set_and_wait(&key, &id).await),
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
                    self.ctx.record(Rec::SawDone { id, rev, replica_rev, has_key: has });
                }
                Some(Err(e)) => {
                    let error = match e {
                        RmapError::Store(_) => SawError::Store,
                        RmapError::Closed => SawError::Closed,
                        RmapError::Cancelled => SawError::Cancelled,
                        RmapError::DataLost { rev } => {
                            self.ctx.record(Rec::SawLost { id: id.clone(), rev });
                            SawError::DataLost
                        }
                        RmapError::TooManyWaiters => {
                            // R33: the scenario's waiter lanes stay far under the default limit.
                            let waiting = self.map.waiters();
                            if waiting < DEFAULT_MAX_WAITERS {
                                self.ctx.record(Rec::ReadDisagrees {
                                    what: format!("set_and_wait refused TooManyWaiters with {waiting} waiters registered, under the limit of {DEFAULT_MAX_WAITERS}"),
                                });
                            }
                            SawError::Other
                        }
                        _ => SawError::Other,
                    };
                    // R3 in runs that lose data too: the store itself, read in place at this
                    // instant (no network, no yield), must not hold the write called lost. Only
                    // this call writes its key, unless an earlier life of the node used its id
                    // (the check then skips it).
                    let kept = error == SawError::DataLost
                        && self
                            .ctx
                            .store_data()
                            .map_get(MAP, &key)
                            .now_or_never()
                            .is_some_and(|r| matches!(r, Ok((Some(v), _)) if v == id));
                    if kept {
                        self.ctx.record(Rec::SawLostKept { id: id.clone() });
                    }
                    self.ctx.record(Rec::SawErr { id, error });
                }
                None => self.ctx.record(Rec::SawCancelled { id }),
            }
        }
    }

    /// The application's wait for the map to join (R14): `joined()` awaited from the start, and
    /// what the map says right after it returned.
    async fn joiner(self: Arc<Self>) {
        self.ctx.record(Rec::JoinAwaited {});
        let r = self.map.joined().await;
        let (loaded, keys, snapshot_keys) =
            (self.map.is_joined(), self.map.len() as u64, self.map.snapshot().entries.len() as u64);
        let (ok, rev) = match r {
            Ok(rev) => (true, rev),
            Err(_) => (false, 0),
        };
        self.ctx.record(Rec::JoinReturned { ok, rev, loaded, keys, snapshot_keys });
    }

    /// A change subscriber (R5): revisions never go back and no change arrives twice; a
    /// `frozen` one stops reading for 0.5–2 s now and then, so its buffer overflows (drops are
    /// counted, never waited for).
    async fn subscriber(self: Arc<Self>, sub: &'static str, frozen: bool) {
        let mut feed = match self.map.subscribe() {
            Ok(feed) => feed,
            Err(e) => {
                // R33: the scenario's few subscriptions per node stay far under the default
                // limit (64), so a refusal as over it is a false answer.
                if matches!(e, RmapError::TooManySubscribers) && self.map.subscribers() < DEFAULT_MAX_SUBSCRIBERS {
                    let live = self.map.subscribers();
                    self.ctx.record(Rec::ReadDisagrees {
                        what: format!("subscribe() refused TooManySubscribers with {live} live subscriptions, under the limit of {DEFAULT_MAX_SUBSCRIBERS}"),
                    });
                }
                return;
            }
        };
        let _held = Held::new(&self.live_subs);
        self.ctx.record(Rec::SubStart { sub: sub.into() });
        // Read in the same poll as the subscription (no await between, and the apply loop is
        // another task): the mirror starts exactly where the feed does.
        let mut mirror = self.map.snapshot().entries;
        let mut order = SubOrder::default();
        let mut received = 0u64;
        let mut next_check_us = 0u64;
        while let Some(c) = feed.recv().await {
            received += 1;
            match &c.value {
                Some(v) => mirror.insert(c.key.clone(), v.clone()),
                None => mirror.remove(&c.key),
            };
            if let Some(r) = order.see(sub, &c.key, c.rev, feed.dropped()) {
                self.ctx.record(r);
            }
            // R5 at the instant: caught up (nothing left in the feed, the replica no further than
            // this change) with nothing dropped, the picture is the replica, so a resync's repairs
            // must have reached it (not only at the end, when later writes hid them). Read in
            // this poll, no await: the check leaves the run's schedule as it was.
            let now_us = self.ctx.history.now_us();
            if feed.dropped() == 0 && feed.pending() == 0 && now_us >= next_check_us && self.map.revision() == c.rev {
                next_check_us = now_us + SUB_CHECK_MS * 1000;
                let replica = digest(self.map.snapshot().entries.iter());
                let mine = digest(mirror.iter());
                self.ctx.record(Rec::SubCaughtUp { sub: sub.into(), rev: c.rev, mirror: mine, replica });
            }
            if frozen && madsim::rand::thread_rng().gen_bool(0.01) {
                let d = rand_ms(500, 2_000);
                let before = feed.dropped();
                self.ctx.clock.sleep(d).await;
                // R21: the buffer holds what the config asked (`subscriber_buffer`), no more, and
                // all of it once the map had to drop (nothing was read since the first drop).
                let (held, dropped) = (feed.pending(), feed.dropped() - before);
                if held > SUB_BUFFER || (dropped > 0 && held != SUB_BUFFER) {
                    let (held, buffer) = (held as u64, SUB_BUFFER as u64);
                    self.ctx.record(Rec::SubBufferHeld { sub: sub.into(), held, dropped, buffer });
                }
            }
        }
        let replica = digest(self.map.snapshot().entries.iter());
        let (dropped, mirror) = (feed.dropped(), digest(mirror.iter()));
        self.ctx.record(Rec::SubEnd { sub: sub.into(), received, dropped, mirror, replica });
    }

    /// A subscriber that comes and goes: now and then it subscribes, reads a few changes for a
    /// while, and drops its subscription (R19: `subscribers()` forgets it).
    async fn brief_subscriber(self: Arc<Self>) {
        while self.writing() && self.pause(rand_ms(200, 1_500)).await {
            let Ok(mut feed) = self.map.subscribe() else { continue };
            let _held = Held::new(&self.live_subs);
            let (reads, d) = (madsim::rand::thread_rng().gen_range(1..20), rand_ms(50, 300));
            let until = self.ctx.clock.now() + d;
            for _ in 0..reads {
                tokio::select! {
                    biased; // fixed poll order: tokio's per-thread select RNG would break replay
                    c = feed.recv() => if c.is_none() { break },
                    _ = self.ctx.clock.sleep_until(until) => break,
                }
            }
        }
    }

    /// Reader probes (R1), and after the heal + `CONVERGE_MS` the store view beside the
    /// replica's (R2, R4).
    async fn probe(self: Arc<Self>, store: SimStore, converge_at_us: u64) {
        while self.pause(Duration::from_millis(PROBE_MS)).await {
            // The revision alone: a probe before the convergence point judges only that (R1),
            // and copying the whole replica for it was a twentieth of an rmap run.
            let (rev, syncs) = (self.map.revision(), self.map.syncs());
            let (subs, held) =
                (self.map.subscribers() as u64, self.live_subs.load(std::sync::atomic::Ordering::Relaxed));
            let waiters = self.map.waiters();
            if self.ctx.history.now_us() < converge_at_us {
                self.ctx.record(Rec::Probe { rev, syncs, subs, held, waiters: waiters as u64 });
                continue;
            }
            let Ok(truth) = store.map_snapshot(MAP).await else {
                self.ctx.record(Rec::Probe { rev, syncs, subs, held, waiters: waiters as u64 });
                continue;
            };
            // Re-read the replica after the store answered: nothing is written any more.
            let snap = self.map.snapshot();
            self.ctx.record(Rec::R2 {
                rev: snap.rev,
                digest: snapshot_digest(&snap),
                keys: snap.entries.len(),
                store_rev: truth.rev,
                store_digest: snapshot_digest(&truth),
                store_keys: truth.entries.len(),
                waiters,
            });
        }
    }
}

/// What a change subscriber judges at each change it receives (R5).
#[derive(Default)]
struct SubOrder {
    /// Revision of the last change received (0: none yet).
    last: u64,
    /// Keys received at revision `last` (a transaction changes several under one). Revisions
    /// only grow until they go back (which starts over), so a change seen before at a lower
    /// revision cannot come again at a higher one: these are the only ones to compare.
    at_last: Vec<String>,
}

impl SubOrder {
    /// A change of `key` at `rev`, the subscription having dropped `dropped` changes so far.
    /// Revisions never go back (a resync after a data loss excuses it, in the checker); a change
    /// never arrives twice; and a jump over revisions is recorded for the checker, which
    /// accounts for it (`subscribers_in_order`).
    fn see(&mut self, sub: &str, key: &str, rev: u64, dropped: u64) -> Option<Rec> {
        let last = std::mem::replace(&mut self.last, rev);
        if rev != last {
            self.at_last.clear();
        }
        if rev < last {
            // Revisions went back: a bug, or a resync after the store lost its data (its
            // revisions restart, so the changes seen so far say nothing about the next ones).
            return Some(Rec::SubDisorder { sub: sub.into(), key: key.into(), rev, last, again: false });
        }
        if self.at_last.iter().any(|k| k == key) {
            return Some(Rec::SubDisorder { sub: sub.into(), key: key.into(), rev, last, again: true });
        }
        self.at_last.push(key.to_owned());
        (last > 0 && rev > last + 1).then(|| Rec::SubJump { sub: sub.into(), key: key.into(), rev, last, dropped })
    }
}

/// How soon a map's stop ends a prompt subscription, in simulated time: keel closes every
/// subscription as it stops, before its `stopped`, and a subscriber that reads at once sees the
/// end in the same instant.
const SUB_END_SLACK_US: u64 = 2_000;

/// R9's other half: a map's stop ends its subscriptions. When a node's map stops (`stopped`),
/// its `prompt` subscriber (which never stops reading; the `frozen` one may sleep through the
/// end) ends within [`SUB_END_SLACK_US`] of running time, frozen time not counted: its `recv`
/// returns `None` once it has read what was buffered. Judged at the subscriber's end, at a crash
/// or restart past the limit, or at the end of the run. A stop that leaves its subscriptions
/// open (blind-spot hunt, round 11, #4) leaves every consumer of the map waiting forever for a
/// change that cannot come.
fn subscriptions_end_at_stop(run: &RunView<'_>) -> Vec<Violation> {
    // node → the map stopped at, and the limit for its prompt subscriber's end
    let mut open: BTreeMap<Who, (u64, u64)> = BTreeMap::new();
    let mut subscribed: BTreeSet<Who> = BTreeSet::new();
    // Nodes whose map stopped in their current life: a subscription ends only after that.
    let mut stopped: BTreeSet<Who> = BTreeSet::new();
    let late = |n: Who, (at, due): (u64, u64)| {
        Violation::new(
            "R9",
            due,
            format!(
                "{n}: the map stopped at {:.3}s and its prompt subscription had not ended {} µs later: a stop that leaves its subscriptions open",
                at as f64 / 1e6,
                SUB_END_SLACK_US
            ),
        )
    };
    let mut v = Vec::new();
    for e in run.events {
        let n = e.node;
        match (e.world(), e.rmap(), rec(e)) {
            (Some(WorldEv::NodeStart {} | WorldEv::NodeCrash {}), ..) => {
                v.extend(open.remove(&n).filter(|o| e.t_us > o.1).map(|o| late(n, o)));
                subscribed.remove(&n);
                stopped.remove(&n);
            }
            // The early side: a subscription whose feed ends while its map runs tells its
            // consumer that no change will come while changes still do.
            (.., Some(Rec::SubEnd { sub, received, .. })) if !stopped.contains(&n) => {
                v.push(Violation::new(
                    "R9",
                    e.t_us,
                    format!(
                        "{n}: the {sub} subscription's feed ended after {received} changes while its map ran (no `stopped`): a consumer told the map stopped"
                    ),
                ));
                if sub == "prompt" {
                    subscribed.remove(&n);
                }
            }
            (_, Some(RmapEvent::Stopped { .. }), _) if !subscribed.contains(&n) => {
                stopped.insert(n);
            }
            (_, Some(RmapEvent::Stopped { .. }), _) if subscribed.contains(&n) => {
                stopped.insert(n);
                let frozen: Vec<_> = run.timeline.frozen(n).collect();
                open.insert(n, (e.t_us, keel_checks::reach(e.t_us, SUB_END_SLACK_US, &frozen)));
            }
            (.., Some(Rec::SubStart { sub })) if sub == "prompt" => {
                subscribed.insert(n);
            }
            (.., Some(Rec::SubEnd { sub, .. })) if sub == "prompt" => {
                subscribed.remove(&n);
                v.extend(open.remove(&n).filter(|o| e.t_us > o.1).map(|o| late(n, o)));
            }
            _ => {}
        }
    }
    v.extend(open.into_iter().filter(|(_, o)| run.end_us > o.1).map(|(n, o)| late(n, o)));
    v.truncate(20);
    v
}

/// R5: every subscriber sees changes in revision order, each once. A revision that goes back is
/// excused after a store data loss (revisions restart with the lost data); a duplicate never is.
/// And no change is skipped unannounced: one store lifetime numbers a map's changes
/// consecutively, so the revisions a subscriber jumps over are either a sync of its node's
/// map (a join or resync to a snapshot at `s`, `last < s ≤ rev`: the differences carry `s`) or
/// changes its subscription dropped, counted, each excusing one missing revision once (the
/// counter rises while the buffer is full, before the buffered changes are read, so drops are
/// a budget, not a position). And at the end, a subscriber that dropped nothing holds the
/// replica: its start snapshot plus every change it got equals its map's replica when the map
/// stopped (a resync's repairs reach subscribers too).
fn subscribers_in_order(events: &[Event]) -> Vec<Violation> {
    let mut lost_data = false;
    let mut v = Vec::new();
    // Per node: the revisions its map synced to; per (node, subscriber): drops accounted for.
    let mut syncs: BTreeMap<Who, Vec<u64>> = BTreeMap::new();
    let mut used: BTreeMap<(Who, &str), u64> = BTreeMap::new();
    for e in events {
        if matches!(e.world(), Some(WorldEv::StoreCrash { data_loss: true })) {
            lost_data = true;
        }
        if matches!(e.world(), Some(WorldEv::NodeStart {})) {
            syncs.remove(&e.node);
            used.retain(|(n, _), _| *n != e.node);
        }
        if let Some(RmapEvent::Joined { rev, .. } | RmapEvent::Resynced { rev, .. }) = e.rmap() {
            syncs.entry(e.node).or_default().push(*rev);
        }
        if let Some(Rec::SubDisorder { sub, key, rev, last, again }) = rec(e)
            && (*again || !lost_data)
        {
            let what = if *again { "a second time".to_owned() } else { format!("after revision {last}") };
            v.push(Violation::new("R5", e.t_us, format!("{}: subscriber {sub} got {key}@{rev} {what}", e.node)));
        }
        if let Some(Rec::SubCaughtUp { sub, rev, mirror, replica }) = rec(e)
            && mirror != replica
        {
            v.push(Violation::new(
                "R5",
                e.t_us,
                format!(
                    "{}: subscriber {sub} dropped nothing and caught up with its replica at revision {rev}, yet its picture of the map (the replica when it subscribed, then every change it got) is not the replica",
                    e.node
                ),
            ));
        }
        if let Some(Rec::SubEnd { sub, dropped: 0, mirror, replica, .. }) = rec(e)
            && mirror != replica
        {
            let what =
                "its picture of the map (the replica when it subscribed, then every change it got) is not the replica";
            v.push(Violation::new(
                "R5",
                e.t_us,
                format!("{}: subscriber {sub} dropped nothing, yet at the end {what}", e.node),
            ));
        }
        if let Some(Rec::SubJump { sub, key, rev, last, dropped }) = rec(e) {
            if syncs.get(&e.node).is_some_and(|s| s.iter().any(|s| last < s && s <= rev)) {
                continue;
            }
            let skipped = rev - last - 1;
            let used = used.entry((e.node, sub.as_str())).or_default();
            let unused = dropped.saturating_sub(*used);
            *used = used.saturating_add(skipped).min(*dropped);
            if skipped > unused {
                v.push(Violation::new(
                    "R5",
                    e.t_us,
                    format!(
                        "{}: subscriber {sub} got {key}@{rev} right after revision {last}: {skipped} skipped, {unused} drops unaccounted for, no sync in between",
                        e.node
                    ),
                ));
            }
        }
    }
    v.truncate(20);
    v
}

impl RmapScenario {
    /// The scenario on the public harness (what `cargo sim` runs).
    pub fn sim(self) -> Sim {
        let (main, judge, goals) = (self.node_main(), self.clone(), self.clone());
        super::on_harness(self.name(), &self.plan_spec(), self.op_timeout(), self.settle())
            .node(move |node| main(node.ctx().clone()))
            .check(move |run| judge.check(run.view))
            .sometimes_all(self.coverage_goals(), move |run| goals.coverage(run.view.events))
            .mutants(self.mutants())
    }

    fn plan_spec(&self) -> PlanSpec {
        let mut kinds = vec![
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
            FaultKind::ReplyDelay,
            FaultKind::NodeLatency,
            FaultKind::StoreRollback,
        ];
        if self.clock_faults {
            kinds.extend([FaultKind::ClockDrift, FaultKind::ClockJump]);
        }
        PlanSpec { nodes: self.nodes, kinds, window_ms: self.window_ms, unit_ms: 1000, drift_bound: 0.1 }
    }

    fn op_timeout(&self) -> Duration {
        Duration::from_millis(500)
    }

    fn settle(&self) -> Duration {
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
                    // A retry cap apart from the op timeout: with the two equal, code that takes
                    // one for the other is inert (blind-spot hunt, round 18, A #32).
                    .retry(Duration::from_millis(50), Duration::from_millis(400))
                    .subscriber_buffer(SUB_BUFFER)
                    .anti_entropy(this.anti_entropy)
                    .build()
                else {
                    ctx.record(WorldEv::SimError { error: "invalid rmap config".into() });
                    return;
                };
                let clock: Arc<dyn Clock> = Arc::new(ctx.clock.clone());
                let map = ReplicatedMap::builder(store, cfg).clock(clock).parent(&ctx.shutdown).start();
                let node = Arc::new(Node {
                    ctx: ctx.clone(),
                    map: map.clone(),
                    window_end_us: this.window_ms * 1000,
                    hot_keys: this.hot_keys,
                    op_timeout: this.op_timeout(),
                    live_subs: Default::default(),
                });
                let converge_at_us = (this.window_ms + CONVERGE_MS) * 1000;
                let tasks = vec![
                    tokio::spawn(node.clone().joiner()),
                    tokio::spawn(node.clone().writer()),
                    tokio::spawn(node.clone().waiter(0)),
                    tokio::spawn(node.clone().waiter(1)),
                    tokio::spawn(node.clone().probe(probe_store, converge_at_us)),
                    tokio::spawn(node.clone().subscriber("prompt", false)),
                    tokio::spawn(node.clone().subscriber("frozen", true)),
                    tokio::spawn(node.clone().brief_subscriber()),
                ];
                ctx.shutdown.cancelled().await;
                map.stop().await;
                ctx.record(Rec::StopReturned {});
                for t in tasks {
                    let _ = t.await;
                }
                ctx.record(Rec::MapStopped { waiters: map.waiters() });
                // R22: an application that calls the stopped map is told `Closed`, and nothing
                // of its call reaches the store (round 24 B #11: a waiter registered only after
                // its write, so the write landed and then the call said `Closed`).
                let key = format!("late-{}", ctx.name);
                let r = tokio::select! {
                    biased;
                    r = map.set_and_wait(&key, "late") => Some(r),
                    _ = ctx.clock.sleep(this.op_timeout() * 4) => None,
                };
                let outcome = match r {
                    Some(Err(RmapError::Closed)) => "closed".to_owned(),
                    Some(other) => format!("{other:?}"),
                    None => "no answer".to_owned(),
                };
                let written =
                    ctx.store_data().map_get(MAP, &key).now_or_never().is_some_and(|r| matches!(r, Ok((Some(_), _))));
                // A subscription of the stopped map ends at once, like every earlier one (keel's
                // own bug, MC226: it was added to a list nothing would end again), and
                // `joined()` answers at once.
                let sub_ended = match map.subscribe() {
                    Ok(mut sub) => matches!(sub.recv().now_or_never(), Some(None)),
                    Err(_) => false,
                };
                let join = match map.joined().now_or_never() {
                    Some(Ok(_)) => "ok",
                    Some(Err(_)) => "closed",
                    None => "waits",
                };
                ctx.record(Rec::LateCall { outcome, written, sub_ended, join: join.to_owned() });
            })
        })
    }

    fn check(&self, run: &RunView<'_>) -> Vec<Violation> {
        let (plan, events, heal_us, end_us) = (run.plan, run.events, run.heal_us, run.end_us);
        let mut v = Vec::new();
        // R21: a subscriber's buffer holds what its config asked (blind-spot hunt, round 23, B
        // #10, MC219: a buffer silently clamped to 32 drops with room the service paid for).
        v.extend(events.iter().filter_map(|e| match rec(e) {
            Some(Rec::SubBufferHeld { sub, held, dropped, buffer }) => Some(Violation::new(
                "R21",
                e.t_us,
                format!("{}: subscriber {sub}'s buffer held {held} changes after a freeze, with {dropped} dropped meanwhile, against a configured buffer of {buffer}", e.node),
            )),
            _ => None,
        }).take(20));
        // Without data loss, no set_and_wait fails DataLost.
        let lossless = !plan.loses_data();
        let converge_us = heal_us + CONVERGE_MS * 1000;
        // Per node: its last probe, pending calls, its last replica/store comparison.
        let mut last_probe: BTreeMap<Who, u64> = BTreeMap::new();
        // Per node: when its clock stalled (a backward jump) or ran beyond the drift bound
        // (`rmapclock`): the probe and the workload pace themselves on the node's clock, so a
        // stall delays them and shortens what they measure, by design.
        let out_of_bound = super::drift::out_of_bound(events, end_us);
        let stalls = |node: Who| out_of_bound.get(&node).map_or(&[][..], Vec::as_slice);
        let stalled = |node: Who, span: Span| stalls(node).iter().any(|s| s.overlap(&span).is_some());
        let mut pending: BTreeMap<(Who, &str), u64> = BTreeMap::new();
        let mut last_r2: BTreeMap<Who, (u64, &Rec)> = BTreeMap::new();
        let mut stopped: BTreeSet<Who> = BTreeSet::new();
        // Per node: the change its apply loop is applying (since, revision), until `Notified`.
        let mut applying: BTreeMap<Who, (u64, u64)> = BTreeMap::new();
        // node → the write revision of its last `wait_returned` (R16)
        let mut wait_returned: BTreeMap<Who, u64> = BTreeMap::new();
        // Per node and `set_and_wait` id: its calls so far, in every life of the node.
        let mut calls: BTreeMap<(Who, &str), u32> = BTreeMap::new();
        // (node, call) → whether it was given a token (R23's twin)
        let mut tokened: BTreeMap<(Who, &str), bool> = BTreeMap::new();
        // Per node: every revision its replica reached in its current life (joined, resynced,
        // applied): what a `DataLost` may name.
        let mut reached: BTreeMap<Who, BTreeSet<u64>> = BTreeMap::new();
        // The nodes whose map joined in their current life (R22).
        let mut joined: BTreeSet<Who> = BTreeSet::new();
        for e in events {
            let node = e.node;
            if let Some(w) = e.world() {
                if matches!(w, WorldEv::NodeStart {} | WorldEv::NodeCrash {}) {
                    applying.remove(&node);
                }
                match w {
                    WorldEv::NodeStart {} => {
                        last_probe.remove(&node);
                        reached.remove(&node);
                        joined.remove(&node);
                        pending.retain(|(n, _), _| *n != node);
                        last_r2.remove(&node);
                        stopped.remove(&node);
                    }
                    WorldEv::NodeCrash {} | WorldEv::NodeStop {} | WorldEv::NodePause {} => {
                        last_probe.remove(&node);
                    }
                    _ => {}
                }
                continue;
            }
            if let Some(
                RmapEvent::Applied { rev, .. } | RmapEvent::Joined { rev, .. } | RmapEvent::Resynced { rev, .. },
            ) = e.rmap()
            {
                reached.entry(node).or_default().insert(*rev);
            }
            match e.rmap() {
                Some(RmapEvent::Joined { .. }) => {
                    joined.insert(node);
                }
                Some(RmapEvent::Applied { rev, .. }) => {
                    applying.insert(node, (e.t_us, *rev));
                }
                Some(RmapEvent::WaitReturned { rev, .. }) => {
                    wait_returned.insert(node, *rev);
                }
                Some(RmapEvent::Notified { .. }) => {
                    if let Some((since, rev)) = applying.remove(&node) {
                        v.extend(apply_stall(run, node, since, e.t_us, rev, "was blocked"));
                    }
                }
                _ => {}
            }
            let Some(r) = rec(e) else { continue };
            match r {
                Rec::Probe { .. } | Rec::R2 { .. } => {
                    // R19: `subscribers()` counts the live subscriptions, the ones the node's
                    // tasks hold, read in the same poll.
                    if let Rec::Probe { subs, held, .. } = r
                        && subs != held
                    {
                        v.push(Violation::new(
                            "R19",
                            e.t_us,
                            format!(
                                "{node}: subscribers() said {subs} while the node's tasks held {held} subscriptions"
                            ),
                        ));
                    }
                    if let Some(prev) = last_probe.insert(node, e.t_us)
                        && (Span { start: prev, end: e.t_us }).len_outside(stalls(node)) > R1_GAP_MS * 1000
                    {
                        v.push(Violation::new(
                            "R1",
                            e.t_us,
                            format!("{node}: readers blocked for {:.3}s", (e.t_us - prev) as f64 / 1e6),
                        ));
                    }
                    if let Rec::R2 { .. } = r {
                        last_r2.insert(node, (e.t_us, r));
                    }
                }
                Rec::SawStart { id, until } => {
                    tokened.insert((node, id.as_str()), *until);
                    pending.insert((node, id), e.t_us);
                    *calls.entry((node, id)).or_default() += 1;
                }
                Rec::SawDone { id, rev, replica_rev, .. } => {
                    pending.remove(&(node, id.as_str()));
                    // R16: the call returns its write's revision, which keel's `wait_returned`
                    // (emitted in the same poll, just before the return) took from the store's
                    // reply to the write.
                    if let Some(&written) = wait_returned.get(&node)
                        && written != *rev
                    {
                        v.push(Violation::new(
                            "R16",
                            e.t_us,
                            format!(
                                "{node}: set_and_wait {id} returned revision {rev}, and its write was given {written}"
                            ),
                        ));
                    }
                    if replica_rev < rev {
                        v.push(Violation::new(
                            "R3",
                            e.t_us,
                            format!(
                                "{node}: set_and_wait {id} returned at replica revision {replica_rev} < its write's {rev}"
                            ),
                        ));
                    }
                }
                // R23: `Closed` means the map stopped, and only a stop asked in this life stops
                // it (round 25 B #18: a lost write reported as `Closed`, MC232).
                Rec::SawErr { id, error: SawError::Closed }
                    if run.timeline.life_at(node, e.t_us).and_then(|l| l.stop_requested).is_none_or(|s| s > e.t_us) =>
                {
                    pending.remove(&(node, id.as_str()));
                    v.push(Violation::new(
                        "R23",
                        e.t_us,
                        format!("{node}: set_and_wait {id} failed Closed, yet nothing asked its map to stop"),
                    ));
                }
                // R23's second twin (round 42, A #10): a call given a token (the node's, which a
                // stop cancels before it stops the map) hears it first and fails `Cancelled`; one
                // that fails `Closed` waited deaf to its caller's cancel until the map closed
                // (MC398: the token looked at once, before the call).
                Rec::SawErr { id, error: SawError::Closed } if tokened.get(&(node, id.as_str())) == Some(&true) => {
                    pending.remove(&(node, id.as_str()));
                    v.push(Violation::new(
                        "R23",
                        e.t_us,
                        format!("{node}: set_and_wait_until {id} failed Closed: its token, cancelled before the map stopped, went unheard"),
                    ));
                }
                // R23's twin: `Cancelled` means the caller's token fired: a call given none
                // (round 28 B #11: a stopped map's `Closed` reported as `Cancelled`), or one
                // whose token (the node's) was not cancelled in this life, cannot fail so.
                Rec::SawErr { id, error: SawError::Cancelled }
                    if !tokened.get(&(node, id.as_str())).copied().unwrap_or(true)
                        || run
                            .timeline
                            .life_at(node, e.t_us)
                            .and_then(|l| l.stop_requested)
                            .is_none_or(|s| s > e.t_us) =>
                {
                    pending.remove(&(node, id.as_str()));
                    v.push(Violation::new(
                        "R23",
                        e.t_us,
                        format!("{node}: set_and_wait {id} failed Cancelled, yet its caller cancelled nothing"),
                    ));
                }
                Rec::SawErr { id, error: SawError::DataLost } if lossless => {
                    pending.remove(&(node, id.as_str()));
                    v.push(Violation::new(
                        "R3",
                        e.t_us,
                        format!("{node}: set_and_wait {id} failed DataLost, yet the store lost no data"),
                    ));
                }
                // The store may hold an earlier life's write of the same id: judged only for an
                // id's first call.
                Rec::SawLostKept { id } if calls.get(&(node, id.as_str())) == Some(&1) => v.push(Violation::new(
                    "R3",
                    e.t_us,
                    format!("{node}: set_and_wait {id} failed DataLost while the store still holds its write"),
                )),
                // R3: a `DataLost` names where the replica mirrors the store again, a revision
                // it reached (the snapshot that showed the loss, or where it stood when a caller
                // armed late), never the lost write's own.
                Rec::SawLost { id, rev } if !reached.get(&node).is_some_and(|r| r.contains(rev)) => {
                    v.push(Violation::new(
                        "R3",
                        e.t_us,
                        format!(
                            "{node}: set_and_wait {id} failed DataLost at revision {rev}, a revision its replica never reached"
                        ),
                    ));
                }
                Rec::WriteTimedOutEarly { took_us, sent_us }
                    if !stalled(node, Span { start: *sent_us, end: e.t_us }) =>
                {
                    v.push(Violation::new(
                        "R18",
                        e.t_us,
                        format!(
                            "{node}: a write timed out {took_us} µs after it was sent, short of the map's op timeout"
                        ),
                    ))
                }
                // R32: frozen time, a stalled clock or one beyond its bound lets a refusal's
                // reply land past the deadline unseen; otherwise only keel's own cut ends a call
                // that late, and its request went out.
                Rec::WriteNotAppliedLate { took_us, sent_us, error }
                    if !stalled(node, Span { start: *sent_us, end: e.t_us })
                        && !run.timeline.frozen(node).any(|p| p.overlap(&Span { start: *sent_us, end: e.t_us }).is_some()) =>
                {
                    v.push(Violation::new(
                        "R32",
                        e.t_us,
                        format!(
                            "{node}: a write failed {took_us} µs after it was sent, its whole op timeout, with an error that says it was not applied ({error}): the request went out, so its outcome is unknown"
                        ),
                    ))
                }
                Rec::ReadDisagrees { .. }
                | Rec::SawDescheduled { .. }
                | Rec::WriteNotAppliedLate { .. }
                | Rec::JoinAwaited {}
                | Rec::StopReturned {}
                | Rec::JoinReturned { .. }
                | Rec::SawLost { .. }
                | Rec::SawLostKept { .. }
                | Rec::SubStart { .. }
                | Rec::SubDisorder { .. }
                | Rec::SubJump { .. }
                | Rec::SubCaughtUp { .. }
                | Rec::SubEnd { .. }
                | Rec::SubBufferHeld { .. }
                | Rec::WriteTimedOutEarly { .. } => {}
                Rec::SawErr { id, .. } | Rec::SawCancelled { id } => {
                    pending.remove(&(node, id.as_str()));
                }
                Rec::LateCall { outcome, written, sub_ended, join } => {
                    // `joined()` of a map that joined says so, stopped or not (round 24 B #34);
                    // one that never joined says `Closed`; neither waits.
                    let join_right = if joined.contains(&node) { join == "ok" } else { join == "closed" };
                    let mut wrong = Vec::new();
                    if outcome != "closed" || *written {
                        let landed = if *written { ", and its write reached the store" } else { "" };
                        wrong.push(format!("set_and_wait returned {outcome}{landed}"));
                    }
                    if !sub_ended {
                        wrong.push("a subscription did not end at once".to_owned());
                    }
                    if !join_right {
                        let had = if joined.contains(&node) { "had" } else { "had not" };
                        wrong.push(format!("joined() answered {join} where the map {had} joined"));
                    }
                    if !wrong.is_empty() {
                        v.push(Violation::new(
                            "R22",
                            e.t_us,
                            format!("{node}: on the stopped map, {}", wrong.join("; ")),
                        ));
                    }
                }
                Rec::MapStopped { waiters } => {
                    last_probe.remove(&node);
                    stopped.insert(node);
                    if *waiters != 0 {
                        v.push(Violation::new(
                            "R4",
                            e.t_us,
                            format!("{node}: {waiters} waiters left after the map stopped"),
                        ));
                    }
                }
            }
        }
        // Live at the end: its last life runs to the end, unstopped, and its map did not stop.
        let live = |node: Who| {
            run.timeline.lives(node).last().is_some_and(|l| l.end >= end_us && l.stop_requested.is_none())
                && !stopped.contains(&node)
        };
        // R1 at the end: a live, unfrozen node whose probes stopped.
        for (node, t) in &last_probe {
            if live(*node)
                && run.timeline.running_at(*node, end_us.saturating_sub(1))
                && (Span { start: *t, end: end_us }).len_outside(stalls(*node)) > R1_GAP_MS * 1000
            {
                v.push(Violation::new("R1", end_us, format!("{node}: readers blocked since {:.3}s", *t as f64 / 1e6)));
            }
        }
        // R1 at the end: a live node's apply loop still stuck in an apply step.
        for (node, (since, rev)) in &applying {
            if live(*node) {
                v.extend(apply_stall(run, *node, *since, end_us, *rev, "is still blocked"));
            }
        }
        // R3: nothing still waiting long after the heal.
        for ((node, id), start) in &pending {
            if live(*node) && end_us.saturating_sub((*start).max(heal_us)) > CONVERGE_MS * 1000 {
                v.push(Violation::new(
                    "R3",
                    end_us,
                    format!("{node}: set_and_wait {id} started at {:.3}s never returned", *start as f64 / 1e6),
                ));
            }
        }
        // R2 and R4 on the final probe of every live node.
        for node in run.timeline.nodes().filter(|n| live(*n)) {
            let Some(&(t, r)) = last_r2.get(&node).filter(|(t, _)| *t >= converge_us) else {
                v.push(Violation::new("R2", end_us, format!("{node}: no replica/store comparison after the heal")));
                continue;
            };
            let Rec::R2 { rev, digest, keys, store_rev, store_digest, store_keys, waiters } = r else { continue };
            if digest != store_digest || rev != store_rev {
                v.push(Violation::new(
                    "R2",
                    t,
                    format!(
                        "{node}: replica (rev {rev}, {keys} keys, digest {digest:016x} of its entries, seedings and restart flag) differs from the store (rev {store_rev}, {store_keys} keys, digest {store_digest:016x})"
                    ),
                ));
            }
            if *waiters != 0 {
                v.push(Violation::new("R4", t, format!("{node}: {waiters} waiters registered after quiescence")));
            }
        }
        v.extend(super::rmap_stop::check(run));
        v.extend(super::rmap_stop::stop_waits_for_the_loop(run));
        v.extend(super::rmap_join::check(run));
        v.extend(super::rmap_waits::check(run, self.op_timeout().as_micros() as u64));
        v.extend(super::rmap_waits::waiters_count_the_calls(run));
        v.extend(super::rmap_join::syncs_count_loads(run));
        v.extend(subscriptions_end_at_stop(run));
        v.extend(subscribers_in_order(events));
        v.extend(subscribers_conserve_changes(events));
        v.extend(set_and_wait_returns_with_its_write(events));
        v.extend(reads_agree_with_the_snapshot(events));
        v.extend(crate::keel_rules::reseed_rules(events));
        // R28: no change applied after a snapshot taken since a store restart, before a commit.
        v.extend(keel_checks::rmap_restarted_loads_hold_the_feed(events));
        v.extend(keel_checks::rmap_waiters_wake(events));
        // R11: each retry of a failed watch open or snapshot after its backoff.
        v.extend(crate::keel_rules::rmap_retries_on_time(run));
        // R24: each store attempt reports no longer than its apply loop has been at it.
        v.extend(crate::keel_rules::rmap_attempts_report_their_own_time(run));
        v.extend(crate::keel_rules::rmap_timeouts_take_the_op_timeout(run));
        // R25: each resync reports the waiters its load woke.
        v.extend(keel_checks::rmap_resyncs_count_their_woken(events));
        // R12: each map checks itself against the store its anti-entropy period after each load.
        v.extend(crate::keel_rules::rmap_anti_entropy_on_time(run));
        // R13: each resync names the event that made it.
        v.extend(keel_checks::rmap_resyncs_name_their_cause(events));
        v.extend(keel_checks::rmap_resyncs_report_the_revision_left(events));
        v.extend(crate::keel_rules::rmap_revisions(events, |e| match rec(e) {
            Some(Rec::Probe { rev, .. }) => Some((MAP, *rev)),
            _ => None,
        }));
        v
    }

    fn coverage(&self, events: &[Event]) -> Coverage {
        let mut c = Coverage::new();
        let mut narrow = super::NarrowWindows::default();
        let mut descheduled: BTreeSet<(Who, &str)> = BTreeSet::new();
        for e in events {
            narrow.see(e);
            match rec(e) {
                Some(Rec::SawDescheduled { id, .. }) => {
                    descheduled.insert((e.node, id));
                }
                Some(Rec::SubEnd { dropped, .. }) if *dropped > 0 => {
                    c.insert("frozen_subscriber_overflowed");
                }
                Some(Rec::SawDone { id, .. }) => {
                    if descheduled.remove(&(e.node, id.as_str())) {
                        c.insert("set_and_wait_descheduled_caller");
                    }
                    if narrow.reply_delayed(e.node, e.t_us) || narrow.asymmetric(e.node, e.t_us) {
                        c.insert("set_and_wait_under_slow_replies");
                    }
                }
                _ => {}
            }
            match (e.rmap(), rec(e)) {
                (Some(RmapEvent::Resynced { reason, rev, old_rev, .. }), _) => {
                    // A fresh map's first write is a revision jump from 0: only feed gaps count.
                    if *reason == ResyncReason::Gap {
                        c.insert("resync_after_gap");
                    }
                    if rev < old_rev {
                        c.insert("resync_after_data_loss");
                    }
                }
                (Some(RmapEvent::WaiterCancelled { armed: true, .. }), _) => {
                    c.insert("waiter_cancelled_mid_apply");
                }
                (_, Some(Rec::SawDone { .. })) => {
                    c.insert("set_and_wait_completed");
                }
                (_, Some(Rec::SawErr { error: SawError::DataLost, .. })) => {
                    c.insert("set_and_wait_data_lost");
                }
                _ => {}
            }
        }
        c
    }

    fn coverage_goals(&self) -> &'static [&'static str] {
        &[
            "resync_after_gap",
            "resync_after_data_loss",
            "waiter_cancelled_mid_apply",
            "set_and_wait_completed",
            "set_and_wait_descheduled_caller",
            "set_and_wait_under_slow_replies",
            "frozen_subscriber_overflowed",
            "set_and_wait_data_lost",
        ]
    }

    fn mutants(&self) -> &'static [Mutant] {
        if self.clock_faults {
            // What only a map on a wrong clock breaks, and MC422 (its window: a resync's snapshot
            // slowed by a latency fault while a descheduled caller arms its waiter).
            return &[Mutant::MC288, Mutant::MC422];
        }
        if self.anti_entropy.is_some() {
            // What only a map with a period can break, and MC45 (its window opens when a resync
            // begins with the feed unread: a period that ran out during a pause; corpus MC45).
            return &[Mutant::MC109, Mutant::MC120, Mutant::MC45, Mutant::MC382];
        }
        &[
            Mutant::MP1,
            Mutant::MP11,
            Mutant::MC3,
            Mutant::MC4,
            Mutant::MC12,
            Mutant::MC13,
            Mutant::MC17,
            Mutant::MC30,
            Mutant::MC34,
            Mutant::MC42,
            Mutant::MC43,
            Mutant::MC44,
            Mutant::MC49,
            Mutant::MC60,
            Mutant::MC74,
            Mutant::MC80,
            Mutant::MC81,
            Mutant::MC90,
            Mutant::MC91,
            Mutant::MC92,
            Mutant::MC103,
            Mutant::MC104,
            Mutant::MC128,
            Mutant::MC130,
            Mutant::MC140,
            Mutant::MC141,
            Mutant::MC148,
            Mutant::MC151,
            Mutant::MC171,
            Mutant::MC183,
            Mutant::MC184,
            Mutant::MC185,
            Mutant::MC186,
            Mutant::MC201,
            Mutant::MC205,
            Mutant::MC219,
            Mutant::MC223,
            Mutant::MC226,
            Mutant::MC228,
            Mutant::MC232,
            Mutant::MC253,
            Mutant::MC254,
            Mutant::MC264,
            Mutant::MC265,
            Mutant::MC272,
            Mutant::MC276,
            Mutant::MC284,
            Mutant::MC285,
            Mutant::MC330,
            Mutant::MC331,
            Mutant::MC332,
            Mutant::MC365,
            Mutant::MC397,
            Mutant::MC398,
            Mutant::MC402,
            Mutant::MC415,
            Mutant::MC416,
            Mutant::MC417,
        ]
    }
}

/// R3 on what a `set_and_wait` returns: its key is the call's own and never deleted, so the
/// replica lacks it at the instant the call returns only if the replica never applied the write
/// (a write the store lost in a restart must fail `DataLost`: MC43), or applied it and lost it
/// since with the store's data (the caller resumed late). The second is told by the replica
/// having reached the write's revision within the write's own numbering: a store restart seeds
/// the revisions of the next commit from store time (`store_up` `now_ms` × 1000), so a revision
/// at or above the write's with no boot floor between them is of the same history.
/// R33 at the read: `get`, `keys`, `len`, `is_empty` and `revision` read in the same poll as
/// `snapshot` (one replica state) agree with it, and `subscribe()` or `set_and_wait` refused as
/// over a limit came at that limit; the scenario records any disagreement.
fn reads_agree_with_the_snapshot(events: &[Event]) -> Vec<Violation> {
    events
        .iter()
        .filter_map(|e| match rec(e) {
            Some(Rec::ReadDisagrees { what }) => Some(Violation::new(
                "R33",
                e.t_us,
                format!("{}: the map's local answer disagrees with its own state: {what}", e.node),
            )),
            _ => None,
        })
        .collect()
}

fn set_and_wait_returns_with_its_write(events: &[Event]) -> Vec<Violation> {
    // Boot floors so far, ascending; per node, the highest revision its replica reached under
    // each floor (indexed by how many floors lie at or below it).
    let mut floors: Vec<u64> = Vec::new();
    let mut reached: BTreeMap<Who, BTreeMap<usize, u64>> = BTreeMap::new();
    let history = |floors: &[u64], rev: u64| floors.partition_point(|&f| f <= rev);
    let mut v = Vec::new();
    for e in events {
        if let Some(ServerEv::StoreUp { now_ms }) = e.server() {
            floors.push(now_ms.saturating_mul(keel::store::SEED_PER_MS));
        }
        if matches!(e.world(), Some(WorldEv::NodeStart {})) {
            reached.remove(&e.node);
        }
        if let Some(RmapEvent::Applied { rev, .. } | RmapEvent::Joined { rev, .. } | RmapEvent::Resynced { rev, .. }) =
            e.rmap()
        {
            let top = reached.entry(e.node).or_default().entry(history(&floors, *rev)).or_default();
            *top = (*top).max(*rev);
        }
        if let Some(Rec::SawDone { id, rev, replica_rev, has_key: false }) = rec(e) {
            let applied =
                reached.get(&e.node).and_then(|r| r.get(&history(&floors, *rev))).is_some_and(|top| top >= rev);
            if !applied {
                v.push(Violation::new(
                    "R3",
                    e.t_us,
                    format!(
                        "{}: set_and_wait {id} returned {rev}, yet the replica (at {replica_rev}) lacks its key and never reached its write's revision in the write's history: a lost write called applied",
                        e.node
                    ),
                ));
            }
        }
    }
    v
}

/// R7: a subscriber is told of every change its map offered it. The map hands each subscriber
/// every change it applies (one per `Applied`) and the differences of each sync (`keys` of the
/// join, `changed` of a resync), in the same poll as it records them, and a change that does not
/// fit in a full buffer is counted as dropped. So when a subscription ends, the changes received
/// plus those counted dropped equal the changes offered since its `SubStart`: fewer is a change
/// lost without a word (a full buffer that skips the rest of a resync's differences counting one
/// drop, MC42; a drop not counted, MC17; a repair kept from the feeds, MC19); more is a change
/// offered that the map never applied (a stale change forwarded, MC12).
fn subscribers_conserve_changes(events: &[Event]) -> Vec<Violation> {
    // Per (node, subscriber): the changes offered since it subscribed.
    let mut offered: BTreeMap<(Who, &str), u64> = BTreeMap::new();
    let mut v = Vec::new();
    for e in events {
        if matches!(e.world(), Some(WorldEv::NodeStart {})) {
            offered.retain(|(n, _), _| *n != e.node);
        }
        let n = match e.rmap() {
            Some(RmapEvent::Applied { .. }) => 1,
            Some(RmapEvent::Joined { keys, .. }) => *keys as u64,
            Some(RmapEvent::Resynced { changed, .. }) => *changed as u64,
            _ => 0,
        };
        if n > 0 {
            offered.iter_mut().filter(|((node, _), _)| *node == e.node).for_each(|(_, o)| *o += n);
        }
        match rec(e) {
            Some(Rec::SubStart { sub }) => {
                offered.insert((e.node, sub.as_str()), 0);
            }
            Some(Rec::SubEnd { sub, received, dropped, .. }) => {
                let Some(offered) = offered.remove(&(e.node, sub.as_str())) else { continue };
                if received + dropped != offered {
                    v.push(Violation::new(
                        "R7",
                        e.t_us,
                        format!(
                            "{}: subscriber {sub} was offered {offered} changes, yet received {received} and counted {dropped} dropped",
                            e.node
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
    use crate::history::Ev;

    /// A map event of the core on node `node` at `t_ms`.
    fn rmap_at(t_ms: u64, node: u8, r: RmapEvent<'_>) -> Event {
        Event { t_us: t_ms * 1000, node: Who::Node(node), ev: Ev::Core(keel::observe::Event::Rmap(r.to_static())) }
    }

    /// A resync after a feed gap to a snapshot at `rev`.
    fn resynced(rev: u64) -> RmapEvent<'static> {
        RmapEvent::Resynced {
            map: "m".into(),
            reason: ResyncReason::Gap,
            rev,
            old_rev: 0,
            changed: 0,
            woken: 0,
            took_us: 0,
            restarted: false,
        }
    }

    #[test]
    fn a_read_that_disagrees_with_the_snapshot_fires_r33() {
        let at = |t_ms: u64, ev: Ev| Event { t_us: t_ms * 1000, node: Who::Node(1), ev };
        let disagrees = at(7, Rec::ReadDisagrees { what: "get(\"k1\") = Some(\"x\")".into() }.into());
        let probe = at(5, Rec::Probe { rev: 3, syncs: 1, subs: 0, held: 0, waiters: 0 }.into());
        assert!(reads_agree_with_the_snapshot(std::slice::from_ref(&probe)).is_empty());
        let v = reads_agree_with_the_snapshot(&[probe, disagrees]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("R33", 7_000));
        assert!(v[0].detail.contains("get(\"k1\")"), "{}", v[0].detail);
    }

    #[test]
    fn a_subscriber_that_misses_revisions_unannounced_fires_r5() {
        let mut o = SubOrder::default();
        // Joined with two keys at 100 (a snapshot's differences share its revision), then 101.
        assert!(o.see("s", "a", 100, 0).is_none());
        assert!(o.see("s", "b", 100, 0).is_none());
        assert!(o.see("s", "a", 101, 0).is_none());
        // A jump over 102 and 103 is recorded for the checker.
        let Some(jump) = o.see("s", "b", 104, 0) else { panic!("the jump is recorded") };
        assert!(matches!(jump, Rec::SubJump { rev: 104, last: 101, dropped: 0, .. }));
        // A second arrival and a revision going back are R5 as before.
        assert!(matches!(o.see("s", "b", 104, 0), Some(Rec::SubDisorder { again: true, .. })));
        assert!(matches!(o.see("s", "a", 90, 0), Some(Rec::SubDisorder { again: false, last: 104, .. })));

        let at = |t_ms: u64, ev: Ev| Event { t_us: t_ms * 1000, node: Who::Node(1), ev };
        let jump = |t_ms: u64, last: u64, rev: u64, dropped: u64| {
            at(t_ms, Rec::SubJump { sub: "s".into(), key: "k".into(), rev, last, dropped }.into())
        };
        let synced = |t_ms: u64, rev: u64| rmap_at(t_ms, 1, resynced(rev));
        // Nothing dropped, no sync: R5 at the receipt.
        let v = subscribers_in_order(&[jump(7, 101, 104, 0)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("R5", 7_000));
        assert!(v[0].detail.contains("2 skipped"), "{}", v[0].detail);
        // Three drops counted early excuse three missing revisions, once each, in any order.
        let drops = [jump(7, 101, 103, 3), jump(8, 103, 106, 3)];
        assert!(subscribers_in_order(&drops).is_empty());
        let v = subscribers_in_order(&[jump(7, 101, 103, 3), jump(8, 103, 106, 3), jump(9, 106, 108, 3)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].t_us, 9_000);
        // A sync of the node's map to a snapshot inside the jump excuses it, even one taken before
        // the last change was read (a frozen subscriber reads its buffer late); one outside does not.
        assert!(subscribers_in_order(&[synced(5, 103), jump(7, 101, 104, 0)]).is_empty());
        assert!(subscribers_in_order(&[synced(5, 104), jump(7, 101, 104, 0)]).is_empty());
        assert_eq!(subscribers_in_order(&[synced(5, 101), jump(7, 101, 104, 0)]).len(), 1);
    }

    #[test]
    fn a_prompt_subscription_that_outlives_its_map_s_stop_fires_r9() {
        let at = |t_ms: u64, ev: Ev| Event { t_us: t_ms * 1000, node: Who::Node(1), ev };
        let start = |t, sub: &str| at(t, Rec::SubStart { sub: sub.into() }.into());
        let end = |t, sub: &str| {
            let (received, dropped, mirror, replica) = (0, 0, 0, 0);
            at(t, Rec::SubEnd { sub: sub.into(), received, dropped, mirror, replica }.into())
        };
        let stopped = |t| rmap_at(t, 1, RmapEvent::Stopped { map: "m".into(), waiters_closed: 0 });
        let rule = |h: &[Event]| {
            let v = crate::scenario::test_history::judge(h, 0, 100_000, subscriptions_end_at_stop);
            v.iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>()
        };
        assert_eq!(rule(&[start(1, "prompt"), stopped(10), end(10, "prompt")]), []);
        // Ended 30 ms after the stop, or never (MC92): late at the limit.
        assert_eq!(rule(&[start(1, "prompt"), stopped(10), end(40, "prompt")]), [("R9", 12_000)]);
        assert_eq!(rule(&[start(1, "prompt"), stopped(10)]), [("R9", 12_000)]);
        // The frozen subscriber may sleep through the end; a crash within the limit ends the wait.
        assert_eq!(rule(&[start(1, "frozen"), stopped(10)]), []);
        let crash = at(11, WorldEv::NodeCrash {}.into());
        assert_eq!(rule(&[start(1, "prompt"), stopped(10), crash.clone()]), []);
        // The early side (MC416): a feed that ends while its map runs, prompt or frozen, and a
        // stop of the node's previous life does not excuse it.
        assert_eq!(rule(&[start(1, "prompt"), end(5, "prompt")]), [("R9", 5_000)]);
        assert_eq!(rule(&[start(1, "frozen"), end(5, "frozen")]), [("R9", 5_000)]);
        let restart = at(12, WorldEv::NodeStart {}.into());
        assert_eq!(rule(&[stopped(10), crash, restart, start(13, "frozen"), end(14, "frozen")]), [("R9", 14_000)]);
    }

    #[test]
    fn a_subscriber_whose_picture_parts_from_the_replica_fires_r5_when_caught_up_and_at_its_end() {
        let end = |dropped: u64, mirror: u64, replica: u64| Event {
            t_us: 30_000_000,
            node: Who::Node(2),
            ev: Rec::SubEnd { sub: "prompt".into(), received: 9, dropped, mirror, replica }.into(),
        };
        let v = subscribers_in_order(&[end(0, 7, 8)]);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("R5", 30_000_000));
        assert!(v[0].detail.contains("dropped nothing"), "{}", v[0].detail);
        assert!(subscribers_in_order(&[end(0, 8, 8)]).is_empty(), "the same picture");
        assert!(subscribers_in_order(&[end(3, 7, 8)]).is_empty(), "drops were counted: the subscriber was told");
        // At the instant it caught up (MC74: a resync's changed value never handed on).
        let caught_up = |mirror: u64, replica: u64| Event {
            t_us: 3_000_000,
            node: Who::Node(2),
            ev: Rec::SubCaughtUp { sub: "prompt".into(), rev: 40, mirror, replica }.into(),
        };
        let v = subscribers_in_order(&[caught_up(7, 8)]);
        assert_eq!((v.len(), v[0].t_us), (1, 3_000_000), "{v:?}");
        assert!(v[0].detail.contains("caught up with its replica at revision 40"), "{}", v[0].detail);
        assert!(subscribers_in_order(&[caught_up(8, 8)]).is_empty(), "the same picture");
    }

    /// R3 on a lost write: the store booted at 1 000 ms (floor 1 000 000) and again at 5 000 ms
    /// (floor 5 000 000). A call whose write took 1 000 010 returns without its key: excused
    /// when the replica applied 1 000 010 (or loaded a snapshot at or above it) before the second
    /// boot, not when it only reached 5 000 003, a revision of the next history (MC43).
    #[test]
    fn a_set_and_wait_that_returns_a_lost_write_fires_r3() {
        let up = |t_ms: u64, now_ms: u64| Event {
            t_us: t_ms * 1000,
            node: Who::Store,
            ev: ServerEv::StoreUp { now_ms }.into(),
        };
        let applied = |t_ms: u64, rev: u64| rmap_at(t_ms, 1, RmapEvent::Applied { map: "m".into(), rev });
        let resynced = |t_ms: u64, rev: u64| rmap_at(t_ms, 1, resynced(rev));
        let done = |has_key: bool| Event {
            t_us: 9_000_000,
            node: Who::Node(1),
            ev: Rec::SawDone { id: "w".into(), rev: 1_000_010, replica_rev: 5_000_003, has_key }.into(),
        };
        let run = |reached: Event, has_key: bool| {
            set_and_wait_returns_with_its_write(&[
                up(1, 1000),
                reached,
                up(5, 5000),
                resynced(6, 5_000_003),
                done(has_key),
            ])
        };
        // Applied, then lost with the data before the caller resumed: excused.
        assert!(run(applied(2, 1_000_010), false).is_empty());
        assert!(run(resynced(2, 1_000_012), false).is_empty());
        // Reached only in the next history: the write was lost before the replica saw it.
        let v = run(applied(2, 1_000_009), false);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("R3", 9_000_000));
        assert!(v[0].detail.contains("a lost write called applied"), "{}", v[0].detail);
        // With its key, nothing to judge.
        assert!(run(applied(2, 1_000_009), true).is_empty());
    }

    /// R7: received + dropped = offered at a subscriber's end. Offered since `SubStart`: a join
    /// of 3 keys, 2 applied changes, a resync with 4 differences = 9. Changes before the start,
    /// or on another node, are not offered to it; a node restart starts over.
    #[test]
    fn a_subscriber_told_of_fewer_or_more_changes_than_offered_fires_r7() {
        let core = rmap_at;
        let applied = |t_ms: u64, node: u8| core(t_ms, node, RmapEvent::Applied { map: "m".into(), rev: t_ms });
        let at = |t_ms: u64, ev: Ev| Event { t_us: t_ms * 1000, node: Who::Node(1), ev };
        let start = |t_ms: u64| at(t_ms, Rec::SubStart { sub: "s".into() }.into());
        let end = |received: u64, dropped: u64| {
            at(90, Rec::SubEnd { sub: "s".into(), received, dropped, mirror: 0, replica: 0 }.into())
        };
        let resync = RmapEvent::Resynced {
            map: "m".into(),
            reason: ResyncReason::Gap,
            rev: 50,
            old_rev: 5,
            changed: 4,
            woken: 0,
            took_us: 0,
            restarted: false,
        };
        let run = |received: u64, dropped: u64| {
            subscribers_conserve_changes(&[
                applied(1, 1),
                start(2),
                core(3, 1, RmapEvent::Joined { map: "m".into(), rev: 3, keys: 3, restarted: false }),
                applied(4, 1),
                applied(5, 2),
                core(6, 1, resync.clone()),
                applied(7, 1),
                end(received, dropped),
            ])
        };
        assert!(run(9, 0).is_empty(), "every change received");
        assert!(run(5, 4).is_empty(), "four counted dropped");
        // MC42: a full buffer skipped the resync's four differences counting one drop.
        let v = run(5, 1);
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!((v[0].invariant, v[0].t_us), ("R7", 90_000));
        assert!(v[0].detail.contains("offered 9 changes, yet received 5 and counted 1 dropped"), "{}", v[0].detail);
        // MC12: a change the map skipped as stale was forwarded too.
        assert_eq!(run(10, 0).len(), 1);
        // A node restart forgets the subscriber it had: its end is not judged.
        let restarted = [start(2), applied(4, 1), at(5, WorldEv::NodeStart {}.into()), end(0, 0)];
        assert!(subscribers_conserve_changes(&restarted).is_empty());
    }
}
