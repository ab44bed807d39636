//! The embedded store: Redis semantics in one process, on a [`Clock`] of its own.
//!
//! Used by services that run in one process, by tests, and by the simulator (behind a
//! simulated network). TTLs and [`Store::time_ms`] come from its clock, so under madsim they run on
//! simulated time. It can lose its data on demand ([`MemoryStore::reset`]) like a Redis restarted
//! without persistence.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::reads::check_reads;
use super::state::StoreState;
use super::*;
use crate::clock::{Clock, Instant, TokioClock};
use crate::mutants::{self, Mutant};
use crate::observe::{self, StoreEvent};

/// How many undelivered changes a watch may lag behind before it is told [`WatchEvent::Gap`].
pub const WATCH_BUFFER: usize = 4096;

/// The gap between MM1's read and its write.
const MM1_ROUND_TRIP: std::time::Duration = std::time::Duration::from_millis(5);

/// Store time (ms since the Unix epoch) at which a new [`MemoryStore`] starts by default.
/// A fixed value keeps runs reproducible; only differences of store time matter to keel.
pub const DEFAULT_BASE_MS: u64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

/// An in-memory [`Store`]. Clones share the same data.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keel::StoreError> {
/// use keel::store::{MapWrite, MemoryStore, Store};
/// let store = MemoryStore::new();
/// store.map_write("m", "k", MapWrite::Set("v".into())).await?;
/// let snap = store.map_snapshot("m").await?;
/// assert_eq!(snap.entries.get("k").map(String::as_str), Some("v"));
/// store.reset(); // lose everything, as a Redis restart without persistence would
/// assert!(store.map_snapshot("m").await?.entries.is_empty());
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    clock: Arc<dyn Clock>,
    base_ms: u64,
    started: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    data: StoreState,
    feeds: BTreeMap<String, broadcast::Sender<WatchEvent>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("base_ms", &self.inner.base_ms).finish_non_exhaustive()
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// A store on the runtime's clock, starting at [`DEFAULT_BASE_MS`].
    pub fn new() -> Self {
        Self::with_clock(Arc::new(TokioClock), DEFAULT_BASE_MS)
    }

    /// A store on `clock`, whose store time starts at `base_ms`.
    pub fn with_clock(clock: Arc<dyn Clock>, base_ms: u64) -> Self {
        let started = clock.now();
        MemoryStore { inner: Arc::new(Inner { clock, base_ms, started, state: Mutex::new(State::default()) }) }
    }

    /// Lose every key, as a restart without persistence does. Watches see a [`WatchEvent::Gap`].
    /// Store time keeps running, so re-seeded fences and revisions stay above the old ones.
    pub fn reset(&self) {
        self.restart_with(StoreState::default());
        observe::emit(StoreEvent::MemoryReset {});
    }

    /// Restart keeping every key, as a Redis with `appendfsync always` does after a crash (or
    /// any Redis after a clean shutdown). Watches see a [`WatchEvent::Gap`]; the next acquire of
    /// each lease is quarantined, since a store cannot tell this restart from one that lost
    /// its last writes ([`MemoryStore::restart_from`]).
    pub fn restart(&self) {
        let mut st = self.lock();
        st.data.restarted();
        drop(st);
        self.disconnect_watchers();
        observe::emit(StoreEvent::MemoryRestarted { rolled_back: false });
    }

    /// The data as it is now: what a persistence point (an RDB save, an AOF fsync) holds. For
    /// [`MemoryStore::restart_from`].
    pub fn checkpoint(&self) -> StoreState {
        self.lock().data.clone()
    }

    /// Whether the store holds exactly the data of `saved` (a [`MemoryStore::checkpoint`]): a
    /// restart from it would lose nothing. For the simulator's judges of a roll-back.
    pub fn holds_the_data_of(&self, saved: &StoreState) -> bool {
        self.lock().data.same_data(saved)
    }

    /// Restart from `saved` (a [`MemoryStore::checkpoint`]): every write since is lost, as a
    /// Redis with `appendfsync everysec` loses up to a second of writes in a crash, or a failover
    /// to a replica that lagged. Watches see a [`WatchEvent::Gap`].
    pub fn restart_from(&self, saved: StoreState) {
        self.restart_with(saved);
        observe::emit(StoreEvent::MemoryRestarted { rolled_back: true });
    }

    /// A restart of the store process with `data`: the incarnation counts on across it.
    fn restart_with(&self, mut data: StoreState) {
        let mut st = self.lock();
        data.restart_after(&st.data);
        st.data = data;
        drop(st);
        self.disconnect_watchers();
    }

    /// Report a gap to every watcher without losing data (a feed disconnect).
    pub fn disconnect_watchers(&self) {
        for tx in self.lock().feeds.values() {
            let _ = tx.send(WatchEvent::Gap);
        }
    }

    /// The live holder of lease `name` as `(token, fence)`: an inspection hook for tests and
    /// the simulator (Redis has no such call; keel's parts never use it).
    pub fn lease_holder(&self, name: &str) -> Option<(String, u64)> {
        let now = self.now_ms();
        self.lock().data.lease_holder(name, now).map(|(t, f)| (t.to_owned(), f))
    }

    /// The entries of map `map` whose key is `from` or after it (every entry for `""`), copied
    /// under one lock: an inspection hook for the simulator's observers, which read a part of a
    /// map in place (Redis has no such call; keel's parts never use it).
    pub fn map_entries_from(&self, map: &str, from: &str) -> BTreeMap<String, String> {
        self.lock().data.map_entries_from(map, from)
    }

    /// [`map_entries_from`](Self::map_entries_from)'s entries, lent to `f` in key order under
    /// the same one lock, without copies: an inspection hook for observers that only look.
    /// `f` must not call this store (the lock is held while it runs).
    pub fn with_map_entries_from<R>(
        &self,
        map: &str,
        from: &str,
        f: impl FnOnce(&mut dyn Iterator<Item = (&str, &str)>) -> R,
    ) -> R {
        let st = self.lock();
        f(&mut st.data.map_entries_borrowed_from(map, from))
    }

    /// Map `map`'s revision (0 when it has none): an inspection hook for the simulator's judges.
    pub fn map_rev(&self, map: &str) -> u64 {
        self.lock().data.map_rev(map)
    }

    /// Every map's revision, under one lock: an inspection hook for the simulator, which reads
    /// it at each boot to judge the restart flag of later snapshots (Redis has no such call).
    pub fn map_revs(&self) -> BTreeMap<String, u64> {
        self.lock().data.map_revs()
    }

    /// The live grant of lease `name`: its token, fence and expiry (store ms). For checkers.
    pub fn lease_grant(&self, name: &str) -> Option<(String, u64, u64)> {
        let now = self.now_ms();
        self.lock().data.lease_grant(name, now).map(|(t, f, e)| (t.to_owned(), f, e))
    }

    fn now_ms(&self) -> u64 {
        let elapsed = self.inner.clock.now().saturating_duration_since(self.inner.started);
        self.inner.base_ms + u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX / 2)
    }

    /// [`StoreState::edit_unrevised`] on the live data.
    #[cfg(test)]
    pub(crate) fn edit_unrevised(&self, map: &str, key: &str, value: Option<&str>) {
        self.lock().data.edit_unrevised(map, key, value);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // more than the panic itself; keep serving.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mutant MM1: a map write as a read, a round trip, then an unconditional write (a client-side
    /// read-modify-write instead of one script). Another client's write can land in between and
    /// be overwritten: a compare-and-set that is not atomic.
    async fn map_write_in_two_steps(&self, map: &str, key: &str, write: MapWrite) -> StoreResult<WriteOutcome> {
        let (current, rev) = self.lock().data.map_get(map, key)?;
        let Some(new) = apply_write(current.as_deref(), &write) else {
            return Ok(WriteOutcome { applied: false, rev, value: current });
        };
        self.inner.clock.sleep(MM1_ROUND_TRIP).await;
        let now = self.now_ms();
        let mut st = self.lock();
        let (rev, changes) = st.data.map_put(map, key, new.clone(), now);
        Self::publish(&st, map, changes);
        Ok(WriteOutcome { applied: true, rev, value: new })
    }

    /// Publish the changes of one operation on the map's feed, in revision order.
    fn publish(st: &State, map: &str, changes: Vec<Change>) {
        if let Some(tx) = st.feeds.get(map) {
            for c in changes {
                let _ = tx.send(WatchEvent::Change(c)); // no receivers is fine
            }
        }
    }
}

