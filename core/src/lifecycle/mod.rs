//! The service lifecycle every long-running part of keel follows (SPEC §6, lineage: River's
//! `startstop`).
//!
//! - **start** is idempotent; **stop** is idempotent; stop before start is a no-op;
//! - a stopped service **restarts** with fresh channels and a fresh run number;
//! - concurrent start/stop never panics or deadlocks (a start during a stop waits for it);
//! - `started`/`stopped` signals are a status watch.
//!
//! The rules live in one pure state machine ([`Status`] + inputs → actions) driven by one reusable
//! runner ([`Lifecycle`]); a service embeds a `Lifecycle` and implements [`Service`]. A
//! [`ServiceGroup`] starts services and stops them in declared order. See `docs/lifecycle.md`.

mod group;
mod machine;
mod runner;

use std::fmt;

use futures::future::BoxFuture;

pub use group::ServiceGroup;
pub use machine::Status;
pub use runner::{Lifecycle, RunCtx};
#[cfg(all(test, keel_loom))]
mod loom_tests;

use crate::shutdown::Shutdown;

/// A start or stop that did not go cleanly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceError {
    /// The service.
    pub service: String,
    /// What went wrong (e.g. completions that could not be flushed within the stop bound).
    pub reason: String,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "service {}: {}", self.service, self.reason)
    }
}

impl std::error::Error for ServiceError {}

impl From<crate::ConfigError> for ServiceError {
    fn from(e: crate::ConfigError) -> Self {
        ServiceError { service: "config".into(), reason: e.to_string() }
    }
}

/// A long-running part of keel, started and stopped under the lifecycle rules.
///
/// `parent` is the caller's token: a service decides whether its run follows it (a child) or
/// outlives it (detached, like the completer, so a cancelled caller cannot cut its drain short).
pub trait Service: Send + Sync {
    /// Its name, for logs.
    fn name(&self) -> &str;
    /// Start (idempotent).
    fn start<'a>(&'a self, parent: &'a Shutdown) -> BoxFuture<'a, Result<(), ServiceError>>;
    /// Stop and wait until stopped (idempotent; a no-op before start).
    fn stop(&self) -> BoxFuture<'_, Result<(), ServiceError>>;
}
