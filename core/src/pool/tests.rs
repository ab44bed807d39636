//! End-to-end tests of the pool over `MemoryStore` on tokio's paused clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::state::{CleanupLock, JobRecord, KeepAlive, Maps, job_key};
use super::*;
use crate::MemoryStore;
use crate::store::{MapWrite, Store};

#[derive(Clone, Default)]
pub(super) struct Log(pub Arc<Mutex<Vec<(String, u64, String)>>>);

impl Log {
    pub fn runs(&self, job: &str) -> Vec<(u64, String)> {
        self.0.lock().unwrap().iter().filter(|(j, _, _)| j == job).map(|(_, a, w)| (*a, w.clone())).collect()
    }
}

pub(super) struct Recorder {
    pub log: Log,
    pub work: Duration,
}

impl JobHandler for Recorder {
    async fn run(&self, job: Job) -> JobOutcome {
        self.log.0.lock().unwrap().push((job.key().to_owned(), job.attempt(), job.worker().to_owned()));
        tokio::select! {
        biased; // a fixed poll order: tokio's random one is not reproducible across runs in a thread
            _ = job.stopped() => JobOutcome::Abandoned,
            _ = tokio::time::sleep(self.work) => JobOutcome::Completed,
        }
    }
}

fn cfg(node: &str) -> PoolConfig {
    PoolConfig::builder("p", node).worker_ttl(Duration::from_millis(300)).build().unwrap()
}

