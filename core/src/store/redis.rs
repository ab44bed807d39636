//! The production backend: [`Store`] over Redis (feature `redis`), with the exact semantics of
//! [`MemoryStore`](super::MemoryStore) (one conformance suite runs against both).
//!
//! - Every operation is one Lua script (EVALSHA, reloaded automatically after a restart lost the
//!   script cache), atomic, idempotent or guarded by a token/revision, stamped with Redis `TIME`.
//! - Keys: `<prefix>:lease:<name>` (holder hash with a `PX` TTL), `<prefix>:lease-meta:<name>`
//!   (fence counter and quarantine end, no TTL), `<prefix>:map:<map>` (hash),
//!   `<prefix>:map-rev:<map>` (revision counter); changes are published on `<prefix>:watch:<map>`.
//!   A single Redis instance is assumed (the scripts touch two keys that may not share a cluster
//!   slot).
//! - Errors: *not applied* (refused connection, connect timeout, error reply) is kept apart from
//!   *unknown outcome* (no reply within the operation timeout, connection lost after send). A key
//!   of the wrong type or with garbage in it is [`StoreError::Corrupt`] and nothing is changed.
//! - The watch feed runs on its own pub/sub connection, reconnects by itself and reports
//!   [`WatchEvent::Gap`] once it is subscribed again.

mod config;
mod scripts;
mod watch;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, ErrorKind, RedisError, ScriptInvocation, Value};
use tracing::{debug, warn};

pub use self::config::{RedisConfig, RedisConfigBuilder};
pub use self::watch::RedisWatch;
use super::*;
#[doc(hidden)]
pub use scripts::lease_sources;

/// Consecutive timeouts after which the command connection is replaced: a connection that
/// stopped answering without breaking (half-open, partitioned) would otherwise never recover.
const REPLACE_AFTER_TIMEOUTS: u32 = 2;

/// Dropped unforgotten = the request was abandoned by its caller before it finished.
struct Abandoned<'a> {
    store: &'a RedisStore,
    op: &'static str,
    sent: tokio::time::Instant,
}

impl Drop for Abandoned<'_> {
    fn drop(&mut self) {
        if self.sent.elapsed() >= self.store.inner.config.op_timeout / 2 {
            self.store.on_timeout(self.op);
        }
    }
}

