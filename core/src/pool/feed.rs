//! The pool-wide completion feed: every node (one that only dispatches too) learns of the
//! completion of every job of the pool, without polling, and a caller can wait for one job.
//!
//! **Source: the completion tombstones.** A completion is recorded by one guarded transaction
//! that deletes the job record and writes the tombstone `d/{job}` = `attempt|worker|ms` (see
//! `complete.rs`), so the tombstone *is* the store's record of the completion: it cannot exist
//! without the completion, nor the completion without it. Every node already follows the job
//! map's change feed (the router); a tombstone change is a completion.
//!
//! **No loss across a feed gap** (the `rmap` recipe, docs/rmap.md): the change feed is
//! at-most-once, so the feed is reconciled from a snapshot of the job map, on every
//! `WatchEvent::Gap` (reconnect, store restart) and on every sweep (the sweeper reads the whole
//! job map anyway). A reconcile delivers each tombstone not yet delivered. What was delivered is
//! remembered per job for [`horizon`](FeedState::new) of store time past the newest delivered
//! completion, so memory is bounded by the completion rate, not by the dedup window; a tombstone
//! older than that was delivered already (or predates the node). This state is a pure machine
//! ([`FeedState`]); the node's router and sweeper feed it.
//!
//! **Waiting for one job** ([`Waiters`]): a waiter is registered *before* its dispatch (or, for a
//! job dispatched earlier, before the store is checked for its tombstone), and every tombstone
//! the node sees for that job (feed change, reconcile, start) resolves it, delivered before or
//! not. So a completion is never missed between "register" and "wait".

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, oneshot};

use super::table::KeyMap;
use crate::mutants::{self, Mutant};

/// One completed job, as the pool recorded it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct JobCompletion {
    /// The job's key.
    pub job: String,
    /// The attempt that completed (the fence of the job's ownership).
    pub attempt: u64,
    /// The worker that ran it.
    pub worker: String,
    /// Store time (ms) read by the worker just before it recorded the completion.
    pub completed_ms: u64,
}

impl JobCompletion {
    /// Parse tombstone `attempt|worker|ms` of `job` (worker ids contain no `|`).
    pub(crate) fn from_tombstone(job: &str, raw: &str) -> Option<JobCompletion> {
        CompletionRef::from_tombstone(job, raw).map(|c| c.owned())
    }

    /// The completion time of tombstone `raw`: [`from_tombstone`](Self::from_tombstone)'s
    /// `completed_ms`, under the same checks, without its copies of the job and the worker (a
    /// sweep asks it of every entry of its completer slice).
    pub(crate) fn completed_ms_of(raw: &str) -> Option<u64> {
        let (attempt, rest) = raw.split_once('|')?;
        let (_worker, ms) = rest.rsplit_once('|')?;
        attempt.parse::<u64>().ok()?;
        ms.parse().ok()
    }

    /// The tombstone value of this completion.
    pub(crate) fn tombstone(&self) -> String {
        format!("{}|{}|{}", self.attempt, self.worker, self.completed_ms)
    }
}

/// A [`JobCompletion`] borrowed from the tombstone it was read from: a feed takes in every
/// tombstone of each slice a sweep reads, most of them delivered already, and copies only those
/// it hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CompletionRef<'a> {
    job: &'a str,
    attempt: u64,
    worker: &'a str,
    completed_ms: u64,
}

impl<'a> CompletionRef<'a> {
    /// [`JobCompletion::from_tombstone`], borrowed.
    fn from_tombstone(job: &'a str, raw: &'a str) -> Option<Self> {
        let (attempt, rest) = raw.split_once('|')?;
        let (worker, ms) = rest.rsplit_once('|')?;
        Some(CompletionRef { job, attempt: attempt.parse().ok()?, worker, completed_ms: ms.parse().ok()? })
    }

    fn owned(&self) -> JobCompletion {
        JobCompletion {
            job: self.job.to_owned(),
            attempt: self.attempt,
            worker: self.worker.to_owned(),
            completed_ms: self.completed_ms,
        }
    }

    /// Whether `c` is this completion.
    fn is(&self, c: &JobCompletion) -> bool {
        c.job == self.job && c.attempt == self.attempt && c.worker == self.worker && c.completed_ms == self.completed_ms
    }
}

/// Which completions were delivered: the pure part of the feed.
#[derive(Debug)]
pub(crate) struct FeedState {
    /// job → tombstone delivered (or seen at the baseline), pruned past the horizon.
    seen: KeyMap<JobCompletion>,
    /// Newest `completed_ms` seen.
    high_ms: u64,
    horizon_ms: u64,
    /// Store time when the node started: snapshot entries older than this are history.
    start_ms: u64,
    /// The snapshot floor as it was when the change feed last reported a gap, until a whole
    /// snapshot read after that gap is taken in: what the feed delivers after a gap says
    /// nothing about what it lost in it.
    gap_floor: Option<u64>,
    /// Gaps reported so far: a whole snapshot heals the gaps reported before its read only.
    gaps: u64,
    /// The highest floor a [`prune`](Self::prune) forgot deliveries below. A feed change that
    /// old is one the reconcile that pruned it offered already: a change that comes late,
    /// behind the snapshot, from a feed that buffered it across a break (a change landing that
    /// long after its time read breaks the horizon's contract, see [`new`](Self::new)).
    forgotten_below: u64,
}

