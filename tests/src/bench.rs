//! keel's pool as the pool benchmarks drive it (`bench_pool_redis`, `bench_pool_peers`): 3 nodes
//! × 4 workers in one process over one Redis, 32 concurrent dispatchers, no-op handlers; plus the
//! measuring helpers they share (this process's CPU time, a Redis server's counters).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, PoolError, PoolNode, WorkerHandle};
use keel::shutdown::Shutdown;
use keel::store::{RedisConfig, RedisStore};
use tokio::time::Instant;

/// Nodes of the benchmarked pool.
pub const NODES: usize = 3;
/// Workers per node: the pool's concurrency is `NODES * WORKERS` (12).
pub const WORKERS: usize = 4;
/// Concurrent dispatching tasks.
pub const DISPATCHERS: usize = 32;
/// Tries of one dispatch before the benchmark gives up (a loaded machine can time a call out).
const DISPATCH_TRIES_MAX: usize = 20;
/// How long the workers may take to register.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// Completes every job at once and counts it.
#[derive(Clone)]
pub struct Quick(pub Arc<AtomicUsize>);

impl JobHandler for Quick {
    async fn run(&self, _job: Job) -> JobOutcome {
        self.0.fetch_add(1, Ordering::Relaxed);
        JobOutcome::Completed
    }
}

/// The benchmarks' pool config.
pub fn pool_config(pool: &str, node: &str, ttl: Duration) -> PoolConfig {
    PoolConfig::builder(pool, node).worker_ttl(ttl).build().expect("config")
}

/// A store over `url` with the benchmarks' key prefix.
pub async fn bench_store(url: &str) -> RedisStore {
    let config = RedisConfig::builder(url).key_prefix("bench-pool").build().expect("config");
    RedisStore::connect(config).await.expect("connect")
}

