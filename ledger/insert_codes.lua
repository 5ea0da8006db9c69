-- Store one chunk of a code batch (ledger/codes.py, CodeStore.insert).
--
-- Contract:
-- * each code of the chunk becomes one of the tenant's codes, in this batch,
--   unless the tenant already holds it: then it is returned as taken, and the
--   code keeps its batch and state;
-- * the batch never holds more codes than its count;
-- * nothing is written unless the caller holds the batch's lease and the batch
--   is running, so a cancel between two chunks stops the job for good;
-- * a chunk sent again (a retry after a lost reply) stores nothing twice: its
--   codes are found in this batch already and are neither stored nor taken.
-- Every key carries the tenant's hash tag, so this runs on Redis Cluster as is.
--
-- KEYS[1] the tenant's codes hash   CodeKeys.codes: code -> "<batch>|<state>|<user>|<coupon>"
-- KEYS[2] the batch's hash          CodeKeys.batch(id): reads state, count; sets done, updated_at
-- KEYS[3] the batch's code list     CodeKeys.batch_codes(id): its length is the progress
-- KEYS[4] the batch's lease         CodeKeys.lease(id)
-- ARGV[1] the batch id
-- ARGV[2] the caller's lease token
-- ARGV[3] the lease's new time to live, ms (each chunk renews it)
-- ARGV[4] now, epoch ms
-- ARGV[5] the codes, canonical (domain.codes.normalize), joined by newlines: one
--         argument rather than thousands, which clients pack and Redis parses slowly
--
-- Returns {status, done, taken...}: status 'ok' (written), 'lease' (another
-- runner holds the batch) or the batch's state when it is not running
-- ('missing' for no batch); done = the codes the batch holds now.

local done = redis.call('LLEN', KEYS[3])
if redis.call('GET', KEYS[4]) ~= ARGV[2] then
  return {'lease', done}
end
local state = redis.call('HGET', KEYS[2], 'state')
if state ~= 'running' then
  return {state or 'missing', done}
end
redis.call('PEXPIRE', KEYS[4], ARGV[3])

local count = tonumber(redis.call('HGET', KEYS[2], 'count'))
local value = ARGV[1] .. '|available||'
local mine = ARGV[1] .. '|'
local reply = {'ok', 0}
local new = {}
-- New codes go to the list PUSH_EVERY at a time: one RPUSH per code costs as
-- much as the HSETNX that decides it.
local PUSH_EVERY = 1000
local function push()
  if #new > 0 then
    redis.call('RPUSH', KEYS[3], unpack(new))
    new = {}
  end
end
for code in string.gmatch(ARGV[5], '[^\n]+') do
  if done >= count then
    break
  end
  if redis.call('HSETNX', KEYS[1], code, value) == 1 then
    new[#new + 1] = code
    done = done + 1
    if #new == PUSH_EVERY then
      push()
    end
  elseif string.sub(redis.call('HGET', KEYS[1], code), 1, #mine) ~= mine then
    reply[#reply + 1] = code
  end
end
push()
reply[2] = done
redis.call('HSET', KEYS[2], 'done', done, 'updated_at', ARGV[4])
return reply
