//! A map entry and its revision, as `RedisStore` decodes replies to map_get, map_snapshot, map_write and map_txns and the messages of a watch feed (single-change and multi-change `v2`).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

use keel::store::redis::decode;

fuzz_target!(|data: &[u8]| {
    if let Some(v) = common::value(data) {
        common::check(decode::map_entry("m", "k", &v), "map");
        common::check(decode::map_write("m", "k", &v), "map");
        for n in [1, 3] {
            if let Ok(out) = decode::map_txns("m", n, &v) {
                assert_eq!(out.len(), n, "one outcome per transaction");
            }
            common::check(decode::map_txns("m", n, &v), "map");
        }
        if let Ok(s) = decode::map_snapshot("m", &v) {
            // Never more entries than the reply carried.
            assert!(s.entries.len() <= data.len());
        }
        common::check(decode::map_snapshot("m", &v), "map");
    }
    // The same bytes as a published change message (one change, or a transaction's several).
    if let Ok(changes) = decode::changes("m", data) {
        // Every change consumes at least five bytes of the message.
        assert!(!changes.is_empty() && changes.len() <= data.len() / 5, "{} changes from {} bytes", changes.len(), data.len());
        for pair in changes.windows(2) {
            assert_eq!(pair[1].rev, pair[0].rev + 1, "a message's changes take consecutive revisions");
        }
    }
    common::check(decode::changes("m", data), "watch:m");
});
