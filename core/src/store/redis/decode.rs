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
use std::collections::BTreeMap;

use crate::store::{
    Acquire, Change, MAP_RESEEDS_MAX, MapScan, MapSnapshot, Renew, Reseed, StoreResult, TxnOutcome, WriteOutcome,
};

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

/// A whole map (`map_snapshot`): `[rev, [k1, v1, …], reseeds, restarted 0|1]`.
pub fn map_snapshot(map: &str, v: &Value) -> StoreResult<MapSnapshot> {
    let [rev, flat, reseeds, restarted] = array(v) else { return Err(bad(format!("map:{map}"), "map snapshot", v)) };
    let rev = revision(map, rev)?;
    let entries = map_entries(map, flat, v, "map snapshot")?;
    let reseeds = string(reseeds).ok_or_else(|| bad(format!("map-reseeds:{map}"), "map snapshot", v))?;
    let restarted_since_commit = match restarted {
        Value::Int(0) => false,
        Value::Int(1) => true,
        _ => return Err(bad(format!("map:{map}"), "map snapshot", v)),
    };
    Ok(MapSnapshot { rev, entries, reseeds: map_reseeds(map, &reseeds)?, restarted_since_commit })
}

/// The flat `[k1, v1, …]` of a map's hash.
fn map_entries(map: &str, flat: &Value, v: &Value, what: &str) -> StoreResult<BTreeMap<String, String>> {
    let flat = match flat {
        Value::Array(a) if a.len() % 2 == 0 => a,
        _ => return Err(bad(format!("map:{map}"), what, v)),
    };
    let mut entries = BTreeMap::new();
    for pair in flat.chunks_exact(2) {
        let Some(k) = string(&pair[0]) else {
            return Err(StoreError::corrupt(format!("map:{map}"), "a key is not UTF-8"));
        };
        let Some(val) = string(&pair[1]) else { return Err(not_utf8(map, &k)) };
        entries.insert(k, val);
    }
    Ok(entries)
}

/// A map's seedings as its scripts store them: `<kept>:<seed>` items, space-separated, each
/// seed above what it kept; at most [`MAP_RESEEDS_MAX`].
pub fn map_reseeds(map: &str, text: &str) -> StoreResult<Vec<Reseed>> {
    let corrupt = || StoreError::corrupt(format!("map-reseeds:{map}"), "not a list of <kept>:<seed> revisions");
    let parse = |item: &str| {
        let (kept, seed) = item.split_once(':')?;
        let digits = |n: &str| n.bytes().all(|b| b.is_ascii_digit()).then(|| n.parse::<u64>().ok()).flatten();
        let r = Reseed { kept: digits(kept)?, seed: digits(seed)? };
        (r.kept < r.seed).then_some(r)
    };
    let reseeds: Vec<Reseed> =
        text.split(' ').filter(|i| !i.is_empty()).map(parse).collect::<Option<_>>().ok_or_else(corrupt)?;
    if reseeds.len() > MAP_RESEEDS_MAX {
        return Err(corrupt());
    }
    Ok(reseeds)
}

/// One slice of a map (`map_scan`): `[rev, next cursor, [k1, v1, …]]`. The cursor must be a
/// decimal number, as every cursor HSCAN hands out is.
pub fn map_scan(map: &str, v: &Value) -> StoreResult<MapScan> {
    let [rev, next, flat] = array(v) else { return Err(bad(format!("map:{map}"), "map scan", v)) };
    let rev = revision(map, rev)?;
    let entries = map_entries(map, flat, v, "map scan")?;
    let next = string(next)
        .filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| bad(format!("map:{map}"), "map scan cursor", v))?;
    Ok(MapScan { rev, entries, next })
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

/// `map_txns` of `n` transactions: `n × [applied 0|1, rev]`, flat.
pub fn map_txns(map: &str, n: usize, v: &Value) -> StoreResult<Vec<TxnOutcome>> {
    let garbage = || bad(format!("map:{map}"), "reply to map_txns", v);
    let flat = array(v);
    if flat.len() != 2 * n {
        return Err(garbage());
    }
    flat.chunks_exact(2)
        .map(|pair| match number(&pair[0]) {
            Some(a @ (0 | 1)) => Ok(TxnOutcome { applied: a == 1, rev: revision(map, &pair[1])? }),
            _ => Err(garbage()),
        })
        .collect()
}

/// Prefix of a message carrying several changes (see [`changes`]); a decoder that only knows the
/// single-change format reads its first word as a revision, fails, and reports a gap.
const MULTI_TAG: &[u8] = b"v2 ";

