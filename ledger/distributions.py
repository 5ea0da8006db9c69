"""Bulk distribution jobs in the ledger: the job, its accepted lines, its report
and the lease of the runner working on it (``api/distribution_jobs.py``).

A job's progress (``done``), counters and report move together in one script
(``_ADVANCE``), and only for the runner holding the lease while the job still
runs, so a chunk is recorded once whatever crashes, and a cancel is never
overwritten by a runner.
"""

from __future__ import annotations

from dataclasses import asdict

import orjson
import redis.asyncio as aioredis

from domain.distributions import Distribution, DistributionState, LineRejection, ParsedUsers
from ledger.keys import (
    UNFINISHED_DISTRIBUTIONS,
    DistributionKeys,
    TemplateKeys,
    distributions_key,
)

LINES_PER_PUSH = 10_000

# KEYS: 1 meta, 2 report, 3 lease. ARGV: 1 token, 2 lease ttl ms, 3 the job as it
# is to be stored, then the report's new entries. Refuses ('lease' / the current
# state) unless the caller holds the lease and the stored job is running.
_ADVANCE = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 'lease' end
local state = cjson.decode(redis.call('GET', KEYS[1]))['state']
if state ~= 'running' then return state end
for i = 4, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('SET', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return 'ok'
"""
# KEYS: 1 meta. ARGV: 1 the new state, 2 finished_at ('' to leave it), then the
# states it may move from. Only the state moves (a runner's progress recorded
# meanwhile stays). Returns 'ok' or the current state.
_MOVE = """
local job = cjson.decode(redis.call('GET', KEYS[1]))
for i = 3, #ARGV do
  if job['state'] == ARGV[i] then
    job['state'] = ARGV[1]
    if ARGV[2] ~= '' then job['finished_at'] = tonumber(ARGV[2]) end
    redis.call('SET', KEYS[1], cjson.encode(job))
    return 'ok'
  end
end
return job['state']
"""


def _entry(rejection: LineRejection) -> bytes:
    return orjson.dumps(asdict(rejection))


class DistributionStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._advance = client.register_script(_ADVANCE)
        self._move = client.register_script(_MOVE)

    async def create(self, job: Distribution, parsed: ParsedUsers) -> None:
        """The job, its lines and the parser's rejections, in one transaction."""
        keys = DistributionKeys(job.tenant_id, job.id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(keys.meta, job.model_dump_json())
        for i in range(0, len(parsed.accepted), LINES_PER_PUSH):
            chunk = parsed.accepted[i : i + LINES_PER_PUSH]
            pipe.rpush(keys.lines, *(f"{line}\t{user}" for line, user in chunk))
        for i in range(0, len(parsed.rejected), LINES_PER_PUSH):
            pipe.rpush(keys.report, *map(_entry, parsed.rejected[i : i + LINES_PER_PUSH]))
        pipe.sadd(distributions_key(job.tenant_id), job.id)
        await pipe.execute()
        # A global index (not in the tenant's slot): every runner scans it.
        await self.redis.sadd(UNFINISHED_DISTRIBUTIONS, f"{job.tenant_id}\t{job.id}")

    async def job(self, tenant_id: str, job_id: str) -> Distribution | None:
        raw = await self.redis.get(DistributionKeys(tenant_id, job_id).meta)
        return Distribution.model_validate_json(raw) if raw else None

    async def jobs(self, tenant_id: str) -> list[Distribution]:
        ids = sorted(m.decode() for m in await self.redis.smembers(distributions_key(tenant_id)))
        if not ids:
            return []
        raws = await self.redis.mget([DistributionKeys(tenant_id, i).meta for i in ids])
        return [Distribution.model_validate_json(r) for r in raws if r]

    async def unfinished(self) -> list[tuple[str, str]]:
        members = await self.redis.smembers(UNFINISHED_DISTRIBUTIONS)
        return sorted(tuple(m.decode().split("\t", 1)) for m in members)  # type: ignore[misc]

    async def forget(self, tenant_id: str, job_id: str) -> None:
        await self.redis.srem(UNFINISHED_DISTRIBUTIONS, f"{tenant_id}\t{job_id}")

    async def take(self, tenant_id: str, job_id: str, token: str, ttl_ms: int) -> bool:
        return bool(
            await self.redis.set(
                DistributionKeys(tenant_id, job_id).lease, token, nx=True, px=ttl_ms
            )
        )

    async def release(self, tenant_id: str, job_id: str, token: str) -> None:
        lease = DistributionKeys(tenant_id, job_id).lease
        if await self.redis.get(lease) == token.encode():
            await self.redis.delete(lease)

    async def lines(
        self, tenant_id: str, job_id: str, start: int, count: int
    ) -> list[tuple[int, str]]:
        raw = await self.redis.lrange(
            DistributionKeys(tenant_id, job_id).lines, start, start + count - 1
        )
        pairs = (entry.decode().split("\t", 1) for entry in raw)
        return [(int(line), user) for line, user in pairs]

    async def advance(
        self, job: Distribution, token: str, ttl_ms: int, report: list[LineRejection]
    ) -> str:
        """Record ``job`` (its new progress and counters) and its chunk's report
        entries; 'ok', 'lease' (another runner holds it) or the job's state."""
        keys = DistributionKeys(job.tenant_id, job.id)
        result = await self._advance(
            keys=[keys.meta, keys.report, keys.lease],
            args=[token, ttl_ms, job.model_dump_json(), *map(_entry, report)],
        )
        return result.decode() if isinstance(result, bytes) else str(result)

    async def move(
        self,
        tenant_id: str,
        job_id: str,
        to: DistributionState,
        finished_at: int | None,
        *from_states: DistributionState,
    ) -> str:
        """Move the stored job to ``to`` if its state is in ``from_states``; 'ok'
        or the state it is in."""
        result = await self._move(
            keys=[DistributionKeys(tenant_id, job_id).meta],
            args=[to, "" if finished_at is None else finished_at, *from_states],
        )
        return result.decode() if isinstance(result, bytes) else str(result)

    async def outcomes(
        self, tenant_id: str, template_id: str, request_keys: list[str]
    ) -> dict[str, dict]:
        """The outcomes the ledger holds among ``request_keys``."""
        raws = await self.redis.hmget(TemplateKeys(tenant_id, template_id).outcomes, request_keys)
        return {k: orjson.loads(r) for k, r in zip(request_keys, raws, strict=True) if r}

    async def report(self, tenant_id: str, job_id: str, start: int, count: int) -> list[dict]:
        raw = await self.redis.lrange(
            DistributionKeys(tenant_id, job_id).report, start, start + count - 1
        )
        return [orjson.loads(r) for r in raw]
