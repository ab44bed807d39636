//! Lease configuration, validated by its builder.

use std::time::Duration;

use crate::error::ConfigError;

/// Validated settings of one lease owner. Build with [`LeaseConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use keel::lease::LeaseConfig;
/// let cfg = LeaseConfig::builder("scheduler", "host-a:4242")
///     .ttl(Duration::from_secs(15))
///     .build()?;
/// assert_eq!(cfg.renew_interval(), Duration::from_secs(5)); // ttl/3 by default
/// # Ok::<(), keel::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseConfig {
    pub(crate) name: String,
    pub(crate) owner: String,
    pub(crate) ttl: Duration,
    pub(crate) renew_interval: Duration,
    pub(crate) drift_margin: Duration,
    pub(crate) retry_min: Duration,
    pub(crate) retry_max: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) op_timeout: Duration,
    pub(crate) work_stop_timeout: Duration,
    pub(crate) quarantine: bool,
}

/// Builder of [`LeaseConfig`]; every setting has a default derived from the TTL.
#[derive(Clone, Debug)]
pub struct LeaseConfigBuilder {
    name: String,
    owner: String,
    ttl: Duration,
    renew_interval: Option<Duration>,
    drift_margin: Option<Duration>,
    retry_min: Option<Duration>,
    retry_max: Option<Duration>,
    poll_interval: Option<Duration>,
    op_timeout: Option<Duration>,
    work_stop_timeout: Option<Duration>,
    quarantine: bool,
}

/// The default lease TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);

impl LeaseConfig {
    /// Start building the config of lease `name` for owner `owner`. `owner` must be unique among
    /// live processes (e.g. `hostname:pid`); tokens are `owner:incarnation:n`.
    pub fn builder(name: impl Into<String>, owner: impl Into<String>) -> LeaseConfigBuilder {
        LeaseConfigBuilder {
            name: name.into(),
            owner: owner.into(),
            ttl: DEFAULT_TTL,
            renew_interval: None,
            drift_margin: None,
            retry_min: None,
            retry_max: None,
            poll_interval: None,
            op_timeout: None,
            work_stop_timeout: None,
            quarantine: true,
        }
    }

    /// The lease's name (its store key, before the deployment prefix).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// This owner's id.
    pub fn owner(&self) -> &str {
        &self.owner
    }
    /// Store-side TTL of a grant or renewal.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
    /// Time between successful renewals.
    pub fn renew_interval(&self) -> Duration {
        self.renew_interval
    }
    /// Subtracted from the TTL for the local deadline: covers clock drift between this node and
    /// the store over one TTL.
    pub fn drift_margin(&self) -> Duration {
        self.drift_margin
    }
    /// Time between acquisition attempts while another owner holds the lease.
    pub fn poll_interval(&self) -> Duration {
        self.poll_interval
    }
    /// Whether grants are refused for one TTL after the store lost the lease's data.
    pub fn quarantine(&self) -> bool {
        self.quarantine
    }
    /// The largest clock drift rate (dimensionless, e.g. 0.01 = 1 %) this config tolerates
    /// without two owners believing they hold at once.
    pub fn drift_bound(&self) -> f64 {
        self.drift_margin.as_secs_f64() / self.ttl.as_secs_f64()
    }
}

