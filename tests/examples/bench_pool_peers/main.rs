//! keel's pool side by side with the job queues people pick instead, over Redis on this machine:
//! apalis 1.0 + apalis-redis (in this process) and, when `node` is installed, BullMQ (a Node
//! process running `bullmq/bench.mjs`; its npm package is installed here on first use).
//!
//! Every system gets the same work: `jobs` no-op jobs pushed one at a time by 32 concurrent
//! producers, consumed with a concurrency of 12 (keel: 3 nodes × 4 workers; apalis: one worker
//! with `concurrency(12)`; BullMQ: one `Worker` with `concurrency: 12`), each run on a fresh
//! redis-server of its own (loopback, no persistence). The clock runs from the first push until
//! the system has recorded every completion. Rounds interleave the systems so a drift of the
//! machine's load hits all of them; the figures per system are medians over the rounds:
//! - jobs/s (noisy on a shared machine);
//! - client CPU per job: this process's CPU (keel, apalis) or the Node process's own
//!   `process.cpuUsage()` (BullMQ) over the timed window;
//! - Redis CPU per job (`used_cpu_sys + used_cpu_user`) and Redis commands per job
//!   (`total_commands_processed`), from `INFO` before and after the window;
//! - keel only: the whole-map snapshots its nodes read in the window to rebuild a job table or a
//!   keep-alive replica (none in the steady state), counted from keel's debug events.
//!
//! The last line is `ratio keel/apalis=<x> keel/bullmq=<y>`: medians of the jobs/s ratios of the
//! rounds both systems completed (`n/a` for a peer that completed none). A round in which a
//! system records no completion for [`ROUND_STALL`] is reported as stalled and left out (the
//! system runs again in the next round); one that fails otherwise drops the system.
//!
//! Run: `cargo run --release -p keel-tests --example bench_pool_peers -- [--jobs N] [--rounds R]
//! [--phases] [--only keel,apalis,bullmq]` (`--phases` adds one keel round, not in the figures,
//! under `MONITOR`: keel's Redis commands per job by command and by pool phase; `--only` runs
//! just the systems named, e.g. to profile keel or to compare two builds of it).

mod phases;
mod snapshots;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use apalis::prelude::{BackendExt, BoxDynError, Data, TaskSink, WorkerBuilder, WorkerBuilderExt, WorkerContext};
use apalis_redis::RedisStorage;
use keel_tests::RedisServer;
use keel_tests::bench::{BenchPool, DISPATCHERS, NODES, Quick, RedisCounters, WORKERS, command_stats, cpu_time};
use snapshots::Snapshots;
use tokio::time::Instant;

