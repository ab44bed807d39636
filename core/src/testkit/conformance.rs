//! The store conformance suite: one set of cases every [`Store`] backend must pass, so that
//! `MemoryStore` (which the simulator trusts) and `RedisStore` (which production runs) cannot
//! drift apart.
//!
//! A backend provides a [`Harness`] (a store plus the faults the cases need) and expands
//! [`conformance_tests!`](crate::conformance_tests) in a test file, which makes one named
//! `#[tokio::test]` per case:
//!
//! ```text
//! // core/tests/conformance_memory.rs
//! keel::conformance_tests!(keel::testkit::conformance::MemoryHarness::new());
//! ```
//!
//! Cases return `Err` for an unexpected store error and panic (assert) on a semantic difference.
//! Durations are real time on a real store, so cases keep generous margins around TTLs.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Outcome, StoreError};
use crate::store::{
    Acquire, Change, Expect, LIST_SEPARATOR, MAP_RESEEDS_MAX, MAP_SCAN_COUNT_MAX, MAP_SCAN_START, MAP_TXNS_MAX,
    MapSnapshot, MapTxn, MapWrite, MemoryStore, READS_MAX, Read, ReadOut, Renew, Store, TxnOutcome, Watch, WatchEvent,
    list_items,
};
use crate::testkit::ManualClock;

/// TTL used by the lease cases.
pub const TTL_MS: u64 = 2_000;
/// Quarantine used by the lease cases.
pub const QUARANTINE_MS: u64 = 1_000;
/// How long a case waits for a watch event before failing.
pub const EVENT_WAIT: Duration = Duration::from_secs(10);

/// A store under test plus the faults the cases inject.
pub trait Harness: Send + Sync {
    /// The backend.
    type S: Store;

    /// A handle to the store under test (every call shares the same data). Every case starts
    /// from an empty store.
    fn store(&self) -> Self::S;

    /// Let store time move forward by `by` (a manual clock, or real sleeping).
    fn advance(&self, by: Duration) -> impl Future<Output = ()> + Send;

    /// Restart the store losing every key, as Redis without persistence does. Store time keeps
    /// running and moves forward by at least 1 ms, as any real restart takes.
    fn lose_data(&self) -> impl Future<Output = ()> + Send;

    /// Restart the store keeping its data (every write acknowledged before the restart).
    fn restart_keep_data(&self) -> impl Future<Output = ()> + Send;

    /// Persist the data as it is now (an RDB save; the last fsync of an AOF), for
    /// [`restart_from_checkpoint`](Harness::restart_from_checkpoint).
    fn checkpoint(&self) -> impl Future<Output = ()> + Send;

    /// Crash and restart from the last [`checkpoint`](Harness::checkpoint): the writes since are
    /// lost, as in a crash under `appendfsync everysec` or a failover to a lagging replica.
    fn restart_from_checkpoint(&self) -> impl Future<Output = ()> + Send;

    /// Stall the store so requests are sent but not answered until [`thaw`](Harness::thaw).
    /// Returns false when the backend cannot (the cases then check the retry semantics only).
    fn freeze(&self) -> impl Future<Output = bool> + Send {
        async { false }
    }

    /// Resume a store stalled by [`freeze`](Harness::freeze).
    fn thaw(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// [`MemoryStore`] on a [`ManualClock`]: time moves only when a case advances it.
#[derive(Debug)]
pub struct MemoryHarness {
    clock: Arc<ManualClock>,
    store: MemoryStore,
    saved: std::sync::Mutex<Option<crate::store::StoreState>>,
}

impl Default for MemoryHarness {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryHarness {
    /// A fresh store at [`DEFAULT_BASE_MS`](crate::store::memory::DEFAULT_BASE_MS).
    pub fn new() -> Self {
        let clock = Arc::new(ManualClock::new());
        let store = MemoryStore::with_clock(clock.clone(), crate::store::memory::DEFAULT_BASE_MS);
        MemoryHarness { clock, store, saved: std::sync::Mutex::new(None) }
    }
}

impl Harness for MemoryHarness {
    type S = MemoryStore;

    fn store(&self) -> MemoryStore {
        self.store.clone()
    }

    async fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    async fn lose_data(&self) {
        self.store.reset();
        self.clock.advance(Duration::from_millis(1));
    }

    async fn restart_keep_data(&self) {
        self.store.restart();
        self.clock.advance(Duration::from_millis(1));
    }

    async fn checkpoint(&self) {
        *self.saved.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(self.store.checkpoint());
    }

    async fn restart_from_checkpoint(&self) {
        let saved = self.saved.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        self.store.restart_from(saved.unwrap_or_default());
        self.clock.advance(Duration::from_millis(1));
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each building its own harness.
///
/// `conformance_tests!(expr)` evaluates `expr` (inside the async test, so it may `.await`) to a
/// [`Harness`]; `conformance_tests!(optional expr)` takes an `Option` of one and passes the case
/// when it is `None` (the harness is expected to have said loudly why it skipped).
#[macro_export]
macro_rules! conformance_tests {
    (optional $make:expr) => {
        $crate::__conformance_cases! { $make; }
    };
    ($make:expr) => {
        $crate::__conformance_cases! { Some($make); }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($make:expr;) => {
        $crate::__conformance_cases! { $make;
            lease_grant_is_idempotent_and_exclusive,
            lease_renew_only_by_holder,
            lease_release_never_deletes_a_foreign_token,
            lease_fences_strictly_increase,
            lease_expires_after_ttl,
            lease_reacquire_by_the_holder_refreshes_the_expiry,
            lease_quarantined_on_first_use,
            lease_data_loss_quarantines_and_fences_keep_increasing,
            lease_restart_quarantines_and_fences_stay_above_rolled_back_grants,
            lease_invalid_arguments_are_typed,
            map_set_get_snapshot_and_revisions,
            map_conditional_writes,
            map_list_append_and_remove,
            map_txn_guards,
            map_txns_judges_each_in_order,
            map_txns_limits_are_typed,
            map_scan_returns_every_key_present_throughout,
            map_scan_limits_and_cursors_are_typed,
            reads_answer_as_the_single_reads_in_order,
            reads_limits_are_typed,
            map_revisions_independent_per_map,
            map_data_loss_reseeds_revisions_above_old,
            map_restart_reseeds_revisions_above_rolled_back_ones,
            map_snapshot_names_the_revisions_a_restart_lost,
            map_snapshot_says_a_restart_came_after_its_last_commit,
            map_reseeds_are_bounded_and_stay_readable,
            map_invalid_arguments_are_typed,
            watch_delivers_changes_in_revision_order,
            every_watch_of_a_map_receives_each_change,
            watch_delivers_a_transaction_as_consecutive_changes,
            watch_reports_gap_after_data_loss,
            watch_reports_gap_after_restart_keeping_data,
            unknown_outcome_retry_is_safe,
        }
    };
    ($make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() -> Result<(), $crate::StoreError> {
                let Some(harness) = $make else { return Ok(()) };
                $crate::testkit::conformance::$case(&harness).await
            }
        )*
    };
}

fn granted(a: Acquire) -> u64 {
    match a {
        Acquire::Granted { fence } => fence,
        other => panic!("expected a grant, got {other:?}"),
    }
}

fn assert_invalid<T: std::fmt::Debug>(what: &str, r: Result<T, StoreError>) {
    match r {
        Err(StoreError::Invalid { .. }) => {}
        other => panic!("{what}: expected StoreError::Invalid, got {other:?}"),
    }
}

async fn next_event<W: Watch>(w: &mut W) -> WatchEvent {
    match tokio::time::timeout(EVENT_WAIT, w.next()).await {
        Ok(ev) => ev,
        Err(_) => panic!("no watch event within {EVENT_WAIT:?}"),
    }
}

/// A grant is idempotent for its token and exclusive against others.
pub async fn lease_grant_is_idempotent_and_exclusive<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let f1 = granted(s.lease_acquire("L", "a", TTL_MS, 0).await?);
    assert!(f1 > 0);
    assert_eq!(s.lease_acquire("L", "a", TTL_MS, 0).await?, Acquire::Granted { fence: f1 }, "re-acquire is idempotent");
    match s.lease_acquire("L", "b", TTL_MS, 0).await? {
        // In milliseconds, just granted: a contender waits min(poll, remaining), and a
        // remaining time in seconds (hunt 31 A #19: TTL for PTTL) had every contender poll at
        // its fastest rate for the holder's whole tenure.
        Acquire::Held { remaining_ms } => {
            assert!(remaining_ms > TTL_MS / 2 && remaining_ms <= TTL_MS, "{remaining_ms} ms of a {TTL_MS} ms grant")
        }
        other => panic!("b must see the lease held, got {other:?}"),
    }
    // Another lease is independent.
    granted(s.lease_acquire("L2", "b", TTL_MS, 0).await?);
    Ok(())
}

/// Renewal is compare-and-extend: only the holder's token renews, the fence is unchanged.
pub async fn lease_renew_only_by_holder<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let f1 = granted(s.lease_acquire("L", "a", TTL_MS, 0).await?);
    assert_eq!(s.lease_renew("L", "a", TTL_MS).await?, Renew::Renewed { fence: f1 });
    assert_eq!(s.lease_renew("L", "b", TTL_MS).await?, Renew::NotHolder);
    assert_eq!(s.lease_renew("never-acquired", "a", TTL_MS).await?, Renew::NotHolder);
    assert_eq!(s.lease_acquire("L", "a", TTL_MS, 0).await?, Acquire::Granted { fence: f1 });
    Ok(())
}

/// Release is compare-and-delete: a foreign token never deletes the holder's grant.
pub async fn lease_release_never_deletes_a_foreign_token<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let f1 = granted(s.lease_acquire("L", "a", TTL_MS, 0).await?);
    assert!(!s.lease_release("L", "b").await?, "a foreign release must not apply");
    assert!(matches!(s.lease_acquire("L", "b", TTL_MS, 0).await?, Acquire::Held { .. }), "a still holds");
    assert!(s.lease_release("L", "a").await?);
    assert!(!s.lease_release("L", "a").await?, "a second release finds nothing");
    assert!(!s.lease_release("never-acquired", "a").await?);
    assert_eq!(s.lease_renew("L", "a", TTL_MS).await?, Renew::NotHolder);
    let f2 = granted(s.lease_acquire("L", "b", TTL_MS, 0).await?);
    assert!(f2 > f1, "{f2} > {f1}");
    Ok(())
}

/// Every new grant gets a strictly greater fence.
pub async fn lease_fences_strictly_increase<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let mut last = 0;
    for i in 0..6 {
        let token = format!("t{i}");
        let f = granted(s.lease_acquire("L", &token, TTL_MS, 0).await?);
        assert!(f > last, "fence {f} after {last}");
        assert!(s.lease_release("L", &token).await?);
        last = f;
    }
    Ok(())
}

/// A re-acquire by the holder's own token is granted (same fence) and extends the grant one TTL
/// from the re-acquire, as a renewal does: its owner counts its deadline from the retry's send,
/// so a store that kept the old expiry would let the belief outlive the grant (MC33).
pub async fn lease_reacquire_by_the_holder_refreshes_the_expiry<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let f1 = granted(s.lease_acquire("L", "a", TTL_MS, 0).await?);
    h.advance(Duration::from_millis(TTL_MS / 2)).await;
    assert_eq!(s.lease_acquire("L", "a", TTL_MS, 0).await?, Acquire::Granted { fence: f1 }, "re-acquire");
    // Past the first grant's TTL, but within the re-acquire's.
    h.advance(Duration::from_millis(TTL_MS * 7 / 10)).await;
    match s.lease_acquire("L", "b", TTL_MS, 0).await? {
        Acquire::Held { remaining_ms } => {
            assert!(remaining_ms > 0 && remaining_ms <= TTL_MS * 3 / 10, "{remaining_ms}");
        }
        other => panic!("the re-acquire must have extended the TTL, got {other:?}"),
    }
    assert_eq!(s.lease_renew("L", "a", TTL_MS).await?, Renew::Renewed { fence: f1 }, "still the holder");
    Ok(())
}