/// Where the tombstones a feed takes in come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// A change on the job map's feed.
    Change,
    /// One slice of the job map (a sweep's bounded reconcile).
    Slice,
    /// A whole snapshot of the job map, read after [`FeedState::gaps`] gaps were reported.
    Whole { gaps: u64 },
}

impl FeedState {
    /// `start_ms`: store time when the node started (completions before it are history, not
    /// news). `horizon_ms`: how long past the newest completion a delivered one is remembered;
    /// it must exceed the longest time between a worker's time read and its completion write
    /// landing (the completion's retries), or a late tombstone could be skipped by a reconcile.
    pub fn new(start_ms: u64, horizon_ms: u64) -> Self {
        assert!(horizon_ms > 0, "a feed must remember what it delivered");
        FeedState {
            seen: KeyMap::default(),
            high_ms: start_ms,
            horizon_ms,
            start_ms,
            gap_floor: None,
            gaps: 0,
            forgotten_below: 0,
        }
    }

    /// The change feed reported a gap (or a hole): until a whole snapshot read after it is
    /// taken in, snapshots offer everything down to the floor as it was now.
    pub fn gap(&mut self) {
        let floor = self.high_floor();
        self.gap_floor = Some(self.gap_floor.map_or(floor, |f| f.min(floor)));
        self.gaps += 1;
    }

    /// Gaps reported so far (read before a whole snapshot's request).
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    fn high_floor(&self) -> u64 {
        self.high_ms.saturating_sub(self.horizon_ms)
    }

    /// Where a snapshot about to be read stops offering old entries: a horizon below the
    /// newest completion seen *before* it, or, after a gap not yet healed, before the gap.
    /// Taken once per snapshot: a floor that rose with the snapshot's own newer entries would
    /// skip, as "delivered already", older ones this node never saw (a node cut off for longer
    /// than the horizon; MC27, found by P10); so would one raised by what the feed delivered
    /// after the gap (MC28, found by P10 too).
    pub fn snapshot_floor(&self) -> u64 {
        if mutants::active(Mutant::MC27) {
            return 0; // MC27 applies the rising floor in `observe` instead
        }
        match self.gap_floor {
            Some(f) if !mutants::active(Mutant::MC28) => f,
            _ => self.high_floor(),
        }
    }

    /// A whole snapshot read after `gaps` gaps was taken in: those gaps are healed.
    pub fn healed(&mut self, gaps: u64) {
        if gaps == self.gaps {
            self.gap_floor = None;
        }
    }

    /// A tombstone the node saw: from the feed (`floor` `None`) or one entry of a snapshot read
    /// with `floor` ([`snapshot_floor`](Self::snapshot_floor)). Returns it if it is news: not
    /// delivered yet and, from a snapshot, not below the floor (entries older than that were
    /// delivered before, or predate the node).
    #[cfg(test)]
    pub fn observe(&mut self, c: &JobCompletion, floor: Option<u64>) -> bool {
        let c = CompletionRef { job: &c.job, attempt: c.attempt, worker: &c.worker, completed_ms: c.completed_ms };
        self.observe_ref(c, floor)
    }

    /// [`observe`](Self::observe) of a borrowed completion (copied only if it is news).
    fn observe_ref(&mut self, c: CompletionRef<'_>, floor: Option<u64>) -> bool {
        if self.seen.get(c.job).is_some_and(|s| c.is(s)) {
            return false;
        }
        let floor = match floor {
            Some(_) if mutants::active(Mutant::MC27) => Some(self.high_ms.saturating_sub(self.horizon_ms)),
            f => f,
        };
        if floor.is_some_and(|floor| c.completed_ms < self.start_ms || c.completed_ms < floor) {
            return false;
        }
        if floor.is_none() && c.completed_ms < self.forgotten_below && !mutants::active(Mutant::MC99) {
            return false; // delivered, or offered by the reconcile that forgot it
        }
        self.high_ms = self.high_ms.max(c.completed_ms);
        self.seen.insert(c.job.to_owned(), c.owned());
        true
    }

    /// Forget deliveries below what the next snapshot offers (after a reconcile): nothing it
    /// offers is forgotten, so nothing is delivered twice.
    pub fn prune(&mut self) {
        let floor = self.snapshot_floor();
        self.seen.retain(|_, c| c.completed_ms >= floor);
        self.forgotten_below = self.forgotten_below.max(floor);
    }

    /// Remembered deliveries.
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }

    /// The delivery remembered for `job` (MC433 only: a wait answered from it).
    #[cfg(feature = "mutants")]
    pub fn remembered_of(&self, job: &str) -> Option<JobCompletion> {
        self.seen.get(job).cloned()
    }
}

/// Capacity of one feed subscriber's buffer.
pub const FEED_BUFFER_MAX: usize = 1024;
/// Feed subscribers per node.
pub const FEED_SUBSCRIBERS_MAX: usize = 64;
/// Jobs waited for at once per node.
pub const WAITERS_MAX: usize = 100_000;