/// A watch on a [`MemoryStore`] map.
pub struct MemoryWatch {
    rx: broadcast::Receiver<WatchEvent>,
}

impl Watch for MemoryWatch {
    async fn next(&mut self) -> WatchEvent {
        match self.rx.recv().await {
            Ok(ev) => ev,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                observe::emit(StoreEvent::MemoryWatchLagged { missed: n });
                WatchEvent::Gap
            }
            // The store is never dropped while a watch holds the sender's map alive: the sender
            // lives in State. If it were, report a gap forever rather than panic.
            Err(broadcast::error::RecvError::Closed) => {
                std::future::pending::<()>().await;
                WatchEvent::Gap
            }
        }
    }
}

impl Store for MemoryStore {
    type Watch = MemoryWatch;

    async fn time_ms(&self) -> StoreResult<u64> {
        Ok(self.now_ms())
    }

    async fn lease_acquire(&self, name: &str, token: &str, ttl_ms: u64, quarantine_ms: u64) -> StoreResult<Acquire> {
        let now = self.now_ms();
        self.lock().data.lease_acquire(name, token, ttl_ms, quarantine_ms, now)
    }

    async fn lease_renew(&self, name: &str, token: &str, ttl_ms: u64) -> StoreResult<Renew> {
        let now = self.now_ms();
        self.lock().data.lease_renew(name, token, ttl_ms, now)
    }