/// A grant expires one TTL (store time) after its last renewal, then another token may take it.
pub async fn lease_expires_after_ttl<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let f1 = granted(s.lease_acquire("L", "a", TTL_MS, 0).await?);
    h.advance(Duration::from_millis(TTL_MS / 2)).await;
    assert_eq!(s.lease_renew("L", "a", TTL_MS).await?, Renew::Renewed { fence: f1 });
    // Past the original TTL, but within the renewed one.
    h.advance(Duration::from_millis(TTL_MS * 7 / 10)).await;
    assert!(matches!(s.lease_acquire("L", "b", TTL_MS, 0).await?, Acquire::Held { .. }), "renewal extended the TTL");
    h.advance(Duration::from_millis(TTL_MS / 2)).await;
    assert_eq!(s.lease_renew("L", "a", TTL_MS).await?, Renew::NotHolder, "expired");
    assert!(!s.lease_release("L", "a").await?, "nothing to release after expiry");
    let f2 = granted(s.lease_acquire("L", "b", TTL_MS, 0).await?);
    assert!(f2 > f1);
    Ok(())
}

/// The first use of a lease (indistinguishable from a data loss) is quarantined once.
pub async fn lease_quarantined_on_first_use<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let r1 = match s.lease_acquire("L", "a", TTL_MS, QUARANTINE_MS).await? {
        Acquire::Quarantined { remaining_ms } => remaining_ms,
        other => panic!("a fresh lease must be quarantined, got {other:?}"),
    };
    assert!(r1 > 0 && r1 <= QUARANTINE_MS, "{r1}");
    match s.lease_acquire("L", "b", TTL_MS, QUARANTINE_MS).await? {
        Acquire::Quarantined { remaining_ms } => assert!(remaining_ms <= r1, "the quarantine is not re-armed"),
        other => panic!("still quarantined, got {other:?}"),
    }
    h.advance(Duration::from_millis(QUARANTINE_MS + 200)).await;
    let f1 = granted(s.lease_acquire("L", "a", TTL_MS, QUARANTINE_MS).await?);
    assert!(s.lease_release("L", "a").await?);
    let f2 = granted(s.lease_acquire("L", "b", TTL_MS, QUARANTINE_MS).await?);
    assert!(f2 > f1, "no second quarantine while the counter exists");
    Ok(())
}

/// After a data loss the holder is gone, grants are quarantined, and fences keep increasing.
pub async fn lease_data_loss_quarantines_and_fences_keep_increasing<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let f1 = granted(s.lease_acquire("L", "a", TTL_MS, 0).await?);
    assert!(s.lease_release("L", "a").await?);
    let f2 = granted(s.lease_acquire("L", "b", TTL_MS, 0).await?);
    assert!(f2 > f1);
    h.lose_data().await;
    let s = h.store();
    assert_eq!(s.lease_renew("L", "b", TTL_MS).await?, Renew::NotHolder, "the grant was lost with the data");
    assert!(matches!(s.lease_acquire("L", "c", TTL_MS, QUARANTINE_MS).await?, Acquire::Quarantined { .. }));
    assert!(matches!(s.lease_acquire("L", "b", TTL_MS, QUARANTINE_MS).await?, Acquire::Quarantined { .. }));
    h.advance(Duration::from_millis(QUARANTINE_MS + 200)).await;
    let f3 = granted(s.lease_acquire("L", "c", TTL_MS, QUARANTINE_MS).await?);
    assert!(f3 > f2, "fence {f3} after a data loss must exceed {f2}");
    Ok(())
}

