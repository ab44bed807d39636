//! # keel
//!
//! A coordination core for services that share one Redis:
//!
//! - [`lease`]: leader election with **fencing tokens**, safe under store restarts, partitions,
//!   pauses and bounded clock drift;
//! - [`pool`]: a worker pool with attempt-fenced job ownership, dead-worker cleanup under a
//!   compare-and-set lock, and workers that outlive the request that started them;
//! - [`store`]: the seam every part is written against, with an embedded [`MemoryStore`] and a
//!   production `RedisStore` (feature `redis`) that share one conformance suite;
//! - [`clock`]: the monotonic clock seam (simulated per node by `keel-sim`);
//! - [`shutdown`]: cancellation tokens that form a tree, with detachable children.
//!
//! The same code runs under tokio in production and under madsim in the `keel-sim` checker.
#![deny(missing_docs)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod assert;
pub mod clock;
pub mod completer;
mod error;
pub mod lease;
pub mod lifecycle;
pub mod metrics;
pub mod mutants;
pub mod observe;
pub mod pool;
pub mod rmap;
pub mod shutdown;
pub mod store;
mod sync;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod watch;

pub use error::{ConfigError, Outcome, StoreError};
pub use store::MemoryStore;
#[cfg(feature = "redis")]
pub use store::{RedisConfig, RedisStore};
