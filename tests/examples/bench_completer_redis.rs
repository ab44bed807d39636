//! Completer over loopback Redis: completions/s written to Redis (and handed to a subscriber)
//! for batch sizes 1, 16 and 128, with 4 producers pushing as fast as the backlog lets them.
//!
//! Run: `cargo run --release -p keel-tests --example bench_completer_redis [completions]`
//! (spawns its own redis-server unless REDIS_URL is set).

use std::time::Duration;

use keel::completer::{Completer, CompleterConfig, Completion, KindFilter, SubscriptionManager};
use keel::shutdown::Shutdown;
use keel::store::{RedisConfig, RedisStore, Store};
use tokio::time::Instant;

const PRODUCERS: usize = 4;

async fn run(store: &RedisStore, batch: usize, n: usize) {
    let cfg = CompleterConfig::builder(format!("bench-b{batch}"))
        .batch_size(batch)
        .flush_interval(Duration::from_millis(5))
        .backlog(4096)
        .event_buffer(1024)
        .build()
        .expect("config");
    let completer = Completer::new(store.clone(), cfg.clone());
    let subs = SubscriptionManager::new(&completer).with_buffer(n + 1);
    let mut sub = subs.subscribe(KindFilter::All);
    let caller = Shutdown::new("bench");
    subs.start(&caller).await;
    completer.start(&caller).await;

    let t0 = Instant::now();
    let mut joins = Vec::new();
    for p in 0..PRODUCERS {
        let producer = completer.producer(&format!("p{p}")).expect("running");
        joins.push(tokio::spawn(async move {
            for i in 0..n / PRODUCERS {
                producer
                    .complete(Completion::new(format!("job-{p}-{i}"), 1, "succeeded", "ok"))
                    .await
                    .expect("accepted");
            }
        }));
    }
    let total = (n / PRODUCERS) * PRODUCERS;
    let mut got = 0;
    while got < total {
        sub.recv().await.expect("event");
        got += 1;
    }
    let took = t0.elapsed();
    for j in joins {
        j.await.expect("producer");
    }
    completer.stop().await.expect("clean stop");
    subs.stop().await;
    let stored = store.map_snapshot(cfg.map()).await.expect("snapshot").entries.len();
    assert_eq!(stored, total, "every completion is in Redis");
    println!(
        "batch {batch:>3}: {total} completions flushed and delivered in {took:?}: {:.0} completions/s",
        total as f64 / took.as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let (_server, url) =
        keel_tests::RedisServer::for_bench().expect("redis-server or REDIS_URL is needed for the benchmark");
    let config = RedisConfig::builder(&url).key_prefix("bench-completer").build().expect("config");
    let store = RedisStore::connect(config).await.expect("connect");
    println!("completer over {url}, {PRODUCERS} producers, flush_interval 5 ms");
    for batch in [1, 16, 128] {
        run(&store, batch, n).await;
    }
}
