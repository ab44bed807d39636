//! The pool's completion feed under faults (scenario `poolfeed`): the pool scenario's workload
//! plus, on every node, a [`CompletionFeed`](keel::pool::CompletionFeed) subscriber and a
//! `wait_for` on every job the node dispatched. Rule P10 judges what they got against what the
//! pool recorded:
//! - **exact**: a completion delivered (to a subscriber, or returned by `wait_for`) is the one
//!   the store recorded: that job, that attempt;
//! - **once**: a subscriber gets each job's completion at most once in its node's life;
//! - **complete**: a subscriber gets every completion recorded while it listened, within
//!   [`DELIVERY_US`] of the later of the completion and the heal, unless it counted drops;
//! - **woken**: a `wait_for` returns within [`DELIVERY_US`] of the later of the completion, its
//!   start and the heal, while its node lives.
//!
//! The feed's promise is "no loss across a feed gap" (the change feed is at-most-once and is
//! reconciled from snapshots of the job map): a feed that loses a completion across a partition
//! or a store restart breaks *complete* or *woken* once the world is healed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use keel::observe::PoolEvent;

use super::RunView;
use super::pool::Rec;
use crate::check::Violation;
use crate::history::{Event, ServerEv, Who, plain};
use crate::net::SimStore;
use crate::world::NodeCtx;

type Node = keel::pool::PoolNode<SimStore>;

/// How long after the later of a completion and the heal every listener must have it: a sweep
/// period (each sweep reconciles the feed from a snapshot), a snapshot's round trip and its
/// retry, with room for a clock at its drift bound.
pub const DELIVERY_US: u64 = 1_500_000;

/// Completions recorded this soon after a subscriber began are not judged for it: a worker reads
/// the store's time before it writes the completion, and a completion timed before the node
/// started is history to it (a snapshot does not offer it), however late it landed.
pub const LISTEN_MARGIN_US: u64 = 3_000_000;

/// Subscribe to the node's completion feed and record every completion it gets.
pub async fn subscriber(ctx: NodeCtx, node: Arc<Node>) {
    let mut feed = match node.completions() {
        Ok(feed) => feed,
        Err(e) => return ctx.record(Rec::FeedRefused { error: e.to_string() }),
    };
    ctx.record(Rec::FeedStart {});
    while let Some(c) = feed.recv().await {
        let (attempt, ms, dropped) = (c.attempt, c.completed_ms, feed.dropped());
        ctx.record(Rec::FeedGot { job: c.job, attempt, ms, dropped });
    }
    ctx.record(Rec::FeedEnd { dropped: feed.dropped() });
}

/// Most completion waits a `poolfeed` node registers at once (`max_waiters`): a service's
/// bound, small enough that the workload's bursts of waits (slow jobs, a partition holding
/// completions back) meet it, so `TooManyWaiters` is taken (P74: in 155 of seeds 0..300; a
/// run that never meets it keeps its schedule of before round 40).
pub const MAX_WAITERS: usize = 8;

/// How long a waiter refused at the bound backs off before it asks again, and how many times.
pub const REFUSED_BACKOFF_MS: u64 = 100;
const REFUSED_TRIES: u32 = 30;

/// Wait for `job`'s completion on `node` and record how the wait ended. A wait refused at the
/// node's bound (`TooManyWaiters`) ends there (P10 judges each try as a wait of its own) and is
/// asked again after a backoff, as a service does.
pub async fn waiter(ctx: NodeCtx, node: Arc<Node>, job: String, life: u64) {
    for _ in 0..REFUSED_TRIES {
        ctx.record(Rec::WaitBegun { job: job.clone(), life });
        match node.wait_for(&job).await {
            Ok(c) => return ctx.record(Rec::WaitDone { job, attempt: c.attempt, ms: c.completed_ms }),
            Err(e @ keel::pool::PoolError::TooManyWaiters) => {
                ctx.record(Rec::WaitFailed { job: job.clone(), error: e.to_string() });
            }
            Err(e) => return ctx.record(Rec::WaitFailed { job, error: e.to_string() }),
        }
        tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = ctx.shutdown.cancelled() => return,
            _ = keel::clock::Clock::sleep(&ctx.clock, std::time::Duration::from_millis(REFUSED_BACKOFF_MS)) => {}
        }
    }
}