/// A restart quarantines the next acquire even when it kept the data, since a store cannot tell
/// it from one that rolled back its last writes; after a roll-back, fences stay above the grants
/// it lost (whose holders may still believe and write with them).
pub async fn lease_restart_quarantines_and_fences_stay_above_rolled_back_grants<H: Harness>(
    h: &H,
) -> Result<(), StoreError> {
    let s = h.store();
    let f1 = granted(s.lease_acquire("L", "a", TTL_MS, 0).await?);
    h.checkpoint().await;
    assert!(s.lease_release("L", "a").await?);
    let f2 = granted(s.lease_acquire("L", "b", TTL_MS, QUARANTINE_MS).await?);
    assert!(f2 > f1);
    h.restart_from_checkpoint().await;
    let s = h.store();
    assert_eq!(s.lease_renew("L", "b", TTL_MS).await?, Renew::NotHolder, "b's grant was rolled back");
    assert!(
        matches!(s.lease_acquire("L", "a", TTL_MS, QUARANTINE_MS).await?, Acquire::Quarantined { .. }),
        "a's grant is back with the checkpoint, but b may still believe it holds: a's own \
         re-acquire is quarantined too (hunt 31 A #7: the holder's re-grant came first)"
    );
    assert!(s.lease_release("L", "a").await?, "a's grant is back with the checkpoint");
    assert!(
        matches!(s.lease_acquire("L", "c", TTL_MS, QUARANTINE_MS).await?, Acquire::Quarantined { .. }),
        "b may still believe it holds: no grant for a TTL after the restart"
    );
    h.advance(Duration::from_millis(QUARANTINE_MS + 200)).await;
    let f3 = granted(s.lease_acquire("L", "c", TTL_MS, QUARANTINE_MS).await?);
    assert!(f3 > f2, "fence {f3} after a roll-back must exceed the lost grant's {f2}");
    assert!(s.lease_release("L", "c").await?);
    h.restart_keep_data().await;
    let s = h.store();
    assert!(
        matches!(s.lease_acquire("L", "d", TTL_MS, QUARANTINE_MS).await?, Acquire::Quarantined { .. }),
        "a restart that kept the data quarantines too"
    );
    h.advance(Duration::from_millis(QUARANTINE_MS + 200)).await;
    let f4 = granted(s.lease_acquire("L", "d", TTL_MS, QUARANTINE_MS).await?);
    assert!(f4 > f3);
    let f5 = {
        assert!(s.lease_release("L", "d").await?);
        granted(s.lease_acquire("L", "e", TTL_MS, QUARANTINE_MS).await?)
    };
    assert!(f5 > f4, "one quarantine per restart, not per acquire");
    Ok(())
}

/// Bad names and TTLs are typed errors, and nothing is applied.
pub async fn lease_invalid_arguments_are_typed<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let long = "x".repeat(1025);
    assert_invalid("empty name", s.lease_acquire("", "a", TTL_MS, 0).await);
    assert_invalid("long name", s.lease_acquire(&long, "a", TTL_MS, 0).await);
    assert_invalid("empty token", s.lease_acquire("L", "", TTL_MS, 0).await);
    assert_invalid("zero ttl", s.lease_acquire("L", "a", 0, 0).await);
    assert_invalid("ttl over a year", s.lease_acquire("L", "a", 366 * 24 * 3_600_000, 0).await);
    assert_invalid("quarantine over a year", s.lease_acquire("L", "a", TTL_MS, u64::MAX).await);
    assert_invalid("renew empty name", s.lease_renew("", "a", TTL_MS).await);
    assert_invalid("renew zero ttl", s.lease_renew("L", "a", 0).await);
    assert_invalid("release empty name", s.lease_release("", "a").await);
    // Nothing above touched the lease: its counter is still missing, so it is quarantined.
    let first = s.lease_acquire("L", "a", TTL_MS, QUARANTINE_MS).await?;
    assert!(matches!(first, Acquire::Quarantined { .. }), "got {first:?}");
    Ok(())
}

/// Reads, unconditional sets and the revision they bump.
pub async fn map_set_get_snapshot_and_revisions<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    assert_eq!(s.map_get("m", "k").await?, (None, 0));
    assert_eq!(s.map_snapshot("m").await?, MapSnapshot::default());
    let w1 = s.map_write("m", "k", MapWrite::Set("v1".into())).await?;
    assert!(w1.applied && w1.rev > 0);
    assert_eq!(w1.value.as_deref(), Some("v1"));
    assert_eq!(s.map_get("m", "k").await?, (Some("v1".into()), w1.rev));
    assert_eq!(s.map_get("m", "absent").await?, (None, w1.rev));
    let w2 = s.map_write("m", "k", MapWrite::Set("v1".into())).await?;
    assert!(w2.applied, "Set always applies");
    assert_eq!(w2.rev, w1.rev + 1);
    let w3 = s.map_write("m", "k2", MapWrite::Set("two words ünïcode".into())).await?;
    assert_eq!(w3.rev, w1.rev + 2);
    let snap = s.map_snapshot("m").await?;
    assert_eq!(snap.rev, w3.rev);
    assert_eq!(snap.entries.len(), 2);
    assert_eq!(snap.entries.get("k").map(String::as_str), Some("v1"));
    assert_eq!(snap.entries.get("k2").map(String::as_str), Some("two words ünïcode"));
    Ok(())
}

/// Set-if-absent, compare-and-set, compare-and-delete and delete; a write whose guard fails
/// changes nothing and reports the current value and revision.
pub async fn map_conditional_writes<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let w = s.map_write("m", "k", MapWrite::SetIfAbsent("a".into())).await?;
    assert!(w.applied);
    let rev = w.rev;
    let w = s.map_write("m", "k", MapWrite::SetIfAbsent("b".into())).await?;
    assert!(!w.applied);
    assert_eq!((w.rev, w.value.as_deref()), (rev, Some("a")));

    let cas = |e: &str, n: &str| MapWrite::CompareAndSet { expected: e.into(), new: n.into() };
    let w = s.map_write("m", "k", cas("zzz", "b")).await?;
    assert!(!w.applied);
    assert_eq!((w.rev, w.value.as_deref()), (rev, Some("a")));
    let w = s.map_write("m", "absent", cas("a", "b")).await?;
    assert!(!w.applied && w.value.is_none(), "CAS on an absent key fails");
    let w = s.map_write("m", "k", cas("a", "b")).await?;
    assert!(w.applied);
    assert_eq!((w.rev, w.value.as_deref()), (rev + 1, Some("b")));

    let w = s.map_write("m", "k", MapWrite::CompareAndDelete("a".into())).await?;
    assert!(!w.applied);
    assert_eq!((w.rev, w.value.as_deref()), (rev + 1, Some("b")));
    let w = s.map_write("m", "k", MapWrite::CompareAndDelete("b".into())).await?;
    assert!(w.applied && w.value.is_none());
    assert_eq!(w.rev, rev + 2);
    assert_eq!(s.map_get("m", "k").await?, (None, rev + 2));

    let w = s.map_write("m", "k", MapWrite::Delete).await?;
    assert!(!w.applied, "deleting an absent key is not applied");
    assert_eq!(w.rev, rev + 2);
    s.map_write("m", "k", MapWrite::Set("c".into())).await?;
    let w = s.map_write("m", "k", MapWrite::Delete).await?;
    assert!(w.applied && w.value.is_none());
    assert_eq!(w.rev, rev + 4);
    let snap = s.map_snapshot("m").await?;
    assert_eq!((snap.rev, snap.entries.len()), (rev + 4, 0));
    Ok(())
}

/// List values: append creates and extends, remove drops every occurrence and deletes the key
/// when the list becomes empty.
pub async fn map_list_append_and_remove<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let items = |v: &[&str]| v.iter().map(|i| i.to_string()).collect::<Vec<_>>();
    let sep = LIST_SEPARATOR.to_string();
    let w = s.map_write("m", "l", MapWrite::Append(items(&["a", "b"]))).await?;
    assert!(w.applied);
    assert_eq!(w.value, Some(["a", "b"].join(&sep)));
    let rev = w.rev;
    let w = s.map_write("m", "l", MapWrite::Append(vec![])).await?;
    assert!(!w.applied && w.rev == rev, "an empty append is not applied");
    assert_eq!(w.value, Some(["a", "b"].join(&sep)));
    let w = s.map_write("m", "l", MapWrite::Append(items(&["c", "a"]))).await?;
    assert_eq!(w.value, Some(["a", "b", "c", "a"].join(&sep)));
    let w = s.map_write("m", "l", MapWrite::Remove(items(&["x"]))).await?;
    assert!(!w.applied && w.rev == rev + 1, "removing nothing is not applied");
    let w = s.map_write("m", "l", MapWrite::Remove(items(&["a"]))).await?;
    assert!(w.applied);
    assert_eq!(w.value, Some(["b", "c"].join(&sep)), "every occurrence removed");
    assert_eq!(list_items(w.value.as_deref().unwrap_or_default()), vec!["b", "c"]);
    let w = s.map_write("m", "l", MapWrite::Remove(items(&["b", "c", "zz"]))).await?;
    assert!(w.applied && w.value.is_none(), "an emptied list deletes the key");
    assert_eq!(w.rev, rev + 3);
    assert_eq!(s.map_get("m", "l").await?, (None, rev + 3));
    let w = s.map_write("m", "l", MapWrite::Remove(items(&["a"]))).await?;
    assert!(!w.applied, "remove on an absent key");
    // An empty string value is an empty list: appending adds no leading separator.
    s.map_write("m", "e", MapWrite::Set(String::new())).await?;
    let w = s.map_write("m", "e", MapWrite::Append(items(&["x"]))).await?;
    assert_eq!(w.value.as_deref(), Some("x"));
    // A list with one item that is removed entirely.
    let w = s.map_write("m", "e", MapWrite::Remove(items(&["x"]))).await?;
    assert!(w.applied && w.value.is_none());
    Ok(())
}

