//! The worker pool over a real, private `redis-server` started with persistence (AOF, fsync
//! always): three in-process nodes; one node dies abruptly (its runtime is dropped mid-run, like
//! a kill -9 of its process) and its jobs run again elsewhere within `worker_ttl` + the sweep
//! interval; no job ever runs twice at once; a Redis kill -9 + restart mid-run loses nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::RedisStore;
use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, PoolNode, WorkerHandle};
use keel::shutdown::Shutdown;
use keel_tests::{RedisServer, wait_ready};
use tokio::sync::watch;
use tokio::time::Instant;

const WORKER_TTL: Duration = Duration::from_secs(2);
const SWEEP: Duration = Duration::from_millis(500);
const JOBS: usize = 12;

/// Shared by every handler of every node: which job runs where right now, and every overlap.
#[derive(Clone, Default)]
struct Tracker {
    /// job → (node, attempt) of the handler running it now.
    running: Arc<Mutex<BTreeMap<String, (String, u64)>>>,
    /// Jobs seen starting while another handler still ran them.
    overlaps: Arc<Mutex<Vec<String>>>,
    /// job → handler runs that returned Completed.
    completed: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Tracker {
    fn running(&self) -> BTreeMap<String, (String, u64)> {
        self.running.lock().expect("running").clone()
    }

    fn overlaps(&self) -> Vec<String> {
        self.overlaps.lock().expect("overlaps").clone()
    }
}

/// Removes its job from `running` when the handler ends, however it ends (also when its runtime
/// is dropped under it).
struct Running {
    tracker: Tracker,
    job: String,
    me: (String, u64),
}

impl Drop for Running {
    fn drop(&mut self) {
        let mut running = self.tracker.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.get(&self.job) == Some(&self.me) {
            running.remove(&self.job);
        }
    }
}

/// Runs a job until `finish` turns true (Completed) or the pool stops it (Abandoned).
#[derive(Clone)]
struct Handler {
    node: String,
    tracker: Tracker,
    finish: watch::Receiver<bool>,
}

impl JobHandler for Handler {
    async fn run(&self, job: Job) -> JobOutcome {
        let me = (self.node.clone(), job.attempt());
        {
            let mut running = self.tracker.running.lock().expect("running");
            if let Some(other) = running.insert(job.key().to_owned(), me.clone()) {
                self.tracker.overlaps.lock().expect("overlaps").push(format!("{} on {me:?} and {other:?}", job.key()));
            }
        }
        let _guard = Running { tracker: self.tracker.clone(), job: job.key().to_owned(), me };
        let mut finish = self.finish.clone();
        tokio::select! {
            biased;
            _ = job.stopped() => JobOutcome::Abandoned,
            r = finish.wait_for(|f| *f) => {
                if r.is_err() {
                    return JobOutcome::Abandoned;
                }
                *self.tracker.completed.lock().expect("completed").entry(job.key().to_owned()).or_default() += 1;
                JobOutcome::Completed
            }
        }
    }
}

fn pool_config(node: &str) -> PoolConfig {
    PoolConfig::builder("e2e", node)
        .worker_ttl(WORKER_TTL)
        .sweep_interval(SWEEP)
        .op_timeout(Duration::from_millis(500))
        .build()
        .expect("valid pool config")
}

/// A loopback TCP proxy to Redis that can be paused: while paused nothing is forwarded either
/// way and connections stay open, as in a network partition of the one node that uses it.
struct Proxy {
    port: u16,
    paused: Arc<AtomicBool>,
}

impl Proxy {
    fn start(redis_port: u16) -> Proxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let paused = Arc::new(AtomicBool::new(false));
        let p = paused.clone();
        // Threads, not tasks: the proxy must keep its behaviour whatever the test's runtime
        // does. They end with the test process.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", redis_port)) else { continue };
                let (c2, s2) = (client.try_clone().expect("clone"), server.try_clone().expect("clone"));
                let (pa, pb) = (p.clone(), p.clone());
                std::thread::spawn(move || pipe(client, server, pa));
                std::thread::spawn(move || pipe(s2, c2, pb));
            }
        });
        Proxy { port, paused }
    }

    fn config(&self) -> keel::RedisConfig {
        keel::RedisConfig::builder(format!("redis://127.0.0.1:{}", self.port))
            .key_prefix(keel_tests::PREFIX)
            .op_timeout(Duration::from_millis(300))
            .connect_timeout(Duration::from_millis(300))
            .build()
            .expect("valid config")
    }
}

