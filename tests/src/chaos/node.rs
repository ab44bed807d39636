//! The app processes of a chaos run (`keel-chaos node …`): each drives keel's public API over a
//! `RedisStore` reached through its own proxy, on a current-thread runtime whose thread carries
//! an [`Observer`] that writes the keel events the checkers need into the process' history.
//! SIGTERM asks for a graceful stop; the process records `Stopped` and exits 0 when it is done.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::lease::{LeaseConfig, LeaseOwner};
use keel::observe::{Event, Observer};
use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, PoolError, PoolNode};
use keel::rmap::{ReplicatedMap, RmapConfig};
use keel::shutdown::Shutdown;
use keel::store::{RedisConfig, RedisStore};
use tokio::time::Instant;

use super::history::{Ev, Recorder};
use super::recstore::RecordingStore;
use super::register;

/// Key prefix of every chaos key in Redis.
pub const PREFIX: &str = "keel-chaos";
/// The one lease the lease processes contend for, and the register key it protects.
pub const LEASE: &str = "chaos-leader";
/// The pool of the pool workload.
pub const POOL: &str = "chaos-pool";
/// The replicated map of the rmap workload.
pub const MAP: &str = "chaos-map";
/// How often a map process writes its own next key.
const MAP_WRITE_EVERY: Duration = Duration::from_millis(100);
/// Bound on one `set_and_wait` (a store outage makes it fail or wait; the next tick retries).
const MAP_WRITE_MAX: Duration = Duration::from_secs(2);
/// The completer workload: producers per completer process, and how often each completes.
const PRODUCERS: usize = 2;
const COMPLETE_EVERY: Duration = Duration::from_millis(50);
/// How long the producers keep completing after the completer's stop began.
const PRODUCERS_LINGER: Duration = Duration::from_millis(300);
/// How often a holder writes to the register.
const WRITE_EVERY: Duration = Duration::from_millis(40);
/// What a handler "does" before completing.
const JOB_WORK: Duration = Duration::from_millis(150);
/// Workers per worker process.
pub const WORKERS_PER_PROC: usize = 2;
/// The dispatcher re-dispatches a job not completed this long after its last dispatch (a job
/// lost with Redis' data is answered `Ok` instead of `Duplicate`).
const RECHECK_AFTER: Duration = Duration::from_secs(3);
/// Jobs re-checked per tick, so a long outage cannot stall the dispatcher for long.
const RECHECK_PER_TICK_MAX: usize = 16;
/// The dispatcher's final wait for its last completions.
const FINAL_WAIT_MAX: Duration = Duration::from_secs(60);

/// What an app process is.
#[derive(Clone, Debug)]
pub struct NodeArgs {
    /// `lease`, `worker` or `dispatcher`.
    pub role: String,
    /// Its name (`lease-0`, `worker-1`, `dispatcher`).
    pub id: String,
    /// The port of its proxy to Redis.
    pub redis_port: u16,
    /// Its history file.
    pub events: PathBuf,
    /// The register's port (lease processes).
    pub register_port: u16,
    /// Restart number (0 first).
    pub incarnation: u32,
    /// Lease TTL and worker TTL.
    pub ttl: Duration,
    /// Jobs to dispatch (dispatcher).
    pub jobs: u32,
    /// Pause between two dispatches (dispatcher).
    pub dispatch_every: Duration,
    /// A zoo mutant to switch on in this process (feature `mutants`).
    pub mutant: Option<String>,
}

/// Writes every keel event into the history, typed (the simulator's type), and logs it as keel
/// does without an observer (warnings reach the child's stderr).
struct Obs(Arc<Recorder>);

impl Observer for Obs {
    fn event(&self, e: &Event<'_>) {
        self.0.rec(Ev::Keel(e.to_static()));
        keel::observe::log(e);
    }
}

/// Run one app process to its end. Returns the process exit code.
pub fn run(args: NodeArgs) -> i32 {
    let rec = match Recorder::open(&args.events, &args.id) {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("keel-chaos node {}: cannot open {}: {e}", args.id, args.events.display());
            return 2;
        }
    };
    if let Err(e) = switch_mutant(args.mutant.as_deref()) {
        eprintln!("keel-chaos node {}: {e}", args.id);
        return 2;
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keel-chaos node {}: runtime: {e}", args.id);
            return 2;
        }
    };
    // Every keel task of this process runs on this thread: the observer sees all of them.
    keel::observe::set_thread_observer(Some(Rc::new(Obs(rec.clone()))));
    rec.rec(Ev::ProcStarted { incarnation: args.incarnation, pid: std::process::id() });
    let r = rt.block_on(async {
        let store = store(args.redis_port)?;
        match args.role.as_str() {
            "lease" => lease(&args, store, rec.clone()).await,
            "worker" => worker(&args, store, rec.clone()).await,
            "dispatcher" => dispatcher(&args, store, rec.clone()).await,
            // Its map operations are recorded for the linearizability check.
            "rmap" => rmap(&args, RecordingStore::new(store, rec.clone(), args.incarnation), rec.clone()).await,
            "completer" => completer(&args, store, rec.clone()).await,
            other => Err(format!("unknown role {other:?}")),
        }
    });
    match r {
        Ok(()) => {
            rec.rec(Ev::Stopped);
            0
        }
        Err(e) => {
            eprintln!("keel-chaos node {}: {e}", args.id);
            1
        }
    }
}

