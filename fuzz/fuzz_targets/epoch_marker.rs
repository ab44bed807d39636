//! A pool's epoch marker (`node.incarnation` under key `epoch`; any other meta key is garbage).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else { return };
    common::check(keel::pool::decode::record("meta", "epoch", raw), "map:keel:pool:fuzz:meta[epoch]");
    // Any other key of the meta map is garbage, whatever it holds.
    assert!(!common::check(keel::pool::decode::record("meta", raw, "n.1"), "map:keel:pool:fuzz:meta[") || raw == "epoch");
});
