"""A durable delay queue in Redis for work that leaves Carnival (webhook
deliveries, upstream channel issuances): records, when each is next due, and
an index per group for listing.

Every key of one outbox shares the hash tag ``{<name>}`` (one slot on Redis
Cluster), so each step is one atomic script:

* ``records``: hash, id -> the record's JSON;
* ``due``: sorted set, id -> epoch ms it is next worked on. A record stays in
  it until it is finished, so a process killed while working on it loses
  nothing: `take_due` leases what it takes, and the lease runs out;
* ``dead``: sorted set, id -> when it was given up on;
* ``by:<group>``: sorted set, id -> creation ms.

A record is changed only if it is still as read (`replace`): two workers, or a
worker and an operator, never overwrite each other's change unseen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import redis.asyncio as aioredis

from ledger.keys import PREFIX

Placement = Literal["due", "dead", "done"]

# A record is stored once whatever number of times it is enqueued.
_ENQUEUE = """
local n = 0
for i = 1, #ARGV / 3 do
  local id = ARGV[3 * i - 2]
  if redis.call('HSETNX', KEYS[1], id, ARGV[3 * i - 1]) == 1 then
    redis.call('ZADD', KEYS[2], ARGV[3 * i], id)
    redis.call('ZADD', KEYS[2 + i], ARGV[3 * i], id)
    n = n + 1
  end
end
return n
"""

# What is due, pushed back by the lease at once: another worker does not take it
# meanwhile, and one that dies holding it has it taken again afterwards.
_TAKE_DUE = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
"""

_REPLACE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
if ARGV[4] == 'due' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
elseif ARGV[4] == 'dead' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
else
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
if ARGV[6] then redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6]) end
return 1
"""


# Forgets finished records (neither due nor in flight: not in the due set) created
# before a time, with their index entries; what is still due is kept whatever its age.
_TRIM = """
local ids = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local n = 0
for _, id in ipairs(ids) do
  if not redis.call('ZSCORE', KEYS[2], id) then
    redis.call('HDEL', KEYS[1], id)
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZREM', KEYS[4], id)
    n = n + 1
  end
end
return {n, #ids}
"""


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    json: str
    due_at: int  # epoch ms: also its creation time in the group's index
    group: str


class Outbox:
    def __init__(self, client: aioredis.Redis, name: str) -> None:
        self.redis = client
        self.tag = f"{PREFIX}:{{{name}}}"
        self.records = f"{self.tag}:records"
        self.due = f"{self.tag}:due"
        self.dead = f"{self.tag}:dead"
        self._enqueue = client.register_script(_ENQUEUE)
        self._take_due = client.register_script(_TAKE_DUE)
        self._replace = client.register_script(_REPLACE)
        self._trim = client.register_script(_TRIM)

    def group(self, name: str) -> str:
        return f"{self.tag}:by:{name}"

    async def enqueue(self, entries: Sequence[Entry]) -> int:
        """Store each entry and make it due, unless stored before; returns how many were new."""
        if not entries:
            return 0
        keys = [self.records, self.due, *(self.group(e.group) for e in entries)]
        args: list[str | int] = []
        for e in entries:
            args += [e.id, e.json, e.due_at]
        return int(await self._enqueue(keys=keys, args=args))

    async def take_due(self, now_ms: int, lease_ms: int, limit: int) -> list[tuple[str, str]]:
        """(id, JSON) of what is due now, each leased for ``lease_ms``; the JSON is what
        `replace` checks against."""
        ids = await self._take_due(keys=[self.due], args=[now_ms, now_ms + lease_ms, limit])
        if not ids:
            return []
        taken = []
        for raw_id, raw in zip(ids, await self.redis.hmget(self.records, ids), strict=True):
            if raw is None:  # due without a record: nothing to do; drop it
                await self.redis.zrem(self.due, raw_id)
                continue
            taken.append((raw_id.decode(), raw.decode()))
        return taken

    async def replace(
        self,
        id_: str,
        read: str,
        json: str,
        place: Placement,
        at: int,
        also: tuple[str, str] | None = None,
    ) -> bool:
        """Store ``json`` if the record is still ``read``, then make it due at ``at``,
        dead since ``at``, or done; False if it changed meanwhile. ``also`` (a sorted
        set of this outbox's tag, a member) is added to, scored ``at``, in the same step."""
        keys = [self.records, self.due, self.dead]
        args: list[str | int] = [id_, read, json, place, at]
        if also is not None:
            keys.append(also[0])
            args.append(also[1])
        return bool(await self._replace(keys=keys, args=args))

    async def get(self, id_: str) -> str | None:
        raw = await self.redis.hget(self.records, id_)
        return raw.decode() if raw else None

    async def page(self, group: str, offset: int, count: int) -> list[str]:
        """Newest first, from the ``offset``-th of the group."""
        ids = await self.redis.zrevrange(self.group(group), offset, offset + count - 1)
        raws = await self.redis.hmget(self.records, ids) if ids else []
        return [raw.decode() for raw in raws if raw is not None]

    async def trim(self, created_before_ms: int, step: int = 500) -> int:
        """Forget every finished record created before ``created_before_ms``, group by
        group, ``step`` index entries per script call; returns how many were forgotten."""
        forgotten = 0
        async for raw in self.redis.scan_iter(match=self.group("*"), count=1000):
            group_key = raw.decode()
            while True:
                n, read = await self._trim(
                    keys=[self.records, self.due, self.dead, group_key],
                    args=[created_before_ms, step],
                )
                forgotten += int(n)
                if int(read) < step or int(n) == 0:
                    break
        return forgotten
