//! Leader election: three owners in one process compete for one lease; the holder does fenced
//! work until it is stopped, then another takes over.
//!
//! Over the embedded store: `cargo run -p keel --example leader`.
//! Over Redis: `REDIS_URL=redis://127.0.0.1:6379 cargo run -p keel --example leader` (keys are
//! prefixed `keel-example`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use keel::MemoryStore;
use keel::lease::{LeaseConfig, LeaseOwner, LeaseState};
use keel::store::Store;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::var("REDIS_URL") {
        #[cfg(feature = "redis")]
        Ok(url) => {
            let config = keel::RedisConfig::builder(url).key_prefix("keel-example").build()?;
            println!("connecting to {}", config.redacted_url());
            run(keel::RedisStore::connect(config).await?).await
        }
        _ => run(MemoryStore::new()).await,
    }
}

async fn run<S: Store>(store: S) -> Result<(), Box<dyn std::error::Error>> {
    // A protected resource remembers the highest fence it accepted and rejects anything older.
    let highest_fence = Arc::new(AtomicU64::new(0));
    let mut owners = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        let config = LeaseConfig::builder("report-generator", name).ttl(Duration::from_millis(600)).build()?;
        let fence_seen = highest_fence.clone();
        let handle = LeaseOwner::new(store.clone(), config).start(move |guard| {
            let fence_seen = fence_seen.clone();
            async move {
                while !guard.is_lost() {
                    let previous = fence_seen.fetch_max(guard.fence(), Ordering::SeqCst);
                    assert!(guard.fence() >= previous, "a fenced resource rejects stale holders");
                    tokio::select! {
                        _ = guard.lost() => break,
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
            }
        });
        owners.push((name, handle));
    }
    // The first grant waits out one TTL of quarantine: the store cannot tell a fresh start (or a
    // Redis that never had the lease's counter) from a data loss (see docs/operations.md).
    let (leader, fence) = loop {
        if let Some((name, h)) = owners.iter().find(|(_, h)| h.fence().is_some()) {
            break (*name, h.fence().unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("{leader} leads with fence {fence}");

    let i = owners.iter().position(|(n, _)| *n == leader).unwrap_or(0);
    let (_, handle) = owners.remove(i);
    handle.stop().await?; // stops the work, then releases by compare-and-delete
    println!("{leader} stepped down");

    let next = loop {
        if let Some((name, h)) = owners.iter().find(|(_, h)| matches!(h.state(), LeaseState::Held { .. })) {
            break (*name, h.fence().unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("{} took over with fence {} (> {fence})", next.0, next.1);
    assert!(next.1 > fence);
    for (_, h) in owners {
        h.stop().await?;
    }
    Ok(())
}