/// Wait until `workers` workers of `pool` are registered.
pub async fn registered(st: &RedisStore, pool: &str, workers: usize) {
    let deadline = Instant::now() + REGISTER_TIMEOUT;
    while keel::pool::inspect(st, pool).await.map_or(0, |r| r.registered.len()) < workers {
        assert!(Instant::now() < deadline, "workers did not register");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `NODES` nodes of one pool, `WORKERS` workers each, all registered.
pub struct BenchPool {
    store: RedisStore,
    pool: String,
    nodes: Arc<Vec<(PoolNode<RedisStore>, Vec<WorkerHandle>)>>,
}

impl BenchPool {
    /// Start the nodes over one shared store, each worker with `handler()`, and wait until
    /// every worker is registered.
    pub async fn start<H: JobHandler>(url: &str, pool: &str, ttl: Duration, handler: impl Fn() -> H) -> Self {
        let store = bench_store(url).await;
        let caller = Shutdown::new("bench");
        let mut nodes = Vec::new();
        for n in 0..NODES {
            let node = Pool::new(store.clone(), pool_config(pool, &format!("n{n}"), ttl)).start().await.expect("node");
            let ws = (0..WORKERS).map(|_| node.add_worker(handler(), &caller)).collect();
            nodes.push((node, ws));
        }
        registered(&store, pool, NODES * WORKERS).await;
        BenchPool { store, pool: pool.to_owned(), nodes: Arc::new(nodes) }
    }

    /// The store the nodes share.
    pub fn store(&self) -> &RedisStore {
        &self.store
    }

    /// Dispatch `job-0` … `job-{jobs-1}` round-robin over the nodes from `DISPATCHERS` tasks.
    /// A timed-out dispatch is retried with the same key (a `Duplicate` then means the first
    /// try landed). Returns the dispatching tasks.
    pub fn dispatch(&self, jobs: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..DISPATCHERS)
            .map(|d| {
                let nodes = self.nodes.clone();
                tokio::spawn(async move {
                    for i in (d..jobs).step_by(DISPATCHERS) {
                        let mut tries = 0;
                        loop {
                            match nodes[i % NODES].0.dispatch(&format!("job-{i}"), "x").await {
                                Ok(_) => break,
                                Err(PoolError::Duplicate { .. }) if tries > 0 => break,
                                Err(e) if tries < DISPATCH_TRIES_MAX => {
                                    tries += 1;
                                    eprintln!("dispatch job-{i}: {e}; retrying");
                                }
                                Err(e) => panic!("dispatch job-{i}: {e}"),
                            }
                        }
                    }
                })
            })
            .collect()
    }

    /// Wait until the pool holds no job (every completion recorded and cleaned up).
    pub async fn drained(&self) {
        loop {
            let r = keel::pool::inspect(&self.store, &self.pool).await.expect("inspect");
            if r.jobs.is_empty() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Stop every worker, then every node (the dispatching tasks must be done).
    pub async fn stop(self) {
        let nodes = Arc::into_inner(self.nodes).expect("dispatchers done");
        for (node, ws) in nodes {
            for w in ws {
                w.stop().await;
            }
            node.stop().await;
        }
    }
}

/// CPU time (user + system) of this process so far, from /proc (Linux; zero elsewhere).
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<u64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
    let ticks = f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

/// A Redis server's counters, from `INFO`: what a benchmarked run cost the server.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedisCounters {
    /// `used_cpu_sys + used_cpu_user`.
    pub cpu: Duration,
    /// `total_commands_processed` (the `INFO` that reads it included).
    pub commands: u64,
}

impl RedisCounters {
    /// Read them from the server at `url`.
    pub fn read(url: &str) -> Result<Self, redis::RedisError> {
        let mut conn = redis::Client::open(url)?.get_connection()?;
        let info: String = redis::cmd("INFO").arg("all").query(&mut conn)?;
        Ok(Self::parse(&info))
    }

    /// Parse an `INFO` reply (missing fields read as zero).
    pub fn parse(info: &str) -> Self {
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map_or(0.0, |v| v.trim().parse::<f64>().unwrap_or(0.0))
        };
        let cpu = field("used_cpu_sys") + field("used_cpu_user");
        RedisCounters { cpu: Duration::from_secs_f64(cpu.max(0.0)), commands: field("total_commands_processed") as u64 }
    }

    /// What happened between `self` and `later`.
    pub fn since(self, earlier: Self) -> Self {
        RedisCounters {
            cpu: self.cpu.saturating_sub(earlier.cpu),
            commands: self.commands.saturating_sub(earlier.commands),
        }
    }
}

/// `INFO commandstats`: calls per command, sorted by name.
pub fn command_stats(url: &str) -> Result<Vec<(String, u64)>, redis::RedisError> {
    let mut conn = redis::Client::open(url)?.get_connection()?;
    let info: String = redis::cmd("INFO").arg("commandstats").query(&mut conn)?;
    Ok(parse_command_stats(&info))
}

/// Parse `cmdstat_<name>:calls=<n>,…` lines.
pub fn parse_command_stats(info: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = info
        .lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest.split(',').find_map(|kv| kv.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_owned(), calls))
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_parse_info_and_subtract() {
        let a = RedisCounters::parse(
            "# CPU\r\nused_cpu_sys:1.500000\r\nused_cpu_user:0.250000\r\n# Stats\r\ntotal_commands_processed:40\r\n",
        );
        assert_eq!(a.cpu, Duration::from_millis(1750));
        assert_eq!(a.commands, 40);
        let b = RedisCounters { cpu: Duration::from_millis(2000), commands: 100 };
        let d = b.since(a);
        assert_eq!((d.cpu, d.commands), (Duration::from_millis(250), 60));
        assert_eq!(RedisCounters::parse("garbage").commands, 0);
    }

    #[test]
    fn command_stats_parse() {
        let s = "# Commandstats\r\ncmdstat_get:calls=3,usec=5,usec_per_call=1.67\r\ncmdstat_evalsha:calls=10,usec=1\r\nbad\r\n";
        assert_eq!(parse_command_stats(s), vec![("evalsha".to_owned(), 10), ("get".to_owned(), 3)]);
    }
}
