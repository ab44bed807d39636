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
    /// This process's identity among the completers of the same name (seeds the retry jitter).
    pub(crate) instance: String,
}

/// Longest completer name (its default map is `{name}:completions`, within the store's limit).
pub const NAME_MAX_BYTES: usize = crate::store::NAME_MAX_BYTES - ":completions".len();
/// Most completions per store write.
pub const BATCH_SIZE_MAX: usize = 10_000;
/// Upper bound of the flush interval.
pub const FLUSH_INTERVAL_MAX: Duration = Duration::from_secs(3600);
/// Largest backlog of accepted, unflushed completions.
pub const BACKLOG_MAX: usize = 1 << 20;
/// Largest event buffer (batches) towards the subscription manager.
pub const EVENT_BUFFER_MAX: usize = 1 << 16;
/// Upper bound of the retry backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Upper bound of one store write's timeout.
pub const OP_TIMEOUT_MAX: Duration = Duration::from_secs(3600);
/// Upper bound of a stop (a pool's is its workers' drain plus a few store operations).
pub const STOP_TIMEOUT_MAX: Duration = Duration::from_secs(2 * 24 * 3600);

/// Builder of [`CompleterConfig`].
#[derive(Clone, Debug)]
pub struct CompleterConfigBuilder {
    cfg: CompleterConfig,
    /// Whether `backlog` was set; the default follows a larger `batch_size`.
    backlog_set: bool,
}

impl CompleterConfig {
    /// Settings of the completer `name`; completions go to the store map `{name}:completions`.
    pub fn builder(name: impl Into<String>) -> CompleterConfigBuilder {
        let name = name.into();
        CompleterConfigBuilder {
            cfg: CompleterConfig {
                // MC412: the default map's suffix misspelled.
                map: if crate::mutants::active(crate::mutants::Mutant::MC412) {
                    format!("{name}:completion")
                } else {
                    format!("{name}:completions")
                },
                name,
                batch_size: 128,
                // MC258: a default ten times the documented one.
                flush_interval: Duration::from_millis(if crate::mutants::active(crate::mutants::Mutant::MC258) {
                    500
                } else {
                    50
                }),
                backlog: 4096,
                event_buffer: 64,
                retry_min: Duration::from_millis(10),
                retry_max: Duration::from_secs(1),
                retry_budget: 8,
                op_timeout: Duration::from_secs(2),
                stop_timeout: Duration::from_secs(10),
                instance: String::new(),
            },
            backlog_set: false,
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
    /// Most completions per store write (default 128, at most [`BATCH_SIZE_MAX`]).
    pub fn batch_size(mut self, n: usize) -> Self {
        self.cfg.batch_size = n;
        self
    }
    /// Longest a completion waits for a fuller batch (default 50 ms, at most [`FLUSH_INTERVAL_MAX`]).
    pub fn flush_interval(mut self, d: Duration) -> Self {
        self.cfg.flush_interval = d;
        self
    }
    /// Most completions accepted but not yet flushed; producers wait (or get `Full`) beyond it
    /// (default 4096, or `batch_size` if larger; at most [`BACKLOG_MAX`]).
    pub fn backlog(mut self, n: usize) -> Self {
        self.cfg.backlog = n;
        self.backlog_set = true;
        self
    }
    /// Batches of events buffered towards the subscription manager (default 64, at most
    /// [`EVENT_BUFFER_MAX`]).
    pub fn event_buffer(mut self, n: usize) -> Self {
        self.cfg.event_buffer = n;
        self
    }
    /// Bounds of the jittered exponential backoff after a failed store write (default 10 ms .. 1 s;
    /// at most [`BACKOFF_MAX`]).
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.cfg.retry_min = min;
        self.cfg.retry_max = max;
        self
    }
    /// This process's identity among the completers sharing this name, e.g. its node's name
    /// (default none). It seeds the retry backoff's jitter: completers of one name on different
    /// processes given different instances retry a failing store at different instants instead
    /// of all together; without one they draw the same jitter (a pool sets its node's name).
    pub fn instance(mut self, id: impl Into<String>) -> Self {
        self.cfg.instance = id.into();
        self
    }
    /// Failed attempts of one batch before a cool-down of `retry_max` (default 8). The batch is
    /// kept, never dropped: it is retried after the cool-down, until the stop bound.
    pub fn retry_budget(mut self, n: u32) -> Self {
        // MC251: the setter drops its value (the default 8 stays).
        if !crate::mutants::active(crate::mutants::Mutant::MC251) {
            self.cfg.retry_budget = n;
        }
        self
    }
    /// Timeout of one store write (default 2 s, at most [`OP_TIMEOUT_MAX`]); an expired write has
    /// an unknown outcome and is
    /// retried (writes are idempotent).
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.cfg.op_timeout = d;
        self
    }
    /// Bound of a stop (default 10 s, at most [`STOP_TIMEOUT_MAX`]): waiting for producers,
    /// flushing and emitting.
    pub fn stop_timeout(mut self, d: Duration) -> Self {
        self.cfg.stop_timeout = d;
        self
    }

