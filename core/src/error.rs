//! Typed errors of the store seam and of configuration.

use std::fmt;

/// What a caller may assume about an operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The store certainly did not apply the operation; retrying is a first attempt.
    NotApplied,
    /// The request may or may not have been applied (sent, then no reply). Every keel script is
    /// idempotent or guarded by a token/revision, so a retry is safe, but callers must not assume
    /// either outcome.
    Unknown,
}

/// An error from a [`Store`](crate::store::Store) operation.
///
/// ```
/// use keel::{Outcome, StoreError};
/// let e = StoreError::Timeout { op: "lease_renew" };
/// assert_eq!(e.outcome(), Outcome::Unknown);
/// assert!(e.is_transient());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum StoreError {
    /// The store could not be reached; the request was never sent (connection refused, not
    /// connected, partitioned before send).
    Unavailable {
        /// Why, in words.
        reason: String,
    },
    /// The store answered with an error and did not apply the operation (OOM, READONLY,
    /// loading, quarantine of a whole store, …).
    Refused {
        /// The store's message.
        reason: String,
    },
    /// The request was sent but no reply came within the operation timeout.
    Timeout {
        /// The operation that timed out.
        op: &'static str,
    },
    /// The connection broke after the request was sent.
    Disconnected {
        /// Why, in words.
        reason: String,
    },
    /// A key holds something keel did not write (wrong type, unparsable number, bad encoding).
    /// Nothing was changed; an operator must look at the key.
    Corrupt {
        /// The key, without the deployment prefix.
        key: String,
        /// What was wrong with it.
        detail: String,
    },
    /// The caller passed an argument the store cannot take (empty key, reserved byte, zero TTL).
    Invalid {
        /// What was wrong.
        detail: String,
    },
}

impl StoreError {
    /// Whether the operation may have been applied.
    pub fn outcome(&self) -> Outcome {
        match self {
            StoreError::Timeout { .. } | StoreError::Disconnected { .. } => Outcome::Unknown,
            StoreError::Unavailable { .. }
            | StoreError::Refused { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Invalid { .. } => Outcome::NotApplied,
        }
    }

    /// Whether retrying later can succeed without anyone changing data or code.
    pub fn is_transient(&self) -> bool {
        !matches!(self, StoreError::Corrupt { .. } | StoreError::Invalid { .. })
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        StoreError::Invalid { detail: detail.into() }
    }

    pub(crate) fn corrupt(key: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Corrupt { key: key.into(), detail: detail.into() }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Unavailable { reason } => write!(f, "store unavailable (not applied): {reason}"),
            StoreError::Refused { reason } => write!(f, "store refused the operation (not applied): {reason}"),
            StoreError::Timeout { op } => write!(f, "store operation {op} timed out (outcome unknown)"),
            StoreError::Disconnected { reason } => {
                write!(f, "connection lost after send (outcome unknown): {reason}")
            }
            StoreError::Corrupt { key, detail } => write!(f, "key {key:?} holds unexpected data: {detail}"),
            StoreError::Invalid { detail } => write!(f, "invalid store argument: {detail}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// A configuration value was rejected by a builder.
///
/// ```
/// use std::time::Duration;
/// use keel::lease::LeaseConfig;
/// let err = LeaseConfig::builder("jobs", "node-a").ttl(Duration::ZERO).build().unwrap_err();
/// assert!(err.to_string().contains("ttl"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting at fault.
    pub field: &'static str,
    /// Why it was rejected.
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError { field, reason: reason.into() }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}
