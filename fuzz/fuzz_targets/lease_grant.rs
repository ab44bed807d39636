//! A lease grant as `RedisStore::lease_acquire` decodes it (and the `TIME` reply it is stamped with).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(v) = common::value(data) else { return };
    if common::check(keel::store::redis::decode::lease_grant("L", &v), "lease:L")
        && let Ok(keel::store::Acquire::Granted { fence }) = keel::store::redis::decode::lease_grant("L", &v)
    {
        assert!(fence > 0, "a granted fence is positive");
    }
    common::check(keel::store::redis::decode::time_ms(&v), "TIME");
});
