//! Deployment checks at connect (issue 12.7) against real `redis-server`s: an evicting
//! `maxmemory-policy`, an ACL user missing a permission, a wrong password, a closed port and a
//! frozen server each end in a typed error within the connect bound, with a message that says
//! what to change; a healthy server reports its version.

use std::time::{Duration, Instant};

use keel::StoreError;
use keel::store::{Acquire, RedisConfig, RedisStore, Store};
use keel_tests::{PREFIX, RedisServer, free_port};

const CONNECT: Duration = Duration::from_millis(300);
const OP: Duration = Duration::from_millis(300);

fn config(url: String) -> keel::store::redis::RedisConfigBuilder {
    RedisConfig::builder(url).key_prefix(PREFIX).connect_timeout(CONNECT).op_timeout(OP)
}

/// Connect, and insist on the documented bound (connect timeout plus three operation timeouts,
/// with scheduling slack).
async fn connect_within_bound(cfg: RedisConfig) -> Result<RedisStore, StoreError> {
    let started = Instant::now();
    let r = RedisStore::connect(cfg).await;
    let took = started.elapsed();
    assert!(took < CONNECT + OP * 3 + Duration::from_millis(500), "connect took {took:?}");
    r
}

fn misconfigured(r: Result<RedisStore, StoreError>) -> String {
    match r {
        Err(e @ StoreError::Misconfigured { .. }) => {
            assert!(!e.is_transient(), "a deployment error is permanent");
            assert_eq!(e.outcome(), keel::Outcome::NotApplied);
            e.to_string()
        }
        Err(other) => panic!("expected StoreError::Misconfigured, got {other:?}"),
        Ok(_) => panic!("expected StoreError::Misconfigured, the store connected"),
    }
}

#[tokio::test]
async fn redis_connect_reports_the_version_of_a_healthy_server() {
    let Some(server) = RedisServer::start("redis_connect_reports_the_version_of_a_healthy_server") else { return };
    let store = connect_within_bound(config(server.url()).build().expect("config")).await.expect("connects");
    let d = store.deployment().expect("connect records the deployment");
    let out = std::process::Command::new("redis-server").arg("--version").output().expect("redis-server --version");
    let installed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(installed.contains(&format!("v={} ", d.version)), "{d:?} vs {installed}");
    assert_eq!(d.maxmemory_policy, "noeviction");
    assert!(d.acl_checked || d.version.starts_with('6'), "Redis 7+ has redis.acl_check_cmd: {d:?}");
    assert!(store.lease_acquire("L", "a", 1000, 0).await.is_ok());
    // A lazy store checks nothing (and says so).
    let lazy = RedisStore::connect_lazy(config(server.url()).build().expect("config")).expect("lazy");
    assert_eq!(lazy.deployment(), None);
}

#[tokio::test]
async fn redis_connect_refuses_an_evicting_policy_unless_allowed() {
    let args = ["--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"];
    let Some(server) = RedisServer::start_with("redis_connect_refuses_an_evicting_policy_unless_allowed", &args) else {
        return;
    };
    let msg = misconfigured(connect_within_bound(config(server.url()).build().expect("config")).await);
    assert!(
        msg.contains("allkeys-lru") && msg.contains("noeviction") && msg.contains("allow_evicting_policy"),
        "{msg}"
    );
    let allowed = config(server.url()).allow_evicting_policy(true).build().expect("config");
    let store = connect_within_bound(allowed).await.expect("the user accepted the risk");
    assert_eq!(store.deployment().map(|d| d.maxmemory_policy).as_deref(), Some("allkeys-lru"));
    // volatile-* policies evict keys with a TTL: lease holders. Refused too.
    assert_eq!(server.command("CONFIG SET maxmemory-policy volatile-ttl").as_deref(), Some("+OK"));
    let msg = misconfigured(connect_within_bound(config(server.url()).build().expect("config")).await);
    assert!(msg.contains("volatile-ttl"), "{msg}");
}