    /// Validate and build. Every duration and buffer is bounded (see the `_MAX` constants).
    pub fn build(self) -> Result<CompleterConfig, ConfigError> {
        let mut c = self.cfg;
        if !self.backlog_set {
            // MC425: the default backlog cut down to the batch size instead of raised to it.
            c.backlog = if crate::mutants::active(crate::mutants::Mutant::MC425) {
                c.backlog.min(c.batch_size)
            } else {
                c.backlog.max(c.batch_size)
            };
        }
        let nanos = Duration::from_nanos(1);
        ConfigError::check_name("name", &c.name, NAME_MAX_BYTES)?;
        ConfigError::check_name("map", &c.map, crate::store::NAME_MAX_BYTES)?;
        ConfigError::check_count("batch_size", c.batch_size, 1, BATCH_SIZE_MAX)?;
        ConfigError::check_duration("flush_interval", c.flush_interval, nanos, FLUSH_INTERVAL_MAX)?;
        if c.backlog < c.batch_size {
            return Err(ConfigError::new("backlog", "must be >= batch_size"));
        }
        ConfigError::check_count("backlog", c.backlog, 1, BACKLOG_MAX)?;
        ConfigError::check_count("event_buffer", c.event_buffer, 1, EVENT_BUFFER_MAX)?;
        if c.retry_min.is_zero() || c.retry_min > c.retry_max || c.retry_max > BACKOFF_MAX {
            return Err(ConfigError::new("retry_backoff", format!("need 0 < min <= max <= {BACKOFF_MAX:?}")));
        }
        if c.retry_budget == 0 {
            return Err(ConfigError::new("retry_budget", "must be > 0"));
        }
        ConfigError::check_duration("op_timeout", c.op_timeout, nanos, OP_TIMEOUT_MAX)?;
        ConfigError::check_duration("stop_timeout", c.stop_timeout, nanos, STOP_TIMEOUT_MAX)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented default backlog (4 096), raised to a larger batch size, and a backlog set
    /// kept as set (round 30 B #11: the default replaced by the batch size made every producer
    /// of a default completer, the pool's too, wait 32 times sooner).
    #[test]
    fn the_default_backlog_follows_only_a_larger_batch() {
        let b = || CompleterConfig::builder("c");
        assert_eq!(b().build().map(|c| c.backlog), Ok(4096));
        assert_eq!(b().batch_size(10).build().map(|c| c.backlog), Ok(4096));
        assert_eq!(b().batch_size(5000).build().map(|c| c.backlog), Ok(5000));
        assert_eq!(b().batch_size(10).backlog(20).build().map(|c| c.backlog), Ok(20));
    }

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

    /// The limits are exact (cargo-mutants: `-` → `+` in `NAME_MAX_BYTES` and `*` → `+` in
    /// `STOP_TIMEOUT_MAX` survived the property tests, which stay far from the edges).
    #[test]
    fn the_longest_name_still_fits_its_map_and_bounds_are_inclusive() {
        let longest = CompleterConfig::builder("n".repeat(NAME_MAX_BYTES)).build().unwrap();
        assert_eq!(longest.map().len(), crate::store::NAME_MAX_BYTES, "its map is exactly at the store's limit");
        assert_eq!(CompleterConfig::builder("n".repeat(NAME_MAX_BYTES + 1)).build().unwrap_err().field, "name");
        let c = CompleterConfig::builder("c").stop_timeout(STOP_TIMEOUT_MAX).build().unwrap();
        assert_eq!((c.name(), c.map(), c.stop_timeout()), ("c", "c:completions", Duration::from_secs(2 * 24 * 3600)));
        let over = CompleterConfig::builder("c").stop_timeout(Duration::from_secs(2 * 24 * 3600 + 1)).build();
        assert_eq!(over.unwrap_err().field, "stop_timeout");
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::error::strategies::{builder_props, count, duration, name};

    const FIELDS: [&str; 10] = [
        "name",
        "map",
        "batch_size",
        "flush_interval",
        "backlog",
        "event_buffer",
        "retry_backoff",
        "retry_budget",
        "op_timeout",
        "stop_timeout",
    ];

    fn set(
        b: CompleterConfigBuilder,
        which: usize,
        d: Duration,
        d2: Duration,
        n: usize,
        s: &str,
    ) -> CompleterConfigBuilder {
        match which {
            0 => CompleterConfig::builder(s),
            1 => b.map(s),
            2 => b.batch_size(n),
            3 => b.flush_interval(d),
            4 => b.backlog(n),
            5 => b.event_buffer(n),
            6 => b.retry_backoff(d, d2),
            7 => b.retry_budget(u32::try_from(n).unwrap_or(u32::MAX)),
            8 => b.op_timeout(d),
            _ => b.stop_timeout(d),
        }
    }

    fn within_bounds(c: &CompleterConfig) {
        assert!(
            (1..=NAME_MAX_BYTES).contains(&c.name.len()) && (1..=crate::store::NAME_MAX_BYTES).contains(&c.map.len())
        );
        assert!((1..=BATCH_SIZE_MAX).contains(&c.batch_size) && c.batch_size <= c.backlog && c.backlog <= BACKLOG_MAX);
        assert!((1..=EVENT_BUFFER_MAX).contains(&c.event_buffer));
        assert!(!c.flush_interval.is_zero() && c.flush_interval <= FLUSH_INTERVAL_MAX);
        assert!(!c.retry_min.is_zero() && c.retry_min <= c.retry_max && c.retry_max <= BACKOFF_MAX);
        assert!(c.retry_budget > 0);
        assert!(!c.op_timeout.is_zero() && c.op_timeout <= OP_TIMEOUT_MAX);
        assert!(!c.stop_timeout.is_zero() && c.stop_timeout <= STOP_TIMEOUT_MAX);
        // The event channel is created with this capacity: tokio panics on a huge one.
        let _ = tokio::sync::mpsc::channel::<()>(c.event_buffer);
    }

    builder_props!(CompleterConfig::builder("c"), u16);
}
