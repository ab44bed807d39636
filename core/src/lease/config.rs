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
    pub(crate) error_log_interval: Duration,
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
    error_log_interval: Duration,
    quarantine: bool,
}

/// The default lease TTL.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// Shortest TTL: one renewal period and a drift margin must fit in it.
pub const TTL_MIN: Duration = Duration::from_millis(3);
/// Longest TTL (and so the bound of `renew_interval` and `drift_margin`, which are below it).
pub const TTL_MAX: Duration = Duration::from_secs(24 * 3600);
/// Upper bound of the retry backoff.
pub const BACKOFF_MAX: Duration = Duration::from_secs(3600);
/// Shortest renewal period (the retry backoff and operation timeout default to fractions of it).
pub const RENEW_INTERVAL_MIN: Duration = Duration::from_millis(1);
/// Upper bound of the acquisition poll period.
pub const POLL_INTERVAL_MAX: Duration = TTL_MAX;
/// Upper bound of one store operation's timeout.
pub const OP_TIMEOUT_MAX: Duration = Duration::from_secs(3600);
/// How often store errors are summarised at warn level while they go on, by default.
pub const DEFAULT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);
/// Upper bound of the interval between warn-level summaries of store errors.
pub const ERROR_LOG_INTERVAL_MAX: Duration = Duration::from_secs(24 * 3600);
/// Upper bound of the time guarded work may take to stop.
pub const WORK_STOP_TIMEOUT_MAX: Duration = Duration::from_secs(24 * 3600);
/// Longest lease name: the store's key limit (the deployment prefix is not counted).
pub const NAME_MAX_BYTES: usize = crate::store::NAME_MAX_BYTES;
/// Longest owner id (tokens are `owner:incarnation:n`, well within the store's limit).
pub const OWNER_MAX_BYTES: usize = 256;

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
            error_log_interval: DEFAULT_ERROR_LOG_INTERVAL,
            quarantine: true,
        }
    }

    /// How often store errors are summarised at warn level while they go on.
    pub fn error_log_interval(&self) -> Duration {
        self.error_log_interval
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
    /// Store-side TTL (default 10 s; [`TTL_MIN`] ..= [`TTL_MAX`]).
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
    /// (default 20 ms .. renew_interval/4; max at most [`BACKOFF_MAX`]).
    pub fn retry_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.retry_min = Some(min);
        self.retry_max = Some(max);
        self
    }
    /// Acquisition poll period while another owner holds the lease (default renew_interval; at
    /// most [`POLL_INTERVAL_MAX`]).
    pub fn poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = Some(d);
        self
    }
    /// Timeout of one store operation (default renew_interval/2 capped at [`OP_TIMEOUT_MAX`]; a
    /// renewal is also cut at the local deadline).
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = Some(d);
        self
    }
    /// How long guarded work may take to stop after cancellation before it is aborted
    /// (default ttl, at most [`WORK_STOP_TIMEOUT_MAX`]).
    pub fn work_stop_timeout(mut self, d: Duration) -> Self {
        self.work_stop_timeout = Some(d);
        self
    }
    /// How often store errors are summarised at warn level while they go on (default
    /// [`DEFAULT_ERROR_LOG_INTERVAL`], 1 ms ..= [`ERROR_LOG_INTERVAL_MAX`]): the first error
    /// after a success at once, then one line per interval counting those since the last
    /// line. Every error is also a debug-level event.
    pub fn error_log_interval(mut self, d: Duration) -> Self {
        self.error_log_interval = d;
        self
    }
    /// Refuse grants for one TTL after the store lost the lease (default on). Switch off only
    /// when the store persists every write (Redis AOF `appendfsync always`).
    pub fn quarantine(mut self, on: bool) -> Self {
        self.quarantine = on;
        self
    }

    /// Validate and build. Every duration is bounded (see the `_MAX` constants), and the
    /// name must fit the store's key limit, so a config that builds is one the store accepts.
    pub fn build(self) -> Result<LeaseConfig, ConfigError> {
        ConfigError::check_name("name", &self.name, NAME_MAX_BYTES)?;
        ConfigError::check_name("owner", &self.owner, OWNER_MAX_BYTES)?;
        let ttl = ConfigError::check_duration("ttl", self.ttl, TTL_MIN, TTL_MAX)?;
        let renew_interval = self.renew_interval.unwrap_or(ttl / 3);
        if renew_interval < RENEW_INTERVAL_MIN || renew_interval >= ttl {
            return Err(ConfigError::new("renew_interval", format!("must be >= {RENEW_INTERVAL_MIN:?} and < ttl")));
        }
        let drift_margin = match self.drift_margin {
            Some(d) if d >= ttl - renew_interval => {
                return Err(ConfigError::new(
                    "drift_margin",
                    "must be < ttl - renew_interval, or no renewal could ever land in time",
                ));
            }
            Some(d) => d,
            // A default that does not fit is the renewal period's fault, not the user's margin.
            None if ttl / 10 >= ttl - renew_interval => {
                return Err(ConfigError::new(
                    "renew_interval",
                    "must leave room for the default drift margin (ttl/10) below ttl",
                ));
            }
            // MC212: a hundredth, not a tenth: a default that covers 1 % of drift, not 10 %.
            None if crate::mutants::active(crate::mutants::Mutant::MC212) => ttl / 100,
            None => ttl / 10,
        };
        // Defaults below are derived so that they are always valid (renew_interval >= 1 ms).
        let retry_min = self.retry_min.unwrap_or(Duration::from_millis(20).min(renew_interval / 4));
        let retry_max = self.retry_max.unwrap_or((renew_interval / 4).min(BACKOFF_MAX).max(retry_min));
        if retry_min.is_zero() || retry_min > retry_max || retry_max > BACKOFF_MAX {
            return Err(ConfigError::new("retry_backoff", format!("need 0 < min <= max <= {BACKOFF_MAX:?}")));
        }
        // MC215: the poll period defaulted to the TTL, not the renewal period: a released lease
        // waits up to a TTL for its next holder.
        let poll_default = if crate::mutants::active(crate::mutants::Mutant::MC215) { ttl } else { renew_interval };
        let poll_interval = self.poll_interval.unwrap_or(poll_default);
        ConfigError::check_duration("poll_interval", poll_interval, Duration::from_nanos(1), POLL_INTERVAL_MAX)?;
        let op_timeout = self.op_timeout.unwrap_or((renew_interval / 2).min(OP_TIMEOUT_MAX));
        ConfigError::check_duration("op_timeout", op_timeout, Duration::from_nanos(1), OP_TIMEOUT_MAX)?;
        let work_stop_timeout = self.work_stop_timeout.unwrap_or(ttl);
        ConfigError::check_duration("work_stop_timeout", work_stop_timeout, Duration::ZERO, WORK_STOP_TIMEOUT_MAX)?;
        let error_log_interval = ConfigError::check_duration(
            "error_log_interval",
            self.error_log_interval,
            Duration::from_millis(1),
            ERROR_LOG_INTERVAL_MAX,
        )?;
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
            error_log_interval,
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
        assert_eq!(c.error_log_interval(), DEFAULT_ERROR_LOG_INTERVAL);
        let c = b().error_log_interval(Duration::from_secs(2)).build().unwrap();
        assert_eq!(c.error_log_interval(), Duration::from_secs(2));
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
            (LeaseConfig::builder("l".repeat(NAME_MAX_BYTES + 1), "o"), "name"),
            (b().ttl(Duration::MAX), "ttl"),
            (b().op_timeout(Duration::MAX), "op_timeout"),
            (b().poll_interval(Duration::MAX), "poll_interval"),
            (b().work_stop_timeout(Duration::MAX), "work_stop_timeout"),
            (b().retry_backoff(Duration::from_millis(1), Duration::MAX), "retry_backoff"),
            (b().error_log_interval(Duration::ZERO), "error_log_interval"),
            (b().error_log_interval(Duration::MAX), "error_log_interval"),
        ];
        for (builder, field) in cases {
            assert_eq!(builder.build().unwrap_err().field, field);
        }
    }

    /// What was set is what the accessors give, and a drift margin just below ttl -
    /// renew_interval is accepted (cargo-mutants: `poll_interval() → 0` and the drift margin's
    /// guard → `true`, refusing every margin given, survived).
    #[test]
    fn settings_given_are_kept() {
        let ms = Duration::from_millis;
        let c = b().ttl(ms(900)).renew_interval(ms(300)).drift_margin(ms(599)).poll_interval(ms(70)).build().unwrap();
        assert_eq!((c.name(), c.owner(), c.ttl(), c.renew_interval()), ("l", "o", ms(900), ms(300)));
        assert_eq!((c.drift_margin(), c.poll_interval()), (ms(599), ms(70)));
        assert_eq!(
            b().ttl(ms(900)).renew_interval(ms(300)).drift_margin(ms(600)).build().unwrap_err().field,
            "drift_margin"
        );
    }
}

