"""Jobs that fill code batches: generation (in the background) and import (in the request).

They live in ``api/``, not ``ledger/``: a generation job is work of the api
process, started by its POST, resumed when it starts and stopped with it, while
the ledger package holds keys and writes, never loops. Not a service of its own
either: a million codes are seconds of CPU (see README), not worth a process to
supervise, and leases make several api workers (or instances) safe together.

Contract of the generation job:

- One runner at a time works on a batch: the holder of its lease
  (``CodeKeys.lease``), which each stored chunk renews and which expires
  `LEASE_TTL_S` after its runner died. The ledger refuses a chunk from anyone
  else, and any chunk once the batch is cancelled.
- Every runner scans the unfinished jobs every `SWEEP_EVERY_S` (and at once
  when it starts, or on `wake`) and takes a batch that is queued, or running
  with an expired lease: that is the resume, at api start-up and after any
  runner died, SIGKILL included.
- Progress is what the ledger holds (the batch's code list), recorded by each
  chunk's own write; a resumed job draws only the rest. A chunk written twice
  stores nothing twice, so nothing is duplicated or lost.
- A batch ends with exactly its count of codes, each unique in the tenant: a
  code the tenant already holds comes back from the ledger as taken and simply
  leaves room for the next draw.
- Generation runs in a worker thread, chunk by chunk, so the event loop keeps
  serving requests meanwhile.

An import's codes exist only in its request, so an import left behind by a dead
process cannot be resumed: the runner that finds it marks it failed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from dataclasses import dataclass

import redis.exceptions

from domain.code_batches import BatchState, CodeBatch
from domain.codes import CodePattern, ImportReport, Rejection, generate
from domain.events import now_ms
from ledger.codes import CodeStore

log = logging.getLogger("carnival.api.code_jobs")

LEASE_TTL_S = 15.0
SWEEP_EVERY_S = 5.0
STOP_GRACE_S = 5.0
CHUNK_CODES = 10_000
# Per api process: generation is CPU-bound and these machines have two cores;
# more batches wait as queued until a runner is free.
MAX_JOBS = 2
# Chunks in a row that stored nothing new: the pattern's codes are (nearly) all
# in the tenant already, and drawing on would never end.
MAX_BARREN_CHUNKS = 5
INTERRUPTED_IMPORT = (
    "the api stopped during the import; the codes stored so far are in the export: "
    "upload the file again into a new batch (codes already stored are reported "
    "as duplicate_in_tenant)"
)

_TRANSIENT = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _draw(pattern: CodePattern, count: int) -> list[str]:
    return list(generate(pattern, count))


class CodeJobs:
    """The generation jobs of one api process (see the module's contract)."""

    def __init__(
        self,
        store: CodeStore,
        *,
        lease_ttl_s: float = LEASE_TTL_S,
        sweep_every_s: float = SWEEP_EVERY_S,
        chunk_codes: int = CHUNK_CODES,
        max_jobs: int = MAX_JOBS,
    ) -> None:
        self.store = store
        self.lease_ttl_ms = int(lease_ttl_s * 1000)
        self.sweep_every_s = sweep_every_s
        self.chunk_codes = chunk_codes
        self.max_jobs = max_jobs
        self.token = uuid.uuid4().hex  # names this runner in the leases it holds
        self._tasks: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        # Checked by the sweep loop: a cancel alone may not stop it, because a
        # Redis command cancelled mid-flight can surface as a redis error that
        # the loop treats as transient (seen: stop() then waited forever).
        self._stopping = False

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="code-jobs")

    async def stop(self) -> None:
        """Stop every job between two chunks and free its lease, so another runner
        resumes it at once instead of after the lease's TTL."""
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
        for tenant_id, batch_id in held:
            await self.store.release(tenant_id, batch_id, self.token)

    def wake(self) -> None:
        """Look for work now (a batch was just created) rather than at the next sweep."""
        self._wake.set()

    async def _sweep_forever(self) -> None:
        while not self._stopping:
            try:
                await self.sweep()
            except _TRANSIENT as exc:
                log.warning(
                    "code jobs: ledger unreachable (%s); next sweep in %ss", exc, self.sweep_every_s
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.sweep_every_s)
            self._wake.clear()

    async def sweep(self) -> None:
        """Take every unfinished batch no live runner holds, up to `max_jobs` at once;
        forget the jobs of batches that are finished or gone."""
        for job in await self.store.jobs():
            if self._stopping:  # no new job once stop() collected the running ones
                return
            if job in self._tasks:
                continue
            if len(self._tasks) >= self.max_jobs:
                return
            tenant_id, batch_id = job
            batch = await self.store.take(
                tenant_id, batch_id, self.token, self.lease_ttl_ms, now_ms()
            )
            if batch is None:
                current = await self.store.batch(tenant_id, batch_id)
                if current is None or current.finished:
                    await self.store.forget_job(tenant_id, batch_id)
                continue  # else another runner holds it
            task = asyncio.create_task(self._run(batch), name=f"code-job {tenant_id}/{batch_id}")
            self._tasks[job] = task
            task.add_done_callback(lambda _, job=job: self._tasks.pop(job, None))

    async def _run(self, batch: CodeBatch) -> None:
        try:
            if batch.source == "imported":
                await self._end(batch, "failed", error=INTERRUPTED_IMPORT)
            elif await self._generate(batch):
                await self._end(batch, "done", finished_at=now_ms())
        except _TRANSIENT as exc:
            # The lease runs out and a sweep (this runner's or another's) resumes it.
            log.warning("code job %s/%s paused: %s", batch.tenant_id, batch.id, exc)
        except Exception as exc:
            log.error("code job %s/%s failed", batch.tenant_id, batch.id, exc_info=exc)
            await self._end(batch, "failed", error=f"internal error: {type(exc).__name__}")

    async def _generate(self, batch: CodeBatch) -> bool:
        """Store codes until the batch holds its count. False when the job must stop
        without finishing the batch (cancelled, taken over, or failed here)."""
        done, barren = batch.done, 0
        drawing = self._draw(batch, done)
        try:
            while drawing is not None:
                if self._stopping:  # resumed from what the ledger holds, by the next runner
                    return False
                codes = await drawing
                # The next chunk is drawn while Redis stores this one, sized as if
                # all of this one is stored; taken codes are made up afterwards.
                drawing = self._draw(batch, done + len(codes))
                stored = await self.store.insert(
                    batch.tenant_id, batch.id, self.token, self.lease_ttl_ms, now_ms(), codes
                )
                if not stored.ok:
                    log.info("code job %s/%s stops: %s", batch.tenant_id, batch.id, stored.status)
                    if stored.status != "lease":  # finished or gone: nothing more to do
                        await self._forget(batch)
                    return False
                barren = barren + 1 if stored.done == done else 0
                if barren >= MAX_BARREN_CHUNKS:
                    await self._end(
                        batch,
                        "failed",
                        error=f"{MAX_BARREN_CHUNKS} chunks in a row were all codes the tenant "
                        "already has: this pattern is used up; use a longer one",
                    )
                    return False
                done = stored.done
                if drawing is None:
                    drawing = self._draw(batch, done)
            return True
        finally:
            if drawing is not None:
                drawing.cancel()

    def _draw(self, batch: CodeBatch, stored: int) -> asyncio.Future[list[str]] | None:
        """The next chunk of codes, drawn in a worker thread; None when `stored` is all."""
        assert batch.pattern is not None  # every generated batch has one
        want = min(self.chunk_codes, batch.count - stored)
        if want <= 0:
            return None
        return asyncio.ensure_future(asyncio.to_thread(_draw, batch.pattern, want))

    async def _end(self, batch: CodeBatch, to: BatchState, **fields: str | int) -> None:
        await self.store.move(batch.tenant_id, batch.id, to, now_ms(), **fields)
        await self._forget(batch)

    async def _forget(self, batch: CodeBatch) -> None:
        await self.store.forget_job(batch.tenant_id, batch.id)
        await self.store.release(batch.tenant_id, batch.id, self.token)


