//! Micro benchmark of the replicated map over the embedded store (one thread, no network):
//! `set_and_wait` latency with 1 and 3 replicas, and change fan-out throughput to 3 replicas.
//!
//! Run: `cargo run -p keel --release --example rmap_bench [calls] [changes]`
//! Figures measure keel's own overhead (apply loop, waiter registry, scheduling), not a store.

use std::time::Duration;

use keel::MemoryStore;
use keel::rmap::{ReplicatedMap, RmapConfig};
use keel::store::{MapWrite, Store};
use tokio::time::Instant;

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or_default()
}

async fn latency(replicas: usize, calls: usize) -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    let mut maps = Vec::new();
    for _ in 0..replicas {
        let m = ReplicatedMap::start(store.clone(), RmapConfig::builder("bench").build()?);
        m.joined().await?;
        maps.push(m);
    }
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls {
        let t = Instant::now();
        maps[0].set_and_wait(&format!("k{}", i % 1024), "v").await?;
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "set_and_wait, {replicas} replica(s), {calls} calls: p50 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
        pct(&samples, 0.5).as_secs_f64() * 1e6,
        pct(&samples, 0.99).as_secs_f64() * 1e6,
        samples.last().copied().unwrap_or_default().as_secs_f64() * 1e6
    );
    for m in maps {
        m.stop().await;
    }
    Ok(())
}

async fn fan_out(changes: u64) -> Result<(), Box<dyn std::error::Error>> {
    let store = MemoryStore::new();
    let mut maps = Vec::new();
    for _ in 0..3 {
        let m = ReplicatedMap::start(store.clone(), RmapConfig::builder("fan").build()?);
        m.joined().await?;
        maps.push(m);
    }
    let t = Instant::now();
    let mut last = 0;
    for i in 0..changes {
        last = store.map_write("fan", &format!("k{}", i % 4096), MapWrite::Set(i.to_string())).await?.rev;
        // Keep the backlog well under the feed's 4096-change buffer: measure steady-state
        // application, not resyncs after lagging (those are counted below).
        while maps.iter().any(|m| last.saturating_sub(m.revision()) > 1024) {
            tokio::task::yield_now().await;
        }
    }
    while maps.iter().any(|m| m.revision() < last) {
        tokio::task::yield_now().await;
    }
    let wall = t.elapsed().as_secs_f64();
    let resyncs: u64 = maps.iter().map(|m| m.syncs() - 1).sum();
    println!(
        "fan-out: {changes} changes to 3 replicas in {:.3} s: {:.0} changes/s applied (all replicas), {resyncs} resyncs",
        wall,
        (3 * changes) as f64 / wall
    );
    for m in maps {
        m.stop().await;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let calls = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let changes = args.next().and_then(|a| a.parse().ok()).unwrap_or(200_000);
    latency(1, calls).await?;
    latency(3, calls).await?;
    fan_out(changes).await?;
    Ok(())
}
