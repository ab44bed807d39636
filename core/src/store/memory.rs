//! The embedded store: Redis semantics in one process, on a [`Clock`] of its own.
//!
//! Used by services that run in one process, by tests, and by the simulator (behind a
//! simulated network). TTLs and [`Store::time_ms`] come from its clock, so under madsim they run on
//! simulated time. It can lose its data on demand ([`MemoryStore::reset`]) like a Redis restarted
//! without persistence.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::broadcast;

use super::*;
use crate::clock::{Clock, Instant, TokioClock};
use crate::observe::{self, StoreEvent};

/// How many undelivered changes a watch may lag behind before it is told [`WatchEvent::Gap`].
pub const WATCH_BUFFER: usize = 4096;

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
    holders: BTreeMap<String, Holder>,
    lease_meta: BTreeMap<String, LeaseMeta>,
    maps: BTreeMap<String, MapState>,
    feeds: BTreeMap<String, broadcast::Sender<WatchEvent>>,
}

struct Holder {
    token: String,
    fence: u64,
    expires_at_ms: u64,
}

struct LeaseMeta {
    fence: u64,
    quarantine_until_ms: u64,
}

#[derive(Default)]
struct MapState {
    rev: u64,
    entries: BTreeMap<String, String>,
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
        let mut st = self.lock();
        let feeds = std::mem::take(&mut st.feeds);
        *st = State::default();
        st.feeds = feeds;
        for tx in st.feeds.values() {
            let _ = tx.send(WatchEvent::Gap); // no receivers is fine
        }
        observe::emit(StoreEvent::MemoryReset {});
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
        let mut st = self.lock();
        Self::live_holder(&mut st, name, now).map(|h| (h.token.clone(), h.fence))
    }

    /// The live grant of lease `name`: its token, fence and expiry (store ms). For checkers.
    pub fn lease_grant(&self, name: &str) -> Option<(String, u64, u64)> {
        let now = self.now_ms();
        let mut st = self.lock();
        Self::live_holder(&mut st, name, now).map(|h| (h.token.clone(), h.fence, h.expires_at_ms))
    }

    fn now_ms(&self) -> u64 {
        let elapsed = self.inner.clock.now().saturating_duration_since(self.inner.started);
        self.inner.base_ms + u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX / 2)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a way that matters
        // more than the panic itself; keep serving.
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn live_holder<'a>(st: &'a mut State, name: &str, now_ms: u64) -> Option<&'a mut Holder> {
        if st.holders.get(name).is_some_and(|h| h.expires_at_ms <= now_ms) {
            st.holders.remove(name);
        }
        st.holders.get_mut(name)
    }

    fn publish(st: &mut State, map: &str, change: Change) {
        if let Some(tx) = st.feeds.get(map) {
            let _ = tx.send(WatchEvent::Change(change));
        }
    }

    /// Apply `(key, new value)` pairs to a map, one revision each. Caller holds the lock.
    fn commit(st: &mut State, map: &str, now_ms: u64, writes: Vec<(String, Option<String>)>) -> u64 {
        let m = st.maps.entry(map.to_owned()).or_default();
        if m.rev == 0 {
            m.rev = now_ms * SEED_PER_MS;
        }
        let mut changes = Vec::with_capacity(writes.len());
        for (key, value) in writes {
            let before = m.rev;
            m.rev += 1;
            crate::keel_assert!(
                m.rev == before + 1 && before > 0,
                "map revisions are consecutive: {before} -> {}",
                m.rev
            );
            match &value {
                Some(v) => m.entries.insert(key.clone(), v.clone()),
                None => m.entries.remove(&key),
            };
            changes.push(Change { key, value, rev: m.rev });
        }
        let rev = m.rev;
        for c in changes {
            Self::publish(st, map, c);
        }
        rev
    }

    fn map_rev(st: &State, map: &str) -> u64 {
        st.maps.get(map).map_or(0, |m| m.rev)
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
        check_name("lease name", name)?;
        check_name("lease token", token)?;
        check_ttl(ttl_ms)?;
        check_quarantine(quarantine_ms)?;
        let now = self.now_ms();
        let mut st = self.lock();
        let meta = st.lease_meta.entry(name.to_owned()).or_insert_with(|| {
            // MC2: a counter that starts again at 0 when the store lost it (a bare INCR).
            let seed = if crate::mutants::active(crate::mutants::Mutant::MC2) { 0 } else { now * SEED_PER_MS };
            LeaseMeta { fence: seed, quarantine_until_ms: now + quarantine_ms }
        });
        if now < meta.quarantine_until_ms {
            return Ok(Acquire::Quarantined { remaining_ms: meta.quarantine_until_ms - now });
        }
        if let Some(h) = Self::live_holder(&mut st, name, now) {
            if h.token == token {
                h.expires_at_ms = now + ttl_ms;
                return Ok(Acquire::Granted { fence: h.fence });
            }
            return Ok(Acquire::Held { remaining_ms: h.expires_at_ms - now });
        }
        let meta = st.lease_meta.get_mut(name).ok_or_else(|| StoreError::corrupt(name, "lease meta vanished"))?;
        let before = meta.fence;
        meta.fence += 1;
        let fence = meta.fence;
        crate::keel_assert!(fence > before, "fences only grow per lease key: minted {fence} after {before}");
        st.holders.insert(name.to_owned(), Holder { token: token.to_owned(), fence, expires_at_ms: now + ttl_ms });
        Ok(Acquire::Granted { fence })
    }

    async fn lease_renew(&self, name: &str, token: &str, ttl_ms: u64) -> StoreResult<Renew> {
        check_name("lease name", name)?;
        check_ttl(ttl_ms)?;
        let now = self.now_ms();
        let mut st = self.lock();
        match Self::live_holder(&mut st, name, now) {
            Some(h) if h.token == token || crate::mutants::active(crate::mutants::Mutant::MC1) => {
                h.expires_at_ms = now + ttl_ms;
                Ok(Renew::Renewed { fence: h.fence })
            }
            _ => Ok(Renew::NotHolder),
        }
    }

    async fn lease_release(&self, name: &str, token: &str) -> StoreResult<bool> {
        check_name("lease name", name)?;
        let now = self.now_ms();
        let mut st = self.lock();
        let mine = Self::live_holder(&mut st, name, now).is_some_and(|h| h.token == token);
        if mine {
            st.holders.remove(name);
        }
        Ok(mine)
    }

    #[cfg(feature = "mutants")]
    async fn lease_delete_unchecked(&self, name: &str) -> StoreResult<()> {
        self.lock().holders.remove(name);
        Ok(())
    }

    async fn map_get(&self, map: &str, key: &str) -> StoreResult<(Option<String>, u64)> {
        check_name("map", map)?;
        let st = self.lock();
        let value = st.maps.get(map).and_then(|m| m.entries.get(key).cloned());
        Ok((value, Self::map_rev(&st, map)))
    }

    async fn map_snapshot(&self, map: &str) -> StoreResult<MapSnapshot> {
        check_name("map", map)?;
        let st = self.lock();
        Ok(st
            .maps
            .get(map)
            .map_or_else(MapSnapshot::default, |m| MapSnapshot { rev: m.rev, entries: m.entries.clone() }))
    }

    async fn map_write(&self, map: &str, key: &str, write: MapWrite) -> StoreResult<WriteOutcome> {
        check_name("map", map)?;
        check_name("key", key)?;
        if let MapWrite::Append(items) | MapWrite::Remove(items) = &write {
            check_items(items)?;
        }
        let now = self.now_ms();
        let mut st = self.lock();
        let current = st.maps.get(map).and_then(|m| m.entries.get(key).cloned());
        match apply_write(current.as_deref(), &write) {
            None => Ok(WriteOutcome { applied: false, rev: Self::map_rev(&st, map), value: current }),
            Some(new) => {
                let rev = Self::commit(&mut st, map, now, vec![(key.to_owned(), new.clone())]);
                Ok(WriteOutcome { applied: true, rev, value: new })
            }
        }
    }

    async fn map_txn(
        &self,
        map: &str,
        guards: &[(String, Expect)],
        writes: &[(String, Option<String>)],
    ) -> StoreResult<TxnOutcome> {
        check_txn_names(map, guards, writes)?;
        let now = self.now_ms();
        let mut st = self.lock();
        let holds = guards.iter().all(|(k, expect)| {
            let cur = st.maps.get(map).and_then(|m| m.entries.get(k));
            match expect {
                Expect::Absent => cur.is_none(),
                Expect::Value(v) => cur == Some(v),
            }
        });
        if !holds || writes.is_empty() {
            return Ok(TxnOutcome { applied: holds && writes.is_empty(), rev: Self::map_rev(&st, map) });
        }
        let rev = Self::commit(&mut st, map, now, writes.to_vec());
        Ok(TxnOutcome { applied: true, rev })
    }

    async fn watch(&self, map: &str) -> StoreResult<MemoryWatch> {
        check_name("map", map)?;
        let mut st = self.lock();
        let tx = st.feeds.entry(map.to_owned()).or_insert_with(|| broadcast::channel(WATCH_BUFFER).0);
        Ok(MemoryWatch { rx: tx.subscribe() })
    }
}