/// **P74**: a pool node refuses a completion wait (`TooManyWaiters`) exactly when its registry
/// holds its most waits (`max_waiters`), and never registers one past it; the refused caller is
/// told `TooManyWaiters`. Judged at each `completion_wait_registered` (the node's live waits,
/// counted from its registrations and `completion_wait_ended`s, below the bound), each
/// `completion_wait_refused` (at the bound, and the bound the one configured) and the caller's
/// `wait_failed` that follows a refusal. The first 20 violations.
pub fn waits_bounded(run: &RunView<'_>) -> Vec<Violation> {
    use keel::observe::PoolEvent as P;
    let max = MAX_WAITERS as u64;
    // Each node's registered waits of its current life, by job: a crashed life's waits are
    // dropped after its crash (their `completion_wait_ended` may follow the next start), so
    // an end counts only for a wait of the life.
    let mut live: BTreeMap<Who, BTreeMap<&str, u64>> = BTreeMap::new();
    let mut refused: BTreeSet<(Who, &str)> = BTreeSet::new();
    let mut v = Vec::new();
    let told = keel::pool::PoolError::TooManyWaiters.to_string();
    for e in run.events {
        if v.len() >= 20 {
            break;
        }
        let waits = live.entry(e.node).or_default();
        let n: u64 = waits.values().sum();
        let mut bad = |what: String| v.push(Violation::new("P74", e.t_us, format!("{}: {what}", e.node)));
        match (rec(e), e.pool(), e.world()) {
            (_, Some(P::CompletionWaitRegistered { job }), _) => {
                if n >= max {
                    bad(format!(
                        "registered a wait for {job} with {n} waits live, past its bound of {max} (max_waiters)"
                    ));
                }
                *waits.entry(plain(job)).or_default() += 1;
            }
            (_, Some(P::CompletionWaitEnded { job, .. }), _) => {
                if let Some(k) = waits.get_mut(plain(job)) {
                    *k -= 1;
                    if *k == 0 {
                        waits.remove(plain(job));
                    }
                }
            }
            (_, Some(P::CompletionWaitRefused { job, waiting, max: bound }), _) => {
                if n < max || *bound != max {
                    bad(format!(
                        "refused a wait for {job} with {n} waits live (it counted {waiting} of {bound}), its bound {max}: refused with room"
                    ));
                }
                refused.insert((e.node, plain(job)));
            }
            (Some(Rec::WaitFailed { job, error }), _, _)
                if refused.remove(&(e.node, job.as_str())) && *error != told =>
            {
                bad(format!("a wait for {job} refused at the bound returned {error:?}, not {told:?}"));
            }
            (Some(Rec::WaitDone { job, .. }), _, _) if refused.remove(&(e.node, job.as_str())) => {
                bad(format!("a wait for {job} refused at the bound returned a completion"));
            }
            (_, Some(P::NodeStopped { .. }), _)
            | (_, _, Some(crate::history::WorldEv::NodeStart {} | crate::history::WorldEv::NodeCrash {})) => {
                waits.clear();
                refused.retain(|(w, _)| *w != e.node);
            }
            _ => {}
        }
    }
    v
}

/// Every how many jobs a `poolfeed` dispatcher sends through `dispatch_and_wait` (an API
/// handler's one call) instead of `dispatch` and a `wait_for`: until round 38 no run called it,
/// so a wait registered after the dispatch (its completion missed) passed every rule.
pub const AND_WAIT_EVERY: u64 = 3;

/// The jobs sent through `dispatch_and_wait` run 1 to this many ms.
pub const QUICK_JOB_MS: u64 = 20;

/// Dispatch `job` and await its completion in one call (`dispatch_and_wait`), recording the wait
/// as [`waiter`] does (P10 judges both) and the job as added once it returned. A dispatch that
/// failed is retried as the dispatcher retries, then awaited with `wait_for`, as keel's docs tell
/// a caller to.
pub async fn dispatch_and_wait(ctx: NodeCtx, node: Arc<Node>, job: String, ms: u64) {
    ctx.record(Rec::AndWaitCalled { job: job.clone() });
    ctx.record(Rec::WaitBegun { job: job.clone(), life: 0 });
    match node.dispatch_and_wait(&job, &ms.to_string()).await {
        Ok(c) => {
            ctx.record(Rec::JobAdded { job: job.clone(), payload: ms.to_string() });
            ctx.record(Rec::WaitDone { job, attempt: c.attempt, ms: c.completed_ms });
        }
        Err(e) => {
            ctx.record(Rec::WaitFailed { job: job.clone(), error: e.to_string() });
            if !matches!(e, keel::pool::PoolError::Stopped) {
                super::pool_dispatch::failed(&ctx, &job, &e);
                super::pool::add(&ctx, &node, job, ms, true, true).await;
            }
        }
    }
}

/// **P94**: a node's completion feed ends only after the node's stop began, judged at each
/// `feed_end`. `CompletionFeed::recv` returns `None` "once the node stopped" (its docs): a
/// subscriber reads until then. A feed that ends early (hunt 46 A: the sweep's `recv` replaced
/// by `None` survived, MC442) leaves every subscriber with nothing, and P10 judges a listener
/// only while it listens, so a listener closed at once was judged on nothing. Judged per node
/// life: its pool's `node_stopping` before the end (a crash records no end).
pub fn feeds_end_with_their_node(run: &RunView<'_>) -> Vec<Violation> {
    use keel::observe::PoolEvent;
    let mut stopping: std::collections::BTreeSet<(Who, u64)> = std::collections::BTreeSet::new();
    let mut v = Vec::new();
    for e in run.events {
        let life = run.timeline.life_at(e.node, e.t_us).map_or(0, |l| l.start);
        if let Some(PoolEvent::NodeStopping { .. }) = e.pool() {
            stopping.insert((e.node, life));
            continue;
        }
        if let Some(Rec::FeedEnd { .. }) = rec(e)
            && !stopping.contains(&(e.node, life))
            && v.len() < 20
        {
            let what = format!("{}: its completion feed ended while its node ran (no stop had begun)", e.node);
            v.push(Violation::new("P94", e.t_us, what));
        }
    }
    v
}

/// **P107**: a completion feed's drop count is the node's drops, judged at each delivery the
/// listener reads and at its end. A subscriber's `CompletionFeed::dropped` counts the completions
/// the node dropped for it because its buffer was full; P10 excuses a listener's misses by it.
/// The node reports each drop as it happens (`feed_dropped`, in the same poll as the count moves),
/// and each `poolfeed` node has one subscriber, so at every `feed_got` and `feed_end` the count the
/// listener read equals the drops its node reported since the subscriber began (in its life). A
/// count off its drops (hunt 46 A's sweep: `dropped` replaced by 0 or 1 survived; MC458 moves it
/// at every offer) excuses misses P10 would see, or hides drops a service would act on.
pub fn feed_drops_counted(run: &RunView<'_>) -> Vec<Violation> {
    use keel::observe::PoolEvent;
    // node → the drops its node reported since its subscriber began (None: no subscriber yet)
    let mut reported: BTreeMap<Who, Option<u64>> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        if let Some(crate::history::WorldEv::NodeStart {} | crate::history::WorldEv::NodeCrash {}) = e.world() {
            reported.remove(&e.node);
            continue;
        }
        if let Some(PoolEvent::FeedDropped { dropped }) = e.pool() {
            if let Some(Some(n)) = reported.get_mut(&e.node) {
                *n += dropped;
            }
            continue;
        }
        let read = match rec(e) {
            Some(Rec::FeedStart {}) => {
                reported.insert(e.node, Some(0));
                continue;
            }
            Some(Rec::FeedGot { dropped, .. } | Rec::FeedEnd { dropped }) => *dropped,
            _ => continue,
        };
        if let Some(Some(n)) = reported.get(&e.node)
            && read != *n
            && v.len() < 20
        {
            let what = format!(
                "{}: its completion feed's subscriber read {read} completions dropped while its node had reported {n}",
                e.node
            );
            v.push(Violation::new("P107", e.t_us, what));
        }
    }
    v
}

