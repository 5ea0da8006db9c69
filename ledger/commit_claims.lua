-- Commit one batch of claim decisions for one coupon template, atomically.
-- KEYS: 1 config version, 2 head, 3 coupons left, 4 users (user -> claimed),
--       5 outcomes, 6 issued, 7 tenant coupons (id -> coupon JSON),
--       8 tenant wallets (user -> ids), 9 tenant codes (code -> "batch|state|user|coupon"),
--       10 tenant expiries (coupon id -> valid_until), 11 points accounts,
--       12 points balances, 13 points expiry schedule, then one points log list
--       per account change (all share the tenant's hash tag)
-- ARGV: 1 head the batch was decided on ('' for a template that never committed),
--       2 this commit's head token, 3 config version decided under,
--       4 per-user limit (0: none), 5 '1' when the stock is limited,
--       6 n decisions, 7 m account changes (exchanges: accounts.lua), then n x (request_key "<user>:<request id>", outcome,
--       coupon id ('' for a rejection), coupon JSON ('' for a rejection),
--       'c' a shopper's claim (counts toward the per-user limit) or 'g' an
--       operator's grant (does not), the coupon code claimed ('' for none), its
--       batch id ('' for none), the coupon's valid_until ('' for none or a rejection)),
--       then the m account changes
-- A code claim issues only if the code is still available (the actor read it
-- so); the code is then assigned to the user and the coupon in this commit.
-- Validated before anything is written, so a refused batch leaves no trace;
-- 'stale' tells the actor its memory drifted from the ledger. The head makes
-- the template's commits a chain (see commit_draws.lua); the stock and limit
-- checks repeat what the chain implies, so they hold even if the actor's
-- memory were wrong.
local per_user, limited, n, m = tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6]), tonumber(ARGV[7])
local O, W = 8, 8
local A = O + W * n
local CHUNK = 500

local version = redis.call('GET', KEYS[1])
if version and version ~= ARGV[3] then return {'stale', 'config:' .. version} end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return {'stale', 'chain'} end

local function chunks(list, fn)
  for c = 1, #list, CHUNK do fn({unpack(list, c, math.min(c + CHUNK - 1, #list))}) end
end

local keys, users, count_of, ids_of = {}, {}, {}, {}
local seen, issued = {}, 0
for i = 0, n - 1 do
  local req, coupon = ARGV[O + i * W], ARGV[O + i * W + 2]
  if seen[req] then return {'stale', 'duplicate:' .. req} end
  seen[req] = true
  keys[#keys + 1] = req
  if coupon ~= '' then
    local user = string.match(req, '^([^:]*):')
    if not ids_of[user] then
      users[#users + 1] = user
      count_of[user] = 0
    end
    if ARGV[O + i * W + 4] == 'c' then count_of[user] = count_of[user] + 1 end
    ids_of[user] = ids_of[user] and (ids_of[user] .. '\n' .. coupon) or coupon
    issued = issued + 1
  end
end

local stale
chunks(keys, function(reqs)
  local found = redis.call('HMGET', KEYS[5], unpack(reqs))
  for j = 1, #reqs do if found[j] then stale = stale or ('decided:' .. reqs[j]) end end
end)
if stale then return {'stale', stale} end
if limited and tonumber(redis.call('GET', KEYS[3]) or '0') < issued then
  return {'stale', 'stock'}
end
local codes = {}
for i = 0, n - 1 do
  local code = ARGV[O + i * W + 5]
  if code ~= '' and ARGV[O + i * W + 2] ~= '' then
    local batch = ARGV[O + i * W + 6]
    if redis.call('HGET', KEYS[9], code) ~= batch .. '|available||' then
      return {'stale', 'code:' .. code}
    end
    local user = string.match(ARGV[O + i * W], '^([^:]*):')
    codes[#codes + 1] = code
    codes[#codes + 1] = batch .. '|assigned|' .. user .. '|' .. ARGV[O + i * W + 2]
  end
end
if per_user > 0 then
  chunks(users, function(some)
    local used = redis.call('HMGET', KEYS[4], unpack(some))
    for j = 1, #some do
      if tonumber(used[j] or '0') + count_of[some[j]] > per_user then
        stale = stale or ('limit:' .. some[j])
      end
    end
  end)
  if stale then return {'stale', stale} end
end

stale = accounts_stale(KEYS[11], A, m)
if stale then return {'stale', stale} end

accounts_write(KEYS[11], KEYS[12], KEYS[13], 14, A, m)
if #codes > 0 then redis.call('HSET', KEYS[9], unpack(codes)) end
if issued > 0 then
  if limited then redis.call('DECRBY', KEYS[3], issued) end
  redis.call('INCRBY', KEYS[6], issued)
  for _, user in ipairs(users) do
    if count_of[user] > 0 then redis.call('HINCRBY', KEYS[4], user, count_of[user]) end
  end
  for c = 0, n - 1, CHUNK do
    local pairs_, due = {}, {}
    for i = c, math.min(c + CHUNK, n) - 1 do
      local coupon = ARGV[O + i * W + 2]
      if coupon ~= '' then
        pairs_[#pairs_ + 1] = coupon
        pairs_[#pairs_ + 1] = ARGV[O + i * W + 3]
        local valid_until = ARGV[O + i * W + 7]
        if valid_until ~= '' then
          due[#due + 1] = valid_until
          due[#due + 1] = coupon
        end
      end
    end
    if #pairs_ > 0 then redis.call('HSET', KEYS[7], unpack(pairs_)) end
    if #due > 0 then redis.call('ZADD', KEYS[10], unpack(due)) end
  end
  chunks(users, function(some)
    local before = redis.call('HMGET', KEYS[8], unpack(some))
    local pairs_ = {}
    for j = 1, #some do
      pairs_[#pairs_ + 1] = some[j]
      pairs_[#pairs_ + 1] = before[j] and (before[j] .. '\n' .. ids_of[some[j]]) or ids_of[some[j]]
    end
    redis.call('HSET', KEYS[8], unpack(pairs_))
  end)
end
for c = 0, n - 1, CHUNK do
  local pairs_ = {}
  for i = c, math.min(c + CHUNK, n) - 1 do
    pairs_[#pairs_ + 1] = ARGV[O + i * W]
    pairs_[#pairs_ + 1] = ARGV[O + i * W + 1]
  end
  redis.call('HSET', KEYS[5], unpack(pairs_))
end
redis.call('SET', KEYS[2], ARGV[2])
return {'ok', tostring(issued)}
