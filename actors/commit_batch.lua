-- Commit one batch of decisions for one activity, atomically.
-- KEYS: 1 stock, 2 users, 3 users today, 4 draws, 5 outcomes, 6 batch marker,
--       7 tenant points, 8 wins (all share the tenant's hash tag)
-- ARGV: 1 batch_ttl_s, 2 per_user_total, 3 per_user_daily, 4 max_draws,
--       5 day_ttl_s, 6 n entries, 7 n wallets, then n entries of 9:
--         request_key, user_id ('' = rejected, not a draw),
--         stock_field_1, amount_1, stock_field_2, amount_2 ('' = none),
--         points_delta, won ('1'/'0'), outcome
--       then n wallets of 2: user_id, points balance the actor decided with.
-- Everything is validated before anything is written, so a refused batch
-- leaves no trace; 'stale' tells the actor its memory drifted from the ledger.
local batch_ttl = tonumber(ARGV[1])
local per_user, per_day, max_draws = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local day_ttl = tonumber(ARGV[5])
local n, wallets = tonumber(ARGV[6]), tonumber(ARGV[7])
local E, FIRST = 9, 8
local need, add, seen, draws = {}, {}, {}, 0
for i = 0, n - 1 do
  local b = FIRST + i * E
  local req, user = ARGV[b], ARGV[b + 1]
  if seen[req] or redis.call('HEXISTS', KEYS[5], req) == 1 then
    return {'stale', 'decided:' .. req}
  end
  seen[req] = true
  for j = 0, 1 do
    local field = ARGV[b + 2 + j * 2]
    if field ~= '' then need[field] = (need[field] or 0) + tonumber(ARGV[b + 3 + j * 2]) end
  end
  if user ~= '' then
    add[user] = (add[user] or 0) + 1
    draws = draws + 1
  end
end
for field, amount in pairs(need) do
  if tonumber(redis.call('HGET', KEYS[1], field) or '-1') < amount then
    return {'stale', 'stock:' .. field}
  end
end
for user, k in pairs(add) do
  if per_user > 0 and tonumber(redis.call('HGET', KEYS[2], user) or '0') + k > per_user then
    return {'stale', 'limit:' .. user}
  end
  if per_day > 0 and tonumber(redis.call('HGET', KEYS[3], user) or '0') + k > per_day then
    return {'stale', 'daily:' .. user}
  end
end
if max_draws > 0 and tonumber(redis.call('GET', KEYS[4]) or '0') + draws > max_draws then
  return {'stale', 'max_draws'}
end
local wb = FIRST + n * E
for i = 0, wallets - 1 do
  local user, expected = ARGV[wb + i * 2], ARGV[wb + i * 2 + 1]
  if (redis.call('HGET', KEYS[7], user) or '0') ~= expected then
    return {'stale', 'points:' .. user}
  end
end

for field, amount in pairs(need) do redis.call('HINCRBY', KEYS[1], field, -amount) end
for user, k in pairs(add) do
  redis.call('HINCRBY', KEYS[2], user, k)
  redis.call('HINCRBY', KEYS[3], user, k)
end
if draws > 0 then
  redis.call('INCRBY', KEYS[4], draws)
  redis.call('EXPIRE', KEYS[3], day_ttl)
end
for i = 0, n - 1 do
  local b = FIRST + i * E
  local req, user, delta = ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 6])
  redis.call('HSET', KEYS[5], req, ARGV[b + 8])
  if delta ~= 0 then redis.call('HINCRBY', KEYS[7], user, delta) end
  if ARGV[b + 7] == '1' then
    local wins = redis.call('HGET', KEYS[8], user)
    redis.call('HSET', KEYS[8], user, wins and (wins .. '\n' .. req) or req)
  end
end
redis.call('SET', KEYS[6], n, 'EX', batch_ttl)
return {'ok', tostring(draws)}
