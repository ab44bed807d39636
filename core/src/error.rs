//! Typed errors of the store seam and of configuration.

use std::fmt;
use std::time::Duration;

/// What a caller may assume about an operation that failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
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
    /// The store's deployment cannot serve keel as configured (an evicting `maxmemory-policy`, a
    /// missing ACL permission, a wrong password), found when connecting. An operator must change
    /// the deployment or the config; retrying does not help.
    Misconfigured {
        /// What is wrong and how to fix it.
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
            | StoreError::Invalid { .. }
            | StoreError::Misconfigured { .. } => Outcome::NotApplied,
        }
    }

    /// Whether retrying later can succeed without anyone changing data, code or the
    /// deployment. Permanent: corrupt data, invalid arguments, and refusals for want of
    /// credentials or permissions (Redis `NOPERM`, `WRONGPASS`, `NOAUTH`, failed authentication).
    ///
    /// ```
    /// use keel::StoreError;
    /// let acl = StoreError::Refused { reason: "NOPERM User app has no permissions to run the 'evalsha' command".into() };
    /// assert!(!acl.is_transient());
    /// assert!(StoreError::Refused { reason: "LOADING Redis is loading the dataset in memory".into() }.is_transient());
    /// // Denials are matched in any case, anywhere in the message.
    /// assert!(!StoreError::Unavailable { reason: "auth: invalid password for user app".into() }.is_transient());
    /// assert!(!StoreError::Refused { reason: "-wrongpass invalid username-password pair".into() }.is_transient());
    /// ```
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Corrupt { .. } | StoreError::Invalid { .. } | StoreError::Misconfigured { .. } => false,
            StoreError::Refused { reason } | StoreError::Unavailable { reason } => !is_denial(reason),
            StoreError::Timeout { .. } => true,
            // MC82: a lost connection taken for a permanent error.
            StoreError::Disconnected { .. } => !crate::mutants::active(crate::mutants::Mutant::MC82),
        }
    }

    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        StoreError::Invalid { detail: detail.into() }
    }

    pub(crate) fn corrupt(key: impl Into<String>, detail: impl Into<String>) -> Self {
        StoreError::Corrupt { key: key.into(), detail: detail.into() }
    }
}

