//! A leader-elected scheduler on keel: one node at a time (the lease holder) dispatches jobs into
//! a keel pool; workers on every node run them, each writing its side effect to a ledger under
//! the job's attempt (its fence); every node follows the pool's completion feed.
//!
//! It is written the way a service must be for the simulator to find its races: every sleep and
//! deadline on the clock it is given, the store given by the caller, no wall clock, no OS
//! randomness, no threads. In production `store` is a `keel::RedisStore` and `clock` keel's
//! system clock; in `tests/sim.rs` both are simulated.

use std::sync::Arc;
use std::time::Duration;

use keel::clock::Clock;
use keel::lease::{Guard, LeaseConfig, LeaseOwner};
use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, PoolError};
use keel::shutdown::Shutdown;
use keel::store::Store;

/// What the scheduler reports (to logs in production, to the checker in tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchedEv {
    /// This node, as leader under `fence`, dispatched `job`.
    Dispatched { job: String, fence: u64 },
    /// This node's completion feed delivered `job`.
    Observed { job: String, attempt: u64 },
}

/// Where a job's side effect goes: a table with a version column, an object store with a
/// generation precondition. `write` must refuse a fence below one it already took for the key.
pub trait Ledger: Send + Sync + 'static {
    /// Write `key`'s side effect under `fence`; false when a newer fence already wrote it.
    fn write(&self, key: &str, fence: u64) -> bool;
    /// The same write without the fence compare (what the `buggy` feature calls).
    fn write_unfenced(&self, key: &str, fence: u64);
}

/// Lease and pool timing of the scheduler.
pub const TTL: Duration = Duration::from_millis(1000);
/// How often the leader dispatches a job.
pub const TICK: Duration = Duration::from_millis(400);
/// Steps of a job's side effect, each written to the ledger.
pub const STEPS: u32 = 4;

/// One node of the scheduler: until `shutdown`, contend for leadership (dispatching while
/// leader), run `workers` pool workers and follow completions.
pub async fn run_node<S, L>(
    name: &str,
    store: S,
    clock: Arc<dyn Clock>,
    shutdown: &Shutdown,
    ledger: Arc<L>,
    report: impl Fn(SchedEv) + Send + Sync + Clone + 'static,
) where
    S: Store + Clone + 'static,
    L: Ledger,
{
    let Ok(pool_cfg) = PoolConfig::builder("jobs", name).worker_ttl(TTL).build() else { return };
    let Ok(lease_cfg) = LeaseConfig::builder("scheduler", name).ttl(TTL).build() else { return };
    let Ok(pool) = Pool::new(store.clone(), pool_cfg).with_clock(clock.clone()).with_parent(shutdown).start().await
    else {
        return;
    };
    let pool = Arc::new(pool);
    let request = Shutdown::new("add workers");
    for _ in 0..2 {
        let _ = pool.add_worker(Worker { ledger: ledger.clone(), clock: clock.clone() }, &request);
    }
    request.cancel(); // workers outlive the request that added them
    if let Ok(mut feed) = pool.completions() {
        let report = report.clone();
        tokio::spawn(async move {
            while let Some(c) = feed.recv().await {
                report(SchedEv::Observed { job: c.job, attempt: c.attempt });
            }
        });
    }
    let (p, c, r) = (pool.clone(), clock.clone(), report.clone());
    let mut lease = LeaseOwner::new(store, lease_cfg)
        .with_clock(clock)
        .with_parent(shutdown)
        .start(move |guard| lead(guard, p.clone(), c.clone(), r.clone()));
    let _ = lease.join().await;
    if let Ok(pool) = Arc::try_unwrap(pool) {
        pool.stop().await;
    }
}

/// While leader: dispatch one job per tick, named by the leadership's fence.
async fn lead<S: Store>(
    guard: Guard,
    pool: Arc<keel::pool::PoolNode<S>>,
    clock: Arc<dyn Clock>,
    report: impl Fn(SchedEv),
) {
    let fence = guard.fence();
    let mut n = 0u32;
    while !guard.is_lost() {
        let job = format!("job-{fence}-{n}");
        // The dispatch races the guard: a store call can take up to its timeout, and a leader
        // that goes on dispatching past its deadline is a second leader (keel-sim seed 26: a
        // dispatch stuck behind a partition ran 34 ms past the deadline, while the next leader
        // already dispatched). A dispatch cut short has an unknown outcome, like a timeout.
        let dispatched = tokio::select! {
            biased; // a fixed poll order: the simulator replays it
            _ = guard.lost() => break,
            r = pool.dispatch(&job, "payload") => r,
        };
        match dispatched {
            // Duplicate: an earlier try whose reply was lost did dispatch it. Never retry a key
            // once it exists: after the pool's dedup window the same key would run again, with
            // its attempts counted from 1 anew.
            Ok(_) | Err(PoolError::Duplicate { .. }) => {
                report(SchedEv::Dispatched { job, fence });
                n += 1;
            }
            Err(_) => {} // outcome unknown or not applied: the same key next tick
        }
        tokio::select! {
            biased; // a fixed poll order: the simulator replays it
            _ = guard.lost() => break,
            _ = clock.sleep(TICK) => {}
        }
    }
}

struct Worker<L> {
    ledger: Arc<L>,
    clock: Arc<dyn Clock>,
}

impl<L: Ledger> JobHandler for Worker<L> {
    async fn run(&self, job: Job) -> JobOutcome {
        for _ in 0..STEPS {
            tokio::select! {
                biased;
                _ = job.stopped() => return JobOutcome::Abandoned,
                _ = self.clock.sleep(Duration::from_millis(150)) => {}
            }
            if cfg!(feature = "buggy") {
                // The bug: the attempt is known but not compared, so a worker that was paused
                // past its TTL overwrites the newer attempt's side effect when it wakes.
                self.ledger.write_unfenced(job.key(), job.attempt());
            } else if !self.ledger.write(job.key(), job.attempt()) {
                return JobOutcome::Abandoned; // a newer attempt owns the job now
            }
        }
        JobOutcome::Completed
    }
}
