-- Commit one batch of write-offs (redemptions, locks, confirms, releases,
-- reversals) for one template, atomically.
-- KEYS: 1 the template's write-off outcomes (request key -> event), 2 tenant
--       coupons (id -> JSON), 3 tenant expiries, 4 tenant orders
--       ("<partner>:<order id>" -> newline-separated coupon ids), 5 the template's
--       redemption count, 6 tenant locks (coupon id -> lock end), 7 tenant codes
--       (code -> "batch|state|user|coupon"), then b budget counters (all share
--       the tenant's hash tag)
-- ARGV: 1 n decisions, 2 b budgets, then b x limit (the counter may never pass
--       it), then n x (request_key, outcome, coupon id ('' for none), the
--       coupon's JSON as read ('' for none), its JSON after ('' when refused),
--       order key, order '+' (the coupon joins the order) / '-' (leaves it) / '',
--       expiry '+' (back on the schedule at valid_until) / '-' (off it) / '',
--       valid_until ('' for none), lock '+' (on the lock schedule at the lock's
--       end) / '-' (off it) / '', the lock's end, redeemed count delta,
--       budget spending "<1-based budget index>:<signed amount>,...", the code
--       the coupon stands for ('' when none or unchanged), its record as read,
--       its record after (redeemed, or assigned again on a reversal))
-- Every coupon must still be as the actor read it and every budget must hold
-- the batch's net spending, else nothing is written and the actor decides again
-- on a fresh read: two tills redeeming one coupon, a reversal racing a
-- redemption, or two templates' actors spending one partner's budget can never
-- lose one another's effect.
local n, b = tonumber(ARGV[1]), tonumber(ARGV[2])
local O, W = 3 + b, 16
local B = 7

local current, codes, spend = {}, {}, {}
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
      local code = ARGV[at + 13]
      if code ~= '' then
        if codes[code] == nil then codes[code] = redis.call('HGET', KEYS[7], code) or '' end
        if codes[code] ~= ARGV[at + 14] then return {'stale', 'code:' .. code} end
        codes[code] = ARGV[at + 15]
      end
      for j, amount in string.gmatch(ARGV[at + 12], '(%d+):(-?%d+)') do
        j = tonumber(j)
        spend[j] = spend[j] + tonumber(amount)
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
  local id, order = ARGV[at + 2], ARGV[at + 5]
  if ARGV[at + 4] ~= '' then
    redis.call('HSET', KEYS[2], id, ARGV[at + 4])
    local way = ARGV[at + 6]
    if way ~= '' then
      local ids = redis.call('HGET', KEYS[4], order)
      local left = {}
      for other in string.gmatch(ids or '', '[^\n]+') do
        if other ~= id then left[#left + 1] = other end
      end
      if way == '+' then left[#left + 1] = id end
      if #left > 0 then
        redis.call('HSET', KEYS[4], order, table.concat(left, '\n'))
      else
        redis.call('HDEL', KEYS[4], order)
      end
    end
    local expiry = ARGV[at + 7]
    if expiry == '-' then
      redis.call('ZREM', KEYS[3], id)
    elseif expiry == '+' and ARGV[at + 8] ~= '' then
      redis.call('ZADD', KEYS[3], ARGV[at + 8], id)
    end
    local lock = ARGV[at + 9]
    if lock == '-' then
      redis.call('ZREM', KEYS[6], id)
    elseif lock == '+' then
      redis.call('ZADD', KEYS[6], ARGV[at + 10], id)
    end
    redeemed = redeemed + tonumber(ARGV[at + 11])
    if ARGV[at + 13] ~= '' then redis.call('HSET', KEYS[7], ARGV[at + 13], ARGV[at + 15]) end
  end
  redis.call('HSET', KEYS[1], ARGV[at], ARGV[at + 1])
end
for j = 1, b do
  if spend[j] ~= 0 then redis.call('INCRBY', KEYS[B + j], spend[j]) end
end
if redeemed ~= 0 then redis.call('INCRBY', KEYS[5], redeemed) end
return {'ok', tostring(redeemed)}