/// A transaction applies all of its writes (one revision each) only if every guard holds.
pub async fn map_txn_guards<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let r0 = s.map_write("m", "a", MapWrite::Set("1".into())).await?.rev;
    let k = |k: &str| k.to_owned();
    let t = s.map_txn("m", &[(k("b"), Expect::Absent)], &[(k("c"), Some("x".into()))]).await?;
    assert!(t.applied);
    assert_eq!(t.rev, r0 + 1);
    let guards = [(k("a"), Expect::Value("1".into())), (k("b"), Expect::Absent)];
    let writes = [(k("b"), Some("2".into())), (k("a"), None)];
    let t = s.map_txn("m", &guards, &writes).await?;
    assert!(t.applied);
    assert_eq!(t.rev, r0 + 3, "one revision per write");
    let snap = s.map_snapshot("m").await?;
    assert_eq!(snap.rev, r0 + 3);
    assert_eq!(snap.entries.get("a"), None);
    assert_eq!(snap.entries.get("b").map(String::as_str), Some("2"));
    // The same guards no longer hold: nothing changes.
    let t = s.map_txn("m", &guards, &[(k("z"), Some("no".into()))]).await?;
    assert!(!t.applied);
    assert_eq!(t.rev, r0 + 3);
    let t = s.map_txn("m", &[(k("b"), Expect::Value("wrong".into()))], &[(k("z"), Some("no".into()))]).await?;
    assert!(!t.applied);
    assert_eq!(s.map_get("m", "z").await?, (None, r0 + 3));
    // Guards only.
    let t = s.map_txn("m", &[(k("b"), Expect::Value("2".into()))], &[]).await?;
    assert!(t.applied && t.rev == r0 + 3, "holding guards and no writes: applied, no revision");
    let t = s.map_txn("m", &[(k("b"), Expect::Absent)], &[]).await?;
    assert!(!t.applied && t.rev == r0 + 3);
    // On a fresh map.
    let t = s.map_txn("fresh", &[(k("a"), Expect::Absent)], &[(k("a"), Some("1".into()))]).await?;
    assert!(t.applied && t.rev > 0);
    assert_eq!(s.map_get("fresh", "a").await?, (Some("1".into()), t.rev));
    Ok(())
}

/// Each map has its own revision counter.
pub async fn map_revisions_independent_per_map<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let r1 = s.map_write("m1", "k", MapWrite::Set("a".into())).await?.rev;
    let q1 = s.map_write("m2", "k", MapWrite::Set("a".into())).await?.rev;
    for i in 1..=3 {
        assert_eq!(s.map_write("m1", "k", MapWrite::Set(format!("{i}"))).await?.rev, r1 + i);
    }
    assert_eq!(s.map_get("m2", "k").await?.1, q1, "m1's writes do not move m2's revision");
    assert_eq!(s.map_write("m2", "j", MapWrite::Set("b".into())).await?.rev, q1 + 1);
    assert_eq!(s.map_snapshot("m1").await?.rev, r1 + 3);
    Ok(())
}

/// After a data loss a map is empty at revision 0, and its next revision exceeds every old one.
pub async fn map_data_loss_reseeds_revisions_above_old<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let mut old = 0;
    for i in 0..3 {
        old = s.map_write("m", "k", MapWrite::Set(format!("{i}"))).await?.rev;
    }
    h.lose_data().await;
    let s = h.store();
    assert_eq!(s.map_get("m", "k").await?, (None, 0));
    assert_eq!(s.map_snapshot("m").await?, MapSnapshot::default());
    let w = s.map_write("m", "k", MapWrite::Set("new".into())).await?;
    assert!(w.rev > old, "revision {} after a data loss must exceed {old}", w.rev);
    Ok(())
}

/// After a restart that rolled the data back, a map's next revision is above every revision it
/// lost (which replicas, subscribers and waiters may have seen for the lost changes), by a write
/// or a transaction; revisions run on one by one after the jump. A restart that kept the data
/// jumps too, since a store cannot tell it from a roll-back; reads never move the counter.
pub async fn map_restart_reseeds_revisions_above_rolled_back_ones<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let kept = s.map_write("m", "k", MapWrite::Set("kept".into())).await?.rev;
    s.map_write("t", "k", MapWrite::Set("kept".into())).await?;
    h.checkpoint().await;
    let mut lost = 0;
    for (map, v) in [("m", "lost1"), ("m", "lost2"), ("t", "lost")] {
        lost = lost.max(s.map_write(map, "k", MapWrite::Set(v.into())).await?.rev);
    }
    h.restart_from_checkpoint().await;
    let s = h.store();
    assert_eq!(s.map_get("m", "k").await?, (Some("kept".into()), kept), "the checkpoint's value and revision");
    let w = s.map_write("m", "k", MapWrite::Set("new".into())).await?;
    assert!(w.rev > lost, "revision {} after a roll-back must exceed the lost {lost}", w.rev);
    let next = s.map_write("m", "k2", MapWrite::Set("v".into())).await?.rev;
    assert_eq!(next, w.rev + 1, "one jump per restart, then one revision per change");
    let t = s.map_txn("t", &[("k".into(), Expect::Value("kept".into()))], &[("k".into(), Some("new".into()))]).await?;
    assert!(t.applied && t.rev > lost, "a transaction after a roll-back: {t:?}, lost {lost}");
    h.restart_keep_data().await;
    let s = h.store();
    assert_eq!(s.map_get("m", "k2").await?, (Some("v".into()), next), "a read does not move the counter");
    let after = s.map_write("m", "k2", MapWrite::Set("w".into())).await?.rev;
    assert!(after > next + 1, "revision {after} after a restart jumps above {next}");
    // The first commit after a restart may be several changes: each takes its own revision
    // after the jump, and the next commit goes on from the last (hunt 31 A #24: the counter
    // was left one change past the jump, so the next write reused a revision).
    h.restart_keep_data().await;
    let s = h.store();
    let writes: Vec<(String, Option<String>)> =
        ["a", "b", "c"].iter().map(|k| ((*k).to_owned(), Some("x".to_owned()))).collect();
    let t = s.map_txn("m", &[], &writes).await?;
    assert!(t.applied && t.rev > after + 3, "{t:?} after a restart, above {after}");
    let next = s.map_write("m", "k2", MapWrite::Set("y".into())).await?.rev;
    assert_eq!(next, t.rev + 1, "the commit after a three-change jump goes on from its last revision");
    Ok(())
}

/// A snapshot names the revisions a store restart lost (`MapSnapshot::lost_in_restart`), so a
/// `set_and_wait` whose write was lost is told `DataLost` although the revisions seeded after
/// the restart are above its write's: a roll-back loses the revisions after the checkpoint, a
/// restart that kept the data loses none, and a restart without the data loses every one.
pub async fn map_snapshot_names_the_revisions_a_restart_lost<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let kept = s.map_write("m", "k", MapWrite::Set("kept".into())).await?.rev;
    h.checkpoint().await;
    let lost = [
        s.map_write("m", "k", MapWrite::Set("lost1".into())).await?.rev,
        s.map_write("m", "k2", MapWrite::Set("lost2".into())).await?.rev,
    ];
    h.restart_from_checkpoint().await;
    let s = h.store();
    let before = s.map_snapshot("m").await?;
    assert_eq!((before.rev, before.reseeds.len()), (kept, 1), "no commit yet: only the first seeding");
    assert!(!before.lost_in_restart(kept), "{before:?}");
    let w = s.map_write("m", "k", MapWrite::Set("new".into())).await?.rev;
    let snap = s.map_snapshot("m").await?;
    assert_eq!(snap.reseeds.len(), 2, "{snap:?}");
    assert_eq!(snap.reseeds.last().map(|r| r.kept), Some(kept), "{snap:?}");
    assert!(lost.iter().all(|&r| r < snap.rev && snap.lost_in_restart(r)), "{lost:?} in {snap:?}");
    assert!(!snap.lost_in_restart(kept) && !snap.lost_in_restart(w), "{snap:?}");
    h.restart_keep_data().await;
    let s = h.store();
    let after = s.map_write("m", "k", MapWrite::Set("after".into())).await?.rev;
    let snap = s.map_snapshot("m").await?;
    assert_eq!(snap.reseeds.len(), 3, "{snap:?}");
    assert!(!snap.lost_in_restart(w) && !snap.lost_in_restart(after), "a restart that kept the data: {snap:?}");
    assert!(snap.lost_in_restart(lost[0]), "{snap:?}");
    h.lose_data().await;
    let s = h.store();
    let fresh = s.map_write("m", "k", MapWrite::Set("fresh".into())).await?.rev;
    let snap = s.map_snapshot("m").await?;
    assert_eq!(snap.reseeds.len(), 1, "{snap:?}");
    assert!([kept, w, after].iter().all(|&r| snap.lost_in_restart(r)), "all lost with the data: {snap:?}");
    assert!(!snap.lost_in_restart(fresh), "{snap:?}");
    Ok(())
}