#[cfg(test)]
mod props {
    use proptest::prelude::*;

    use super::*;
    use crate::error::strategies::{duration, name};

    /// The settings of one builder, each either left to its default or set to anything.
    #[derive(Clone, Debug)]
    struct Settings {
        name: String,
        owner: String,
        ttl: Option<Duration>,
        renew_interval: Option<Duration>,
        drift_margin: Option<Duration>,
        backoff: Option<(Duration, Duration)>,
        poll_interval: Option<Duration>,
        op_timeout: Option<Duration>,
        work_stop_timeout: Option<Duration>,
    }

    fn settings() -> impl Strategy<Value = Settings> {
        let d = || proptest::option::of(duration());
        ((name(), name(), d(), d(), d()), (proptest::option::of((duration(), duration())), d(), d(), d())).prop_map(
            |(
                (name, owner, ttl, renew_interval, drift_margin),
                (backoff, poll_interval, op_timeout, work_stop_timeout),
            )| {
                Settings {
                    name,
                    owner,
                    ttl,
                    renew_interval,
                    drift_margin,
                    backoff,
                    poll_interval,
                    op_timeout,
                    work_stop_timeout,
                }
            },
        )
    }

    fn build(s: &Settings) -> Result<LeaseConfig, ConfigError> {
        let mut b = LeaseConfig::builder(s.name.clone(), s.owner.clone());
        if let Some(d) = s.ttl {
            b = b.ttl(d);
        }
        if let Some(d) = s.renew_interval {
            b = b.renew_interval(d);
        }
        if let Some(d) = s.drift_margin {
            b = b.drift_margin(d);
        }
        if let Some((min, max)) = s.backoff {
            b = b.retry_backoff(min, max);
        }
        if let Some(d) = s.poll_interval {
            b = b.poll_interval(d);
        }
        if let Some(d) = s.op_timeout {
            b = b.op_timeout(d);
        }
        if let Some(d) = s.work_stop_timeout {
            b = b.work_stop_timeout(d);
        }
        b.build()
    }

