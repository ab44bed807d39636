//! A pool cleanup lock (`holder|expires_ms`).
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

use arbitrary::{Arbitrary, Unstructured};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = common::Stored::arbitrary(&mut Unstructured::new(data)) else { return };
    let key = s.key.to_owned();
    // Decodes only if canonical (re-encodes to the same bytes; asserted inside), else a Corrupt
    // naming the pool map and the key.
    common::check(keel::pool::decode::record("cleanup", &key, s.raw), "map:keel:pool:fuzz:cleanup[");
});
