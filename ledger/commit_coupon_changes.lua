-- Commit one batch of coupon changes (void, expire) for one template, atomically.
-- KEYS: 1 the template's change outcomes (request key -> event), 2 tenant coupons
--       (id -> coupon JSON), 3 tenant expiries (coupon id -> valid_until)
--       (all share the tenant's hash tag)
-- ARGV: 1 n decisions, then n x (request_key, outcome, coupon id, the coupon's
--       JSON as the actor read it or as an earlier change of this batch left it
--       ('' when there was none), its JSON after the change ('' when refused),
--       '1' to take the coupon off the expiry schedule)
-- A change is decided on the coupon as the actor read it; if anything else
-- changed the coupon since (a change decided by another batch, a redemption),
-- the batch is refused and decided again on a fresh read. Validated before
-- anything is written, so a refused batch leaves no trace.
local n = tonumber(ARGV[1])
local O, W = 2, 6

local current, stale = {}, nil
for i = 0, n - 1 do
  local at = O + i * W
  if redis.call('HEXISTS', KEYS[1], ARGV[at]) == 1 then return {'stale', 'decided:' .. ARGV[at]} end
  local id = ARGV[at + 2]
  if id ~= '' then
    if current[id] == nil then current[id] = redis.call('HGET', KEYS[2], id) or '' end
    if current[id] ~= ARGV[at + 3] then return {'stale', 'coupon:' .. id} end
    if ARGV[at + 4] ~= '' then current[id] = ARGV[at + 4] end
  end
end

local changed = 0
for i = 0, n - 1 do
  local at = O + i * W
  local id = ARGV[at + 2]
  if ARGV[at + 4] ~= '' then
    redis.call('HSET', KEYS[2], id, ARGV[at + 4])
    changed = changed + 1
  end
  if ARGV[at + 5] == '1' then redis.call('ZREM', KEYS[3], id) end
  redis.call('HSET', KEYS[1], ARGV[at], ARGV[at + 1])
end
return {'ok', tostring(changed)}
