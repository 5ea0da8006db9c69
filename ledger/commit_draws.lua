-- Commit one batch of draw decisions for one activity, atomically.
-- KEYS: 1 stock, 2 users, 3 users today, 4 draws, 5 outcomes, 6 head, 7 tenant points,
--       8 wins, 9 config version (all share the tenant's hash tag)
-- ARGV: 1 head the batch was decided on ('' for a pool that never committed),
--       2 this commit's head token, 3 config version decided under,
--       4 per_user_total, 5 per_user_daily, 6 max_draws, 7 day_ttl_s,
--       8 n outcomes, 9 n stock fields, 10 n users, then
--       n x (request_key, outcome),
--       s x (stock_field, amount taken),
--       u x (user_id, draws added, points delta, points balance decided with or '',
--            request keys won, newline-joined, or '')
-- Everything is validated before anything is written, so a refused batch
-- leaves no trace; 'stale' tells the actor its memory drifted from the ledger.
-- The head check makes the pool's commits a chain: a batch decided on top of
-- another is accepted only if that one was, whatever the order of failures.
-- The other checks repeat what the chain already implies, so that stock and
-- limits hold even if the actor's memory were wrong (defence in depth).
-- Reads and writes go in chunks (HMGET/HSET with many fields): a redis.call per
-- request was most of the script's time.
local per_user, per_day, max_draws = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local day_ttl = tonumber(ARGV[7])
local n, s, u = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10])
local O, S, U = 11, 11 + 2 * n, 11 + 2 * n + 2 * s
local CHUNK = 500

-- An activity written before versions were kept beside the config has none: no check.
local version = redis.call('GET', KEYS[9])
if version and version ~= ARGV[3] then return {'stale', 'config:' .. version} end
if (redis.call('GET', KEYS[6]) or '') ~= ARGV[1] then return {'stale', 'chain'} end

local function each_chunk(first, count, stride, offset, fn)
  for c = 0, count - 1, CHUNK do
    local args = {}
    for i = c, math.min(c + CHUNK, count) - 1 do args[#args + 1] = ARGV[first + i * stride + offset] end
    fn(args)
  end
end

local stale
local seen = {}
for i = 0, n - 1 do
  local req = ARGV[O + i * 2]
  if seen[req] then return {'stale', 'duplicate:' .. req} end
  seen[req] = true
end
each_chunk(O, n, 2, 0, function(reqs)
  local found = redis.call('HMGET', KEYS[5], unpack(reqs))
  for j = 1, #reqs do if found[j] then stale = stale or ('decided:' .. reqs[j]) end end
end)
if stale then return {'stale', stale} end

for i = 0, s - 1 do
  local field, amount = ARGV[S + i * 2], tonumber(ARGV[S + i * 2 + 1])
  if tonumber(redis.call('HGET', KEYS[1], field) or '-1') < amount then
    return {'stale', 'stock:' .. field}
  end
end

local draws, added = 0, {}
for i = 0, u - 1 do
  local k = tonumber(ARGV[U + i * 5 + 1])
  added[ARGV[U + i * 5]] = k
  draws = draws + k
end
if max_draws > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') + draws > max_draws then
  return {'stale', 'max_draws'}
end
local function check_counts(key, limit)
  each_chunk(U, u, 5, 0, function(users)
    local used = redis.call('HMGET', key, unpack(users))
    for j = 1, #users do
      if tonumber(used[j] or '0') + added[users[j]] > limit then
        stale = stale or ('limit:' .. users[j])
      end
    end
  end)
end
if per_user > 0 then check_counts(KEYS[2], per_user) end
if per_day > 0 then check_counts(KEYS[3], per_day) end
if stale then return {'stale', stale} end
for i = 0, u - 1 do
  local b = U + i * 5
  if ARGV[b + 3] ~= '' and (redis.call('HGET', KEYS[7], ARGV[b]) or '0') ~= ARGV[b + 3] then
    return {'stale', 'points:' .. ARGV[b]}
  end
end

for i = 0, s - 1 do redis.call('HINCRBY', KEYS[1], ARGV[S + i * 2], -tonumber(ARGV[S + i * 2 + 1])) end
local winners, won = {}, {}
for i = 0, u - 1 do
  local b = U + i * 5
  local user, k, delta = ARGV[b], tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2])
  if k > 0 then
    redis.call('HINCRBY', KEYS[2], user, k)
    if per_day > 0 then redis.call('HINCRBY', KEYS[3], user, k) end
  end
  if delta ~= 0 then redis.call('HINCRBY', KEYS[7], user, delta) end
  if ARGV[b + 4] ~= '' then
    winners[#winners + 1] = user
    won[#won + 1] = ARGV[b + 4]
  end
end
if draws > 0 then
  redis.call('INCRBY', KEYS[4], draws)
  if per_day > 0 then redis.call('EXPIRE', KEYS[3], day_ttl) end
end
for c = 1, #winners, CHUNK do
  local users = {unpack(winners, c, math.min(c + CHUNK - 1, #winners))}
  local before = redis.call('HMGET', KEYS[8], unpack(users))
  local pairs_ = {}
  for j = 1, #users do
    local add = won[c + j - 1]
    pairs_[#pairs_ + 1] = users[j]
    pairs_[#pairs_ + 1] = before[j] and (before[j] .. '\n' .. add) or add
  end
  redis.call('HSET', KEYS[8], unpack(pairs_))
end
for c = 0, n - 1, CHUNK do
  local pairs_ = {}
  for i = c, math.min(c + CHUNK, n) - 1 do
    pairs_[#pairs_ + 1] = ARGV[O + i * 2]
    pairs_[#pairs_ + 1] = ARGV[O + i * 2 + 1]
  end
  redis.call('HSET', KEYS[5], unpack(pairs_))
end
redis.call('SET', KEYS[6], ARGV[2])
return {'ok', tostring(draws)}