/// A map restarted more often than the store remembers keeps its newest `MAP_RESEEDS_MAX`
/// seedings, oldest first, and stays readable: every snapshot after each restart names the
/// seedings so far (up to the bound), the newest keeping the revision written before it (hunt
/// 31 A #2 and #3: a store that kept one seeding more than its reader takes, or a reader that
/// refused exactly the bound, turned every snapshot of the map `Corrupt` for good).
pub async fn map_reseeds_are_bounded_and_stay_readable<H: Harness>(h: &H) -> Result<(), StoreError> {
    let mut rev = h.store().map_write("m", "k", MapWrite::Set("0".into())).await?.rev;
    for i in 1..=MAP_RESEEDS_MAX + 2 {
        h.restart_keep_data().await;
        let s = h.store();
        let written = s.map_write("m", "k", MapWrite::Set(i.to_string())).await?.rev;
        let snap = s.map_snapshot("m").await?;
        assert_eq!(snap.reseeds.len(), (i + 1).min(MAP_RESEEDS_MAX), "after restart {i}: {snap:?}");
        assert_eq!(snap.reseeds.last().map(|r| r.kept), Some(rev), "after restart {i}: {snap:?}");
        assert!(snap.reseeds.windows(2).all(|w| w[0].seed < w[1].seed), "oldest first: {snap:?}");
        assert!(!snap.lost_in_restart(written), "{snap:?}");
        rev = written;
    }
    Ok(())
}

/// A snapshot says whether the store restarted since the map's last commit
/// (`MapSnapshot::restarted_since_commit`), in `map_snapshot` and in a `reads` batch alike: a
/// replica that loads it must not apply the next revision of a feed opened before the restart,
/// which may be a change a roll-back lost. The next commit clears it; a map never written, and a
/// store that has not restarted since the commit, never say it.
pub async fn map_snapshot_says_a_restart_came_after_its_last_commit<H: Harness>(h: &H) -> Result<(), StoreError> {
    let restarted = |snap: MapSnapshot| snap.restarted_since_commit;
    async fn batched<S: Store>(s: &S) -> Result<bool, StoreError> {
        let outs = s.reads(&[Read::Snapshot { map: "m".into() }]).await?;
        Ok(crate::store::ReadOuts::new(outs).snapshot()?.restarted_since_commit)
    }
    let s = h.store();
    assert!(!restarted(s.map_snapshot("m").await?), "never written");
    s.map_write("m", "k", MapWrite::Set("a".into())).await?;
    assert!(!restarted(s.map_snapshot("m").await?) && !batched(&s).await?, "no restart since the commit");
    h.checkpoint().await;
    s.map_write("m", "k", MapWrite::Set("lost".into())).await?;
    h.restart_from_checkpoint().await;
    let s = h.store();
    let snap = s.map_snapshot("m").await?;
    assert!(snap.restarted_since_commit, "rolled back, no commit since: {snap:?}");
    assert!(batched(&s).await?, "a reads batch says it too");
    assert!(!restarted(s.map_snapshot("never").await?), "a map never written");
    assert!(restarted(s.map_snapshot("m").await?), "a read does not judge the counter");
    s.map_write("m", "k", MapWrite::Set("b".into())).await?;
    assert!(!restarted(s.map_snapshot("m").await?) && !batched(&s).await?, "the commit judged it");
    h.restart_keep_data().await;
    let s = h.store();
    assert!(restarted(s.map_snapshot("m").await?), "a restart that kept the data");
    s.map_txn("m", &[], &[("k".to_owned(), None)]).await?;
    assert!(!restarted(s.map_snapshot("m").await?), "a transaction's commit judges it too");
    Ok(())
}

/// Bad map names, keys and list items are typed errors, and nothing is applied.
pub async fn map_invalid_arguments_are_typed<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let set = || MapWrite::Set("v".into());
    let long = "x".repeat(1025);
    assert_invalid("empty map", s.map_write("", "k", set()).await);
    assert_invalid("long map", s.map_write(&long, "k", set()).await);
    assert_invalid("empty key", s.map_write("m", "", set()).await);
    assert_invalid("empty item", s.map_write("m", "k", MapWrite::Append(vec![String::new()])).await);
    let bad = format!("a{LIST_SEPARATOR}b");
    assert_invalid("separator in item", s.map_write("m", "k", MapWrite::Append(vec![bad.clone()])).await);
    assert_invalid("separator in removed item", s.map_write("m", "k", MapWrite::Remove(vec![bad])).await);
    assert_invalid("get from empty map name", s.map_get("", "k").await);
    assert_invalid("snapshot of empty map name", s.map_snapshot("").await);
    assert_invalid("watch of empty map name", s.watch("").await.map(|_| ()));
    assert_invalid("txn on empty map name", s.map_txn("", &[], &[("k".into(), None)]).await);
    assert_invalid("txn guard on empty key", s.map_txn("m", &[(String::new(), Expect::Absent)], &[]).await);
    assert_invalid("txn write to empty key", s.map_txn("m", &[], &[(String::new(), None)]).await);
    assert_eq!(s.map_snapshot("m").await?, MapSnapshot::default(), "nothing was applied");
    Ok(())
}

fn txn(guards: &[(&str, Option<&str>)], writes: &[(&str, Option<&str>)]) -> MapTxn {
    let expect = |v: &Option<&str>| v.map_or(Expect::Absent, |v| Expect::Value(v.to_owned()));
    MapTxn {
        guards: guards.iter().map(|(k, v)| ((*k).to_owned(), expect(v))).collect(),
        writes: writes.iter().map(|(k, v)| ((*k).to_owned(), v.map(str::to_owned))).collect(),
    }
}

