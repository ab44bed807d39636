//! Pool configuration, validated by its builder.

use std::time::Duration;

use crate::completer::CompleterConfig;
use crate::error::ConfigError;

/// Validated settings of one pool node. Build with [`PoolConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use keel::pool::PoolConfig;
/// let cfg = PoolConfig::builder("emails", "host-a")
///     .worker_ttl(Duration::from_secs(6))
///     .build()?;
/// assert_eq!(cfg.keepalive_interval(), Duration::from_secs(2)); // ttl/3 by default
/// assert_eq!(cfg.ack_grace(), Duration::from_secs(6)); // ttl by default
/// # Ok::<(), keel::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolConfig {
    pub(crate) name: String,
    pub(crate) node: String,
    pub(crate) worker_ttl: Duration,
    pub(crate) keepalive_interval: Duration,
    pub(crate) drift_margin: Duration,
    pub(crate) ack_grace: Duration,
    pub(crate) sweep_interval: Duration,
    pub(crate) cleanup_lock_ttl: Duration,
    pub(crate) cleanup_retries: u32,
    pub(crate) cleanup_backoff: (Duration, Duration),
    pub(crate) shutdown_deadline: Duration,
    pub(crate) op_timeout: Duration,
    pub(crate) intake_buffer: usize,
    pub(crate) done_retention: Duration,
    /// Backoff bounds (min, max) before a dead worker is replaced by a fresh incarnation;
    /// `None`: dead workers are not replaced.
    pub(crate) worker_restart: Option<(Duration, Duration)>,
    /// How long [`Pool::start`](super::Pool::start) waits for the store before it fails.
    pub(crate) start_timeout: Duration,
    /// The node's completer (completion batching and events): map `keel:pool:{pool}:completions`.
    pub(crate) completer: CompleterConfig,
}

/// Builder of [`PoolConfig`]; every duration has a default derived from the worker TTL.
#[derive(Clone, Debug)]
pub struct PoolConfigBuilder {
    name: String,
    node: String,
    worker_ttl: Duration,
    keepalive_interval: Option<Duration>,
    drift_margin: Option<Duration>,
    ack_grace: Option<Duration>,
    sweep_interval: Option<Duration>,
    cleanup_lock_ttl: Option<Duration>,
    cleanup_retries: u32,
    cleanup_backoff: Option<(Duration, Duration)>,
    shutdown_deadline: Option<Duration>,
    op_timeout: Option<Duration>,
    intake_buffer: usize,
    done_retention: Option<Duration>,
    worker_restart: Option<Option<(Duration, Duration)>>,
    start_timeout: Duration,
}

/// The default worker TTL.
pub const DEFAULT_WORKER_TTL: Duration = Duration::from_secs(10);

/// The default bound of [`Pool::start`](super::Pool::start)'s wait for the store.
pub const DEFAULT_START_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest dedup window a pool accepts (a tombstone per job is kept that long).
pub const DEDUP_WINDOW_MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// The longest a duration setting of the pool may be (start timeout, restart backoff).
const DURATION_MAX: Duration = Duration::from_secs(24 * 3600);

impl PoolConfig {
    /// Start building the config of pool `name` on node `node`. `node` must be unique among live
    /// processes (e.g. `hostname:pid`); worker ids are `node.incarnation.n`.
    pub fn builder(name: impl Into<String>, node: impl Into<String>) -> PoolConfigBuilder {
        PoolConfigBuilder {
            name: name.into(),
            node: node.into(),
            worker_ttl: DEFAULT_WORKER_TTL,
            keepalive_interval: None,
            drift_margin: None,
            ack_grace: None,
            sweep_interval: None,
            cleanup_lock_ttl: None,
            cleanup_retries: 5,
            cleanup_backoff: None,
            shutdown_deadline: None,
            op_timeout: None,
            intake_buffer: 1024,
            done_retention: None,
            worker_restart: None,
            start_timeout: DEFAULT_START_TIMEOUT,
        }
    }

