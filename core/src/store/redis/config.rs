//! `RedisConfig` and its validating builder.

use std::time::Duration;

use redis::Client;

use crate::error::{ConfigError, StoreError};

/// Validated settings of a [`RedisStore`](super::RedisStore). Build with [`RedisConfig::builder`].
///
/// ```
/// use std::time::Duration;
/// use keel::store::RedisConfig;
/// let cfg = RedisConfig::builder("redis://app:secret@10.0.0.5:6379/2")
///     .key_prefix("billing-prod")
///     .op_timeout(Duration::from_millis(300))
///     .build()?;
/// assert_eq!(cfg.key_prefix(), "billing-prod");
/// assert!(!format!("{cfg:?}").contains("secret"), "passwords never reach logs");
/// assert!(RedisConfig::builder("http://nope").build().is_err());
/// # Ok::<(), keel::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RedisConfig {
    url: String,
    pub(super) prefix: String,
    pub(super) op_timeout: Duration,
    pub(super) connect_timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Builder of [`RedisConfig`].
#[derive(Clone)]
pub struct RedisConfigBuilder {
    url: String,
    prefix: String,
    op_timeout: Duration,
    connect_timeout: Duration,
}

impl std::fmt::Debug for RedisConfigBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfigBuilder").field("url", &redact(&self.url)).finish_non_exhaustive()
    }
}

/// Default key prefix.
pub const DEFAULT_PREFIX: &str = "keel";
/// Default per-operation timeout.
pub const DEFAULT_OP_TIMEOUT: Duration = Duration::from_secs(1);
/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

impl RedisConfig {
    /// Start from a URL: `redis://[user[:password]@]host[:port][/db]`, or `rediss://…` (TLS,
    /// feature `tls`). ACL user and password go in the URL.
    pub fn builder(url: impl Into<String>) -> RedisConfigBuilder {
        RedisConfigBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_owned(),
            op_timeout: DEFAULT_OP_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// The prefix of every key and channel (one per deployment sharing a Redis).
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    /// How long one operation may wait for its reply before it is an unknown outcome.
    pub fn op_timeout(&self) -> Duration {
        self.op_timeout
    }

    /// How long one connection attempt may take.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The URL with its password masked.
    pub fn redacted_url(&self) -> String {
        redact(&self.url)
    }

    pub(super) fn client(&self) -> Result<Client, StoreError> {
        Client::open(self.url.as_str()).map_err(|e| StoreError::Refused { reason: e.to_string() })
    }
}

impl RedisConfigBuilder {
    /// Key and channel prefix (default `keel`): 1..=128 bytes, no whitespace or control
    /// characters.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Per-operation timeout (default 1 s). Past it, the outcome is unknown.
    pub fn op_timeout(mut self, d: Duration) -> Self {
        self.op_timeout = d;
        self
    }

    /// Connect timeout (default 1 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Validate.
    pub fn build(self) -> Result<RedisConfig, ConfigError> {
        let scheme = self.url.split_once("://").map(|(s, _)| s);
        match scheme {
            Some("redis") => {}
            Some("rediss") if cfg!(feature = "tls") => {}
            Some("rediss") => return Err(ConfigError::new("url", "rediss:// needs keel's feature `tls`")),
            _ => {
                return Err(ConfigError::new(
                    "url",
                    format!("{} is not a redis:// or rediss:// URL", redact(&self.url)),
                ));
            }
        }
        if let Err(e) = Client::open(self.url.as_str()) {
            return Err(ConfigError::new("url", format!("{}: {e}", redact(&self.url))));
        }
        if self.prefix.is_empty() || self.prefix.len() > 128 {
            return Err(ConfigError::new("key_prefix", "must be 1..=128 bytes"));
        }
        if self.prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError::new("key_prefix", "must not contain whitespace or control characters"));
        }
        for (field, d) in [("op_timeout", self.op_timeout), ("connect_timeout", self.connect_timeout)] {
            if d.is_zero() || d > MAX_TIMEOUT {
                return Err(ConfigError::new(field, "must be in (0, 1 h]"));
            }
        }
        Ok(RedisConfig {
            url: self.url,
            prefix: self.prefix,
            op_timeout: self.op_timeout,
            connect_timeout: self.connect_timeout,
        })
    }
}

/// The URL with the password (between `user:` and `@`) replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "<not a URL>".to_owned() };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_owned(),
    }
}
