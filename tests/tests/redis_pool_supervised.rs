//! What a production service hits, over a real `redis-server` (issue #12): a Redis restart that
//! kills every worker leaves the node with its full worker count; the pool-wide completion feed
//! delivers every completion to a dispatch-only node across a Redis restart; `Pool::start`
//! against a closed port or with a wrong password ends in a typed error within its bound.

use std::collections::BTreeMap;
use std::time::Duration;

use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, PoolError, PoolNode};
use keel::shutdown::Shutdown;
use keel::store::{RedisConfig, RedisStore};
use keel_tests::{RedisServer, wait_ready};
use tokio::time::Instant;

const WORKER_TTL: Duration = Duration::from_secs(2);

fn config(pool: &str, node: &str) -> PoolConfig {
    PoolConfig::builder(pool, node)
        .worker_ttl(WORKER_TTL)
        .sweep_interval(Duration::from_millis(300))
        .op_timeout(Duration::from_millis(300))
        .build()
        .expect("valid pool config")
}

/// Completes after the payload's milliseconds (or stops when asked).
struct Sleep;

impl JobHandler for Sleep {
    async fn run(&self, job: Job) -> JobOutcome {
        let ms = job.payload().parse().unwrap_or(0);
        tokio::select! {
            biased;
            _ = job.stopped() => JobOutcome::Abandoned,
            _ = tokio::time::sleep(Duration::from_millis(ms)) => JobOutcome::Completed,
        }
    }
}

/// Fresh keep-alives of `node`'s workers in the store.
async fn fresh_workers(store: &RedisStore, pool: &str, node: &str) -> Vec<String> {
    let r = keel::pool::inspect(store, pool).await.expect("inspect");
    let ttl_ms = WORKER_TTL.as_millis() as u64;
    r.workers
        .iter()
        .filter(|(w, age)| w.starts_with(&format!("{node}.")) && age.is_some_and(|a| a < ttl_ms))
        .map(|(w, _)| w.clone())
        .collect()
}

