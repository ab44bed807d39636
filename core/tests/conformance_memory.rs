//! The store conformance suite against the embedded `MemoryStore` on a manual clock.

keel::conformance_tests!(keel::testkit::conformance::MemoryHarness::new());
