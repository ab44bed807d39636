//! The node's cached keep-alives and store-time estimate: what dispatch and completion read
//! instead of a keep-alive snapshot and a `TIME` per job.
//!
//! **Keep-alives.** Dispatch picks the least-loaded live worker from the keep-alive map as last
//! read by this node (every sweep's view refreshes it; a dispatch re-reads it when it is older
//! than [`HINT_AGE_MAX_INTERVALS`] keep-alive intervals, or when it names no live worker). The
//! pick is a hint, never a guarantee: today's snapshot could also be outdated by the time the
//! dispatch lands. A worker that died since the read is handled like one that dies just after
//! its assignment: its pending entry expires after `ack_grace` and a sweep re-dispatches the
//! job elsewhere (P5), or the cleanup of the dead worker requeues it (P4). So an older hint
//! costs at most a re-dispatch, never a lost job, and P3 (no assignment to a worker whose last
//! keep-alive is older than the TTL at the decision's store time) is judged on the same values
//! the decision used: the cached keep-alives against the estimate below.
//!
//! **Store time.** The estimate is the store time last read plus the local time elapsed since
//! that read's reply arrived (on the node's [`Clock`](crate::clock::Clock)), used only while
//! that elapsed time is within the same bound. Its error is at most the read's round trip (it
//! lags: the store read its time before the reply arrived) plus the local clock's drift over the
//! bound; a jump of the local clock ages it past the bound, so it is read again. Its users:
//! a pending entry's deadline (the `Dispatched` event reports the same value, and a sweep
//! re-dispatches only once its own fresh store time passes the deadline, so P5 holds whatever
//! the error), and a completion tombstone's time (read by the dedup window, the sweeps' expiry
//! and the completion feed's horizon: all measured in TTLs or longer, against which the error
//! is small; today's value was as old as a completion's retries anyway).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::node::{Core, lock, ms};
use crate::clock::Instant;
use crate::error::StoreError;
use crate::store::Store;

/// How many keep-alive intervals a cached keep-alive map and a store-time estimate are used
/// for before they are read again. One: within it a worker misses at most one beat of the
/// cache, so a pick sees every worker's liveness at most one beat late.
pub(crate) const HINT_AGE_MAX_INTERVALS: u32 = 1;

/// The cached values, with the local instant each read's reply arrived (a pure value: the
/// driver passes the local time in).
#[derive(Debug, Default)]
pub(crate) struct NodeCache {
    time: Option<(u64, Instant)>,
    keepalive: Option<(Arc<BTreeMap<String, String>>, Instant)>,
}

impl NodeCache {
    /// Store time `store_ms` was read; its reply arrived at local `at`. An older read that
    /// replied late does not replace a newer one.
    pub fn note_time(&mut self, store_ms: u64, at: Instant) {
        if self.time.is_none_or(|(_, known)| at >= known) {
            self.time = Some((store_ms, at));
        }
    }

    /// The keep-alive map was read (before a store time read: every value is at most that time).
    pub fn note_keepalive(&mut self, entries: BTreeMap<String, String>, at: Instant) {
        if self.keepalive.as_ref().is_none_or(|(_, known)| at >= *known) {
            self.keepalive = Some((Arc::new(entries), at));
        }
    }

    /// The store-time estimate at local `now`, if the last read is at most `age_max` old.
    pub fn now_ms(&self, now: Instant, age_max: Duration) -> Option<u64> {
        let (store_ms, at) = self.time?;
        let age = now.saturating_duration_since(at);
        (age <= age_max).then(|| store_ms.saturating_add(ms(age)))
    }

    /// The cached keep-alive map, if it is at most `age_max` old at local `now`.
    pub fn keepalive(&self, now: Instant, age_max: Duration) -> Option<Arc<BTreeMap<String, String>>> {
        let (entries, at) = self.keepalive.as_ref()?;
        (now.saturating_duration_since(*at) <= age_max).then(|| entries.clone())
    }
}

impl<S: Store> Core<S> {
    /// How long cached keep-alives and a store-time estimate are used.
    pub(crate) fn hint_age_max(&self) -> Duration {
        self.cfg.keepalive_interval * HINT_AGE_MAX_INTERVALS
    }

    /// A sweep's view was read (keep-alives, then store time, whose reply arrived at `at`).
    pub(crate) fn note_view_read(&self, keepalive: &BTreeMap<String, String>, now_ms: u64, at: Instant) {
        let mut c = lock(&self.cache);
        c.note_keepalive(keepalive.clone(), at);
        c.note_time(now_ms, at);
    }

    /// Store time: the estimate while it is fresh, else one `TIME` read (which refreshes it).
    pub(crate) async fn store_now_ms(&self) -> Result<u64, StoreError> {
        if let Some(t) = lock(&self.cache).now_ms(self.clock.now(), self.hint_age_max()) {
            return Ok(t);
        }
        let t = self.op("time", self.store.time_ms()).await?;
        lock(&self.cache).note_time(t, self.clock.now());
        Ok(t)
    }

    /// The keep-alives and store time dispatch judges liveness by: the cache while it is fresh
    /// (and `reread` is false), else one snapshot and one `TIME` read, in that order (every
    /// keep-alive read is at most the time read after it), which refresh the cache. Returns
    /// whether it read the store.
    pub(crate) async fn keepalive_hint(
        &self,
        reread: bool,
    ) -> Result<(Arc<BTreeMap<String, String>>, u64, bool), StoreError> {
        if !reread {
            let now = self.clock.now();
            let c = lock(&self.cache);
            if let (Some(ka), Some(t)) = (c.keepalive(now, self.hint_age_max()), c.now_ms(now, self.hint_age_max())) {
                return Ok((ka, t, false));
            }
        }
        let keepalive = self.op("map_snapshot", self.store.map_snapshot(&self.maps.keepalive)).await?.entries;
        let now_ms = self.op("time", self.store.time_ms()).await?;
        let at = self.clock.now();
        self.note_view_read(&keepalive, now_ms, at);
        Ok((Arc::new(keepalive), now_ms, true))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimate_runs_on_local_time_within_its_bound() {
        let t0 = Instant::now();
        let bound = Duration::from_millis(100);
        let mut c = NodeCache::default();
        assert_eq!(c.now_ms(t0, bound), None, "nothing read yet");
        c.note_time(5_000, t0);
        assert_eq!(c.now_ms(t0, bound), Some(5_000));
        assert_eq!(c.now_ms(t0 + Duration::from_millis(100), bound), Some(5_100), "read + elapsed");
        assert_eq!(c.now_ms(t0 + Duration::from_millis(101), bound), None, "too old: read again");
        // A late reply of an older read does not replace a newer read.
        c.note_time(9_000, t0 + Duration::from_millis(50));
        c.note_time(4_000, t0);
        assert_eq!(c.now_ms(t0 + Duration::from_millis(60), bound), Some(9_010));
    }

    #[test]
    fn keepalives_expire_past_their_bound() {
        let t0 = Instant::now();
        let bound = Duration::from_millis(100);
        let mut c = NodeCache::default();
        assert!(c.keepalive(t0, bound).is_none());
        c.note_keepalive(BTreeMap::from([("w".to_owned(), "1".to_owned())]), t0);
        assert_eq!(c.keepalive(t0 + bound, bound).map(|k| k.len()), Some(1));
        assert!(c.keepalive(t0 + bound + Duration::from_millis(1), bound).is_none());
    }
}
