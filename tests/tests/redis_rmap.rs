//! `ReplicatedMap` over a real, private `redis-server`: three replicas converge to the store's
//! snapshot after a kill -9 + restart (with and without the data) in the middle of a write burst,
//! and `set_and_wait` under concurrent writers returns with its write (or a later one) visible.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::RedisStore;
use keel::rmap::{ReplicatedMap, RmapConfig, RmapError};
use keel::store::Store;
use keel_tests::{RedisServer, wait_ready};
use tokio::time::Instant;

fn replicas(store: &RedisStore, map: &str, n: usize) -> Vec<ReplicatedMap<RedisStore>> {
    (0..n)
        .map(|_| {
            let cfg = RmapConfig::builder(map)
                .op_timeout(Duration::from_millis(1000))
                .retry(Duration::from_millis(20), Duration::from_millis(300))
                .build()
                .expect("valid rmap config");
            ReplicatedMap::start(store.clone(), cfg)
        })
        .collect()
}

async fn join_all(maps: &[ReplicatedMap<RedisStore>]) {
    for m in maps {
        tokio::time::timeout(Duration::from_secs(10), m.joined()).await.expect("join in time").expect("joined");
    }
}

/// Poll until every replica equals the store's snapshot (entries and revision).
async fn converged(store: &RedisStore, maps: &[ReplicatedMap<RedisStore>], map: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let truth = store.map_snapshot(map).await;
        if let Ok(truth) = &truth
            && maps.iter().all(|m| m.snapshot() == *truth)
        {
            return;
        }
        if Instant::now() >= deadline {
            let revs: Vec<u64> = maps.iter().map(|m| m.revision()).collect();
            panic!("replicas did not converge within {within:?}: store {truth:?}, replica revisions {revs:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How the test restarts Redis in the middle of the burst.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Restart {
    KeepData,
    LoseData,
}

async fn converge_after_restart(test: &str, how: Restart) {
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let maps = replicas(&store, "routes", 3);
    join_all(&maps).await;
    let syncs_before: Vec<u64> = maps.iter().map(|m| m.syncs()).collect();

    // One sequential writer through the replicas in turn; `acked[key]` is its last attempt's
    // value if that attempt was acknowledged, None if it failed (outcome unknown).
    let acked = Arc::new(Mutex::new(BTreeMap::<String, Option<String>>::new()));
    let writer = {
        let (maps, acked) = (maps.clone(), acked.clone());
        tokio::spawn(async move {
            let mut ok = 0usize;
            for i in 0..600usize {
                let key = format!("k{}", i % 40);
                let value = format!("v{i}");
                let r = maps[i % maps.len()].set(&key, &value).await;
                ok += usize::from(r.is_ok());
                acked.lock().expect("acked").insert(key, r.is_ok().then_some(value));
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            ok
        })
    };

    tokio::time::sleep(Duration::from_millis(600)).await; // mid-burst
    let rev_before = store.map_snapshot("routes").await.expect("snapshot before the kill").rev;
    assert!(rev_before > 0, "the burst wrote before the kill");
    tokio::task::block_in_place(|| {
        if how == Restart::KeepData {
            assert_eq!(server.command("SAVE").as_deref(), Some("+OK"), "SAVE");
        }
        server.kill();
    });
    tokio::time::sleep(Duration::from_millis(500)).await; // writes fail while Redis is down
    tokio::task::block_in_place(|| match how {
        Restart::KeepData => server.restart(),
        Restart::LoseData => server.restart_losing_data(),
    });
    wait_ready(&store).await;

    let ok = tokio::time::timeout(Duration::from_secs(60), writer).await.expect("burst ends").expect("writer");
    assert!(ok > 100, "most writes were acknowledged ({ok}/600)");
    converged(&store, &maps, "routes", Duration::from_secs(15)).await;

    let truth = store.map_snapshot("routes").await.expect("final snapshot");
    // Acknowledged last writes are in the store: the writer is sequential, so a key's final
    // value is its last applied write.
    for (key, v) in acked.lock().expect("acked").iter() {
        if let Some(v) = v {
            assert_eq!(truth.entries.get(key), Some(v), "acknowledged last write of {key} is in the store");
        }
    }
    if how == Restart::LoseData {
        assert!(truth.rev > rev_before, "revisions keep increasing across data loss: {} after {rev_before}", truth.rev);
    }
    for (m, before) in maps.iter().zip(syncs_before) {
        assert!(m.syncs() > before, "every replica resynced after the restart (gap)");
        assert_eq!(m.waiters(), 0);
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rmap_replicas_converge_after_restart_keeping_data() {
    converge_after_restart("redis_rmap_replicas_converge_after_restart_keeping_data", Restart::KeepData).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rmap_replicas_converge_after_restart_losing_data() {
    converge_after_restart("redis_rmap_replicas_converge_after_restart_losing_data", Restart::LoseData).await;
}

/// Redis itself drops the watchers: with a 1-byte pub/sub output limit every published change
/// that does not fit the client's 16 KiB static reply buffer (values of 64 KiB here) disconnects
/// its subscribers and is lost. The feeds report a gap on reconnect, and only the
/// resync it triggers brings the replicas the missed writes (no later write reveals a jump).
async fn subscribers_dropped_by_redis(test: &str) {
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let maps = replicas(&store, "drops", 3);
    join_all(&maps).await;
    maps[0].set_and_wait("before", "1").await.expect("set_and_wait");
    converged(&store, &maps, "drops", Duration::from_secs(10)).await;

    let limit = "CONFIG SET client-output-buffer-limit \"pubsub 1 1 0\"";
    assert_eq!(server.command(limit).as_deref(), Some("+OK"), "{limit}");
    let big = |i: usize| format!("{i}{}", "x".repeat(64 * 1024));
    for i in 0..5 {
        store.map_write("drops", &format!("lost-{i}"), keel::store::MapWrite::Set(big(i))).await.expect("write");
    }
    let default = "CONFIG SET client-output-buffer-limit \"pubsub 33554432 8388608 60\"";
    assert_eq!(server.command(default).as_deref(), Some("+OK"), "{default}");
    converged(&store, &maps, "drops", Duration::from_secs(10)).await;
    for m in &maps {
        assert_eq!(m.get("lost-4"), Some(big(4)));
        m.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rmap_subscribers_dropped_by_redis_resync() {
    subscribers_dropped_by_redis("redis_rmap_subscribers_dropped_by_redis_resync").await;
}

/// Teeth: with MP11 (no resync after a feed reconnect) the replicas never see the lost writes.
#[cfg(feature = "mutants")]
#[test]
fn redis_rmap_mp11_no_resync_after_reconnect_is_caught() {
    let test = "redis_rmap_mp11_no_resync_after_reconnect_is_caught";
    if !keel_tests::redis_available(test) {
        return;
    }
    let caught = keel_tests::panic_under_mutant(keel::mutants::Mutant::MP11, subscribers_dropped_by_redis(test));
    let msg = caught.expect("MP11 must make the replicas miss the dropped writes");
    assert!(msg.contains("did not converge"), "caught for the wrong reason: {msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rmap_set_and_wait_under_concurrent_writers_sees_its_write_or_later() {
    let test = "redis_rmap_set_and_wait_under_concurrent_writers_sees_its_write_or_later";
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let maps = replicas(&store, "flags", 3);
    join_all(&maps).await;

    // 3 writers per replica on 5 shared keys; every value is unique. Each returned
    // set_and_wait records (its value, its rev) and what its own replica showed for the key
    // right then.
    let mut tasks = Vec::new();
    for (r, m) in maps.iter().enumerate() {
        for w in 0..3 {
            let m = m.clone();
            tasks.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in 0..40 {
                    let key = format!("f{}", (i + w) % 5);
                    let value = format!("r{r}w{w}i{i}");
                    let rev = tokio::time::timeout(Duration::from_secs(10), m.set_and_wait(&key, &value))
                        .await
                        .expect("set_and_wait returned")
                        .expect("set_and_wait ok");
                    let local_rev = m.revision();
                    assert!(local_rev >= rev, "replica at {local_rev} after set_and_wait returned {rev}");
                    let seen = m.get(&key).expect("the key is present locally");
                    out.push((value, rev, seen));
                }
                out
            }));
        }
    }
    let mut results = Vec::new();
    for t in tasks {
        results.extend(t.await.expect("writer task"));
    }
    assert_eq!(results.len(), 3 * 3 * 40);
    let rev_of: BTreeMap<&str, u64> = results.iter().map(|(v, rev, _)| (v.as_str(), *rev)).collect();
    assert_eq!(rev_of.len(), results.len(), "values are unique");
    let mut own = 0;
    for (value, rev, seen) in &results {
        let seen_rev = *rev_of.get(seen.as_str()).unwrap_or_else(|| panic!("unknown value {seen:?}"));
        assert!(seen_rev >= *rev, "after writing {value} at {rev} the replica showed {seen} from {seen_rev}");
        own += usize::from(seen == value);
    }
    assert!(own > 0, "some writes were still the latest when they returned");
    converged(&store, &maps, "flags", Duration::from_secs(10)).await;
    for m in &maps {
        assert_eq!(m.waiters(), 0, "no waiter leaked");
        m.stop().await;
    }
}

/// `set_and_wait` calls in flight across a data-losing restart never hang: each returns its
/// revision (then visible locally), a store error, or `DataLost`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rmap_set_and_wait_across_a_data_losing_restart_never_hangs() {
    let test = "redis_rmap_set_and_wait_across_a_data_losing_restart_never_hangs";
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let maps = replicas(&store, "sessions", 3);
    join_all(&maps).await;

    // Writers run until told to stop, a while after Redis is back.
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(0)); // 0 before, 1 restarted, 2 stop
    let mut tasks = Vec::new();
    for (r, m) in maps.iter().enumerate() {
        let (m, phase) = (m.clone(), phase.clone());
        tasks.push(tokio::spawn(async move {
            let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
            let mut i = 0usize;
            while phase.load(Ordering::Relaxed) < 2 && i < 100_000 {
                let after_restart = phase.load(Ordering::Relaxed) == 1;
                let (key, value) = (format!("s{}", i % 7), format!("{r}/{i}"));
                let call = m.set_and_wait(&key, &value);
                let r = tokio::time::timeout(Duration::from_secs(15), call)
                    .await
                    .expect("set_and_wait never hangs while the map runs");
                let kind = match r {
                    Ok(rev) => {
                        assert!(m.revision() >= rev, "returned {rev} but the replica is at {}", m.revision());
                        if after_restart { "ok after the restart" } else { "ok" }
                    }
                    Err(RmapError::Store(_)) => "store error",
                    Err(RmapError::DataLost { .. }) => "data lost",
                    Err(e) => panic!("unexpected error {e}"),
                };
                *outcomes.entry(kind).or_default() += 1;
                i += 1;
                tokio::time::sleep(Duration::from_millis(4)).await;
            }
            outcomes
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| server.kill());
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::block_in_place(|| server.restart_losing_data());
    wait_ready(&store).await;
    phase.store(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(700)).await;
    phase.store(2, Ordering::Relaxed);

    let mut total: BTreeMap<&'static str, usize> = BTreeMap::new();
    for t in tasks {
        let outcomes = t.await.expect("writer task");
        assert!(outcomes.get("ok after the restart").copied().unwrap_or(0) > 0, "writer recovered: {outcomes:?}");
        for (k, n) in outcomes {
            *total.entry(k).or_default() += n;
        }
    }
    assert!(total.get("store error").copied().unwrap_or(0) > 0, "some calls met the dead Redis: {total:?}");
    eprintln!("set_and_wait outcomes across the restart: {total:?}");
    converged(&store, &maps, "sessions", Duration::from_secs(10)).await;
    for m in &maps {
        assert_eq!(m.waiters(), 0, "no waiter leaked");
        m.stop().await;
    }
}