/// The changes of one message of a map's watch channel, in revision order. Two formats:
/// - one change: `<rev> <key bytes> <s|d> <key><value>`;
/// - several (one transaction): `v2 <first rev> <n>` then n × ` <key bytes> <value bytes|d>
///   <key><value>`, the i-th change (from 0) at revision `first rev + i`.
///
/// Lengths count bytes, so keys and values may hold any character, spaces included. Anything
/// else is [`StoreError::Corrupt`] naming `watch:<map>`; the result never holds more changes than
/// the message has bytes.
pub fn changes(map: &str, payload: &[u8]) -> StoreResult<Vec<Change>> {
    let garbage = || StoreError::corrupt(format!("watch:{map}"), "unparsable change message");
    match payload.strip_prefix(MULTI_TAG) {
        Some(rest) => multi(rest).ok_or_else(garbage),
        None => single(payload).map(|c| vec![c]).ok_or_else(garbage),
    }
}

/// A decimal field: 1 to 20 ASCII digits that fit a u64.
fn decimal(word: &[u8]) -> Option<u64> {
    if word.is_empty() || word.len() > 20 || !word.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(word).ok()?.parse().ok()
}

fn text(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

/// Reads a message front to back: space-separated words, and fields of a given byte length.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// The bytes up to the next space, which is consumed.
    fn word(&mut self) -> Option<&'a [u8]> {
        let at = self.rest.iter().position(|&b| b == b' ')?;
        let (word, rest) = self.rest.split_at(at);
        self.rest = &rest[1..];
        Some(word)
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.rest.len() {
            return None;
        }
        let (field, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(field)
    }

    fn space(&mut self) -> Option<()> {
        self.take(1).filter(|s| s == b" ").map(|_| ())
    }
}

/// `<rev> <key bytes> <s|d> <key><value>`: the value runs to the end of the message.
fn single(payload: &[u8]) -> Option<Change> {
    let mut c = Cursor { rest: payload };
    let rev = decimal(c.word()?)?;
    let key_len = usize::try_from(decimal(c.word()?)?).ok()?;
    let flag = c.word()?;
    let key = c.take(key_len).filter(|k| !k.is_empty())?;
    let value = match flag {
        b"s" => Some(text(c.rest)?),
        b"d" if c.rest.is_empty() => None,
        _ => return None,
    };
    Some(Change { key: text(key)?, value, rev })
}