    fn within_bounds(c: &LeaseConfig) {
        assert!((TTL_MIN..=TTL_MAX).contains(&c.ttl));
        assert!(c.renew_interval >= RENEW_INTERVAL_MIN && c.renew_interval < c.ttl);
        assert!(c.drift_margin < c.ttl - c.renew_interval);
        assert!(!c.retry_min.is_zero() && c.retry_min <= c.retry_max && c.retry_max <= BACKOFF_MAX);
        assert!(!c.poll_interval.is_zero() && c.poll_interval <= POLL_INTERVAL_MAX);
        assert!(!c.op_timeout.is_zero() && c.op_timeout <= OP_TIMEOUT_MAX);
        assert!(c.work_stop_timeout <= WORK_STOP_TIMEOUT_MAX);
        assert!((1..=NAME_MAX_BYTES).contains(&c.name.len()) && (1..=OWNER_MAX_BYTES).contains(&c.owner.len()));
        // What the driver derives from it cannot overflow.
        let _ = c.ttl * 2u32.pow(12) + c.ttl / 2 + c.op_timeout + c.work_stop_timeout;
        assert!(c.drift_bound().is_finite());
    }

    proptest! {
        /// Anything at all: never a panic; either an error naming a real field or a config
        /// within every stated bound.
        #[test]
        fn any_settings_build_or_name_a_field(s in settings()) {
            match build(&s) {
                Ok(c) => within_bounds(&c),
                Err(e) => prop_assert!(
                    ["name", "owner", "ttl", "renew_interval", "drift_margin", "retry_backoff", "poll_interval",
                     "op_timeout", "work_stop_timeout"].contains(&e.field),
                    "{e}"
                ),
            }
        }

        /// One setting off its default: an error can only name that setting (defaults are
        /// derived so that they are always valid together).
        #[test]
        fn one_bad_setting_is_the_one_named(which in 0usize..8, d in duration(), n in name()) {
            let mut s = Settings {
                name: "l".into(), owner: "o".into(), ttl: None, renew_interval: None, drift_margin: None,
                backoff: None, poll_interval: None, op_timeout: None, work_stop_timeout: None,
            };
            let field = match which {
                0 => { s.name = n; "name" }
                1 => { s.owner = n; "owner" }
                2 => { s.ttl = Some(d); "ttl" }
                3 => { s.renew_interval = Some(d); "renew_interval" }
                4 => { s.drift_margin = Some(d); "drift_margin" }
                5 => { s.poll_interval = Some(d); "poll_interval" }
                6 => { s.op_timeout = Some(d); "op_timeout" }
                _ => { s.work_stop_timeout = Some(d); "work_stop_timeout" }
            };
            match build(&s) {
                Ok(c) => within_bounds(&c),
                Err(e) => prop_assert_eq!(e.field, field, "{}", e),
            }
        }
    }
}
