//! Completer configuration, validated by its builder.

use std::time::Duration;

use crate::error::ConfigError;

/// Validated settings of a [`Completer`](super::Completer). Build with [`CompleterConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use keel::completer::CompleterConfig;
/// let cfg = CompleterConfig::builder("jobs")
///     .batch_size(64)
///     .flush_interval(Duration::from_millis(20))
///     .build()?;
/// assert_eq!(cfg.map(), "jobs:completions");
/// # Ok::<(), keel::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompleterConfig {
    pub(crate) name: String,
    pub(crate) map: String,
    pub(crate) batch_size: usize,
    pub(crate) flush_interval: Duration,
    pub(crate) backlog: usize,
    pub(crate) event_buffer: usize,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) retry_budget: u32,
    pub(crate) op_timeout: Duration,
    pub(crate) stop_timeout: Duration,
}

/// Builder of [`CompleterConfig`].
#[derive(Clone, Debug)]
pub struct CompleterConfigBuilder {
    cfg: CompleterConfig,
}

impl CompleterConfig {
    /// Settings of the completer `name`; completions go to the store map `{name}:completions`.
    pub fn builder(name: impl Into<String>) -> CompleterConfigBuilder {
        let name = name.into();
        CompleterConfigBuilder {
            cfg: CompleterConfig {
                map: format!("{name}:completions"),
                name,
                batch_size: 128,
                flush_interval: Duration::from_millis(50),
                backlog: 4096,
                event_buffer: 64,
                retry_min: Duration::from_millis(10),
                retry_max: Duration::from_secs(1),
                retry_budget: 8,
                op_timeout: Duration::from_secs(2),
                stop_timeout: Duration::from_secs(10),
            },
        }
    }

    /// The completer's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The store map completions are written to.
    pub fn map(&self) -> &str {
        &self.map
    }
    /// How long a stop may take before unflushed completions are reported instead.
    pub fn stop_timeout(&self) -> Duration {
        self.stop_timeout
    }
}

impl CompleterConfigBuilder {
    /// Store map for completions (default `{name}:completions`).
    pub fn map(mut self, map: impl Into<String>) -> Self {
        self.cfg.map = map.into();
        self
    }
    /// Most completions per store write (default 128).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.cfg.batch_size = n;
        self
    }
    /// Longest a completion waits for a fuller batch (default 50 ms).
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.cfg.flush_interval = d;
        self
    }
    /// Most completions accepted but not yet flushed; producers wait (or get `Full`) beyond it
    /// (default 4096).
    pub fn backlog(mut self, n: usize) -> Self {
        self.cfg.backlog = n;
        self
    }
    /// Batches of events buffered towards the subscription manager (default 64).
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.cfg.event_buffer = n;
        self
    }
    /// Bounds of the jittered exponential backoff after a failed store write (default 10 ms .. 1 s).
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.cfg.retry_min = min;
        self.cfg.retry_max = max;
        self
    }
    /// Failed attempts of one batch before a cool-down of `retry_max` (default 8). The batch is
    /// kept, never dropped: it is retried after the cool-down, until the stop bound.
    pub fn retry_budget(mut self, n: u32) -> Self {
        self.cfg.retry_budget = n;
        self
    }
    /// Timeout of one store write (default 2 s); an expired write has an unknown outcome and is
    /// retried (writes are idempotent).
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.cfg.op_timeout = d;
        self
    }
    /// Bound of a stop (default 10 s): waiting for producers, flushing and emitting.
    pub fn stop_timeout(mut self, d: Duration) -> Self {
        self.cfg.stop_timeout = d;
        self
    }

    /// Validate and build.
    pub fn build(self) -> Result<CompleterConfig, ConfigError> {
        let c = self.cfg;
        let err = ConfigError::new;
        if c.name.is_empty() {
            return Err(err("name", "must not be empty"));
        }
        if c.map.is_empty() {
            return Err(err("map", "must not be empty"));
        }
        if !(1..=10_000).contains(&c.batch_size) {
            return Err(err("batch_size", "must be in 1..=10000"));
        }
        if c.flush_interval.is_zero() {
            return Err(err("flush_interval", "must be > 0"));
        }
        if c.backlog < c.batch_size {
            return Err(err("backlog", "must be >= batch_size"));
        }
        if c.event_buffer == 0 {
            return Err(err("event_buffer", "must be > 0"));
        }
        if c.retry_min.is_zero() || c.retry_min > c.retry_max {
            return Err(err("retry_backoff", "min must be > 0 and <= max"));
        }
        if c.retry_budget == 0 {
            return Err(err("retry_budget", "must be > 0"));
        }
        if c.op_timeout.is_zero() {
            return Err(err("op_timeout", "must be > 0"));
        }
        if c.stop_timeout.is_zero() {
            return Err(err("stop_timeout", "must be > 0"));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_values_with_the_field_named() {
        let b = || CompleterConfig::builder("c");
        let cases = [
            (b().batch_size(0), "batch_size"),
            (b().flush_interval(Duration::ZERO), "flush_interval"),
            (b().batch_size(10).backlog(5), "backlog"),
            (b().event_buffer(0), "event_buffer"),
            (b().retry_backoff(Duration::from_secs(2), Duration::from_secs(1)), "retry_backoff"),
            (b().retry_budget(0), "retry_budget"),
            (b().stop_timeout(Duration::ZERO), "stop_timeout"),
            (CompleterConfig::builder(""), "name"),
        ];
        for (builder, field) in cases {
            assert_eq!(builder.build().unwrap_err().field, field);
        }
        assert!(b().build().is_ok());
    }
}
