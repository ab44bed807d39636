//! `RedisStore` specifics: corrupt keys, configuration, unreachable servers, prefixes, and the
//! watch connection's keep-alive.

use std::time::Duration;

use keel::lease::{LeaseConfig, LeaseOwner};
use keel::store::{Expect, MapTxn, MapWrite, Read, RedisConfig, RedisStore, Store, Watch, WatchEvent};
use keel::{Outcome, StoreError};
use keel_tests::{PREFIX, RedisServer};

fn corrupt_key<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Err(StoreError::Corrupt { key, .. }) => key,
        other => panic!("expected StoreError::Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn redis_garbage_in_a_lease_key_is_a_typed_error() {
    let Some(server) = RedisServer::start("redis_garbage_in_a_lease_key_is_a_typed_error") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    assert_eq!(server.command(&format!("SET {PREFIX}:lease:L garbage")).as_deref(), Some("+OK"));
    assert_eq!(corrupt_key(s.lease_acquire("L", "a", 1000, 0).await), "lease:L");
    assert_eq!(corrupt_key(s.lease_renew("L", "a", 1000).await), "lease:L");
    assert_eq!(corrupt_key(s.lease_release("L", "a").await), "lease:L");
    assert_eq!(server.command(&format!("TYPE {PREFIX}:lease:L")).as_deref(), Some("+string"), "left untouched");
    assert_eq!(server.command(&format!("EXISTS {PREFIX}:lease-meta:L")).as_deref(), Some(":0"), "nothing written");

    server.command(&format!("HSET {PREFIX}:lease:F token a fence 1.5e9"));
    assert_eq!(corrupt_key(s.lease_acquire("F", "b", 1000, 0).await), "lease:F");
    assert_eq!(corrupt_key(s.lease_renew("F", "a", 1000).await), "lease:F");
    server.command(&format!("LPUSH {PREFIX}:lease-meta:M x"));
    assert_eq!(corrupt_key(s.lease_acquire("M", "a", 1000, 0).await), "lease-meta:M");
    server.command(&format!("HSET {PREFIX}:lease-meta:N fence 12 q_until soon"));
    assert_eq!(corrupt_key(s.lease_acquire("N", "a", 1000, 0).await), "lease-meta:N");

    // An owner over the corrupt key keeps trying without crashing, and never holds.
    let config = LeaseConfig::builder("L", "x").ttl(Duration::from_millis(300)).build().expect("config");
    let h = LeaseOwner::new(s.clone(), config).start(|g| async move { g.lost().await });
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!h.is_finished() && h.fence().is_none());
    assert_eq!(h.stop().await, Ok(()));
}

