//! Decoding of every reply and message `RedisStore` gets back, as pure functions of the RESP
//! value (fuzzed one target per record type, see `fuzz/`).
//!
//! The scripts validate what they read before returning it, so a well-formed deployment only
//! ever sends the shapes below; anything else (a foreign writer, a script of another version, a
//! proxy that mangles replies) is a [`StoreError::Corrupt`] naming the key, never a panic. No
//! decoder allocates more than its input's size.

/// The RESP value type the decoders take (re-exported for the fuzz targets).
pub use redis::Value;
/// Parse RESP bytes into a [`Value`] (re-exported for the fuzz targets).
pub use redis::parse_redis_value;

use crate::error::StoreError;
use crate::store::{Acquire, Change, MapSnapshot, Renew, StoreResult, TxnOutcome, WriteOutcome};

/// Largest store time accepted from `TIME`, in seconds (year 9999): far from any overflow of
/// `ms + ttl` while every TTL is at most a year.
pub const TIME_SECS_MAX: u64 = 253_402_300_799;

/// Longest piece of stored data quoted in an error's detail: a huge garbage value or key must not
/// make a huge error (or log line).
const QUOTE_MAX: usize = 200;

/// `text` cut to [`QUOTE_MAX`] bytes (on a char boundary), marked when cut.
fn short(mut text: String) -> String {
    if text.len() > QUOTE_MAX {
        let cut = (0..=QUOTE_MAX).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn bad(key: String, what: &str, v: &Value) -> StoreError {
    StoreError::corrupt(key, format!("unexpected {what}: {}", short(format!("{v:?}"))))
}

fn not_utf8(map: &str, key: &str) -> StoreError {
    StoreError::corrupt(
        format!("map:{map}"),
        format!("key {} holds a value that is not UTF-8", short(format!("{key:?}"))),
    )
}

fn string(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        _ => None,
    }
}

/// A counter or time as the scripts send it: a non-negative integer or its decimal string.
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) => u64::try_from(*i).ok(),
        Value::BulkString(b) if !b.is_empty() && b.len() <= 20 && b.iter().all(u8::is_ascii_digit) => {
            std::str::from_utf8(b).ok()?.parse().ok()
        }
        Value::SimpleString(s) if !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
}

fn opt_string(v: &Value) -> Option<Option<String>> {
    match v {
        Value::Nil => Some(None),
        other => string(other).map(Some),
    }
}

fn array(v: &Value) -> &[Value] {
    match v {
        Value::Array(a) => a,
        _ => &[],
    }
}

/// `TIME`: `[seconds, microseconds]` → store milliseconds.
pub fn time_ms(v: &Value) -> StoreResult<u64> {
    if let [s, us] = array(v)
        && let (Some(s), Some(us)) = (number(s), number(us))
        && s <= TIME_SECS_MAX
        && us < 1_000_000
    {
        return Ok(s * 1000 + us / 1000);
    }
    Err(bad("TIME".into(), "reply to TIME", v))
}

/// A lease grant (`lease_acquire`): `['G', fence] | ['H', remaining_ms] | ['Q', remaining_ms]`.
pub fn lease_grant(name: &str, v: &Value) -> StoreResult<Acquire> {
    if let [tag, n] = array(v)
        && let Some(n) = number(n)
    {
        match string(tag).as_deref() {
            Some("G") if n > 0 => return Ok(Acquire::Granted { fence: n }),
            Some("H") => return Ok(Acquire::Held { remaining_ms: n }),
            Some("Q") => return Ok(Acquire::Quarantined { remaining_ms: n }),
            _ => {}
        }
    }
    Err(bad(format!("lease:{name}"), "lease grant", v))
}

/// A lease's fence counter as returned by `lease_renew`: the fence, or nil when not the holder.
pub fn fence(name: &str, v: &Value) -> StoreResult<Renew> {
    match v {
        Value::Nil => Ok(Renew::NotHolder),
        other => match number(other) {
            Some(fence) if fence > 0 => Ok(Renew::Renewed { fence }),
            _ => Err(bad(format!("lease:{name}"), "fence", v)),
        },
    }
}