/// A batch of transactions: each is judged against the map as the ones before it left it (a
/// guard sees an earlier transaction's writes), refused ones change nothing while the others
/// apply, every applied write is one change at consecutive revisions, a transaction's revision is
/// its last change's (or the map's when it was judged), and the outcomes are exactly those of the
/// same transactions sent one by one.
pub async fn map_txns_judges_each_in_order<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    assert_eq!(s.map_txns("m", &[]).await?, Vec::<TxnOutcome>::new(), "an empty batch");
    assert_eq!(s.map_get("m", "a").await?, (None, 0), "an empty batch changes nothing");
    let mut w = s.watch("m").await?;
    let batch = [
        txn(&[("a", Some("x"))], &[("z", Some("no"))]), // refused: a is absent
        txn(&[("a", None)], &[("a", Some("1")), ("b", Some("2"))]), // applied
        txn(&[("a", Some("1"))], &[("a", Some("2")), ("b", None)]), // sees a=1: applied
        txn(&[("b", Some("2"))], &[("y", Some("no"))]), // b was deleted: refused
        txn(&[("a", Some("2")), ("b", None)], &[]),     // guards only: applied
        txn(&[], &[("c", Some("1")), ("c", None), ("c", Some("3")), ("d", Some("4")), ("d", None)]),
        txn(&[("c", Some("3")), ("d", None)], &[("e", None), ("c", Some("5"))]), // sees c=3, d gone
    ];
    let out = s.map_txns("m", &batch).await?;
    let applied: Vec<bool> = out.iter().map(|o| o.applied).collect();
    assert_eq!(applied, [false, true, true, false, true, true, true]);
    assert_eq!(out[0].rev, 0, "refused before anything was committed: the map's revision then");
    let r = out[1].rev; // a=1 at r-1, b=2 at r
    assert!(r > 1);
    let revs: Vec<u64> = out.iter().skip(1).map(|o| o.rev).collect();
    assert_eq!(revs, [r, r + 2, r + 2, r + 2, r + 7, r + 9], "last change's revision, or the map's when judged");
    let expected: Vec<Change> = [
        ("a", Some("1")),
        ("b", Some("2")),
        ("a", Some("2")),
        ("b", None),
        ("c", Some("1")),
        ("c", None),
        ("c", Some("3")),
        ("d", Some("4")),
        ("d", None),
        ("e", None),
        ("c", Some("5")),
    ]
    .iter()
    .zip(r - 1..)
    .map(|((k, v), rev)| Change { key: (*k).to_owned(), value: v.map(str::to_owned), rev })
    .collect();
    for (i, want) in expected.iter().enumerate() {
        match next_event(&mut w).await {
            WatchEvent::Change(c) => assert_eq!(&c, want, "change {i}"),
            WatchEvent::Gap => panic!("unexpected gap at change {i}"),
        }
    }
    let snap = s.map_snapshot("m").await?;
    assert_eq!(snap.rev, r + 9);
    let entries: Vec<(&str, &str)> = snap.entries.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(entries, [("a", "2"), ("c", "5")], "the state the transactions leave one by one");

    // A batch that applies nothing publishes nothing and reports the current revision.
    let refused = [txn(&[("a", None)], &[("a", Some("no"))]), txn(&[("c", Some("3"))], &[("q", None)])];
    let out = s.map_txns("m", &refused).await?;
    assert_eq!(out, [TxnOutcome { applied: false, rev: r + 9 }, TxnOutcome { applied: false, rev: r + 9 }]);
    let o = s.map_write("m", "f", MapWrite::Set("6".into())).await?;
    assert_eq!(o.rev, r + 10);
    let next = next_event(&mut w).await;
    assert_eq!(next, WatchEvent::Change(Change { key: "f".into(), value: Some("6".into()), rev: r + 10 }));
    // A transaction refused before anything of its batch was committed, on a map written
    // before: the map's revision then (the cases above try that path only on a new map).
    let mixed = [txn(&[("a", None)], &[("a", Some("no"))]), txn(&[], &[("g", Some("7"))])];
    let out = s.map_txns("m", &mixed).await?;
    assert_eq!(out, [TxnOutcome { applied: false, rev: r + 10 }, TxnOutcome { applied: true, rev: r + 11 }]);
    let next = next_event(&mut w).await;
    assert_eq!(next, WatchEvent::Change(Change { key: "g".into(), value: Some("7".into()), rev: r + 11 }));

    // The same transactions one by one on another map: the same outcomes and state (revisions
    // shifted by the other map's seed).
    let mut one_by_one = Vec::new();
    for t in &batch {
        one_by_one.push(s.map_txn("seq", &t.guards, &t.writes).await?);
    }
    let shift = one_by_one[1].rev - r;
    let seq: Vec<(bool, u64)> =
        one_by_one.iter().map(|o| (o.applied, if o.rev == 0 { 0 } else { o.rev - shift })).collect();
    let bat: Vec<(bool, u64)> = applied.into_iter().zip(std::iter::once(0).chain(revs)).collect();
    assert_eq!(seq, bat);
    assert_eq!(s.map_snapshot("seq").await?.entries, snap.entries);

    // A key present before the batch and deleted inside it is absent to the guards after the
    // deletion, not read as it was before the batch (hunt 31 A #1: a store that took an
    // in-batch deletion for "not written in this batch" judged these on the stale value).
    s.map_write("old", "k", MapWrite::Set("v".into())).await?;
    let batch = [
        txn(&[], &[("k", None)]),
        txn(&[("k", Some("v"))], &[("x", Some("stale"))]), // k is gone: refused
        txn(&[("k", None)], &[("y", Some("1"))]),          // k is absent: applied
    ];
    let applied: Vec<bool> = s.map_txns("old", &batch).await?.iter().map(|o| o.applied).collect();
    assert_eq!(applied, [true, false, true], "guards after an in-batch deletion see the key gone");
    Ok(())
}

/// A batch takes at most `MAP_TXNS_MAX` transactions (one more is `Invalid` and applies nothing),
/// names are checked as for `map_txn`, and a full batch of guarded writes, or one transaction of
/// thousands of writes, applies whole.
pub async fn map_txns_limits_are_typed<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let one = |i: usize| {
        let k = format!("k{i}");
        MapTxn { guards: vec![(k.clone(), Expect::Absent)], writes: vec![(k, Some(i.to_string()))] }
    };
    let too_many: Vec<MapTxn> = (0..=MAP_TXNS_MAX).map(one).collect();
    assert_invalid("a batch over MAP_TXNS_MAX", s.map_txns("m", &too_many).await);
    assert_eq!(s.map_snapshot("m").await?, MapSnapshot::default(), "nothing applied");
    assert_invalid("a batch on an empty map name", s.map_txns("", &[txn(&[], &[("k", None)])]).await);
    let bad_guard = [txn(&[], &[("k", None)]), txn(&[("", None)], &[])];
    assert_invalid("a batch with an empty guard key", s.map_txns("m", &bad_guard).await);
    assert_invalid("a batch with an empty write key", s.map_txns("m", &[txn(&[], &[("", None)])]).await);
    assert_eq!(s.map_snapshot("m").await?, MapSnapshot::default(), "nothing applied");

    let full = &too_many[..MAP_TXNS_MAX];
    let out = s.map_txns("m", full).await?;
    assert!(out.iter().all(|o| o.applied), "every key was absent");
    assert!(out.windows(2).all(|p| p[1].rev == p[0].rev + 1), "one revision each, in order");
    let snap = s.map_snapshot("m").await?;
    assert_eq!((snap.rev, snap.entries.len()), (out[MAP_TXNS_MAX - 1].rev, MAP_TXNS_MAX));
    // The same batch again: every guard fails now.
    assert!(s.map_txns("m", full).await?.iter().all(|o| !o.applied && o.rev == snap.rev));

    let writes: Vec<(String, Option<String>)> =
        (0..3 * MAP_TXNS_MAX).map(|i| (format!("w{i}"), Some("v".into()))).collect();
    let guards: Vec<(String, Expect)> = (0..3 * MAP_TXNS_MAX).map(|i| (format!("w{i}"), Expect::Absent)).collect();
    let t = s.map_txn("big", &guards, &writes).await?;
    assert!(t.applied);
    let snap = s.map_snapshot("big").await?;
    assert_eq!((snap.rev, snap.entries.len()), (t.rev, 3 * MAP_TXNS_MAX));
    let t2 = s.map_txn("big", &guards[..1], &[]).await?;
    assert_eq!(t2, TxnOutcome { applied: false, rev: t.rev });
    Ok(())
}

/// Most `map_scan` calls one pass of the scan cases may take before it counts as endless.
const SCAN_CALLS_MAX: usize = 10_000;

/// `map_scan`'s contract (Redis HSCAN's): a pass ends; every key present for the whole pass is
/// returned at least once (repeats allowed); each slice is atomic, every entry holding its value
/// at the slice's revision. The map is large enough (600 keys) that Redis keeps it as a real hash
/// table, so its HSCAN is resumed for real, and it changes between the slices: keys added, keys
/// deleted, kept keys rewritten.
pub async fn map_scan_returns_every_key_present_throughout<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let keys = 600;
    let writes: Vec<(String, Option<String>)> = (0..keys).map(|i| (format!("k{i}"), Some(format!("v{i}")))).collect();
    s.map_txn("m", &[], &writes).await?;
    // Quiet map: one slice's entries are exactly the values at its revision.
    let quiet = s.map_scan("m", MAP_SCAN_START, 50).await?;
    assert!(!quiet.entries.is_empty(), "a slice of a non-empty map at its start holds entries");
    let (v, rev) = s.map_get("m", "k0").await?;
    assert_eq!((quiet.rev, v.as_deref()), (rev, Some("v0")), "the slice's revision is the map's");
    for (k, v) in &quiet.entries {
        assert_eq!(Some(&format!("v{}", &k[1..])), Some(v), "{k}");
    }

    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    let (mut cursor, mut calls, mut round) = (MAP_SCAN_START.to_owned(), 0, 0usize);
    loop {
        let slice = s.map_scan("m", &cursor, 25).await?;
        calls += 1;
        assert!(calls <= SCAN_CALLS_MAX, "the pass did not end within {SCAN_CALLS_MAX} calls");
        for (k, v) in &slice.entries {
            *seen.entry(k.clone()).or_default() += 1;
            // Kept keys (k0..k299) are rewritten to "r<round>-<i>" between slices; deleted
            // ones (k300..k599) keep "v<i>" until they go; added ones (n*) hold "new".
            let ok = v == &format!("v{}", &k[1..])
                || (k.starts_with('n') && v == "new")
                || v.strip_prefix('r').and_then(|r| r.split_once('-')).is_some_and(|(_, i)| k[1..] == *i);
            assert!(ok, "{k} = {v:?}: a value the key never held");
        }
        if slice.is_last() {
            break;
        }
        cursor = slice.next;
        // Churn between slices: delete one old key, add one new, rewrite a kept one.
        let gone = format!("k{}", keys - 1 - round);
        let kept = format!("k{}", round % 300);
        let churn = [
            (gone, None),
            (format!("n{round}"), Some("new".to_owned())),
            (kept.clone(), Some(format!("r{round}-{}", &kept[1..]))),
        ];
        s.map_txn("m", &[], &churn).await?;
        round += 1;
        assert!(round < 300, "more slices than deletable keys");
    }
    for i in 0..300 {
        assert!(seen.contains_key(&format!("k{i}")), "k{i} was present throughout but never returned");
    }

    // A pass over a map with no churn also returns each key (each at least once), at the
    // largest count and at the smallest: each slice moves on past its cursor (round 25 A #4: a
    // scan that resumed *at* the cursor's key repeated it in every slice, so a count-1 pass
    // never ended).
    let keys: std::collections::BTreeSet<String> = s.map_snapshot("m").await?.entries.into_keys().collect();
    for count in [MAP_SCAN_COUNT_MAX, 1] {
        let pass = scan_pass(&s, "m", count).await?;
        assert_eq!(pass.as_ref(), Some(&keys), "a pass at count {count} ends and returns every key, nothing else");
    }
    Ok(())
}