#[tokio::test]
async fn redis_garbage_in_a_map_key_is_a_typed_error() {
    let Some(server) = RedisServer::start("redis_garbage_in_a_map_key_is_a_typed_error") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    server.command(&format!("SET {PREFIX}:map:m garbage"));
    let set = || MapWrite::Set("v".into());
    assert_eq!(corrupt_key(s.map_write("m", "k", set()).await), "map:m");
    assert_eq!(corrupt_key(s.map_get("m", "k").await), "map:m");
    assert_eq!(corrupt_key(s.map_snapshot("m").await), "map:m");
    assert_eq!(corrupt_key(s.map_txn("m", &[("k".into(), Expect::Absent)], &[("k".into(), None)]).await), "map:m");
    assert_eq!(server.command(&format!("EXISTS {PREFIX}:map-rev:m")).as_deref(), Some(":0"), "nothing written");

    server.command(&format!("SET {PREFIX}:map-rev:n not-a-number"));
    assert_eq!(corrupt_key(s.map_write("n", "k", set()).await), "map-rev:n");
    server.command(&format!("LPUSH {PREFIX}:map-rev:o x"));
    assert_eq!(corrupt_key(s.map_write("o", "k", set()).await), "map-rev:o");
    assert_eq!(server.command(&format!("EXISTS {PREFIX}:map:n")).as_deref(), Some(":0"), "nothing written");
    // The server a counter was judged under, of the wrong type: found before any write, by a
    // write and by a transaction; a string that names no server is only a restart (a jump).
    server.command(&format!("LPUSH {PREFIX}:map-boot:p x"));
    assert_eq!(corrupt_key(s.map_write("p", "k", set()).await), "map-boot:p");
    assert_eq!(corrupt_key(s.map_txn("p", &[], &[("k".into(), None)]).await), "map-boot:p");
    for key in ["map", "map-rev"] {
        assert_eq!(server.command(&format!("EXISTS {PREFIX}:{key}:p")).as_deref(), Some(":0"), "nothing written");
    }
    set_revision(&server, "q", 41);
    server.command(&format!("SET {PREFIX}:map-boot:q garbage"));
    assert!(s.map_write("q", "k", set()).await.expect("a jump").rev > 1_000_000, "garbage is another server");
    // A healthy map next to the corrupt ones is unaffected.
    assert!(s.map_write("fine", "k", set()).await.expect("healthy map").applied);
    // A batch of reads with a corrupt map in it fails whole, naming the key: one answer short,
    // a caller taking the answers in order would read the healthy map's snapshot as the corrupt
    // one's (hunt 31 A #20: the failed read was dropped from the batch's answer).
    for batch in [["n", "fine"], ["fine", "n"]] {
        let reads: Vec<Read> = batch.iter().map(|m| Read::Snapshot { map: (*m).into() }).collect();
        assert_eq!(corrupt_key(s.reads(&reads).await), "map-rev:n", "{batch:?}");
    }

    // A transaction without guards reads nothing of the hash before it writes (no script runs
    // TYPE): its first hash write must fail before the revision moves or anything is published,
    // on a fresh revision (which a commit would seed) and on a used one.
    server.command(&format!("SET {PREFIX}:map:u garbage"));
    let mut w = s.watch("u").await.expect("watch");
    let writes = [("k".to_owned(), Some("v".to_owned())), ("j".to_owned(), None)];
    match s.map_txn("u", &[], &writes).await {
        Err(StoreError::Corrupt { key, detail }) => {
            assert_eq!((key.as_str(), detail.as_str()), ("map:u", "holds a string, expected a hash"))
        }
        other => panic!("expected StoreError::Corrupt, got {other:?}"),
    }
    assert_eq!(server.command(&format!("EXISTS {PREFIX}:map-rev:u")).as_deref(), Some(":0"), "nothing written");
    set_revision(&server, "u", 41);
    assert_eq!(corrupt_key(s.map_txn("u", &[], &writes).await), "map:u");
    assert_eq!(corrupt_key(s.map_write("u", "k", MapWrite::Delete).await), "map:u");
    assert_eq!(server.command(&format!("INCRBY {PREFIX}:map-rev:u 0")).as_deref(), Some(":41"), "revision unmoved");
    assert_eq!(server.command(&format!("GET {PREFIX}:map:u")).as_deref(), Some("$7"), "garbage untouched");
    // Once the garbage is gone the next write takes the next revision, and it is the first thing
    // the watch sees: the failed transactions published nothing.
    server.command(&format!("DEL {PREFIX}:map:u"));
    assert_eq!(s.map_txn("u", &[], &writes).await.expect("txn").rev, 43);
    for (key, value, rev) in [("k", Some("v"), 42), ("j", None, 43)] {
        let want = keel::store::Change { key: key.into(), value: value.map(str::to_owned), rev };
        match tokio::time::timeout(Duration::from_secs(5), w.next()).await.expect("a change in time") {
            WatchEvent::Change(c) => assert_eq!(c, want),
            WatchEvent::Gap => panic!("unexpected gap"),
        }
    }
}

/// Set map `map`'s revision counter by hand, judged under this server process (its `run_id` in
/// `map-boot`), so the next commit takes the next revision instead of jumping as after a restart.
fn set_revision(server: &RedisServer, map: &str, rev: u64) {
    assert_eq!(server.command(&format!("SET {PREFIX}:map-rev:{map} {rev}")).as_deref(), Some("+OK"));
    let lua = "return redis.call('SET', KEYS[1], string.match(redis.call('INFO', 'server'), 'run_id:(%x+)'))";
    let set = server.command(&format!("EVAL \"{lua}\" 1 {PREFIX}:map-boot:{map}"));
    assert_eq!(set.as_deref(), Some("+OK"), "map-boot:{map} set");
}

