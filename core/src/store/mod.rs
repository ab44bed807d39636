//! The store seam: exactly the operations the coordination parts need, with one semantics.
//!
//! Two backends sit side by side: [`MemoryStore`] (embedded, in-process; what the simulator runs)
//! and `RedisStore` (feature `redis`; what production runs). Both pass the same conformance suite
//! (`keel::testkit::conformance`, feature `testkit`), because the simulator is only as honest as
//! `MemoryStore` is faithful to Redis.
//!
//! Rules every backend follows:
//! - Every mutation is atomic and either idempotent or guarded by a token or revision, so a retry
//!   after [`Outcome::Unknown`](crate::Outcome::Unknown) is safe.
//! - Liveness judgments across nodes use [`Store::time_ms`] (store time), never a client clock.
//! - Fencing tokens and map revisions are strictly increasing per key/map, even across a restart
//!   that lost data: a missing counter is seeded from store time (`time_ms * 1000`), and after
//!   any restart of the store process (which may have rolled the data back to an older
//!   persistence point) a counter is raised to store time × 1000 when next used, so no fence or
//!   revision handed out before the restart is handed out again.
//! - After a restart (data lost, rolled back or kept: a store cannot tell the last two apart) a
//!   lease is quarantined (grants refused) for the caller's `quarantine_ms`, so no second holder
//!   appears while an old one may still believe it holds.

use std::collections::BTreeMap;
use std::future::Future;

use crate::error::StoreError;

pub mod memory;
pub mod reads;
#[cfg(feature = "redis")]
pub mod redis;
pub mod state;

#[cfg(feature = "redis")]
pub use self::redis::{RedisConfig, RedisStore};
pub use memory::MemoryStore;
pub use reads::{READS_MAX, Read, ReadOut, ReadOuts};
pub use state::StoreState;

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Separator of list items inside a map value (ASCII unit separator). Items may not contain it.
pub const LIST_SEPARATOR: char = '\u{1f}';

/// Multiplier applied to store time (ms) when a fence or revision counter must be seeded.
/// Leaves room for 1000 grants/changes per millisecond before a later seed could collide.
pub const SEED_PER_MS: u64 = 1000;

/// Reply to [`Store::lease_acquire`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Acquire {
    /// The caller's token now holds the lease. Re-sending the same token while it holds returns
    /// the same fence (idempotent).
    Granted {
        /// Fencing token of this grant: strictly greater than every earlier grant's.
        fence: u64,
    },
    /// Another token holds the lease.
    Held {
        /// Milliseconds until the other holder's lease expires unless renewed.
        remaining_ms: u64,
    },
    /// The store lost its data recently; grants are refused until the quarantine ends.
    Quarantined {
        /// Milliseconds of quarantine left.
        remaining_ms: u64,
    },
}

/// Reply to [`Store::lease_renew`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Renew {
    /// The token still held the lease; its TTL was reset.
    Renewed {
        /// The grant's fencing token (unchanged by renewals).
        fence: u64,
    },
    /// The token no longer holds the lease (expired, released, taken or lost with the data).
    NotHolder,
}

/// A snapshot of a whole map at one revision.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MapSnapshot {
    /// Revision of the map when the snapshot was taken (0 if the map was never written).
    pub rev: u64,
    /// Every key and value.
    pub entries: BTreeMap<String, String>,
    /// The last [`MAP_RESEEDS_MAX`] times the map's revisions were seeded from store time
    /// (its first commit, and the first after each store restart), oldest first: what tells a
    /// change the store lost from one it kept ([`MapSnapshot::lost_in_restart`]).
    pub reseeds: Vec<Reseed>,
    /// The store restarted since the map last committed (its counter not yet judged by the
    /// new process): the next commit may take revisions from store time again, and a feed
    /// opened before the restart may still carry changes of a history the restart rolled back,
    /// numbered on from `rev`. A replica that loaded such a snapshot applies no change from its
    /// feed until a snapshot taken after a commit (the change is a gap: it resyncs).
    pub restarted_since_commit: bool,
}

