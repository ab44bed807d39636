//! The node's cached keep-alives and store-time estimate: what dispatch and completion read
//! instead of a keep-alive snapshot and a `TIME` per job.
//!
//! **Keep-alives.** Dispatch picks the least-loaded live worker from the keep-alive map as this
//! node follows it: a replica kept from the map's change feed on top of a snapshot ("watch, then
//! snapshot at R, then apply changes above R", docs/rmap.md, the way the job table follows the
//! job map), so a worker that registers or beats is seen by the next dispatch after its write's
//! change arrives, not one keep-alive interval later. While the replica is out of sync (before
//! its first snapshot, after a gap or a missed revision, until the follower's next snapshot)
//! dispatch falls back to the last keep-alive snapshot read by this node (every sweep's view
//! refreshes it; a dispatch re-reads it when it is older than [`HINT_AGE_MAX_INTERVALS`]
//! keep-alive intervals, or when it names no live worker). The pick is a hint, never a
//! guarantee: a snapshot read per dispatch could also be outdated by the time the dispatch
//! lands. A worker that died since is handled like one that dies just after its assignment: its
//! pending entry expires after `ack_grace` and a sweep re-dispatches the job elsewhere (P5), or
//! the cleanup of the dead worker requeues it (P4). So an older hint costs at most a
//! re-dispatch, never a lost job, and P3 (no assignment to a worker whose last keep-alive is
//! older than the TTL at the decision's store time) is judged on the same values the decision
//! used: the keep-alives against the store-time estimate below.
//!
//! A followed keep-alive can be newer than the node's store-time estimate (which lags by its
//! read's reply latency): such a worker would look not yet live. Every keep-alive value is a
//! store time that has passed, so the estimate is raised to the newest keep-alive followed, by
//! at most the estimate's own age bound (a store whose clock went back cannot push it further).
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
use super::state::KeepAlive;
use super::table::{FeedPos, Step};
use crate::clock::Instant;
use crate::error::StoreError;
use crate::observe::PoolEvent;
use crate::store::{Change, MapSnapshot, Read, ReadOuts, Store, Watch, WatchEvent};

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
    /// The keep-alive map as followed from its feed.
    followed: Followed,
}

/// A replica of the keep-alive map kept from its change feed (the rules of the job table,
/// `table.rs`: changes in revision order on top of a snapshot, out of sync on any hole).
#[derive(Debug, Default)]
struct Followed {
    /// Where the replica stands on the keep-alive map's feed.
    pos: FeedPos,
    /// Shared with the dispatches reading it (copied on write only while one holds it).
    entries: Arc<BTreeMap<String, String>>,
    /// The newest keep-alive time among the values followed (0: none).
    newest_ms: u64,
}

impl Followed {
    fn replace(&mut self, snap: MapSnapshot) -> bool {
        if !self.pos.takes_snapshot(snap.rev) {
            return false; // the feed overtook the snapshot
        }
        let newest_ms = snap.entries.values().filter_map(|v| KeepAlive::parse(v)).map(|k| k.ms).max().unwrap_or(0);
        *self = Followed { pos: FeedPos::at_snapshot(snap.rev), entries: Arc::new(snap.entries), newest_ms };
        true
    }

    fn apply(&mut self, c: Change) {
        if self.pos.step(c.rev) != Step::Apply {
            return;
        }
        let entries = Arc::make_mut(&mut self.entries);
        match c.value {
            Some(v) => {
                if let Some(k) = KeepAlive::parse(&v) {
                    self.newest_ms = self.newest_ms.max(k.ms);
                }
                // MC247: updated in place only; a worker's first keep-alive is missed.
                if crate::mutants::active(crate::mutants::Mutant::MC247) {
                    if let Some(held) = entries.get_mut(&c.key) {
                        *held = v;
                    }
                    return;
                }
                entries.insert(c.key, v);
            }
            None => {
                entries.remove(&c.key);
            }
        }
    }
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

    /// The keep-alive map: the followed replica while it is in sync, else the last snapshot if
    /// it is at most `age_max` old at local `now`.
    pub fn keepalive(&self, now: Instant, age_max: Duration) -> Option<Arc<BTreeMap<String, String>>> {
        if self.followed.pos.is_synced() {
            return Some(self.followed.entries.clone());
        }
        let (entries, at) = self.keepalive.as_ref()?;
        (now.saturating_duration_since(*at) <= age_max).then(|| entries.clone())
    }

    /// Whether the keep-alive map is followed without a hole (a re-read would add nothing).
    pub fn follows_keepalive(&self) -> bool {
        self.followed.pos.is_synced()
    }

    /// The store-time estimate `now_ms` raised to the newest keep-alive followed, by at most
    /// `raise_max_ms` (see the module doc).
    pub fn raised(&self, now_ms: u64, raise_max_ms: u64) -> u64 {
        if !self.followed.pos.is_synced() {
            return now_ms;
        }
        now_ms.max(self.followed.newest_ms.min(now_ms.saturating_add(raise_max_ms)))
    }