/// `lease_release`: 1 if released, 0 if not the holder.
pub fn released(name: &str, v: &Value) -> StoreResult<bool> {
    match number(v) {
        Some(0) => Ok(false),
        Some(1) => Ok(true),
        _ => Err(bad(format!("lease:{name}"), "reply to lease_release", v)),
    }
}

/// A map revision.
fn revision(map: &str, v: &Value) -> StoreResult<u64> {
    number(v).ok_or_else(|| bad(format!("map-rev:{map}"), "revision", v))
}

/// One map entry with the map's revision (`map_get`): `[value|nil, rev]`.
pub fn map_entry(map: &str, key: &str, v: &Value) -> StoreResult<(Option<String>, u64)> {
    let [value, rev] = array(v) else { return Err(bad(format!("map:{map}"), "map entry", v)) };
    let rev = revision(map, rev)?;
    let value = opt_string(value).ok_or_else(|| not_utf8(map, key))?;
    Ok((value, rev))
}

/// A whole map (`map_snapshot`): `[rev, [k1, v1, …]]`.
pub fn map_snapshot(map: &str, v: &Value) -> StoreResult<MapSnapshot> {
    let [rev, flat] = array(v) else { return Err(bad(format!("map:{map}"), "map snapshot", v)) };
    let rev = revision(map, rev)?;
    let flat = match flat {
        Value::Array(a) if a.len() % 2 == 0 => a,
        _ => return Err(bad(format!("map:{map}"), "map snapshot", v)),
    };
    let mut entries = std::collections::BTreeMap::new();
    for pair in flat.chunks_exact(2) {
        let Some(k) = string(&pair[0]) else {
            return Err(StoreError::corrupt(format!("map:{map}"), "a key is not UTF-8"));
        };
        let Some(val) = string(&pair[1]) else { return Err(not_utf8(map, &k)) };
        entries.insert(k, val);
    }
    Ok(MapSnapshot { rev, entries })
}

/// `map_write`: `[applied 0|1, rev, value|nil]`.
pub fn map_write(map: &str, key: &str, v: &Value) -> StoreResult<WriteOutcome> {
    let [applied, rev, value] = array(v) else { return Err(bad(format!("map:{map}"), "reply to map_write", v)) };
    let applied = match number(applied) {
        Some(a @ (0 | 1)) => a == 1,
        _ => return Err(bad(format!("map:{map}"), "reply to map_write", v)),
    };
    let rev = revision(map, rev)?;
    let value = opt_string(value).ok_or_else(|| not_utf8(map, key))?;
    Ok(WriteOutcome { applied, rev, value })
}

/// `map_txn`: `[applied 0|1, rev]`.
pub fn map_txn(map: &str, v: &Value) -> StoreResult<TxnOutcome> {
    if let [applied, rev] = array(v)
        && let Some(a @ (0 | 1)) = number(applied)
    {
        return Ok(TxnOutcome { applied: a == 1, rev: revision(map, rev)? });
    }
    Err(bad(format!("map:{map}"), "reply to map_txn", v))
}