    async fn lease_release(&self, name: &str, token: &str) -> StoreResult<bool> {
        let now = self.now_ms();
        self.lock().data.lease_release(name, token, now)
    }

    #[cfg(feature = "mutants")]
    async fn lease_delete_unchecked(&self, name: &str) -> StoreResult<()> {
        self.lock().data.lease_delete_unchecked(name);
        Ok(())
    }

    async fn map_get(&self, map: &str, key: &str) -> StoreResult<(Option<String>, u64)> {
        self.lock().data.map_get(map, key)
    }

    async fn map_snapshot(&self, map: &str) -> StoreResult<MapSnapshot> {
        self.lock().data.map_snapshot(map)
    }

    async fn map_scan(&self, map: &str, cursor: &str, count: usize) -> StoreResult<MapScan> {
        self.lock().data.map_scan(map, cursor, count)
    }

    async fn map_write(&self, map: &str, key: &str, write: MapWrite) -> StoreResult<WriteOutcome> {
        if mutants::active(Mutant::MM1) {
            return self.map_write_in_two_steps(map, key, write).await;
        }
        let now = self.now_ms();
        let mut st = self.lock();
        let (out, changes) = st.data.map_write(map, key, &write, now)?;
        Self::publish(&st, map, changes);
        Ok(out)
    }

    async fn map_txn(
        &self,
        map: &str,
        guards: &[(String, Expect)],
        writes: &[(String, Option<String>)],
    ) -> StoreResult<TxnOutcome> {
        let now = self.now_ms();
        let mut st = self.lock();
        let (out, changes) = st.data.map_txn(map, guards, writes, now)?;
        Self::publish(&st, map, changes);
        Ok(out)
    }

    async fn map_txns(&self, map: &str, txns: &[MapTxn]) -> StoreResult<Vec<TxnOutcome>> {
        let now = self.now_ms();
        let mut st = self.lock();
        let (out, changes) = st.data.map_txns(map, txns, now)?;
        Self::publish(&st, map, changes);
        Ok(out)
    }

    async fn reads(&self, reads: &[Read]) -> StoreResult<Vec<ReadOut>> {
        check_reads(reads)?;
        let now = self.now_ms();
        let st = self.lock();
        st.data.reads(reads, now)
    }

    async fn watch(&self, map: &str) -> StoreResult<MemoryWatch> {
        check_name("map", map)?;
        let mut st = self.lock();
        if crate::mutants::active(crate::mutants::Mutant::MC141) {
            // MC141: every watch gets a channel of its own in the map's one slot: the older
            // watches' sender is dropped and they go silent.
            st.feeds.insert(map.to_owned(), broadcast::channel(WATCH_BUFFER).0);
        }
        let tx = st.feeds.entry(map.to_owned()).or_insert_with(|| broadcast::channel(WATCH_BUFFER).0);
        Ok(MemoryWatch { rx: tx.subscribe() })
    }
}

/// What the conformance suite cannot see: the inspection hooks the simulator's judges read, the
/// store clock, and the feed events a reset or a lagging watcher produce.
#[cfg(all(test, not(keel_loom)))]
mod tests {
    use std::time::Duration;