/// A map's revision counter seeded from store time: the counter held `kept` (0 when the map
/// was missing: never written, or lost with the store's data), and the next commit took
/// `seed` + 1. Revisions `kept` < r ≤ `seed` never belong to the map's present history: a
/// change acknowledged at such a revision before the seeding was lost in a store restart
/// (a roll-back, or a restart without its data).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Reseed {
    /// The counter before the seeding.
    pub kept: u64,
    /// The counter after it: store time × [`SEED_PER_MS`].
    pub seed: u64,
}

impl Reseed {
    /// Whether a change committed at `rev` is outside the history these seedings (a snapshot's,
    /// oldest first) describe: see [`MapSnapshot::lost_in_restart`].
    pub fn lost(reseeds: &[Reseed], rev: u64) -> bool {
        let forgotten = reseeds.len() >= MAP_RESEEDS_MAX && reseeds.first().is_some_and(|r| rev <= r.seed);
        forgotten || reseeds.iter().any(|r| r.kept < rev && rev <= r.seed)
    }
}

/// How many seedings of a map's revision counter a store remembers ([`MapSnapshot::reseeds`]).
/// A change committed before more store restarts than this, and not yet seen by the replica
/// that waits for it, is judged lost ([`MapSnapshot::lost_in_restart`]): keel never calls a
/// change applied that it cannot tell from a lost one.
pub const MAP_RESEEDS_MAX: usize = 8;

impl MapSnapshot {
    /// Whether a change committed at revision `rev` (its reply already received) is outside the
    /// history this snapshot shows: a store restart lost it and a seeding skipped its revision,
    /// or the store has forgotten that far back (it remembers [`MAP_RESEEDS_MAX`] seedings, and
    /// `rev` is no newer than the oldest). Below the snapshot's revision, a change not lost in a
    /// restart is in the snapshot (revisions are consecutive within one seeding).
    pub fn lost_in_restart(&self, rev: u64) -> bool {
        Reseed::lost(&self.reseeds, rev)
    }
}

/// One slice of a map, read by [`Store::map_scan`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct MapScan {
    /// Revision of the map when the slice was read (0 if the map was never written): every
    /// entry of the slice held its value at this revision.
    pub rev: u64,
    /// Some keys and values of the map.
    pub entries: BTreeMap<String, String>,
    /// Cursor to resume from; [`MAP_SCAN_START`] when the pass is over.
    pub next: String,
}

impl MapScan {
    /// Whether this slice ended its pass (its cursor is [`MAP_SCAN_START`] again).
    pub fn is_last(&self) -> bool {
        self.next == MAP_SCAN_START
    }
}

/// The cursor that starts a pass of [`Store::map_scan`], and the one a pass's last slice returns.
pub const MAP_SCAN_START: &str = "0";

/// Largest `count` one [`Store::map_scan`] takes. A slice runs as one atomic step of the store
/// (one script in Redis, which blocks every other client while it runs), so its cost is bounded
/// by this rather than by the map's size.
pub const MAP_SCAN_COUNT_MAX: usize = 4096;

/// Validate the map and count of a [`Store::map_scan`] (the cursor is each backend's own).
pub(crate) fn check_scan(map: &str, count: usize) -> StoreResult<()> {
    check_name("map", map)?;
    if count == 0 || count > MAP_SCAN_COUNT_MAX {
        return Err(StoreError::invalid(format!("map_scan count must be in 1..={MAP_SCAN_COUNT_MAX}, got {count}")));
    }
    Ok(())
}

/// A cursor that is not one a store hands out.
pub(crate) fn bad_cursor(cursor: &str) -> StoreError {
    let shown: String = cursor.chars().take(64).collect();
    StoreError::invalid(format!("map_scan cursor {shown:?} is not one this store returned"))
}

/// One mutation of a map key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum MapWrite {
    /// Set the value unconditionally.
    Set(String),
    /// Set the value only if the key is absent.
    SetIfAbsent(String),
    /// Set `new` only if the current value equals `expected`.
    CompareAndSet {
        /// Value the key must hold.
        expected: String,
        /// Value to write.
        new: String,
    },
    /// Delete only if the current value equals the given one.
    CompareAndDelete(String),
    /// Delete unconditionally.
    Delete,
    /// Append items to the list value (created if absent). Items must not contain [`LIST_SEPARATOR`].
    Append(Vec<String>),
    /// Remove every occurrence of the items from the list value; the key is deleted when the list
    /// becomes empty.
    Remove(Vec<String>),
}

