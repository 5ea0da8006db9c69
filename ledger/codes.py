"""The ledger of coupon codes and code batches (asynchronous: the api and its job runner).

Key names come from ``ledger.keys.CodeKeys``; pipelined writes from
``ledger.writes``; the writes that must compare before they write are the
scripts here: ``insert_codes.lua`` stores a chunk of a batch, the short ones
below move a batch's state, free a lease and change a code's state. Every read
is addressed through the caller's tenant, so another tenant's batch or code is
not even looked up.

A code's value in the tenant's hash is ``<batch id>|<state>|<user id>|<coupon id>``:
what a till's lookup needs in one ``HGET``, and no JSON to parse for each of a
million rows of an export.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import orjson
import redis.asyncio as aioredis

from domain.code_batches import BatchState, CodeBatch, from_states
from domain.codes import CodeState
from ledger import writes
from ledger.keys import CODE_JOBS, CodeKeys, TemplateKeys

INSERT_CODES = (Path(__file__).parent / "insert_codes.lua").read_text()

# KEYS[1] a batch's hash. ARGV[1] the states it may move from, comma-separated;
# ARGV[2..] field, value pairs to set (the new state among them). Returns the
# state before ('' for no batch): the move happened iff it is one of ARGV[1].
MOVE_BATCH = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
for allowed in string.gmatch(ARGV[1], '[^,]+') do
  if allowed == state then
    redis.call('HSET', KEYS[1], unpack(ARGV, 2))
    return state
  end
end
return state
"""

