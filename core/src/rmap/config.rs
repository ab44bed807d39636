//! Replicated map configuration, validated by its builder.

use std::time::Duration;

use crate::error::ConfigError;

/// Validated settings of one [`ReplicatedMap`](super::ReplicatedMap). Build with
/// [`RmapConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use keel::rmap::RmapConfig;
/// let cfg = RmapConfig::builder("routes")
///     .anti_entropy(Some(Duration::from_secs(60)))
///     .subscriber_buffer(1024)
///     .build()?;
/// assert_eq!(cfg.name(), "routes");
/// assert!(RmapConfig::builder("").build().is_err());
/// # Ok::<(), keel::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RmapConfig {
    pub(crate) name: String,
    pub(crate) op_timeout: Duration,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) anti_entropy: Option<Duration>,
    pub(crate) subscriber_buffer: usize,
    pub(crate) max_subscribers: usize,
    pub(crate) max_waiters: usize,
}

/// Longest map name: the store's limit.
pub const NAME_MAX_BYTES: usize = crate::store::NAME_MAX_BYTES;
/// Upper bound of one store operation's timeout.
pub const OP_TIMEOUT_MAX: Duration = Duration::from_secs(3600);
/// Upper bound of the watch and snapshot retry backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Shortest anti-entropy period.
pub const ANTI_ENTROPY_MIN: Duration = Duration::from_millis(10);
/// Longest anti-entropy period.
pub const ANTI_ENTROPY_MAX: Duration = Duration::from_secs(24 * 3600);
/// Largest buffer of one subscription, in changes.
pub const SUBSCRIBER_BUFFER_MAX: usize = 1 << 20;
/// Most live subscriptions.
pub const MAX_SUBSCRIBERS_MAX: usize = 1 << 16;
/// Most `set_and_wait` calls in flight.
pub const MAX_WAITERS_MAX: usize = 1 << 20;

/// Builder of [`RmapConfig`].
#[derive(Clone, Debug)]
pub struct RmapConfigBuilder {
    cfg: RmapConfig,
}

impl RmapConfig {
    /// Start building the config of map `name` (its store hash, before the deployment prefix).
    pub fn builder(name: impl Into<String>) -> RmapConfigBuilder {
        RmapConfigBuilder {
            cfg: RmapConfig {
                name: name.into(),
                op_timeout: Duration::from_secs(2),
                retry_min: Duration::from_millis(50),
                retry_max: Duration::from_secs(2),
                anti_entropy: None,
                subscriber_buffer: 256,
                max_subscribers: 64,
                max_waiters: 10_000,
            },
        }
    }

    /// The map's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// Timeout of each store operation.
    pub fn op_timeout(&self) -> Duration {
        self.op_timeout
    }
    /// Period of the anti-entropy resync, if enabled.
    pub fn anti_entropy(&self) -> Option<Duration> {
        self.anti_entropy
    }
    /// Buffer of each subscription (changes; overflow is dropped and counted).
    pub fn subscriber_buffer(&self) -> usize {
        self.subscriber_buffer
    }
    /// Most `set_and_wait` calls in flight at once.
    pub fn max_waiters(&self) -> usize {
        self.max_waiters
    }
}