/// A [`Store`] over Redis. Clones share one multiplexed connection.
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use keel::store::{Acquire, RedisConfig, RedisStore, Store};
/// let config = RedisConfig::builder("redis://127.0.0.1:6379")
///     .key_prefix("billing-prod")
///     .op_timeout(Duration::from_millis(500))
///     .build()?;
/// let store = RedisStore::connect(config).await?;
/// if let Acquire::Granted { fence } = store.lease_acquire("leader", "host-a:1", 10_000, 10_000).await? {
///     println!("leading with fence {fence}");
/// }
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    client: Client,
    conn: Mutex<ConnectionManager>,
    timeouts: AtomicU32,
    /// Command connections replaced after timeouts (for tests and diagnostics).
    replaced: AtomicU32,
    scripts: scripts::Scripts,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connect now; fails with [`StoreError::Unavailable`] if Redis cannot be reached within the
    /// connect timeout.
    pub async fn connect(config: RedisConfig) -> StoreResult<Self> {
        let store = Self::connect_lazy(config)?;
        let mut conn = store.conn();
        let ping = ::redis::cmd("PING");
        match tokio::time::timeout(store.inner.config.connect_timeout, ping.query_async::<Value>(&mut conn)).await {
            Ok(Ok(_)) => Ok(store),
            Ok(Err(e)) => Err(classify("connect", e, "")),
            Err(_) => Err(StoreError::Unavailable { reason: "connect timed out".into() }),
        }
    }

    /// How many times the command connection was replaced because it stopped answering.
    #[doc(hidden)]
    pub fn connections_replaced(&self) -> u32 {
        self.inner.replaced.load(Ordering::Relaxed)
    }

    /// A store that connects on first use (and reconnects by itself after every failure), so a
    /// service can start while Redis is down. Must be called inside a tokio runtime.
    pub fn connect_lazy(config: RedisConfig) -> StoreResult<Self> {
        let client = config.client()?;
        let conn = Self::manager(&client, &config)?;
        let inner = Inner {
            config,
            client,
            conn: Mutex::new(conn),
            timeouts: AtomicU32::new(0),
            replaced: AtomicU32::new(0),
            scripts: scripts::Scripts::new(),
        };
        Ok(RedisStore { inner: Arc::new(inner) })
    }

    /// The configuration in use.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }

    fn manager(client: &Client, config: &RedisConfig) -> StoreResult<ConnectionManager> {
        // One connection attempt per command while Redis is down: a refused connection is
        // reported at once (not applied) instead of being retried behind the caller's back.
        let cfg = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(config.connect_timeout))
            .set_response_timeout(None);
        ConnectionManager::new_lazy_with_config(client.clone(), cfg).map_err(|e| classify("connect", e, ""))
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}:{kind}:{name}", self.inner.config.prefix)
    }

    fn channel(&self, map: &str) -> String {
        self.key("watch", map)
    }

    /// Run a script with the operation timeout and classify its failure.
    async fn run(&self, op: &'static str, name: &str, inv: &ScriptInvocation<'_>) -> StoreResult<Value> {
        let mut conn = self.conn();
        self.timed(op, name, inv.invoke_async::<Value>(&mut conn)).await
    }

    /// Await a request with the operation timeout; classify its failure.
    async fn timed<T>(
        &self,
        op: &'static str,
        name: &str,
        request: impl Future<Output = ::redis::RedisResult<T>>,
    ) -> StoreResult<T> {
        let abandoned = Abandoned { store: self, op, sent: tokio::time::Instant::now() };
        let r = tokio::time::timeout(self.inner.config.op_timeout, request).await;
        std::mem::forget(abandoned);
        match r {
            Ok(Ok(v)) => {
                self.inner.timeouts.store(0, Ordering::Relaxed);
                Ok(v)
            }
            Ok(Err(e)) => {
                let err = classify(op, e, name);
                debug!(target: "keel::store::redis", op, error = %err, "redis operation failed");
                Err(err)
            }
            Err(_) => {
                self.on_timeout(op);
                Err(StoreError::Timeout { op })
            }
        }
    }

    /// Counted toward [`REPLACE_AFTER_TIMEOUTS`]: a timeout, or a request its caller abandoned
    /// after waiting half the operation timeout (callers such as the lease owner give up on their
    /// own local deadline, which may run out first: without this a stalled connection would never
    /// be replaced while those callers keep queueing behind it).
    fn on_timeout(&self, op: &'static str) {
        let n = self.inner.timeouts.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= REPLACE_AFTER_TIMEOUTS {
            match Self::manager(&self.inner.client, &self.inner.config) {
                Ok(fresh) => {
                    *self.inner.conn.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
                    self.inner.timeouts.store(0, Ordering::Relaxed);
                    self.inner.replaced.fetch_add(1, Ordering::Relaxed);
                    warn!(target: "keel::store::redis", op, timeouts = n, "redis stopped answering; replacing the connection");
                }
                Err(e) => warn!(target: "keel::store::redis", op, error = %e, "could not replace the redis connection"),
            }
        }
    }

    fn map_invocation<'a>(&self, script: &'a ::redis::Script, map: &str) -> ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        inv.key(self.key("map", map)).key(self.key("map-rev", map)).arg(self.channel(map));
        inv
    }
}

/// Map a redis-rs error to the store's taxonomy.
fn classify(op: &'static str, e: RedisError, key: &str) -> StoreError {
    let text = e.to_string();
    if e.code() == Some("KEELCORRUPT") {
        // "<role> <detail> script: <sha>, on @user_script:<line>."
        let detail = e.detail().unwrap_or_default();
        let detail = detail.split(" script: ").next().unwrap_or(detail);
        let (role, detail) = detail.split_once(' ').unwrap_or((detail, ""));
        warn!(target: "keel::store::redis", op, key, role, detail, "corrupt key");
        let kind = match role {
            "meta" => "lease-meta",
            "rev" => "map-rev",
            other => other,
        };
        return StoreError::corrupt(format!("{kind}:{key}"), detail.trim().to_owned());
    }
    if e.code() == Some("WRONGTYPE") || text.contains("not an integer") {
        warn!(target: "keel::store::redis", op, key, error = %text, "corrupt key");
        return StoreError::corrupt(key, text);
    }
    match e.kind() {
        ErrorKind::Io if e.is_connection_refusal() || e.is_timeout() => {
            // We set no response timeout, so an I/O timeout is a connect timeout: nothing sent.
            StoreError::Unavailable { reason: text }
        }
        ErrorKind::Io | ErrorKind::Parse => StoreError::Disconnected { reason: text },
        ErrorKind::UnexpectedReturnType => StoreError::corrupt(key, text),
        _ => StoreError::Refused { reason: text },
    }
}

fn bad_reply(op: &'static str, key: &str, v: &Value) -> StoreError {
    StoreError::corrupt(key, format!("unexpected reply to {op}: {v:?}"))
}

fn as_string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        other => as_string(other)?.parse().ok(),
    }
}

fn as_opt_string(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Nil => Some(None),
        other => as_string(other).map(Some),
    }
}

fn items(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        _ => &[],
    }
}

impl Store for RedisStore {
    type Watch = RedisWatch;

