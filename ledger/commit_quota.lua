-- Commit one batch of chance top-ups (bought with points or granted) for one
-- activity's quota accounts, atomically, as a link of the pool's chain.
-- KEYS: 1 config version, 2 head, 3 top-up outcomes, 4 chances in all,
--       5 chances of today, 6 chances of this month, 7 points accounts,
--       8 points balances, 9 points expiry schedule, then one points log list
--       per account change (all share the tenant's hash tag)
-- ARGV: 1 head the batch was decided on, 2 this commit's head token, 3 config
--       version decided under, 4 n decisions, 5 m account changes, 6 day_ttl_s,
--       7 month_ttl_s, then n x (request_key, outcome, user id, chances added:
--       0 for a refusal), then the m account changes (accounts.lua)
-- In the pool's chain (commit_draws.lua): draws decided after a top-up count
-- on its chances, so they are accepted only if it was. Validated before
-- anything is written, so a refused batch leaves no trace.
local n, m = tonumber(ARGV[4]), tonumber(ARGV[5])
local day_ttl, month_ttl = tonumber(ARGV[6]), tonumber(ARGV[7])
local O, W = 8, 4
local A = O + W * n

local version = redis.call('GET', KEYS[1])
if version and version ~= ARGV[3] then return {'stale', 'config:' .. version} end
if (redis.call('GET', KEYS[2]) or '') ~= ARGV[1] then return {'stale', 'chain'} end
for i = 0, n - 1 do
  if redis.call('HEXISTS', KEYS[3], ARGV[O + i * W]) == 1 then
    return {'stale', 'decided:' .. ARGV[O + i * W]}
  end
end
local stale = accounts_stale(KEYS[7], A, m)
if stale then return {'stale', stale} end

accounts_write(KEYS[7], KEYS[8], KEYS[9], 10, A, m)
local added = 0
for i = 0, n - 1 do
  local at = O + i * W
  local user, chances = ARGV[at + 2], tonumber(ARGV[at + 3])
  if chances > 0 then
    redis.call('HINCRBY', KEYS[4], user, chances)
    redis.call('HINCRBY', KEYS[5], user, chances)
    redis.call('HINCRBY', KEYS[6], user, chances)
    added = added + chances
  end
  redis.call('HSET', KEYS[3], ARGV[at], ARGV[at + 1])
end
if added > 0 then
  redis.call('EXPIRE', KEYS[5], day_ttl)
  redis.call('EXPIRE', KEYS[6], month_ttl)
end
redis.call('SET', KEYS[2], ARGV[2])
return {'ok', tostring(added)}