/// A batch of transactions on a corrupt map fails whole with a typed error and changes nothing:
/// a hash of the wrong type (found by the guards' read, or, without guards, by the first hash
/// write, after which the revision counter is put back exactly or removed if it was missing), and
/// a revision counter holding garbage (found by its `INCRBY` without effect, or put back when it
/// held an integer out of range), on the commit path and on the refused path (`GET`).
#[tokio::test]
async fn redis_garbage_fails_a_batch_of_transactions_whole() {
    let Some(server) = RedisServer::start("redis_garbage_fails_a_batch_of_transactions_whole") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    let guarded = MapTxn { guards: vec![("k".into(), Expect::Absent)], writes: vec![("k".into(), Some("v".into()))] };
    let unguarded = MapTxn { guards: vec![], writes: vec![("j".into(), Some("v".into())), ("i".into(), None)] };
    let counter = |map: &str| server.command(&format!("INCRBY {PREFIX}:map-rev:{map} 0"));

    server.command(&format!("SET {PREFIX}:map:b garbage"));
    let mut w = s.watch("b").await.expect("watch");
    assert_eq!(corrupt_key(s.map_txns("b", &[unguarded.clone(), guarded.clone()]).await), "map:b");
    assert_eq!(corrupt_key(s.map_txns("b", std::slice::from_ref(&unguarded)).await), "map:b");
    assert_eq!(server.command(&format!("EXISTS {PREFIX}:map-rev:b")).as_deref(), Some(":0"), "counter removed again");
    set_revision(&server, "b", 41);
    match s.map_txns("b", std::slice::from_ref(&unguarded)).await {
        Err(StoreError::Corrupt { key, detail }) => {
            assert_eq!((key.as_str(), detail.as_str()), ("map:b", "holds a string, expected a hash"))
        }
        other => panic!("expected StoreError::Corrupt, got {other:?}"),
    }
    assert_eq!(counter("b").as_deref(), Some(":41"), "revision put back");
    server.command(&format!("DEL {PREFIX}:map:b"));
    let out = s.map_txns("b", &[unguarded.clone(), guarded.clone()]).await.expect("healthy again");
    assert_eq!(out.iter().map(|o| (o.applied, o.rev)).collect::<Vec<_>>(), [(true, 43), (true, 44)]);
    match tokio::time::timeout(Duration::from_secs(5), w.next()).await.expect("a change in time") {
        WatchEvent::Change(c) => assert_eq!(c.rev, 42, "the failed batches published nothing"),
        WatchEvent::Gap => panic!("unexpected gap"),
    }

    for (map, garbage, after) in [
        ("c", "-5", Some(":-5")),
        ("d", "1000000000000000000", Some(":1000000000000000000")),
        ("e", "x", None),
        ("f", "9223372036854775807", Some(":9223372036854775807")),
    ] {
        server.command(&format!("SET {PREFIX}:map-rev:{map} {garbage}"));
        assert_eq!(corrupt_key(s.map_txns(map, &[guarded.clone(), unguarded.clone()]).await), format!("map-rev:{map}"));
        assert_eq!(corrupt_key(s.map_write(map, "k", MapWrite::Set("v".into())).await), format!("map-rev:{map}"));
        assert_eq!(
            server.command(&format!("EXISTS {PREFIX}:map:{map}")).as_deref(),
            Some(":0"),
            "{map}: nothing written"
        );
        if let Some(after) = after {
            assert_eq!(counter(map).as_deref(), Some(after), "{map}: counter unchanged");
        }
        // The refused path reads the counter with GET, and judges it the same.
        server.command(&format!("HSET {PREFIX}:map:{map} k taken"));
        assert_eq!(corrupt_key(s.map_txns(map, std::slice::from_ref(&guarded)).await), format!("map-rev:{map}"));
        assert_eq!(corrupt_key(s.map_get(map, "k").await), format!("map-rev:{map}"));
    }
    server.command(&format!("LPUSH {PREFIX}:map-rev:g x"));
    match s.map_txns("g", std::slice::from_ref(&unguarded)).await {
        Err(StoreError::Corrupt { key, detail }) => {
            assert_eq!((key.as_str(), detail.as_str()), ("map-rev:g", "holds a list, expected a string"))
        }
        other => panic!("expected StoreError::Corrupt, got {other:?}"),
    }
    assert_eq!(server.command(&format!("EXISTS {PREFIX}:map:g")).as_deref(), Some(":0"), "nothing written");
}