    async fn time_ms(&self) -> StoreResult<u64> {
        let mut conn = self.conn();
        let cmd = ::redis::cmd("TIME");
        let v = self.timed("time", "", cmd.query_async::<Value>(&mut conn)).await?;
        match items(&v) {
            [s, us] => match (as_u64(s), as_u64(us)) {
                (Some(s), Some(us)) => Ok(s * 1000 + us / 1000),
                _ => Err(bad_reply("time", "", &v)),
            },
            _ => Err(bad_reply("time", "", &v)),
        }
    }

    async fn lease_acquire(&self, name: &str, token: &str, ttl_ms: u64, quarantine_ms: u64) -> StoreResult<Acquire> {
        check_name("lease name", name)?;
        check_name("lease token", token)?;
        check_ttl(ttl_ms)?;
        check_quarantine(quarantine_ms)?;
        let mut inv = self.inner.scripts.lease_acquire.prepare_invoke();
        inv.key(self.key("lease", name)).key(self.key("lease-meta", name)).arg(token).arg(ttl_ms).arg(quarantine_ms);
        let v = self.run("lease_acquire", name, &inv).await?;
        let parsed = match items(&v) {
            [tag, n] => match (as_string(tag).as_deref(), as_u64(n)) {
                (Some("G"), Some(fence)) => Some(Acquire::Granted { fence }),
                (Some("H"), Some(remaining_ms)) => Some(Acquire::Held { remaining_ms }),
                (Some("Q"), Some(remaining_ms)) => Some(Acquire::Quarantined { remaining_ms }),
                _ => None,
            },
            _ => None,
        };
        parsed.ok_or_else(|| bad_reply("lease_acquire", name, &v))
    }

    async fn lease_renew(&self, name: &str, token: &str, ttl_ms: u64) -> StoreResult<Renew> {
        check_name("lease name", name)?;
        check_ttl(ttl_ms)?;
        let mut inv = self.inner.scripts.lease_renew.prepare_invoke();
        inv.key(self.key("lease", name)).arg(token).arg(ttl_ms);
        let v = self.run("lease_renew", name, &inv).await?;
        match v {
            Value::Nil => Ok(Renew::NotHolder),
            ref other => {
                as_u64(other).map(|fence| Renew::Renewed { fence }).ok_or_else(|| bad_reply("lease_renew", name, &v))
            }
        }
    }

    async fn lease_release(&self, name: &str, token: &str) -> StoreResult<bool> {
        check_name("lease name", name)?;
        let mut inv = self.inner.scripts.lease_release.prepare_invoke();
        inv.key(self.key("lease", name)).arg(token);
        let v = self.run("lease_release", name, &inv).await?;
        match as_u64(&v) {
            Some(n) => Ok(n == 1),
            None => Err(bad_reply("lease_release", name, &v)),
        }
    }

    #[cfg(feature = "mutants")]
    async fn lease_delete_unchecked(&self, name: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(self.key("lease", name));
        self.timed("lease_delete_unchecked", name, cmd.query_async::<Value>(&mut conn)).await.map(|_| ())
    }

    async fn map_get(&self, map: &str, key: &str) -> StoreResult<(Option<String>, u64)> {
        check_name("map", map)?;
        let mut inv = self.map_invocation(&self.inner.scripts.map_get, map);
        inv.arg(key);
        let v = self.run("map_get", map, &inv).await?;
        match items(&v) {
            [value, rev] => match (as_opt_string(value), as_u64(rev)) {
                (Some(value), Some(rev)) => Ok((value, rev)),
                _ => Err(bad_reply("map_get", map, &v)),
            },
            _ => Err(bad_reply("map_get", map, &v)),
        }
    }

    async fn map_snapshot(&self, map: &str) -> StoreResult<MapSnapshot> {
        check_name("map", map)?;
        let inv = self.map_invocation(&self.inner.scripts.map_snapshot, map);
        let v = self.run("map_snapshot", map, &inv).await?;
        let [rev, flat] = items(&v) else { return Err(bad_reply("map_snapshot", map, &v)) };
        let rev = as_u64(rev).ok_or_else(|| bad_reply("map_snapshot", map, &v))?;
        let mut entries = BTreeMap::new();
        for pair in items(flat).chunks(2) {
            match pair {
                [k, val] => match (as_string(k), as_string(val)) {
                    (Some(k), Some(val)) => entries.insert(k, val),
                    _ => return Err(StoreError::corrupt(map, "a key or value is not UTF-8")),
                },
                _ => return Err(bad_reply("map_snapshot", map, &v)),
            };
        }
        Ok(MapSnapshot { rev, entries })
    }