#[cfg(feature = "mutants")]
fn switch_mutant(name: Option<&str>) -> Result<(), String> {
    use keel::mutants::Mutant as M;
    let Some(name) = name else { return Ok(()) };
    let m = match name {
        "MS1" => M::MS1,
        "MS2" => M::MS2,
        "MS3" => M::MS3,
        "MS4" => M::MS4,
        "MS5" => M::MS5,
        "MS6" => M::MS6,
        "MS7" => M::MS7,
        "MS8" => M::MS8,
        "MC1" => M::MC1,
        "MC7" => M::MC7,
        "MC3" => M::MC3,
        "MC4" => M::MC4,
        "MP1" => M::MP1,
        "MP11" => M::MP11,
        "MC8" => M::MC8,
        "MP6" => M::MP6,
        "MP7" => M::MP7,
        "MP10" => M::MP10,
        other => return Err(format!("mutant {other:?} is not one the chaos workloads exercise")),
    };
    keel::mutants::set(Some(m));
    Ok(())
}

#[cfg(not(feature = "mutants"))]
fn switch_mutant(name: Option<&str>) -> Result<(), String> {
    match name {
        None => Ok(()),
        Some(m) => Err(format!("--mutant {m} needs keel-tests built with feature `mutants`")),
    }
}

fn store(port: u16) -> Result<RedisStore, String> {
    let config = RedisConfig::builder(format!("redis://127.0.0.1:{port}"))
        .key_prefix(PREFIX)
        .op_timeout(Duration::from_millis(250))
        .connect_timeout(Duration::from_millis(250))
        .build()
        .map_err(|e| format!("redis config: {e}"))?;
    RedisStore::connect_lazy(config).map_err(|e| format!("redis store: {e}"))
}

async fn sigterm() -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))
}

/// Contend for the lease; while holding, write to the register under the grant's fence.
async fn lease(args: &NodeArgs, store: RedisStore, rec: Arc<Recorder>) -> Result<(), String> {
    let mut term = sigterm().await?;
    let owner = format!("{}.{}", args.id, args.incarnation);
    let config = LeaseConfig::builder(LEASE, owner).ttl(args.ttl).build().map_err(|e| format!("lease config: {e}"))?;
    let client = Arc::new(Mutex::new(register::Client::new(args.register_port)));
    let (id, work_rec) = (args.id.clone(), rec.clone());
    let handle = LeaseOwner::new(store, config).start(move |guard| {
        let (client, rec, id) = (client.clone(), work_rec.clone(), id.clone());
        async move {
            // The documented idiom: take the fence right before each protected write.
            while let Some(fence) = guard.valid_fence() {
                // Loopback and tiny: a blocking call is shorter than a timer tick.
                let r = client.lock().unwrap_or_else(|p| p.into_inner()).write(LEASE, fence, &id);
                if let Some(accepted) = r {
                    rec.rec(Ev::Wrote { fence, accepted });
                }
                tokio::select! {
                    biased;
                    _ = guard.lost() => break,
                    _ = tokio::time::sleep(WRITE_EVERY) => {}
                }
            }
        }
    });
    term.recv().await;
    rec.rec_as(&args.id, Ev::Stopping);
    handle.stop().await.map_err(|e| format!("lease stop: {e:?}"))
}

/// Works [`JOB_WORK`] unless told to stop (keel records the run itself: `Started` and
/// `HandlerReturned`).
#[derive(Clone)]
struct Handler;

impl JobHandler for Handler {
    async fn run(&self, job: Job) -> JobOutcome {
        tokio::select! {
            biased;
            _ = job.stopped() => JobOutcome::Abandoned,
            _ = tokio::time::sleep(JOB_WORK) => JobOutcome::Completed,
        }
    }
}

fn pool_config(args: &NodeArgs) -> Result<PoolConfig, String> {
    PoolConfig::builder(POOL, format!("{}.{}", args.id, args.incarnation))
        .worker_ttl(args.ttl)
        .op_timeout(Duration::from_millis(250))
        .start_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("pool config: {e}"))
}