#[tokio::test]
async fn redis_bad_config_is_a_config_error() {
    let field = |b: keel::store::redis::RedisConfigBuilder| b.build().map(|_| ()).map_err(|e| e.field);
    assert_eq!(field(RedisConfig::builder("http://127.0.0.1:6379")), Err("url"));
    assert_eq!(field(RedisConfig::builder("127.0.0.1:6379")), Err("url"));
    assert_eq!(field(RedisConfig::builder("redis://127.0.0.1:notaport")), Err("url"));
    assert_eq!(field(RedisConfig::builder("redis://127.0.0.1").key_prefix("")), Err("key_prefix"));
    assert_eq!(field(RedisConfig::builder("redis://127.0.0.1").key_prefix("a b")), Err("key_prefix"));
    assert_eq!(field(RedisConfig::builder("redis://127.0.0.1").op_timeout(Duration::ZERO)), Err("op_timeout"));
    let zero_connect = RedisConfig::builder("redis://127.0.0.1").connect_timeout(Duration::ZERO);
    assert_eq!(field(zero_connect), Err("connect_timeout"));
    assert_eq!(field(RedisConfig::builder("redis://user:pw@127.0.0.1:6380/3").key_prefix("app")), Ok(()));
    let err = RedisConfig::builder("http://user:hunter2@host").build().expect_err("bad scheme");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

#[tokio::test]
async fn redis_unreachable_server_is_not_applied() {
    let Some(server) = RedisServer::start("redis_unreachable_server_is_not_applied") else { return };
    let config = server.config();
    server.kill(); // nothing listens on the port any more
    match RedisStore::connect(config.clone()).await {
        Err(e) => assert_eq!(e.outcome(), Outcome::NotApplied, "{e}"),
        Ok(_) => panic!("connected to a dead port"),
    }
    let lazy = RedisStore::connect_lazy(config).expect("lazy store");
    let e = lazy.lease_acquire("L", "a", 1000, 0).await.expect_err("dead port");
    assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
    assert!(e.is_transient());
    // It comes back by itself once Redis is up.
    server.restart_losing_data();
    keel_tests::wait_ready(&lazy).await;
    assert!(lazy.lease_acquire("L", "a", 1000, 0).await.is_ok());
}

#[tokio::test]
async fn redis_lost_connection_is_a_transient_error() {
    let Some(server) = RedisServer::start("redis_lost_connection_is_a_transient_error") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    s.map_write("m", "k", MapWrite::Set("v".into())).await.expect("write");
    server.kill();
    for _ in 0..3 {
        let e = s.map_write("m", "k", MapWrite::Set("w".into())).await.expect_err("redis is dead");
        assert!(e.is_transient(), "{e:?}");
    }
}

#[tokio::test]
async fn redis_prefixes_isolate_deployments() {
    let Some(server) = RedisServer::start("redis_prefixes_isolate_deployments") else { return };
    let with_prefix = |p: &str| RedisConfig::builder(server.url()).key_prefix(p).build().expect("config");
    let a = RedisStore::connect(with_prefix("deploy-a")).await.expect("connect");
    let b = RedisStore::connect(with_prefix("deploy-b")).await.expect("connect");
    assert!(matches!(a.lease_acquire("L", "x", 5000, 0).await, Ok(keel::store::Acquire::Granted { .. })));
    assert!(matches!(b.lease_acquire("L", "y", 5000, 0).await, Ok(keel::store::Acquire::Granted { .. })));
    let mut wb = b.watch("m").await.expect("watch");
    a.map_write("m", "k", MapWrite::Set("a".into())).await.expect("write");
    let o = b.map_write("m", "k", MapWrite::Set("b".into())).await.expect("write");
    match tokio::time::timeout(Duration::from_secs(5), wb.next()).await {
        Ok(WatchEvent::Change(c)) => assert_eq!((c.value.as_deref(), c.rev), (Some("b"), o.rev), "only b's change"),
        other => panic!("{other:?}"),
    }
    assert_eq!(server.command("EXISTS deploy-a:lease:L deploy-b:lease:L").as_deref(), Some(":2"));
}

#[tokio::test]
async fn redis_idle_watch_stays_connected() {
    let Some(server) = RedisServer::start("redis_idle_watch_stays_connected") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    let mut w = s.watch("m").await.expect("watch");
    // Longer than the feed's keep-alive ping period: a ping must not break the feed.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let o = s.map_write("m", "k", MapWrite::Set("v".into())).await.expect("write");
    match tokio::time::timeout(Duration::from_secs(5), w.next()).await {
        Ok(WatchEvent::Change(c)) => assert_eq!(c.rev, o.rev),
        other => panic!("expected the change without a gap, got {other:?}"),
    }
}

#[tokio::test]
async fn redis_script_cache_flush_is_survived() {
    let Some(server) = RedisServer::start("redis_script_cache_flush_is_survived") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    s.map_write("m", "k", MapWrite::Set("1".into())).await.expect("write");
    assert_eq!(server.command("SCRIPT FLUSH").as_deref(), Some("+OK"));
    // EVALSHA meets NOSCRIPT (not applied), loads the script and runs it once.
    let o = s.map_write("m", "k", MapWrite::Append(vec!["2".into()])).await.expect("write after flush");
    assert_eq!(o.value.as_deref(), Some("1\u{1f}2"), "applied exactly once");
}

#[tokio::test]
async fn redis_lagging_watch_reports_a_gap() {
    let Some(server) = RedisServer::start("redis_lagging_watch_reports_a_gap") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    let mut w = s.watch("m").await.expect("watch");
    let n = keel::store::redis::RedisWatch::BUFFER as u64 + 500;
    let mut last = 0;
    for i in 0..n {
        last = s.map_write("m", "k", MapWrite::Set(i.to_string())).await.expect("write").rev;
    }
    let mut prev: Option<u64> = None;
    let mut delivered = 0u64;
    while let WatchEvent::Change(c) = tokio::time::timeout(Duration::from_secs(5), w.next()).await.expect("an event") {
        if let Some(p) = prev {
            assert_eq!(c.rev, p + 1, "no silent hole before the gap");
        }
        prev = Some(c.rev);
        delivered += 1;
    }
    assert!(delivered < n, "a gap is reported only when changes were dropped");
    let before_gap = prev.unwrap_or_default();
    assert!(before_gap < last);
    let o = s.map_write("m", "k", MapWrite::Set("after".into())).await.expect("write");
    loop {
        match tokio::time::timeout(Duration::from_secs(5), w.next()).await.expect("an event") {
            WatchEvent::Change(c) if c.rev == o.rev => break,
            WatchEvent::Change(c) => assert!(c.rev > before_gap, "revisions keep rising after the gap: {}", c.rev),
            WatchEvent::Gap => {}
        }
    }
}

#[tokio::test]
async fn redis_watch_survives_a_long_outage() {
    let Some(server) = RedisServer::start("redis_watch_survives_a_long_outage") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    // A name with colons, as every pool map's: the channel it resubscribes to is the same
    // (hunt 31 A #21: a reconnect that derived the channel again, differently, went silent).
    let mut w = s.watch("pool:g:jobs").await.expect("watch");
    server.kill();
    // Several failed reconnect attempts (with backoff) while Redis is gone.
    tokio::time::sleep(Duration::from_secs(3)).await;
    server.restart_losing_data();
    let ev = tokio::time::timeout(Duration::from_secs(10), w.next()).await.expect("a gap after the outage");
    assert_eq!(ev, WatchEvent::Gap);
    keel_tests::wait_ready(&s).await;
    let o = s.map_write("pool:g:jobs", "k", MapWrite::Set("back".into())).await.expect("write");
    loop {
        match tokio::time::timeout(Duration::from_secs(5), w.next()).await.expect("the change") {
            WatchEvent::Gap => continue,
            WatchEvent::Change(c) => {
                assert_eq!((c.key.as_str(), c.value.as_deref(), c.rev), ("k", Some("back"), o.rev));
                break;
            }
        }
    }
}

/// A map's first revision is seeded from the store's time in milliseconds × `SEED_PER_MS`, in
/// every millisecond of a second: the scripts build the seed as a string (a Lua double would lose
/// digits), and a millisecond part printed without its leading zeros made a seed taken in the
/// first 99 ms of a second 10–100 times too small, below older fences and revisions (hunt 31
/// A #4, caught before only when a test happened to run in those 99 ms). Fresh maps, written
/// every 27 ms for over a second, so every tenth of a second is sampled.
#[tokio::test]
async fn redis_seeds_are_the_store_time_in_every_millisecond() {
    let Some(server) = RedisServer::start("redis_seeds_are_the_store_time_in_every_millisecond") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    let per_ms = keel::store::SEED_PER_MS;
    let mut tenths = [false; 10];
    for i in 0..400 {
        let before = s.time_ms().await.expect("time");
        let rev = s.map_write(&format!("m{i}"), "k", MapWrite::Set("v".into())).await.expect("write").rev;
        let after = s.time_ms().await.expect("time");
        assert!(
            before * per_ms < rev && rev <= after * per_ms + 1,
            "the first revision {rev} of a fresh map is not seeded from the store time ({before}..={after} ms)"
        );
        if before == after {
            tenths[(before % 1000 / 100) as usize] = true;
        }
        if tenths.iter().all(|&t| t) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(27)).await;
    }
    panic!("400 writes 27 ms apart did not sample every tenth of a second: {tenths:?}");
}

