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
//! Run: `cargo run --release -p keel-tests --example bench_pool_sweep [N ...]` (default 1000 10000
//! 100000; spawns its own redis-server unless REDIS_URL is set).

use std::time::Duration;

use keel::pool::Pool;
use keel::shutdown::Shutdown;
use keel::store::{MapTxn, Store};
use keel_tests::bench::{Quick, RedisCounters, bench_store, cpu_time};

const TTL: Duration = Duration::from_secs(2);
const SWEEP: Duration = Duration::from_millis(100);
const WARM_UP: Duration = Duration::from_secs(3);
const WINDOW: Duration = Duration::from_secs(20);
/// Tombstones written per round trip while filling the map.
const FILL_BATCH: usize = 500;

async fn round(url: &str, n: usize) -> (f64, f64, f64) {
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
    let cfg = keel::pool::PoolConfig::builder(&pool, "n0")
        .worker_ttl(TTL)
        .sweep_interval(SWEEP)
        .dedup_window(TTL * 30)
        .build()
        .expect("config");
    let node = Pool::new(store.clone(), cfg).start().await.expect("node");
    let caller = Shutdown::new("bench");
    let _worker = node.add_worker(Quick(Default::default()), &caller);
    tokio::time::sleep(WARM_UP).await;
    let (redis0, cpu0) = (RedisCounters::read(url).expect("INFO"), cpu_time());
    tokio::time::sleep(WINDOW).await;
    let (redis1, cpu1) = (RedisCounters::read(url).expect("INFO"), cpu_time());
    node.stop().await;
    let sweeps = WINDOW.as_secs_f64() / SWEEP.as_secs_f64();
    let d = redis1.since(redis0);
    (
        d.commands as f64 / sweeps,
        d.cpu.as_secs_f64() * 1e3 / sweeps,
        (cpu1.saturating_sub(cpu0)).as_secs_f64() * 1e3 / sweeps,
    )
}

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() { vec![1_000, 10_000, 100_000] } else { sizes };
    let (_server, url) =
        keel_tests::RedisServer::for_bench().expect("redis-server or REDIS_URL is needed for the benchmark");
    println!("| retained tombstones | Redis commands per sweep | Redis CPU per sweep | client CPU per sweep |");
    println!("|---|---|---|---|");
    for n in sizes {
        let (cmds, redis_ms, client_ms) = round(&url, n).await;
        println!("| {n} | {cmds:.1} | {redis_ms:.3} ms | {client_ms:.3} ms |");
    }
}
