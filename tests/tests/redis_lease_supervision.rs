//! `LeaseOwner` over a real `redis-server` when things go wrong that retrying cannot fix, or that
//! are not the store's fault: guarded work that panics or returns under a held lease (#12 item
//! 2), and permanent store errors that must surface as a typed error within a bound (#12 item 3).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use keel::lease::{
    Guard, LeaseConfig, LeaseError, LeaseHandle, LeaseOwner, LeaseState, LostReason, WorkPolicy, WorkState,
};
use keel::{RedisConfig, RedisStore};
use keel_tests::{PREFIX, RedisServer};
use tokio::time::Instant;

const TTL: Duration = Duration::from_millis(900);

fn config(owner: &str) -> LeaseConfig {
    // quarantine off: the servers here never lose data, and the tests need no first-use wait.
    LeaseConfig::builder("jobs", owner).ttl(TTL).quarantine(false).build().expect("valid lease config")
}

/// Collect every state the owner publishes until `done` says stop, within `within`.
async fn states_until(h: &LeaseHandle, within: Duration, mut done: impl FnMut(&LeaseState) -> bool) -> Vec<LeaseState> {
    let mut rx = h.subscribe();
    let mut seen = Vec::new();
    let r = tokio::time::timeout(within, async {
        loop {
            let s = rx.borrow_and_update().clone();
            let stop = done(&s);
            seen.push(s);
            if stop {
                return;
            }
            rx.changed().await.expect("owner alive");
        }
    })
    .await;
    assert!(r.is_ok(), "not reached within {within:?}; states seen: {seen:?}");
    seen
}

#[tokio::test]
async fn redis_work_panics_under_a_held_lease_are_restarted_and_the_lease_kept() {
    let test = "redis_work_panics_under_a_held_lease_are_restarted_and_the_lease_kept";
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let runs = Arc::new(AtomicU32::new(0));
    let counter = runs.clone();
    // Default policy: restart with backoff while held.
    let leader = LeaseOwner::new(store.clone(), config("a")).start(move |guard: Guard| {
        let run = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            if run < 2 {
                panic!("guarded work run {run} fails");
            }
            guard.lost().await
        }
    });
    let fence = leader.held().await.expect("held");
    let seen = states_until(&leader, Duration::from_secs(5), |s| {
        runs.load(Ordering::SeqCst) >= 3 && *s == LeaseState::Held { fence, work: WorkState::Running }
    })
    .await;
    assert!(
        seen.iter().any(|s| matches!(s, LeaseState::Held { work: WorkState::Restarting { panicked: true, .. }, .. })),
        "the state reported the restart after a panic: {seen:?}"
    );
    assert!(seen.iter().all(|s| s.fence() == Some(fence)), "the lease stayed held under one grant: {seen:?}");
    // A second contender never gets it while the leader restarts its work.
    let other = LeaseOwner::new(store.clone(), config("b")).start(|guard: Guard| async move { guard.lost().await });
    tokio::time::sleep(TTL * 2).await;
    assert_eq!(other.fence(), None);
    assert_eq!(leader.fence(), Some(fence));
    assert!(!leader.is_finished(), "the panics never reached the owner");
    assert_eq!(leader.stop().await, Ok(()));
    assert_eq!(other.stop().await, Ok(()));
}

#[tokio::test]
async fn redis_work_that_ends_under_step_down_hands_the_lease_over() {
    let test = "redis_work_that_ends_under_step_down_hands_the_lease_over";
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    let leader = LeaseOwner::new(store.clone(), config("a")).work_policy(WorkPolicy::step_down()).start(
        |_guard: Guard| async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            panic!("the leader's work dies");
        },
    );
    let f1 = leader.held().await.expect("held");
    let other = LeaseOwner::new(store.clone(), config("b")).start(|guard: Guard| async move { guard.lost().await });
    let seen = states_until(&leader, Duration::from_secs(5), |s| matches!(s, LeaseState::Lost { .. })).await;
    assert_eq!(seen.last(), Some(&LeaseState::Lost { fence: f1, reason: LostReason::WorkEnded }));
    // Released at once: the other owner gets it within about one poll interval, not a TTL.
    let released = Instant::now();
    let f2 = tokio::time::timeout(TTL, other.held()).await.expect("taken over within a TTL").expect("held");
    assert!(f2 > f1, "fence {f2} after {f1}");
    assert!(released.elapsed() < TTL, "handed over in {:?}", released.elapsed());
    assert!(!leader.is_finished(), "the panic never reached the owner");
    assert_eq!(leader.stop().await, Ok(()));
    assert_eq!(other.stop().await, Ok(()));
}

