-- Commit one batch of draw decisions for one activity, atomically.
-- KEYS: stock, users, draws, outcomes, batch marker (all share the activity's hash tag)
-- ARGV: batch_ttl_s, per_user_limit, n, then n groups of
--       request_key, user_id ('' = rejected, not a draw), prize_id ('' = no stock used), outcome
-- Everything is validated before anything is written, so a refused batch
-- leaves no trace; 'stale' tells the actor its memory drifted from the ledger.
local ttl = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local need, add, seen = {}, {}, {}
for i = 0, n - 1 do
  local b = 4 + i * 4
  local req, user, prize = ARGV[b], ARGV[b + 1], ARGV[b + 2]
  if seen[req] or redis.call('HEXISTS', KEYS[4], req) == 1 then
    return {'stale', 'decided:' .. req}
  end
  seen[req] = true
  if prize ~= '' then need[prize] = (need[prize] or 0) + 1 end
  if user ~= '' then add[user] = (add[user] or 0) + 1 end
end
for prize, k in pairs(need) do
  local left = tonumber(redis.call('HGET', KEYS[1], prize) or '-1')
  if left < k then return {'stale', 'stock:' .. prize} end
end
if limit > 0 then
  for user, k in pairs(add) do
    local used = tonumber(redis.call('HGET', KEYS[2], user) or '0')
    if used + k > limit then return {'stale', 'limit:' .. user} end
  end
end
local draws = 0
for prize, k in pairs(need) do redis.call('HINCRBY', KEYS[1], prize, -k) end
for user, k in pairs(add) do
  redis.call('HINCRBY', KEYS[2], user, k)
  draws = draws + k
end
if draws > 0 then redis.call('INCRBY', KEYS[3], draws) end
for i = 0, n - 1 do
  local b = 4 + i * 4
  redis.call('HSET', KEYS[4], ARGV[b], ARGV[b + 3])
end
redis.call('SET', KEYS[5], n, 'EX', ttl)
return {'ok', tostring(draws)}