    async fn map_write(&self, map: &str, key: &str, write: MapWrite) -> StoreResult<WriteOutcome> {
        check_name("map", map)?;
        check_name("key", key)?;
        if let MapWrite::Append(items) | MapWrite::Remove(items) = &write {
            check_items(items)?;
        }
        let mut inv = self.map_invocation(&self.inner.scripts.map_write, map);
        inv.arg(key);
        match &write {
            MapWrite::Set(v) => inv.arg("set").arg(v),
            MapWrite::SetIfAbsent(v) => inv.arg("nx").arg(v),
            MapWrite::CompareAndSet { expected, new } => inv.arg("cas").arg(expected).arg(new),
            MapWrite::CompareAndDelete(expected) => inv.arg("cad").arg(expected),
            MapWrite::Delete => inv.arg("del"),
            MapWrite::Append(items) => inv.arg("app").arg(items),
            MapWrite::Remove(items) => inv.arg("rem").arg(items),
        };
        let v = self.run("map_write", map, &inv).await?;
        match items(&v) {
            [applied, rev, value] => match (as_u64(applied), as_u64(rev), as_opt_string(value)) {
                (Some(applied), Some(rev), Some(value)) => Ok(WriteOutcome { applied: applied == 1, rev, value }),
                _ => Err(StoreError::corrupt(map, format!("key {key:?} holds a value that is not UTF-8"))),
            },
            _ => Err(bad_reply("map_write", map, &v)),
        }
    }

    async fn map_txn(
        &self,
        map: &str,
        guards: &[(String, Expect)],
        writes: &[(String, Option<String>)],
    ) -> StoreResult<TxnOutcome> {
        check_txn_names(map, guards, writes)?;
        let mut inv = self.map_invocation(&self.inner.scripts.map_txn, map);
        inv.arg(guards.len());
        for (k, expect) in guards {
            match expect {
                Expect::Absent => inv.arg(k).arg("a").arg(""),
                Expect::Value(v) => inv.arg(k).arg("v").arg(v),
            };
        }
        for (k, value) in writes {
            match value {
                Some(v) => inv.arg(k).arg("s").arg(v),
                None => inv.arg(k).arg("d").arg(""),
            };
        }
        let v = self.run("map_txn", map, &inv).await?;
        match items(&v) {
            [applied, rev] => match (as_u64(applied), as_u64(rev)) {
                (Some(applied), Some(rev)) => Ok(TxnOutcome { applied: applied == 1, rev }),
                _ => Err(bad_reply("map_txn", map, &v)),
            },
            _ => Err(bad_reply("map_txn", map, &v)),
        }
    }

    async fn watch(&self, map: &str) -> StoreResult<RedisWatch> {
        check_name("map", map)?;
        watch::RedisWatch::start(
            self.inner.client.clone(),
            self.channel(map),
            map.to_owned(),
            self.inner.config.clone(),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::Outcome;

    fn io_err(kind: io::ErrorKind) -> RedisError {
        io::Error::from(kind).into()
    }

    #[test]
    fn errors_keep_not_applied_apart_from_unknown() {
        let refused = classify("op", io_err(io::ErrorKind::ConnectionRefused), "L");
        assert!(matches!(refused, StoreError::Unavailable { .. }), "{refused:?}");
        // No response timeout is configured, so an I/O timeout can only be the connect.
        let connect = classify("op", io_err(io::ErrorKind::TimedOut), "L");
        assert_eq!(connect.outcome(), Outcome::NotApplied);
        for kind in [io::ErrorKind::BrokenPipe, io::ErrorKind::ConnectionReset, io::ErrorKind::UnexpectedEof] {
            let e = classify("op", io_err(kind), "L");
            assert!(matches!(e, StoreError::Disconnected { .. }), "{kind:?}: {e:?}");
            assert_eq!(e.outcome(), Outcome::Unknown);
        }
        let oom = ::redis::make_extension_error("OOM".into(), Some("command not allowed".into()));
        assert!(matches!(classify("op", oom, "L"), StoreError::Refused { .. }));
    }

    #[test]
    fn corruption_names_the_key_without_prefix() {
        let detail = "map holds a string, expected a hash script: 0123abcd, on @user_script:3.";
        let e = ::redis::make_extension_error("KEELCORRUPT".into(), Some(detail.into()));
        assert_eq!(
            classify("map_write", e, "orders"),
            StoreError::Corrupt { key: "map:orders".into(), detail: "holds a string, expected a hash".into() }
        );
        let e = ::redis::make_extension_error("KEELCORRUPT".into(), Some("rev revision is not a number".into()));
        assert!(matches!(classify("map_write", e, "m"), StoreError::Corrupt { key, .. } if key == "map-rev:m"));
        let e = ::redis::make_extension_error("WRONGTYPE".into(), Some("Operation against a key".into()));
        assert!(matches!(classify("lease_acquire", e, "L"), StoreError::Corrupt { key, .. } if key == "L"));
    }
}