impl LeaseConfigBuilder {
    /// Store-side TTL (default 10 s).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }
    /// Renewal period (default ttl/3).
    pub fn renew_interval(mut self, d: Duration) -> Self {
        self.renew_interval = Some(d);
        self
    }
    /// Drift margin (default ttl/10).
    pub fn drift_margin(mut self, d: Duration) -> Self {
        self.drift_margin = Some(d);
        self
    }
    /// Bounds of the jittered exponential backoff between retries after a store error
    /// (default 20 ms .. renew_interval/4).
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.retry_min = Some(min);
        self.retry_max = Some(max);
        self
    }
    /// Acquisition poll period while another owner holds the lease (default renew_interval).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = Some(d);
        self
    }
    /// Timeout of one store operation (default renew_interval/2; a renewal is also cut at the
    /// local deadline).
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = Some(d);
        self
    }
    /// How long guarded work may take to stop after cancellation before it is aborted
    /// (default ttl).
    pub fn work_stop_timeout(mut self, d: Duration) -> Self {
        self.work_stop_timeout = Some(d);
        self
    }
    /// Refuse grants for one TTL after the store lost the lease (default on). Switch off only
    /// when the store persists every write (Redis AOF `appendfsync always`).
    pub fn quarantine(mut self, on: bool) -> Self {
        self.quarantine = on;
        self
    }

    /// Validate and build.
    pub fn build(self) -> Result<LeaseConfig, ConfigError> {
        let err = ConfigError::new;
        if self.name.is_empty() {
            return Err(err("name", "must not be empty"));
        }
        if self.owner.is_empty() || self.owner.len() > 256 {
            return Err(err("owner", "must be 1..=256 bytes"));
        }
        let ttl = self.ttl;
        if ttl < Duration::from_millis(3) {
            return Err(err("ttl", "must be at least 3 ms"));
        }
        if ttl > Duration::from_secs(24 * 3600) {
            return Err(err("ttl", "must be at most 24 h"));
        }
        let renew_interval = self.renew_interval.unwrap_or(ttl / 3);
        if renew_interval.is_zero() || renew_interval >= ttl {
            return Err(err("renew_interval", "must be > 0 and < ttl"));
        }
        let drift_margin = self.drift_margin.unwrap_or(ttl / 10);
        if drift_margin >= ttl - renew_interval {
            return Err(err("drift_margin", "must be < ttl - renew_interval, or no renewal could ever land in time"));
        }
        let retry_min = self.retry_min.unwrap_or(Duration::from_millis(20).min(renew_interval / 4));
        let retry_max = self.retry_max.unwrap_or((renew_interval / 4).max(retry_min));
        if retry_min.is_zero() || retry_min > retry_max {
            return Err(err("retry_backoff", "min must be > 0 and <= max"));
        }
        let poll_interval = self.poll_interval.unwrap_or(renew_interval);
        if poll_interval.is_zero() {
            return Err(err("poll_interval", "must be > 0"));
        }
        let op_timeout = self.op_timeout.unwrap_or(renew_interval / 2);
        if op_timeout.is_zero() {
            return Err(err("op_timeout", "must be > 0"));
        }
        let work_stop_timeout = self.work_stop_timeout.unwrap_or(ttl);
        Ok(LeaseConfig {
            name: self.name,
            owner: self.owner,
            ttl,
            renew_interval,
            drift_margin,
            retry_min,
            retry_max,
            poll_interval,
            op_timeout,
            work_stop_timeout,
            quarantine: self.quarantine,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b() -> LeaseConfigBuilder {
        LeaseConfig::builder("l", "o")
    }

    #[test]
    fn defaults_derive_from_ttl() {
        let c = b().ttl(Duration::from_secs(9)).build().unwrap();
        assert_eq!(c.renew_interval, Duration::from_secs(3));
        assert_eq!(c.drift_margin, Duration::from_millis(900));
        assert_eq!(c.poll_interval, c.renew_interval);
        assert!((c.drift_bound() - 0.1).abs() < 1e-9);
    }

    #[test]
    fn rejects_bad_values_with_the_field_named() {
        let cases = [
            (b().ttl(Duration::ZERO), "ttl"),
            (b().renew_interval(DEFAULT_TTL), "renew_interval"),
            (b().renew_interval(Duration::ZERO), "renew_interval"),
            (b().drift_margin(Duration::from_secs(7)), "drift_margin"),
            (b().retry_backoff(Duration::from_secs(2), Duration::from_secs(1)), "retry_backoff"),
            (b().poll_interval(Duration::ZERO), "poll_interval"),
            (b().op_timeout(Duration::ZERO), "op_timeout"),
            (LeaseConfig::builder("", "o"), "name"),
            (LeaseConfig::builder("l", ""), "owner"),
        ];
        for (builder, field) in cases {
            assert_eq!(builder.build().unwrap_err().field, field);
        }
    }
}
