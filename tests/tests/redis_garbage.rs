//! Garbage in Redis, part by part (issues 12.6 and 18.2): a value keel did not write, in each key
//! type of a running pool, lease and map, is logged once (not on every call), counted, does not
//! stop the part serving every other key, and stops mattering once removed (by an operator, or by
//! `keel::pool::quarantine_corrupt`).

use std::time::Duration;

use keel::lease::{LeaseConfig, LeaseHandle, LeaseOwner};
use keel::pool::{Job, JobHandler, JobOutcome, Pool, PoolConfig, PoolError};
use keel::rmap::{ReplicatedMap, RmapConfig};
use keel::shutdown::Shutdown;
use keel::store::{MapWrite, Store};
use keel::{RedisStore, StoreError};
use keel_tests::{PREFIX, RedisServer};
use tokio::time::Instant;

/// Counts events by their `kind` field (the test runs on one thread: every task of the current
/// thread runtime logs through it).
type Kinds = keel::testkit::LogCapture;

/// Poll `f` until true, or fail saying `what`.
async fn eventually(within: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn hset(server: &RedisServer, map: &str, key: &str, value: &str) {
    let reply = server.command(&format!("HSET {PREFIX}:map:{map} {key} {value}"));
    assert_eq!(reply.as_deref(), Some(":1"), "HSET {map} {key}");
}

struct Ran(tokio::sync::mpsc::UnboundedSender<String>);

impl JobHandler for Ran {
    async fn run(&self, job: Job) -> JobOutcome {
        let _ = self.0.send(job.key().to_owned());
        JobOutcome::Completed
    }
}

#[tokio::test]
async fn redis_pool_garbage_is_logged_once_counted_and_quarantined() {
    let kinds = Kinds::default();
    let _guard = tracing::subscriber::set_default(kinds.clone());
    let Some(server) = RedisServer::start("redis_pool_garbage_is_logged_once_counted_and_quarantined") else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    // Values written behind keel's back make no change on the job map's feed: a sweep finds
    // them when it reads the maps whole, once per half the completer's retention (at most the
    // dedup window): 600 ms here.
    let cfg = PoolConfig::builder("g", "node-a")
        .worker_ttl(Duration::from_millis(600))
        .dedup_window(Duration::from_millis(1200))
        .build()
        .expect("config");
    let node = Pool::new(store.clone(), cfg).start().await.expect("start");
    let (tx, mut ran) = tokio::sync::mpsc::unbounded_channel();
    let worker = node.add_worker(Ran(tx), &Shutdown::new("request"));
    let recv = async |ran: &mut tokio::sync::mpsc::UnboundedReceiver<String>| {
        tokio::time::timeout(Duration::from_secs(5), ran.recv()).await.expect("a job ran in time")
    };
    node.dispatch("before", "x").await.expect("dispatch");
    assert_eq!(recv(&mut ran).await.as_deref(), Some("before"));

    // Garbage in every key type of the job map, a cleanup lock and a completion entry.
    hset(&server, "keel:pool:g:jobs", "j/bad", "garbage");
    hset(&server, "keel:pool:g:jobs", "d/blocked", "junk");
    hset(&server, "keel:pool:g:jobs", "p/orphan", "junk");
    hset(&server, "keel:pool:g:cleanup", "ghost", "junk");
    hset(&server, "keel:pool:g:completions", "stray", "junk");

    // A key blocked by garbage says so (it used to answer Duplicate forever, silently).
    for (job, key) in [("bad", "j/bad"), ("blocked", "d/blocked")] {
        match node.dispatch(job, "x").await {
            Err(PoolError::Store(StoreError::Corrupt { key: k, .. })) => {
                assert!(k.ends_with(&format!("[{key}]")), "{k}")
            }
            other => panic!("dispatch of {job} over garbage: {other:?}"),
        }
    }
    // Every other key is served.
    node.dispatch("after", "x").await.expect("dispatch next to garbage");
    assert_eq!(recv(&mut ran).await.as_deref(), Some("after"));

    // Several sweeps (ttl/3 each): the lock and the stray completion are repaired by the pool
    // itself (a lock nobody can read is stale; a completion without a job is swept); the job
    // map's garbage stays, counted by the node and by inspect, logged once each.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let report = keel::pool::inspect(&store, "g").await.expect("inspect");
    let corrupt: Vec<&str> = report.corrupt.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(corrupt, ["d/blocked", "j/bad", "p/orphan"], "{:?}", report.corrupt);
    assert_eq!(node.corrupt_records(), 3);
    assert_eq!(kinds.count("corrupt_record"), 4, "each garbage value logged once (the lock before it was taken over)");
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(kinds.count("corrupt_record"), 4, "and not again on later sweeps");

    // The operator's repair: move them to the quarantine map. The keys work again.
    let moved = keel::pool::quarantine_corrupt(&store, "g").await.expect("quarantine");
    assert_eq!(moved.len(), 3);
    assert!(keel::pool::inspect(&store, "g").await.expect("inspect").corrupt.is_empty());
    let kept =
        server.command(&format!("HGET {PREFIX}:map:{} keel:pool:g:jobs[j/bad]", keel::pool::quarantine_map("g")));
    assert_eq!(kept.as_deref(), Some("$7"), "the raw value is kept for the operator");
    node.dispatch("bad", "x").await.expect("the key is free again");
    assert_eq!(recv(&mut ran).await.as_deref(), Some("bad"));
    node.dispatch("blocked", "x").await.expect("the key is free again");
    assert_eq!(recv(&mut ran).await.as_deref(), Some("blocked"));
    eventually(Duration::from_secs(3), "the node forgets repaired records", async || node.corrupt_records() == 0).await;
    // A new corruption of a repaired key is news again: logged once more.
    hset(&server, "keel:pool:g:jobs", "p/orphan", "junk2");
    eventually(Duration::from_secs(3), "the new corruption is logged", async || kinds.count("corrupt_record") == 5)
        .await;
    worker.stop().await;
    node.stop().await;
}

fn owner(store: &RedisStore, name: &str) -> LeaseHandle {
    let config = LeaseConfig::builder(name, "owner-a").ttl(Duration::from_millis(600)).build().expect("config");
    LeaseOwner::new(store.clone(), config).start(|guard| async move { guard.lost().await })
}

fn map(store: &RedisStore, name: &str) -> ReplicatedMap<RedisStore> {
    let cfg =
        RmapConfig::builder(name).retry(Duration::from_millis(20), Duration::from_millis(200)).build().expect("cfg");
    ReplicatedMap::start(store.clone(), cfg)
}

#[tokio::test]
async fn redis_lease_and_map_garbage_is_logged_once_and_recovers_when_removed() {
    let kinds = Kinds::default();
    let _guard = tracing::subscriber::set_default(kinds.clone());
    let Some(server) = RedisServer::start("redis_lease_and_map_garbage_is_logged_once_and_recovers_when_removed")
    else {
        return;
    };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    // A lease key of the wrong type, and a map revision that is not a number. The map's name
    // holds colons, as every pool map's does: its keys are cleared by the name after the kind
    // (hunt 31 A #18: split at the last colon, they were never cleared nor logged again).
    assert_eq!(server.command(&format!("SET {PREFIX}:lease:bad garbage")).as_deref(), Some("+OK"));
    assert_eq!(server.command(&format!("SET {PREFIX}:map-rev:pool:m1 x")).as_deref(), Some("+OK"));
    let (bad, good) = (owner(&store, "bad"), owner(&store, "good"));
    let (m1, m2) = (map(&store, "pool:m1"), map(&store, "m2"));

    // Every other key is served.
    eventually(Duration::from_secs(5), "the good lease is held", async || good.fence().is_some()).await;
    tokio::time::timeout(Duration::from_secs(5), m2.joined()).await.expect("m2 joins").expect("joined");
    m2.set("k", "v").await.expect("write next to garbage");
    // The garbage keys fail typed, many times over: each logged once, and listed.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(bad.fence().is_none() && !m1.is_joined());
    let corrupt = store.corrupt_keys();
    assert_eq!(corrupt.keys().collect::<Vec<_>>(), ["lease:bad", "map-rev:pool:m1"], "{corrupt:?}");
    assert_eq!(kinds.count("corrupt_key"), 2, "one log line per corrupt key, not per attempt");

    // An operator removes the garbage: both recover by themselves.
    assert_eq!(server.command(&format!("DEL {PREFIX}:lease:bad {PREFIX}:map-rev:pool:m1")).as_deref(), Some(":2"));
    eventually(Duration::from_secs(5), "the lease is acquired once the garbage is gone", async || {
        bad.fence().is_some()
    })
    .await;
    tokio::time::timeout(Duration::from_secs(5), m1.joined()).await.expect("m1 joins").expect("joined");
    m1.set("k", "v").await.expect("write");
    assert!(store.corrupt_keys().is_empty(), "a clean operation clears the key: {:?}", store.corrupt_keys());
    // Garbage again: news again, logged once more.
    assert_eq!(server.command(&format!("SET {PREFIX}:map-rev:pool:m1 y")).as_deref(), Some("+OK"));
    assert!(m1.set("k", "w").await.is_err());
    assert!(m1.set("k", "w").await.is_err());
    assert_eq!(kinds.count("corrupt_key"), 3);
    for h in [bad, good] {
        assert!(!h.is_finished(), "an owner ended on its own");
        assert_eq!(h.stop().await, Ok(()));
    }
}

/// A map's seedings key holding garbage, of the wrong type or unreadable, fails snapshots typed
/// (`map-reseeds:<map>`) and changes nothing; writes, which read it only after a restart, go on.
#[tokio::test]
async fn redis_map_reseeds_garbage_fails_snapshots_typed() {
    // A subscriber of its own: a test thread without one that logs a callsite first would leave
    // it cached as of no interest to the tests beside it that count log lines.
    let kinds = Kinds::default();
    let _guard = tracing::subscriber::set_default(kinds.clone());
    let Some(server) = RedisServer::start("redis_map_reseeds_garbage_fails_snapshots_typed") else {
        return;
    };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let rev = store.map_write("m", "k", MapWrite::Set("v".into())).await.expect("write").rev;
    for garbage in ["HSET {p}:map-reseeds:m a b", "SET {p}:map-reseeds:m 7:3", "SET {p}:map-reseeds:m x"] {
        assert!(server.command(&format!("DEL {PREFIX}:map-reseeds:m")).is_some());
        assert!(server.command(&garbage.replace("{p}", PREFIX)).is_some(), "{garbage}");
        match store.map_snapshot("m").await {
            Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "map-reseeds:m", "{garbage}"),
            other => panic!("{garbage}: expected a corrupt key, got {other:?}"),
        }
        assert_eq!(store.map_get("m", "k").await, Ok((Some("v".into()), rev)), "{garbage}: nothing changed");
    }
    assert_eq!(kinds.count("corrupt_key"), 3, "one log line per garbage (the clean read after each clears the key)");
    assert!(server.command(&format!("DEL {PREFIX}:map-reseeds:m")).is_some());
    let snap = store.map_snapshot("m").await.expect("a snapshot once the garbage is gone");
    assert_eq!((snap.rev, snap.reseeds.len()), (rev, 0), "the seedings were lost with the key");
}

