//! Deployment checks run by [`RedisStore::connect`]: can this Redis serve keel at all?
//!
//! A deployment keel cannot work on used to look like an endless outage (issue 12): an
//! evicting `maxmemory-policy` refuses every script with `OOM` (and would drop leases, fence
//! counters and job records under pressure), a user without a permission gets `NOPERM` on every
//! call, a wrong password fails every reconnect. Each is found once, at connect, and reported as
//! [`StoreError::Misconfigured`] with what to change.

use redis::{ErrorKind, RedisError, Script, Value};

use super::{RedisStore, classify};
use crate::error::StoreError;
use crate::store::StoreResult;

/// What [`RedisStore::connect`] found about the deployment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// `redis_version` from `INFO server` (`unknown` if INFO is not permitted and the eviction
    /// check was switched off).
    pub version: String,
    /// `maxmemory_policy` from `INFO memory` (`unknown` likewise).
    pub maxmemory_policy: String,
    /// Whether the ACL permissions were checked (Redis 7 or later, which has
    /// `redis.acl_check_cmd`); older servers are accepted unchecked.
    pub acl_checked: bool,
}

/// The only policy under which Redis never drops a key keel wrote.
const SAFE_POLICY: &str = "noeviction";

/// Asks, for every command, key and channel kind keel uses, whether the connected user may run
/// it; returns what it may not (`{'old'}` without `redis.acl_check_cmd`, i.e. before Redis 7).
/// KEYS: a lease holder, a lease meta, a map and a map revision key; ARGV: a watch channel.
const PROBE: &str = r#"
if not redis.acl_check_cmd then return {'old'} end
local missing = {}
local function need(...)
  local ok, allowed = pcall(redis.acl_check_cmd, ...)
  if ok and not allowed then missing[#missing + 1] = table.concat({...}, ' ') end
end
need('HMGET', KEYS[1], 'f') need('HSET', KEYS[1], 'f', 'v') need('HGET', KEYS[1], 'f')
need('PEXPIRE', KEYS[1], '1') need('PTTL', KEYS[1]) need('DEL', KEYS[1])
need('HMGET', KEYS[2], 'f') need('HSET', KEYS[2], 'f', 'v') need('HINCRBY', KEYS[2], 'f', '1')
need('HGET', KEYS[3], 'f') need('HMGET', KEYS[3], 'f') need('HSET', KEYS[3], 'f', 'v') need('HDEL', KEYS[3], 'f')
need('HGETALL', KEYS[3]) need('HSCAN', KEYS[3], '0')
need('GET', KEYS[4]) need('SET', KEYS[4], 'v') need('INCRBY', KEYS[4], '1') need('DEL', KEYS[4])
need('PUBLISH', ARGV[1], 'm') need('SUBSCRIBE', ARGV[1])
need('TIME') need('PING')
return missing
"#;

/// Run every check within the connect timeout plus one operation timeout.
pub(super) async fn run(store: &RedisStore) -> StoreResult<Deployment> {
    let cfg = &store.inner.config;
    let bound = cfg.connect_timeout.saturating_add(cfg.op_timeout.saturating_mul(3));
    match tokio::time::timeout(bound, checks(store)).await {
        Ok(r) => r,
        Err(_) => Err(StoreError::Unavailable {
            reason: format!("connect and deployment checks did not finish within {bound:?}"),
        }),
    }
}

async fn checks(store: &RedisStore) -> StoreResult<Deployment> {
    let cfg = &store.inner.config;
    let mut conn = store.conn();
    let url = cfg.redacted_url();
    match tokio::time::timeout(cfg.connect_timeout, redis::cmd("PING").query_async::<Value>(&mut conn)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return Err(connect_error(e, &url)),
        Err(_) => return Err(StoreError::Unavailable { reason: format!("connect to {url} timed out") }),
    }
    let info = |section: &'static str| {
        let mut conn = store.conn();
        async move { redis::cmd("INFO").arg(section).query_async::<String>(&mut conn).await }
    };
    let (version, policy) = match (info("server").await, info("memory").await) {
        (Ok(server), Ok(memory)) => (field(&server, "redis_version"), field(&memory, "maxmemory_policy")),
        (Err(e), _) | (_, Err(e)) if is_noperm(&e) && cfg.allow_evicting_policy => {
            // The lease and map scripts read `run_id` with INFO to see a restart (a quarantine,
            // a revision jump); without it one that rolled back goes unseen (docs/operations.md).
            tracing::warn!(
                target: "keel::store::redis",
                kind = "no_info",
                "user may not run INFO: keel cannot tell a store restart, so after one that rolls back the last writes (appendfsync everysec, a failover) a lease is not quarantined and a map may reuse revisions; grant +info"
            );
            ("unknown".into(), "unknown".into())
        }
        (Err(e), _) | (_, Err(e)) if is_noperm(&e) => {
            return Err(StoreError::Misconfigured {
                detail: format!(
                    "user may not run INFO, so maxmemory-policy cannot be checked ({e}): grant +info, or accept the risk with RedisConfig::allow_evicting_policy(true)"
                ),
            });
        }
        (Err(e), _) | (_, Err(e)) => return Err(connect_error(e, &url)),
    };
    if policy != SAFE_POLICY && policy != "unknown" && !cfg.allow_evicting_policy {
        return Err(StoreError::Misconfigured {
            detail: format!(
                "redis {version} at {url} has maxmemory-policy {policy:?}: it may evict lease holders, fence counters and job records, and refuses every script with OOM when full. Set `maxmemory-policy noeviction`, or accept the risk with RedisConfig::allow_evicting_policy(true)"
            ),
        });
    }
    let acl_checked = probe(store, &url).await?;
    if !acl_checked {
        tracing::info!(target: "keel::store::redis", version = %version, "ACL permissions not checked (redis.acl_check_cmd needs Redis 7)");
    }
    Ok(Deployment { version, maxmemory_policy: policy, acl_checked })
}

