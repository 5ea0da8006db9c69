-- Commit one batch of draw decisions for one activity, atomically.
-- KEYS: 1 stock, 2 users, 3 users today, 4 draws, 5 outcomes, 6 head, 7 tenant points
--       balances, 8 wins, 9 config version, 10 tenant coupons, 11 tenant wallets,
--       12 tenant expiries, 13 points accounts, 14 points expiry schedule,
--       15 users this month, 16 chances bought or granted (in all), 17 of today,
--       18 of this month, then one points log list per account change (all share
--       the tenant's hash tag); days and months are the activity's local ones
--       (domain.draw.period)
-- ARGV: 1 head the batch was decided on ('' for a pool that never committed),
--       2 this commit's head token, 3 config version decided under,
--       4 per_user_total, 5 per_user_daily, 6 max_draws, 7 day_ttl_s,
--       8 n decisions, 9 n stock fields, 10 m account changes, 11 n coupons,
--       12 per_user_monthly, 13 month_ttl_s, then
--       n x (request_key "<user>:<request id>", outcome, effect), effect being
--         'r' (rejected: no draw), 'd' (a draw) or 'w' (a won draw),
--       s x (stock_field, amount taken),
--       m account changes (accounts.lua): the points the draws cost and won,
--       c x (user_id, coupon id, coupon JSON, valid_until or ''): coupons won, into
--         the winners' wallets and, when they expire, the expiry schedule
-- The actor sends one line per decision and the per-user sums are made here:
-- arguments per draw, not per user, halved what the actor spends per commit.
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
local n, s, m, c = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local per_month, month_ttl = tonumber(ARGV[12]), tonumber(ARGV[13])
local O, S, A = 14, 14 + 3 * n, 14 + 3 * n + 2 * s
local C = A + ACCOUNT_W * m
local CHUNK = 500

-- An activity written before versions were kept beside the config has none: no check.
local version = redis.call('GET', KEYS[9])
if version and version ~= ARGV[3] then return {'stale', 'config:' .. version} end
if (redis.call('GET', KEYS[6]) or '') ~= ARGV[1] then return {'stale', 'chain'} end

local function chunks(list, fn)
  for c = 1, #list, CHUNK do fn({unpack(list, c, math.min(c + CHUNK - 1, #list))}) end
end

-- Per-user sums of the batch, in first-seen order.
local keys, users, draws_of, wins_of = {}, {}, {}, {}
local seen, draws = {}, 0
for i = 0, n - 1 do
  local req, effect = ARGV[O + i * 3], ARGV[O + i * 3 + 2]
  if seen[req] then return {'stale', 'duplicate:' .. req} end
  seen[req] = true
  keys[#keys + 1] = req
  local kind = string.sub(effect, 1, 1)
  if kind ~= 'r' then
    local user = string.match(req, '^([^:]*):')
    if not draws_of[user] then
      users[#users + 1] = user
      draws_of[user] = 0
    end
    draws_of[user] = draws_of[user] + 1
    draws = draws + 1
    if kind == 'w' then
      wins_of[user] = wins_of[user] and (wins_of[user] .. '\n' .. req) or req
    end
  end
end

local stale
chunks(keys, function(reqs)
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
if max_draws > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') + draws > max_draws then
  return {'stale', 'max_draws'}
end
-- A limit is raised by the user's chances of the same span (the quota account).
local function check_counts(key, limit, bonus)
  chunks(users, function(some)
    local used = redis.call('HMGET', key, unpack(some))
    local extra = redis.call('HMGET', bonus, unpack(some))
    for j = 1, #some do
      if tonumber(used[j] or '0') + draws_of[some[j]] > limit + tonumber(extra[j] or '0') then
        stale = stale or ('limit:' .. some[j])
      end
    end
  end)
end
if per_user > 0 then check_counts(KEYS[2], per_user, KEYS[16]) end
if per_day > 0 then check_counts(KEYS[3], per_day, KEYS[17]) end
if per_month > 0 then check_counts(KEYS[15], per_month, KEYS[18]) end
if stale then return {'stale', stale} end
stale = accounts_stale(KEYS[13], A, m)
if stale then return {'stale', stale} end

for i = 0, s - 1 do redis.call('HINCRBY', KEYS[1], ARGV[S + i * 2], -tonumber(ARGV[S + i * 2 + 1])) end
local winners = {}
for _, user in ipairs(users) do
  redis.call('HINCRBY', KEYS[2], user, draws_of[user])
  if per_day > 0 then redis.call('HINCRBY', KEYS[3], user, draws_of[user]) end
  if per_month > 0 then redis.call('HINCRBY', KEYS[15], user, draws_of[user]) end
  if wins_of[user] then winners[#winners + 1] = user end
end
accounts_write(KEYS[13], KEYS[7], KEYS[14], 19, A, m)
if draws > 0 then
  redis.call('INCRBY', KEYS[4], draws)
  if per_day > 0 then redis.call('EXPIRE', KEYS[3], day_ttl) end
  if per_month > 0 then redis.call('EXPIRE', KEYS[15], month_ttl) end
end
chunks(winners, function(some)
  local before = redis.call('HMGET', KEYS[8], unpack(some))
  local pairs_ = {}
  for j = 1, #some do
    local add = wins_of[some[j]]
    pairs_[#pairs_ + 1] = some[j]
    pairs_[#pairs_ + 1] = before[j] and (before[j] .. '\n' .. add) or add
  end
  redis.call('HSET', KEYS[8], unpack(pairs_))
end)
for c = 0, n - 1, CHUNK do
  local pairs_ = {}
  for i = c, math.min(c + CHUNK, n) - 1 do
    pairs_[#pairs_ + 1] = ARGV[O + i * 3]
    pairs_[#pairs_ + 1] = ARGV[O + i * 3 + 1]
  end
  redis.call('HSET', KEYS[5], unpack(pairs_))
end
if c > 0 then
  local owners, ids_of, pairs_, due = {}, {}, {}, {}
  for i = 0, c - 1 do
    local user, id = ARGV[C + i * 4], ARGV[C + i * 4 + 1]
    pairs_[#pairs_ + 1] = id
    pairs_[#pairs_ + 1] = ARGV[C + i * 4 + 2]
    if ARGV[C + i * 4 + 3] ~= '' then
      due[#due + 1] = ARGV[C + i * 4 + 3]
      due[#due + 1] = id
    end
    if #pairs_ >= 2 * CHUNK then
      redis.call('HSET', KEYS[10], unpack(pairs_))
      pairs_ = {}
    end
    if #due >= 2 * CHUNK then
      redis.call('ZADD', KEYS[12], unpack(due))
      due = {}
    end
    if not ids_of[user] then owners[#owners + 1] = user end
    ids_of[user] = ids_of[user] and (ids_of[user] .. '\n' .. id) or id
  end
  if #pairs_ > 0 then redis.call('HSET', KEYS[10], unpack(pairs_)) end
  if #due > 0 then redis.call('ZADD', KEYS[12], unpack(due)) end
  chunks(owners, function(some)
    local before = redis.call('HMGET', KEYS[11], unpack(some))
    local wallets = {}
    for j = 1, #some do
      wallets[#wallets + 1] = some[j]
      wallets[#wallets + 1] = before[j] and (before[j] .. '\n' .. ids_of[some[j]]) or ids_of[some[j]]
    end
    redis.call('HSET', KEYS[11], unpack(wallets))
  end)
end
redis.call('SET', KEYS[6], ARGV[2])
return {'ok', tostring(draws)}
