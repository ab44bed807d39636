//! The completer and its subscription manager over a real, private `redis-server`: a burst of
//! completions with a stop in the middle loses nothing (every accepted completion is in Redis and
//! reached every subscriber), and a stop while Redis is down returns within its bound and lists
//! what was not flushed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use keel::RedisStore;
use keel::completer::{Completer, CompleterConfig, Completion, CompletionEvent, KindFilter, SubscriptionManager};
use keel::shutdown::Shutdown;
use keel::store::Store;
use keel_tests::RedisServer;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The stored value of a completion (`attempt␟kind␟payload`, see docs/lifecycle.md).
fn stored(c: &Completion) -> String {
    format!("{}\u{1f}{}\u{1f}{}", c.attempt, c.kind, c.payload)
}

/// Collect a subscription until the manager closes it.
fn drain(mut sub: keel::completer::Subscription) -> JoinHandle<(Vec<CompletionEvent>, u64)> {
    tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(e) = sub.recv().await {
            got.push(e);
        }
        (got, sub.dropped())
    })
}

/// Completions by key (keys are unique in these tests; `Completion` is not `Ord`).
fn by_key<'a>(cs: impl IntoIterator<Item = &'a Completion>) -> BTreeMap<String, Completion> {
    cs.into_iter().map(|c| (c.key.clone(), c.clone())).collect()
}

fn kind_of(i: usize) -> &'static str {
    if i.is_multiple_of(3) { "failed" } else { "succeeded" }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_completer_burst_with_stop_in_the_middle_loses_nothing() {
    burst_with_stop_in_the_middle("redis_completer_burst_with_stop_in_the_middle_loses_nothing").await;
}

