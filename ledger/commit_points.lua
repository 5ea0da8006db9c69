-- Commit one batch of points requests (sign-in, order rebate, refund, adjust,
-- expire) for one account shard, atomically.
-- KEYS: 1 outcomes (request key -> event), 2 accounts, 3 balances, 4 expiry
--       schedule, then one log list per account change (all share the tenant's tag)
-- ARGV: 1 n decisions, 2 m account changes, then n x (request_key, outcome),
--       then m account changes (see accounts.lua)
-- Validated before anything is written, so a refused batch leaves no trace.
local n, m = tonumber(ARGV[1]), tonumber(ARGV[2])
local O = 3
local A = O + 2 * n

for i = 0, n - 1 do
  if redis.call('HEXISTS', KEYS[1], ARGV[O + i * 2]) == 1 then
    return {'stale', 'decided:' .. ARGV[O + i * 2]}
  end
end
local stale = accounts_stale(KEYS[2], A, m)
if stale then return {'stale', stale} end

accounts_write(KEYS[2], KEYS[3], KEYS[4], 5, A, m)
for i = 0, n - 1 do redis.call('HSET', KEYS[1], ARGV[O + i * 2], ARGV[O + i * 2 + 1]) end
return {'ok', tostring(n)}