/// **P95**: a node refuses a completion-feed subscriber only once its stop began or while it
/// holds [`FEED_SUBSCRIBERS_MAX`](keel::pool::FEED_SUBSCRIBERS_MAX) live subscribers (the
/// `completions()` docs), judged at each `feed_refused`. The workload subscribes once per node
/// life and returned silently on a refusal, so a feed that refuses everyone (hunt 47 A: the
/// sweep's `Feed::subscribe` replaced by `None` survived, MC443) left every rule of the feed
/// (P10, P94) judging no listener. Live subscribers are counted per node life (`feed_start`
/// less `feed_end`); a refusal after its pool's `node_stopping` in that life, or one that says
/// the node stopped (its shutdown token was cancelled, which may precede `node_stopping`), is not
/// judged.
pub fn feeds_refused_only_full_or_stopped(run: &RunView<'_>) -> Vec<Violation> {
    let mut stopping: BTreeSet<(Who, u64)> = BTreeSet::new();
    let mut live: BTreeMap<(Who, u64), usize> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        let life = run.timeline.life_at(e.node, e.t_us).map_or(0, |l| l.start);
        if let Some(PoolEvent::NodeStopping { .. }) = e.pool() {
            stopping.insert((e.node, life));
            continue;
        }
        match rec(e) {
            Some(Rec::FeedStart {}) => *live.entry((e.node, life)).or_default() += 1,
            Some(Rec::FeedEnd { .. }) => {
                let n = live.entry((e.node, life)).or_default();
                *n = n.saturating_sub(1);
            }
            // A `Stopped` refusal: the node's shutdown token was cancelled, which may come before
            // its pool's `node_stopping` (poolfeed seed 230).
            Some(Rec::FeedRefused { error }) if *error != keel::pool::PoolError::Stopped.to_string() => {
                let n = live.get(&(e.node, life)).copied().unwrap_or(0);
                if !stopping.contains(&(e.node, life)) && n < keel::pool::FEED_SUBSCRIBERS_MAX && v.len() < 20 {
                    let max = keel::pool::FEED_SUBSCRIBERS_MAX;
                    let what = format!(
                        "{}: its completion feed refused a subscriber ({error}) with {n} live of at most {max}, its stop not begun",
                        e.node
                    );
                    v.push(Violation::new("P95", e.t_us, what));
                }
            }
            _ => {}
        }
    }
    v
}

/// **P81**: `dispatch_and_wait` registers its wait before its dispatch writes, as documented
/// (else a completion that beats the dispatch's reply home is never seen: MC348). Judged at each
/// `dispatched` of a job the node called it for (`and_wait_called`): the node's
/// `completion_wait_registered` of that job came first, in the same life. The first 20
/// violations.
pub fn waits_registered_first(run: &RunView<'_>) -> Vec<Violation> {
    // (node, job) → whether its wait is registered yet.
    let mut calls: BTreeMap<(Who, &str), bool> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        match (rec(e), e.pool()) {
            (Some(Rec::AndWaitCalled { job }), _) => {
                calls.insert((e.node, job.as_str()), false);
            }
            (_, Some(PoolEvent::CompletionWaitRegistered { job })) => {
                if let Some(r) = calls.get_mut(&(e.node, plain(job))) {
                    *r = true;
                }
            }
            // A wait refused at the node's bound: the call dispatches nothing (P74 judges it).
            (_, Some(PoolEvent::CompletionWaitRefused { job, .. })) => {
                calls.remove(&(e.node, plain(job)));
            }
            // The call's first `dispatched` ends its judging, whatever it finds.
            (_, Some(PoolEvent::Dispatched { job, .. }))
                if calls.remove(&(e.node, plain(job))) == Some(false) && v.len() < 20 =>
            {
                v.push(Violation::new(
                    "P81",
                    e.t_us,
                    format!("{}: dispatch_and_wait({job}) dispatched before it registered its wait: a completion that beats the dispatch's reply is never seen", e.node),
                ));
            }
            _ if matches!(
                e.world(),
                Some(crate::history::WorldEv::NodeStart {} | crate::history::WorldEv::NodeCrash {})
            ) =>
            {
                calls.retain(|(n, _), _| *n != e.node);
            }
            _ => {}
        }
    }
    v
}