    /// The pool's name (prefix of its store maps).
    pub fn name(&self) -> &str {
        &self.name
    }
    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }
    /// A worker whose keep-alive is older than this (store time) is stale.
    pub fn worker_ttl(&self) -> Duration {
        self.worker_ttl
    }
    /// Time between keep-alives.
    pub fn keepalive_interval(&self) -> Duration {
        self.keepalive_interval
    }
    /// A dispatch not acknowledged within this is re-dispatched.
    pub fn ack_grace(&self) -> Duration {
        self.ack_grace
    }
    /// Period of the sweeper (stale pending entries, dead workers, orphans).
    pub fn sweep_interval(&self) -> Duration {
        self.sweep_interval
    }
    /// How long a stopping worker may finish its jobs before handing the rest back.
    pub fn shutdown_deadline(&self) -> Duration {
        self.shutdown_deadline
    }
    /// How long a job key stays taken after its completion (see
    /// [`PoolConfigBuilder::dedup_window`]).
    pub fn dedup_window(&self) -> Duration {
        self.done_retention
    }
    /// Backoff bounds before a dead worker is replaced (`None`: never replaced).
    pub fn worker_restart(&self) -> Option<(Duration, Duration)> {
        self.worker_restart
    }
    /// How long [`Pool::start`](super::Pool::start) waits for the store.
    pub fn start_timeout(&self) -> Duration {
        self.start_timeout
    }
}

