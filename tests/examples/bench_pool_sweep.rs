//! What one sweep costs as the job map grows with retained completions (issue #13: "sweep cost
//! flat from 1 000 to 100 000 retained jobs").
//!
//! For each size N: a fresh pool whose job map holds N completion tombstones (recent, so the
//! dedup window keeps them all), one node with one idle worker, `sweep_interval` 100 ms. After a
//! warm-up (the node reads the map once when it starts), a 20 s window measures the Redis
//! commands and Redis CPU, and this process's CPU, per sweep period. The worker's beats are in
//! every window alike, so what grows with N is the sweep. The window holds two of the sweeps'
//! reconciles (the job map read whole once per half the completer's retention, 10 s here), so
//! their cost is in the figures, spread over the periods.
//!
//! Then, on the same pool (the N tombstones still retained), failover: the idle worker stops, a
//! second node (its own runtime, in a thread) runs one job with a worker that holds it; once it
//! runs, the first node gets a worker of its own and the second node dies abruptly (its runtime
//! dropped, like kill -9). Printed: the time from that death until the job runs again on the
//! first node, against `worker_ttl` + one `sweep_interval`, what it should take at most.
//!
//! Run: `cargo run --release -p keel-tests --example bench_pool_sweep [N ...]` (default 1000 10000
//! 100000; spawns its own redis-server unless REDIS_URL is set).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolNode};
use keel::shutdown::Shutdown;
use keel::store::{MapTxn, RedisStore, Store};
use keel_tests::bench::{Quick, RedisCounters, bench_store, cpu_time};
use tokio::time::Instant;

const TTL: Duration = Duration::from_secs(2);
const SWEEP: Duration = Duration::from_millis(100);
const WARM_UP: Duration = Duration::from_secs(3);
const WINDOW: Duration = Duration::from_secs(20);
/// Tombstones written per round trip while filling the map.
const FILL_BATCH: usize = 500;

/// Holds its job until stopped, noting which node started it and when.
#[derive(Clone)]
struct Hold {
    node: &'static str,
    starts: Arc<Mutex<Vec<(&'static str, Instant)>>>,
}

impl JobHandler for Hold {
    async fn run(&self, job: Job) -> JobOutcome {
        self.starts.lock().expect("starts").push((self.node, Instant::now()));
        job.stopped().await;
        JobOutcome::Abandoned
    }
}

fn config(pool: &str, node: &str) -> keel::pool::PoolConfig {
    keel::pool::PoolConfig::builder(pool, node)
        .worker_ttl(TTL)
        .sweep_interval(SWEEP)
        .dedup_window(TTL * 30)
        .build()
        .expect("config")
}

/// Time from the death of the node running the pool's one job to the job running on `node`.
async fn failover(url: &str, pool: &str, node: &PoolNode<RedisStore>) -> Duration {
    let starts = Arc::new(Mutex::new(Vec::new()));
    let started_on = |who: &str| starts.lock().expect("starts").iter().find(|(n, _)| *n == who).map(|(_, at)| *at);
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let victim = {
        let (url, pool, starts) = (url.to_owned(), pool.to_owned(), starts.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let st = bench_store(&url).await;
                let node = Pool::new(st, config(&pool, "victim")).start().await.expect("victim node");
                let w = node.add_worker(Hold { node: "victim", starts }, &Shutdown::new("bench"));
                let _ = kill_rx.await;
                std::mem::forget((node, w)); // no graceful stop: the runtime drops every task
            });
            drop(rt);
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await; // the victim's worker registered
    node.dispatch("failover", "x").await.expect("dispatch");
    while started_on("victim").is_none() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _survivor = node.add_worker(Hold { node: "survivor", starts: starts.clone() }, &Shutdown::new("bench"));
    tokio::time::sleep(Duration::from_millis(500)).await; // registered, idle
    let t0 = Instant::now();
    let _ = kill_tx.send(());
    tokio::task::block_in_place(|| victim.join()).expect("victim thread");
    loop {
        if let Some(at) = started_on("survivor") {
            return at.saturating_duration_since(t0);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn round(url: &str, n: usize) -> ((f64, f64, f64), Duration) {
    let store = bench_store(url).await;
    let pool = format!("sweep{n}");
    let now = store.time_ms().await.expect("time");
    let jobs_map = format!("keel:pool:{pool}:jobs");
    for start in (0..n).step_by(FILL_BATCH) {
        let writes = (start..(start + FILL_BATCH).min(n))
            .map(|i| (format!("d/job-{i}"), Some(format!("1|{pool}.w|{now}"))))
            .collect();
        let txn = MapTxn { guards: Vec::new(), writes };
        store.map_txns(&jobs_map, &[txn]).await.expect("fill");
    }
    let node = Pool::new(store.clone(), config(&pool, "n0")).start().await.expect("node");
    let caller = Shutdown::new("bench");
    let worker = node.add_worker(Quick(Default::default()), &caller);
    tokio::time::sleep(WARM_UP).await;
    let (redis0, cpu0) = (RedisCounters::read(url).expect("INFO"), cpu_time());
    tokio::time::sleep(WINDOW).await;
    let (redis1, cpu1) = (RedisCounters::read(url).expect("INFO"), cpu_time());
    worker.stop().await;
    let took = failover(url, &pool, &node).await;
    node.stop().await;
    let sweeps = WINDOW.as_secs_f64() / SWEEP.as_secs_f64();
    let d = redis1.since(redis0);
    let per_sweep = (
        d.commands as f64 / sweeps,
        d.cpu.as_secs_f64() * 1e3 / sweeps,
        (cpu1.saturating_sub(cpu0)).as_secs_f64() * 1e3 / sweeps,
    );
    (per_sweep, took)
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000, 100_000] } else { sizes };
    let (_server, url) =
        keel_tests::RedisServer::for_bench().expect("redis-server or REDIS_URL is needed for the benchmark");
    println!(
        "| retained tombstones | Redis commands per sweep | Redis CPU per sweep | client CPU per sweep | failover (bound: ttl {TTL:?} + sweep {SWEEP:?}) |"
    );
    println!("|---|---|---|---|---|");
    for n in sizes {
        let ((cmds, redis_ms, client_ms), took) = round(&url, n).await;
        println!("| {n} | {cmds:.1} | {redis_ms:.3} ms | {client_ms:.3} ms | {took:.2?} |");
    }
}
