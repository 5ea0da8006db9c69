-- Points accounts: the part of every script that moves points (prefixed to the
-- scripts of the points, draw and claim kinds: one definition of how an
-- account is checked and written).
-- An account change is ACCOUNT_W arguments: user id, the account's JSON as the
-- actor read it ('' for none), its JSON after, the balance after, the soonest
-- expiry of its lots after ('' for none), and the ledger entries to append
-- (JSON lines, '\n'-separated; '' for none). One change per user and commit.
-- The account is decided on what the actor read: if anything moved it since
-- (another kind's commit, another batch), the commit is refused ('stale') and
-- decided again on a fresh read. The balance and the expiry schedule are
-- written with the account they derive from, never alone.
local ACCOUNT_W = 6

local function accounts_stale(accounts, at, m)
  for i = 0, m - 1 do
    local user = ARGV[at + i * ACCOUNT_W]
    if (redis.call('HGET', accounts, user) or '') ~= ARGV[at + i * ACCOUNT_W + 1] then
      return 'points:' .. user
    end
  end
  return nil
end

-- logs_from: the index in KEYS of the first change's log list (one per change).
local function accounts_write(accounts, balances, expiries, logs_from, at, m)
  for i = 0, m - 1 do
    local o = at + i * ACCOUNT_W
    local user = ARGV[o]
    redis.call('HSET', accounts, user, ARGV[o + 2])
    redis.call('HSET', balances, user, ARGV[o + 3])
    if ARGV[o + 4] == '' then
      redis.call('ZREM', expiries, user)
    else
      redis.call('ZADD', expiries, ARGV[o + 4], user)
    end
    local lines = {}
    for line in string.gmatch(ARGV[o + 5], '[^\n]+') do lines[#lines + 1] = line end
    if #lines > 0 then redis.call('RPUSH', KEYS[logs_from + i], unpack(lines)) end
  end
end