async fn settle(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

async fn jobs(store: &MemoryStore) -> usize {
    inspect(store, "p").await.unwrap().jobs.len()
}

#[tokio::test(start_paused = true)]
async fn dispatch_runs_once_and_duplicates_are_rejected() {
    let store = MemoryStore::new();
    let node = Pool::new(store.clone(), cfg("a")).start().await.unwrap();
    let log = Log::default();
    let caller = Shutdown::new("req");
    let w = node.add_worker(Recorder { log: log.clone(), work: Duration::from_millis(10) }, &caller);
    settle(50).await;
    assert_eq!(node.dispatch("j1", "x").await, Ok(1));
    assert!(matches!(node.dispatch("j1", "x").await, Err(PoolError::Duplicate { .. })));
    assert!(matches!(node.dispatch("", "x").await, Err(PoolError::InvalidJob { .. })));
    settle(200).await;
    assert_eq!(log.runs("j1"), vec![(1, w.id().to_owned())]);
    assert_eq!(jobs(&store).await, 0, "completed jobs leave the table");
    assert_eq!(w.stop().await, WorkerExit::Stopped);
    let r = inspect(&store, "p").await.unwrap();
    assert!(r.workers.is_empty() && r.registered.is_empty(), "deregistered: {r:?}");
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn worker_outlives_the_callers_request() {
    let store = MemoryStore::new();
    let node = Pool::new(store.clone(), cfg("a")).start().await.unwrap();
    let log = Log::default();
    let caller = Shutdown::new("req");
    let w = node.add_worker(Recorder { log: log.clone(), work: Duration::from_millis(10) }, &caller);
    caller.cancel();
    settle(1000).await; // several TTLs
    assert!(!w.is_finished());
    node.dispatch("j", "").await.unwrap();
    settle(100).await;
    assert_eq!(log.runs("j").len(), 1);
    node.stop().await;
    assert!(w.is_finished(), "the node's stop drains its workers");
}

/// A dead worker (keep-alive stale) with jobs, and an orphan job whose owner has no state at all:
/// another node's sweeper requeues both and deletes everything of the dead worker.
#[tokio::test(start_paused = true)]
async fn dead_worker_and_orphans_are_requeued_then_deleted() {
    let store = MemoryStore::new();
    let maps = Maps::new("p");
    let now = store.time_ms().await.unwrap();
    let dead = KeepAlive { ms: now - 10_000, stopping: false }.encode();
    store.map_write(&maps.keepalive, "old.1.1", MapWrite::Set(dead)).await.unwrap();
    store.map_write(&maps.workers, "old.1.1", MapWrite::Set("old".into())).await.unwrap();
    let rec = |owner: &str| JobRecord { attempt: 4, owner: owner.into(), payload: "pl".into() }.encode();
    store.map_write(&maps.jobs, &job_key("a"), MapWrite::Set(rec("old.1.1"))).await.unwrap();
    store.map_write(&maps.jobs, &job_key("b"), MapWrite::Set(rec("ghost.9.9"))).await.unwrap();
    let node = Pool::new(store.clone(), cfg("n")).start().await.unwrap();
    let log = Log::default();
    let w = node.add_worker(Recorder { log: log.clone(), work: Duration::from_millis(5) }, &Shutdown::new("r"));
    settle(800).await;
    assert_eq!(log.runs("a"), vec![(5, w.id().to_owned())], "requeued under the next attempt");
    assert_eq!(log.runs("b"), vec![(5, w.id().to_owned())], "orphan requeued");
    let r = inspect(&store, "p").await.unwrap();
    assert!(r.jobs.is_empty(), "{r:?}");
    assert_eq!(r.workers.keys().collect::<Vec<_>>(), vec![w.id()], "nothing of the dead worker remains: {r:?}");
    assert!(r.cleanup_locks.is_empty(), "lock released: {r:?}");
    node.stop().await;
}

/// A cleaner that crashed mid-way left a stale lock: the next cleaner takes it over by CAS.
#[tokio::test(start_paused = true)]
async fn stale_cleanup_lock_is_taken_over() {
    let store = MemoryStore::new();
    let maps = Maps::new("p");
    let now = store.time_ms().await.unwrap();
    let stale_lock = CleanupLock { holder: "crashed.1".into(), expires_ms: now - 1 }.encode();
    store.map_write(&maps.cleanup, "old.1.1", MapWrite::Set(stale_lock)).await.unwrap();
    let live_lock = CleanupLock { holder: "busy.1".into(), expires_ms: now + 60_000 }.encode();
    store.map_write(&maps.cleanup, "other.1.1", MapWrite::Set(live_lock)).await.unwrap();
    let rec = JobRecord { attempt: 1, owner: "old.1.1".into(), payload: String::new() }.encode();
    store.map_write(&maps.jobs, &job_key("a"), MapWrite::Set(rec.clone())).await.unwrap();
    let rec2 = JobRecord { attempt: 1, owner: "other.1.1".into(), payload: String::new() }.encode();
    store.map_write(&maps.jobs, &job_key("b"), MapWrite::Set(rec2)).await.unwrap();
    let node = Pool::new(store.clone(), cfg("n")).start().await.unwrap();
    let log = Log::default();
    let _w = node.add_worker(Recorder { log: log.clone(), work: Duration::from_millis(5) }, &Shutdown::new("r"));
    settle(800).await;
    assert_eq!(log.runs("a").len(), 1, "stale lock taken over, job requeued");
    assert!(log.runs("b").is_empty(), "a live lock is left to its holder");
    let r = inspect(&store, "p").await.unwrap();
    assert!(r.cleanup_locks.contains_key("other.1.1") && !r.cleanup_locks.contains_key("old.1.1"), "{r:?}");
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn stale_attempt_completion_is_rejected() {
    let store = MemoryStore::new();
    let maps = Maps::new("p");
    let old = JobRecord { attempt: 1, owner: "w1".into(), payload: String::new() };
    let new = old.moved_to("w2");
    store.map_write(&maps.jobs, &job_key("k"), MapWrite::Set(new.encode())).await.unwrap();
    assert_eq!(complete::complete(&store, &maps, "k", &old.encode(), "1|w1|5").await, Ok(false));
    assert_eq!(jobs(&store).await, 1);
    assert_eq!(complete::complete(&store, &maps, "k", &new.encode(), "2|w2|6").await, Ok(true));
    assert_eq!(jobs(&store).await, 0);
    // A retry after an unknown outcome recognises its own tombstone; the stale one does not.
    assert_eq!(complete::complete(&store, &maps, "k", &new.encode(), "2|w2|6").await, Ok(true));
    assert_eq!(complete::complete(&store, &maps, "k", &old.encode(), "1|w1|5").await, Ok(false));
}

/// A stopping worker hands back the job it could not finish within its deadline.
#[tokio::test(start_paused = true)]
async fn graceful_stop_hands_back_unfinished_jobs() {
    let store = MemoryStore::new();
    let node = Pool::new(store.clone(), cfg("a")).start().await.unwrap();
    let log = Log::default();
    let slow = node.add_worker(Recorder { log: log.clone(), work: Duration::from_secs(60) }, &Shutdown::new("r"));
    settle(50).await;
    node.dispatch("long", "").await.unwrap();
    settle(50).await;
    let fast = node.add_worker(Recorder { log: log.clone(), work: Duration::from_millis(5) }, &Shutdown::new("r"));
    settle(50).await;
    assert_eq!(slow.stop().await, WorkerExit::Stopped);
    settle(200).await;
    let runs = log.runs("long");
    assert_eq!(runs, vec![(1, runs[0].1.clone()), (2, fast.id().to_owned())]);
    assert_eq!(jobs(&store).await, 0);
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn data_loss_is_detected_and_reported() {
    let store = MemoryStore::new();
    let node = Pool::new(store.clone(), cfg("a")).start().await.unwrap();
    settle(300).await;
    assert_eq!(node.data_losses(), 0);
    store.reset();
    settle(300).await;
    assert_eq!(node.data_losses(), 1, "reported once, then the new epoch is adopted");
    settle(300).await;
    assert_eq!(node.data_losses(), 1);
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn unacked_dispatch_is_redispatched() {
    let store = MemoryStore::new();
    let maps = Maps::new("p");
    let node = Pool::new(store.clone(), cfg("a")).start().await.unwrap();
    // A live-looking worker that never acks (its process is gone but it is not stale yet).
    let now = store.time_ms().await.unwrap();
    store.map_write(&maps.keepalive, "a.0.0", MapWrite::Set((now + 100_000).to_string())).await.unwrap();
    node.dispatch("k", "").await.unwrap();
    let log = Log::default();
    let _w = node.add_worker(Recorder { log: log.clone(), work: Duration::from_millis(5) }, &Shutdown::new("r"));
    settle(1000).await;
    assert_eq!(log.runs("k").into_iter().map(|r| r.0).collect::<Vec<_>>(), vec![2], "re-dispatched after ack_grace");
    assert_eq!(jobs(&store).await, 0);
    node.stop().await;
}

#[tokio::test(start_paused = true)]
async fn dispatch_spreads_by_the_cached_load_without_reading_the_job_map() {
    let store = MemoryStore::new();
    let node = Pool::new(store.clone(), cfg("a")).start().await.unwrap();
    let log = Log::default();
    let caller = Shutdown::new("req");
    let w1 = node.add_worker(Recorder { log: log.clone(), work: Duration::from_secs(5) }, &caller);
    let w2 = node.add_worker(Recorder { log: log.clone(), work: Duration::from_secs(5) }, &caller);
    settle(50).await;
    // Back to back, before any sweep: the load comes from the node's own writes.
    for i in 0..6 {
        node.dispatch(&format!("j{i}"), "x").await.unwrap();
    }
    settle(20).await;
    let on = |w: &WorkerHandle| log.0.lock().unwrap().iter().filter(|(_, _, id)| id == w.id()).count();
    assert_eq!((on(&w1), on(&w2)), (3, 3), "least-loaded alternates between the two workers");
    // A duplicate is still caught (by the transaction's guards, not a snapshot).
    assert!(matches!(node.dispatch("j0", "x").await, Err(PoolError::Duplicate { .. })));
    node.stop().await;
}

/// Sim seed 191: a view whose keep-alive read predates a worker's registration shows the worker
/// (as a job owner) without a keep-alive. The cleaner must re-read before it moves anything.
#[tokio::test(start_paused = true)]
async fn cleanup_rechecks_a_worker_missing_from_an_older_keepalive_read() {
    let store = MemoryStore::new();
    let maps = Maps::new("p");
    let now = store.time_ms().await.unwrap();
    let fresh = KeepAlive { ms: now, stopping: true }.encode(); // alive, draining
    store.map_write(&maps.keepalive, "new.1.1", MapWrite::Set(fresh.clone())).await.unwrap();
    let rec = JobRecord { attempt: 1, owner: "new.1.1".into(), payload: String::new() }.encode();
    store.map_write(&maps.jobs, &job_key("a"), MapWrite::Set(rec.clone())).await.unwrap();
    let core = node::Core::new(store.clone(), cfg("n"), Arc::new(crate::clock::TokioClock), now, Shutdown::new("t"));
    // The racy view: the job is there, its owner's keep-alive is not.
    let mut view = state::View { now_ms: now, ..Default::default() };
    view.jobs.insert(job_key("a"), rec.clone());
    assert_eq!(view.stale_workers(300, false), vec!["new.1.1".to_owned()], "the view alone judges it stale");
    core.cleanup(&view, "new.1.1").await.unwrap();
    assert_eq!(store.map_get(&maps.jobs, &job_key("a")).await.unwrap().0, Some(rec), "job left with its owner");
    assert_eq!(store.map_get(&maps.keepalive, "new.1.1").await.unwrap().0, Some(fresh), "not fenced");
    let r = inspect(&store, "p").await.unwrap();
    assert!(r.cleanup_locks.is_empty(), "lock released: {r:?}");
}

/// Completions go through the node's completer: every recorded completion becomes one event, and
/// stopping the node right after the runs flushes and delivers them all before the
/// subscription closes.
#[tokio::test(start_paused = true)]
async fn stop_flushes_every_completion_event_before_closing() {
    let store = MemoryStore::new();
    let node = Pool::new(store.clone(), cfg("a")).start().await.unwrap();
    let mut events = node.subscribe(KindFilter::only([COMPLETED]));
    let log = Log::default();
    let _w = node.add_worker(Recorder { log: log.clone(), work: Duration::from_millis(1) }, &Shutdown::new("r"));
    settle(50).await;
    for i in 0..20 {
        node.dispatch(&format!("j{i}"), &format!("p{i}")).await.unwrap();
    }
    while jobs(&store).await > 0 {
        settle(1).await;
    }
    node.stop().await; // at once: some events are still in the completer's backlog
    let mut got = Vec::new();
    while let Some(e) = events.recv().await {
        got.push((e.completion.key, e.completion.attempt, e.completion.payload));
    }
    got.sort();
    let mut want: Vec<_> = (0..20).map(|i| (format!("j{i}"), 1, format!("p{i}"))).collect();
    want.sort();
    assert_eq!(got, want, "each recorded completion exactly once, then closed");
    assert_eq!(events.dropped(), 0);
}
