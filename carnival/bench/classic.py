"""The classic draw path: one Redis Lua script per draw, as per-request seckill designs do."""

from __future__ import annotations

import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from carnival.bench.fixtures import Advance, PathResult
from domain.activity import Activity
from domain.draw import WeightTable
from ledger.keys import ActivityKeys

CLASSIC_THREADS = 8

# -- 4. classic --------------------------------------------------------------------

# One request, one script: the shape of big-market / seckill stock deduction.
# Idempotent by request key, per-user limit, stock DECR else fallback, outcome record.
CLASSIC_LUA = """
local done = redis.call('HGET', KEYS[3], ARGV[5])
if done then return done end
local limit = tonumber(ARGV[4])
local used = tonumber(redis.call('HGET', KEYS[2], ARGV[3]) or '0')
if limit > 0 and used >= limit then return 'rejected:user_limit_reached' end
local prize = ARGV[1]
if ARGV[6] == '1' then
  if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then
    redis.call('DECR', KEYS[1])
  else
    prize = ARGV[2]
  end
end
redis.call('HINCRBY', KEYS[2], ARGV[3], 1)
redis.call('HSET', KEYS[3], ARGV[5], prize)
return prize
"""
# A limit that is checked on every request but never reached in the bench.
CLASSIC_USER_LIMIT = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ClassicKeys:
    base: str  # shares the ledger's hash tag, so it would run on Redis Cluster too

    def stock(self, prize_id: str) -> str:
        return f"{self.base}:classic:stock:{prize_id}"

    @property
    def users(self) -> str:
        return f"{self.base}:classic:users"

    @property
    def outcomes(self) -> str:
        return f"{self.base}:classic:outcomes"


def run_classic(
    redis_url: str,
    activity: Activity,
    users: list[str],
    draws: int,
    seed: int,
    advance: Advance,
) -> PathResult:
    import redis

    keys = ClassicKeys(ActivityKeys(activity.tenant_id, activity.id).base)
    fallback = activity.fallback_prize_id or ""
    stocked = {p.id for p in activity.prizes if p.stock is not None}
    table = WeightTable(list(activity.prizes), [p.weight for p in activity.prizes])
    client = redis.Redis.from_url(redis_url, max_connections=CLASSIC_THREADS + 2)
    try:
        client.mset({keys.stock(p.id): p.stock for p in activity.prizes if p.stock is not None})
        sha = client.script_load(CLASSIC_LUA)

        def one_range(start: int, count: int, rng: random.Random) -> None:
            n_users = len(users)
            for i in range(start, start + count):
                user = users[i % n_users]
                # The prize is drawn in the app before the call, as those systems do.
                prize = table.pick(rng).id
                client.evalsha(
                    sha,
                    3,
                    keys.stock(prize),
                    keys.users,
                    keys.outcomes,
                    prize,
                    fallback,
                    user,
                    CLASSIC_USER_LIMIT,
                    f"{user}:c{i}",
                    "1" if prize in stocked else "0",
                )
                if (i - start) % 100 == 99:
                    advance(100)

        # Sequential: one app thread, one connection.
        began = time.perf_counter()
        one_range(0, draws, random.Random(seed))
        sequential = time.perf_counter() - began
        advance(draws % 100)

        # Threaded: 8 threads share a connection pool, to be fair to the classic
        # design (its app servers run many request threads).
        shares = [
            draws // CLASSIC_THREADS + (t < draws % CLASSIC_THREADS) for t in range(CLASSIC_THREADS)
        ]
        starts = [draws + sum(shares[:t]) for t in range(CLASSIC_THREADS)]
        began = time.perf_counter()
        with ThreadPoolExecutor(CLASSIC_THREADS, thread_name_prefix="classic") as pool:
            futures = [
                pool.submit(one_range, s, n, random.Random(seed + 1 + t))
                for t, (s, n) in enumerate(zip(starts, shares, strict=True))
            ]
            for future in futures:
                future.result()
        threaded = time.perf_counter() - began
        advance(sum(n % 100 for n in shares))
        recorded = int(client.hlen(keys.outcomes))
    finally:
        client.close()
    best = "sequential" if sequential <= threaded else f"threads_{CLASSIC_THREADS}"
    detail = {
        "sequential_draws_per_s": draws / sequential,
        f"threads_{CLASSIC_THREADS}_draws_per_s": draws / threaded,
        "best": best,
        "recorded": recorded,
    }
    return PathResult("classic", draws, min(sequential, threaded), detail)