/// `<first rev> <n>` then n × ` <key bytes> <value bytes|d> <key><value>`, nothing after.
fn multi(rest: &[u8]) -> Option<Vec<Change>> {
    let mut c = Cursor { rest };
    let first = decimal(c.word()?)?;
    let n = decimal(c.word()?)?;
    if n == 0 {
        return None;
    }
    // Not preallocated from `n`: each change consumes at least five bytes of the message, so a
    // lying count runs out of bytes, not memory.
    let mut out = Vec::new();
    for i in 0..n {
        if i > 0 {
            c.space()?;
        }
        let key_len = usize::try_from(decimal(c.word()?)?).ok()?;
        let value_len = match c.word()? {
            b"d" => None,
            len => Some(usize::try_from(decimal(len)?).ok()?),
        };
        let key = c.take(key_len).filter(|k| !k.is_empty())?;
        let value = match value_len {
            Some(len) => Some(text(c.take(len)?)?),
            None => None,
        };
        out.push(Change { key: text(key)?, value, rev: first.checked_add(i)? });
    }
    c.rest.is_empty().then_some(out)
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
        let snap = Value::Array(vec![bulk("3"), Value::Array(vec![bulk("k"), bulk("v")]), bulk("0:2"), Value::Int(0)]);
        assert_eq!(map_snapshot("m", &snap).map(|s| (s.rev, s.entries.len())), Ok((3, 1)));
        assert_eq!(map_snapshot("m", &snap).map(|s| s.reseeds), Ok(vec![Reseed { kept: 0, seed: 2 }]));
        assert_eq!(map_snapshot("m", &snap).map(|s| s.restarted_since_commit), Ok(false));
        let restarted = Value::Array(vec![bulk("3"), Value::Array(vec![]), bulk("0:2"), Value::Int(1)]);
        assert_eq!(map_snapshot("m", &restarted).map(|s| s.restarted_since_commit), Ok(true));
        let c = changes("m", "17 3 s key with spaces".as_bytes());
        assert_eq!(c, Ok(vec![Change { key: "key".into(), value: Some(" with spaces".into()), rev: 17 }]));
        let c = changes("m", "18 5 d k ü ".as_bytes()).map(|c| (c[0].key.clone(), c[0].value.clone()));
        assert_eq!(c, Ok(("k ü ".into(), None)), "key length counts bytes");
    }

    fn set(key: &str, value: &str, rev: u64) -> Change {
        Change { key: key.into(), value: Some(value.into()), rev }
    }

    #[test]
    fn a_transaction_message_decodes_to_its_changes_in_order() {
        // What the map scripts publish for {j/1 = "a b", p/1 deleted, d/ü = ""} at revisions 41..43.
        let msg = "v2 41 3 3 3 j/1a b 3 d p/1 4 0 d/ü";
        let want = vec![set("j/1", "a b", 41), Change { key: "p/1".into(), value: None, rev: 42 }, set("d/ü", "", 43)];
        assert_eq!(changes("m", msg.as_bytes()), Ok(want));
        // Values holding the separator, digits and the tag itself are just bytes.
        let msg = "v2 7 2 1 6 kv2 1 1 1 7 k1 1 1 1";
        assert_eq!(changes("m", msg.as_bytes()), Ok(vec![set("k", "v2 1 1", 7), set("k", "1 1 1 1", 8)]));
        // A single-change message in the multi format is read the same way.
        assert_eq!(changes("m", b"v2 5 1 1 d k"), Ok(vec![Change { key: "k".into(), value: None, rev: 5 }]));
    }

    #[test]
    fn a_transaction_message_is_not_a_single_change() {
        // The format an older node reads: its first word must be a revision, and "v2" is not.
        let msg = b"v2 41 2 1 1 a1 1 d b";
        assert!(single(msg).is_none(), "an old decoder would misread a multi-change message");
        assert_eq!(changes("m", msg).map(|c| c.len()), Ok(2));
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
        let odd = Value::Array(vec![bulk("3"), Value::Array(vec![bulk("k")]), bulk(""), Value::Int(0)]);
        assert_eq!(key(map_snapshot("m", &odd)), "map:m");
        let binary = Value::Array(vec![
            bulk("3"),
            Value::Array(vec![bulk("k"), Value::BulkString(vec![0xff])]),
            bulk(""),
            Value::Int(0),
        ]);
        let no_reseeds = Value::Array(vec![bulk("3"), Value::Array(vec![])]);
        assert_eq!(key(map_snapshot("m", &no_reseeds)), "map:m");
        for flag in [Value::Int(2), Value::Int(-1), bulk("1"), Value::Nil] {
            let snap = Value::Array(vec![bulk("3"), Value::Array(vec![]), bulk(""), flag]);
            assert_eq!(key(map_snapshot("m", &snap)), "map:m", "{snap:?}");
        }
        let no_flag = Value::Array(vec![bulk("3"), Value::Array(vec![]), bulk("")]);
        assert_eq!(key(map_snapshot("m", &no_flag)), "map:m");
        for garbage in [
            "x",
            "1",
            "1:",
            ":2",
            "2:1",
            "1:1",
            "-1:2",
            "1:2:3",
            "1:99999999999999999999",
            "0:1 0:2 0:3 0:4 0:5 0:6 0:7 0:8 0:9",
        ] {
            let snap = Value::Array(vec![bulk("3"), Value::Array(vec![]), bulk(garbage), Value::Int(0)]);
            assert_eq!(key(map_snapshot("m", &snap)), "map-reseeds:m", "{garbage:?}");
        }
        let snap = Value::Array(vec![bulk("3"), Value::Array(vec![]), bulk("0:2 2:9"), Value::Int(0)]);
        assert_eq!(map_snapshot("m", &snap).map(|s| s.reseeds.len()), Ok(2));
        assert_eq!(key(map_snapshot("m", &binary)), "map:m");
        assert_eq!(key(map_write("m", "k", &Value::Array(vec![Value::Int(5), bulk("1"), Value::Nil]))), "map:m");
        assert_eq!(key(map_txns("m", 1, &Value::Okay)), "map:m");
        assert_eq!(key(map_txns("m", 2, &Value::Array(vec![Value::Int(1), bulk("5")]))), "map:m", "too short");
        // Found by the map_entry fuzz target: a snapshot whose long key held a non-UTF-8 value
        // quoted the whole key in the error (535 bytes from a 350-byte reply).
        let long = Value::Array(vec![
            bulk("3"),
            Value::Array(vec![bulk(&"k".repeat(5000)), Value::BulkString(vec![0xff])]),
            bulk(""),
            Value::Int(0),
        ]);
        match map_snapshot("m", &long) {
            Err(StoreError::Corrupt { detail, .. }) => assert!(detail.len() < 300, "{} bytes", detail.len()),
            other => panic!("{other:?}"),
        }
        for garbage in
            [&b"18 9 d short"[..], b"x 1 s k", b"1 1 q k", &[0xff, 0x20], b"1 99999999999999999999999 s k", b"1 0 s x"]
        {
            assert_eq!(key(changes("m", garbage)), "watch:m", "{garbage:?}");
        }
        // Multi-change messages: a count of zero, more or fewer changes than announced, a length
        // past the end, trailing bytes, a revision overflow, a missing separator, an empty key,
        // a value or key that is not UTF-8, a huge count in a tiny message.
        for garbage in [
            &b"v2 1 0"[..],
            b"v2 1 2 1 1 ab",
            b"v2 1 1 1 1 ab 1 d c",
            b"v2 1 1 1 9 ab",
            b"v2 1 1 1 1 abx",
            b"v2 18446744073709551615 2 1 d a 1 d b",
            b"v2 1 2 1 d a1 d b",
            b"v2 1 1 0 1 a",
            b"v2 1 1 1 1 a\xff",
            b"v2 1 1 1 d \xff",
            b"v2 1 18446744073709551615 1 d a",
            b"v2 1 1 1 -1 ab",
            b"v2 1 1 1 x ab",
            b"v2 ",
            b"v2",
        ] {
            assert_eq!(key(changes("m", garbage)), "watch:m", "{garbage:?}");
        }
    }

    /// Hunt 49 B (cargo-mutants over decode.rs, judged by these tests and the real-Redis lanes):
    /// each bound below could be moved or dropped with no test failing.
    #[test]
    fn every_bound_of_the_decoders_is_where_its_format_says() {
        fn corrupt<T: std::fmt::Debug>(r: StoreResult<T>) -> bool {
            matches!(r, Err(StoreError::Corrupt { .. }))
        }
        // A number is a non-negative integer or 1 to 20 decimal digits, as a bulk or a simple
        // string: no sign (Rust's `parse` takes a leading `+`), nothing longer.
        assert_eq!(fence("L", &Value::SimpleString("7".into())), Ok(Renew::Renewed { fence: 7 }));
        assert_eq!(fence("L", &Value::Int(7)), Ok(Renew::Renewed { fence: 7 }));
        for garbage in [bulk("+7"), Value::SimpleString("+7".into()), Value::SimpleString("".into())] {
            assert!(corrupt(fence("L", &garbage)), "{garbage:?}");
        }
        let padded = format!("{:0>21}", 7);
        assert!(corrupt(fence("L", &bulk(&padded))), "21 digits");
        assert!(corrupt(fence("L", &Value::SimpleString(padded.clone()))), "21 digits");
        // A fence is never 0.
        assert!(corrupt(fence("L", &Value::Int(0))));
        // TIME's microseconds are below a second.
        assert_eq!(time_ms(&Value::Array(vec![bulk("1"), bulk("999999")])), Ok(1999));
        assert!(corrupt(time_ms(&Value::Array(vec![bulk("1"), bulk("1000000")]))));
        // A string field may come as a simple string or an integer (a proxy, RESP3).
        let scan = |cursor: Value| map_scan("m", &Value::Array(vec![bulk("3"), cursor, Value::Array(vec![])]));
        assert_eq!(scan(Value::SimpleString("12".into())).map(|s| s.next), Ok("12".into()));
        assert_eq!(scan(Value::Int(12)).map(|s| s.next), Ok("12".into()));
        // The scan's cursor is a decimal number.
        for cursor in ["x", "1x", ""] {
            assert!(corrupt(scan(bulk(cursor))), "{cursor:?}");
        }
        // As many seedings as the store keeps are accepted.
        let full = (1..=MAP_RESEEDS_MAX as u64).map(|i| format!("{}:{}", 2 * i, 2 * i + 1)).collect::<Vec<_>>();
        let snap = Value::Array(vec![bulk("3"), Value::Array(vec![]), bulk(&full.join(" ")), Value::Int(0)]);
        assert_eq!(map_snapshot("m", &snap).map(|s| s.reseeds.len()), Ok(MAP_RESEEDS_MAX));
        // A change's fields: a revision of 20 digits is one, of 21 (zero-padded) is not; a
        // deletion ends with its key.
        let max = format!("{} 1 s k", u64::MAX);
        assert_eq!(changes("m", max.as_bytes()).map(|c| c[0].rev), Ok(u64::MAX));
        assert!(corrupt(changes("m", format!("{padded} 1 s k").as_bytes())));
        assert!(corrupt(changes("m", b"5 1 d kx")), "bytes after a deleted key");
        assert!(corrupt(changes("m", b"v2 5 1 1 d kx")), "bytes after a deleted key");
        // Stored data quoted in an error is cut past QUOTE_MAX bytes, and only then marked cut.
        let at_most = "a".repeat(QUOTE_MAX);
        assert_eq!(short(at_most.clone()), at_most);
        assert_eq!(short("a".repeat(QUOTE_MAX + 1)), format!("{at_most}…"));
    }
}
