package redisstore

import "github.com/redis/go-redis/v9"

// Every script first checks that the data it writes into is the one this
// store opened (meta's epoch): a Redis restarted without persistence has
// lost it, and writing single records into the empty server would make
// other instances take them for the whole pool. Such a script answers
// {"lost"} and writes nothing.

// scriptMeta creates the meta record of an empty pool, and returns the
// schema version and epoch.
var scriptMeta = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 'schema')
if not s then
  redis.call('HSET', KEYS[1], 'schema', ARGV[1], 'epoch', ARGV[2])
  return {ARGV[1], ARGV[2]}
end
return {s, redis.call('HGET', KEYS[1], 'epoch') or ''}
`)

// scriptPutKeys: KEYS meta, keys, fp, keyfp, rev; ARGV epoch, n, then n
// groups of id, fingerprint, revision, JSON. Refuses a second copy of a
// secret ({"dup", index, id, existing id}) and a revision not above the
// stored one ({"conflict", id, stored, given}) before writing anything.
var scriptPutKeys = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return {'lost'} end
local n = tonumber(ARGV[2])
local ids, fps, revs, vals = {}, {}, {}, {}
for i = 1, n do
  local b = 2 + (i - 1) * 4
  ids[i], fps[i], revs[i], vals[i] = ARGV[b + 1], ARGV[b + 2], tonumber(ARGV[b + 3]), ARGV[b + 4]
end
local firstfp = {}
for i = 1, n do
  if firstfp[ids[i]] == nil then firstfp[ids[i]] = fps[i] end
end
local incall = {}
for i = 1, n do
  local id, fp = ids[i], fps[i]
  if redis.call('HGET', KEYS[4], id) ~= fp then
    local prev = incall[fp]
    if prev and prev ~= id then return {'dup', tostring(i - 1), id, prev} end
    incall[fp] = id
    local other = redis.call('HGET', KEYS[3], fp)
    if other and other ~= id then
      local f = firstfp[other]
      if not (f and f ~= fp) then return {'dup', tostring(i - 1), id, other} end
    end
  end
end
local seen = {}
for i = 1, n do
  local id = ids[i]
  if revs[i] > 0 then
    local stored = seen[id]
    if stored == nil then stored = tonumber(redis.call('HGET', KEYS[5], id) or '-1') end
    if stored >= 0 and stored >= revs[i] then
      return {'conflict', id, tostring(stored), tostring(revs[i])}
    end
  end
  seen[id] = revs[i]
end
for i = 1, n do
  local id, fp = ids[i], fps[i]
  local oldfp = redis.call('HGET', KEYS[4], id)
  if oldfp and oldfp ~= fp and redis.call('HGET', KEYS[3], oldfp) == id then
    redis.call('HDEL', KEYS[3], oldfp)
  end
  redis.call('HSET', KEYS[2], id, vals[i])
  redis.call('HSET', KEYS[4], id, fp)
  redis.call('HSET', KEYS[3], fp, id)
  redis.call('HSET', KEYS[5], id, revs[i])
end
redis.call('HINCRBY', KEYS[1], 'cver', 1)
return {'ok'}
`)

// scriptDeleteKeys: KEYS meta, keys, fp, keyfp, rev, req, ok, fail, used,
// lasterr, rest, ptok, ctok; ARGV epoch, ids.
var scriptDeleteKeys = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return {'lost'} end
for i = 2, #ARGV do
  local id = ARGV[i]
  local fp = redis.call('HGET', KEYS[4], id)
  if fp and redis.call('HGET', KEYS[3], fp) == id then redis.call('HDEL', KEYS[3], fp) end
  redis.call('HDEL', KEYS[2], id)
  for k = 4, 13 do redis.call('HDEL', KEYS[k], id) end
end
redis.call('HINCRBY', KEYS[1], 'cver', 1)
return {'ok'}
`)

// scriptAddUsage: KEYS meta, keys, req, ok, fail, used, lasterr, flush
// marker, ptok, ctok; ARGV epoch, marker TTL (s), then groups of id,
// requests, successes, failures, last used (19-digit unix ns or ""), last
// error ("<19-digit unix ns>|JSON" or ""), prompt and completion tokens. A marker that exists means this flush
// was applied already: it is not applied twice.
var scriptAddUsage = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return {'lost'} end
if redis.call('EXISTS', KEYS[8]) == 1 then return {'ok', 'again'} end
for b = 3, #ARGV, 8 do
  local id = ARGV[b]
  if redis.call('HEXISTS', KEYS[2], id) == 1 then
    local r, s, f = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    if r ~= 0 then redis.call('HINCRBY', KEYS[3], id, r) end
    if s ~= 0 then redis.call('HINCRBY', KEYS[4], id, s) end
    if f ~= 0 then redis.call('HINCRBY', KEYS[5], id, f) end
    local pt, ct = tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7])
    if pt ~= 0 then redis.call('HINCRBY', KEYS[9], id, pt) end
    if ct ~= 0 then redis.call('HINCRBY', KEYS[10], id, ct) end
    local u = ARGV[b + 4]
    if u ~= '' then
      local cur = redis.call('HGET', KEYS[6], id)
      if not cur or u > cur then redis.call('HSET', KEYS[6], id, u) end
    end
    local e = ARGV[b + 5]
    if e ~= '' then
      local cur = redis.call('HGET', KEYS[7], id)
      if not cur or string.sub(e, 1, 19) >= string.sub(cur, 1, 19) then redis.call('HSET', KEYS[7], id, e) end
    end
  end
end
redis.call('SET', KEYS[8], '1', 'EX', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'uver', 1)
return {'ok'}
`)

