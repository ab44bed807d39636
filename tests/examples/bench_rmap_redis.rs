//! Replicated map over loopback Redis: `set_and_wait` latency (p50/p99) with 1 and 3 replicas
//! running, and change fan-out (changes/s applied by every one of 3 replicas while 16 tasks
//! write through the store).
//!
//! Run: `cargo run --release -p keel-tests --example bench_rmap_redis [set_and_waits] [fanout_writes]`
//! (spawns its own redis-server unless REDIS_URL is set).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel::rmap::{ReplicatedMap, RmapConfig};
use keel::store::{MapWrite, RedisConfig, RedisStore, Store};
use tokio::time::Instant;

async fn replicas(store: &RedisStore, map: &str, n: usize) -> Vec<ReplicatedMap<RedisStore>> {
    let mut maps = Vec::new();
    for _ in 0..n {
        let cfg = RmapConfig::builder(map).build().expect("config");
        let m = ReplicatedMap::start(store.clone(), cfg);
        m.joined().await.expect("joined");
        maps.push(m);
    }
    maps
}

fn pct(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

async fn set_and_wait_latency(store: &RedisStore, n_replicas: usize, n: usize) {
    let map = format!("bench-saw-{n_replicas}");
    let maps = replicas(store, &map, n_replicas).await;
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        maps[0].set_and_wait(&format!("k{}", i % 100), &format!("v{i}")).await.expect("set_and_wait");
        lat.push(t.elapsed());
    }
    lat.sort();
    let mean = lat.iter().sum::<Duration>() / n as u32;
    println!(
        "set_and_wait, {n_replicas} replica(s), {n} sequential calls: p50 {:?}  p99 {:?}  mean {mean:?}  max {:?}",
        pct(&lat, 50),
        pct(&lat, 99),
        lat[n - 1]
    );
    for m in maps {
        m.stop().await;
    }
}

async fn fan_out(store: &RedisStore, writes: u64) {
    const WRITERS: u64 = 16;
    let maps = replicas(store, "bench-fanout", 3).await;
    let syncs_before: Vec<u64> = maps.iter().map(|m| m.syncs()).collect();
    let top = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let mut joins = Vec::new();
    for w in 0..WRITERS {
        let (store, top) = (store.clone(), top.clone());
        joins.push(tokio::spawn(async move {
            for i in 0..writes / WRITERS {
                let out = store
                    .map_write("bench-fanout", &format!("k{}", (w * 1000 + i) % 500), MapWrite::Set(format!("{w}/{i}")))
                    .await
                    .expect("write");
                top.fetch_max(out.rev, Ordering::Relaxed);
            }
        }));
    }
    for j in joins {
        j.await.expect("writer");
    }
    let written = t0.elapsed();
    let target = top.load(Ordering::Relaxed);
    while maps.iter().any(|m| m.revision() < target) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let applied = t0.elapsed();
    let n = (writes / WRITERS) * WRITERS;
    let resyncs: Vec<u64> = maps.iter().zip(&syncs_before).map(|(m, b)| m.syncs() - b).collect();
    println!(
        "fan-out: {n} changes by {WRITERS} writers written in {written:?} ({:.0}/s); applied by all 3 replicas in {applied:?}: {:.0} changes/s per replica ({:.0}/s total), resyncs {resyncs:?}",
        n as f64 / written.as_secs_f64(),
        n as f64 / applied.as_secs_f64(),
        3.0 * n as f64 / applied.as_secs_f64(),
    );
    for m in maps {
        m.stop().await;
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2000);
    let writes: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(50_000);
    let (_server, url) =
        keel_tests::RedisServer::for_bench().expect("redis-server or REDIS_URL is needed for the benchmark");
    let config = RedisConfig::builder(&url).key_prefix("bench-rmap").build().expect("config");
    let store = RedisStore::connect(config).await.expect("connect");
    println!("replicated map over {url}");
    set_and_wait_latency(&store, 1, n).await;
    set_and_wait_latency(&store, 3, n).await;
    fan_out(&store, writes).await;
}
