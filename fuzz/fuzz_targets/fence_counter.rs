//! A lease fence counter as `RedisStore::lease_renew` decodes it (and the release reply).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(v) = common::value(data) else { return };
    common::check(keel::store::redis::decode::fence("F", &v), "lease:F");
    common::check(keel::store::redis::decode::released("F", &v), "lease:F");
});
