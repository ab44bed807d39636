//! Worker pool over loopback Redis, 3 nodes × 4 workers in one process:
//! - end-to-end jobs/s: dispatch → start → complete, until the pool holds no job;
//! - failover: time from a node's abrupt death (its runtime dropped) to its jobs running on the
//!   other nodes.
//!
//! - with `metrics [rounds]` as the third argument instead: interleaved rounds with keel's metrics
//!   recorded into a Prometheus recorder and not recorded, each with a dispatch-only node that
//!   follows the pool-wide completion feed: jobs/s, the feed's delivery latency (handler done →
//!   the dispatch-only node received the completion, p50/p99) and this process's CPU per job.
//!
//! Run: `cargo run --release -p keel-tests --example bench_pool_redis [jobs] [worker_ttl_ms] [metrics [rounds]]`
//! (spawns its own redis-server unless REDIS_URL is set).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::pool::{Job, JobHandler, JobOutcome, Pool};
use keel::shutdown::Shutdown;
use keel_tests::bench::{BenchPool, DISPATCHERS, NODES, Quick, WORKERS, bench_store, cpu_time, pool_config};
use tokio::time::Instant;

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

async fn throughput(url: &str, jobs: usize, ttl: Duration) {
    let done = Arc::new(AtomicUsize::new(0));
    // Every worker registers before the clock starts.
    let pool = BenchPool::start(url, "tput", ttl, || Quick(done.clone())).await;
    let t0 = Instant::now();
    for j in pool.dispatch(jobs) {
        j.await.expect("dispatcher");
    }
    let dispatched = t0.elapsed();
    while done.load(Ordering::Relaxed) < jobs {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let started = t0.elapsed();
    pool.drained().await;
    let completed = t0.elapsed();
    println!(
        "throughput: {jobs} jobs, {NODES} nodes × {WORKERS} workers, {DISPATCHERS} dispatchers: dispatched in {dispatched:?}, all handlers ran by {started:?}, all completions recorded by {completed:?}: {:.0} jobs/s end to end",
        jobs as f64 / completed.as_secs_f64()
    );
    pool.stop().await;
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
                let st = bench_store(&url).await;
                let node = Pool::new(st, pool_config("failover", "victim", ttl)).start().await.expect("node");
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
    let st = bench_store(url).await;
    let caller = Shutdown::new("bench");
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let node = Pool::new(st.clone(), pool_config("failover", name, ttl)).start().await.expect("node");
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

/// A recorder that can be switched off: parts started while it is off get no-op handles (keel
/// registers its handles once, when a part starts), so rounds with and without metrics recording
/// alternate in one process.
struct Switch {
    inner: metrics_exporter_prometheus::PrometheusRecorder,
    on: std::sync::atomic::AtomicBool,
}

impl metrics::Recorder for Switch {
    fn describe_counter(&self, k: metrics::KeyName, u: Option<metrics::Unit>, d: metrics::SharedString) {
        self.inner.describe_counter(k, u, d)
    }
    fn describe_gauge(&self, k: metrics::KeyName, u: Option<metrics::Unit>, d: metrics::SharedString) {
        self.inner.describe_gauge(k, u, d)
    }
    fn describe_histogram(&self, k: metrics::KeyName, u: Option<metrics::Unit>, d: metrics::SharedString) {
        self.inner.describe_histogram(k, u, d)
    }
    fn register_counter(&self, key: &metrics::Key, m: &metrics::Metadata<'_>) -> metrics::Counter {
        if self.on.load(Ordering::Relaxed) { self.inner.register_counter(key, m) } else { metrics::Counter::noop() }
    }
    fn register_gauge(&self, key: &metrics::Key, m: &metrics::Metadata<'_>) -> metrics::Gauge {
        if self.on.load(Ordering::Relaxed) { self.inner.register_gauge(key, m) } else { metrics::Gauge::noop() }
    }
    fn register_histogram(&self, key: &metrics::Key, m: &metrics::Metadata<'_>) -> metrics::Histogram {
        if self.on.load(Ordering::Relaxed) { self.inner.register_histogram(key, m) } else { metrics::Histogram::noop() }
    }
}

/// Completes at once and notes when (for the feed's delivery latency).
struct Noted(Arc<Mutex<BTreeMap<String, Instant>>>);

impl JobHandler for Noted {
    async fn run(&self, job: Job) -> JobOutcome {
        self.0.lock().expect("noted").insert(job.key().to_owned(), Instant::now());
        JobOutcome::Completed
    }
}

struct Round {
    jobs_per_s: f64,
    p50: Duration,
    p99: Duration,
    cpu_per_job: Duration,
}

async fn metrics_round(url: &str, jobs: usize, ttl: Duration, pool: &str) -> Round {
    let noted = Arc::new(Mutex::new(BTreeMap::new()));
    let nodes = BenchPool::start(url, pool, ttl, || Noted(noted.clone())).await;
    let api = Pool::new(bench_store(url).await, pool_config(pool, "api", ttl)).start().await.expect("api node");
    let mut feed = api.completions().expect("feed");
    let (cpu0, t0) = (cpu_time(), Instant::now());
    let joins = nodes.dispatch(jobs);
    let mut latencies = Vec::with_capacity(jobs);
    while latencies.len() < jobs {
        let c = tokio::time::timeout(Duration::from_secs(30), feed.recv()).await.expect("feed stalled").expect("feed");
        let done = noted.lock().expect("noted").get(&c.job).copied();
        latencies.push(done.map_or(Duration::ZERO, |d| d.elapsed()));
    }
    let took = t0.elapsed();
    let cpu = cpu_time().saturating_sub(cpu0);
    for j in joins {
        j.await.expect("dispatcher");
    }
    assert_eq!(feed.dropped(), 0, "the feed kept up");
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    api.stop().await;
    nodes.stop().await;
    Round { jobs_per_s: jobs as f64 / took.as_secs_f64(), p50: at(0.5), p99: at(0.99), cpu_per_job: cpu / jobs as u32 }
}

/// The recording path alone, independent of the machine's load: the CPU time of recording one
/// job's events (dispatched, acked, started, completed) through `keel::metrics::record`, into the
/// Prometheus recorder and into none.
fn record_cost(switch: &Switch) -> [Duration; 2] {
    use keel::observe::{Event, PoolEvent};
    const N: u32 = 200_000;
    let mut out = [Duration::ZERO; 2];
    for on in [false, true] {
        switch.on.store(on, Ordering::Relaxed);
        let t0 = std::time::Instant::now();
        for i in 0..N {
            let (job, worker) = (job_text(i), "n0.1.1".into());
            keel::metrics::record(&Event::Pool(PoolEvent::Dispatched { job, worker, attempt: 1, now_ms: 7 }));
            let (job, worker) = (job_text(i), "n0.1.1".into());
            keel::metrics::record(&Event::Pool(PoolEvent::Acked { job, worker, attempt: 1 }));
            let (job, worker) = (job_text(i), "n0.1.1".into());
            keel::metrics::record(&Event::Pool(PoolEvent::Started { job, worker, attempt: 1 }));
            let (job, worker) = (job_text(i), "n0.1.1".into());
            keel::metrics::record(&Event::Pool(PoolEvent::Completed { job, worker, attempt: 1 }));
        }
        out[usize::from(on)] = t0.elapsed() / N;
    }
    out
}

fn job_text(i: u32) -> keel::observe::Text<'static> {
    if i.is_multiple_of(2) { "job-a".into() } else { "job-b".into() }
}

async fn metrics_rounds(url: &str, jobs: usize, ttl: Duration, rounds: usize, switch: &'static Switch) {
    let [off, on] = record_cost(switch);
    println!("recording one job's 4 pool events: {off:?} without a recorder, {on:?} into Prometheus");
    let mut results: [Vec<Round>; 2] = [Vec::new(), Vec::new()];
    for r in 0..rounds * 2 {
        // Interleaved (off, on, on, off, off, on, …) so a drift of the machine's load hits both.
        let on = (r % 4 == 1) || (r % 4 == 2);
        // BENCH_AA=1: group "on" does not record either (an A/A run: the noise of the machine).
        switch.on.store(on && std::env::var_os("BENCH_AA").is_none(), Ordering::Relaxed);
        let round = metrics_round(url, jobs, ttl, &format!("m{r}")).await;
        println!(
            "round {r:2} metrics {:3}: {:6.0} jobs/s, feed latency p50 {:?} p99 {:?}, cpu {:?}/job",
            if on { "on" } else { "off" },
            round.jobs_per_s,
            round.p50,
            round.p99,
            round.cpu_per_job
        );
        results[usize::from(on)].push(round);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    let mut summary = Vec::new();
    for (on, rs) in results.iter().enumerate() {
        let mut tput: Vec<f64> = rs.iter().map(|r| r.jobs_per_s).collect();
        let mut p50: Vec<f64> = rs.iter().map(|r| r.p50.as_secs_f64() * 1e3).collect();
        let mut p99: Vec<f64> = rs.iter().map(|r| r.p99.as_secs_f64() * 1e3).collect();
        let mut cpu: Vec<f64> = rs.iter().map(|r| r.cpu_per_job.as_secs_f64() * 1e6).collect();
        let m = (median(&mut tput), median(&mut p50), median(&mut p99), median(&mut cpu));
        println!(
            "metrics {:3} (median of {}): {:.0} jobs/s, feed p50 {:.2} ms, p99 {:.2} ms, {:.0} µs CPU/job",
            if on == 1 { "on" } else { "off" },
            rs.len(),
            m.0,
            m.1,
            m.2,
            m.3
        );
        summary.push(m);
    }
    println!(
        "metrics cost: throughput {:+.1} %, CPU per job {:+.1} % (medians); recording alone {:.2} % of the CPU per job",
        (summary[1].0 / summary[0].0 - 1.0) * 100.0,
        (summary[1].3 / summary[0].3 - 1.0) * 100.0,
        on.saturating_sub(off).as_secs_f64() * 1e6 / summary[0].3 * 100.0
    );
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let jobs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5000);
    let ttl = Duration::from_millis(args.next().and_then(|a| a.parse().ok()).unwrap_or(2000));
    let mode = args.next();
    let (_server, url) =
        keel_tests::RedisServer::for_bench().expect("redis-server or REDIS_URL is needed for the benchmark");
    println!("pool over {url}");
    if mode.as_deref() == Some("metrics") {
        let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
        let inner = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let switch: &'static Switch = Box::leak(Box::new(Switch { inner, on: false.into() }));
        metrics::set_global_recorder(switch).expect("the only recorder");
        metrics_rounds(&url, jobs, ttl, rounds, switch).await;
        return;
    }
    throughput(&url, jobs, ttl).await;
    failover(&url, ttl).await;
}