/// Reply to [`Store::map_write`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct WriteOutcome {
    /// Whether the write was applied. `Set` always applies (and bumps the revision even if the
    /// value is unchanged); a write whose guard failed, a `Delete`/`Remove` that found nothing to
    /// remove and an empty `Append` are not applied and publish nothing.
    pub applied: bool,
    /// The revision of the change if applied, else the map's current revision.
    pub rev: u64,
    /// The key's value after the operation.
    pub value: Option<String>,
}

/// A guard of a [`Store::map_txn`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum Expect {
    /// The key must be absent.
    Absent,
    /// The key must hold exactly this value.
    Value(String),
}

/// Reply to [`Store::map_txn`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct TxnOutcome {
    /// Whether every guard held and the writes were applied.
    pub applied: bool,
    /// Revision of the last change if applied, else the map's current revision.
    pub rev: u64,
}

/// One transaction of a [`Store::map_txns`] batch: the guards and writes of one
/// [`Store::map_txn`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct MapTxn {
    /// Every guard must hold for the writes to apply.
    pub guards: Vec<(String, Expect)>,
    /// Value, or `None` to delete; each changed key gets its own revision and change event.
    pub writes: Vec<(String, Option<String>)>,
}

/// A change to one key of a map, as delivered by a watch feed.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Change {
    /// The key.
    pub key: String,
    /// The new value, or `None` when deleted.
    pub value: Option<String>,
    /// The map revision of this change. Consecutive changes of one map have consecutive revisions
    /// (within one run of the store process; the first change after a restart jumps), so a jump
    /// means changes were missed, or the store restarted: either way, resync.
    pub rev: u64,
}

/// What a watch feed yields.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum WatchEvent {
    /// A change, in revision order.
    Change(Change),
    /// The feed may have missed changes (reconnect, lagging, store restart): resync from a
    /// fresh snapshot. The feed itself keeps running.
    Gap,
}

/// A live feed of one map's changes. Delivery is at-most-once; gaps are reported, never hidden.
pub trait Watch: Send + 'static {
    /// The next event. Never ends: on a broken connection the feed reconnects by itself and
    /// reports a [`WatchEvent::Gap`].
    fn next(&mut self) -> impl Future<Output = WatchEvent> + Send;
}

