//! Test support (feature `testkit`): the store conformance suite every backend runs, a
//! manually advanced clock for driving store time in tests, and a capture of what keel logs.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), keel::StoreError> {
//! use keel::testkit::conformance::{self, MemoryHarness};
//! // One case by hand; `keel::conformance_tests!` makes one #[tokio::test] per case.
//! conformance::lease_grant_is_idempotent_and_exclusive(&MemoryHarness::new()).await
//! # }
//! ```

mod clock;
pub mod conformance;
mod logs;

pub use clock::ManualClock;
pub use logs::{LogCapture, LogLine};