/// A message on a map's channel that is not a change keel published (another client's PUBLISH,
/// a message of a newer keel) is a gap to the watch's consumer, ahead of the next change: the
/// changes it may have stood for are unknown, and a consumer that skipped it silently would
/// apply the next change on top of a hole (hunt 31 A #5: an unparsable message was dropped).
#[tokio::test]
async fn redis_garbage_on_a_watch_channel_is_a_gap() {
    let Some(server) = RedisServer::start("redis_garbage_on_a_watch_channel_is_a_gap") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    let mut w = s.watch("m").await.expect("watch");
    let first = s.map_write("m", "k", MapWrite::Set("1".into())).await.expect("write").rev;
    async fn next(w: &mut keel::store::redis::RedisWatch) -> WatchEvent {
        tokio::time::timeout(Duration::from_secs(5), w.next()).await.expect("an event")
    }
    assert!(matches!(next(&mut w).await, WatchEvent::Change(c) if c.rev == first));
    assert_eq!(server.command(&format!("PUBLISH {PREFIX}:watch:m not-a-change")).as_deref(), Some(":1"));
    let after = s.map_write("m", "k", MapWrite::Set("2".into())).await.expect("write").rev;
    assert_eq!(next(&mut w).await, WatchEvent::Gap, "the garbage is a gap");
    assert!(matches!(next(&mut w).await, WatchEvent::Change(c) if c.rev == after), "then the next change");
}

