//! A worker-pool service: three nodes with four workers each share one store; jobs are dispatched
//! from every node, run once each, and complete. Then one node stops gracefully with jobs still
//! running: they are handed back and finish elsewhere.
//!
//! Prints the end-to-end throughput (dispatch → start → complete). Run it over the embedded store:
//! `cargo run --release -p keel --example pool_service`, or over Redis:
//! `REDIS_URL=redis://127.0.0.1:6379 cargo run --release -p keel --example pool_service`.
//! With `METRICS=1` it installs a Prometheus recorder first and prints keel's pool metrics at the
//! end (a service would serve `handle.render()` on its `/metrics` endpoint).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::MemoryStore;
use keel::clock::{Clock, TokioClock};
use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig};
use keel::shutdown::Shutdown;
use keel::store::Store;
use tokio::sync::mpsc;

/// Sleeps for the payload's milliseconds (0: done at once) and reports who ran what.
struct Sleeper {
    done: mpsc::UnboundedSender<(String, String)>,
}

impl JobHandler for Sleeper {
    async fn run(&self, job: Job) -> JobOutcome {
        let ms: u64 = job.payload().parse().unwrap_or(0);
        if ms > 0 {
            tokio::select! {
                _ = job.stopped() => return JobOutcome::Abandoned,
                _ = tokio::time::sleep(Duration::from_millis(ms)) => {}
            }
        }
        let _ = self.done.send((job.key().to_owned(), job.worker().to_owned()));
        JobOutcome::Completed
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Before any node starts: each node registers its metric handles once, at its start.
    let metrics = match std::env::var_os("METRICS") {
        Some(_) => Some(metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?),
        None => None,
    };
    let r = run_on_store().await;
    if let Some(handle) = metrics {
        println!("\nkeel pool metrics (Prometheus text format):");
        handle.render().lines().filter(|l| l.starts_with("keel_")).for_each(|l| println!("  {l}"));
    }
    r
}

async fn run_on_store() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::var("REDIS_URL") {
        #[cfg(feature = "redis")]
        Ok(url) => {
            // A prefix of its own per run: job keys are added once, and a rerun must not collide.
            let prefix = format!("keel-example-pool-{}", std::process::id());
            let config = keel::RedisConfig::builder(url).key_prefix(prefix).build()?;
            run(keel::RedisStore::connect(config).await?).await
        }
        _ => run(MemoryStore::new()).await,
    }
}

async fn run<S: Store>(store: S) -> Result<(), Box<dyn std::error::Error>> {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut nodes = Vec::new();
    let mut workers = Vec::new();
    for name in ["node-a", "node-b", "node-c"] {
        let config = PoolConfig::builder("thumbnails", name).worker_ttl(Duration::from_secs(2)).build()?;
        let node = Pool::new(store.clone(), config).start().await?;
        let request = Shutdown::new("admin-request");
        for _ in 0..4 {
            workers.push(node.add_worker(Sleeper { done: tx.clone() }, &request));
        }
        request.cancel(); // the request that created the workers is over; they keep running
        nodes.push(node);
    }
    tokio::time::sleep(Duration::from_millis(50)).await; // let the workers register

    // Any node, whatever runs where, can follow the pool's completions or wait for one job.
    let mut feed = nodes[1].completions()?;
    // Throughput: every job dispatched once, from alternating nodes, run once, completed.
    const JOBS: usize = 1000;
    let clock = TokioClock;
    let t0 = clock.now();
    for i in 0..JOBS {
        nodes[i % 3].dispatch(&format!("thumb-{i}"), "0").await?;
        // The embedded store never suspends: yield so workers run and keep beating meanwhile.
        tokio::task::yield_now().await;
    }
    let mut ran: BTreeMap<String, String> = BTreeMap::new();
    while ran.len() < JOBS {
        let Ok(Some((job, worker))) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await else {
            let r = keel::pool::inspect(&store, "thumbnails").await?;
            return Err(format!(
                "stuck after {} jobs: {} in the store, e.g. {:?}",
                ran.len(),
                r.jobs.len(),
                r.jobs.iter().next()
            )
            .into());
        };
        assert!(ran.insert(job, worker).is_none(), "a job ran twice");
    }
    let secs = (clock.now() - t0).as_secs_f64();
    println!(
        "{JOBS} jobs dispatched → started → completed on 3 nodes × 4 workers in {secs:.3} s: {:.0} jobs/s",
        JOBS as f64 / secs
    );
    let mut seen = 0;
    while seen < JOBS {
        let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(10), feed.recv()).await else { break };
        seen += 1;
    }
    println!("node-b's pool-wide completion feed saw {seen} of {JOBS} completions ({} dropped)", feed.dropped());
    let done = nodes[2].dispatch_and_wait("one-more", "0").await?;
    println!("dispatch_and_wait: {} completed by {} (attempt {})", done.job, done.worker, done.attempt);

    // Graceful stop with work in flight: node-c's running jobs are handed back and finish elsewhere.
    for i in 0..24 {
        nodes[0].dispatch(&format!("slow-{i}"), "300").await?;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let node_c = nodes.pop().ok_or("three nodes")?;
    let c_workers: Vec<String> = workers.drain(8..).map(|w| w.id()).collect();
    let t1 = clock.now();
    node_c.stop().await;
    println!("node-c stopped (drain deadline 2 s) in {:.3} s", (clock.now() - t1).as_secs_f64());
    let finished = Arc::new(Mutex::new(BTreeMap::new()));
    while finished.lock().map(|f| f.len()).unwrap_or(0) < 24 {
        let Some((job, worker)) = rx.recv().await else { break };
        if job.starts_with("slow-") {
            finished.lock().map_err(|_| "poisoned")?.insert(job, worker);
        }
    }
    let on_c = finished.lock().map_err(|_| "poisoned")?.values().filter(|w| c_workers.contains(w)).count();
    println!("24 slow jobs completed, {on_c} of them by node-c before it left, the rest on node-a/node-b");
    for w in workers {
        w.stop().await;
    }
    for n in nodes {
        n.stop().await;
    }
    Ok(())
}