/// **P77**: a completion wait leaves the node's registry when its call ends, judged at each
/// call's return: once the scenario's `wait_for` or `dispatch_and_wait` of `job` returned
/// (`wait_done`, `wait_failed`), the node's waits of `job` still registered by keel's events
/// (`completion_wait_registered` less `completion_wait_ended`) number at most the scenario's
/// waits of `job` still open there. A wait whose drop leaves its registration behind (MC399)
/// stays counted against `max_waiters` and is later "resolved" for a caller long gone; P74
/// judged the bound from the same events, which the leak keeps consistent (blind-spot hunt,
/// round 42, A #17). A node's stop closes its registry (`node_stopped`), and its crash or
/// restart forgets it. The first 20 violations.
pub fn waits_end_with_their_calls(run: &RunView<'_>) -> Vec<Violation> {
    // (node, job) → (waits registered by keel's events, the scenario's waits still open)
    let mut waits: BTreeMap<(Who, &str), (u64, u64)> = BTreeMap::new();
    let mut v = Vec::new();
    for e in run.events {
        if let Some(crate::history::WorldEv::NodeStart {} | crate::history::WorldEv::NodeCrash {}) = e.world() {
            waits.retain(|(n, _), _| *n != e.node);
            continue;
        }
        match (rec(e), e.pool()) {
            (_, Some(PoolEvent::CompletionWaitRegistered { job })) => {
                waits.entry((e.node, plain(job))).or_default().0 += 1;
            }
            (_, Some(PoolEvent::CompletionWaitEnded { job, .. })) => {
                if let Some(w) = waits.get_mut(&(e.node, plain(job))) {
                    w.0 = w.0.saturating_sub(1);
                }
            }
            (_, Some(PoolEvent::NodeStopped { .. })) => {
                for ((_, _), w) in waits.iter_mut().filter(|((n, _), _)| *n == e.node) {
                    w.0 = 0;
                }
            }
            (Some(Rec::WaitBegun { job, .. }), _) => waits.entry((e.node, job.as_str())).or_default().1 += 1,
            (Some(Rec::WaitDone { job, .. } | Rec::WaitFailed { job, .. }), _) => {
                let w = waits.entry((e.node, job.as_str())).or_default();
                w.1 = w.1.saturating_sub(1);
                if w.0 > w.1 && v.len() < 20 {
                    v.push(Violation::new(
                        "P77",
                        e.t_us,
                        format!(
                            "{}: a wait for {job} returned, and the node still holds {} wait(s) of it for {} call(s) still waiting: an ended wait left its registration behind",
                            e.node, w.0, w.1
                        ),
                    ));
                }
            }
            _ => {}
        }
    }
    v
}

fn rec(e: &Event) -> Option<&Rec> {
    match e.app() {
        Some(super::AppEv::Pool(r)) => Some(r),
        _ => None,
    }
}

/// One subscriber's life: what it got, when it began, its drops.
#[derive(Default)]
struct Listener<'a> {
    began: u64,
    /// (job, the key's life) → (deliveries, the first one's time).
    got: BTreeMap<(&'a str, usize), (u64, u64)>,
    dropped: u64,
    /// When its feed closed (the node's pool stopped).
    closed: Option<u64>,
}

/// The lives of each job key, from the store node's record: a sweep that deletes a key's
/// tombstone frees it (the plan's `ShortRetention` knob), and a dispatch may add it again. A
/// completion belongs to the life it landed in; what a node reports of it (a delivery, a wait's
/// return, its worker's `completed`) to the newest landing of that attempt before the report.
#[derive(Default)]
pub(super) struct KeyLives<'a> {
    /// job → the instants its tombstone was deleted, in order.
    freed: BTreeMap<&'a str, Vec<u64>>,
    /// job → its completions' landings: (instant, attempt, life, the tombstone's store time).
    landed: BTreeMap<&'a str, Vec<(u64, u64, usize, u64)>>,
}

impl<'a> KeyLives<'a> {
    pub(super) fn of(events: &'a [Event]) -> Self {
        let mut k = KeyLives::default();
        for e in events {
            match e.server() {
                Some(ServerEv::TombstoneDeleted { job, .. }) => k.freed.entry(job).or_default().push(e.t_us),
                Some(ServerEv::CompletionLanded { job, attempt, completed_ms, .. }) => {
                    let life = k.freed.get(job.as_str()).map_or(0, Vec::len);
                    k.landed.entry(job).or_default().push((e.t_us, *attempt, life, *completed_ms));
                }
                _ => {}
            }
        }
        k
    }

    /// The key's life at `t`: how many times its tombstone was deleted by then.
    pub(super) fn at(&self, job: &str, t: u64) -> usize {
        self.freed.get(job).map_or(0, |d| d.iter().take_while(|&&d| d <= t).count())
    }

    /// The life of the newest landing of `job`'s `attempt` at or before `t`.
    pub(super) fn landed_life(&self, job: &str, attempt: u64, t: u64) -> Option<usize> {
        let landings = self.landed.get(job)?;
        landings.iter().rev().find(|(at, a, ..)| *at <= t && *a == attempt).map(|&(_, _, life, _)| life)
    }

    /// The life of the landing of `job`'s `attempt` stamped `ms` at or before `t` (a delivery
    /// names its tombstone's stamp: two lives' completions of one attempt can arrive together,
    /// the earlier held in the network); without a stamp (0) the newest landing's.
    fn delivered_life(&self, job: &str, attempt: u64, ms: u64, t: u64) -> Option<usize> {
        if ms == 0 {
            return self.landed_life(job, attempt, t);
        }
        let landings = self.landed.get(job)?;
        landings.iter().rev().find(|l| l.0 <= t && l.1 == attempt && l.3 == ms).map(|l| l.2)
    }

    /// The life a report at `t` of `job`'s `attempt` belongs to: its newest landing's by then,
    /// else the key's life at `t`.
    pub(super) fn reported_life(&self, job: &str, attempt: u64, t: u64) -> usize {
        self.landed_life(job, attempt, t).unwrap_or_else(|| self.at(job, t))
    }

    /// Whether `job`'s tombstone of `life` was deleted before `t`: a feed that was in a gap
    /// until then can no longer find that completion (a resync reads the tombstones).
    fn freed_before(&self, job: &str, life: usize, t: u64) -> bool {
        self.freed.get(job).and_then(|d| d.get(life)).is_some_and(|&d| d < t)
    }

    /// The store time `job`'s first landing in `life` names.
    fn stamp_ms(&self, job: &str, life: usize) -> Option<u64> {
        self.landed.get(job)?.iter().find(|l| l.2 == life).map(|l| l.3)
    }
}