impl RmapConfigBuilder {
    /// Timeout of each store operation (default 2 s; > 0 and at most [`OP_TIMEOUT_MAX`]).
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.cfg.op_timeout = d;
        self
    }
    /// Backoff bounds for retrying the watch and snapshots (defaults 50 ms and 2 s; at most
    /// [`BACKOFF_MAX`]).
    pub fn retry(mut self, min: Duration, max: Duration) -> Self {
        self.cfg.retry_min = min;
        self.cfg.retry_max = max;
        self
    }
    /// Resync from a fresh snapshot this often even without a gap (default off;
    /// [`ANTI_ENTROPY_MIN`] ..= [`ANTI_ENTROPY_MAX`]).
    pub fn anti_entropy(mut self, every: Option<Duration>) -> Self {
        self.cfg.anti_entropy = every;
        self
    }
    /// Buffer of each subscription, in changes (default 256, at most 1 Mi).
    pub fn subscriber_buffer(mut self, n: usize) -> Self {
        self.cfg.subscriber_buffer = n;
        self
    }
    /// Most live subscriptions (default 64, at most [`MAX_SUBSCRIBERS_MAX`]).
    pub fn max_subscribers(mut self, n: usize) -> Self {
        self.cfg.max_subscribers = n;
        self
    }
    /// Most `set_and_wait` calls in flight at once (default 10 000, at most [`MAX_WAITERS_MAX`]).
    pub fn max_waiters(mut self, n: usize) -> Self {
        self.cfg.max_waiters = n;
        self
    }

    /// Validate. Every duration and count is bounded (see the `_MAX` constants).
    pub fn build(self) -> Result<RmapConfig, ConfigError> {
        let c = self.cfg;
        let nanos = Duration::from_nanos(1);
        ConfigError::check_name("name", &c.name, NAME_MAX_BYTES)?;
        ConfigError::check_duration("op_timeout", c.op_timeout, nanos, OP_TIMEOUT_MAX)?;
        if c.retry_min.is_zero() || c.retry_min > c.retry_max || c.retry_max > BACKOFF_MAX {
            return Err(ConfigError::new("retry", format!("need 0 < min <= max <= {BACKOFF_MAX:?}")));
        }
        if let Some(d) = c.anti_entropy {
            ConfigError::check_duration("anti_entropy", d, ANTI_ENTROPY_MIN, ANTI_ENTROPY_MAX)?;
        }
        ConfigError::check_count("subscriber_buffer", c.subscriber_buffer, 1, SUBSCRIBER_BUFFER_MAX)?;
        ConfigError::check_count("max_subscribers", c.max_subscribers, 1, MAX_SUBSCRIBERS_MAX)?;
        ConfigError::check_count("max_waiters", c.max_waiters, 1, MAX_WAITERS_MAX)?;
        Ok(c)
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::error::strategies::{builder_props, count, duration, name};

    const FIELDS: [&str; 7] =
        ["name", "op_timeout", "retry", "anti_entropy", "subscriber_buffer", "max_subscribers", "max_waiters"];

    fn set(b: RmapConfigBuilder, which: usize, d: Duration, d2: Duration, n: usize, s: &str) -> RmapConfigBuilder {
        match which {
            0 => RmapConfigBuilder { cfg: RmapConfig { name: s.to_owned(), ..b.cfg } },
            1 => b.op_timeout(d),
            2 => b.retry(d, d2),
            3 => b.anti_entropy(Some(d)),
            4 => b.subscriber_buffer(n),
            5 => b.max_subscribers(n),
            _ => b.max_waiters(n),
        }
    }

    fn within_bounds(c: &RmapConfig) {
        assert!((1..=NAME_MAX_BYTES).contains(&c.name.len()));
        assert!(!c.op_timeout.is_zero() && c.op_timeout <= OP_TIMEOUT_MAX);
        assert!(!c.retry_min.is_zero() && c.retry_min <= c.retry_max && c.retry_max <= BACKOFF_MAX);
        assert!(c.anti_entropy.is_none_or(|d| (ANTI_ENTROPY_MIN..=ANTI_ENTROPY_MAX).contains(&d)));
        assert!((1..=SUBSCRIBER_BUFFER_MAX).contains(&c.subscriber_buffer));
        assert!((1..=MAX_SUBSCRIBERS_MAX).contains(&c.max_subscribers));
        assert!((1..=MAX_WAITERS_MAX).contains(&c.max_waiters));
        let _ = tokio::sync::mpsc::channel::<()>(c.subscriber_buffer);
    }

    builder_props!(RmapConfig::builder("m"), u8);
}
