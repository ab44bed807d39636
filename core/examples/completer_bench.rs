//! In-memory figures of the completer: `cargo run --release -p keel --example completer_bench`.
//!
//! Wall-clock timing is read here only (never inside keel). Figures go to docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use keel::MemoryStore;
use keel::completer::{Completer, CompleterConfig, Completion, KindFilter, SubscriptionManager};
use keel::shutdown::Shutdown;

const N: u64 = 50_000;

async fn run(batch: usize, subscribers: usize, n: u64) -> (Duration, u64) {
    let cfg = CompleterConfig::builder("bench")
        .batch_size(batch)
        .backlog(4096.max(batch))
        .flush_interval(Duration::from_millis(1))
        .build()
        .expect("valid config");
    let completer = Arc::new(Completer::new(MemoryStore::new(), cfg));
    let subs = SubscriptionManager::new(&completer).with_buffer(8192);
    let readers: Vec<_> = (0..subscribers)
        .map(|_| {
            let mut s = subs.subscribe(KindFilter::All);
            tokio::spawn(async move {
                let mut got = 0u64;
                while s.recv().await.is_some() {
                    got += 1;
                }
                got + s.dropped()
            })
        })
        .collect();
    let caller = Shutdown::new("bench");
    subs.start(&caller).await;
    completer.start(&caller).await;
    let t = Instant::now();
    let p = completer.producer("p").expect("running");
    for i in 0..n {
        p.complete(Completion::new(format!("job-{i}"), 1, "succeeded", "")).await.expect("accepted");
    }
    drop(p);
    completer.stop().await.expect("drained");
    subs.stop().await;
    let mut delivered = 0;
    for r in readers {
        delivered += r.await.unwrap_or(0);
    }
    (t.elapsed(), delivered)
}

async fn stop_latency_full_backlog() -> Duration {
    let cfg = CompleterConfig::builder("bench").batch_size(128).backlog(4096).build().expect("valid config");
    let completer = Arc::new(Completer::new(MemoryStore::new(), cfg));
    let subs = SubscriptionManager::new(&completer).with_buffer(8192);
    let mut s = subs.subscribe(KindFilter::All);
    let reader = tokio::spawn(async move { while s.recv().await.is_some() {} });
    let caller = Shutdown::new("bench");
    subs.start(&caller).await;
    completer.start(&caller).await;
    let p = completer.producer("p").expect("running");
    let mut i = 0u64;
    while p.try_complete(Completion::new(format!("job-{i}"), 1, "succeeded", "")).is_ok() {
        i += 1;
    }
    drop(p);
    let t = Instant::now();
    completer.stop().await.expect("drained");
    subs.stop().await;
    let _ = reader.await;
    t.elapsed()
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    println!("| case | completions | wall ms | per second |");
    println!("|---|---|---|---|");
    for batch in [1, 16, 128] {
        let n = if batch == 1 { N / 5 } else { N };
        let (d, delivered) = run(batch, 1, n).await;
        assert_eq!(delivered, n);
        println!(
            "| flush, batch {batch}, 1 subscriber | {n} | {:.0} | {:.0} |",
            d.as_secs_f64() * 1e3,
            n as f64 / d.as_secs_f64()
        );
    }
    for subscribers in [1, 10] {
        let (d, delivered) = run(128, subscribers, N).await;
        assert_eq!(delivered, N * subscribers as u64);
        println!(
            "| events delivered, batch 128, {subscribers} subscribers | {delivered} | {:.0} | {:.0} |",
            d.as_secs_f64() * 1e3,
            delivered as f64 / d.as_secs_f64()
        );
    }
    let d = stop_latency_full_backlog().await;
    println!("| stop with a full backlog (4096, batch 128) | 4096 | {:.1} | - |", d.as_secs_f64() * 1e3);
}
