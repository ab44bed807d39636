//! Worker pool over loopback Redis, 3 nodes × 4 workers in one process:
//! - end-to-end jobs/s: dispatch → start → complete, until the pool holds no job;
//! - failover: time from a node's abrupt death (its runtime dropped) to its jobs running on the
//!   other nodes.
//!
//! Run: `cargo run --release -p keel-tests --example bench_pool_redis [jobs] [worker_ttl_ms]`
//! (spawns its own redis-server unless REDIS_URL is set).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, PoolNode, WorkerHandle};
use keel::shutdown::Shutdown;
use keel::store::{RedisConfig, RedisStore};
use tokio::time::Instant;

const WORKERS: usize = 4;
const DISPATCHERS: usize = 32;

/// Completes every job at once.
struct Quick(Arc<AtomicUsize>);

impl JobHandler for Quick {
    async fn run(&self, _job: Job) -> JobOutcome {
        self.0.fetch_add(1, Ordering::Relaxed);
        JobOutcome::Completed
    }
}

/// Runs until stopped; tracks which node runs each job (entry removed when the handler ends,
/// also when its runtime is dropped under it).
#[derive(Clone)]
struct Hold {
    node: &'static str,
    running: Arc<Mutex<BTreeMap<String, &'static str>>>,
}

struct Gone(Arc<Mutex<BTreeMap<String, &'static str>>>, String, &'static str);

impl Drop for Gone {
    fn drop(&mut self) {
        let mut r = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if r.get(&self.1) == Some(&self.2) {
            r.remove(&self.1);
        }
    }
}

impl JobHandler for Hold {
    async fn run(&self, job: Job) -> JobOutcome {
        self.running.lock().expect("running").insert(job.key().to_owned(), self.node);
        let _gone = Gone(self.running.clone(), job.key().to_owned(), self.node);
        job.stopped().await;
        JobOutcome::Abandoned
    }
}

fn config(pool: &str, node: &str, ttl: Duration) -> PoolConfig {
    PoolConfig::builder(pool, node).worker_ttl(ttl).build().expect("config")
}

async fn store(url: &str) -> RedisStore {
    let config = RedisConfig::builder(url).key_prefix("bench-pool").build().expect("config");
    RedisStore::connect(config).await.expect("connect")
}

async fn throughput(url: &str, jobs: usize, ttl: Duration) {
    let st = store(url).await;
    let done = Arc::new(AtomicUsize::new(0));
    let caller = Shutdown::new("bench");
    let mut nodes: Vec<(PoolNode<RedisStore>, Vec<WorkerHandle>)> = Vec::new();
    for n in 0..3 {
        let node = Pool::new(st.clone(), config("tput", &format!("n{n}"), ttl)).start().await.expect("node");
        let ws = (0..WORKERS).map(|_| node.add_worker(Quick(done.clone()), &caller)).collect();
        nodes.push((node, ws));
    }
    // Let every worker register before the clock starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while keel::pool::inspect(&st, "tput").await.map_or(0, |r| r.registered.len()) < 3 * WORKERS {
        assert!(Instant::now() < deadline, "workers did not register");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let nodes = Arc::new(nodes);
    let t0 = Instant::now();
    let mut joins = Vec::new();
    for d in 0..DISPATCHERS {
        let nodes = nodes.clone();
        joins.push(tokio::spawn(async move {
            for i in (d..jobs).step_by(DISPATCHERS) {
                nodes[i % 3].0.dispatch(&format!("job-{i}"), "x").await.expect("dispatch");
            }
        }));
    }
    for j in joins {
        j.await.expect("dispatcher");
    }
    let dispatched = t0.elapsed();
    while done.load(Ordering::Relaxed) < jobs {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = t0.elapsed();
    loop {
        let r = keel::pool::inspect(&st, "tput").await.expect("inspect");
        if r.jobs.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let completed = t0.elapsed();
    println!(
        "throughput: {jobs} jobs, 3 nodes × {WORKERS} workers, {DISPATCHERS} dispatchers: dispatched in {dispatched:?}, all handlers ran by {started:?}, all completions recorded by {completed:?}: {:.0} jobs/s end to end",
        jobs as f64 / completed.as_secs_f64()
    );
    let nodes = Arc::into_inner(nodes).expect("dispatchers done");
    for (node, ws) in nodes {
        for w in ws {
            w.stop().await;
        }
        node.stop().await;
    }
}

async fn failover(url: &str, ttl: Duration) {
    const JOBS: usize = 24;
    let running = Arc::new(Mutex::new(BTreeMap::new()));
    let count = |node: Option<&str>| {
        let r = running.lock().expect("running");
        r.values().filter(|n| node.is_none_or(|x| **n == x)).count()
    };
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let (up_tx, up_rx) = tokio::sync::oneshot::channel::<()>();
    let victim = {
        let (url, running) = (url.to_owned(), running.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let st = store(&url).await;
                let node = Pool::new(st, config("failover", "victim", ttl)).start().await.expect("node");
                let caller = Shutdown::new("bench");
                let ws: Vec<_> = (0..WORKERS)
                    .map(|_| node.add_worker(Hold { node: "victim", running: running.clone() }, &caller))
                    .collect();
                let _ = up_tx.send(());
                let _ = kill_rx.await;
                std::mem::forget((node, ws)); // no graceful stop: the runtime drops every task
            });
            drop(rt);
        })
    };
    up_rx.await.expect("victim up");
    let st = store(url).await;
    let caller = Shutdown::new("bench");
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let node = Pool::new(st.clone(), config("failover", name, ttl)).start().await.expect("node");
        let ws: Vec<_> =
            (0..WORKERS).map(|_| node.add_worker(Hold { node: name, running: running.clone() }, &caller)).collect();
        nodes.push((node, ws));
    }
    for i in 0..JOBS {
        nodes[0].0.dispatch(&format!("job-{i}"), "x").await.expect("dispatch");
    }
    while count(None) < JOBS {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let on_victim = count(Some("victim"));
    let t0 = Instant::now();
    let _ = kill_tx.send(());
    tokio::task::block_in_place(|| victim.join()).expect("victim thread");
    while count(None) < JOBS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = t0.elapsed();
    println!(
        "failover: worker_ttl {ttl:?} (sweep every {:?}): the dead node's {on_victim} jobs ran elsewhere {took:?} after its death",
        ttl / 3
    );
    for (node, ws) in nodes {
        for w in ws {
            w.stop().await;
        }
        node.stop().await;
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let jobs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let ttl = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(2000));
    let (_server, url) =
        keel_tests::RedisServer::for_bench().expect("redis-server or REDIS_URL is needed for the benchmark");
    println!("pool over {url}");
    throughput(&url, jobs, ttl).await;
    failover(&url, ttl).await;
}