/// Run [`PROBE`]; true if the permissions were checked (and all present).
async fn probe(store: &RedisStore, url: &str) -> StoreResult<bool> {
    let probe = "__keel_connect_probe__";
    let script = Script::new(PROBE);
    let mut inv = script.prepare_invoke();
    inv.key(store.key("lease", probe))
        .key(store.key("lease-meta", probe))
        .key(store.key("map", probe))
        .key(store.key("map-rev", probe))
        .arg(store.channel(probe));
    let mut conn = store.conn();
    let reply = match tokio::time::timeout(store.inner.config.op_timeout, inv.invoke_async::<Vec<String>>(&mut conn))
        .await
    {
        Ok(Ok(v)) => v,
        Ok(Err(e)) if is_noperm(&e) => {
            return Err(StoreError::Misconfigured {
                detail: format!(
                    "the user of {url} may not run keel's scripts ({e}): grant +evalsha +eval +script|load, and access to keys `{}:*` and channels `{}:*`",
                    store.inner.config.prefix, store.inner.config.prefix
                ),
            });
        }
        Ok(Err(e)) => return Err(connect_error(e, url)),
        Err(_) => return Err(StoreError::Timeout { op: "connect: ACL check" }),
    };
    match reply.as_slice() {
        [old] if old == "old" => Ok(false),
        [] => Ok(true),
        missing => Err(StoreError::Misconfigured {
            detail: format!(
                "the user of {url} lacks permissions keel needs: {}. Grant them (e.g. `ACL SETUSER <user> +@hash +@string +@keyspace +@scripting +@pubsub +time +ping ~{}:* &{}:*`)",
                missing.join(", "),
                store.inner.config.prefix,
                store.inner.config.prefix
            ),
        }),
    }
}

fn is_noperm(e: &RedisError) -> bool {
    e.code() == Some("NOPERM") || e.to_string().contains("NOPERM")
}

/// Classify a failure of the connection itself: authentication and permissions are
/// deployment errors, the rest keeps the store's usual taxonomy.
fn connect_error(e: RedisError, url: &str) -> StoreError {
    let text = e.to_string();
    if e.kind() == ErrorKind::AuthenticationFailed
        || e.code() == Some("WRONGPASS")
        || e.code() == Some("NOAUTH")
        || text.contains("WRONGPASS")
        || text.contains("NOAUTH")
    {
        return StoreError::Misconfigured {
            detail: format!("authentication to {url} failed (bad password, or unknown or disabled user): {text}"),
        };
    }
    if is_noperm(&e) {
        return StoreError::Misconfigured {
            detail: format!("the user of {url} lacks a permission keel needs: {text}"),
        };
    }
    classify("connect", e, "")
}

/// The value of `name:` in an INFO reply (`unknown` if absent).
fn field(info: &str, name: &str) -> String {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map_or_else(|| "unknown".to_owned(), |v| v.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_fields_and_error_classes() {
        let info = "# Server\r\nredis_version:7.2.4\r\nredis_mode:standalone\r\n";
        assert_eq!(field(info, "redis_version"), "7.2.4");
        assert_eq!(field(info, "maxmemory_policy"), "unknown");
        let e = redis::make_extension_error("WRONGPASS".into(), Some("invalid username-password pair".into()));
        assert!(matches!(connect_error(e, "redis://x"), StoreError::Misconfigured { .. }));
        let e = redis::make_extension_error("NOPERM".into(), Some("User u has no permissions to run 'ping'".into()));
        assert!(matches!(connect_error(e, "redis://x"), StoreError::Misconfigured { .. }));
        let refused: RedisError = std::io::Error::from(std::io::ErrorKind::ConnectionRefused).into();
        assert!(matches!(connect_error(refused, "redis://x"), StoreError::Unavailable { .. }));
    }

    /// Every command keel's scripts and calls run is one the probe asks for, so a user who may
    /// not run one is refused at connect with its name, not met with `NOPERM` on every call of
    /// one operation for good (hunt 31 A #8: INCRBY left out of the probe; `map_scan`'s HSCAN
    /// was never in it). INFO is checked at connect on its own, TYPE only describes a key
    /// already found corrupt (its refusal is answered); the other capitals are an argument
    /// (COUNT) and error codes.
    #[test]
    fn the_probe_asks_for_every_command_keel_runs() {
        let sources = [include_str!("scripts.rs"), include_str!("../redis.rs"), include_str!("watch.rs")];
        let not_probed = ["INFO", "TYPE", "COUNT", "WRONGTYPE", "KEELCORRUPT", "OOM"];
        let mut used = std::collections::BTreeSet::new();
        for src in sources {
            // Every 'WORD' or "WORD" of three or more capitals.
            for (i, q) in src.char_indices().filter(|(_, c)| *c == '\'' || *c == '"') {
                let rest = &src[i + 1..];
                let word = &rest[..rest.find(|c: char| !c.is_ascii_uppercase()).unwrap_or(rest.len())];
                if word.len() >= 3 && rest[word.len()..].starts_with(q) && !not_probed.contains(&word) {
                    used.insert(word);
                }
            }
        }
        for cmd in ["HSCAN", "INCRBY", "HINCRBY", "PUBLISH", "TIME", "DEL"] {
            assert!(used.contains(cmd), "the scan found no {cmd}: {used:?}");
        }
        let missing: Vec<_> = used.iter().filter(|c| !PROBE.contains(&format!("need('{c}'"))).collect();
        assert!(missing.is_empty(), "commands keel runs that connect never asks for: {missing:?}");
    }
}