/// The concurrency every system runs with (keel's 3 nodes × 4 workers).
const CONCURRENCY: usize = NODES * WORKERS;
/// keel's worker_ttl in the benchmark (its default pool config otherwise).
const KEEL_WORKER_TTL: Duration = Duration::from_secs(2);
/// apalis's idle poll interval (its worker sleeps that long when a fetch finds nothing).
const APALIS_POLL: Duration = Duration::from_millis(10);
/// How long apalis's worker may take to stop gracefully.
const APALIS_STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one system may take for one round before the benchmark gives up on it.
const ROUND_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a round may go without a single completion before it is reported as stalled (an
/// apalis round once made no progress for over four minutes, using no CPU): far above any
/// pause of a working system on this machine, far below [`ROUND_TIMEOUT`].
const ROUND_STALL: Duration = Duration::from_secs(60);

/// A round that ended without its figures.
#[derive(Debug)]
enum RoundError {
    /// No completion for [`ROUND_STALL`]: `done` of the jobs were completed.
    Stalled { done: usize },
    /// Anything else (the system cannot run here).
    Failed(String),
}

impl From<String> for RoundError {
    fn from(e: String) -> Self {
        RoundError::Failed(e)
    }
}

/// Wait until `done` reaches `jobs`, or report a stall once it stops moving for [`ROUND_STALL`].
async fn completions(done: &AtomicUsize, jobs: usize) -> Result<(), RoundError> {
    let (mut seen, mut since) = (done.load(Ordering::Relaxed), Instant::now());
    loop {
        let now = done.load(Ordering::Relaxed);
        if now >= jobs {
            return Ok(());
        }
        if now != seen {
            (seen, since) = (now, Instant::now());
        } else if since.elapsed() >= ROUND_STALL {
            return Err(RoundError::Stalled { done: now });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// What each system promises, printed next to its figures.
const GUARANTEES: [(&str, &str); 3] = [
    (
        "keel",
        "at-least-once; every attempt fenced (a stale worker's writes are refused); dead workers' jobs requeued by a cleanup under a compare-and-set lock",
    ),
    ("apalis", "at-least-once; heartbeat per worker, a dead worker's jobs re-enqueued; no fencing of a stale worker"),
    ("bullmq", "at-least-once; a lock per active job with stall detection and retry; no fencing of a stale worker"),
];

/// One system's figures in one round.
#[derive(Clone, Copy, Debug)]
struct Figures {
    jobs_per_s: f64,
    client_cpu: Duration,
    redis: RedisCounters,
    /// keel's whole-map snapshots in the window (`None` for the peers).
    snapshots: Option<Snapshots>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum System {
    Keel,
    Apalis,
    Bullmq,
}

impl System {
    fn name(self) -> &'static str {
        match self {
            System::Keel => "keel",
            System::Apalis => "apalis",
            System::Bullmq => "bullmq",
        }
    }
}

struct Args {
    jobs: usize,
    rounds: usize,
    phases: bool,
    /// Run only these systems (`--only keel,bullmq`; profiling one system, A/B runs of keel).
    only: Option<Vec<System>>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { jobs: 20_000, rounds: 3, phases: false, only: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse().ok().filter(|n| *n > 0).ok_or(format!("{name}: expected a positive integer, got {v:?}"))
        };
        match flag.as_str() {
            "--jobs" => a.jobs = number("--jobs")?,
            "--rounds" => a.rounds = number("--rounds")?,
            "--phases" => a.phases = true,
            "--only" => {
                let v = it.next().ok_or("--only needs a value")?;
                let mut systems = Vec::new();
                for name in v.split(',') {
                    let s = [System::Keel, System::Apalis, System::Bullmq]
                        .into_iter()
                        .find(|s| s.name() == name)
                        .ok_or(format!("--only: unknown system {name:?} (keel, apalis, bullmq)"))?;
                    systems.push(s);
                }
                a.only = Some(systems);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

/// A fresh redis-server for one system's round (dropped, hence killed, after it).
fn fresh_redis() -> Result<(RedisServer, String), String> {
    let server = RedisServer::start("bench_pool_peers")
        .ok_or("redis-server not found: install it (apt-get install -y redis-server)")?;
    let url = server.url();
    Ok((server, url))
}

fn counters(url: &str) -> Result<RedisCounters, String> {
    RedisCounters::read(url).map_err(|e| format!("INFO from {url}: {e}"))
}

/// keel: `BenchPool` (the pool `bench_pool_redis` measures). With `phases`, its Redis commands
/// are also counted by command (`INFO commandstats`) and by phase (`MONITOR`) and printed.
async fn keel_round(server: &RedisServer, jobs: usize, phases: bool) -> Result<Figures, RoundError> {
    let url = server.url();
    let done = Arc::new(AtomicUsize::new(0));
    let pool = BenchPool::start(&url, "peers", KEEL_WORKER_TTL, || Quick(done.clone())).await;
    let stats0 = if phases { command_stats(&url).map_err(|e| e.to_string())? } else { Vec::new() };
    let monitor =
        if phases { Some(phases::Monitor::start(server.port()).map_err(|e| format!("MONITOR: {e}"))?) } else { None };
    let (before, cpu0, snaps0, t0) = (counters(&url)?, cpu_time(), Snapshots::now(), Instant::now());
    let dispatchers = pool.dispatch(jobs);
    for d in dispatchers {
        d.await.map_err(|e| format!("keel dispatcher: {e}"))?;
    }
    completions(&done, jobs).await?;
    pool.drained().await;
    let took = t0.elapsed();
    let (cpu, snaps, after) = (cpu_time().saturating_sub(cpu0), Snapshots::now().since(snaps0), counters(&url)?);
    if let Some(m) = monitor {
        let tally = m.finish();
        print_command_stats(&stats0, &command_stats(&url).map_err(|e| e.to_string())?, jobs);
        phases::print(&tally, jobs);
    }
    pool.stop().await;
    Ok(Figures {
        jobs_per_s: jobs as f64 / took.as_secs_f64(),
        client_cpu: cpu,
        redis: after.since(before),
        snapshots: Some(snaps),
    })
}

/// Redis calls per job by command over a keel round (`INFO commandstats` after minus before).
fn print_command_stats(before: &[(String, u64)], after: &[(String, u64)], jobs: usize) {
    let mut rows: Vec<(u64, &str)> = after
        .iter()
        .map(|(name, calls)| {
            let was = before.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c);
            (calls.saturating_sub(was), name.as_str())
        })
        .filter(|(n, _)| *n > 0)
        .collect();
    rows.sort_by(|a, b| b.cmp(a));
    let per_job: Vec<String> = rows.iter().map(|(n, name)| format!("{name} {:.2}", *n as f64 / jobs as f64)).collect();
    println!("  keel commands per job by command: {}", per_job.join(", "));
}

/// No-op apalis handler: counts the job.
async fn apalis_noop(_job: u64, done: Data<Arc<AtomicUsize>>) -> Result<(), BoxDynError> {
    done.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// apalis 1.0 + apalis-redis with their defaults (batched fetches of 10, results kept).
async fn apalis_round(url: &str, jobs: usize) -> Result<Figures, RoundError> {
    let conn = apalis_redis::connect(url).await.map_err(|e| format!("apalis connect: {e}"))?;
    let config = apalis_redis::Config::default().queue("peers");
    let done_set = config.done_jobs_set();
    // apalis 1.0 pushes every job into its scheduled set (run at "now"), promoted by the next
    // fetch; a worker whose fetch came back empty waits for a wake-up, by default its 30 s
    // heartbeat. A poll strategy is how apalis is meant to be run: an interval wake-up.
    let storage = RedisStorage::<u64>::new(conn.clone()).with_config(config).poll_with_interval(APALIS_POLL);
    let mut conn = conn;
    let done = Arc::new(AtomicUsize::new(0));
    let worker = WorkerBuilder::new("peers")
        .backend(storage.clone())
        .concurrency(CONCURRENCY)
        .data(done.clone())
        .build(apalis_noop);
    let stop = Arc::new(tokio::sync::Notify::new());
    let run = {
        let stop = stop.clone();
        tokio::spawn(worker.run_with_ctx(move |ctx: WorkerContext| {
            let stop = stop.clone();
            async move {
                stop.notified().await;
                ctx.stop()
            }
        }))
    };
    // Let the worker register and start polling before the clock starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (before, cpu0, t0) = (counters(url)?, cpu_time(), Instant::now());
    let producers: Vec<_> = (0..DISPATCHERS)
        .map(|p| {
            let mut storage = storage.clone();
            tokio::spawn(async move {
                for i in (p..jobs).step_by(DISPATCHERS) {
                    storage.push(i as u64).await.map_err(|e| format!("apalis push: {e}"))?;
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    let waited = async {
        for p in producers {
            p.await.map_err(|e| format!("apalis producer: {e}"))??;
        }
        completions(&done, jobs).await?;
        // Every completion recorded: the done set holds every job (a stall is reported here too).
        let recorded = AtomicUsize::new(0);
        let counted = async {
            loop {
                let n: usize =
                    redis::cmd("SCARD").arg(&done_set).query_async(&mut conn).await.map_err(|e| e.to_string())?;
                recorded.store(n, Ordering::Relaxed);
                if n >= jobs {
                    return Ok::<(), RoundError>(());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::select! {
            r = counted => r?,
            r = completions(&recorded, jobs) => r?,
        }
        Ok::<_, RoundError>((t0.elapsed(), cpu_time().saturating_sub(cpu0), counters(url)?))
    }
    .await;
    stop.notify_one();
    // A worker left running would poll a redis-server that is gone and load later rounds.
    let mut run = run;
    match tokio::time::timeout(APALIS_STOP_TIMEOUT, &mut run).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => eprintln!("bench_pool_peers: apalis worker ended with {e}"),
        Ok(Err(e)) => eprintln!("bench_pool_peers: apalis worker task: {e}"),
        Err(_) => {
            eprintln!("bench_pool_peers: apalis worker did not stop within {APALIS_STOP_TIMEOUT:?}; aborted");
            run.abort();
        }
    }
    let (took, cpu, after) = waited?;
    Ok(Figures {
        jobs_per_s: jobs as f64 / took.as_secs_f64(),
        client_cpu: cpu,
        redis: after.since(before),
        snapshots: None,
    })
}

/// The BullMQ script's folder, with its npm packages installed (`npm ci` on first use).
fn bullmq_dir() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/bench_pool_peers/bullmq");
    let ok = |c: &mut Command| c.stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !ok(Command::new("node").arg("--version")) {
        return Err("node not found (BullMQ runs on Node.js: install nodejs and npm)".into());
    }
    if !dir.join("node_modules/bullmq").is_dir() {
        eprintln!("installing BullMQ into {} (npm ci)", dir.display());
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status();
        match out {
            Ok(s) if s.success() => {}
            Ok(s) => return Err(format!("npm ci in {} failed ({s})", dir.display())),
            Err(e) => return Err(format!("npm not runnable: {e}")),
        }
    }
    Ok(dir)
}

/// BullMQ 5 in a Node process: `bench.mjs` connects, says `ready`, runs on `go`, and prints its
/// timed window and CPU as one JSON line.
fn bullmq_round(dir: &Path, url: &str, jobs: usize) -> Result<Figures, String> {
    let mut child = Command::new("node")
        .arg("bench.mjs")
        .args([url, &jobs.to_string(), &CONCURRENCY.to_string(), &DISPATCHERS.to_string()])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("node: {e}"))?;
    let result = (|| {
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let mut next = || lines.next().and_then(Result::ok).ok_or("bench.mjs exited early");
        if next()? != "ready" {
            return Err("bench.mjs did not say ready".to_owned());
        }
        let before = counters(url)?;
        writeln!(child.stdin.as_mut().ok_or("no stdin")?, "go").map_err(|e| e.to_string())?;
        let line = next()?;
        let after = counters(url)?;
        let v: serde_json::Value = serde_json::from_str(&line).map_err(|e| format!("bench.mjs said {line:?}: {e}"))?;
        let field = |k: &str| v.get(k).and_then(serde_json::Value::as_f64).ok_or(format!("no {k} in {line:?}"));
        let (elapsed_ms, cpu_us, completed) = (field("elapsed_ms")?, field("cpu_us")?, field("completed")?);
        if completed as usize != jobs {
            return Err(format!("bullmq completed {completed} of {jobs} jobs"));
        }
        Ok(Figures {
            jobs_per_s: jobs as f64 / (elapsed_ms / 1e3),
            client_cpu: Duration::from_secs_f64(cpu_us / 1e6),
            redis: after.since(before),
            snapshots: None,
        })
    })();
    if result.is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
    result
}

/// keel's whole snapshots per round (median of each count), if it ran.
fn median_snapshots(rounds: &[Figures]) -> Option<Snapshots> {
    let all: Vec<Snapshots> = rounds.iter().filter_map(|f| f.snapshots).collect();
    let med = |f: &dyn Fn(&Snapshots) -> u64| median(all.iter().map(|s| f(s) as f64).collect()).map(|m| m as u64);
    let jobs_by_why = std::array::from_fn(|i| med(&|s| s.jobs_by_why[i]).unwrap_or(0));
    Some(Snapshots { jobs_by_why, keepalive: med(&|s| s.keepalive)? })
}

/// `  whole snapshots: job map J (hole 3), keep-alive map K` for keel (empty for the peers).
fn snapshot_text(s: Option<Snapshots>) -> String {
    s.map_or(String::new(), |s| {
        let why = if s.jobs() > 0 { format!(" ({})", s.jobs_why()) } else { String::new() };
        format!("  whole snapshots: job map {}{why}, keep-alive map {}", s.jobs(), s.keepalive)
    })
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied()
}

fn print_row(system: System, rounds: &[Figures], jobs: usize) {
    let per_job = |f: &dyn Fn(&Figures) -> f64| median(rounds.iter().map(f).collect()).unwrap_or(f64::NAN);
    let tput = per_job(&|f| f.jobs_per_s);
    let client = per_job(&|f| f.client_cpu.as_secs_f64() * 1e3 / jobs as f64);
    let redis = per_job(&|f| f.redis.cpu.as_secs_f64() * 1e3 / jobs as f64);
    let commands = per_job(&|f| f.redis.commands as f64 / jobs as f64);
    let guarantees = GUARANTEES.iter().find(|(s, _)| *s == system.name()).map_or("", |(_, g)| g);
    println!(
        "{:7} {tput:8.0} jobs/s  client CPU {client:.3} ms/job  Redis CPU {redis:.3} ms/job  Redis commands {commands:.1}/job{}  (median of {})",
        system.name(),
        snapshot_text(median_snapshots(rounds)),
        rounds.len()
    );
    println!("        guarantees: {guarantees}");
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "bench_pool_peers: {e}\nusage: bench_pool_peers [--jobs N] [--rounds R] [--phases] [--only SYSTEM,...]"
            );
            std::process::exit(2);
        }
    };
    if !snapshots::install() {
        eprintln!("bench_pool_peers: a tracing subscriber was installed first; keel's snapshots are not counted");
    }
    let redis = Command::new("redis-server").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    if !redis.is_ok_and(|s| s.success()) {
        eprintln!("bench_pool_peers: redis-server not found: install it (apt-get install -y redis-server)");
        std::process::exit(1);
    }
    let bullmq = if args.only.as_ref().is_none_or(|o| o.contains(&System::Bullmq)) {
        bullmq_dir()
    } else {
        Err("not selected".into())
    };
    if let Err(e) = &bullmq {
        eprintln!("bench_pool_peers: BullMQ will not run: {e}");
    }
    let jobs = args.jobs;
    println!(
        "{jobs} no-op jobs, concurrency {CONCURRENCY}, {DISPATCHERS} producers, {} interleaved rounds, a fresh redis-server per system and round",
        args.rounds
    );
    // Per system: (round, figures) of each round it completed.
    let mut results: Vec<(System, Vec<(usize, Figures)>)> =
        [System::Keel, System::Apalis, System::Bullmq].into_iter().map(|s| (s, Vec::new())).collect();
    let mut failed: Vec<System> = Vec::new();
    for round in 0..args.rounds {
        // Rotate the order each round so no system always runs first (on a colder machine).
        let mut order = [System::Keel, System::Apalis, System::Bullmq];
        order.rotate_left(round % 3);
        for system in order {
            if failed.contains(&system) || args.only.as_ref().is_some_and(|o| !o.contains(&system)) {
                continue;
            }
            let (server, url) = match fresh_redis() {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("bench_pool_peers: {e}");
                    std::process::exit(1);
                }
            };
            let timed_out = || Err(RoundError::Failed("round timed out".into()));
            let figures = match system {
                System::Keel => tokio::time::timeout(ROUND_TIMEOUT, keel_round(&server, jobs, false))
                    .await
                    .unwrap_or_else(|_| timed_out()),
                System::Apalis => {
                    tokio::time::timeout(ROUND_TIMEOUT, apalis_round(&url, jobs)).await.unwrap_or_else(|_| timed_out())
                }
                System::Bullmq => match &bullmq {
                    Ok(dir) => {
                        tokio::task::block_in_place(|| bullmq_round(dir, &url, jobs)).map_err(RoundError::Failed)
                    }
                    Err(_) => Err(RoundError::Failed("not available".into())),
                },
            };
            drop(server);
            match figures {
                Ok(f) => {
                    println!(
                        "round {round} {:7} {:8.0} jobs/s  client CPU {:.3} ms/job  Redis CPU {:.3} ms/job  {:.1} commands/job{}",
                        system.name(),
                        f.jobs_per_s,
                        f.client_cpu.as_secs_f64() * 1e3 / jobs as f64,
                        f.redis.cpu.as_secs_f64() * 1e3 / jobs as f64,
                        f.redis.commands as f64 / jobs as f64,
                        snapshot_text(f.snapshots)
                    );
                    results.iter_mut().find(|(s, _)| *s == system).expect("every system has a row").1.push((round, f));
                }
                Err(RoundError::Stalled { done }) => println!(
                    "round {round} {:7} stalled: no completion for {ROUND_STALL:?} ({done} of {jobs} done); left out",
                    system.name()
                ),
                Err(RoundError::Failed(e)) => {
                    if system != System::Bullmq || bullmq.is_ok() {
                        eprintln!("bench_pool_peers: {} failed: {e}", system.name());
                    }
                    failed.push(system);
                }
            }
        }
    }
    if args.phases {
        println!("keel under MONITOR (one more round, not in the figures):");
        let detail = match fresh_redis() {
            Ok((server, _)) => keel_round(&server, jobs, true).await.map(|_| ()).map_err(|e| format!("{e:?}")),
            Err(e) => Err(e),
        };
        if let Err(e) = detail {
            eprintln!("bench_pool_peers: keel under MONITOR failed: {e}");
        }
    }
    println!("medians:");
    for (system, rounds) in &results {
        if rounds.is_empty() {
            println!("{:7} could not run", system.name());
        } else {
            let figures: Vec<Figures> = rounds.iter().map(|(_, f)| *f).collect();
            print_row(*system, &figures, jobs);
        }
    }
    let keel = &results[0].1;
    let ratio = |peer: usize| -> String {
        let peer = &results[peer].1;
        // Ratios of the same round (the systems ran back to back on the same machine load), over
        // the rounds both completed.
        let ratios: Vec<f64> = keel
            .iter()
            .filter_map(|(r, k)| peer.iter().find(|(pr, _)| pr == r).map(|(_, p)| k.jobs_per_s / p.jobs_per_s))
            .collect();
        median(ratios).map_or("n/a".into(), |r| format!("{r:.2}"))
    };
    println!("ratio keel/apalis={} keel/bullmq={}", ratio(1), ratio(2));
}
