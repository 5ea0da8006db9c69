-- Commit one batch of write-offs (redemptions, reversals) for one template, atomically.
-- KEYS: 1 the template's write-off outcomes (request key -> event), 2 tenant
--       coupons (id -> JSON), 3 tenant expiries, 4 tenant orders
--       ("<partner>:<order id>" -> newline-separated coupon ids), 5 the template's
--       redemption count, then b budget counters (discount cents spent)
--       (all share the tenant's hash tag)
-- ARGV: 1 n decisions, 2 b budgets, then b x limit (cents; the counter may
--       never pass it), then n x (request_key, outcome, coupon id ('' for none),
--       the coupon's JSON as read ('' for none), its JSON after ('' when
--       refused), order key, '+' (a redemption: the coupon joins the order, leaves
--       the expiry schedule) or '-' (a reversal: it leaves the order, and goes back
--       on the schedule at the valid_until that follows) or '' (refused),
--       valid_until ('' for none), discount cents (negative for a reversal),
--       budget indexes it spends from (1-based, comma separated))
-- Every coupon must still be as the actor read it and every budget must hold
-- the batch's net spending, else nothing is written and the actor decides again
-- on a fresh read: two tills redeeming one coupon, or a reversal racing a
-- redemption, can never lose one another's effect.
local n, b = tonumber(ARGV[1]), tonumber(ARGV[2])
local O, W = 3 + b, 10
local B = 5

local current, spend = {}, {}
for j = 1, b do spend[j] = 0 end
for i = 0, n - 1 do
  local at = O + i * W
  if redis.call('HEXISTS', KEYS[1], ARGV[at]) == 1 then return {'stale', 'decided:' .. ARGV[at]} end
  local id = ARGV[at + 2]
  if id ~= '' then
    if current[id] == nil then current[id] = redis.call('HGET', KEYS[2], id) or '' end
    if current[id] ~= ARGV[at + 3] then return {'stale', 'coupon:' .. id} end
    if ARGV[at + 4] ~= '' then
      current[id] = ARGV[at + 4]
      for j in string.gmatch(ARGV[at + 9], '%d+') do
        j = tonumber(j)
        spend[j] = spend[j] + tonumber(ARGV[at + 8])
      end
    end
  end
end
for j = 1, b do
  if spend[j] > 0 and tonumber(redis.call('GET', KEYS[B + j]) or '0') + spend[j] > tonumber(ARGV[2 + j]) then
    return {'stale', 'budget:' .. KEYS[B + j]}
  end
end

local redeemed = 0
for i = 0, n - 1 do
  local at = O + i * W
  local id, order, way = ARGV[at + 2], ARGV[at + 5], ARGV[at + 6]
  if ARGV[at + 4] ~= '' then
    redis.call('HSET', KEYS[2], id, ARGV[at + 4])
    local ids = redis.call('HGET', KEYS[4], order)
    if way == '+' then
      redeemed = redeemed + 1
      redis.call('ZREM', KEYS[3], id)
      redis.call('HSET', KEYS[4], order, ids and (ids .. '\n' .. id) or id)
    else
      redeemed = redeemed - 1
      if ARGV[at + 7] ~= '' then redis.call('ZADD', KEYS[3], ARGV[at + 7], id) end
      local left = {}
      for other in string.gmatch(ids or '', '[^\n]+') do
        if other ~= id then left[#left + 1] = other end
      end
      if #left > 0 then
        redis.call('HSET', KEYS[4], order, table.concat(left, '\n'))
      else
        redis.call('HDEL', KEYS[4], order)
      end
    end
  end
  redis.call('HSET', KEYS[1], ARGV[at], ARGV[at + 1])
end
for j = 1, b do
  if spend[j] ~= 0 then redis.call('INCRBY', KEYS[B + j], spend[j]) end
end
if redeemed ~= 0 then redis.call('INCRBY', KEYS[5], redeemed) end
return {'ok', tostring(redeemed)}