/// The store seam. Implemented by cheap-to-clone handles.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keel::StoreError> {
/// use keel::store::{Acquire, MapWrite, MemoryStore, Store};
/// let store = MemoryStore::new();
/// let Acquire::Granted { fence } = store.lease_acquire("leader", "node-a:1", 10_000, 0).await? else {
///     panic!("a fresh lease is free");
/// };
/// assert!(fence > 0);
/// let out = store.map_write("config", "mode", MapWrite::Set("fast".into())).await?;
/// assert!(out.applied);
/// # Ok(()) }
/// ```
pub trait Store: Clone + Send + Sync + 'static {
    /// The feed type returned by [`watch`](Store::watch).
    type Watch: Watch;

    /// The store's own time in milliseconds since the Unix epoch (Redis `TIME`). Used for
    /// liveness judgments that span nodes.
    fn time_ms(&self) -> impl Future<Output = StoreResult<u64>> + Send;

    /// Acquire `name` for `token` with a TTL, minting a fencing token; idempotent for a token
    /// that already holds it. If the lease's fence counter is missing (first use, or the store
    /// lost its data) it is seeded from store time and, when `quarantine_ms > 0`, grants are
    /// refused for that long.
    fn lease_acquire(
        &self,
        name: &str,
        token: &str,
        ttl_ms: u64,
        quarantine_ms: u64,
    ) -> impl Future<Output = StoreResult<Acquire>> + Send;

    /// Compare-and-extend: reset the TTL only if `token` still holds `name`.
    fn lease_renew(&self, name: &str, token: &str, ttl_ms: u64) -> impl Future<Output = StoreResult<Renew>> + Send;

    /// Compare-and-delete: release `name` only if `token` holds it. Returns whether it did.
    fn lease_release(&self, name: &str, token: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Historical bug MS5: a plain `DEL` of the lease, whoever holds it. Only for the mutant zoo.
    #[cfg(feature = "mutants")]
    fn lease_delete_unchecked(&self, name: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Read one key of a map with the map's current revision.
    fn map_get(&self, map: &str, key: &str) -> impl Future<Output = StoreResult<(Option<String>, u64)>> + Send;

    /// Read a whole map at one revision.
    fn map_snapshot(&self, map: &str) -> impl Future<Output = StoreResult<MapSnapshot>> + Send;

    /// Read one slice of a map: about `count` entries from `cursor` on (start a pass with
    /// [`MAP_SCAN_START`], go on with each reply's [`next`](MapScan::next) until
    /// [`is_last`](MapScan::is_last)). This is Redis `HSCAN`'s contract, which every store keeps:
    ///
    /// - a key present in the map for the whole pass is returned at least once (it may be
    ///   returned several times); a key added or deleted during the pass may or may not be;
    /// - each slice is read atomically: every entry it returns held that value at the slice's
    ///   revision [`rev`](MapScan::rev) (the pass as a whole is no snapshot: slices are read at
    ///   different revisions);
    /// - `count` is a hint of the work per call, in `1..=`[`MAP_SCAN_COUNT_MAX`]
    ///   ([`StoreError::Invalid`] otherwise): a slice may hold fewer entries (even none before
    ///   the pass is over) or more (Redis returns a small, compactly encoded hash whole);
    /// - a cursor is opaque and belongs to the store that returned it: one that no store of its
    ///   kind hands out is [`StoreError::Invalid`]. A pass over a missing map is one empty slice.
    ///
    /// Costs one bounded step of the store per call whatever the map's size, where
    /// [`map_snapshot`](Store::map_snapshot) costs the whole map in one step.
    fn map_scan(&self, map: &str, cursor: &str, count: usize) -> impl Future<Output = StoreResult<MapScan>> + Send;

    /// Apply one write atomically: mutate, bump the revision, publish the change.
    fn map_write(
        &self,
        map: &str,
        key: &str,
        write: MapWrite,
    ) -> impl Future<Output = StoreResult<WriteOutcome>> + Send;

    /// Apply `writes` (value or `None` to delete) only if every guard holds, atomically. Each
    /// changed key gets its own revision and change event, in the order given.
    fn map_txn(
        &self,
        map: &str,
        guards: &[(String, Expect)],
        writes: &[(String, Option<String>)],
    ) -> impl Future<Output = StoreResult<TxnOutcome>> + Send;

    /// Several independent guarded transactions on one map in one round trip: each is applied or
    /// refused on its own (exactly as if sent alone, in the order given), and the reply has one
    /// outcome per transaction. Group commit for callers that move many keys at once; an error
    /// leaves every transaction's outcome unknown, as for [`map_txn`](Store::map_txn).
    ///
    /// At most [`MAP_TXNS_MAX`] transactions (more is [`StoreError::Invalid`], nothing applied);
    /// an empty batch is a no-op. The default sends them one by one; backends override it with
    /// one round trip.
    fn map_txns(&self, map: &str, txns: &[MapTxn]) -> impl Future<Output = StoreResult<Vec<TxnOutcome>>> + Send {
        async move {
            check_txns(map, txns)?;
            let mut out = Vec::with_capacity(txns.len());
            for t in txns {
                out.push(self.map_txn(map, &t.guards, &t.writes).await?);
            }
            Ok(out)
        }
    }

    /// Several reads in one round trip, in the order given, each with the single read's
    /// semantics and errors; the reply has one [`ReadOut`] per [`Read`] (take them in order with
    /// [`ReadOuts`]). Any failure fails the whole batch (reads change nothing, so a retry is safe).
    ///
    /// keel's stores apply the batch as one atomic step (one lock in [`MemoryStore`], a
    /// `MULTI`/`EXEC` in Redis); callers may rely only on the order. At most [`READS_MAX`] reads
    /// (more is [`StoreError::Invalid`]); an empty batch is a no-op. The default sends them one by
    /// one.
    fn reads(&self, reads: &[Read]) -> impl Future<Output = StoreResult<Vec<ReadOut>>> + Send {
        async move {
            reads::check_reads(reads)?;
            reads::one_by_one(self, reads).await
        }
    }

    /// Subscribe to a map's changes. Changes made after this returns are delivered (or a gap
    /// is reported), so "watch, then snapshot at R, then apply changes above R" loses nothing.
    fn watch(&self, map: &str) -> impl Future<Output = StoreResult<Self::Watch>> + Send;
}

/// Longest name of a lease, map or map key a store accepts (bytes, before the deployment prefix).
/// Config builders check their names against it, so a config that builds is one the store takes.
pub const NAME_MAX_BYTES: usize = 1024;

/// Validate a name used as a key or map (shared by every backend so errors are identical).
pub(crate) fn check_name(what: &str, name: &str) -> StoreResult<()> {
    if name.is_empty() {
        return Err(StoreError::invalid(format!("{what} must not be empty")));
    }
    if name.len() > NAME_MAX_BYTES {
        return Err(StoreError::invalid(format!("{what} longer than {NAME_MAX_BYTES} bytes")));
    }
    Ok(())
}

/// Validate the map and every key named by a [`Store::map_txn`] call.
pub(crate) fn check_txn_names(
    map: &str,
    guards: &[(String, Expect)],
    writes: &[(String, Option<String>)],
) -> StoreResult<()> {
    check_name("map", map)?;
    guards.iter().map(|(k, _)| k).chain(writes.iter().map(|(k, _)| k)).try_for_each(|k| check_name("key", k))
}

/// Most transactions one [`Store::map_txns`] call takes. The batch runs as one atomic step of the
/// store (one script in Redis, which blocks every other client while it runs), so a caller with
/// more to commit sends several batches.
pub const MAP_TXNS_MAX: usize = 1024;

/// Validate a [`Store::map_txns`] batch: its size, the map and every key it names.
pub(crate) fn check_txns(map: &str, txns: &[MapTxn]) -> StoreResult<()> {
    if txns.len() > MAP_TXNS_MAX {
        return Err(StoreError::invalid(format!(
            "map_txns takes at most {MAP_TXNS_MAX} transactions, got {}",
            txns.len()
        )));
    }
    check_name("map", map)?;
    txns.iter().try_for_each(|t| check_txn_names(map, &t.guards, &t.writes))
}

/// Validate list items for [`MapWrite::Append`] and [`MapWrite::Remove`].
pub(crate) fn check_items(items: &[String]) -> StoreResult<()> {
    if items.iter().any(|i| i.contains(LIST_SEPARATOR) || i.is_empty()) {
        return Err(StoreError::invalid("list items must be non-empty and not contain U+001F"));
    }
    Ok(())
}

/// Longest TTL or quarantine a store accepts: one year, far below any overflow of store time.
pub(crate) const MAX_DURATION_MS: u64 = 365 * 24 * 3_600_000;

/// Validate a TTL.
pub(crate) fn check_ttl(ttl_ms: u64) -> StoreResult<()> {
    if ttl_ms == 0 || ttl_ms > MAX_DURATION_MS {
        return Err(StoreError::invalid("ttl_ms must be in 1..=1 year"));
    }
    Ok(())
}

/// Validate a quarantine (0 = none).
pub(crate) fn check_quarantine(quarantine_ms: u64) -> StoreResult<()> {
    if quarantine_ms > MAX_DURATION_MS {
        return Err(StoreError::invalid("quarantine_ms must be at most 1 year"));
    }
    Ok(())
}

/// Apply a list or value write to a current value: the pure semantics both backends share.
/// Returns `Ok(None)` when the write does not apply, `Ok(Some(new))` otherwise.
pub(crate) fn apply_write(current: Option<&str>, write: &MapWrite) -> Option<Option<String>> {
    match write {
        MapWrite::Set(v) => Some(Some(v.clone())),
        MapWrite::SetIfAbsent(v) => current.is_none().then(|| Some(v.clone())),
        // MC254: a missing key matches any expected value: a compare-and-set that also creates.
        MapWrite::CompareAndSet { expected, new } => {
            let creates = current.is_none() && crate::mutants::active(crate::mutants::Mutant::MC254);
            (creates || current == Some(expected.as_str())).then(|| Some(new.clone()))
        }
        MapWrite::CompareAndDelete(expected) => (current == Some(expected.as_str())).then_some(None),
        // MC253: a delete of an absent key "applies".
        MapWrite::Delete => {
            (current.is_some() || crate::mutants::active(crate::mutants::Mutant::MC253)).then_some(None)
        }
        MapWrite::Append(items) => {
            if items.is_empty() {
                return None;
            }
            let mut out = current.map(str::to_owned).unwrap_or_default();
            for item in items {
                if !out.is_empty() {
                    out.push(LIST_SEPARATOR);
                }
                out.push_str(item);
            }
            Some(Some(out))
        }
        MapWrite::Remove(items) => {
            let cur = current?;
            let kept: Vec<&str> = cur.split(LIST_SEPARATOR).filter(|i| !items.iter().any(|r| r == i)).collect();
            if kept.len() == cur.split(LIST_SEPARATOR).count() {
                return None;
            }
            if kept.is_empty() { Some(None) } else { Some(Some(kept.join(&LIST_SEPARATOR.to_string()))) }
        }
    }
}

/// Split a list value into its items.
///
/// ```
/// assert_eq!(keel::store::list_items("a\u{1f}b"), vec!["a", "b"]);
/// assert!(keel::store::list_items("").is_empty());
/// ```
pub fn list_items(value: &str) -> Vec<&str> {
    if value.is_empty() { Vec::new() } else { value.split(LIST_SEPARATOR).collect() }
}

#[cfg(test)]
mod bounds_tests {
    use super::*;

    fn refused(r: StoreResult<()>) -> bool {
        matches!(r, Err(StoreError::Invalid { .. }))
    }

    /// Every argument check at its exact bounds: the last value taken and the first refused
    /// (hunt 48 B: 16 mutations of these checks survived the simulator and the unit lane, since
    /// keel calls them only well inside their bounds and the conformance suite only well outside).
    #[test]
    fn argument_checks_hold_at_their_exact_bounds() {
        let long = "n".repeat(NAME_MAX_BYTES);
        assert!(refused(check_name("map", "")));
        assert_eq!(check_name("map", &long), Ok(()), "a name of exactly NAME_MAX_BYTES");
        assert!(refused(check_name("map", &format!("{long}n"))));

        assert!(refused(check_scan("m", 0)));
        assert_eq!(check_scan("m", 1), Ok(()));
        assert_eq!(check_scan("m", MAP_SCAN_COUNT_MAX), Ok(()));
        assert!(refused(check_scan("m", MAP_SCAN_COUNT_MAX + 1)));

        let txn = MapTxn { guards: Vec::new(), writes: vec![("k".into(), None)] };
        assert_eq!(check_txns("m", &vec![txn.clone(); MAP_TXNS_MAX]), Ok(()));
        assert!(refused(check_txns("m", &vec![txn.clone(); MAP_TXNS_MAX + 1])));
        assert!(refused(check_txns("m", &[MapTxn { guards: Vec::new(), writes: vec![(String::new(), None)] }])));

        assert_eq!(check_items(&["a".into()]), Ok(()));
        assert!(refused(check_items(&[String::new()])));
        assert!(refused(check_items(&[format!("a{LIST_SEPARATOR}b")])));

        assert!(refused(check_ttl(0)));
        assert_eq!(check_ttl(1), Ok(()));
        assert_eq!(check_ttl(MAX_DURATION_MS), Ok(()));
        assert!(refused(check_ttl(MAX_DURATION_MS + 1)));

        assert_eq!(check_quarantine(0), Ok(()));
        assert_eq!(check_quarantine(MAX_DURATION_MS), Ok(()));
        assert!(refused(check_quarantine(MAX_DURATION_MS + 1)));
    }
}
