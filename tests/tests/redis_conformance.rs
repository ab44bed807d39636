//! The store conformance suite against `RedisStore` on a private `redis-server` per case.
//! (Cases live in module `redis` so `cargo test redis` selects them.)

mod redis {
    keel::conformance_tests!(optional keel_tests::RedisHarness::start().await);
}