/// One whole pass of `map_scan` over `map` at `count`: the keys it returned, or None if it did
/// not end within [`SCAN_CALLS_MAX`] calls.
async fn scan_pass<S: Store>(
    s: &S,
    map: &str,
    count: usize,
) -> Result<Option<std::collections::BTreeSet<String>>, StoreError> {
    let mut keys = std::collections::BTreeSet::new();
    let mut cursor = MAP_SCAN_START.to_owned();
    for _ in 0..SCAN_CALLS_MAX {
        let slice = s.map_scan(map, &cursor, count).await?;
        keys.extend(slice.entries.into_keys());
        if slice.next == MAP_SCAN_START {
            return Ok(Some(keys));
        }
        cursor = slice.next;
    }
    Ok(None)
}

/// `map_scan`'s limits: `count` in `1..=MAP_SCAN_COUNT_MAX`, a cursor no store hands out and an
/// empty map name are `Invalid`; a missing map is one empty, last slice at revision 0.
pub async fn map_scan_limits_and_cursors_are_typed<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let missing = s.map_scan("m", MAP_SCAN_START, 10).await?;
    assert_eq!((missing.rev, missing.entries.len(), missing.is_last()), (0, 0, true), "{missing:?}");
    assert_invalid("count 0", s.map_scan("m", MAP_SCAN_START, 0).await);
    assert_invalid("count over MAP_SCAN_COUNT_MAX", s.map_scan("m", MAP_SCAN_START, MAP_SCAN_COUNT_MAX + 1).await);
    assert_invalid("empty map name", s.map_scan("", MAP_SCAN_START, 10).await);
    s.map_write("m", "a", MapWrite::Set("1".into())).await?;
    for garbage in ["", "-1", "not a cursor", "k", "1.5", "+1", "99999999999999999999999"] {
        assert_invalid(&format!("cursor {garbage:?}"), s.map_scan("m", garbage, 10).await);
    }
    let one = s.map_scan("m", MAP_SCAN_START, MAP_SCAN_COUNT_MAX).await?;
    assert!(one.is_last());
    assert_eq!(one.entries.into_iter().collect::<Vec<_>>(), [("a".to_owned(), "1".to_owned())]);
    Ok(())
}

/// A batch of reads answers, in its order, what the single reads answer on a quiet store (store
/// time aside, which only moves forward), over maps present and missing, a scan resumed from a
/// cursor, and after a restart that lost the data (and, in Redis, the script cache).
pub async fn reads_answer_as_the_single_reads_in_order<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let writes: Vec<(String, Option<String>)> = (0..600).map(|i| (format!("k{i}"), Some(format!("v{i}")))).collect();
    s.map_txn("big", &[], &writes).await?;
    s.map_write("small", "a", MapWrite::Set("1".into())).await?;
    let first = s.map_scan("big", MAP_SCAN_START, 50).await?;
    assert!(!first.is_last(), "600 keys take more than one slice of 50");
    let get = |map: &str, key: &str| Read::Get { map: map.into(), key: key.into() };
    let snapshot = |map: &str| Read::Snapshot { map: map.into() };
    let scan = |map: &str, cursor: &str, count| Read::Scan { map: map.into(), cursor: cursor.into(), count };
    let batch = [
        Read::Time,
        get("small", "a"),
        get("small", "missing"),
        snapshot("small"),
        scan("big", MAP_SCAN_START, 50),
        scan("big", &first.next, 50),
        get("nothing", "a"),
        snapshot("nothing"),
        scan("nothing", MAP_SCAN_START, 10),
        Read::Time,
    ];
    let times = |outs: &[ReadOut]| -> Vec<u64> {
        outs.iter().filter_map(|o| if let ReadOut::Time(t) = o { Some(*t) } else { None }).collect()
    };
    let untimed =
        |outs: Vec<ReadOut>| -> Vec<ReadOut> { outs.into_iter().filter(|o| !matches!(o, ReadOut::Time(_))).collect() };
    for round in ["before", "after a restart that lost the data"] {
        let before = s.time_ms().await?;
        let batched = s.reads(&batch).await?;
        let single = crate::store::reads::one_by_one(&s, &batch).await?;
        assert_eq!(batched.len(), batch.len(), "{round}: one reply per read");
        let t = times(&batched);
        assert!(t.len() == 2 && before <= t[0] && t[0] <= t[1], "{round}: store time in order: {before} {t:?}");
        assert!(t[1] <= times(&single)[0], "{round}: the batch's time is before the reads that follow it");
        assert_eq!(untimed(batched), untimed(single), "{round}: the batch answers as the single reads");
        h.lose_data().await;
    }
    assert!(s.reads(&[]).await?.is_empty(), "an empty batch is a no-op");
    Ok(())
}

/// A batch takes at most `READS_MAX` reads; a batch with one bad read (an empty map name, a scan
/// count out of range, a cursor no store hands out) is `Invalid` as that read alone would be.
pub async fn reads_limits_are_typed<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    s.map_write("m", "a", MapWrite::Set("1".into())).await?;
    let full = vec![Read::Snapshot { map: "m".into() }; READS_MAX];
    assert_eq!(s.reads(&full).await?.len(), READS_MAX);
    let mut over = full.clone();
    over.push(Read::Time);
    assert_invalid("a batch over READS_MAX", s.reads(&over).await);
    let scan = |cursor: &str, count| Read::Scan { map: "m".into(), cursor: cursor.into(), count };
    for (what, bad) in [
        ("an empty map name", Read::Get { map: String::new(), key: "a".into() }),
        ("an empty snapshot name", Read::Snapshot { map: String::new() }),
        ("scan count 0", scan(MAP_SCAN_START, 0)),
        ("scan count over MAP_SCAN_COUNT_MAX", scan(MAP_SCAN_START, MAP_SCAN_COUNT_MAX + 1)),
        ("a garbage cursor", scan("not a cursor", 10)),
    ] {
        assert_invalid(what, s.reads(&[Read::Time, bad]).await);
    }
    Ok(())
}