/// Run the pool's workers until SIGTERM, then stop gracefully.
async fn worker(args: &NodeArgs, store: RedisStore, rec: Arc<Recorder>) -> Result<(), String> {
    let mut term = sigterm().await?;
    let node = Pool::new(store, pool_config(args)?).start().await.map_err(|e| format!("pool start: {e}"))?;
    let caller = Shutdown::new("chaos");
    let _workers: Vec<_> = (0..WORKERS_PER_PROC).map(|_| node.add_worker(Handler, &caller)).collect();
    caller.cancel(); // the request that added the workers ends; they must outlive it (docs/pool.md)
    term.recv().await;
    rec.rec(Ev::Stopping);
    node.stop().await;
    Ok(())
}

/// Dispatch `jobs` jobs, one every `dispatch_every`; follow the pool-wide completion feed;
/// re-dispatch a job the store lost; end once every job completed (or the final wait ran out,
/// or SIGTERM).
async fn dispatcher(args: &NodeArgs, store: RedisStore, rec: Arc<Recorder>) -> Result<(), String> {
    let mut term = sigterm().await?;
    let node = Pool::new(store, pool_config(args)?).start().await.map_err(|e| format!("pool start: {e}"))?;
    let mut feed = node.completions().map_err(|e| format!("completions: {e}"))?;
    let mut next = 0u32;
    // job → when it was last (re)dispatched; removed when completed.
    let mut pending: BTreeMap<String, Instant> = BTreeMap::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut tick = tokio::time::interval(args.dispatch_every);
    // Burst: after an outage the backlog goes out at once, so dispatching ends with the plan.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut all_sent_at: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            _ = term.recv() => {
                rec.rec(Ev::Stopping);
                break;
            }
            c = feed.recv() => {
                let Some(c) = c else { return Err("completion feed closed".into()) };
                if done.insert(c.job.clone()) {
                    rec.rec(Ev::Completed { job: c.job.clone(), attempt: c.attempt });
                }
                pending.remove(&c.job);
            }
            _ = tick.tick() => {
                if next < args.jobs {
                    let job = format!("j{next:05}");
                    if dispatch(&node, &job).await.is_some() {
                        rec.rec(Ev::Dispatched { job: job.clone() });
                        pending.insert(job, Instant::now());
                        next += 1;
                    }
                } else if all_sent_at.is_none() {
                    all_sent_at = Some(Instant::now());
                }
                recheck(&node, &rec, &mut pending, &done).await;
                if next >= args.jobs && pending.is_empty() {
                    break; // every job completed
                }
                if all_sent_at.is_some_and(|t| t.elapsed() > FINAL_WAIT_MAX) {
                    rec.rec(Ev::GaveUp { missing: pending.len() });
                    break;
                }
            }
        }
    }
    node.stop().await;
    Ok(())
}

/// Dispatch once: `Some(true)` added, `Some(false)` it existed already (a retry after an unknown
/// outcome that had landed), `None` the store failed (retried at the next tick).
async fn dispatch(node: &PoolNode<RedisStore>, job: &str) -> Option<bool> {
    match node.dispatch(job, "x").await {
        Ok(_) => Some(true),
        Err(PoolError::Duplicate { .. }) => Some(false),
        Err(_) => None,
    }
}

/// Jobs pending for long are dispatched again: `Duplicate` means the store still has them (or
/// their completion); `Ok` means the store had lost them (a Redis restart without its data).
async fn recheck(
    node: &PoolNode<RedisStore>,
    rec: &Recorder,
    pending: &mut BTreeMap<String, Instant>,
    done: &BTreeSet<String>,
) {
    let due: Vec<String> = pending
        .iter()
        .filter(|(j, t)| t.elapsed() > RECHECK_AFTER && !done.contains(*j))
        .map(|(j, _)| j.clone())
        .take(RECHECK_PER_TICK_MAX)
        .collect();
    for job in due {
        match dispatch(node, &job).await {
            Some(true) => {
                rec.rec(Ev::Redispatched { job: job.clone() });
                pending.insert(job, Instant::now());
            }
            Some(false) => {
                pending.insert(job, Instant::now());
            }
            None => return, // the store is down: try again next tick
        }
    }
}