async fn until(within: Duration, what: &str, mut ok: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !ok().await {
        assert!(Instant::now() < deadline, "{what} not reached within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A restart that loses Redis's data takes every worker's keep-alive with it: each worker finds
/// itself dead at its next beat. The node replaces them all and is back to its full count, with
/// fresh workers that run jobs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pool_restart_that_kills_workers_leaves_the_full_worker_count() {
    let test = "redis_pool_restart_that_kills_workers_leaves_the_full_worker_count";
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let node = Pool::new(store.clone(), config("sup", "n")).start().await.expect("start");
    let workers: Vec<_> = (0..3).map(|_| node.add_worker(Sleep, &Shutdown::new("request"))).collect();
    until(Duration::from_secs(10), "3 workers registered", async || fresh_workers(&store, "sup", "n").await.len() == 3)
        .await;
    let first: Vec<String> = workers.iter().map(|w| w.id()).collect();

    tokio::task::block_in_place(|| server.restart_losing_data());
    wait_ready(&store).await;
    until(Duration::from_secs(20), "every worker replaced", async || node.worker_replacements() >= 3).await;
    until(Duration::from_secs(10), "3 fresh workers in the store", async || {
        let fresh = fresh_workers(&store, "sup", "n").await;
        fresh.len() == 3 && fresh.iter().all(|w| !first.contains(w))
    })
    .await;
    assert_eq!(node.live_workers(), 3, "the full count");
    assert!(node.worker_deaths() >= 3);
    assert!(workers.iter().all(|w| w.incarnations() >= 2 && !w.is_finished()));
    for i in 0..6 {
        let done = tokio::time::timeout(Duration::from_secs(20), node.dispatch_and_wait(&format!("after-{i}"), "10"))
            .await
            .expect("runs within the bound")
            .expect("completes");
        assert!(workers.iter().any(|w| w.id() == done.worker), "ran on a replacement: {done:?}");
    }
    node.stop().await;
    assert!(workers.iter().all(|w| w.is_finished()), "the node's stop ends every worker");
}

/// A node without workers subscribes to the pool's completions; jobs run on another node while
/// Redis is killed (-9) and restarted from its AOF mid-run. The dispatch-only node receives every
/// completion, each once, and `wait_for` returns for every job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pool_completion_feed_reaches_a_dispatch_only_node_across_a_restart() {
    let test = "redis_pool_completion_feed_reaches_a_dispatch_only_node_across_a_restart";
    let Some(server) = RedisServer::start_with(test, &["--appendonly", "yes", "--appendfsync", "always"]) else {
        return;
    };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let workers = Pool::new(store.clone(), config("feed", "w")).start().await.expect("start");
    let handles: Vec<_> = (0..4).map(|_| workers.add_worker(Sleep, &Shutdown::new("request"))).collect();
    let api_store = RedisStore::connect(server.config()).await.expect("connect");
    let api: PoolNode<RedisStore> = Pool::new(api_store, config("feed", "api")).start().await.expect("start");
    let mut feed = api.completions().expect("subscribe");
    const JOBS: usize = 40;
    for i in 0..JOBS {
        // 50..450 ms: some complete before, some during, some after the restart.
        api.dispatch(&format!("job-{i}"), &(50 + (i % 9) * 50).to_string()).await.expect("dispatch");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::task::block_in_place(|| server.restart());
    wait_ready(&store).await;

    let mut got: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.len() < JOBS {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, feed.recv()).await {
            Ok(Some(c)) => *got.entry(c.job).or_default() += 1,
            Ok(None) => panic!("the feed closed"),
            Err(_) => panic!("only {} of {JOBS} completions delivered: {got:?}", got.len()),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await; // a late duplicate would show now
    while let Some(c) = feed.try_recv() {
        *got.entry(c.job).or_default() += 1;
    }
    let want: BTreeMap<String, usize> = (0..JOBS).map(|i| (format!("job-{i}"), 1)).collect();
    assert_eq!(got, want, "every completion, once");
    assert_eq!(feed.dropped(), 0);
    for i in 0..JOBS {
        let c = tokio::time::timeout(Duration::from_secs(5), api.wait_for(&format!("job-{i}")))
            .await
            .expect("recorded completions are found at once")
            .expect("completed");
        assert_eq!(c.job, format!("job-{i}"));
    }
    assert_eq!(api.data_losses(), 0, "the AOF kept the data");
    for h in handles {
        h.stop().await;
    }
    api.stop().await;
    workers.stop().await;
}

/// `Pool::start` over a lazily connected store whose Redis cannot be used ends in a typed error
/// within its bound: a transient one (closed port) at the start timeout, with the last store
/// error; a permanent one as soon as the store says so.
async fn start_is_bounded(config: RedisConfig, what: &str) -> PoolError {
    let store = RedisStore::connect_lazy(config).expect("a lazy store needs no server");
    let timeout = Duration::from_secs(2);
    let cfg = PoolConfig::builder("bounded", "n")
        .worker_ttl(WORKER_TTL)
        .op_timeout(Duration::from_millis(300))
        .start_timeout(timeout)
        .build()
        .expect("config");
    let t0 = Instant::now();
    let e = tokio::time::timeout(Duration::from_secs(10), Pool::new(store, cfg).start())
        .await
        .unwrap_or_else(|_| panic!("{what}: Pool::start did not return within 10 s"))
        .err()
        .unwrap_or_else(|| panic!("{what}: started without a usable store"));
    let took = t0.elapsed();
    assert!(took <= timeout + Duration::from_secs(1), "{what}: took {took:?}");
    match &e {
        PoolError::StartTimeout { last_error, attempts, .. } => {
            assert!(*attempts > 1 && last_error.is_transient(), "{what}: {e:?}");
            assert!(took >= timeout - Duration::from_millis(400), "{what}: gave up early ({took:?})");
        }
        PoolError::Store(s) => assert!(!s.is_transient(), "{what}: only a permanent error ends it early: {e:?}"),
        other => panic!("{what}: unexpected {other:?}"),
    }
    eprintln!("{what}: {e} after {took:?}");
    e
}

fn redis_config(url: String) -> RedisConfig {
    RedisConfig::builder(url)
        .key_prefix(keel_tests::PREFIX)
        .op_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .expect("config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pool_start_against_a_closed_port_ends_typed_within_the_bound() {
    if !keel_tests::redis_available("redis_pool_start_against_a_closed_port_ends_typed_within_the_bound") {
        return;
    }
    let port = keel_tests::free_port(); // nothing listens there
    let e = start_is_bounded(redis_config(format!("redis://127.0.0.1:{port}")), "closed port").await;
    assert!(matches!(e, PoolError::StartTimeout { .. }), "a closed port is an outage, not a misconfiguration: {e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pool_start_with_a_wrong_password_ends_typed_within_the_bound() {
    let test = "redis_pool_start_with_a_wrong_password_ends_typed_within_the_bound";
    let Some(server) = RedisServer::start(test) else { return };
    // Set after the start (the harness's readiness probe does not authenticate).
    assert_eq!(server.command("CONFIG SET requirepass s3cret").as_deref(), Some("+OK"));
    let url = format!("redis://:wrong@127.0.0.1:{}", server.port());
    let e = start_is_bounded(redis_config(url), "wrong password").await;
    assert!(!e.to_string().contains("wrong"), "the password is not echoed: {e}");
}
