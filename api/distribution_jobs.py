"""Bulk distribution jobs: each accepted line of an upload sent on the road as a
grant, chunk by chunk, by the api process that holds the job's lease.

Why here and like this: a grant must take the road every issuance takes (the
template's actor decides it in a batch, the ledger commits it with the stock),
and the api is the road's entrance. The job is resumable because nothing it
does is counted twice:

- every line is one request key (``<user>:grant-<job>``), so a line sent again
  (a resumed chunk, a re-delivered record) gets the outcome the ledger already
  holds: nobody is served twice;
- a chunk's progress, counters and report are recorded in one ledger script,
  after every line of the chunk has its outcome: nobody is skipped;
- one runner at a time: the holder of the job's lease, renewed by each chunk;
  after a runner dies (SIGKILL included) its lease expires and any api's sweep
  takes the job over from its recorded progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import redis.exceptions
from aiokafka.errors import KafkaError

from api.road import Road
from domain.claims import REJECT_NOT_RUNNING, REJECT_SOLD_OUT, REJECT_UNKNOWN_TEMPLATE
from domain.distributions import Distribution, LineRejection, grant_request_id
from domain.events import now_ms, request_key
from domain.road import CLAIM
from ledger.distributions import DistributionStore

log = logging.getLogger("carnival.api.distribution_jobs")

LEASE_TTL_S = 15.0
SWEEP_EVERY_S = 5.0
STOP_GRACE_S = 5.0
CHUNK_LINES = 5_000
# Checks of the ledger for a chunk's outcomes; a chunk still undecided after
# RESEND_AFTER_S is sent again (harmless: its requests are idempotent).
OUTCOME_POLL_S = 0.05
RESEND_AFTER_S = 10.0
MAX_JOBS = 2

_MESSAGES = {
    REJECT_SOLD_OUT: "the template ran out of stock before this line was issued",
    REJECT_NOT_RUNNING: "the template was not running (draft or ended) when this line came up",
    REJECT_UNKNOWN_TEMPLATE: "the template does not exist",
}
_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, KafkaError)


class DistributionJobs:
    def __init__(
        self,
        store: DistributionStore,
        road: Road,
        *,
        lease_ttl_s: float = LEASE_TTL_S,
        sweep_every_s: float = SWEEP_EVERY_S,
        chunk_lines: int = CHUNK_LINES,
    ) -> None:
        self.store = store
        self.road = road
        self.lease_ttl_ms = int(lease_ttl_s * 1000)
        self.sweep_every_s = sweep_every_s
        self.chunk_lines = chunk_lines
        self.token = uuid.uuid4().hex
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        # Checked by the sweep loop: a cancel alone may not stop it, because a
        # Redis command cancelled mid-flight can surface as a redis error that
        # the loop treats as transient (seen: stop() then waited forever).
        self._stopping = False

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="distribution-jobs")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        held = list(self._tasks)  # their tasks leave the dict as they end
        running = list(self._tasks.values())
        # A job sees the flag between two chunks and returns; its last step (a
        # batch's state and its job entry) is not cut in half by a cancel. One
        # stuck past the grace (the ledger or Kafka unreachable) is cancelled.
        late = set()
        if running:
            _, late = await asyncio.wait(running, timeout=STOP_GRACE_S)
        tasks = [t for t in (self._sweeper, *late) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for tenant_id, job_id in held:  # another runner may resume at once
            with contextlib.suppress(*_TRANSIENT):
                await self.store.release(tenant_id, job_id, self.token)

    def wake(self) -> None:
        self._wake.set()

    async def _sweep_forever(self) -> None:
        while not self._stopping:
            try:
                await self.sweep()
            except _TRANSIENT as exc:
                log.warning("distribution jobs: ledger unreachable (%s)", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.sweep_every_s)
            self._wake.clear()

    async def sweep(self) -> None:
        """Take every unfinished job no live runner holds (up to MAX_JOBS)."""
        for tenant_id, job_id in await self.store.unfinished():
            if self._stopping:  # no new job once stop() collected the running ones
                return
            key = (tenant_id, job_id)
            if key in self._tasks or len(self._tasks) >= MAX_JOBS:
                continue
            job = await self.store.job(tenant_id, job_id)
            if job is None or job.state not in ("queued", "running"):
                await self.store.forget(tenant_id, job_id)
                continue
            if not await self.store.take(tenant_id, job_id, self.token, self.lease_ttl_ms):
                continue  # another runner holds it
            task = asyncio.create_task(self._run(job), name=f"distribution {tenant_id}/{job_id}")
            self._tasks[key] = task
            task.add_done_callback(lambda _, key=key: self._tasks.pop(key, None))

    async def _run(self, job: Distribution) -> None:
        try:
            if job.state == "queued":
                if await self.store.move(job.tenant_id, job.id, "running", None, "queued") != "ok":
                    return await self._forget(job)
                job = job.model_copy(update={"state": "running"})
            while job.done < job.accepted:
                if self._stopping:  # resumed from its recorded progress, by the next runner
                    return None
                advanced = await self._chunk(job)
                if advanced is None:
                    return await self._forget(job)
                job = advanced
            await self.store.move(job.tenant_id, job.id, "done", now_ms(), "running")
            await self._forget(job)
        except _TRANSIENT as exc:
            # The lease runs out and a sweep (this runner's or another's) resumes it.
            log.warning("distribution %s/%s paused: %s", job.tenant_id, job.id, exc)
        except Exception:
            log.exception("distribution %s/%s failed", job.tenant_id, job.id)
            with contextlib.suppress(*_TRANSIENT):
                await self.store.move(job.tenant_id, job.id, "failed", now_ms(), "running")
                await self._forget(job)

    async def _chunk(self, job: Distribution) -> Distribution | None:
        """Send the next chunk, wait for all its outcomes, record it; None when the
        job stopped (cancelled, or another runner holds it)."""
        lines = await self.store.lines(job.tenant_id, job.id, job.done, self.chunk_lines)
        request_id = grant_request_id(job.id)
        rows = [(user, request_id, 0, {"grant": job.id}) for _, user in lines]
        keys = [request_key(user, request_id) for _, user in lines]
        outcomes = await self._decide(job, rows, keys)
        report = [
            LineRejection(line, user, o["reason"], _MESSAGES.get(o["reason"], o["reason"]))
            for (line, user), o in zip(lines, outcomes, strict=True)
            if o["status"] != "issued"
        ]
        advanced = job.model_copy(
            update={
                "done": job.done + len(lines),
                "issued": job.issued + len(lines) - len(report),
                "refused": job.refused + len(report),
            }
        )
        status = await self.store.advance(advanced, self.token, self.lease_ttl_ms, report)
        if status != "ok":
            log.info("distribution %s/%s stops: %s", job.tenant_id, job.id, status)
            return None
        return advanced

    async def _decide(self, job: Distribution, rows: list, keys: list[str]) -> list[dict]:
        """Every line's outcome from the ledger, sending (again) while some are missing."""
        found: dict[str, dict] = {}
        while True:
            missing = [(row, key) for row, key in zip(rows, keys, strict=True) if key not in found]
            await self.road.submit(CLAIM, job.tenant_id, job.template_id, [r for r, _ in missing])
            deadline = asyncio.get_running_loop().time() + RESEND_AFTER_S
            while asyncio.get_running_loop().time() < deadline:
                wanted = [k for k in keys if k not in found]
                found.update(await self.store.outcomes(job.tenant_id, job.template_id, wanted))
                if len(found) == len(keys):
                    return [found[k] for k in keys]
                await asyncio.sleep(OUTCOME_POLL_S)

    async def _forget(self, job: Distribution) -> None:
        await self.store.forget(job.tenant_id, job.id)
        await self.store.release(job.tenant_id, job.id, self.token)
