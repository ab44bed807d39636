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
    /// Timeout of each store operation (default 2 s). Must be > 0.
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.cfg.op_timeout = d;
        self
    }
    /// Backoff bounds for retrying the watch and snapshots (defaults 50 ms and 2 s).
    pub fn retry(mut self, min: Duration, max: Duration) -> Self {
        self.cfg.retry_min = min;
        self.cfg.retry_max = max;
        self
    }
    /// Resync from a fresh snapshot this often even without a gap (default off). ≥ 10 ms.
    pub fn anti_entropy(mut self, every: Option<Duration>) -> Self {
        self.cfg.anti_entropy = every;
        self
    }
    /// Buffer of each subscription, in changes (default 256, at most 1 Mi).
    pub fn subscriber_buffer(mut self, n: usize) -> Self {
        self.cfg.subscriber_buffer = n;
        self
    }
    /// Most live subscriptions (default 64).
    pub fn max_subscribers(mut self, n: usize) -> Self {
        self.cfg.max_subscribers = n;
        self
    }
    /// Most `set_and_wait` calls in flight at once (default 10 000).
    pub fn max_waiters(mut self, n: usize) -> Self {
        self.cfg.max_waiters = n;
        self
    }

    /// Validate.
    pub fn build(self) -> Result<RmapConfig, ConfigError> {
        let c = self.cfg;
        if c.name.is_empty() || c.name.len() > 1024 {
            return Err(ConfigError::new("name", "must be 1..=1024 bytes"));
        }
        if c.op_timeout.is_zero() {
            return Err(ConfigError::new("op_timeout", "must be > 0"));
        }
        if c.retry_min.is_zero() || c.retry_min > c.retry_max {
            return Err(ConfigError::new("retry", "need 0 < min <= max"));
        }
        if c.anti_entropy.is_some_and(|d| d < Duration::from_millis(10)) {
            return Err(ConfigError::new("anti_entropy", "must be at least 10 ms"));
        }
        if c.subscriber_buffer == 0 || c.subscriber_buffer > 1 << 20 {
            return Err(ConfigError::new("subscriber_buffer", "must be in 1..=1048576"));
        }
        if c.max_subscribers == 0 {
            return Err(ConfigError::new("max_subscribers", "must be > 0"));
        }
        if c.max_waiters == 0 {
            return Err(ConfigError::new("max_waiters", "must be > 0"));
        }
        Ok(c)
    }
}