#[tokio::test]
async fn redis_connect_names_a_missing_acl_permission() {
    let Some(server) = RedisServer::start("redis_connect_names_a_missing_acl_permission") else { return };
    let url = |user: &str| format!("redis://{user}:pw@127.0.0.1:{}", server.port());
    // Everything on keel's keys and channels but HINCRBY (the fence counter's increment).
    let ok = server.command("ACL SETUSER nofence on >pw ~keel-test:* &keel-test:* +@all -hincrby");
    assert_eq!(ok.as_deref(), Some("+OK"));
    let msg = misconfigured(connect_within_bound(config(url("nofence")).build().expect("config")).await);
    assert!(msg.contains("HINCRBY"), "{msg}");
    // Everything but HSCAN (`map_scan`, the pool's sweeps): before, connect never asked, and
    // every scan was refused for good (hunt 31 A #8's observation).
    let ok = server.command("ACL SETUSER noscan on >pw ~keel-test:* &keel-test:* +@all -hscan");
    assert_eq!(ok.as_deref(), Some("+OK"));
    let msg = misconfigured(connect_within_bound(config(url("noscan")).build().expect("config")).await);
    assert!(msg.contains("HSCAN"), "{msg}");
    // Keys outside the ACL's pattern: the prefix is wrong for this user.
    let ok = server.command("ACL SETUSER narrow on >pw ~other:* &other:* +@all");
    assert_eq!(ok.as_deref(), Some("+OK"));
    let msg = misconfigured(connect_within_bound(config(url("narrow")).build().expect("config")).await);
    assert!(msg.contains("keel-test"), "the message names the prefix to grant: {msg}");
    // No INFO: the eviction policy cannot be checked; refused unless the user opts out.
    let ok = server.command("ACL SETUSER noinfo on >pw ~keel-test:* &keel-test:* +@all -info");
    assert_eq!(ok.as_deref(), Some("+OK"));
    let msg = misconfigured(connect_within_bound(config(url("noinfo")).build().expect("config")).await);
    assert!(msg.contains("INFO"), "{msg}");
    let opted = config(url("noinfo")).allow_evicting_policy(true).build().expect("config");
    let store = connect_within_bound(opted).await.expect("connects without the eviction check");
    assert_eq!(store.deployment().map(|d| d.version).as_deref(), Some("unknown"));
    // Leases still work without INFO: the acquire script cannot read `run_id`, so it sees no
    // restart (connect warned of it), and a missing counter still quarantines.
    let got = store.lease_acquire("noinfo", "a", 1000, 0).await.expect("an acquire without INFO");
    assert!(matches!(got, Acquire::Granted { .. }), "{got:?}");
}

#[tokio::test]
async fn redis_connect_wrong_password_is_a_typed_error() {
    let Some(server) = RedisServer::start("redis_connect_wrong_password_is_a_typed_error") else { return };
    // Set after start: the harness waits for an unauthenticated PING.
    assert_eq!(server.command("CONFIG SET requirepass right").as_deref(), Some("+OK"));
    let wrong = config(format!("redis://:nope-nope@127.0.0.1:{}", server.port())).build().expect("config");
    let msg = misconfigured(connect_within_bound(wrong).await);
    assert!(msg.contains("authentication") && !msg.contains("nope-nope"), "no password in the message: {msg}");
    let none = config(server.url()).build().expect("config");
    let msg = misconfigured(connect_within_bound(none).await);
    assert!(msg.contains("authentication"), "{msg}");
    let right = config(format!("redis://:right@127.0.0.1:{}", server.port())).build().expect("config");
    connect_within_bound(right).await.expect("the right password connects");
}

#[tokio::test]
async fn redis_connect_closed_port_and_frozen_server_end_within_the_bound() {
    let closed = config(format!("redis://127.0.0.1:{}", free_port())).build().expect("config");
    match connect_within_bound(closed).await {
        Err(StoreError::Unavailable { .. }) => {}
        other => panic!("a closed port is Unavailable, got {other:?}"),
    }
    let Some(server) = RedisServer::start("redis_connect_closed_port_and_frozen_server_end_within_the_bound") else {
        return;
    };
    server.freeze();
    let r = connect_within_bound(config(server.url()).build().expect("config")).await;
    server.thaw();
    match r {
        Err(e) => assert!(e.is_transient(), "a frozen server may come back: {e:?}"),
        Ok(_) => panic!("a frozen server cannot pass the checks"),
    }
}