/// Whether a store's message says the client lacks credentials or permissions.
fn is_denial(reason: &str) -> bool {
    const DENIALS: [&str; 5] = ["NOPERM", "WRONGPASS", "NOAUTH", "AUTHENTICATION FAILED", "INVALID PASSWORD"];
    // Compared in place (no upper-cased copy): this runs on every failed store call.
    let r = reason.as_bytes();
    DENIALS.iter().any(|d| r.windows(d.len()).any(|w| w.eq_ignore_ascii_case(d.as_bytes())))
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
            StoreError::Misconfigured { detail } => write!(f, "store deployment cannot serve keel: {detail}"),
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

    /// `d` if it lies in `min..=max`, else an error naming `field` and both bounds. Every
    /// duration a builder accepts goes through this (or an explicit relation to one that did),
    /// so the arithmetic the core does on configured durations cannot overflow.
    pub(crate) fn check_duration(
        field: &'static str,
        d: Duration,
        min: Duration,
        max: Duration,
    ) -> Result<Duration, ConfigError> {
        if d < min || d > max {
            return Err(ConfigError::new(field, format!("must be in {min:?} ..= {max:?}, got {d:?}")));
        }
        Ok(d)
    }

    /// `n` if it lies in `min..=max`, else an error naming `field` and both bounds.
    pub(crate) fn check_count(field: &'static str, n: usize, min: usize, max: usize) -> Result<usize, ConfigError> {
        if n < min || n > max {
            return Err(ConfigError::new(field, format!("must be in {min}..={max}, got {n}")));
        }
        Ok(n)
    }

    /// `s` if it has `1..=max_bytes` bytes, else an error naming `field`.
    pub(crate) fn check_name(field: &'static str, s: &str, max_bytes: usize) -> Result<(), ConfigError> {
        if s.is_empty() || s.len() > max_bytes {
            return Err(ConfigError::new(field, format!("must be 1..={max_bytes} bytes, got {}", s.len())));
        }
        Ok(())
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid config `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Proptest strategies shared by the config builders' property tests.
#[cfg(test)]
pub(crate) mod strategies {
    use std::time::Duration;

    use proptest::prelude::*;

    /// Any duration, weighted towards the edges: zero, tiny, plausible, huge and `Duration::MAX`.
    pub fn duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            Just(Duration::ZERO),
            Just(Duration::MAX),
            Just(Duration::from_secs(u64::MAX)),
            (0u64..100).prop_map(Duration::from_nanos),
            (0u64..100_000).prop_map(Duration::from_millis),
            (0u64..400 * 24 * 3600).prop_map(Duration::from_secs),
            (any::<u64>(), 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        ]
    }

    /// Any count, weighted towards the edges.
    pub fn count() -> impl Strategy<Value = usize> {
        prop_oneof![Just(0usize), Just(usize::MAX), 0usize..4096, any::<usize>()]
    }

    /// Names: empty, short, odd (separators, control and non-ASCII characters), and long.
    pub fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "[a-z]{1,12}",
            "[|:\\u{1f}\\u{0} é☃a-z]{1,16}",
            (0usize..3000).prop_map(|n| "n".repeat(n)),
        ]
    }

    /// The two property tests every field-indexed config builder gets. The calling module
    /// provides `FIELDS` (the setting names), `set(builder, which, d, d2, n, s)` (the builder with
    /// setting `which` set from the arbitrary values) and `within_bounds(&config)` (asserts every
    /// stated bound); `$builder` makes a builder with every setting at its default.
    macro_rules! builder_props {
        ($builder:expr, $mask:ty) => {
            proptest! {
                /// Every setting arbitrary: never a panic; an error names a real setting, a
                /// config is within every stated bound.
                #[test]
                fn any_settings_build_or_name_a_field(
                    values in proptest::collection::vec((duration(), duration(), count(), name()), FIELDS.len()),
                    set_mask in any::<$mask>(),
                ) {
                    let mut b = $builder;
                    for (which, (d, d2, n, s)) in values.iter().enumerate() {
                        if set_mask & (1 << which) != 0 {
                            b = set(b, which, *d, *d2, *n, s);
                        }
                    }
                    match b.build() {
                        Ok(c) => within_bounds(&c),
                        Err(e) => prop_assert!(FIELDS.contains(&e.field), "{e}"),
                    }
                }

                /// One setting off its default: an error names exactly that setting.
                #[test]
                fn one_bad_setting_is_the_one_named(
                    which in 0..FIELDS.len(), d in duration(), d2 in duration(), n in count(), s in name(),
                ) {
                    match set($builder, which, d, d2, n, &s).build() {
                        Ok(c) => within_bounds(&c),
                        Err(e) => prop_assert_eq!(e.field, FIELDS[which], "{}", e),
                    }
                }
            }
        };
    }
    pub(crate) use builder_props;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call that got no answer (timed out, or its connection went) may have applied: a caller
    /// that retries only what did not apply must not take it for refused (round 30 B #1: a timeout
    /// classed not applied; a user's retry then applies a write twice). Every other error was
    /// answered, or never sent.
    #[test]
    fn only_an_unanswered_call_may_have_applied() {
        let unknown = [StoreError::Timeout { op: "map_txn" }, StoreError::Disconnected { reason: "reset".into() }];
        for e in unknown {
            assert_eq!(e.outcome(), Outcome::Unknown, "{e}");
        }
        let not_applied = [
            StoreError::Unavailable { reason: "connect refused".into() },
            StoreError::Refused { reason: "LOADING".into() },
            StoreError::Corrupt { key: "k".into(), detail: "garbage".into() },
            StoreError::Invalid { detail: "empty key".into() },
            StoreError::Misconfigured { detail: "maxmemory-policy".into() },
        ];
        for e in not_applied {
            assert_eq!(e.outcome(), Outcome::NotApplied, "{e}");
        }
    }

    /// A denial is found anywhere in a message, in any case (round 30 B #12: matched only at its
    /// start, a wrapped `NOPERM` was retried forever).
    #[test]
    fn a_denial_is_found_anywhere_in_its_message() {
        let wrapped = StoreError::Refused { reason: "script failed: noperm no permissions to run 'evalsha'".into() };
        assert!(!wrapped.is_transient());
        assert!(StoreError::Refused { reason: "BUSY script running".into() }.is_transient());
    }
}