// scriptResetUsage: KEYS meta, req, ok, fail, ptok, ctok; ARGV epoch, ids.
var scriptResetUsage = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return {'lost'} end
for i = 2, #ARGV do
  for k = 2, 6 do redis.call('HDEL', KEYS[k], ARGV[i]) end
end
redis.call('HINCRBY', KEYS[1], 'cver', 1)
return {'ok'}
`)

// scriptPutToken: KEYS meta, tokens; ARGV epoch, id, JSON.
var scriptPutToken = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return {'lost'} end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[1], 'cver', 1)
return {'ok'}
`)

// scriptDeleteToken: KEYS meta, tokens; ARGV epoch, id. {"notfound"} if
// there is no such token.
var scriptDeleteToken = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return {'lost'} end
if redis.call('HDEL', KEYS[2], ARGV[2]) == 0 then return {'notfound'} end
redis.call('HINCRBY', KEYS[1], 'cver', 1)
return {'ok'}
`)

// scriptPutRest: KEYS meta, keys, rest; ARGV epoch, id, "<19-digit unix
// ns>|reason". A stored rest that ends later stays.
var scriptPutRest = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return {'lost'} end
if redis.call('HEXISTS', KEYS[2], ARGV[2]) == 0 then return {'ok'} end
local cur = redis.call('HGET', KEYS[3], ARGV[2])
if cur and string.sub(cur, 1, 19) >= string.sub(ARGV[3], 1, 19) then return {'ok'} end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('HINCRBY', KEYS[1], 'cver', 1)
return {'ok'}
`)

// scriptRestore writes a whole copy back into a pool whose data is gone:
// KEYS meta, keys, fp, keyfp, rev, req, ok, fail, used, lasterr, tokens,
// rest, ptok, ctok; ARGV new epoch, schema, nk, nu, nt, nr, then nk groups
// of id, fingerprint, revision, JSON; nu groups of id, requests,
// successes, failures, used, last error, prompt tokens, completion tokens;
// nt groups of id, JSON; nr groups of id, rest. If the pool has an epoch already (another instance restored it,
// or it never was lost) nothing is written: {"exists", epoch}.
var scriptRestore = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], 'epoch')
if cur then return {'exists', cur} end
local nk, nu, nt, nr = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for k = 2, 14 do redis.call('DEL', KEYS[k]) end
local b = 7
for i = 1, nk do
  redis.call('HSET', KEYS[2], ARGV[b], ARGV[b + 3])
  redis.call('HSET', KEYS[3], ARGV[b + 1], ARGV[b])
  redis.call('HSET', KEYS[4], ARGV[b], ARGV[b + 1])
  redis.call('HSET', KEYS[5], ARGV[b], ARGV[b + 2])
  b = b + 4
end
for i = 1, nu do
  local id = ARGV[b]
  if ARGV[b + 1] ~= '0' then redis.call('HSET', KEYS[6], id, ARGV[b + 1]) end
  if ARGV[b + 2] ~= '0' then redis.call('HSET', KEYS[7], id, ARGV[b + 2]) end
  if ARGV[b + 3] ~= '0' then redis.call('HSET', KEYS[8], id, ARGV[b + 3]) end
  if ARGV[b + 4] ~= '' then redis.call('HSET', KEYS[9], id, ARGV[b + 4]) end
  if ARGV[b + 5] ~= '' then redis.call('HSET', KEYS[10], id, ARGV[b + 5]) end
  if ARGV[b + 6] ~= '0' then redis.call('HSET', KEYS[13], id, ARGV[b + 6]) end
  if ARGV[b + 7] ~= '0' then redis.call('HSET', KEYS[14], id, ARGV[b + 7]) end
  b = b + 8
end
for i = 1, nt do
  redis.call('HSET', KEYS[11], ARGV[b], ARGV[b + 1])
  b = b + 2
end
for i = 1, nr do
  redis.call('HSET', KEYS[12], ARGV[b], ARGV[b + 1])
  b = b + 2
end
redis.call('HSET', KEYS[1], 'schema', ARGV[2], 'epoch', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'cver', 1)
return {'ok', ARGV[1]}
`)