    /// A snapshot of the keep-alive map for the replica (start, gap, hole). Returns whether it
    /// replaced the replica.
    pub fn follow_snapshot(&mut self, snap: MapSnapshot) -> bool {
        self.followed.replace(snap)
    }

    /// One change of the keep-alive map from its feed. Returns whether the replica is still in
    /// sync (false: a hole, snapshot again).
    pub fn follow_change(&mut self, c: Change) -> bool {
        self.followed.apply(c);
        self.followed.pos.is_synced()
    }

    /// The keep-alive feed reported a gap: out of sync until the next snapshot.
    pub fn follow_gap(&mut self) {
        self.followed.pos.gap();
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

    /// Store time from the estimate alone: `None` when it is too old.
    pub(crate) fn store_now_estimate(&self) -> Option<u64> {
        lock(&self.cache).now_ms(self.clock.now(), self.hint_age_max())
    }

    /// Store time: the estimate while it is fresh, else one `TIME` read (which refreshes it).
    pub(crate) async fn store_now_ms(&self) -> Result<u64, StoreError> {
        if let Some(t) = self.store_now_estimate() {
            return Ok(t);
        }
        let sent = self.clock.now();
        let t = self.op("time", self.store.time_ms()).await?;
        // MC194: the read's local instant taken at its send: the estimate leads the store by
        // the read's latency.
        let at = if crate::mutants::active(crate::mutants::Mutant::MC194) { sent } else { self.clock.now() };
        lock(&self.cache).note_time(t, at);
        Ok(t)
    }

    /// The keep-alives and store time dispatch judges liveness by: the followed replica while
    /// it is in sync (a `TIME` read only when the estimate is too old), else the last snapshot
    /// while it is fresh (and `reread` is false), else one snapshot and one `TIME` read, in that
    /// order (every keep-alive read is at most the time read after it), which refresh the
    /// cache. Returns whether the keep-alives are as new as the store's (followed or just read:
    /// reading again would add nothing).
    pub(crate) async fn keepalive_hint(
        &self,
        reread: bool,
    ) -> Result<(Arc<BTreeMap<String, String>>, u64, bool), StoreError> {
        let age_max = self.hint_age_max();
        let followed = {
            let now = self.clock.now();
            let c = lock(&self.cache);
            match (c.follows_keepalive(), c.keepalive(now, age_max), c.now_ms(now, age_max)) {
                (true, Some(ka), Some(t)) => return Ok((ka, c.raised(t, ms(age_max)), true)),
                (false, Some(ka), Some(t)) if !reread => return Ok((ka, t, false)),
                (true, Some(ka), None) => Some(ka),
                _ => None,
            }
        };
        if let Some(ka) = followed {
            let t = self.store_now_ms().await?;
            return Ok((ka, lock(&self.cache).raised(t, ms(age_max)), true));
        }
        let reads = [Read::Snapshot { map: self.maps.keepalive.clone() }, Read::Time];
        let sent = self.clock.now();
        let mut out = ReadOuts::new(self.op("reads", self.store.reads(&reads)).await?);
        let (keepalive, now_ms) = (out.snapshot()?.entries, out.time()?);
        let at = if crate::mutants::active(crate::mutants::Mutant::MC194) { sent } else { self.clock.now() };
        self.note_view_read(&keepalive, now_ms, at);
        Ok((Arc::new(keepalive), now_ms, true))
    }

    /// The keep-alive follower: follows the keep-alive map's feed into the node's replica
    /// (watch first, then snapshot, then changes above the snapshot's revision; a gap or a hole
    /// snapshots again). While it is out of sync, dispatch uses the age-bounded snapshot.
    pub async fn run_keepalive_follower(self: Arc<Self>) {
        // MC454: the keep-alive map never followed.
        if crate::mutants::active(crate::mutants::Mutant::MC454) {
            return;
        }
        let Some(mut watch) = self.open_watch(&self.maps.keepalive).await else { return };
        let mut synced = false; // set by each event below; a snapshot makes the replica synced
        loop {
            if !synced {
                let sent = self.clock.now();
                let snap = tokio::select! {
                    biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                    _ = self.shutdown.cancelled() => return,
                    s = self.op("map_snapshot", self.store.map_snapshot(&self.maps.keepalive)) => s,
                };
                let took_us = crate::observe::micros(self.clock.now().saturating_duration_since(sent));
                let pool = || crate::observe::Text::from(&self.cfg.name);
                match snap {
                    Ok(snap) => {
                        let entries = snap.entries.len();
                        crate::observe::emit(PoolEvent::KeepaliveResynced { pool: pool(), entries, took_us });
                        lock(&self.cache).follow_snapshot(snap);
                    }
                    Err(e) => {
                        // MC410: the wait read from the sweep interval, announced and used alike.
                        let wait_setting = if crate::mutants::active(crate::mutants::Mutant::MC410) {
                            self.cfg.sweep_interval
                        } else {
                            self.cfg.keepalive_interval
                        };
                        let retry_us = crate::observe::micros(wait_setting);
                        let error = crate::observe::Text::display(&e);
                        crate::observe::emit(PoolEvent::KeepaliveResyncFailed {
                            pool: pool(),
                            took_us,
                            retry_us,
                            error,
                        });
                        // MC323: the snapshot tried again at once.
                        let wait = if crate::mutants::active(crate::mutants::Mutant::MC323) {
                            Duration::ZERO
                        } else {
                            wait_setting
                        };
                        tokio::select! {
                            biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                            _ = self.shutdown.cancelled() => return,
                            _ = self.clock.sleep(wait) => {}
                        }
                        continue;
                    }
                }
            }
            let ev = tokio::select! {
                biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
                _ = self.shutdown.cancelled() => return,
                ev = watch.next() => ev,
            };
            let mut c = lock(&self.cache);
            synced = match ev {
                WatchEvent::Change(change) => c.follow_change(change),
                WatchEvent::Gap => {
                    crate::observe::emit(PoolEvent::KeepaliveGap { pool: (&self.cfg.name).into() });
                    // MC360: the gap not noted: the replica stays "in sync" and misses what the
                    // gap lost, until a later change happens to skip a revision.
                    if crate::mutants::active(crate::mutants::Mutant::MC360) {
                        true
                    } else {
                        c.follow_gap();
                        false
                    }
                }
            };
        }
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

    fn change(key: &str, value: Option<&str>, rev: u64) -> Change {
        Change { key: key.to_owned(), value: value.map(str::to_owned), rev }
    }

    #[test]
    fn the_followed_map_applies_changes_in_order_and_drops_out_on_a_hole_or_gap() {
        let t0 = Instant::now();
        let bound = Duration::from_millis(100);
        let mut c = NodeCache::default();
        assert!(!c.follows_keepalive() && c.keepalive(t0, bound).is_none(), "nothing followed yet");
        let snap = MapSnapshot {
            rev: 5,
            entries: BTreeMap::from([("a".to_owned(), "1000|300".to_owned())]),
            ..Default::default()
        };
        assert!(c.follow_snapshot(snap));
        assert!(c.follow_change(change("a", Some("1000|300"), 5)), "already in the snapshot: ignored");
        assert!(c.follow_change(change("b", Some("1100|300"), 6)));
        // Followed: used whatever its age (it is as new as its feed).
        let ka = c.keepalive(t0 + bound * 10, bound).expect("followed");
        assert_eq!(ka.keys().collect::<Vec<_>>(), ["a", "b"]);
        assert!(c.follow_change(change("a", None, 7)));
        assert_eq!(c.keepalive(t0, bound).unwrap().keys().collect::<Vec<_>>(), ["b"], "the reader's copy is its own");
        assert_eq!(ka.len(), 2);
        // A stale snapshot does not roll it back; a hole drops it out of sync.
        assert!(!c.follow_snapshot(MapSnapshot { rev: 6, ..Default::default() }));
        assert!(!c.follow_change(change("c", Some("1"), 9)), "revision 8 was missed");
        assert!(c.keepalive(t0, bound).is_none(), "out of sync and no fresh snapshot read");
        c.note_keepalive(BTreeMap::from([("z".to_owned(), "1".to_owned())]), t0);
        assert_eq!(c.keepalive(t0, bound).unwrap().keys().collect::<Vec<_>>(), ["z"], "the fallback");
        assert!(c.follow_snapshot(MapSnapshot { rev: 9, ..Default::default() }));
        c.follow_gap();
        assert!(!c.follows_keepalive());
    }

    #[test]
    fn the_estimate_is_raised_to_the_newest_keepalive_within_its_bound() {
        let mut c = NodeCache::default();
        assert_eq!(c.raised(1_000, 100), 1_000, "nothing followed");
        let entries = BTreeMap::from([("a".to_owned(), "1050|300".to_owned()), ("b".to_owned(), "990|300".to_owned())]);
        c.follow_snapshot(MapSnapshot { rev: 1, entries, ..Default::default() });
        assert_eq!(c.raised(1_000, 100), 1_050, "a keep-alive is a store time that has passed");
        assert_eq!(c.raised(1_100, 100), 1_100, "never lowered");
        c.follow_change(change("c", Some("5000|300"), 2));
        assert_eq!(c.raised(1_000, 100), 1_100, "at most the bound");
        // A store whose clock went back (a restore, a failover): a new snapshot's keep-alives
        // are all the replica knows, the newest from before it is forgotten (round 34 B #16).
        c.follow_gap();
        let entries = BTreeMap::from([("a".to_owned(), "700|300".to_owned())]);
        c.follow_snapshot(MapSnapshot { rev: 1, entries, ..Default::default() });
        assert_eq!(c.raised(650, 100), 700, "raised to the snapshot's newest, not the newest before it");
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
