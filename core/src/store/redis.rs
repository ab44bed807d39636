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

mod call;
mod checks;
mod config;
#[doc(hidden)]
pub mod decode;
mod scripts;
mod watch;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, ErrorKind, RedisError, Value};
use tracing::{debug, warn};

use self::call::Call;
pub use self::checks::Deployment;
pub use self::config::{PREFIX_MAX_BYTES, RedisConfig, RedisConfigBuilder, TIMEOUT_MAX};
pub use self::watch::RedisWatch;
use super::*;
#[doc(hidden)]
pub use scripts::lease_sources;

/// One transaction's guards and writes, borrowed (a `map_txn` call or one of a `map_txns` batch).
type TxnRef<'a> = (&'a [(String, Expect)], &'a [(String, Option<String>)]);

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
    /// Keys found corrupt and not read cleanly since: key → detail. Each is logged once, when
    /// it is first found (or found again after a clean read), not on every failing call.
    corrupt: Mutex<BTreeMap<String, String>>,
    deployment: Mutex<Option<Deployment>>,
}

/// Most corrupt keys remembered for logging once; beyond it every further one is logged.
const CORRUPT_KEYS_MAX: usize = 1024;

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connect now and check the deployment: fails with [`StoreError::Unavailable`] if Redis
    /// cannot be reached within the connect timeout, and with [`StoreError::Misconfigured`] if it
    /// cannot serve keel: a wrong password or unknown user, a `maxmemory-policy` that may evict
    /// keys (unless [`RedisConfigBuilder::allow_evicting_policy`]), or an ACL user missing a
    /// command, key or channel permission keel needs. Logs the Redis version found
    /// ([`RedisStore::deployment`] returns what was checked).
    pub async fn connect(config: RedisConfig) -> StoreResult<Self> {
        let store = Self::connect_lazy(config)?;
        let deployment = checks::run(&store).await?;
        tracing::info!(target: "keel::store::redis", kind = "redis_connected", version = %deployment.version,
            maxmemory_policy = %deployment.maxmemory_policy, acl_checked = deployment.acl_checked,
            url = %store.inner.config.redacted_url(), "connected to redis");
        *store.inner.deployment.lock().unwrap_or_else(|p| p.into_inner()) = Some(deployment);
        Ok(store)
    }

    /// What [`connect`](Self::connect) found (None for a store made with
    /// [`connect_lazy`](Self::connect_lazy), which checks nothing).
    pub fn deployment(&self) -> Option<Deployment> {
        self.inner.deployment.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Keys found corrupt (wrong type, unparsable counter, bad encoding) and not read cleanly
    /// since, without the deployment prefix: key → what is wrong. Each was logged once (WARN,
    /// `kind = "corrupt_key"`), when first found. An operator fixes or deletes the key; the next
    /// clean operation on it removes it from here.
    pub fn corrupt_keys(&self) -> BTreeMap<String, String> {
        self.inner.corrupt.lock().unwrap_or_else(|p| p.into_inner()).clone()
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
            corrupt: Mutex::new(BTreeMap::new()),
            deployment: Mutex::new(None),
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

    /// Run a script with the operation timeout, classify its failure and decode its reply;
    /// corrupt keys are remembered (and logged once), and forgotten after a clean operation.
    async fn run<T>(
        &self,
        op: &'static str,
        name: &str,
        call: &Call<'_>,
        decode: impl FnOnce(&Value) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut conn = self.conn();
        let r = self.timed(op, name, call.invoke(&mut conn)).await.and_then(|v| decode(&v));
        self.note(op, name, &r);
        r
    }

    /// Keep the registry of corrupt keys: a new (or changed) corruption is logged once; a clean
    /// operation on `name` clears what was known about it.
    fn note<T>(&self, op: &'static str, name: &str, r: &StoreResult<T>) {
        let mut known = self.inner.corrupt.lock().unwrap_or_else(|p| p.into_inner());
        match r {
            Err(StoreError::Corrupt { key, detail }) if known.get(key) != Some(detail) => {
                warn!(target: "keel::store::redis", kind = "corrupt_key", op, key = %key, detail = %detail,
                    "corrupt key: an operator must fix or delete it (logged once per key)");
                if known.len() < CORRUPT_KEYS_MAX || known.contains_key(key) {
                    known.insert(key.clone(), detail.clone());
                }
            }
            Ok(_) if !known.is_empty() => {
                // `name` is the lease or map; its keys are `<kind>:<name>`.
                known.retain(|k, _| k.split_once(':').is_none_or(|(_, n)| n != name));
            }
            _ => {}
        }
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

    /// One `map_txns` script call for `txns` (already validated): one outcome per transaction.
    async fn run_txns(&self, map: &str, txns: &[TxnRef<'_>]) -> StoreResult<Vec<TxnOutcome>> {
        let mut inv = self.map_invocation(&self.inner.scripts.map_txns, map);
        inv.arg(txns.len());
        for (guards, writes) in txns {
            inv.arg(guards.len()).arg(writes.len());
            for (k, expect) in *guards {
                match expect {
                    Expect::Absent => inv.arg(k).arg("a").arg(""),
                    Expect::Value(v) => inv.arg(k).arg("v").arg(v),
                };
            }
            for (k, value) in *writes {
                match value {
                    Some(v) => inv.arg(k).arg("s").arg(v),
                    None => inv.arg(k).arg("d").arg(""),
                };
            }
        }
        self.run("map_txns", map, &inv, |v| decode::map_txns(map, txns.len(), v)).await
    }

    fn map_invocation<'a>(&self, script: &'a ::redis::Script, map: &str) -> Call<'a> {
        let keys =
            [self.key("map", map), self.key("map-rev", map), self.key("map-boot", map), self.key("map-reseeds", map)];
        let mut inv = Call::new(script, &keys);
        inv.arg(self.channel(map));
        inv
    }
}

/// HSCAN takes any unsigned 64-bit number (an unknown one just resumes somewhere); refuse the
/// rest here, typed, rather than as a script error.
fn check_scan_cursor(cursor: &str) -> StoreResult<()> {
    if cursor.parse::<u64>().is_err() || cursor.starts_with('+') {
        return Err(bad_cursor(cursor));
    }
    Ok(())
}

/// Whether a reply of a pipeline is Redis's "no such script" (its script cache was flushed).
fn is_no_script(v: &Value) -> bool {
    matches!(v, Value::ServerError(e) if e.kind() == Some(::redis::ServerErrorKind::NoScript))
}

/// Map a redis-rs error to the store's taxonomy.
fn classify(op: &'static str, e: RedisError, key: &str) -> StoreError {
    let text = e.to_string();
    if e.code() == Some("KEELCORRUPT") {
        // "<role> <detail> script: <sha>, on @user_script:<line>."
        let detail = e.detail().unwrap_or_default();
        let detail = detail.split(" script: ").next().unwrap_or(detail);
        let (role, detail) = detail.split_once(' ').unwrap_or((detail, ""));
        let kind = match role {
            "meta" => "lease-meta",
            "rev" => "map-rev",
            "boot" => "map-boot",
            "reseeds" => "map-reseeds",
            other => other,
        };
        return StoreError::corrupt(format!("{kind}:{key}"), detail.trim().to_owned());
    }
    if e.code() == Some("WRONGTYPE") || text.contains("not an integer") {
        debug!(target: "keel::store::redis", op, key, error = %text, "corrupt key");
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

impl Store for RedisStore {
    type Watch = RedisWatch;

    async fn time_ms(&self) -> StoreResult<u64> {
        let mut conn = self.conn();
        let cmd = ::redis::cmd("TIME");
        let v = self.timed("time", "", cmd.query_async::<Value>(&mut conn)).await?;
        decode::time_ms(&v)
    }

    async fn lease_acquire(&self, name: &str, token: &str, ttl_ms: u64, quarantine_ms: u64) -> StoreResult<Acquire> {
        check_name("lease name", name)?;
        check_name("lease token", token)?;
        check_ttl(ttl_ms)?;
        check_quarantine(quarantine_ms)?;
        let mut inv =
            Call::new(&self.inner.scripts.lease_acquire, &[self.key("lease", name), self.key("lease-meta", name)]);
        inv.arg(token).arg(ttl_ms).arg(quarantine_ms);
        self.run("lease_acquire", name, &inv, |v| decode::lease_grant(name, v)).await
    }

    async fn lease_renew(&self, name: &str, token: &str, ttl_ms: u64) -> StoreResult<Renew> {
        check_name("lease name", name)?;
        check_ttl(ttl_ms)?;
        let mut inv = Call::new(&self.inner.scripts.lease_renew, &[self.key("lease", name)]);
        inv.arg(token).arg(ttl_ms);
        self.run("lease_renew", name, &inv, |v| decode::fence(name, v)).await
    }

    async fn lease_release(&self, name: &str, token: &str) -> StoreResult<bool> {
        check_name("lease name", name)?;
        let mut inv = Call::new(&self.inner.scripts.lease_release, &[self.key("lease", name)]);
        inv.arg(token);
        self.run("lease_release", name, &inv, |v| decode::released(name, v)).await
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
        self.run("map_get", map, &inv, |v| decode::map_entry(map, key, v)).await
    }

    async fn map_snapshot(&self, map: &str) -> StoreResult<MapSnapshot> {
        check_name("map", map)?;
        let inv = self.map_invocation(&self.inner.scripts.map_snapshot, map);
        self.run("map_snapshot", map, &inv, |v| decode::map_snapshot(map, v)).await
    }

    async fn map_scan(&self, map: &str, cursor: &str, count: usize) -> StoreResult<MapScan> {
        check_scan(map, count)?;
        check_scan_cursor(cursor)?;
        let mut inv = self.map_invocation(&self.inner.scripts.map_scan, map);
        inv.arg(cursor).arg(count);
        self.run("map_scan", map, &inv, |v| decode::map_scan(map, v)).await
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
        self.run("map_write", map, &inv, |v| decode::map_write(map, key, v)).await
    }

    async fn map_txn(
        &self,
        map: &str,
        guards: &[(String, Expect)],
        writes: &[(String, Option<String>)],
    ) -> StoreResult<TxnOutcome> {
        check_txn_names(map, guards, writes)?;
        let txn = [(guards, writes)];
        let mut out = self.run_txns(map, &txn).await?;
        out.pop().ok_or_else(|| StoreError::corrupt(format!("map:{map}"), "empty reply to map_txn"))
    }

    async fn map_txns(&self, map: &str, txns: &[MapTxn]) -> StoreResult<Vec<TxnOutcome>> {
        check_txns(map, txns)?;
        if txns.is_empty() {
            return Ok(Vec::new());
        }
        let txns: Vec<_> = txns.iter().map(|t| (t.guards.as_slice(), t.writes.as_slice())).collect();
        self.run_txns(map, &txns).await
    }

    async fn reads(&self, reads: &[Read]) -> StoreResult<Vec<ReadOut>> {
        reads::check_reads(reads)?;
        for r in reads {
            if let Read::Scan { cursor, .. } = r {
                check_scan_cursor(cursor)?;
            }
        }
        if reads.is_empty() {
            return Ok(Vec::new());
        }
        let scripts = &self.inner.scripts;
        let calls: Vec<Option<Call<'_>>> = reads
            .iter()
            .map(|r| match r {
                Read::Time => None,
                Read::Get { map, key } => {
                    let mut inv = self.map_invocation(&scripts.map_get, map);
                    inv.arg(key);
                    Some(inv)
                }
                Read::Snapshot { map } => Some(self.map_invocation(&scripts.map_snapshot, map)),
                Read::Scan { map, cursor, count } => {
                    let mut inv = self.map_invocation(&scripts.map_scan, map);
                    inv.arg(cursor).arg(count);
                    Some(inv)
                }
            })
            .collect();
        let mut pipe = ::redis::pipe();
        pipe.atomic().ignore_errors(); // every reply, errors included, so each read is judged as a single one
        for call in calls {
            match call {
                Some(call) => pipe.add_command(call.into_command()),
                None => pipe.cmd("TIME"),
            };
        }
        let mut conn = self.conn();
        let mut replies: Vec<Value> = self.timed("reads", "", pipe.query_async(&mut conn)).await?;
        if replies.iter().any(is_no_script) {
            // The script cache was lost (a restart): load what the batch runs, then send it again
            // (reads change nothing, so the first attempt's other replies can be dropped).
            for script in [&scripts.map_get, &scripts.map_snapshot, &scripts.map_scan] {
                self.timed("reads", "", script.load_async(&mut conn)).await?;
            }
            replies = self.timed("reads", "", pipe.query_async(&mut conn)).await?;
        }
        if replies.len() != reads.len() {
            let detail = format!("{} replies to {} reads", replies.len(), reads.len());
            return Err(StoreError::corrupt("reads", detail));
        }
        let mut out = Vec::with_capacity(reads.len());
        let mut failed = None;
        for (r, v) in reads.iter().zip(replies) {
            let (op, name) = match r {
                Read::Time => ("time", ""),
                Read::Get { map, .. } => ("map_get", map.as_str()),
                Read::Snapshot { map } => ("map_snapshot", map.as_str()),
                Read::Scan { map, .. } => ("map_scan", map.as_str()),
            };
            let got = match v {
                Value::ServerError(e) => Err(classify(op, e.into(), name)),
                v => match r {
                    Read::Time => decode::time_ms(&v).map(ReadOut::Time),
                    Read::Get { map, key } => decode::map_entry(map, key, &v).map(|(v, rev)| ReadOut::Get(v, rev)),
                    Read::Snapshot { map } => decode::map_snapshot(map, &v).map(ReadOut::Snapshot),
                    Read::Scan { map, .. } => decode::map_scan(map, &v).map(ReadOut::Scan),
                },
            };
            if !name.is_empty() {
                self.note(op, name, &got);
            }
            match got {
                Ok(o) => out.push(o),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        failed.map_or(Ok(out), Err)
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
