//! Lease acquire+renew round trips per second over loopback Redis: keel's `RedisStore` against
//! a bare redis-rs EVALSHA loop of the very same Lua scripts, at the same concurrency on one
//! multiplexed connection each.
//!
//! Run: `cargo run --release -p keel-tests --example bench_lease_redis [tasks] [seconds] [rounds]`
//! (spawns its own redis-server unless REDIS_URL is set).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel::store::{Acquire, RedisConfig, RedisStore, Renew, Store};
use tokio::time::Instant;

const TTL_MS: u64 = 30_000;

async fn keel_run(url: &str, prefix: &str, tasks: usize, secs: u64) -> f64 {
    let config = RedisConfig::builder(url).key_prefix(prefix).build().expect("config");
    let store = RedisStore::connect(config).await.expect("connect");
    let pairs = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut joins = Vec::new();
    for t in 0..tasks {
        let (store, pairs) = (store.clone(), pairs.clone());
        joins.push(tokio::spawn(async move {
            let (name, token) = (format!("bench-{t}"), format!("owner-{t}"));
            while Instant::now() < stop {
                let a = store.lease_acquire(&name, &token, TTL_MS, 0).await.expect("acquire");
                assert!(matches!(a, Acquire::Granted { .. }));
                let r = store.lease_renew(&name, &token, TTL_MS).await.expect("renew");
                assert!(matches!(r, Renew::Renewed { .. }));
                pairs.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for j in joins {
        j.await.expect("task");
    }
    pairs.load(Ordering::Relaxed) as f64 / secs as f64
}

async fn bare_run(url: &str, prefix: &str, tasks: usize, secs: u64) -> f64 {
    let (acquire_src, renew_src) = keel::store::redis::lease_sources();
    let (acquire, renew) = (Arc::new(redis::Script::new(&acquire_src)), Arc::new(redis::Script::new(&renew_src)));
    let client = redis::Client::open(url).expect("url");
    let conn = client.get_multiplexed_async_connection().await.expect("connect");
    let pairs = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs(secs);
    let mut joins = Vec::new();
    for t in 0..tasks {
        let (mut conn, pairs, acquire, renew) = (conn.clone(), pairs.clone(), acquire.clone(), renew.clone());
        let prefix = prefix.to_owned();
        joins.push(tokio::spawn(async move {
            let (holder, meta) = (format!("{prefix}:lease:bench-{t}"), format!("{prefix}:lease-meta:bench-{t}"));
            let token = format!("owner-{t}");
            while Instant::now() < stop {
                let a: redis::Value = acquire
                    .key(&holder)
                    .key(&meta)
                    .arg(&token)
                    .arg(TTL_MS)
                    .arg(0)
                    .invoke_async(&mut conn)
                    .await
                    .expect("acquire");
                let r: redis::Value =
                    renew.key(&holder).arg(&token).arg(TTL_MS).invoke_async(&mut conn).await.expect("renew");
                assert!(!matches!(a, redis::Value::Nil) && !matches!(r, redis::Value::Nil));
                pairs.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for j in joins {
        j.await.expect("task");
    }
    pairs.load(Ordering::Relaxed) as f64 / secs as f64
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let tasks: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let secs: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let (_server, url) =
        keel_tests::RedisServer::for_bench().expect("redis-server or REDIS_URL is needed for the benchmark");
    println!("lease acquire+renew pairs/s over {url}, {tasks} concurrent tasks, {secs} s per run, best of {rounds}");
    let (mut best_keel, mut best_bare) = (0f64, 0f64);
    for round in 0..rounds {
        // Alternate so background load on the machine hits both alike.
        let k = keel_run(&url, &format!("bench-keel-{round}"), tasks, secs).await;
        let b = bare_run(&url, &format!("bench-bare-{round}"), tasks, secs).await;
        println!("  round {round}: keel {k:>9.0}/s   bare {b:>9.0}/s");
        best_keel = best_keel.max(k);
        best_bare = best_bare.max(b);
    }
    println!(
        "keel {best_keel:.0} pairs/s ({:.0} round trips/s), bare EVALSHA {best_bare:.0} pairs/s, ratio {:.2}",
        best_keel * 2.0,
        best_keel / best_bare
    );
}