/// A pool-wide stream of [`JobCompletion`]s, from [`PoolNode::completions`](super::PoolNode::completions).
/// Bounded: when the buffer is full the newest completion is dropped for this subscriber and
/// counted ([`dropped`](Self::dropped)); the node never waits for a slow subscriber. Closed
/// (`recv` returns `None`) when the node stops.
#[derive(Debug)]
pub struct CompletionFeed {
    rx: mpsc::Receiver<JobCompletion>,
    dropped: Arc<AtomicU64>,
}

impl CompletionFeed {
    /// The next completion, or `None` once the node stopped.
    pub async fn recv(&mut self) -> Option<JobCompletion> {
        // MC442: the feed read as ended at once.
        if mutants::active(Mutant::MC442) {
            return None;
        }
        self.rx.recv().await
    }

    /// A buffered completion, if any, without waiting.
    pub fn try_recv(&mut self) -> Option<JobCompletion> {
        self.rx.try_recv().ok()
    }

    /// Completions dropped because this subscriber's buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

struct Sub {
    tx: mpsc::Sender<JobCompletion>,
    dropped: Arc<AtomicU64>,
}

#[derive(Default)]
struct Registry {
    subs: Vec<Sub>,
    /// job → its registered waits.
    waiters: BTreeMap<String, Vec<Wait>>,
    waiting: usize,
    /// Most waiters at once ([`PoolConfigBuilder::max_waiters`](super::PoolConfigBuilder::max_waiters)).
    max_waiting: usize,
    next_id: u64,
    closed: bool,
}

/// One registered wait for a job's completion.
struct Wait {
    id: u64,
    tx: oneshot::Sender<JobCompletion>,
    /// The job map's revision at its caller's own read of the key (`wait_for`) or its dispatch
    /// (`dispatch_and_wait`): a change at or below it is older than what the caller saw, an
    /// earlier life's if the key was added again. None until that read or write comes back.
    floor: Option<u64>,
    /// The newest change taken in while `floor` was unknown: (its revision, its completion).
    held: Option<(u64, JobCompletion)>,
}

/// Which waits a sighting of a tombstone may resolve.
#[derive(Clone, Copy)]
enum Sighting {
    /// Every wait (unit tests; MC434 makes reads so).
    Any,
    /// A read that began at this [`Feed::read_mark`]: the waits registered before it.
    Read { waits_before: u64 },
    /// A change at this revision: the waits whose floor it is above; held for those whose
    /// floor is not known yet.
    Change { rev: u64 },
}

/// Take out of `waits` those `seen` resolves now (holding `c` for a wait whose floor is unknown).
fn resolved_by(waits: &mut Vec<Wait>, seen: Sighting, c: &CompletionRef<'_>) -> Vec<Wait> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < waits.len() {
        let w = &mut waits[i];
        let now = match seen {
            Sighting::Any => true,
            Sighting::Read { waits_before } => w.id <= waits_before,
            Sighting::Change { rev } => match w.floor {
                Some(floor) => rev > floor,
                None => {
                    if w.held.as_ref().is_none_or(|(held, _)| rev > *held) {
                        w.held = Some((rev, c.owned()));
                    }
                    false
                }
            },
        };
        if now {
            out.push(waits.remove(i));
        } else {
            i += 1;
        }
    }
    out
}

/// Subscribers and waiters of one node, plus the feed state.
pub(crate) struct Feed {
    state: Mutex<FeedState>,
    reg: Arc<Mutex<Registry>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A registered wait for one job's completion; dropping it deregisters.
pub(crate) struct Waiter {
    reg: Arc<Mutex<Registry>>,
    job: String,
    id: u64,
    pub rx: oneshot::Receiver<JobCompletion>,
}

impl Waiter {
    /// The job map's revision its caller saw the key at (its own read, or its dispatch's
    /// write): from now on only changes above it resolve the wait, and a change held meanwhile
    /// that is above it resolves it at once.
    pub fn floor(&self, rev: u64) {
        let mut r = lock(&self.reg);
        let Some(waits) = r.waiters.get_mut(&self.job) else { return };
        let Some(i) = waits.iter().position(|w| w.id == self.id) else { return };
        let held = waits[i].held.take().filter(|(held, _)| *held > rev);
        let Some((_, c)) = held else {
            waits[i].floor = Some(rev);
            return;
        };
        let w = waits.remove(i);
        if waits.is_empty() {
            r.waiters.remove(&self.job);
        }
        r.waiting -= 1;
        crate::observe::emit(crate::observe::PoolEvent::CompletionWaitEnded {
            job: (&self.job).into(),
            resolved: true,
        });
        let _ = w.tx.send(c);
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // MC399: a wait given up leaves its registration behind.
        if crate::mutants::active(crate::mutants::Mutant::MC399) {
            return;
        }
        let mut r = lock(&self.reg);
        if let Some(list) = r.waiters.get_mut(&self.job) {
            let before = list.len();
            list.retain(|w| w.id != self.id);
            let removed = before - list.len();
            if list.is_empty() {
                r.waiters.remove(&self.job);
            }
            r.waiting -= removed;
            if removed > 0 {
                crate::observe::emit(crate::observe::PoolEvent::CompletionWaitEnded {
                    job: (&self.job).into(),
                    resolved: false,
                });
            }
        }
    }
}

/// What a delivery did, for the node's events and metrics.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Delivered {
    /// Completions that were news (offered to subscribers).
    pub news: usize,
    /// Offers dropped because a subscriber's buffer was full.
    pub dropped: u64,
    /// Waiters resolved.
    pub resolved: usize,
}