/// The map's judged-boot key (`map-boot:<map>`, the `run_id` its counter was last judged under)
/// holding another type fails a snapshot typed (snapshots read it to say whether the store
/// restarted since the last commit); holding another process's id is no corruption but a
/// restart not judged yet, which the next commit judges.
#[tokio::test]
async fn redis_map_boot_garbage_fails_snapshots_typed() {
    let kinds = Kinds::default();
    let _guard = tracing::subscriber::set_default(kinds.clone());
    let Some(server) = RedisServer::start("redis_map_boot_garbage_fails_snapshots_typed") else {
        return;
    };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let rev = store.map_write("m", "k", MapWrite::Set("v".into())).await.expect("write").rev;
    assert!(!store.map_snapshot("m").await.expect("snapshot").restarted_since_commit, "judged by this process");
    assert!(server.command(&format!("DEL {PREFIX}:map-boot:m")).is_some());
    assert!(server.command(&format!("HSET {PREFIX}:map-boot:m a b")).is_some());
    match store.map_snapshot("m").await {
        Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, "map-boot:m"),
        other => panic!("expected a corrupt key, got {other:?}"),
    }
    assert_eq!(store.map_get("m", "k").await, Ok((Some("v".into()), rev)), "nothing changed");
    assert!(server.command(&format!("DEL {PREFIX}:map-boot:m")).is_some());
    assert!(server.command(&format!("SET {PREFIX}:map-boot:m 0123abcd")).is_some());
    let snap = store.map_snapshot("m").await.expect("another process's id is no corruption");
    assert!(snap.restarted_since_commit && snap.rev == rev, "{snap:?}");
    store.map_write("m", "k", MapWrite::Set("w".into())).await.expect("write");
    assert!(!store.map_snapshot("m").await.expect("snapshot").restarted_since_commit, "the commit judged it");
}