/// Write this process' own keys with `set_and_wait` and check, right when it returns, that the
/// local replica shows the write (R3); sample the replica's revision for R2 (a read); on
/// SIGUSR1 stop writing; on SIGTERM record the replica's content and stop.
async fn rmap(args: &NodeArgs, store: RecordingStore<RedisStore>, rec: Arc<Recorder>) -> Result<(), String> {
    use std::hash::{Hash, Hasher};
    let mut term = sigterm().await?;
    let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
        .map_err(|e| format!("SIGUSR1 handler: {e}"))?;
    let config = RmapConfig::builder(MAP)
        .op_timeout(Duration::from_millis(250))
        .build()
        .map_err(|e| format!("rmap config: {e}"))?;
    let map = ReplicatedMap::start(store, config);
    let (mut seq, mut writing, mut last_rev) = (0u64, true, 0u64);
    let mut tick = tokio::time::interval(MAP_WRITE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = term.recv() => break,
            _ = usr1.recv() => {
                writing = false;
                rec.rec(Ev::Quiesced);
            }
            _ = tick.tick() => {
                let rev = map.revision();
                if rev != last_rev {
                    rec.rec(Ev::MapRead { rev });
                }
                last_rev = rev;
                if !writing || !map.is_joined() {
                    continue;
                }
                seq += 1;
                let key = format!("{}.{}.{seq}", args.id, args.incarnation);
                let value = seq.to_string();
                if let Ok(Ok(rev)) = tokio::time::timeout(MAP_WRITE_MAX, map.set_and_wait(&key, &value)).await {
                    let replica_rev = map.revision();
                    let visible = map.get(&key).as_deref() == Some(value.as_str()) && replica_rev >= rev;
                    rec.rec(Ev::MapSet { key, rev, visible, replica_rev });
                }
            }
        }
    }
    rec.rec(Ev::Stopping);
    let snap = map.snapshot();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    snap.entries.hash(&mut h);
    rec.rec(Ev::MapFinal { rev: snap.rev, entries: snap.entries.len(), digest: h.finish() });
    map.stop().await;
    Ok(())
}

/// A completer and its subscription manager, [`PRODUCERS`] producers completing a job every
/// [`COMPLETE_EVERY`] each (waiting for room in the backlog, as a worker does), and one
/// subscriber recording every event it receives. SIGTERM: the completer stops (drain: wait for
/// the producers, which go on for [`PRODUCERS_LINGER`], flush, close the channel), then the
/// subscription manager, while the subscriber reads to its channel's close. keel records its own side (`DrainStarted`,
/// `StopDeadline`, `EventsClosed`, ...), judged by the simulator's V3/V4.
async fn completer(args: &NodeArgs, store: RedisStore, rec: Arc<Recorder>) -> Result<(), String> {
    use keel::completer::{Completer, CompleterConfig, Completion, KindFilter, SubscriptionManager};
    let mut term = sigterm().await?;
    let config = CompleterConfig::builder(format!("chaos-completer-{}", args.id))
        .flush_interval(Duration::from_millis(20))
        .op_timeout(Duration::from_millis(250))
        .stop_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| format!("completer config: {e}"))?;
    let completer = Completer::new(store, config);
    let subs = SubscriptionManager::new(&completer);
    let mut sub = subs.subscribe(KindFilter::All);
    let caller = Shutdown::new("chaos");
    subs.start(&caller).await;
    completer.start(&caller).await;
    let stop = Shutdown::new("producers");
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let name = format!("{}.{}.p{p}", args.id, args.incarnation);
        let producer = completer.producer(&name).map_err(|e| format!("producer: {e}"))?;
        let (rec, stop) = (rec.clone(), stop.clone());
        producers.push(tokio::spawn(async move {
            for seq in 0u64.. {
                let key = format!("{name}.{seq}");
                let c = Completion::new(key.clone(), 1, "succeeded", "x");
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    r = producer.complete(c) => match r {
                        Ok(()) => rec.rec(Ev::CompletionAccepted { key }),
                        Err(_) => break,
                    },
                }
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(COMPLETE_EVERY) => {}
                }
            }
            producer.finish();
        }));
    }
    loop {
        tokio::select! {
            biased;
            _ = term.recv() => break,
            e = sub.recv() => match e {
                Some(e) => rec.rec(Ev::CompletionDelivered { key: e.completion.key }),
                None => return Err("subscriber closed before the stop".into()),
            },
        }
    }
    rec.rec(Ev::Stopping);
    // The subscriber keeps reading while the completer drains, so delivery is not held up by us.
    let reader = {
        let rec = rec.clone();
        tokio::spawn(async move {
            while let Some(e) = sub.recv().await {
                rec.rec(Ev::CompletionDelivered { key: e.completion.key });
            }
            rec.rec(Ev::SubscriberClosed { dropped: sub.dropped() });
        })
    };
    // The producers go on for a while after the stop began (a service stopping its completer
    // and its workers at once): the drain must wait for them, within its bound.
    tokio::spawn(async move {
        tokio::time::sleep(PRODUCERS_LINGER).await;
        stop.cancel();
    });
    let r = completer.stop().await;
    rec.rec(Ev::CompleterStopped { clean: r.is_ok(), error: r.err().map(|e| e.to_string()) });
    for p in producers {
        let _ = p.await;
    }
    subs.stop().await;
    reader.await.map_err(|e| format!("subscriber reader: {e}"))
}