impl Feed {
    pub fn new(start_ms: u64, horizon_ms: u64) -> Self {
        let reg = Registry { max_waiting: WAITERS_MAX, ..Registry::default() };
        Feed { state: Mutex::new(FeedState::new(start_ms, horizon_ms)), reg: Arc::new(Mutex::new(reg)) }
    }

    /// The feed with at most `max` waiters registered at once.
    pub fn with_max_waiters(self, max: usize) -> Self {
        lock(&self.reg).max_waiting = max;
        self
    }

    /// A new subscriber, or `None` when the node stopped or has [`FEED_SUBSCRIBERS_MAX`].
    pub fn subscribe(&self) -> Option<CompletionFeed> {
        let mut r = lock(&self.reg);
        r.subs.retain(|s| !s.tx.is_closed());
        // MC443: every subscriber refused, as if the node had stopped.
        if r.closed || r.subs.len() >= FEED_SUBSCRIBERS_MAX || crate::mutants::active(crate::mutants::Mutant::MC443) {
            return None;
        }
        let (tx, rx) = mpsc::channel(FEED_BUFFER_MAX);
        let dropped = Arc::new(AtomicU64::new(0));
        r.subs.push(Sub { tx, dropped: dropped.clone() });
        Some(CompletionFeed { rx, dropped })
    }

    /// Register a waiter for `job`, or `None` when the node stopped or has its most waiters
    /// ([`PoolConfigBuilder::max_waiters`](super::PoolConfigBuilder::max_waiters)).
    pub fn wait(&self, job: &str) -> Option<Waiter> {
        let mut r = lock(&self.reg);
        if r.closed {
            return None;
        }
        // MC379: the bound checked past its last slot: one waiter more than configured.
        let full = if crate::mutants::active(crate::mutants::Mutant::MC379) {
            r.waiting > r.max_waiting
        } else {
            r.waiting >= r.max_waiting
        };
        if full {
            crate::observe::emit(crate::observe::PoolEvent::CompletionWaitRefused {
                job: job.into(),
                waiting: r.waiting as u64,
                max: r.max_waiting as u64,
            });
            return None;
        }
        let (tx, rx) = oneshot::channel();
        r.next_id += 1;
        let id = r.next_id;
        r.waiters.entry(job.to_owned()).or_default().push(Wait { id, tx, floor: None, held: None });
        r.waiting += 1;
        crate::observe::emit(crate::observe::PoolEvent::CompletionWaitRegistered { job: job.into() });
        Some(Waiter { reg: self.reg.clone(), job: job.to_owned(), id, rx })
    }

    /// The change feed reported a gap (or a hole in the revisions).
    pub fn gap(&self) {
        lock(&self.state).gap();
    }

    /// Deliveries the feed remembers (to deliver each completion once).
    #[cfg(test)]
    pub fn remembered(&self) -> usize {
        lock(&self.state).remembered()
    }

    /// The delivery the feed remembers for `job` (MC433 only).
    #[cfg(feature = "mutants")]
    pub fn remembered_of(&self, job: &str) -> Option<JobCompletion> {
        lock(&self.state).remembered_of(job)
    }

    /// Gaps reported so far: read before requesting a whole snapshot ([`Source::Whole`]).
    pub fn gaps(&self) -> u64 {
        lock(&self.state).gaps()
    }