/// A watch whose server stops answering (a half-open connection: nothing is refused, nothing
/// comes back) gives the connection up once a keep-alive ping goes unanswered for the op
/// timeout, subscribes again and reports a gap: changes made meanwhile on another path to the
/// server are unknown to it. A ping awaited without its timeout kept the watch on the dead
/// connection for good, deaf and with no gap (hunt 31 A #15). A frozen server stands in for the
/// dead path: after the thaw the stale ping is answered, and only a watch that gave it up in
/// time has subscribed again.
#[tokio::test]
async fn redis_unanswered_keep_alive_replaces_the_watch_connection() {
    let Some(server) = RedisServer::start("redis_unanswered_keep_alive_replaces_the_watch_connection") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    let mut w = s.watch("m").await.expect("watch");
    server.freeze();
    // Past the keep-alive period (5 s) and the op timeout of a ping.
    tokio::time::sleep(Duration::from_secs(5) + server.config().op_timeout() + Duration::from_millis(1500)).await;
    server.thaw();
    let ev = tokio::time::timeout(Duration::from_secs(5), w.next()).await.expect("a gap after the unanswered ping");
    assert_eq!(ev, WatchEvent::Gap);
}

/// A commit judges a restart even when the counter needs no jump (it is above the seed the
/// store's time gives, as after a failover to a server whose clock is behind): the next
/// snapshot says no restart came after the last commit. Recording the judged server only where
/// the counter was seeded again left every later snapshot saying "restarted" (hunt 31 A #29).
#[tokio::test]
async fn redis_a_commit_judges_a_restart_without_a_jump() {
    let Some(server) = RedisServer::start("redis_a_commit_judges_a_restart_without_a_jump") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    // A counter far above any store-time seed, last judged under another server process.
    assert_eq!(server.command(&format!("SET {PREFIX}:map-rev:m 5000000000000000")).as_deref(), Some("+OK"));
    assert_eq!(server.command(&format!("SET {PREFIX}:map-boot:m 0123abcd")).as_deref(), Some("+OK"));
    assert!(s.map_snapshot("m").await.expect("snapshot").restarted_since_commit, "not judged yet");
    let w = s.map_write("m", "k", MapWrite::Set("v".into())).await.expect("write");
    assert_eq!(w.rev, 5_000_000_000_000_001, "no jump: the counter is above the seed");
    let snap = s.map_snapshot("m").await.expect("snapshot");
    assert!(!snap.restarted_since_commit, "the commit judged the restart: {snap:?}");
}