/// A change message of a map's watch channel: `"<rev> <key bytes> <s|d> <key><value>"`.
pub fn change(map: &str, payload: &[u8]) -> StoreResult<Change> {
    let garbage = || StoreError::corrupt(format!("watch:{map}"), "unparsable change message");
    let text = std::str::from_utf8(payload).map_err(|_| garbage())?;
    let mut parts = text.splitn(4, ' ');
    let mut next = || parts.next().ok_or_else(garbage);
    let rev = next()?;
    let key_len = next()?;
    let flag = next()?;
    let rest = next()?;
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|c| c.is_ascii_digit());
    if !digits(rev) || !digits(key_len) {
        return Err(garbage());
    }
    let rev: u64 = rev.parse().map_err(|_| garbage())?;
    let key_len: usize = key_len.parse().map_err(|_| garbage())?;
    let key = rest.get(..key_len).filter(|k| !k.is_empty()).ok_or_else(garbage)?.to_owned();
    let value = match flag {
        "s" => Some(rest.get(key_len..).ok_or_else(garbage)?.to_owned()),
        "d" if rest.len() == key_len => None,
        _ => return Err(garbage()),
    };
    Ok(Change { key, value, rev })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn script_replies_decode() {
        assert_eq!(time_ms(&Value::Array(vec![bulk("1700000000"), bulk("123456")])), Ok(1_700_000_000_123));
        let g = Value::Array(vec![bulk("G"), bulk("42")]);
        assert_eq!(lease_grant("L", &g), Ok(Acquire::Granted { fence: 42 }));
        assert_eq!(fence("L", &Value::Nil), Ok(Renew::NotHolder));
        assert_eq!(fence("L", &bulk("7")), Ok(Renew::Renewed { fence: 7 }));
        let snap = Value::Array(vec![bulk("3"), Value::Array(vec![bulk("k"), bulk("v")])]);
        assert_eq!(map_snapshot("m", &snap).map(|s| (s.rev, s.entries.len())), Ok((3, 1)));
        let c = change("m", "17 3 s key with spaces".as_bytes());
        assert_eq!(c, Ok(Change { key: "key".into(), value: Some(" with spaces".into()), rev: 17 }));
        let c = change("m", "18 5 d k ü ".as_bytes()).map(|c| (c.key, c.value));
        assert_eq!(c, Ok(("k ü ".into(), None)), "key length counts bytes");
    }

    #[test]
    fn garbage_is_corrupt_naming_the_key() {
        fn key<T: std::fmt::Debug>(r: StoreResult<T>) -> String {
            match r {
                Err(StoreError::Corrupt { key, .. }) => key,
                other => panic!("expected Corrupt, got {other:?}"),
            }
        }
        // Overflows that used to be possible: a TIME of u64::MAX seconds (s * 1000).
        assert_eq!(key(time_ms(&Value::Array(vec![Value::Int(i64::MAX), Value::Int(0)]))), "TIME");
        assert_eq!(key(lease_grant("L", &Value::Array(vec![bulk("G"), bulk("-1")]))), "lease:L");
        assert_eq!(key(lease_grant("L", &Value::Array(vec![bulk("G"), bulk("0")]))), "lease:L");
        assert_eq!(key(fence("L", &bulk("1e9"))), "lease:L");
        assert_eq!(key(released("L", &Value::Int(2))), "lease:L");
        assert_eq!(key(map_entry("m", "k", &Value::Array(vec![Value::Nil, bulk("x")]))), "map-rev:m");
        let odd = Value::Array(vec![bulk("3"), Value::Array(vec![bulk("k")])]);
        assert_eq!(key(map_snapshot("m", &odd)), "map:m");
        let binary = Value::Array(vec![bulk("3"), Value::Array(vec![bulk("k"), Value::BulkString(vec![0xff])])]);
        assert_eq!(key(map_snapshot("m", &binary)), "map:m");
        assert_eq!(key(map_write("m", "k", &Value::Array(vec![Value::Int(5), bulk("1"), Value::Nil]))), "map:m");
        assert_eq!(key(map_txn("m", &Value::Okay)), "map:m");
        // Found by the map_entry fuzz target: a snapshot whose long key held a non-UTF-8 value
        // quoted the whole key in the error (535 bytes from a 350-byte reply).
        let long =
            Value::Array(vec![bulk("3"), Value::Array(vec![bulk(&"k".repeat(5000)), Value::BulkString(vec![0xff])])]);
        match map_snapshot("m", &long) {
            Err(StoreError::Corrupt { detail, .. }) => assert!(detail.len() < 300, "{} bytes", detail.len()),
            other => panic!("{other:?}"),
        }
        for garbage in
            [&b"18 9 d short"[..], b"x 1 s k", b"1 1 q k", &[0xff, 0x20], b"1 99999999999999999999999 s k", b"1 0 s x"]
        {
            assert_eq!(key(change("m", garbage)), "watch:m", "{garbage:?}");
        }
    }
}