# KEYS[1] a lease. ARGV[1] the caller's token. Frees the lease only if the caller holds it.
RELEASE_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS[1] the tenant's codes hash. ARGV[1] a code, ARGV[2] its value as the
# caller read it, ARGV[3] the new value. 1 if set, 0 if the code changed since.
REPLACE_CODE = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
"""

SEP = "|"
# Batches and codes have no config versions; audit entries carry one all the same.
AUDIT_VERSION = 1


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """One code as the ledger holds it."""

    code: str
    batch_id: str
    state: CodeState
    user_id: str = ""  # whom it was assigned to (claimed into a wallet)
    coupon_id: str = ""  # the coupon that claim made

    def encode(self) -> str:
        return SEP.join((self.batch_id, self.state, self.user_id, self.coupon_id))

    @classmethod
    def decode(cls, code: str, raw: bytes) -> CodeRecord:
        batch_id, state, user_id, coupon_id = raw.decode().split(SEP)
        return cls(code, batch_id, cast(CodeState, state), user_id, coupon_id)


@dataclass(frozen=True, slots=True)
class Inserted:
    """What storing a chunk did (see insert_codes.lua)."""

    status: str  # 'ok', 'lease' (another runner holds the batch) or the batch's state
    done: int  # codes the batch holds now
    taken: list[str]  # codes the tenant already held in another batch

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _batch(row: dict[bytes, bytes]) -> CodeBatch | None:
    if not row:
        return None
    fields: dict[str, object] = {k.decode(): v.decode() for k, v in row.items()}
    # The inverse of writes.code_batch_fields: unset fields are stored empty.
    fields["pattern"] = orjson.loads(cast(str, fields["pattern"])) if fields["pattern"] else None
    fields["finished_at"] = fields["finished_at"] or None
    return CodeBatch.model_validate(fields)


class CodeStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self._insert = client.register_script(INSERT_CODES)
        self._move = client.register_script(MOVE_BATCH)
        self._release = client.register_script(RELEASE_LEASE)
        self._replace = client.register_script(REPLACE_CODE)

    # -- batches ----------------------------------------------------------------
    async def template_exists(self, tenant_id: str, template_id: str) -> bool:
        return bool(await self.redis.exists(TemplateKeys(tenant_id, template_id).config))

    async def create_batch(
        self, batch: CodeBatch, lease: tuple[str, int] | None = None, action: str = "created"
    ) -> None:
        """Record a new batch, known to the job runners first (writes.add_code_job),
        then the batch, its index entry, the audit entry and, for a caller that
        works on the batch itself (an import), its lease (token, ttl ms), at once."""
        pipe = self.redis.pipeline(transaction=False)
        writes.add_code_job(pipe, batch.tenant_id, batch.id)
        await pipe.execute()
        pipe = self.redis.pipeline(transaction=True)
        writes.create_code_batch(pipe, batch)
        if lease is not None:
            token, ttl_ms = lease
            pipe.set(CodeKeys(batch.tenant_id).lease(batch.id), token, px=ttl_ms)
        writes.audit(
            pipe, batch.tenant_id, batch.created_by, f"code_batch.{action}", batch.id, AUDIT_VERSION
        )
        await pipe.execute()

    async def batch(self, tenant_id: str, batch_id: str) -> CodeBatch | None:
        return _batch(await self.redis.hgetall(CodeKeys(tenant_id).batch(batch_id)))

    async def batches(self, tenant_id: str, limit: int) -> list[CodeBatch]:
        """The tenant's latest `limit` batches, newest first."""
        keys = CodeKeys(tenant_id)
        ids = await self.redis.zrevrange(keys.batches, 0, limit - 1)
        pipe = self.redis.pipeline(transaction=False)
        for batch_id in ids:
            pipe.hgetall(keys.batch(batch_id.decode()))
        rows = await pipe.execute() if ids else []
        return [b for b in map(_batch, rows) if b is not None]

    async def move(
        self, tenant_id: str, batch_id: str, to: BatchState, now_ms: int, **fields: str | int
    ) -> BatchState | None:
        """Move a batch to `to` (setting `fields` too) if the domain allows it from its
        state. Returns the state before (None: no such batch); the move happened iff
        that state is in `domain.code_batches.from_states(to)`."""
        values: list[str | int] = ["state", to, "updated_at", now_ms]
        for name, value in fields.items():
            values += [name, value]
        before = await self._move(
            keys=[CodeKeys(tenant_id).batch(batch_id)],
            args=[",".join(from_states(to)), *values],
        )
        return cast(BatchState, before.decode()) if before else None

    async def audit(self, tenant_id: str, who: str, action: str, subject: str) -> None:
        """An audit entry for a change already made (a cancel, a void): a crash in
        between loses the entry, never the change."""
        pipe = self.redis.pipeline(transaction=False)
        writes.audit(pipe, tenant_id, who, action, subject, AUDIT_VERSION)
        await pipe.execute()

    # -- jobs -------------------------------------------------------------------
    async def jobs(self) -> list[tuple[str, str]]:
        """(tenant id, batch id) of every batch whose job has not finished, any tenant."""
        jobs = []
        for member in await self.redis.smembers(CODE_JOBS):
            tenant_id, _, batch_id = member.decode().partition("/")
            jobs.append((tenant_id, batch_id))
        return sorted(jobs)

    async def forget_job(self, tenant_id: str, batch_id: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        writes.remove_code_job(pipe, tenant_id, batch_id)
        await pipe.execute()

    async def take(
        self, tenant_id: str, batch_id: str, token: str, ttl_ms: int, now_ms: int
    ) -> CodeBatch | None:
        """The batch, now running under the caller's lease; None when another runner
        holds it or it is not there to run (finished, or gone)."""
        lease = CodeKeys(tenant_id).lease(batch_id)
        if not await self.redis.set(lease, token, nx=True, px=ttl_ms):
            return None
        before = await self.move(tenant_id, batch_id, "running", now_ms)
        if before not in from_states("running"):
            await self.release(tenant_id, batch_id, token)
            return None
        return await self.batch(tenant_id, batch_id)

    async def release(self, tenant_id: str, batch_id: str, token: str) -> None:
        await self._release(keys=[CodeKeys(tenant_id).lease(batch_id)], args=[token])

    async def insert(
        self,
        tenant_id: str,
        batch_id: str,
        token: str,
        ttl_ms: int,
        now_ms: int,
        codes: Sequence[str],
    ) -> Inserted:
        """Store a chunk of canonical codes in the batch (see insert_codes.lua for the contract)."""
        keys = CodeKeys(tenant_id)
        reply = await self._insert(
            keys=[
                keys.codes,
                keys.batch(batch_id),
                keys.batch_codes(batch_id),
                keys.lease(batch_id),
            ],
            args=[batch_id, token, ttl_ms, now_ms, "\n".join(codes)],
        )
        status, done, *taken = reply
        return Inserted(status.decode(), int(done), [c.decode() for c in taken])

    # -- codes ------------------------------------------------------------------
    async def code(self, tenant_id: str, code: str) -> CodeRecord | None:
        """The record of a canonical code (domain.codes.normalize), if the tenant has it."""
        raw = await self.redis.hget(CodeKeys(tenant_id).codes, code)
        return CodeRecord.decode(code, raw) if raw is not None else None

    async def replace_code(self, tenant_id: str, before: CodeRecord, after: CodeRecord) -> bool:
        """Write `after` if the code is still `before`; False when it changed since."""
        done = await self._replace(
            keys=[CodeKeys(tenant_id).codes], args=[before.code, before.encode(), after.encode()]
        )
        return bool(done)

    async def batch_records(
        self, tenant_id: str, batch_id: str, chunk: int
    ) -> AsyncIterator[list[CodeRecord]]:
        """The batch's codes in the order they were stored, `chunk` at a time."""
        keys = CodeKeys(tenant_id)
        listed, start = keys.batch_codes(batch_id), 0
        while codes := await self.redis.lrange(listed, start, start + chunk - 1):
            values = await self.redis.hmget(keys.codes, codes)
            # A listed code is always in the hash: insert_codes.lua writes both or neither.
            yield [
                CodeRecord.decode(code.decode(), value)
                for code, value in zip(codes, values, strict=True)
            ]
            start += len(codes)