# --- import ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Imported:
    batch: CodeBatch
    rejected: list[Rejection]  # the parser's and the ledger's, by line


class ImportInterrupted(RuntimeError):
    """The batch stopped taking codes mid-import (cancelled, or its lease ran out)."""

    def __init__(self, batch_id: str, status: str, stored: int) -> None:
        super().__init__(
            f"batch '{batch_id}' stopped taking codes during the import ({status}) after "
            f"{stored:,} codes; they are in its export"
        )
        self.status = status


async def import_codes(
    store: CodeStore,
    batch: CodeBatch,
    report: ImportReport,
    chunk_codes: int = CHUNK_CODES,
    lease_ttl_s: float = LEASE_TTL_S,
) -> Imported:
    """Store the accepted codes of `report` as the new batch `batch` (imported,
    running, count = the accepted codes) and finish it with the codes stored.
    A code the tenant already holds is rejected as ``duplicate_in_tenant`` with
    its line. Raises `ImportInterrupted` when the batch stops taking codes."""
    token, ttl_ms = uuid.uuid4().hex, int(lease_ttl_s * 1000)
    await store.create_batch(batch, lease=(token, ttl_ms), action="imported")
    taken: list[Rejection] = []
    done = 0
    try:
        for at in range(0, len(report.accepted), chunk_codes):
            codes = report.accepted[at : at + chunk_codes]
            stored = await store.insert(batch.tenant_id, batch.id, token, ttl_ms, now_ms(), codes)
            if not stored.ok:
                raise ImportInterrupted(batch.id, stored.status, stored.done)
            done = stored.done
            if stored.taken:
                lines = dict(zip(codes, report.accepted_lines[at : at + chunk_codes], strict=True))
                taken += [
                    Rejection(
                        lines[code],
                        code,
                        "duplicate_in_tenant",
                        f"your tenant already has this code: GET /v1/admin/codes/{code} "
                        "shows its batch",
                    )
                    for code in stored.taken
                ]
        rejected = sorted([*report.rejected, *taken], key=lambda r: r.line)
        await store.move(
            batch.tenant_id,
            batch.id,
            "done",
            now_ms(),
            count=done,
            rejected=len(rejected),
            finished_at=now_ms(),
        )
        await store.forget_job(batch.tenant_id, batch.id)
    finally:
        await store.release(batch.tenant_id, batch.id, token)
    finished = await store.batch(batch.tenant_id, batch.id)
    assert finished is not None  # batches are never deleted
    return Imported(finished, rejected)