    /// Tombstones seen by the node: from the feed or from a snapshot (whole: baseline, resync
    /// after a gap; or a sweep's slice). Resolves waiters of each; offers the news to
    /// subscribers without waiting.
    pub fn observe<'a>(&self, tombs: impl Iterator<Item = (&'a str, &'a str)>, source: Source) -> Delivered {
        self.sighted(tombs, source, Sighting::Any)
    }

    /// [`observe`](Self::observe) for one change of the job map's feed, at revision `rev`: it
    /// resolves the waits whose caller saw the key at an older revision. A change the watch
    /// held back until after the wait for the key's next life registered (the key's window
    /// passed, its tombstone was swept, the key was added again) is older than the caller's
    /// own read or dispatch, and no answer to it; until that read or write comes back the
    /// change is held by the wait ([`Waiter::floor`]). MC435 resolves every wait at once.
    pub fn observe_change(&self, job: &str, raw: &str, rev: u64) -> Delivered {
        let seen = if crate::mutants::active(crate::mutants::Mutant::MC435) {
            Sighting::Any
        } else {
            Sighting::Change { rev }
        };
        self.sighted([(job, raw)].into_iter(), Source::Change, seen)
    }

    /// Where a read of the job map begins: [`observe_read`](Self::observe_read) resolves only
    /// the waits registered before it.
    pub fn read_mark(&self) -> u64 {
        lock(&self.reg).next_id
    }

    /// [`observe`](Self::observe) for the tombstones of a read that began at `waits_before`
    /// ([`read_mark`](Self::read_mark)): a wait registered after the read began is not resolved
    /// by it. Its caller reads the store after registering, so it finds any tombstone the read
    /// could; one the read holds and the store no longer does belongs to an earlier life of the
    /// key (its dedup window passed, its tombstone was swept, and the key was added again): a
    /// sweep's slice read before that, taken in after the wait for the new life registered,
    /// answered it with the old life's completion (poolfeed seed 419 with the `ShortRetention`
    /// knob, round 45; P10). MC434 resolves every wait.
    pub fn observe_read<'a>(
        &self,
        tombs: impl Iterator<Item = (&'a str, &'a str)>,
        source: Source,
        waits_before: u64,
    ) -> Delivered {
        let seen = if crate::mutants::active(crate::mutants::Mutant::MC434) {
            Sighting::Any
        } else {
            Sighting::Read { waits_before }
        };
        self.sighted(tombs, source, seen)
    }

    fn sighted<'a>(
        &self,
        tombs: impl Iterator<Item = (&'a str, &'a str)>,
        source: Source,
        seen: Sighting,
    ) -> Delivered {
        // Each completion with whether it is news (delivered to subscribers), in input order.
        let mut all: Vec<(CompletionRef<'a>, bool)> = Vec::new();
        {
            let mut st = lock(&self.state);
            let floor = (source != Source::Change).then(|| st.snapshot_floor());
            for (job, raw) in tombs {
                let Some(c) = CompletionRef::from_tombstone(job, raw) else { continue };
                let news = st.observe_ref(c, floor);
                all.push((c, news));
            }
            if let Source::Whole { gaps } = source {
                st.healed(gaps);
            }
            if source != Source::Change {
                st.prune();
            }
        }
        let news = || all.iter().filter(|(_, news)| *news).map(|(c, _)| c);
        let mut out = Delivered { news: news().count(), ..Delivered::default() };
        let mut r = lock(&self.reg);
        for (c, _) in &all {
            let Some(waiting) = r.waiters.get_mut(c.job) else { continue };
            let list = resolved_by(waiting, seen, c);
            if waiting.is_empty() {
                r.waiters.remove(c.job);
            }
            r.waiting -= list.len();
            out.resolved += list.len();
            for w in list {
                crate::observe::emit(crate::observe::PoolEvent::CompletionWaitEnded {
                    job: c.job.into(),
                    resolved: true,
                });
                let _ = w.tx.send(c.owned()); // a waiter that has gone is no error
            }
        }
        for c in news() {
            for s in &r.subs {
                let sent = s.tx.try_send(c.owned());
                // MC458: the subscriber's count moved at every offer, not at each drop: it reads
                // as drops what it received, and a listener's misses are excused by it (P10).
                let counted = mutants::active(Mutant::MC458);
                if counted {
                    s.dropped.fetch_add(1, Ordering::Relaxed);
                }
                if let Err(mpsc::error::TrySendError::Full(_)) = sent {
                    if !counted {
                        s.dropped.fetch_add(1, Ordering::Relaxed);
                    }
                    out.dropped += 1;
                }
            }
        }
        out
    }

    /// The node stopped: close every subscription and fail every waiter.
    pub fn close(&self) {
        let mut r = lock(&self.reg);
        r.closed = true;
        r.subs.clear();
        r.waiters.clear();
        r.waiting = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHOLE: Source = Source::Whole { gaps: 0 };

    fn c(job: &str, attempt: u64, ms: u64) -> JobCompletion {
        JobCompletion { job: job.into(), attempt, worker: "n.1.2".into(), completed_ms: ms }
    }

    #[test]
    fn tombstones_round_trip() {
        let x = c("a|b", 3, 99);
        assert_eq!(JobCompletion::from_tombstone("a|b", &x.tombstone()), Some(x));
        assert_eq!(JobCompletion::from_tombstone("k", "junk"), None);
        for raw in ["1|w|5", "1|a|b|5", "x|w|5", "1|w|x", "1|w", "|w|5", "1||5", "", "1|w|", "18446744073709551616|w|5"]
        {
            assert_eq!(
                JobCompletion::completed_ms_of(raw),
                JobCompletion::from_tombstone("k", raw).map(|c| c.completed_ms),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn delivered_once_across_feed_and_snapshots_and_forgotten_past_the_horizon() {
        let mut s = FeedState::new(1000, 500);
        let snap = |s: &FeedState| Some(s.snapshot_floor());
        assert!(!s.observe(&c("old", 1, 100), snap(&s)), "history before the node started");
        // Within the horizon, but before the node started (cargo-mutants: `<` → `==` survived).
        assert!(!s.observe(&c("older", 1, 900), snap(&s)), "history even within the horizon");
        assert!(s.observe(&c("a", 1, 1100), None));
        assert!(!s.observe(&c("a", 1, 1100), snap(&s)), "the resync does not repeat it");
        assert!(s.observe(&c("b", 2, 1050), snap(&s)), "missed by the feed, found by the resync");
        assert!(!s.observe(&c("b", 2, 1050), None), "a late feed change does not repeat it");
        assert!(s.observe(&c("a", 1, 5000), None), "the same key completed again later is news");
        s.prune();
        assert_eq!(s.remembered(), 1, "only what is within the horizon of the newest is remembered");
        assert!(!s.observe(&c("b", 2, 1050), snap(&s)), "an old snapshot entry is not news any more");
        assert!(!s.observe(&c("b", 2, 1050), None), "nor is a feed change that comes late, behind the reconcile");
    }

    /// A feed change buffered across a break comes after the gap's whole snapshot, which
    /// delivered it and then forgot it below the horizon: it is not delivered twice (P10, poolfeed
    /// seed 106: a partition held the node's feed for 6 s).
    #[test]
    fn a_change_behind_the_reconcile_that_forgot_it_is_not_news() {
        let mut s = FeedState::new(1000, 500);
        s.gap();
        let floor = Some(s.snapshot_floor());
        assert!(s.observe(&c("x", 1, 1100), floor), "the gap's snapshot delivers it");
        assert!(s.observe(&c("y", 1, 3000), floor));
        s.healed(1);
        s.prune();
        assert_eq!(s.remembered(), 1, "x is past the horizon of the newest");
        assert!(!s.observe(&c("x", 1, 1100), None), "the late change repeats nothing");
        assert!(s.observe(&c("z", 1, 2600), None), "a change within the horizon is news");
    }

    /// The floor is the oldest completion a snapshot still offers, not the newest it skips: a
    /// prune keeps every delivery at the floor, so an entry exactly there that this node never saw
    /// is news (blind-spot hunt, round 38, B #11: `<=` for `<` lost it).
    #[test]
    fn a_snapshot_entry_exactly_at_the_floor_is_news() {
        let mut s = FeedState::new(1000, 500);
        assert!(s.observe(&c("a", 1, 1600), None));
        let floor = s.snapshot_floor();
        assert_eq!(floor, 1100);
        assert!(s.observe(&c("missed", 1, floor), Some(floor)), "at the floor: offered");
        assert!(!s.observe(&c("older", 1, floor - 1), Some(floor)), "below it: delivered before");
        s.prune();
        assert!(!s.observe(&c("missed", 1, floor), Some(s.snapshot_floor())), "remembered: not twice");
    }

    #[test]
    fn a_snapshot_after_a_long_cut_offers_everything_missed_whatever_its_key_order() {
        // The node saw up to 1100, then was cut off longer than the horizon (500). The snapshot
        // read after it holds a newer completion first in key order, then one the node missed
        // at 1200: the floor is the one from before the snapshot (600), not 3000 − 500.
        let feed = Feed::new(1000, 500);
        let sub = feed.subscribe().unwrap();
        assert_eq!(feed.observe([("a", "1|w|1100")].into_iter(), Source::Change).news, 1);
        let d = feed.observe([("k-new", "1|w|3000"), ("z-missed", "1|w|1200")].into_iter(), WHOLE);
        assert_eq!(d.news, 2, "both are news to this node");
        drop(sub);
        // The next snapshot does not repeat them, and forgets what is past the horizon.
        assert_eq!(feed.observe([("k-new", "1|w|3000"), ("z-missed", "1|w|1200")].into_iter(), WHOLE).news, 0);
    }

    #[test]
    fn after_a_gap_snapshots_offer_what_was_lost_until_a_whole_one_read_after_it() {
        // The node saw up to 1100; the feed broke (gap), then delivered a change at 3000 on
        // reconnect before any snapshot was read. A slice, then a whole snapshot read before a
        // second gap, then one read after it: each offers what the gap lost (1200).
        let feed = Feed::new(1000, 500);
        let sub = feed.subscribe().unwrap();
        feed.observe([("a", "1|w|1100")].into_iter(), Source::Change);
        feed.gap();
        let before_second = feed.gaps();
        feed.observe([("k", "1|w|3000")].into_iter(), Source::Change);
        assert_eq!(feed.observe([("y", "1|w|1150")].into_iter(), Source::Slice).news, 1, "a slice after the gap");
        feed.gap();
        let whole = Source::Whole { gaps: before_second };
        assert_eq!(feed.observe([("z", "1|w|1200")].into_iter(), whole).news, 1);
        assert_eq!(
            feed.observe([("x", "1|w|1250")].into_iter(), whole).news,
            1,
            "read before the second gap: not healed"
        );
        let whole = Source::Whole { gaps: feed.gaps() };
        assert_eq!(feed.observe([("w", "1|w|1300"), ("z", "1|w|1200")].into_iter(), whole).news, 1, "z not twice");
        // Healed: the floor is the horizon below the newest again (3000 − 500).
        assert_eq!(feed.observe([("v", "1|w|1400")].into_iter(), Source::Slice).news, 0);
        drop(sub);
    }

    /// A gap, a slice that raises the newest completion to 3000, then a slice that offers 1200,
    /// lost in the gap: its news.
    fn news_of_a_second_slice_after_a_gap() -> usize {
        let feed = Feed::new(1000, 500);
        feed.observe([("a", "1|w|1100")].into_iter(), Source::Change);
        feed.gap();
        assert_eq!(feed.observe([("k", "1|w|3000")].into_iter(), Source::Slice).news, 1);
        feed.observe([("z", "1|w|1200")].into_iter(), Source::Slice).news
    }

    /// MC28's window since the router reads nothing of its feed between a gap and the whole
    /// snapshot that heals it (2026-12-03): a sweep's slices, taken meanwhile, raise the newest
    /// completion; the next slice must still offer what the gap lost, from the floor frozen at the
    /// gap (600).
    #[test]
    fn slices_after_a_gap_keep_the_gap_floor() {
        assert_eq!(news_of_a_second_slice_after_a_gap(), 1);
    }

    /// Pins MC28, which the simulated sweeps no longer reach (its corpus plan went stale when
    /// the router stopped reading its feed before its resync).
    #[cfg(feature = "mutants")]
    #[test]
    fn mc28_loses_what_the_gap_lost() {
        let prev = mutants::set(Some(Mutant::MC28));
        let news = news_of_a_second_slice_after_a_gap();
        mutants::set(prev);
        assert_eq!(news, 0, "the floor raised by the first slice (2500) skips it: the test above would fail");
    }

    #[tokio::test]
    async fn waiters_resolve_on_any_sighting_subscribers_on_news_only() {
        let feed = Feed::new(1000, 500);
        let mut sub = feed.subscribe().unwrap();
        let w = feed.wait("a").unwrap();
        let gone = feed.wait("a").unwrap();
        drop(gone);
        let d = feed.observe([("a", "1|w|400")].into_iter(), WHOLE);
        assert_eq!(d, Delivered { news: 0, dropped: 0, resolved: 1 }, "old, but waited for");
        let mut w = w;
        assert_eq!((&mut w.rx).await.unwrap().attempt, 1);
        let d = feed.observe([("b", "1|w|1200"), ("b", "1|w|1200")].into_iter(), Source::Change);
        assert_eq!(d.news, 1);
        assert_eq!(sub.recv().await.unwrap().job, "b");
        assert!(sub.try_recv().is_none(), "once");
        let mut w = feed.wait("c").unwrap();
        feed.close();
        // At once, not by awaiting: a close that forgot its waiters would hang the test (round
        // 34 B #11), where it must fail.
        let closed = futures::FutureExt::now_or_never(&mut w.rx);
        assert!(matches!(closed, Some(Err(_))), "closed: the waiter learns the node stopped");
        assert!(sub.recv().await.is_none());
        assert!(feed.subscribe().is_none() && feed.wait("d").is_none());
    }

    /// A configured bound (`max_waiters`) is exact: that many waits register, one more is
    /// refused while they live, and a slot freed by a resolution or a wait given up takes one
    /// again (round 40 A #1; MC379 registers one past it).
    #[test]
    fn the_configured_bound_is_exact() {
        let feed = Feed::new(0, 500).with_max_waiters(2);
        let a = feed.wait("a").expect("first slot");
        let b = feed.wait("b").expect("second slot");
        assert!(feed.wait("c").is_none(), "full at the bound");
        drop(a);
        let c = feed.wait("c").expect("a slot given up is free");
        assert!(feed.wait("d").is_none(), "full again");
        let d = feed.observe([("b", "1|w|400")].into_iter(), WHOLE);
        assert_eq!(d.resolved, 1);
        assert!(feed.wait("d").is_some(), "a resolved wait frees its slot");
        drop((b, c));
    }

    /// A read that began before a wait registered does not resolve it (its caller reads the
    /// store after registering): a sweep's slice read before a key's tombstone was swept, taken
    /// in after the wait for the key's next life registered, answered it with the old life's
    /// completion (poolfeed seed 419 with the `ShortRetention` knob, round 45; MC434). A wait
    /// registered before the read, and any read begun after the wait, still resolve it.
    #[test]
    fn a_read_begun_before_a_wait_does_not_resolve_it() {
        let feed = Feed::new(0, 500);
        let early = feed.wait("j").unwrap();
        let mark = feed.read_mark();
        let mut late = feed.wait("j").unwrap();
        let d = feed.observe_read([("j", "1|w|100")].into_iter(), Source::Slice, mark);
        assert_eq!(d.resolved, 1, "the wait registered before the read");
        drop(early);
        assert!(late.rx.try_recv().is_err(), "the read is older than the wait");
        assert_eq!(lock(&feed.reg).waiting, 1, "still registered");
        let d = feed.observe_read([("j", "1|w|200")].into_iter(), Source::Slice, feed.read_mark());
        assert_eq!(d.resolved, 1);
        assert_eq!(late.rx.try_recv().map(|c| c.completed_ms).ok(), Some(200));
        assert_eq!(lock(&feed.reg).waiting, 0);
    }

    /// A change at or below the revision the wait's caller saw the key at (its own read, or
    /// its dispatch) does not resolve it: it is an earlier life's, held in the watch until after
    /// the wait for the key's next life registered. A change that comes while that read is out
    /// is held, and resolves the wait once the read comes back older than it. MC435 (every
    /// change resolves at once) answers the new life's wait with the old life's completion.
    #[test]
    fn a_change_older_than_the_waits_own_read_does_not_resolve_it() {
        let run = || {
            let feed = Feed::new(0, 500);
            let mut stale = feed.wait("j").unwrap();
            feed.observe_change("j", "1|w|100", 10); // the old life's change, held back
            stale.floor(20); // the caller's read saw the key free at 20
            let stale_got = stale.rx.try_recv().ok().map(|c| c.completed_ms);
            feed.observe_change("j", "1|w|300", 30);
            let later = stale.rx.try_recv().ok().map(|c| c.completed_ms);
            let mut early = feed.wait("k").unwrap();
            feed.observe_change("k", "1|w|400", 40); // lands while the caller's read is out
            early.floor(35);
            (stale_got, later, early.rx.try_recv().ok().map(|c| c.completed_ms), lock(&feed.reg).waiting)
        };
        assert_eq!(run(), (None, Some(300), Some(400), 0));
        #[cfg(feature = "mutants")]
        {
            crate::mutants::set(Some(crate::mutants::Mutant::MC435));
            let mutated = run();
            crate::mutants::set(None);
            assert_eq!(mutated.0, Some(100), "MC435 answers with the old life's completion");
        }
    }

    /// A wait given up (its caller's timeout, a dropped future) frees its slot: `WAITERS_MAX`
    /// bounds the waits open, not those ever made; a resolved one is freed once (round 30 A #9:
    /// a dropped wait's count kept, so a long-lived node refused every wait at last).
    #[test]
    fn a_wait_given_up_frees_its_slot() {
        let feed = Feed::new(0, 500);
        for _ in 0..=WAITERS_MAX {
            drop(feed.wait("a").expect("every slot of a given-up wait is free again"));
        }
        let kept = feed.wait("a").unwrap();
        let resolved = feed.wait("b").unwrap();
        feed.observe([("b", "1|w|10")].into_iter(), Source::Change);
        drop(resolved);
        assert_eq!(lock(&feed.reg).waiting, 1);
        drop(kept);
        assert_eq!(lock(&feed.reg).waiting, 0);
    }

    /// One sighting that resolves several waits of the same job frees every one of their slots
    /// (blind-spot hunt, round 43, B #10: a count lowered by one per job resolved, not per wait,
    /// crept up with each job two callers waited for, until the node refused every wait; no
    /// simulated run has two waits of one job open at once).
    #[test]
    fn a_sighting_that_resolves_two_waits_of_a_job_frees_both_slots() {
        let feed = Feed::new(0, 500).with_max_waiters(2);
        let (mut a, mut b) = (feed.wait("j").expect("room"), feed.wait("j").expect("room"));
        let d = feed.observe([("j", "1|w|10")].into_iter(), Source::Change);
        assert_eq!(d.resolved, 2);
        assert_eq!(lock(&feed.reg).waiting, 0, "both slots free");
        assert!(a.rx.try_recv().is_ok() && b.rx.try_recv().is_ok(), "both told");
        drop((a, b));
        assert!(feed.wait("k").is_some() && feed.wait("l").is_some(), "the bound holds two waits again");
    }

    /// A dropped wait leaves no registration behind (round 42 A #17: MC399's drop kept it,
    /// counted and later resolved for a caller long gone).
    #[test]
    fn a_dropped_wait_leaves_nothing_registered() {
        fn left_after_drop() -> (usize, usize) {
            let feed = Feed::new(0, 500);
            drop(feed.wait("a").expect("room"));
            let r = lock(&feed.reg);
            (r.waiting, r.waiters.len())
        }
        assert_eq!(left_after_drop(), (0, 0));
        #[cfg(feature = "mutants")]
        {
            let prev = crate::mutants::set(Some(crate::mutants::Mutant::MC399));
            let left = left_after_drop();
            crate::mutants::set(prev);
            assert_eq!(left, (1, 1), "MC399 leaves the wait registered");
        }
    }

    #[tokio::test]
    async fn a_full_subscriber_drops_and_counts() {
        let feed = Feed::new(0, 500);
        let sub = feed.subscribe().unwrap();
        let tombs: Vec<(String, String)> =
            (0..FEED_BUFFER_MAX + 3).map(|i| (format!("j{i}"), format!("1|w|{i}"))).collect();
        let d = feed.observe(tombs.iter().map(|(a, b)| (a.as_str(), b.as_str())), Source::Change);
        assert_eq!((d.news, d.dropped), (FEED_BUFFER_MAX + 3, 3));
        assert_eq!(sub.dropped(), 3);
    }

    /// A subscriber that has gone is no drop: `feed_dropped` reports completions a live
    /// subscriber could not take (round 34 B #12: a closed one counted until the next subscribe
    /// pruned it, a warning that lied).
    #[test]
    fn a_dropped_subscriber_is_not_counted_as_dropping() {
        let feed = Feed::new(0, 500);
        let kept = feed.subscribe().unwrap();
        drop(feed.subscribe().unwrap());
        let d = feed.observe([("a", "1|w|10")].into_iter(), Source::Change);
        assert_eq!((d.news, d.dropped), (1, 0));
        assert_eq!(kept.dropped(), 0);
    }

    /// `FEED_SUBSCRIBERS_MAX` is the documented bound, exactly; a subscriber that has gone frees
    /// its place.
    #[test]
    fn subscribers_are_bounded_exactly() {
        let feed = Feed::new(0, 500);
        let subs: Vec<_> = (0..FEED_SUBSCRIBERS_MAX).map(|_| feed.subscribe().expect("under the bound")).collect();
        assert!(feed.subscribe().is_none(), "one past the bound is refused");
        drop(subs);
        assert!(feed.subscribe().is_some(), "gone subscribers free their places");
    }
}
