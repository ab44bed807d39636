//! `LeaseOwner` over a real, private `redis-server`: contention, a restart longer than the TTL,
//! and outages shorter than the margin.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use keel::RedisStore;
use keel::lease::{LeaseConfig, LeaseHandle, LeaseOwner, LeaseState, LostReason, WorkState};
use keel_tests::RedisServer;
use tokio::time::Instant;

fn owner(store: &RedisStore, name: &str, ttl: Duration) -> LeaseHandle {
    let config = LeaseConfig::builder("jobs", name).ttl(ttl).build().expect("valid lease config");
    LeaseOwner::new(store.clone(), config).start(|guard| async move { guard.lost().await })
}

fn holders(owners: &[LeaseHandle]) -> Vec<usize> {
    owners.iter().enumerate().filter(|(_, h)| h.fence().is_some()).map(|(i, _)| i).collect()
}

/// Wait until someone holds, then watch for `settle` that exactly one holds at every sample.
async fn one_holder(owners: &[LeaseHandle], within: Duration, settle: Duration) -> (usize, u64) {
    let deadline = Instant::now() + within;
    let first = loop {
        let h = holders(owners);
        assert!(h.len() <= 1, "two holders at once: {h:?}");
        if let [i] = h[..] {
            break i;
        }
        assert!(Instant::now() < deadline, "nobody acquired the lease within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let fence = owners[first].fence().unwrap_or_default();
    let until = Instant::now() + settle;
    while Instant::now() < until {
        assert_eq!(holders(owners), vec![first], "exactly one holder, and it stays");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    (first, fence)
}

/// Record every state an owner publishes.
fn record(h: &LeaseHandle) -> Arc<Mutex<Vec<LeaseState>>> {
    let log = Arc::new(Mutex::new(vec![h.state()]));
    let (mut rx, out) = (h.subscribe(), log.clone());
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let s = rx.borrow_and_update().clone();
            out.lock().expect("log").push(s);
        }
    });
    log
}

async fn stop_all(owners: Vec<LeaseHandle>) {
    for h in owners {
        assert!(!h.is_finished(), "an owner ended on its own (crash or escalation)");
        assert_eq!(h.stop().await, Ok(()));
    }
}

#[tokio::test]
async fn redis_three_contenders_one_holder_and_fences_increase() {
    let Some(server) = RedisServer::start("redis_three_contenders_one_holder_and_fences_increase") else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let ttl = Duration::from_millis(900);
    let mut owners: Vec<_> = ["a", "b", "c"].iter().map(|n| owner(&store, n, ttl)).collect();
    // The first grant waits out one TTL of quarantine.
    let (first, f1) = one_holder(&owners, Duration::from_secs(10), Duration::from_millis(1500)).await;
    let leader = owners.remove(first);
    assert_eq!(leader.stop().await, Ok(()), "graceful stop releases");
    let (_, f2) = one_holder(&owners, Duration::from_secs(5), Duration::from_millis(1000)).await;
    assert!(f2 > f1, "fence {f2} after {f1}");
    stop_all(owners).await;
}

#[tokio::test]
async fn redis_restart_longer_than_ttl_steps_down_before_ttl() {
    let Some(server) = RedisServer::start("redis_restart_longer_than_ttl_steps_down_before_ttl") else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let ttl = Duration::from_millis(1500);
    let owners: Vec<_> = ["a", "b", "c"].iter().map(|n| owner(&store, n, ttl)).collect();
    let (leader, f1) = one_holder(&owners, Duration::from_secs(10), Duration::from_millis(500)).await;
    let mut rx = owners[leader].subscribe();

    let killed_at = Instant::now();
    server.kill();
    // Every renewal that succeeded was sent before the kill, so the grant could expire at
    // killed_at + ttl at the earliest: the holder must have stepped down before that.
    let lost = tokio::time::timeout(ttl * 2, rx.wait_for(|s| matches!(s, LeaseState::Lost { .. })))
        .await
        .expect("holder did not step down")
        .expect("owner alive");
    let stepped_down_after = killed_at.elapsed();
    assert!(stepped_down_after < ttl, "stepped down {stepped_down_after:?} after the kill; ttl {ttl:?}");
    assert_eq!(lost, LeaseState::Lost { fence: f1, reason: LostReason::Deadline });
    assert!(holders(&owners).is_empty());

    tokio::time::sleep_until(killed_at + ttl * 2).await;
    assert!(holders(&owners).is_empty(), "nobody holds while redis is down");
    server.restart_losing_data();
    let restarted = Instant::now();
    let (_, f2) = one_holder(&owners, Duration::from_secs(10), Duration::from_millis(1000)).await;
    assert!(restarted.elapsed() >= ttl, "the data loss was quarantined for one TTL");
    assert!(f2 > f1, "fence {f2} after a data loss must exceed {f1}");
    stop_all(owners).await;
}

#[tokio::test]
async fn redis_outage_shorter_than_margin_keeps_the_lease() {
    let Some(server) = RedisServer::start("redis_outage_shorter_than_margin_keeps_the_lease") else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    // ttl 3 s: renew every 1 s, deadline 2.7 s after a renewal was sent.
    let ttl = Duration::from_secs(3);
    let owners: Vec<_> = ["a", "b"].iter().map(|n| owner(&store, n, ttl)).collect();
    let (leader, f1) = one_holder(&owners, Duration::from_secs(10), Duration::from_millis(200)).await;
    let log = record(&owners[leader]);

    server.freeze(); // connections stay open, nothing answers
    tokio::time::sleep(Duration::from_millis(1000)).await;
    server.thaw();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.restart_keeping_data(); // connections break; the grant survives in the RDB file
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let held = LeaseState::Held { fence: f1, work: WorkState::Running };
    assert_eq!(owners[leader].state(), held);
    let seen = log.lock().expect("log").clone();
    assert!(seen.iter().all(|s| *s == held), "no transition away from Held: {seen:?}");
    assert_eq!(holders(&owners), vec![leader]);
    stop_all(owners).await;
}

#[tokio::test]
async fn redis_frozen_longer_than_ttl_steps_down_and_recovers_without_quarantine() {
    let test = "redis_frozen_longer_than_ttl_steps_down_and_recovers_without_quarantine";
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let ttl = Duration::from_millis(1500);
    let owners: Vec<_> = ["a", "b"].iter().map(|n| owner(&store, n, ttl)).collect();
    let (leader, f1) = one_holder(&owners, Duration::from_secs(10), Duration::from_millis(300)).await;
    let mut rx = owners[leader].subscribe();

    let frozen_at = Instant::now();
    server.freeze(); // like a partition: requests are sent, nothing answers
    tokio::time::timeout(ttl * 2, rx.wait_for(|s| matches!(s, LeaseState::Lost { .. })))
        .await
        .expect("holder did not step down")
        .expect("owner alive");
    assert!(frozen_at.elapsed() < ttl, "stepped down {:?} after the freeze; ttl {ttl:?}", frozen_at.elapsed());
    tokio::time::sleep_until(frozen_at + ttl * 2).await;
    server.thaw();
    let thawed = Instant::now();
    // The data survived: no quarantine (one TTL), so a holder appears within about a poll interval.
    while holders(&owners).is_empty() {
        assert!(
            thawed.elapsed() < ttl,
            "no holder {:?} after the thaw: quarantined without a data loss?",
            thawed.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (_, f2) = one_holder(&owners, Duration::from_secs(5), Duration::from_millis(500)).await;
    assert!(f2 > f1);
    stop_all(owners).await;
}