fn pipe(mut from: std::net::TcpStream, mut to: std::net::TcpStream, paused: Arc<AtomicBool>) {
    use std::io::{Read, Write};
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while paused.load(AtomicOrdering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

async fn start_node(
    store: RedisStore,
    node: &str,
    workers: usize,
    tracker: &Tracker,
    finish: &watch::Receiver<bool>,
) -> (PoolNode<RedisStore>, Vec<WorkerHandle>) {
    let pool = Pool::new(store, pool_config(node)).start().await.expect("node starts");
    let caller = Shutdown::new("test");
    let handler = Handler { node: node.to_owned(), tracker: tracker.clone(), finish: finish.clone() };
    let ws = (0..workers).map(|_| pool.add_worker(handler.clone(), &caller)).collect();
    caller.cancel(); // the request that added the workers ends; they must outlive it
    (pool, ws)
}

/// Poll until `ok(running)` holds, checking for overlaps at every sample.
async fn wait_running(
    tracker: &Tracker,
    within: Duration,
    what: &str,
    ok: impl Fn(&BTreeMap<String, (String, u64)>) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        assert_eq!(tracker.overlaps(), Vec::<String>::new(), "a job ran twice at once");
        let r = tracker.running();
        if ok(&r) {
            return;
        }
        assert!(Instant::now() < deadline, "{what} not reached within {within:?}: running {r:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Let every job complete and wait until the pool holds no job any more.
async fn complete_all(store: &RedisStore, tracker: &Tracker, finish: &watch::Sender<bool>) {
    finish.send_replace(true);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let report = keel::pool::inspect(store, "e2e").await;
        if matches!(&report, Ok(r) if r.jobs.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "jobs left in the pool: {report:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let completed = tracker.completed.lock().expect("completed").clone();
    for i in 0..JOBS {
        assert!(completed.get(&format!("job-{i}")).copied().unwrap_or(0) >= 1, "job-{i} completed: {completed:?}");
    }
    assert_eq!(completed.len(), JOBS, "only dispatched jobs ran: {completed:?}");
    assert_eq!(tracker.overlaps(), Vec::<String>::new(), "a job ran twice at once");
}

fn start_server(test: &str) -> Option<RedisServer> {
    RedisServer::start_with(test, &["--appendonly", "yes", "--appendfsync", "always"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pool_dead_node_jobs_run_elsewhere_once_and_a_redis_restart_loses_nothing() {
    dead_node_then_redis_restart("redis_pool_dead_node_jobs_run_elsewhere_once_and_a_redis_restart_loses_nothing")
        .await;
}

/// Teeth: with MP6 (worker tasks bound to the caller's cancellation) the workers die with the
/// request that added them, leaving zombie handlers and jobs that never run again.
#[cfg(feature = "mutants")]
#[test]
fn redis_pool_mp6_workers_bound_to_the_caller_is_caught() {
    let test = "redis_pool_mp6_workers_bound_to_the_caller_is_caught";
    if !keel_tests::redis_available(test) {
        return;
    }
    let caught = keel_tests::panic_under_mutant(keel::mutants::Mutant::MP6, dead_node_then_redis_restart(test));
    let msg = caught.expect("MP6 must strand jobs");
    assert!(msg.contains("not reached within"), "caught for the wrong reason: {msg}");
}

async fn dead_node_then_redis_restart(test: &str) {
    let Some(server) = start_server(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let tracker = Tracker::default();
    let (finish_tx, finish) = watch::channel(false);

    // The victim runs on its own runtime and connection: dropping that runtime ends every task
    // of the node at once, without a graceful drain, as a kill -9 of its process would.
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let (up_tx, up_rx) = tokio::sync::oneshot::channel::<()>();
    let victim = {
        let (config, tracker, finish) = (server.config(), tracker.clone(), finish.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let store = RedisStore::connect(config).await.expect("victim connects");
                let (node, workers) = start_node(store, "victim", 2, &tracker, &finish).await;
                let _ = up_tx.send(());
                let _ = kill_rx.await;
                // Never dropped gracefully: leaked, and their tasks die with the runtime.
                std::mem::forget((node, workers));
            });
            drop(rt);
        })
    };
    up_rx.await.expect("victim node up");
    let (a, a_workers) = start_node(store.clone(), "a", 2, &tracker, &finish).await;
    let (b, b_workers) = start_node(store.clone(), "b", 2, &tracker, &finish).await;
    // Dispatch picks from the node's cached keep-alives (read at most one keep-alive interval
    // ago, docs/pool.md): wait until all six workers are registered, then one interval more,
    // so that no cache read before a victim worker registered is still used.
    let deadline = Instant::now() + Duration::from_secs(5);
    while keel::pool::inspect(&store, "e2e").await.expect("report").registered.len() < 6 {
        assert!(Instant::now() < deadline, "six workers registered within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(pool_config("a").keepalive_interval()).await;

    for i in 0..JOBS {
        a.dispatch(&format!("job-{i}"), &format!("payload {i}")).await.expect("dispatch");
    }
    wait_running(&tracker, Duration::from_secs(15), "every job running", |r| r.len() == JOBS).await;
    // Least-loaded assignment spreads the jobs over the six workers: wait for the victim to
    // have some (a job dispatched before its workers registered may sit elsewhere).
    let victims: Vec<String> =
        tracker.running().into_iter().filter(|(_, (n, _))| n == "victim").map(|(j, _)| j).collect();
    assert!(!victims.is_empty(), "the victim runs jobs: {:?}", tracker.running());

    let killed_at = Instant::now();
    let _ = kill_tx.send(());
    tokio::task::block_in_place(|| victim.join()).expect("victim thread");
    wait_running(&tracker, Duration::from_secs(1), "the victim's handlers gone", |r| {
        r.values().all(|(n, _)| n != "victim")
    })
    .await;
    let slack = Duration::from_secs(5);
    wait_running(&tracker, WORKER_TTL + SWEEP + slack, "the victim's jobs running elsewhere", |r| r.len() == JOBS)
        .await;
    let moved_after = killed_at.elapsed();
    let running = tracker.running();
    for j in &victims {
        let (node, attempt) = &running[j];
        assert_ne!(node, "victim");
        assert!(*attempt >= 2, "{j} was reassigned with a new attempt ({attempt})");
    }
    eprintln!("{} jobs of the dead node running elsewhere {moved_after:?} after its death", victims.len());

    // Redis kill -9 + restart mid-run; with the AOF nothing is lost.
    let before = keel::pool::inspect(&store, "e2e").await.expect("report");
    tokio::task::block_in_place(|| server.restart());
    wait_ready(&store).await;
    let after = keel::pool::inspect(&store, "e2e").await.expect("report");
    assert_eq!(after.jobs.len(), JOBS, "every job survived the restart: {after:?}");
    assert_eq!(
        before.jobs.keys().collect::<Vec<_>>(),
        after.jobs.keys().collect::<Vec<_>>(),
        "the same jobs before and after the restart"
    );
    // Give the nodes a few sweeps on the restarted Redis, then everything still runs, once.
    tokio::time::sleep(SWEEP * 4).await;
    wait_running(&tracker, Duration::from_secs(15), "every job running after the restart", |r| r.len() == JOBS).await;
    assert_eq!((a.data_losses(), b.data_losses()), (0, 0), "the persisted epoch marker survived");

    complete_all(&store, &tracker, &finish_tx).await;
    for w in a_workers.into_iter().chain(b_workers) {
        w.stop().await;
    }
    a.stop().await;
    b.stop().await;
}

/// One node is partitioned from Redis (its connections hang, through a paused proxy): its
/// workers stop their handlers before the other nodes may requeue the jobs, so the jobs run
/// elsewhere within worker_ttl + the sweep interval and never twice at once, also after the
/// partition heals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pool_partitioned_node_fences_itself_before_its_jobs_move() {
    let test = "redis_pool_partitioned_node_fences_itself_before_its_jobs_move";
    let Some(server) = start_server(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let proxy = Proxy::start(server.port());
    let cut_off = RedisStore::connect(proxy.config()).await.expect("connect through the proxy");
    let tracker = Tracker::default();
    let (finish_tx, finish) = watch::channel(false);
    let (p, p_workers) = start_node(cut_off, "partitioned", 2, &tracker, &finish).await;
    let (a, a_workers) = start_node(store.clone(), "a", 2, &tracker, &finish).await;
    let (b, b_workers) = start_node(store.clone(), "b", 2, &tracker, &finish).await;
    // Dispatch picks from the node's cached keep-alives (read at most one keep-alive interval
    // ago, docs/pool.md): wait until all six workers are registered, then one interval more,
    // so that no cache read before a victim worker registered is still used.
    let deadline = Instant::now() + Duration::from_secs(5);
    while keel::pool::inspect(&store, "e2e").await.expect("report").registered.len() < 6 {
        assert!(Instant::now() < deadline, "six workers registered within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(pool_config("a").keepalive_interval()).await;

    for i in 0..JOBS {
        a.dispatch(&format!("job-{i}"), &format!("payload {i}")).await.expect("dispatch");
    }
    wait_running(&tracker, Duration::from_secs(15), "every job running", |r| r.len() == JOBS).await;
    let cut: Vec<String> =
        tracker.running().into_iter().filter(|(_, (n, _))| n == "partitioned").map(|(j, _)| j).collect();
    assert!(!cut.is_empty(), "the partitioned node runs jobs: {:?}", tracker.running());

    let partitioned_at = Instant::now();
    proxy.paused.store(true, AtomicOrdering::Relaxed);
    // Overlaps are checked at every sample and by every handler start.
    let slack = Duration::from_secs(5);
    wait_running(&tracker, WORKER_TTL + SWEEP + slack, "the cut-off node's jobs running elsewhere", |r| {
        r.len() == JOBS && r.values().all(|(n, _)| n != "partitioned")
    })
    .await;
    eprintln!("{} jobs of the partitioned node running elsewhere after {:?}", cut.len(), partitioned_at.elapsed());

    // Heal: the fenced workers must not take their old jobs back.
    proxy.paused.store(false, AtomicOrdering::Relaxed);
    let until = Instant::now() + WORKER_TTL;
    while Instant::now() < until {
        wait_running(&tracker, Duration::from_secs(1), "every job running once", |r| r.len() == JOBS).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    complete_all(&store, &tracker, &finish_tx).await;
    for w in p_workers.into_iter().chain(a_workers).chain(b_workers) {
        w.stop().await;
    }
    for n in [p, a, b] {
        n.stop().await;
    }
}
