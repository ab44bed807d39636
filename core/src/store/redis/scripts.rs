//! The Lua scripts behind every `RedisStore` operation.
//!
//! Each script is atomic, stamps with Redis `TIME`, and checks the type and encoding of every
//! key it touches *before* writing anything (without `TYPE`: see `PRELUDE`), so a corrupt key
//! fails the whole operation with a `KEELCORRUPT <role> <detail>` error and changes nothing.
//! Counters and revisions travel as decimal strings: Lua numbers are doubles and Redis would
//! print large ones in exponent form.
//! The semantics mirror `MemoryStore` exactly (the conformance suite checks it).

use redis::Script;

/// Shared helpers, prepended to every script.
///
/// No script runs `TYPE`: a key of the wrong type is found by the error of the first command that
/// touches it (`checked`), which fails before that command has any effect. Every script reads
/// (and so type-checks) each key before its first write, except a transaction without guards,
/// whose first command on the hash is its first hash write, ordered before any other write.
const PRELUDE: &str = r#"
local SEP = "\031"
local function fail(role, detail) error({err = 'KEELCORRUPT ' .. role .. ' ' .. detail}) end
local function digits(v) return type(v) == 'string' and string.match(v, '^%d+$') ~= nil and #v <= 18 end
local function int(n) return string.format('%d', n) end
local function now_ms(t) return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) end
-- time_ms * SEED_PER_MS (1000), built as a string so no precision is lost.
local function seed(t) return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000)) .. '000' end
-- Run a command on `key`; a WRONGTYPE error is the key's corruption (TYPE runs only then, to say
-- what it holds), any other error is passed on unchanged.
local function checked(key, role, want, ...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then
    if string.sub(r.err, 1, 9) == 'WRONGTYPE' then
      local ty = redis.pcall('TYPE', key)
      fail(role, 'holds a ' .. (type(ty) == 'table' and ty.ok or 'value of another type') .. ', expected a ' .. want)
    end
    error(r)
  end
  return r
end
"#;

/// Map scripts: KEYS[1] is the map's hash, KEYS[2] its revision counter, ARGV[1] its channel.
///
/// A commit of n writes takes the revisions REV+1..REV+n in order (one `INCRBY`) and publishes
/// one message: a single write in the original format `<rev> <key bytes> <s|d> <key><value>`
/// (which nodes of every version read), several in the versioned format
/// `v2 <first rev> <n>` then n × ` <key bytes> <value bytes|d> <key><value>`, which a node that
/// only knows the original format rejects as garbage (a watch gap, then a resync), never
/// misreads. Both are binary-safe without a JSON library; `decode::changes` reads both.
const MAP_PRELUDE: &str = r#"
local REV = checked(KEYS[2], 'rev', 'string', 'GET', KEYS[2]) or '0'
if not digits(REV) then fail('rev', 'revision is not a decimal number') end
local function hash(...) return checked(KEYS[1], 'map', 'hash', ...) end
local function hget(key) return hash('HGET', KEYS[1], key) end
-- Apply {key, value|false} writes, one revision each, all published in one message.
local function commit(writes)
  -- The hash writes come first: if the hash has the wrong type the first one fails, and nothing
  -- has changed yet (a transaction without guards has not read the hash).
  for _, w in ipairs(writes) do
    if w[2] then hash('HSET', KEYS[1], w[1], w[2]) else hash('HDEL', KEYS[1], w[1]) end
  end
  if REV == '0' then redis.call('SET', KEYS[2], seed(redis.call('TIME'))) end
  local last = redis.call('INCRBY', KEYS[2], #writes)
  local first = int(last - #writes + 1)
  local msg
  if #writes == 1 then
    local w = writes[1]
    msg = first .. ' ' .. #w[1] .. ' ' .. (w[2] and 's' or 'd') .. ' ' .. w[1] .. (w[2] or '')
  else
    local parts = {'v2', first, int(#writes)}
    for _, w in ipairs(writes) do
      parts[#parts + 1] = #w[1]
      parts[#parts + 1] = w[2] and #w[2] or 'd'
      parts[#parts + 1] = w[1] .. (w[2] or '')
    end
    msg = table.concat(parts, ' ')
  end
  redis.call('PUBLISH', ARGV[1], msg)
  return int(last)
end
"#;

/// KEYS: holder hash, meta hash. ARGV: token, ttl_ms, quarantine_ms.
/// Returns {'G', fence} | {'H', remaining_ms} | {'Q', remaining_ms}.
const LEASE_ACQUIRE: &str = r#"
local h = checked(KEYS[1], 'lease', 'hash', 'HMGET', KEYS[1], 'token', 'fence')
local meta = checked(KEYS[2], 'meta', 'hash', 'HMGET', KEYS[2], 'fence', 'q_until')
local t = redis.call('TIME')
local now = now_ms(t)
if h[1] and not digits(h[2]) then fail('lease', 'fence is not a decimal number') end
local q
if meta[1] then
  if not digits(meta[1]) then fail('meta', 'fence is not a decimal number') end
  if not digits(meta[2]) then fail('meta', 'q_until is not a decimal number') end
  q = tonumber(meta[2])
else
  -- Missing counter: first use or data loss. Seed from store time and quarantine.
  q = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[2], 'fence', seed(t), 'q_until', int(q))
end
if now < q then return {'Q', int(q - now)} end
if h[1] then
  if h[1] == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {'G', h[2]}
  end
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < 0 then fail('lease', 'has no TTL') end
  return {'H', int(pttl)}
end
local fence = int(redis.call('HINCRBY', KEYS[2], 'fence', 1))
redis.call('HSET', KEYS[1], 'token', ARGV[1], 'fence', fence)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {'G', fence}
"#;

/// KEYS: holder hash. ARGV: token, ttl_ms. Returns the fence, or nil when not the holder.
const LEASE_RENEW: &str = r#"
local h = checked(KEYS[1], 'lease', 'hash', 'HMGET', KEYS[1], 'token', 'fence')
if h[1] and not digits(h[2]) then fail('lease', 'fence is not a decimal number') end
if h[1] == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return h[2]
end
return false
"#;

/// KEYS: holder hash. ARGV: token. Compare-and-delete; returns 1 if deleted.
const LEASE_RELEASE: &str = r#"
if checked(KEYS[1], 'lease', 'hash', 'HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"#;

/// ARGV: channel, key. Returns {value|nil, rev}.
const MAP_GET: &str = r#"
return {hget(ARGV[2]), REV}
"#;

/// ARGV: channel. Returns {rev, {k1, v1, ...}}.
const MAP_SNAPSHOT: &str = r#"
return {REV, hash('HGETALL', KEYS[1])}
"#;

/// ARGV: channel, key, op, args... Returns {applied 0|1, rev, value|nil}.
const MAP_WRITE: &str = r#"
local key, op = ARGV[2], ARGV[3]
local cur = hget(key)
local apply, new = false, false
if op == 'set' then apply, new = true, ARGV[4]
elseif op == 'nx' then apply, new = (not cur), ARGV[4]
elseif op == 'cas' then apply, new = (cur == ARGV[4]), ARGV[5]
elseif op == 'cad' then apply = (cur == ARGV[4])
elseif op == 'del' then apply = (cur ~= false)
elseif op == 'app' then
  if #ARGV >= 4 then
    apply = true
    local items = table.concat(ARGV, SEP, 4)
    if cur and cur ~= '' then new = cur .. SEP .. items else new = items end
  end
elseif op == 'rem' then
  if cur then
    local drop = {}
    for i = 4, #ARGV do drop[ARGV[i]] = true end
    local kept, n, pos = {}, 0, 1
    while true do
      local s, e = string.find(cur, SEP, pos, true)
      local item = s and string.sub(cur, pos, s - 1) or string.sub(cur, pos)
      n = n + 1
      if not drop[item] then kept[#kept + 1] = item end
      if not s then break end
      pos = e + 1
    end
    if #kept ~= n then
      apply = true
      if #kept > 0 then new = table.concat(kept, SEP) end
    end
  end
else
  return redis.error_reply('ERR keel: unknown map op ' .. op)
end
if not apply then return {0, REV, cur} end
return {1, commit({{key, new}}), new}
"#;

/// ARGV: channel, guard count G, G × (key, 'a'|'v', value), then writes × (key, 's'|'d', value).
/// Returns {applied 0|1, rev}.
const MAP_TXN: &str = r#"
local ng = tonumber(ARGV[2])
local holds = true
for i = 0, ng - 1 do
  local cur = hget(ARGV[3 + 3 * i])
  if ARGV[4 + 3 * i] == 'a' then
    if cur then holds = false end
  elseif cur ~= ARGV[5 + 3 * i] then
    holds = false
  end
end
local writes = {}
for i = 3 + 3 * ng, #ARGV, 3 do
  writes[#writes + 1] = {ARGV[i], ARGV[i + 1] == 's' and ARGV[i + 2] or false}
end
if not holds or #writes == 0 then return {(holds and #writes == 0) and 1 or 0, REV} end
return {1, commit(writes)}
"#;

/// Every script, compiled once per store (the SHA1s are what EVALSHA sends).
pub(super) struct Scripts {
    pub lease_acquire: Script,
    pub lease_renew: Script,
    pub lease_release: Script,
    pub map_get: Script,
    pub map_snapshot: Script,
    pub map_write: Script,
    pub map_txn: Script,
}

/// The full Lua source of the lease acquire and renew scripts, for benchmarks that compare
/// keel with a bare EVALSHA loop of the very same scripts.
pub fn lease_sources() -> (String, String) {
    (format!("{PRELUDE}{LEASE_ACQUIRE}"), format!("{PRELUDE}{LEASE_RENEW}"))
}

impl Scripts {
    pub fn new() -> Self {
        let lease = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        let map = |body: &str| Script::new(&format!("{PRELUDE}{MAP_PRELUDE}{body}"));
        Scripts {
            lease_acquire: lease(LEASE_ACQUIRE),
            lease_renew: lease(LEASE_RENEW),
            lease_release: lease(LEASE_RELEASE),
            map_get: map(MAP_GET),
            map_snapshot: map(MAP_SNAPSHOT),
            map_write: map(MAP_WRITE),
            map_txn: map(MAP_TXN),
        }
    }
}