async fn burst_with_stop_in_the_middle(test: &str) {
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let cfg = CompleterConfig::builder("jobs")
        .batch_size(16)
        .flush_interval(Duration::from_millis(10))
        .backlog(256)
        .stop_timeout(Duration::from_secs(20))
        .build()
        .expect("valid completer config");
    let completer = Completer::new(store.clone(), cfg.clone());
    let subs = SubscriptionManager::new(&completer).with_buffer(8192);
    let all = drain(subs.subscribe(KindFilter::All));
    let failed = drain(subs.subscribe(KindFilter::only(["failed"])));
    let caller = Shutdown::new("app");
    subs.start(&caller).await;
    completer.start(&caller).await;

    const PRODUCERS: usize = 4;
    const EACH: usize = 200;
    let accepted_n = Arc::new(AtomicUsize::new(0));
    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let producer = completer.producer(&format!("worker-{p}")).expect("completer running");
        let n = accepted_n.clone();
        producers.push(tokio::spawn(async move {
            let mut accepted = Vec::new();
            for i in 0..EACH {
                let c =
                    Completion::new(format!("job-{p}-{i}"), (i % 5 + 1) as u64, kind_of(i), format!("result {p}/{i}"));
                if producer.complete(c.clone()).await.is_ok() {
                    accepted.push(c);
                    n.fetch_add(1, Ordering::Relaxed);
                }
                // Paced, so the backlog empties between completions: a completer that did not
                // wait for its producers would close while they are still producing.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            producer.finish();
            accepted
        }));
    }

    // Stop in the middle of the burst.
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted_n.load(Ordering::Relaxed) < PRODUCERS * EACH / 4 {
        assert!(Instant::now() < deadline, "producers made no progress");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let at_stop = accepted_n.load(Ordering::Relaxed);
    assert!(at_stop < PRODUCERS * EACH, "the stop came in the middle of the burst ({at_stop})");
    assert_eq!(completer.stop().await, Ok(()), "a reachable Redis drains everything");
    subs.stop().await;

    let mut accepted = Vec::new();
    for p in producers {
        accepted.extend(p.await.expect("producer task"));
    }
    // Registered producers are waited for: nothing they completed was refused.
    assert_eq!(accepted.len(), PRODUCERS * EACH, "every completion of a registered producer was accepted");

    let snap = store.map_snapshot(cfg.map()).await.expect("snapshot");
    for c in &accepted {
        assert_eq!(snap.entries.get(&c.key), Some(&stored(c)), "{} is in Redis", c.key);
    }
    assert_eq!(snap.entries.len(), accepted.len(), "nothing else in the completions map");

    let want = by_key(&accepted);
    let want_failed = by_key(accepted.iter().filter(|c| c.kind == "failed"));
    let (got_all, dropped_all) = all.await.expect("subscriber");
    let (got_failed, dropped_failed) = failed.await.expect("subscriber");
    assert_eq!((dropped_all, dropped_failed), (0, 0), "no subscriber overflowed");
    assert_eq!(got_all.len(), want.len(), "every accepted completion delivered once");
    assert_eq!(by_key(got_all.iter().map(|e| &e.completion)), want);
    assert_eq!(got_failed.len(), want_failed.len(), "every failed completion delivered once to the filter");
    assert_eq!(by_key(got_failed.iter().map(|e| &e.completion)), want_failed);
    // An event is emitted only after its batch was written: its revision is a real one.
    assert!(got_all.iter().all(|e| e.rev > 0 && e.rev <= snap.rev));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_completer_stop_with_redis_down_is_bounded_and_reports_unflushed() {
    let test = "redis_completer_stop_with_redis_down_is_bounded_and_reports_unflushed";
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let stop_timeout = Duration::from_millis(1500);
    let cfg = CompleterConfig::builder("jobs")
        .batch_size(8)
        .flush_interval(Duration::from_millis(10))
        .op_timeout(Duration::from_millis(300))
        .retry_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .stop_timeout(stop_timeout)
        .build()
        .expect("valid completer config");
    let completer = Completer::new(store.clone(), cfg.clone());
    let subs = SubscriptionManager::new(&completer);
    let mut sub = subs.subscribe(KindFilter::All);
    let caller = Shutdown::new("app");
    subs.start(&caller).await;
    completer.start(&caller).await;

    let producer = completer.producer("worker").expect("running");
    let before: Vec<Completion> =
        (0..20).map(|i| Completion::new(format!("early-{i}"), 1, "succeeded", format!("{i}"))).collect();
    for c in &before {
        producer.complete(c.clone()).await.expect("accepted");
    }
    // Wait until all of them were flushed (delivered), then kill Redis.
    let mut delivered = BTreeMap::new();
    while delivered.len() < before.len() {
        let e = tokio::time::timeout(Duration::from_secs(10), sub.recv())
            .await
            .expect("early completions delivered in time")
            .expect("subscription open");
        assert!(delivered.insert(e.completion.key.clone(), e.completion).is_none(), "delivered once");
    }
    assert_eq!(delivered, by_key(&before));
    tokio::task::block_in_place(|| server.kill());

    let after: Vec<Completion> =
        (0..30).map(|i| Completion::new(format!("late-{i}"), 2, "failed", format!("{i}"))).collect();
    for c in &after {
        producer.complete(c.clone()).await.expect("accepted into the backlog while Redis is down");
    }
    producer.finish();

    let t0 = Instant::now();
    let err = completer.stop().await.expect_err("Redis is down: the stop cannot flush");
    let took = t0.elapsed();
    let slack = Duration::from_secs(3);
    assert!(took <= stop_timeout + slack, "stop took {took:?}; bound {stop_timeout:?} + slack {slack:?}");
    assert_eq!(err.undelivered, 0);
    assert!(err.producers_left.is_empty(), "the producer finished: {:?}", err.producers_left);
    assert_eq!(err.unflushed.len(), after.len(), "each completion reported once");
    assert_eq!(by_key(&err.unflushed), by_key(&after), "exactly the completions accepted while Redis was down");

    // The manager drains what was delivered and closes; nothing late was ever delivered.
    subs.stop().await;
    let mut rest = Vec::new();
    while let Some(e) = sub.recv().await {
        rest.push(e);
    }
    assert!(rest.is_empty(), "no event for an unflushed completion: {rest:?}");

    // Redis comes back (empty): nothing of the late batch was written behind our back.
    tokio::task::block_in_place(|| server.restart());
    keel_tests::wait_ready(&store).await;
    let snap = store.map_snapshot(cfg.map()).await.expect("snapshot");
    assert!(after.iter().all(|c| !snap.entries.contains_key(&c.key)));
}
