//! pulse #61 as a deterministic regression: node 1 closes gracefully with running jobs and dies
//! one transaction into its close; node 2 starts cleaning node 1's workers up and dies in the
//! middle of requeueing; node 3 must finish the cleanup and run every job. With MP10 (pulse's
//! close removed each worker from the maps, its jobs included, before requeueing them from
//! memory) the jobs of the worker that removed itself are lost: nothing in the store remembers
//! them, so no cleaner can requeue them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::tests::{Log, Recorder};
use super::*;
use crate::MemoryStore;
use crate::store::{Acquire, Expect, MapScan, MapSnapshot, MapWrite, Renew, StoreResult, TxnOutcome, WriteOutcome};

/// A node's view of the store that can "crash": after `txn_budget` transactions, or when
/// killed, every operation hangs (the process is gone, or cut off: nothing it sends arrives)
/// until it is revived. With a failure set, every operation fails with it at once.
#[derive(Clone)]
pub(crate) struct Mortal {
    inner: MemoryStore,
    dead: Arc<AtomicBool>,
    txn_budget: Arc<AtomicI64>,
    failure: Arc<std::sync::Mutex<Option<crate::StoreError>>>,
}

impl Mortal {
    pub fn new(inner: &MemoryStore, txn_budget: i64) -> Self {
        Mortal {
            inner: inner.clone(),
            dead: Arc::new(AtomicBool::new(false)),
            txn_budget: Arc::new(AtomicI64::new(txn_budget)),
            failure: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Reach the store again: hung operations go on.
    pub fn revive(&self) {
        self.dead.store(false, Ordering::SeqCst);
    }

    /// Fail every operation with `e` (None: stop failing).
    pub fn fail_with(&self, e: Option<crate::StoreError>) {
        *self.failure.lock().unwrap() = e;
    }

    /// Hang (as [`kill`](Self::kill)) once `n` more transactions have been sent.
    pub fn set_txn_budget(&self, n: i64) {
        self.txn_budget.store(n, Ordering::SeqCst);
    }

    pub fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
    }

    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    async fn gate(&self) -> StoreResult<()> {
        while self.is_dead() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match self.failure.lock().unwrap().clone() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Store for Mortal {
    type Watch = <MemoryStore as Store>::Watch;

    async fn time_ms(&self) -> StoreResult<u64> {
        self.gate().await?;
        self.inner.time_ms().await
    }
    async fn lease_acquire(&self, n: &str, t: &str, ttl: u64, q: u64) -> StoreResult<Acquire> {
        self.gate().await?;
        self.inner.lease_acquire(n, t, ttl, q).await
    }
    async fn lease_renew(&self, n: &str, t: &str, ttl: u64) -> StoreResult<Renew> {
        self.gate().await?;
        self.inner.lease_renew(n, t, ttl).await
    }
    async fn lease_release(&self, n: &str, t: &str) -> StoreResult<bool> {
        self.gate().await?;
        self.inner.lease_release(n, t).await
    }
    #[cfg(feature = "mutants")]
    async fn lease_delete_unchecked(&self, n: &str) -> StoreResult<()> {
        self.gate().await?;
        self.inner.lease_delete_unchecked(n).await
    }
    async fn map_get(&self, m: &str, k: &str) -> StoreResult<(Option<String>, u64)> {
        self.gate().await?;
        self.inner.map_get(m, k).await
    }
    async fn map_snapshot(&self, m: &str) -> StoreResult<MapSnapshot> {
        self.gate().await?;
        self.inner.map_snapshot(m).await
    }
    async fn map_scan(&self, m: &str, c: &str, n: usize) -> StoreResult<MapScan> {
        self.gate().await?;
        self.inner.map_scan(m, c, n).await
    }
    async fn map_write(&self, m: &str, k: &str, w: MapWrite) -> StoreResult<WriteOutcome> {
        self.gate().await?;
        self.inner.map_write(m, k, w).await
    }
    async fn map_txn(
        &self,
        m: &str,
        g: &[(String, Expect)],
        w: &[(String, Option<String>)],
    ) -> StoreResult<TxnOutcome> {
        self.gate().await?;
        if self.txn_budget.fetch_sub(1, Ordering::SeqCst) <= 0 {
            self.kill();
            self.gate().await?;
        }
        self.inner.map_txn(m, g, w).await
    }
    async fn watch(&self, m: &str) -> StoreResult<Self::Watch> {
        self.gate().await?;
        self.inner.watch(m).await
    }
}

const JOBS: usize = 10;

/// Returns how many of the jobs ran to completion on node 3, and how many jobs are left in the
/// store at the end.
async fn pulse61() -> (usize, usize) {
    let store = MemoryStore::new();
    let cfg = |n: &str| PoolConfig::builder("p", n).worker_ttl(Duration::from_millis(300)).build().unwrap();
    let n1_store = Mortal::new(&store, i64::MAX);
    let n1_token = Shutdown::new("n1");
    let n1 = Pool::new(n1_store.clone(), cfg("n1")).with_parent(&n1_token).start().await.unwrap();
    let stuck = Log::default();
    for _ in 0..2 {
        let _ = n1.add_worker(Recorder { log: stuck.clone(), work: Duration::from_secs(3600) }, &Shutdown::new("r"));
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    for i in 0..JOBS {
        n1.dispatch(&format!("job{i}"), "").await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(stuck.0.lock().unwrap().len(), JOBS, "every job runs on node 1");
    // Node 1 closes gracefully (its workers drain, stop their handlers, hand their jobs back)
    // and dies one transaction into it.
    n1_store.set_txn_budget(1);
    n1_token.cancel();
    let mut waited = 0;
    while !n1_store.is_dead() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert!(n1_store.is_dead(), "node 1 died in the middle of its close");
    // Node 2: no workers, a cleaner that dies on its 4th transaction (mid-requeue).
    let n2_store = Mortal::new(&store, 3);
    let n2 = Pool::new(n2_store.clone(), cfg("n2")).start().await.unwrap();
    let mut waited = 0;
    while !n2_store.is_dead() && waited < 100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        waited += 1;
    }
    assert!(n2_store.is_dead(), "node 2 started cleaning node 1 up and died mid-way");
    // Node 3 arrives, finishes the cleanup, runs every job.
    let n3 = Pool::new(store.clone(), cfg("n3")).start().await.unwrap();
    let done = Log::default();
    let w3 = n3.add_worker(Recorder { log: done.clone(), work: Duration::from_millis(5) }, &Shutdown::new("r"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ran_on_3 = (0..JOBS).filter(|i| done.runs(&format!("job{i}")).iter().any(|(_, w)| *w == w3.id())).count();
    let left = inspect(&store, "p").await.unwrap().jobs.len();
    n3.stop().await;
    drop((n1, n2));
    (ran_on_3, left)
}

#[tokio::test(start_paused = true)]
async fn pulse61_close_dying_mid_hand_back_and_a_cleaner_crash_mid_requeue_are_finished_by_node_3() {
    assert_eq!(pulse61().await, (JOBS, 0), "every job ends on node 3");
}

#[cfg(feature = "mutants")]
#[tokio::test(start_paused = true)]
async fn pulse61_mp10_loses_jobs() {
    use crate::mutants::{self, Mutant};
    let prev = mutants::set(Some(Mutant::MP10));
    let (ran, left) = pulse61().await;
    mutants::set(prev);
    assert!(ran < JOBS && left == 0, "MP10 must lose jobs (ran {ran} of {JOBS}, {left} left in the store)");
}
