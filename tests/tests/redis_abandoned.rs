//! A request its caller abandons counts as a timeout for `RedisStore`'s stalled-connection rule.
//!
//! Callers such as the lease owner time their store calls on their own local deadline, which can
//! run out before the store's operation timeout. Found by the simulator (lease seed 188 with
//! exact-wake clocks): every lease call was abandoned by the owner's deadline first, so the client
//! never saw a timeout of its own, never replaced the stalled connection, and the node queued
//! behind it for seconds after the partition healed.

use std::time::Duration;

use keel::store::{RedisStore, Store};
use keel_tests::RedisServer;

/// The op timeout of `RedisServer::config`.
const OP_TIMEOUT: Duration = Duration::from_millis(300);

/// Whether the store answers within 50 tries 50 ms apart.
async fn answers_again(store: &RedisStore) -> bool {
    for _ in 0..50 {
        if store.time_ms().await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn redis_requests_abandoned_by_their_callers_replace_a_stalled_connection() {
    let Some(server) = RedisServer::start("redis_requests_abandoned_by_their_callers") else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    store.time_ms().await.expect("redis answers");

    server.freeze();
    // Abandoned early (under half the op timeout): the caller's own business, not a stall.
    for _ in 0..3 {
        let r = tokio::time::timeout(Duration::from_millis(50), store.time_ms()).await;
        assert!(r.is_err(), "a frozen redis does not answer");
    }
    assert_eq!(store.connections_replaced(), 0, "early abandonment is not counted");
    // Abandoned after three quarters of the op timeout, twice in a row: the connection is stalled.
    for _ in 0..2 {
        let r = tokio::time::timeout(OP_TIMEOUT * 3 / 4, store.time_ms()).await;
        assert!(r.is_err(), "a frozen redis does not answer");
    }
    assert_eq!(store.connections_replaced(), 1, "two late abandonments replace the connection");
    server.thaw();
    let answered = answers_again(&store).await;
    assert!(answered, "the replacement connection answers once redis is back");
}

/// The replacement is the connection the store uses from then on. A half-open link (the old
/// connection open, every byte lost) never answers again, so a replacement that was counted and
/// logged but not installed left the store timing out for good (hunt 31 A #17; the test above
/// thaws the server, after which the old connection answers too and cannot tell).
#[tokio::test]
async fn redis_a_replaced_connection_is_the_one_used_after_a_half_open_link() {
    let Some(server) = RedisServer::start("redis_a_replaced_connection_is_the_one_used") else { return };
    let proxy = keel_tests::chaos::proxy::Proxy::start(server.port()).expect("proxy");
    let cfg = keel::store::RedisConfig::builder(format!("redis://127.0.0.1:{}", proxy.port()))
        .key_prefix(keel_tests::PREFIX)
        .op_timeout(OP_TIMEOUT)
        .connect_timeout(OP_TIMEOUT)
        .build()
        .expect("config");
    let store = RedisStore::connect(cfg).await.expect("connect through the proxy");
    store.time_ms().await.expect("redis answers");
    proxy.strand();
    let mut answered = false;
    for _ in 0..10 {
        if store.time_ms().await.is_ok() {
            answered = true;
            break;
        }
    }
    assert!(store.connections_replaced() >= 1, "the stranded connection was replaced");
    assert!(answered, "the replacement answers while the old connection stays stranded");
}

/// Only timeouts in a row replace the connection: a reply between two late abandonments starts
/// the count over. A count never reset let two timeouts hours apart replace the shared
/// connection, failing every request in flight on it with an unknown outcome (hunt 31 A #22).
#[tokio::test]
async fn redis_a_reply_between_two_stalls_replaces_nothing() {
    let Some(server) = RedisServer::start("redis_a_reply_between_two_stalls_replaces_nothing") else { return };
    let store = RedisStore::connect(server.config()).await.expect("connect");
    for _ in 0..2 {
        server.freeze();
        let r = tokio::time::timeout(OP_TIMEOUT * 3 / 4, store.time_ms()).await;
        assert!(r.is_err(), "a frozen redis does not answer");
        server.thaw();
        assert!(answers_again(&store).await, "redis answers once thawed");
    }
    assert_eq!(store.connections_replaced(), 0, "one stall, a reply, one stall: not in a row");
}