/// How far a completion's tombstone time may be from the instant the store applied it before
/// P10's *complete* stops judging it, when its worker's clock had left its drift bound.
pub const STAMP_SLACK_US: u64 = 1_000_000;

/// P10 over a run (see the module's doc). A key added again after its window (the plan's
/// `ShortRetention` knob) is judged life by life: a wait for its second life woken by its first
/// life's completion (an old change delivered late, a cached completion) breaks *exact*.
pub fn check(run: &RunView<'_>) -> Vec<Violation> {
    let events = run.events;
    let lives = KeyLives::of(events);
    // The store's record of each completion: (job, life) → (attempt, first time a node
    // reported it).
    let mut recorded: BTreeMap<(&str, usize), (u64, u64)> = BTreeMap::new();
    // Jobs whose completion's tombstone was stamped by a node whose clock had left its drift
    // bound (poolfeed seed 1968: a worker's clock jumped 3.9 s back and ran at 0.46, its
    // estimate of the store's time stamped a completion at 30.1 s with 23.8 s, and the other
    // nodes' feeds took it for history older than their horizon), when the stamp is off the
    // instant the store applied it by more than [`STAMP_SLACK_US`]. Keel's store-time estimate
    // holds only within the bound: *complete* does not judge them (*exact*, *once* and
    // *woken* do: `wait_for` reads the tombstone whatever its time).
    let mut untame: Vec<&str> = Vec::new();
    for e in events {
        if let Some(PoolEvent::Completed { job, attempt, .. }) = e.pool() {
            let job = plain(job);
            let life = lives.reported_life(job, *attempt, e.t_us);
            recorded.entry((job, life)).or_insert((*attempt, e.t_us));
            if let Some(n) = e.node.index()
                && run.plan.clock_beyond_bound(n, e.t_us / 1000)
            {
                untame.push(job);
            }
        }
    }
    // When the store says each life completed (its tombstone's store time, as a global
    // instant): earlier than the worker's `completed` when the write's reply was lost and a
    // retry found it landed (poolfeed seed 1222: landed at 7.8 s, reported at 12.3 s, to a node
    // that started at 8.0 s, for which it is history).
    let store_clock = super::StoreClock::of(events);
    let stamped =
        |job: &str, life: usize| Some(store_clock?.global_us(lives.stamp_ms(job, life).filter(|&ms| ms > 0)?));
    let untimed: BTreeSet<&str> = untame
        .into_iter()
        .filter(|job| {
            let first = lives.landed.get(job).and_then(|l| l.first());
            match (first.and_then(|l| stamped(job, l.2)), first) {
                (Some(stamp), Some(&(applied, ..))) => stamp.abs_diff(applied) > STAMP_SLACK_US,
                _ => false,
            }
        })
        .collect();
    let mut v = Vec::new();
    // Judges a completion a node was given at `t` and returns the key's life it belongs to.
    let exact = |v: &mut Vec<Violation>, t: u64, node: Who, what: &str, job: &str, attempt: u64, ms: u64| {
        let Some(life) = lives.delivered_life(job, attempt, ms, t) else {
            v.push(Violation::new(
                "P10",
                t,
                format!("{node}: {what} {job} attempt {attempt}, a completion the store never recorded"),
            ));
            return None;
        };
        if let Some(&(a, _)) = recorded.get(&(job, life))
            && a != attempt
        {
            v.push(Violation::new(
                "P10",
                t,
                format!("{node}: {what} {job} attempt {attempt}, but the store recorded attempt {a}"),
            ));
        }
        Some(life)
    };
    // Listeners by (node, life start); waits: (node, job, began, ended, the key's life).
    let mut listeners: BTreeMap<(Who, u64), Listener<'_>> = BTreeMap::new();
    let mut waits: Vec<(Who, &str, u64, Option<u64>, usize)> = Vec::new();
    let mut open_waits: BTreeMap<(Who, &str), usize> = BTreeMap::new();
    for e in events {
        let Some(r) = rec(e) else { continue };
        let life = run.timeline.life_at(e.node, e.t_us).map_or(0, |l| l.start);
        match r {
            Rec::FeedStart {} => {
                listeners.insert((e.node, life), Listener { began: e.t_us, ..Listener::default() });
            }
            Rec::FeedGot { job, attempt, ms, dropped } => {
                let key_life = exact(&mut v, e.t_us, e.node, "the completion feed delivered", job, *attempt, *ms);
                if let Some(l) = listeners.get_mut(&(e.node, life)) {
                    l.dropped = l.dropped.max(*dropped);
                    let key_life = key_life.unwrap_or_else(|| lives.at(job, e.t_us));
                    let (n, _) = l.got.entry((job.as_str(), key_life)).or_insert((0, e.t_us));
                    *n += 1;
                    if *n == 2 {
                        let what = format!("{}: the completion feed delivered {job} twice", e.node);
                        v.push(Violation::new("P10", e.t_us, what));
                    }
                }
            }
            Rec::FeedEnd { dropped } => {
                if let Some(l) = listeners.get_mut(&(e.node, life)) {
                    l.dropped = l.dropped.max(*dropped);
                    l.closed = Some(e.t_us);
                }
            }
            Rec::WaitBegun { job, life } => {
                open_waits.insert((e.node, job.as_str()), waits.len());
                waits.push((e.node, job.as_str(), e.t_us, None, usize::try_from(*life).unwrap_or(usize::MAX)));
            }
            Rec::WaitDone { job, attempt, ms } => {
                let got = exact(&mut v, e.t_us, e.node, "wait_for returned", job, *attempt, *ms);
                if let Some(i) = open_waits.remove(&(e.node, job.as_str())) {
                    waits[i].3 = Some(e.t_us);
                    let wanted = waits[i].4;
                    if let Some(got) = got.filter(|&got| got < wanted) {
                        let what = format!(
                            "{}: wait_for({job}) for the key's life {wanted} (added again after its window) returned life {got}'s completion, attempt {attempt}",
                            e.node
                        );
                        v.push(Violation::new("P10", e.t_us, what));
                    }
                }
            }
            Rec::WaitFailed { job, .. } => {
                if let Some(i) = open_waits.remove(&(e.node, job.as_str())) {
                    waits[i].3 = Some(e.t_us);
                }
            }
            _ => {}
        }
    }
    let due = |t_c: u64, from: u64| t_c.max(from).max(run.heal_us).saturating_add(DELIVERY_US);
    // The end of the life `node` was in at `t`, or its graceful stop's start: past it, nothing
    // is owed (a stopping pool closes its feed and fails its waiters).
    let life_end = |node: Who, t: u64| {
        run.timeline.life_at(node, t).map_or(t, |l| l.stop_requested.map_or(l.end, |s| s.min(l.end)))
    };
    for (&(node, _), l) in &listeners {
        if l.dropped > 0 {
            continue; // counted: the subscriber was told
        }
        let end = l.closed.map_or(u64::MAX, |c| c).min(life_end(node, l.began));
        for (&(job, key_life), &(_, t_c)) in recorded.iter().filter(|((job, _), _)| !untimed.contains(*job)) {
            let deadline = due(t_c, 0);
            let late = l.got.get(&(job, key_life)).is_none_or(|&(_, first)| first > deadline);
            let t_landed = stamped(job, key_life).map_or(t_c, |t| t.min(t_c));
            let owed = t_landed >= l.began + LISTEN_MARGIN_US && deadline <= end;
            if owed && late && !lives.freed_before(job, key_life, deadline) {
                let what = format!(
                    "{node}: the completion feed never delivered {job} (recorded at {:.3}s, due by {:.3}s)",
                    t_c as f64 / 1e6,
                    deadline as f64 / 1e6
                );
                v.push(Violation::new("P10", deadline, what));
            }
        }
    }
    for &(node, job, began, ended, key_life) in &waits {
        let Some(&(_, t_c)) = recorded.get(&(job, key_life)) else { continue };
        let deadline = due(t_c, began);
        let owed = deadline <= life_end(node, began) && !lives.freed_before(job, key_life, deadline);
        if owed && ended.is_none_or(|t| t > deadline) {
            let what = format!(
                "{node}: wait_for({job}) begun at {:.3}s not woken by its completion (recorded at {:.3}s) by {:.3}s",
                began as f64 / 1e6,
                t_c as f64 / 1e6,
                deadline as f64 / 1e6
            );
            v.push(Violation::new("P10", deadline, what));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Ev, WorldEv};
    use crate::scenario::AppEv;
    use crate::scenario::test_history::judge;

    const N0: Who = Who::Node(0);

    fn at(t_ms: u64, ev: impl Into<Ev>) -> Event {
        Event { t_us: t_ms * 1000, node: N0, ev: ev.into() }
    }

    fn app(t_ms: u64, r: Rec) -> Event {
        at(t_ms, Ev::App(AppEv::Pool(r)))
    }

    fn completed(t_ms: u64, job: &str, attempt: u64) -> Event {
        let e = PoolEvent::Completed { job: job.into(), worker: "w".into(), attempt };
        at(t_ms, Ev::Core(keel::observe::Event::Pool(e.to_static())))
    }

    fn pool_ev(t_ms: u64, e: PoolEvent<'_>) -> Event {
        at(t_ms, Ev::Core(keel::observe::Event::Pool(e.to_static())))
    }

    /// P107: a listener's drop count off its node's reported drops fires; one equal to them
    /// (drops reported between deliveries included) does not, and a restart starts over.
    #[test]
    fn a_drop_count_off_the_nodes_drops_fires_p107() {
        let got = |t, dropped| app(t, Rec::FeedGot { job: "j".into(), attempt: 1, ms: 0, dropped });
        let drops = |t, dropped| pool_ev(t, PoolEvent::FeedDropped { dropped });
        let p107 = |events: &[Event]| {
            judge(events, 0, 20_000, feed_drops_counted).iter().map(|v| (v.invariant, v.t_us)).collect::<Vec<_>>()
        };
        let start = || vec![at(0, WorldEv::NodeStart {}), app(0, Rec::FeedStart {})];
        let mut ok = start();
        ok.extend([got(10, 0), drops(20, 2), got(30, 2), drops(40, 1), app(50, Rec::FeedEnd { dropped: 3 })]);
        assert_eq!(p107(&ok), []);
        let mut inflated = start();
        inflated.extend([got(10, 1)]);
        assert_eq!(p107(&inflated), [("P107", 10_000)]);
        let mut hidden = start();
        hidden.extend([drops(20, 2), app(50, Rec::FeedEnd { dropped: 0 })]);
        assert_eq!(p107(&hidden), [("P107", 50_000)]);
        let mut restarted = start();
        restarted.extend([drops(20, 2), at(30, WorldEv::NodeStart {}), app(30, Rec::FeedStart {}), got(40, 0)]);
        assert_eq!(p107(&restarted), []);
    }

    /// P94: a completion feed that ends before its node's stop began fires (another node's stop
    /// does not excuse it); one that ends after it does not.
    #[test]
    fn a_feed_that_ends_while_its_node_runs_fires_p94() {
        let start = at(0, WorldEv::NodeStart {});
        let stopping = pool_ev(500, PoolEvent::NodeStopping { pool: "sim".into(), node: "n0".into() });
        let end = |t| app(t, Rec::FeedEnd { dropped: 0 });
        let p94 = |events: &[Event]| {
            judge(events, 0, 20_000, feeds_end_with_their_node)
                .iter()
                .map(|v| (v.invariant, v.t_us))
                .collect::<Vec<_>>()
        };
        assert_eq!(p94(&[start.clone(), app(0, Rec::FeedStart {}), end(10)]), [("P94", 10_000)]);
        assert_eq!(p94(&[start.clone(), app(0, Rec::FeedStart {}), stopping.clone(), end(510)]), []);
        let other = Event { node: Who::Node(1), ..stopping };
        assert_eq!(p94(&[start, other, end(510)]), [("P94", 510_000)], "another node's stop");
    }

    /// P95: a subscriber refused while its node runs with room for it fires; one refused after
    /// its node's stop began, or by another node whose stop began, does not excuse it.
    #[test]
    fn a_subscriber_refused_while_its_node_runs_fires_p95() {
        let start = at(0, WorldEv::NodeStart {});
        let stopping = pool_ev(500, PoolEvent::NodeStopping { pool: "sim".into(), node: "n0".into() });
        let refused = |t| app(t, Rec::FeedRefused { error: "too many waiters".into() });
        let p95 = |events: &[Event]| {
            judge(events, 0, 20_000, feeds_refused_only_full_or_stopped)
                .iter()
                .map(|v| (v.invariant, v.t_us))
                .collect::<Vec<_>>()
        };
        assert_eq!(p95(&[start.clone(), refused(10)]), [("P95", 10_000)]);
        assert_eq!(p95(&[start.clone(), app(0, Rec::FeedStart {}), refused(10)]), [("P95", 10_000)]);
        assert_eq!(p95(&[start.clone(), stopping.clone(), refused(510)]), []);
        let stopped = app(20, Rec::FeedRefused { error: keel::pool::PoolError::Stopped.to_string() });
        assert_eq!(p95(&[start.clone(), stopped]), [], "its shutdown token cancelled (poolfeed seed 230)");
        let other = Event { node: Who::Node(1), ..stopping };
        assert_eq!(p95(&[start, other, refused(510)]), [("P95", 510_000)], "another node's stop");
    }

    /// P81: `dispatch_and_wait`'s wait is registered before its `dispatched` (MC348: after).
    #[test]
    fn a_wait_registered_after_its_dispatch_fires_p81() {
        let called = app(10, Rec::AndWaitCalled { job: "j".into() });
        let registered = pool_ev(10, PoolEvent::CompletionWaitRegistered { job: "j".into() });
        let dispatched =
            pool_ev(12, PoolEvent::Dispatched { job: "j".into(), worker: "w".into(), attempt: 1, now_ms: 12 });
        let p81 = |events: &[Event]| judge(events, 0, 20_000, waits_registered_first).len();
        assert_eq!(p81(&[called.clone(), registered.clone(), dispatched.clone()]), 0);
        assert_eq!(p81(&[called.clone(), dispatched.clone(), registered.clone()]), 1, "MC348's order");
        assert_eq!(p81(&[dispatched, registered]), 0, "a plain dispatch is not judged");
    }

    fn got(t_ms: u64, job: &str, attempt: u64) -> Event {
        app(t_ms, Rec::FeedGot { job: job.into(), attempt, ms: 0, dropped: 0 })
    }

    /// The store node's record of a completion landing: job `job`'s `attempt`, stamped `ms`.
    fn landed(t_ms: u64, job: &str, attempt: u64, ms: u64) -> Event {
        let (job, worker, by) = (job.into(), "w".into(), N0);
        let ev = ServerEv::CompletionLanded { job, attempt, worker, completed_ms: ms, by };
        Event { t_us: t_ms * 1000, node: Who::Store, ev: Ev::Server(ev) }
    }

    /// P10 on a run healed at 1 s that ends at 20 s; node 0 listens from 0. Each `completed`
    /// of `tail` lands at the store at its instant.
    fn p10(tail: Vec<Event>) -> Vec<(u64, String)> {
        let mut events = vec![at(0, WorldEv::NodeStart {}), app(0, Rec::FeedStart {})];
        for e in tail {
            if let Some(PoolEvent::Completed { job, attempt, .. }) = e.pool() {
                events.push(landed(e.t_us / 1000, plain(job), *attempt, 0));
            }
            events.push(e);
        }
        let v = judge(&events, 1_000_000, 20_000_000, check);
        v.into_iter().map(|v| (v.t_us, v.invariant.to_owned())).collect()
    }

    #[test]
    fn a_feed_that_loses_repeats_or_alters_a_completion_fires_p10() {
        // Delivered once, within the bound: nothing.
        assert!(p10(vec![completed(5_000, "j", 2), got(5_010, "j", 2)]).is_empty());
        // Never delivered: judged at the completion + the bound.
        assert_eq!(p10(vec![completed(5_000, "j", 2)]), [(6_500_000, "P10".to_owned())]);
        // Late counts as never: the subscriber must have it by the bound.
        assert_eq!(p10(vec![completed(5_000, "j", 2), got(6_501, "j", 2)]).len(), 1);
        // Recorded before the subscriber listened long enough: not owed.
        assert!(p10(vec![completed(900, "j", 1)]).is_empty(), "inside the listening margin");
        // Twice, and the wrong attempt: at the instant of the delivery.
        let twice = p10(vec![completed(5_000, "j", 2), got(5_010, "j", 2), got(5_400, "j", 2)]);
        assert_eq!(twice, [(5_400_000, "P10".to_owned())]);
        let wrong = p10(vec![completed(5_000, "j", 2), got(5_010, "j", 1)]);
        assert_eq!(wrong[0], (5_010_000, "P10".to_owned()));
        // A subscriber that counted drops was told: not judged for completeness.
        let dropped = app(5_100, Rec::FeedGot { job: "k".into(), attempt: 1, ms: 0, dropped: 1 });
        assert!(p10(vec![completed(5_000, "j", 2), completed(5_000, "k", 1), dropped]).is_empty());
        // A feed closed by the node's stop owes nothing after it.
        assert!(p10(vec![app(5_500, Rec::FeedEnd { dropped: 0 }), completed(5_000, "j", 2)]).is_empty());
    }

    #[test]
    fn a_wait_not_woken_by_its_completion_fires_p10() {
        let begun = |t| app(t, Rec::WaitBegun { job: "j".into(), life: 0 });
        let done = |t, attempt| app(t, Rec::WaitDone { job: "j".into(), attempt, ms: 0 });
        let fed = |t| got(t, "j", 2);
        assert!(p10(vec![begun(4_000), completed(5_000, "j", 2), fed(5_010), done(5_020, 2)]).is_empty());
        assert_eq!(p10(vec![begun(4_000), completed(5_000, "j", 2), fed(5_010)]), [(6_500_000, "P10".to_owned())]);
        assert_eq!(p10(vec![begun(4_000), completed(5_000, "j", 2), fed(5_010), done(5_020, 1)]).len(), 1);
        // A wait that failed (the node stopped) is not owed a completion.
        let failed = app(4_500, Rec::WaitFailed { job: "j".into(), error: "stopped".into() });
        assert!(p10(vec![begun(4_000), failed, completed(5_000, "j", 2), fed(5_010)]).is_empty());
    }

    /// A key added again after its window (the plan's `ShortRetention` knob): a wait for its
    /// second life returns that life's completion; one that returns the first life's (MC433:
    /// answered from what the feed remembers delivering) fires P10 at its return. A feed that
    /// delivers each life once is clean, and a first life's completion whose tombstone went
    /// before its delivery was due is not owed (a resync cannot find it).
    #[test]
    fn a_wait_for_a_second_life_given_the_first_lifes_completion_fires_p10() {
        let freed = |t_ms: u64| {
            let ev = ServerEv::TombstoneDeleted { job: "j".into(), completed_ms: 0, now_ms: 0, by: N0 };
            Event { t_us: t_ms * 1000, node: Who::Store, ev: Ev::Server(ev) }
        };
        let begun = |t, life| app(t, Rec::WaitBegun { job: "j".into(), life });
        let done = |t| app(t, Rec::WaitDone { job: "j".into(), attempt: 1, ms: 0 });
        let first = vec![completed(5_000, "j", 1), got(5_010, "j", 1), freed(8_000)];
        let second = |tail: Vec<Event>| p10([first.clone(), tail].concat());
        assert!(second(vec![begun(9_000, 1), completed(9_500, "j", 1), got(9_510, "j", 1), done(9_520)]).is_empty());
        let stale = second(vec![begun(9_000, 1), done(9_001), completed(9_500, "j", 1), got(9_510, "j", 1)]);
        assert_eq!(stale, [(9_001_000, "P10".to_owned())], "the first life's completion");
        let lost = p10(vec![completed(5_000, "j", 1), freed(5_500), got(6_000, "k", 1)]);
        assert!(lost.iter().all(|(t, _)| *t == 6_000_000), "only k's unrecorded delivery: {lost:?}");
    }

    /// Poolfeed seed 1968: a completion stamped by a node whose clock had left its drift bound
    /// (a backward jump, a rate beyond the bound) before it, its tombstone's time off the
    /// instant the store applied it by more than the slack, is not owed to subscribers.
    #[test]
    fn a_completion_stamped_by_a_clock_beyond_its_bound_is_not_owed_to_subscribers() {
        use crate::plan::{Fault, FaultPlan, Profile, Timed};
        use crate::timeline::Timeline;
        let owed = |stamp_ms: u64, faults: Vec<(u64, Fault)>| {
            let events = vec![
                Event { t_us: 0, node: Who::Store, ev: Ev::Server(ServerEv::StoreUp { now_ms: 0 }) },
                at(0, WorldEv::NodeStart {}),
                app(0, Rec::FeedStart {}),
                landed(9_990, "j", 2, stamp_ms),
                completed(10_000, "j", 2),
                app(19_000, Rec::Tombstones { jobs: vec!["j".into()], ms: vec![stamp_ms] }),
            ];
            let events_of_plan = faults.into_iter().map(|(at_ms, fault)| Timed { at_ms, fault }).collect();
            let plan = FaultPlan {
                seed: 0,
                profile: Profile::Calm,
                enabled: vec![],
                heal_at_ms: 1_000,
                events: events_of_plan,
            };
            let timeline = Timeline::derive(&events, 20_000_000);
            let run =
                RunView { plan: &plan, events: &events, timeline: &timeline, heal_us: 1_000_000, end_us: 20_000_000 };
            check(&run).len()
        };
        let back = |node| Fault::ClockJump { node, delta_ms: -3_000 };
        assert_eq!(owed(6_900, vec![]), 1, "a stamp off, the clocks within their bound");
        assert_eq!(owed(6_900, vec![(8_000, back(0))]), 0, "a backward jump before the stamp");
        assert_eq!(owed(9_900, vec![(8_000, back(0))]), 1, "the stamp within the slack");
        assert_eq!(owed(6_900, vec![(8_000, Fault::ClockRate { node: 0, rate: 0.4, beyond: true })]), 0);
        assert_eq!(owed(6_900, vec![(8_000, Fault::ClockRate { node: 0, rate: 0.99, beyond: false })]), 1);
        assert_eq!(owed(6_900, vec![(8_000, Fault::ClockJump { node: 0, delta_ms: 3_000 })]), 1, "forward");
        assert_eq!(owed(6_900, vec![(11_000, back(0))]), 1, "after the stamp");
        assert_eq!(owed(6_900, vec![(8_000, back(1))]), 1, "another node's clock");
    }
}
