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
-- Raise the error reply `r` of a command on `key`: a WRONGTYPE error is the key's corruption
-- (TYPE runs only then, to say what it holds), any other error is passed on unchanged.
local function raise(r, key, role, want)
  if string.sub(r.err, 1, 9) == 'WRONGTYPE' then
    local ty = redis.pcall('TYPE', key)
    fail(role, 'holds a ' .. (type(ty) == 'table' and ty.ok or 'value of another type') .. ', expected a ' .. want)
  end
  error(r)
end
-- This server process's `run_id`: a restart (clean, crash or failover) gets another one, and a
-- restart may have rolled the data back (AOF everysec, a lagging replica). A user without INFO
-- gets '' every time: no restart is seen (RedisStore::connect warns of it).
local function server_boot()
  local info = redis.pcall('INFO', 'server')
  return type(info) == 'string' and string.match(info, 'run_id:(%x+)') or ''
end
-- Run a command on `key`, raising its error as `raise` does.
local function checked(key, role, want, ...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then raise(r, key, role, want) end
  return r
end
"#;

/// Map scripts: KEYS[1] is the map's hash, KEYS[2] its revision counter, KEYS[3] the `run_id`
/// of the server process the counter was last judged under, KEYS[4] the counter's last seedings
/// (`MapSnapshot::reseeds`: `<kept>:<seed>` items, oldest first, space-separated), ARGV[1] the
/// map's channel.
///
/// A commit of n changes takes the revisions REV+1..REV+n in order with one `INCRBY`, whose reply
/// is the revision (no `GET` first: the counter is read only when a reply needs the revision and
/// nothing was committed). It writes the hash's final state with at most one `HSET` (every key
/// whose last change sets it) and one `HDEL` (every key whose last change deletes it), which is
/// what applying the changes one by one leaves, whatever keys repeat. It publishes one message: a
/// single change in the original format `<rev> <key bytes> <s|d> <key><value>` (which nodes of
/// every version read), several in the versioned format `v2 <first rev> <n>` then
/// n × ` <key bytes> <value bytes|d> <key><value>`, which a node that only knows the original
/// format rejects as garbage (a watch gap, then a resync), never misreads. Both are binary-safe
/// without a JSON library; `decode::changes` reads both.
const MAP_PRELUDE: &str = r#"
local function hash(...) return checked(KEYS[1], 'map', 'hash', ...) end
local function hget(key) return hash('HGET', KEYS[1], key) end
-- Most arguments of one multi-key hash command: Lua's unpack is bounded by its C stack (8000).
local ARGS_MAX = 1000
-- `cmd` on the hash over `args` (an even count per call), in calls of at most ARGS_MAX arguments;
-- the replies' arrays concatenated. On an error reply, a commit's revision bump is undone first
-- (`prev`, `n`: see `commit`).
local function hash_multi(cmd, args, prev, n)
  local out = {}
  for i = 1, #args, ARGS_MAX do
    local r = redis.pcall(cmd, KEYS[1], unpack(args, i, math.min(i + ARGS_MAX - 1, #args)))
    if type(r) == 'table' and r.err then
      if prev == 0 then redis.call('DEL', KEYS[2]) elseif prev then redis.call('INCRBY', KEYS[2], -n) end
      raise(r, KEYS[1], 'map', 'hash')
    end
    if type(r) == 'table' then for j = 1, #r do out[#out + 1] = r[j] end end
  end
  return out
end
-- The map's revision as a decimal string ('0' if never written), read with GET.
local function rev()
  local r = checked(KEYS[2], 'rev', 'string', 'GET', KEYS[2]) or '0'
  if not digits(r) then fail('rev', 'revision is not a decimal number') end
  return r
end
-- Bump the revision counter by n; returns the revision before (0 if it was never written).
-- A counter holding garbage fails with nothing changed: INCRBY refuses a non-integer or a wrong
-- type without effect, and an integer out of range is put back exactly before failing.
local function bump(n)
  local last = redis.pcall('INCRBY', KEYS[2], n)
  if type(last) == 'table' and last.err then
    if string.sub(last.err, 1, 9) == 'WRONGTYPE' then raise(last, KEYS[2], 'rev', 'string') end
    if string.find(last.err, 'not an integer', 1, true) or string.find(last.err, 'overflow', 1, true) then
      fail('rev', 'revision is not a decimal number')
    end
    error(last)
  end
  local prev = last - n
  if prev < 0 or prev >= 1e18 then
    redis.call('INCRBY', KEYS[2], -n)
    fail('rev', 'revision is not a decimal number')
  end
  return prev
end
-- Apply the changes `ch` = {key1, value1|false, key2, …} (flat: no table per change), one
-- revision each in order, all published in one message. Returns the first change's revision (a
-- number) and the revision before ('0' if the counter was seeded).
local function commit(ch)
  local n = #ch / 2
  -- The counter's process, read (and type-checked) before any write: after a restart the
  -- revisions start again from store time, above every one a roll-back lost (below).
  local boot = server_boot()
  local restarted = boot ~= '' and checked(KEYS[3], 'boot', 'string', 'GET', KEYS[3]) ~= boot
  -- The seedings, read (and type-checked) only when a restart may add one.
  local reseeds = restarted and (checked(KEYS[4], 'reseeds', 'string', 'GET', KEYS[4]) or '')
  local prev = bump(n)
  local before = prev == 0 and '0' or int(prev)
  -- The hash's final state: each key as its last change leaves it.
  local sets, dels = {}, {}
  if n == 1 then
    if ch[2] then sets[1], sets[2] = ch[1], ch[2] else dels[1] = ch[1] end
  else
    local last = {}
    for i = 1, #ch, 2 do last[ch[i]] = i end
    for i = 1, #ch, 2 do
      if last[ch[i]] == i then
        if ch[i + 1] then sets[#sets + 1] = ch[i]; sets[#sets + 1] = ch[i + 1] else dels[#dels + 1] = ch[i] end
      end
    end
  end
  -- A transaction without guards has not read the hash: if it has the wrong type the first hash
  -- write fails without effect, and the counter is put back (deleted if it was missing), so the
  -- failed commit changed nothing and published nothing.
  if #sets > 0 then hash_multi('HSET', sets, prev, n) end
  if #dels > 0 then hash_multi('HDEL', dels, prev, n) end
  if prev == 0 then
    -- First commit (or Redis lost its data): seed from store time, then take n revisions. Every
    -- revision up to the seed is lost history, so the older seedings say nothing more.
    prev = tonumber(seed(redis.call('TIME')))
    redis.call('SET', KEYS[2], int(prev + n))
    redis.call('SET', KEYS[4], '0:' .. int(prev))
  elseif restarted then
    -- Restarted since the counter was judged: the jump is a gap to every replica (it resyncs).
    local s = tonumber(seed(redis.call('TIME')))
    if s > prev then
      local items = {}
      for item in string.gmatch(reseeds, '%S+') do items[#items + 1] = item end
      items[#items + 1] = int(prev) .. ':' .. int(s)
      local from = math.max(1, #items - MAP_RESEEDS_MAX + 1)
      redis.call('SET', KEYS[4], table.concat(items, ' ', from))
      prev = s
      redis.call('SET', KEYS[2], int(prev + n))
    end
  end
  if restarted then redis.call('SET', KEYS[3], boot) end
  local first = prev + 1
  local msg
  if n == 1 then
    msg = int(first) .. ' ' .. #ch[1] .. ' ' .. (ch[2] and 's' or 'd') .. ' ' .. ch[1] .. (ch[2] or '')
  else
    local parts = {'v2', int(first), int(n)}
    for i = 1, #ch, 2 do
      local k, v = ch[i], ch[i + 1]
      parts[#parts + 1] = #k
      parts[#parts + 1] = v and #v or 'd'
      parts[#parts + 1] = k .. (v or '')
    end
    msg = table.concat(parts, ' ')
  end
  redis.call('PUBLISH', ARGV[1], msg)
  return first, before
end
"#;

/// KEYS: holder hash, meta hash. ARGV: token, ttl_ms, quarantine_ms.
/// Returns {'G', fence} | {'H', remaining_ms} | {'Q', remaining_ms}.
const LEASE_ACQUIRE: &str = r#"
local h = checked(KEYS[1], 'lease', 'hash', 'HMGET', KEYS[1], 'token', 'fence')
local meta = checked(KEYS[2], 'meta', 'hash', 'HMGET', KEYS[2], 'fence', 'q_until', 'boot')
local t = redis.call('TIME')
local now = now_ms(t)
local boot = server_boot()
if h[1] and not digits(h[2]) then fail('lease', 'fence is not a decimal number') end
local q
if meta[1] then
  if not digits(meta[1]) then fail('meta', 'fence is not a decimal number') end
  if not digits(meta[2]) then fail('meta', 'q_until is not a decimal number') end
  q = tonumber(meta[2])
  if meta[3] ~= boot then
    -- Restarted since the counter was judged: the data may be rolled back (AOF everysec, an
    -- RDB file, a lagging replica) with the last grants, whose holders may still believe.
    -- Quarantine as after a loss, and fences from store time again, above every lost one.
    q = math.max(q, now + tonumber(ARGV[3]))
    local f, s = meta[1], seed(t)
    if #s > #f or (#s == #f and s > f) then f = s end
    redis.call('HSET', KEYS[2], 'fence', f, 'q_until', int(q), 'boot', boot)
  end
else
  -- Missing counter: first use or data loss. Seed from store time and quarantine.
  q = now + tonumber(ARGV[3])
  redis.call('HSET', KEYS[2], 'fence', seed(t), 'q_until', int(q), 'boot', boot)
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
local r = rev()
return {hget(ARGV[2]), r}
"#;

/// ARGV: channel. Returns {rev, {k1, v1, ...}, reseeds, restarted since the last commit 0|1}.
const MAP_SNAPSHOT: &str = r#"
local r = rev()
local reseeds = checked(KEYS[4], 'reseeds', 'string', 'GET', KEYS[4]) or ''
-- The counter not judged by this server process yet (a commit judges it, `commit`): the next
-- commit may re-seed, and a feed opened before the restart may hold changes it lost.
local boot = server_boot()
local restarted = r ~= '0' and boot ~= '' and checked(KEYS[3], 'boot', 'string', 'GET', KEYS[3]) ~= boot
return {r, hash('HGETALL', KEYS[1]), reseeds, restarted and 1 or 0}
"#;

/// ARGV: channel, cursor, count. Returns {rev, next cursor, {k1, v1, ...}}: one HSCAN step and
/// the revision read in the same atomic script, so every entry held its value at that revision.
const MAP_SCAN: &str = r#"
local r = rev()
local s = hash('HSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
return {r, s[1], s[2]}
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
if not apply then return {0, rev(), cur} end
local first = commit({key, new})
return {1, int(first), new}
"#;

/// ARGV: channel, transaction count T, then per transaction: guard count G, write count W,
/// G × (key, 'a'|'v', value), W × (key, 's'|'d', value). Returns T × (applied 0|1, rev).
///
/// The transactions are judged in order, each against the map as the ones before it left it:
/// every guard's key is read with one `HMGET` before any write, and in a batch of several the
/// applied writes are kept in a Lua table that later guards read first. All applied writes are
/// then one commit (one `INCRBY`, at most one `HSET` and one `HDEL`, one `PUBLISH`); a
/// transaction's revision is its last change's, or for one that changed nothing the map's
/// revision when it was judged (the counter is read with `GET` only when nothing was committed).
const MAP_TXNS: &str = r#"
local A = ARGV -- a local: every global read is a table lookup
local nt = tonumber(A[2])
-- Two passes over ARGV (no table per transaction): every guard's key, in order, for one HMGET;
-- then judge each transaction, its g-th guard read from the g-th value unless a transaction
-- before it in the batch wrote that key (`cur`).
local keys, at = {}, 3
for _ = 1, nt do
  local ng, nw = tonumber(A[at]), tonumber(A[at + 1])
  for i = at + 2, at + 3 * ng - 1, 3 do keys[#keys + 1] = A[i] end
  at = at + 2 + 3 * (ng + nw)
end
local vals = #keys > 0 and hash_multi('HMGET', keys) or keys
local cur, ch, out, g = {}, {}, {}, 0
at = 3
for t = 1, nt do
  local ng, nw = tonumber(A[at]), tonumber(A[at + 1])
  at = at + 2
  local holds = true
  for i = at, at + 3 * ng - 1, 3 do
    g = g + 1
    local v = cur[A[i]]
    if v == nil then v = vals[g] end
    if A[i + 1] == 'a' then
      if v then holds = false end
    elseif v ~= A[i + 2] then
      holds = false
    end
  end
  at = at + 3 * ng
  if holds then
    for i = at, at + 3 * nw - 1, 3 do
      local k, v = A[i], A[i + 1] == 's' and A[i + 2]
      ch[#ch + 1] = k
      ch[#ch + 1] = v
      if nt > 1 then cur[k] = v end
    end
  end
  at = at + 3 * nw
  out[2 * t - 1] = holds and 1 or 0
  out[2 * t] = #ch / 2 -- changes committed up to this transaction; its revision below
end
local first, before = 0, nil
if #ch > 0 then first, before = commit(ch) else before = rev() end
for t = 2, 2 * nt, 2 do
  out[t] = out[t] == 0 and before or int(first + out[t] - 1)
end
return out
"#;

/// Every script, compiled once per store (the SHA1s are what EVALSHA sends).
pub(super) struct Scripts {
    pub lease_acquire: Script,
    pub lease_renew: Script,
    pub lease_release: Script,
    pub map_get: Script,
    pub map_snapshot: Script,
    pub map_scan: Script,
    pub map_write: Script,
    pub map_txns: Script,
}

/// The full Lua source of the lease acquire and renew scripts, for benchmarks that compare
/// keel with a bare EVALSHA loop of the very same scripts.
pub fn lease_sources() -> (String, String) {
    (format!("{PRELUDE}{LEASE_ACQUIRE}"), format!("{PRELUDE}{LEASE_RENEW}"))
}

impl Scripts {
    pub fn new() -> Self {
        let lease = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
        let map = |body: &str| {
            let max = crate::store::MAP_RESEEDS_MAX;
            Script::new(&format!("{PRELUDE}local MAP_RESEEDS_MAX = {max}\n{MAP_PRELUDE}{body}"))
        };
        Scripts {
            lease_acquire: lease(LEASE_ACQUIRE),
            lease_renew: lease(LEASE_RENEW),
            lease_release: lease(LEASE_RELEASE),
            map_get: map(MAP_GET),
            map_snapshot: map(MAP_SNAPSHOT),
            map_scan: map(MAP_SCAN),
            map_write: map(MAP_WRITE),
            map_txns: map(MAP_TXNS),
        }
    }
}