/// A watch delivers every applied change of its map, in revision order, with the written values.
pub async fn watch_delivers_changes_in_revision_order<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let mut w = s.watch("m").await?;
    let mut expected = Vec::new();
    let o = s.map_write("m", "a", MapWrite::Set("1".into())).await?;
    expected.push(Change { key: "a".into(), value: Some("1".into()), rev: o.rev });
    let failed = MapWrite::CompareAndSet { expected: "nope".into(), new: "x".into() };
    assert!(!s.map_write("m", "a", failed).await?.applied, "publishes nothing");
    s.map_write("other", "a", MapWrite::Set("elsewhere".into())).await?;
    let t = s.map_txn("m", &[], &[("b".into(), Some("2".into())), ("a".into(), None)]).await?;
    expected.push(Change { key: "b".into(), value: Some("2".into()), rev: t.rev - 1 });
    expected.push(Change { key: "a".into(), value: None, rev: t.rev });
    let o = s.map_write("m", "c", MapWrite::Append(vec!["x".into(), "y".into()])).await?;
    expected.push(Change { key: "c".into(), value: o.value.clone(), rev: o.rev });
    let o = s.map_write("m", "b", MapWrite::Delete).await?;
    expected.push(Change { key: "b".into(), value: None, rev: o.rev });
    for (i, want) in expected.iter().enumerate() {
        match next_event(&mut w).await {
            WatchEvent::Change(c) => assert_eq!(&c, want, "event {i}"),
            WatchEvent::Gap => panic!("unexpected gap at event {i}"),
        }
    }
    for pair in expected.windows(2) {
        assert_eq!(pair[1].rev, pair[0].rev + 1, "consecutive revisions");
    }
    Ok(())
}

/// Several watches of one map each receive every change, whichever opened first: a store that
/// kept one feed per map and replaced it with each new watch would leave the older ones silent,
/// with no gap (round 16 #5: a pool node's router and its keep-alive follower watch maps other
/// nodes watch too).
pub async fn every_watch_of_a_map_receives_each_change<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let mut first = s.watch("w").await?;
    let mut second = s.watch("w").await?;
    let o = s.map_write("w", "k", MapWrite::Set("1".into())).await?;
    let mut third = s.watch("w").await?;
    let p = s.map_write("w", "k", MapWrite::Set("2".into())).await?;
    let one = Change { key: "k".into(), value: Some("1".into()), rev: o.rev };
    let two = Change { key: "k".into(), value: Some("2".into()), rev: p.rev };
    for (name, w, want) in [("first", &mut first, vec![&one, &two]), ("second", &mut second, vec![&one, &two])] {
        for (i, want) in want.into_iter().enumerate() {
            match next_event(w).await {
                WatchEvent::Change(c) => assert_eq!(&c, want, "{name} watch, event {i}"),
                WatchEvent::Gap => panic!("{name} watch: unexpected gap at event {i}"),
            }
        }
    }
    match next_event(&mut third).await {
        WatchEvent::Change(c) => assert_eq!(c, two, "a watch opened later gets the changes after it"),
        WatchEvent::Gap => panic!("third watch: unexpected gap"),
    }
    Ok(())
}

/// A transaction's writes reach a watch as one change each, in the transaction's order, at
/// consecutive revisions ending at the one it returned, with the written bytes exactly: the same
/// key written twice, keys and values with spaces, digits and non-ASCII, an empty value, on a
/// fresh map (its first revision) and on a used one.
pub async fn watch_delivers_a_transaction_as_consecutive_changes<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let mut w = s.watch("t").await?;
    let set = |k: &str, v: &str| (k.to_owned(), Some(v.to_owned()));
    let del = |k: &str| (k.to_owned(), None);
    let writes = [set("a b", "1 s x"), set("ü 2", ""), del("a b"), set("a b", "v2 1 1 d z"), set("c", "3")];
    let t = s.map_txn("t", &[], &writes).await?;
    assert!(t.applied);
    let mut expected: Vec<Change> = writes
        .iter()
        .zip(t.rev - 4..=t.rev)
        .map(|((key, value), rev)| Change { key: key.clone(), value: value.clone(), rev })
        .collect();
    let guards = [("c".to_owned(), Expect::Value("3".into())), ("gone".to_owned(), Expect::Absent)];
    let t2 = s.map_txn("t", &guards, &[del("c"), del("never there"), set("d", "4")]).await?;
    assert!(t2.applied);
    assert_eq!(t2.rev, t.rev + 3, "one revision per write, deletes of absent keys included");
    for (i, (key, value)) in [del("c"), del("never there"), set("d", "4")].into_iter().enumerate() {
        expected.push(Change { key, value, rev: t.rev + 1 + i as u64 });
    }
    let o = s.map_write("t", "e", MapWrite::Set("5".into())).await?;
    assert_eq!(o.rev, t2.rev + 1, "a single write continues the sequence");
    expected.push(Change { key: "e".into(), value: Some("5".into()), rev: o.rev });
    for (i, want) in expected.iter().enumerate() {
        match next_event(&mut w).await {
            WatchEvent::Change(c) => assert_eq!(&c, want, "event {i}"),
            WatchEvent::Gap => panic!("unexpected gap at event {i}"),
        }
    }
    let snap = s.map_snapshot("t").await?;
    assert_eq!(snap.rev, o.rev);
    let entries: Vec<(&str, &str)> = snap.entries.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert_eq!(entries, [("a b", "v2 1 1 d z"), ("d", "4"), ("e", "5"), ("ü 2", "")]);
    Ok(())
}

/// A data-losing restart is reported as a gap; the feed keeps running afterwards.
pub async fn watch_reports_gap_after_data_loss<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let mut w = s.watch("m").await?;
    let r1 = s.map_write("m", "a", MapWrite::Set("1".into())).await?.rev;
    assert!(matches!(next_event(&mut w).await, WatchEvent::Change(Change { rev, .. }) if rev == r1));
    h.lose_data().await;
    assert_eq!(next_event(&mut w).await, WatchEvent::Gap, "a restart must be reported");
    let s = h.store();
    let o = s.map_write("m", "a", MapWrite::Set("2".into())).await?;
    assert!(o.rev > r1);
    loop {
        match next_event(&mut w).await {
            // More than one gap is allowed (at-most-once delivery reports every doubt).
            WatchEvent::Gap => continue,
            WatchEvent::Change(c) => {
                assert_eq!(c, Change { key: "a".into(), value: Some("2".into()), rev: o.rev });
                break;
            }
        }
    }
    Ok(())
}

/// A restart that keeps the data (or a dropped feed connection) is reported as a gap too.
pub async fn watch_reports_gap_after_restart_keeping_data<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let mut w = s.watch("m").await?;
    let r1 = s.map_write("m", "a", MapWrite::Set("1".into())).await?.rev;
    assert!(matches!(next_event(&mut w).await, WatchEvent::Change(_)));
    h.restart_keep_data().await;
    assert_eq!(next_event(&mut w).await, WatchEvent::Gap);
    let s = h.store();
    assert_eq!(s.map_get("m", "a").await?, (Some("1".into()), r1), "data kept");
    let o = s.map_write("m", "a", MapWrite::Set("2".into())).await?;
    // Above r1, by a jump: the store cannot tell this restart from one that rolled back.
    assert!(o.rev > r1 + 1, "revision {} after a restart jumps above {r1}", o.rev);
    loop {
        match next_event(&mut w).await {
            WatchEvent::Gap => continue,
            WatchEvent::Change(c) => {
                assert_eq!(c.rev, o.rev);
                break;
            }
        }
    }
    Ok(())
}

/// An operation whose reply was lost reports [`Outcome::Unknown`], and retrying it is safe:
/// a lease retry mints no second fence, a guarded map retry applies at most once.
pub async fn unknown_outcome_retry_is_safe<H: Harness>(h: &H) -> Result<(), StoreError> {
    let s = h.store();
    let f0 = granted(s.lease_acquire("L", "x", TTL_MS, 0).await?);
    assert!(s.lease_release("L", "x").await?);
    let r0 = s.map_write("m", "k", MapWrite::Set("v0".into())).await?.rev;
    let cas = MapWrite::CompareAndSet { expected: "v0".into(), new: "v1".into() };

    if h.freeze().await {
        let lease = s.lease_acquire("L", "a", TTL_MS, 0).await;
        let map = s.map_write("m", "k", cas.clone()).await;
        h.thaw().await;
        for (what, outcome) in [("lease", lease.err().map(|e| e.outcome())), ("map", map.err().map(|e| e.outcome()))] {
            assert_eq!(outcome, Some(Outcome::Unknown), "{what}: a stalled store's reply is an unknown outcome");
        }
    } else {
        // The first attempts' replies are "lost": only their effects remain.
        let _ = s.lease_acquire("L", "a", TTL_MS, 0).await?;
        let _ = s.map_write("m", "k", cas.clone()).await?;
    }
    assert_eq!(granted(s.lease_acquire("L", "a", TTL_MS, 0).await?), f0 + 1, "exactly one grant minted");
    let retry = s.map_write("m", "k", cas).await?;
    assert_eq!(retry.value.as_deref(), Some("v1"));
    assert_eq!(s.map_get("m", "k").await?, (Some("v1".into()), r0 + 1), "applied exactly once");
    Ok(())
}