impl PoolConfigBuilder {
    /// Keep-alive TTL in store time (default 10 s).
    pub fn worker_ttl(mut self, d: Duration) -> Self {
        self.worker_ttl = d;
        self
    }
    /// Keep-alive period (default ttl/3).
    pub fn keepalive_interval(mut self, d: Duration) -> Self {
        self.keepalive_interval = Some(d);
        self
    }
    /// Subtracted from the TTL for a worker's local deadline, after which it stops its handlers
    /// because it can no longer prove it is alive (default ttl/10).
    pub fn drift_margin(mut self, d: Duration) -> Self {
        self.drift_margin = Some(d);
        self
    }
    /// Time a dispatch may stay unacknowledged (default ttl).
    pub fn ack_grace(mut self, d: Duration) -> Self {
        self.ack_grace = Some(d);
        self
    }
    /// Sweeper period (default ttl/3).
    pub fn sweep_interval(mut self, d: Duration) -> Self {
        self.sweep_interval = Some(d);
        self
    }
    /// Lifetime of a cleanup lock before another node may take it over (default 2·ttl).
    pub fn cleanup_lock_ttl(mut self, d: Duration) -> Self {
        self.cleanup_lock_ttl = Some(d);
        self
    }
    /// Attempts per job requeue during cleanup, and the backoff bounds between them
    /// (default 5, 20 ms .. sweep_interval/2).
    pub fn cleanup_retries(mut self, attempts: u32, min: Duration, max: Duration) -> Self {
        self.cleanup_retries = attempts;
        self.cleanup_backoff = Some((min, max));
        self
    }
    /// Graceful-stop deadline of a worker (default ttl).
    pub fn shutdown_deadline(mut self, d: Duration) -> Self {
        self.shutdown_deadline = Some(d);
        self
    }
    /// Timeout of one store operation (default keepalive_interval/2).
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = Some(d);
        self
    }
    /// Capacity of a worker's assignment queue; overflow is dropped and re-dispatched by the
    /// sweeper after `ack_grace` (default 1024).
    pub fn intake_buffer(mut self, n: usize) -> Self {
        self.intake_buffer = n;
        self
    }

    /// The **dedup window**: how long a completed job's key stays taken (its completion
    /// tombstone is kept). Within it, dispatching the same key again is
    /// [`PoolError::Duplicate`](super::PoolError::Duplicate), and a completion retried after an
    /// unknown outcome recognises its own. After it, the key is free: dispatching it again adds
    /// a new job that runs again (attempt 1). Costs one small tombstone per job for the window
    /// (default 10·ttl, at most [`DEDUP_WINDOW_MAX`]).
    pub fn dedup_window(mut self, d: Duration) -> Self {
        self.done_retention = Some(d);
        self
    }

    /// The former name of [`dedup_window`](Self::dedup_window).
    pub fn done_retention(self, d: Duration) -> Self {
        self.dedup_window(d)
    }

    /// Replace a dead worker (cleaned up by the pool after a store outage or pause past its
    /// TTL, or panicked) with a fresh incarnation after a jittered backoff that doubles from
    /// `min` to `max` while replacements keep dying (default ttl/10 .. ttl).
    pub fn worker_restart(mut self, min: Duration, max: Duration) -> Self {
        self.worker_restart = Some(Some((min, max)));
        self
    }

    /// Do not replace dead workers: a worker that dies stays gone (its handle's
    /// [`join`](super::WorkerHandle::join) returns how it ended).
    pub fn no_worker_restart(mut self) -> Self {
        self.worker_restart = Some(None);
        self
    }

    /// How long [`Pool::start`](super::Pool::start) waits for the store before it fails with
    /// [`PoolError::StartTimeout`](super::PoolError::StartTimeout) (default 30 s, at most 24 h).
    pub fn start_timeout(mut self, d: Duration) -> Self {
        self.start_timeout = d;
        self
    }

    /// Validate and build.
    pub fn build(self) -> Result<PoolConfig, ConfigError> {
        let err = ConfigError::new;
        if self.name.is_empty() || self.name.len() > 200 || self.name.contains('|') {
            return Err(err("name", "must be 1..=200 bytes without '|'"));
        }
        if self.node.is_empty() || self.node.len() > 200 || self.node.contains(['|', '\u{1f}']) {
            return Err(err("node", "must be 1..=200 bytes without '|'"));
        }
        let ttl = self.worker_ttl;
        if ttl < Duration::from_millis(10) || ttl > Duration::from_secs(24 * 3600) {
            return Err(err("worker_ttl", "must be in 10 ms ..= 24 h"));
        }
        let keepalive_interval = self.keepalive_interval.unwrap_or(ttl / 3);
        if keepalive_interval.is_zero() || keepalive_interval >= ttl {
            return Err(err("keepalive_interval", "must be > 0 and < worker_ttl"));
        }
        let drift_margin = self.drift_margin.unwrap_or(ttl / 10);
        if drift_margin >= ttl - keepalive_interval {
            return Err(err("drift_margin", "must be < worker_ttl - keepalive_interval"));
        }
        let ack_grace = self.ack_grace.unwrap_or(ttl);
        if ack_grace.is_zero() {
            return Err(err("ack_grace", "must be > 0"));
        }
        let sweep_interval = self.sweep_interval.unwrap_or(ttl / 3);
        if sweep_interval.is_zero() {
            return Err(err("sweep_interval", "must be > 0"));
        }
        let cleanup_lock_ttl = self.cleanup_lock_ttl.unwrap_or(ttl * 2);
        if cleanup_lock_ttl < sweep_interval {
            return Err(err("cleanup_lock_ttl", "must be >= sweep_interval"));
        }
        if self.cleanup_retries == 0 || self.cleanup_retries > 100 {
            return Err(err("cleanup_retries", "attempts must be in 1..=100"));
        }
        let cleanup_backoff = self.cleanup_backoff.unwrap_or((
            Duration::from_millis(20).min(sweep_interval / 4),
            (sweep_interval / 2).max(Duration::from_millis(1)),
        ));
        if cleanup_backoff.0.is_zero() || cleanup_backoff.0 > cleanup_backoff.1 {
            return Err(err("cleanup_retries", "backoff min must be > 0 and <= max"));
        }
        let shutdown_deadline = self.shutdown_deadline.unwrap_or(ttl);
        let op_timeout = self.op_timeout.unwrap_or(keepalive_interval / 2);
        if op_timeout.is_zero() {
            return Err(err("op_timeout", "must be > 0"));
        }
        if self.intake_buffer == 0 || self.intake_buffer > 1 << 20 {
            return Err(err("intake_buffer", "must be in 1..=1048576"));
        }
        let done_retention = self.done_retention.unwrap_or(ttl * 10);
        if done_retention < ttl || done_retention > DEDUP_WINDOW_MAX {
            return Err(err("dedup_window", "must be in worker_ttl ..= 366 days"));
        }
        let worker_restart = self.worker_restart.unwrap_or(Some(((ttl / 10).max(Duration::from_millis(1)), ttl)));
        if let Some((min, max)) = worker_restart
            && (min.is_zero() || min > max || max > DURATION_MAX)
        {
            return Err(err("worker_restart", "backoff min must be > 0 and <= max <= 24 h"));
        }
        if self.start_timeout.is_zero() || self.start_timeout > DURATION_MAX {
            return Err(err("start_timeout", "must be in (0, 24 h]"));
        }
        // The completer flushes completion events every ttl/20 (<= 50 ms) and may take the
        // workers' drain (shutdown_deadline) plus a few store ops to stop.
        let completer = CompleterConfig::builder(format!("keel:pool:{}", self.name))
            .flush_interval((ttl / 20).clamp(Duration::from_millis(1), Duration::from_millis(50)))
            .op_timeout(op_timeout)
            .retry_backoff(cleanup_backoff.0, cleanup_backoff.1)
            .stop_timeout(shutdown_deadline + op_timeout * 4)
            .build()?;
        Ok(PoolConfig {
            completer,
            name: self.name,
            node: self.node,
            worker_ttl: ttl,
            keepalive_interval,
            drift_margin,
            ack_grace,
            sweep_interval,
            cleanup_lock_ttl,
            cleanup_retries: self.cleanup_retries,
            cleanup_backoff,
            shutdown_deadline,
            op_timeout,
            intake_buffer: self.intake_buffer,
            done_retention,
            worker_restart,
            start_timeout: self.start_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_rejections() {
        let c = PoolConfig::builder("p", "n").worker_ttl(Duration::from_secs(3)).build().unwrap();
        assert_eq!(c.keepalive_interval, Duration::from_secs(1));
        assert_eq!(c.cleanup_lock_ttl, Duration::from_secs(6));
        assert_eq!(PoolConfig::builder("", "n").build().unwrap_err().field, "name");
        assert_eq!(PoolConfig::builder("p", "a|b").build().unwrap_err().field, "node");
        let e = PoolConfig::builder("p", "n").keepalive_interval(Duration::from_secs(20)).build().unwrap_err();
        assert_eq!(e.field, "keepalive_interval");
        let e = PoolConfig::builder("p", "n").drift_margin(Duration::from_secs(9)).build().unwrap_err();
        assert_eq!(e.field, "drift_margin");
        assert_eq!(c.worker_restart(), Some((Duration::from_millis(300), Duration::from_secs(3))));
        assert_eq!(c.start_timeout(), DEFAULT_START_TIMEOUT);
        let off = PoolConfig::builder("p", "n").no_worker_restart().build().unwrap();
        assert_eq!(off.worker_restart(), None);
        let e = PoolConfig::builder("p", "n").worker_restart(Duration::ZERO, Duration::from_secs(1)).build();
        assert_eq!(e.unwrap_err().field, "worker_restart");
        let e = PoolConfig::builder("p", "n").start_timeout(Duration::ZERO).build().unwrap_err();
        assert_eq!(e.field, "start_timeout");
        let e = PoolConfig::builder("p", "n").dedup_window(DEDUP_WINDOW_MAX * 2).build().unwrap_err();
        assert_eq!(e.field, "dedup_window");
        let long = PoolConfig::builder("p", "n").dedup_window(Duration::from_secs(30 * 24 * 3600)).build().unwrap();
        assert_eq!(long.dedup_window(), Duration::from_secs(30 * 24 * 3600));
    }
}