/// The bound within which a permanent error must surface: three attempts, each at most one
/// store timeout (300 ms) plus a retry backoff (renew/4 = 75 ms), with slack for a loaded host.
const PERMANENT_BOUND: Duration = Duration::from_secs(5);

#[tokio::test]
async fn redis_wrong_password_ends_in_a_typed_error_within_the_bound() {
    let test = "redis_wrong_password_ends_in_a_typed_error_within_the_bound";
    let Some(server) = RedisServer::start(test) else { return };
    assert_eq!(server.command("CONFIG SET requirepass s3cret").as_deref(), Some("+OK"));
    let url = format!("redis://:wrong@127.0.0.1:{}", server.port());
    let cfg = RedisConfig::builder(url)
        .key_prefix(PREFIX)
        .op_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .expect("valid config");
    let store = RedisStore::connect_lazy(cfg).expect("lazy store");
    let owner = LeaseOwner::new(store, config("a")).start(|guard: Guard| async move { guard.lost().await });
    let started = Instant::now();
    let err = tokio::time::timeout(PERMANENT_BOUND, owner.held()).await.expect("surfaced within the bound");
    let Err(LeaseError::Store(e)) = err else { panic!("expected a permanent store error, got {err:?}") };
    assert!(!e.is_transient(), "{e:?}");
    assert!(e.to_string().to_ascii_uppercase().contains("WRONGPASS") || e.to_string().contains("uthentication"), "{e}");
    assert!(matches!(owner.state(), LeaseState::Failed { attempts: 3, .. }), "{:?}", owner.state());
    eprintln!("wrong password surfaced after {:?}: {e}", started.elapsed());
    assert_eq!(owner.stop().await, Ok(()));
}

#[tokio::test]
async fn redis_corrupt_lease_key_ends_in_a_typed_error_then_recovers_once_fixed() {
    let test = "redis_corrupt_lease_key_ends_in_a_typed_error_then_recovers_once_fixed";
    let Some(server) = RedisServer::start(test) else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    // Something that is not keel wrote a string where the lease's holder hash lives.
    assert_eq!(server.command(&format!("SET {PREFIX}:lease:jobs garbage")).as_deref(), Some("+OK"));
    let owner = LeaseOwner::new(store, config("a")).start(|guard: Guard| async move { guard.lost().await });
    let err = tokio::time::timeout(PERMANENT_BOUND, owner.held()).await.expect("surfaced within the bound");
    let Err(LeaseError::Store(e)) = err else { panic!("expected a permanent store error, got {err:?}") };
    assert!(matches!(e, keel::StoreError::Corrupt { .. }), "{e:?}");
    assert!(matches!(owner.state(), LeaseState::Failed { .. }), "{:?}", owner.state());
    // The operator removes the garbage: the owner leaves Failed by itself (it retries once per
    // poll interval) and takes the lease; held() then answers with the fence again.
    assert_eq!(server.command(&format!("DEL {PREFIX}:lease:jobs")).as_deref(), Some(":1"));
    states_until(&owner, PERMANENT_BOUND, |s| matches!(s, LeaseState::Held { .. })).await;
    let fence = owner.held().await.expect("held after the fix");
    assert_eq!(owner.fence(), Some(fence));
    assert_eq!(owner.stop().await, Ok(()));
}

#[tokio::test]
async fn redis_missing_acl_permission_ends_in_a_typed_error_within_the_bound() {
    let test = "redis_missing_acl_permission_ends_in_a_typed_error_within_the_bound";
    let Some(server) = RedisServer::start(test) else { return };
    // A user that may do everything but run scripts, which every lease operation is.
    let acl = "ACL SETUSER app on >pw ~* &* +@all -@scripting";
    assert_eq!(server.command(acl).as_deref(), Some("+OK"));
    let url = format!("redis://app:pw@127.0.0.1:{}", server.port());
    let cfg = RedisConfig::builder(url)
        .key_prefix(PREFIX)
        .op_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .expect("valid config");
    let store = RedisStore::connect_lazy(cfg).expect("lazy store");
    let owner = LeaseOwner::new(store, config("a")).start(|guard: Guard| async move { guard.lost().await });
    let err = tokio::time::timeout(PERMANENT_BOUND, owner.held()).await.expect("surfaced within the bound");
    let Err(LeaseError::Store(e)) = err else { panic!("expected a permanent store error, got {err:?}") };
    assert!(!e.is_transient(), "{e:?}");
    assert!(e.to_string().to_ascii_uppercase().contains("NOPERM"), "{e}");
    assert_eq!(owner.stop().await, Ok(()));
}