/// A lease's fence counter above the store-time seed, last judged under another server process
/// (a failover to a server whose clock is behind, or more grants than milliseconds): the
/// restart's re-seeding keeps the counter, so the next grant's fence is above every earlier one.
/// Taking the seed whenever it is no shorter than the counter (a `>=` for a `>` in the script's
/// comparison of decimal strings, hunt 48's Lua sweep) sent fences back below grants whose
/// holders may still write with them; no other case reaches it (a real restart takes long enough
/// for the seed to pass any counter).
#[tokio::test]
async fn redis_a_restart_keeps_a_fence_counter_ahead_of_the_clock() {
    let Some(server) = RedisServer::start("redis_a_restart_keeps_a_fence_counter_ahead_of_the_clock") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    // Far above any store-time seed (ms × 1000: 16 digits today), the same length.
    let ahead: u64 = 9_000_000_000_000_000;
    let set = server.command(&format!("HSET {PREFIX}:lease-meta:L fence {ahead} q_until 0 boot 0123abcd"));
    assert_eq!(set.as_deref(), Some(":3"), "lease-meta:L set");
    let quarantine_ms = 200;
    let first = s.lease_acquire("L", "a", 60_000, quarantine_ms).await.expect("acquire");
    assert!(matches!(first, keel::store::Acquire::Quarantined { .. }), "a restart quarantines: {first:?}");
    tokio::time::sleep(Duration::from_millis(quarantine_ms + 100)).await;
    match s.lease_acquire("L", "a", 60_000, quarantine_ms).await.expect("acquire") {
        keel::store::Acquire::Granted { fence } => {
            assert!(fence > ahead, "fence {fence} after the restart must exceed the counter's {ahead}")
        }
        other => panic!("not granted after the quarantine: {other:?}"),
    }
}

/// `watch` on a server that accepts nothing more (frozen) fails within the connect timeout and
/// one op timeout instead of hanging; the reconnect loop subscribes the same way, so an
/// unbounded subscribe would also leave a reconnecting watch deaf for good (hunt 31 A #26).
#[tokio::test]
async fn redis_watch_on_a_frozen_server_ends_in_time() {
    let Some(server) = RedisServer::start("redis_watch_on_a_frozen_server_ends_in_time") else { return };
    let s = RedisStore::connect(server.config()).await.expect("connect");
    server.freeze();
    let r = tokio::time::timeout(Duration::from_secs(5), s.watch("m")).await;
    server.thaw();
    assert!(matches!(r, Ok(Err(_))), "watch on a frozen server: {:?}", r.map(|w| w.map(|_| ())));
}

/// A server that takes the TCP connection and never answers (a listener that never accepts)
/// fails a call within the connect timeout as not applied: the request was never sent. Without a
/// connect timeout the call ran to its op timeout and was reported `Timeout`, an unknown outcome,
/// so a caller could not retry it as a fresh call (hunt 31 A #25).
#[tokio::test]
async fn redis_a_server_that_never_answers_the_connect_is_not_applied() {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener that never accepts");
    let port = silent.local_addr().expect("its port").port();
    let cfg = RedisConfig::builder(format!("redis://127.0.0.1:{port}"))
        .connect_timeout(Duration::from_millis(200))
        .op_timeout(Duration::from_millis(1000))
        .build()
        .expect("config");
    let s = RedisStore::connect_lazy(cfg).expect("a lazy store");
    let e = s.lease_acquire("L", "a", 1000, 0).await.expect_err("nothing answers");
    assert_eq!(e.outcome(), Outcome::NotApplied, "{e:?}");
    drop(silent);
}