    use super::*;

    fn change(key: &str, value: &str, rev: u64) -> WatchEvent {
        WatchEvent::Change(Change { key: key.into(), value: Some(value.into()), rev })
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn store_time_runs_on_its_clock_from_its_base() {
        let s = MemoryStore::with_clock(Arc::new(TokioClock), 7);
        assert_eq!(s.time_ms().await, Ok(7));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(s.time_ms().await, Ok(1507), "store time = base + elapsed");
        assert_eq!(MemoryStore::new().time_ms().await, Ok(DEFAULT_BASE_MS));
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn inspection_hooks_report_the_live_grant_exactly() {
        let s = MemoryStore::new();
        let fence = match s.lease_acquire("l", "tok", 1000, 0).await {
            Ok(Acquire::Granted { fence }) => fence,
            r => panic!("{r:?}"),
        };
        assert!(fence > 1, "fences are seeded from store time");
        assert_eq!(s.lease_holder("l"), Some(("tok".to_owned(), fence)));
        assert_eq!(s.lease_grant("l"), Some(("tok".to_owned(), fence, DEFAULT_BASE_MS + 1000)));
        assert_eq!(s.lease_holder("other"), None);
        tokio::time::sleep(Duration::from_millis(1000)).await;
        assert_eq!(s.lease_holder("l"), None, "expired at exactly its TTL on the store clock");
        assert_eq!(s.lease_grant("l"), None);
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn feeds_report_changes_a_disconnect_and_a_reset() {
        let s = MemoryStore::new();
        let mut w = s.watch("m").await.unwrap();
        let rev = s.map_write("m", "k", MapWrite::Set("v".into())).await.unwrap().rev;
        assert_eq!(w.next().await, change("k", "v", rev));
        s.disconnect_watchers();
        assert_eq!(w.next().await, WatchEvent::Gap);
        assert_eq!(s.map_get("m", "k").await, Ok((Some("v".into()), rev)), "a disconnect keeps the data");
        s.reset();
        assert_eq!(w.next().await, WatchEvent::Gap);
        assert_eq!(s.map_get("m", "k").await.unwrap().0, None, "a reset loses the data");
        let txn = s.map_txn("m", &[], &[("a".into(), Some("1".into()))]).await.unwrap();
        assert_eq!(w.next().await, change("a", "1", txn.rev), "the feed survives a reset");
    }

    /// Both restarts tell every open watch `Gap`: one that keeps the data, and one that rolls
    /// back to a checkpoint (the watcher's history after it never happened). In the simulator the
    /// store node's kill cuts every watch anyway, so only an embedded user sees these (blind-spot
    /// hunt, round 23, A #4: `restart_from` without it went unseen).
    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn restarts_tell_every_watch_of_the_gap() {
        // Bounded: a restart that tells a watch nothing fails here instead of hanging the lane
        // (hunt 32 B #8).
        let within = Duration::from_secs(5);
        let told = tokio::time::timeout(within, restarts_tell_every_watch_of_the_gap_unbounded()).await;
        told.expect("a watch waited for its gap");
    }

    async fn restarts_tell_every_watch_of_the_gap_unbounded() {
        let s = MemoryStore::new();
        let mut w = s.watch("m").await.unwrap();
        let saved = s.checkpoint();
        let rev = s.map_write("m", "k", MapWrite::Set("v".into())).await.unwrap().rev;
        assert_eq!(w.next().await, change("k", "v", rev));
        s.restart_from(saved);
        assert_eq!(w.next().await, WatchEvent::Gap, "a roll-back restart");
        assert_eq!(s.map_get("m", "k").await.unwrap().0, None, "rolled back");
        let mut other = s.watch("m").await.unwrap();
        s.restart();
        assert_eq!(w.next().await, WatchEvent::Gap, "a restart");
        assert_eq!(other.next().await, WatchEvent::Gap, "every watch");
    }

    #[tokio::test(flavor = "current_thread", start_paused = true)]
    async fn a_watcher_lagging_past_the_buffer_sees_a_gap() {
        let s = MemoryStore::new();
        let mut w = s.watch("m").await.unwrap();
        for i in 0..=WATCH_BUFFER {
            s.map_write("m", "k", MapWrite::Set(i.to_string())).await.unwrap();
        }
        assert_eq!(w.next().await, WatchEvent::Gap);
    }
}
