"""Code batches on a real Redis: a million-code job stores exactly a million unique
codes, and a mistyped character in any of 100,000 of them is caught; a job SIGKILLed
mid-way is resumed to exactly its count; a code the tenant already holds is drawn
again, never dropped; a chunk stores nothing twice and never past the count; a cancel
stops a job between two chunks; leases keep one runner per batch; an import left
behind by a dead process is failed, not resumed."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from api import code_jobs
from api.code_jobs import INTERRUPTED_IMPORT, CodeJobs
from domain.code_batches import BatchSource, BatchState, CodeBatch
from domain.codes import SAFE_CHARSET, CodePattern, generate, has_valid_check
from domain.coupons import CouponTemplate, Validity
from domain.events import now_ms
from ledger.admin import SyncLedger
from ledger.codes import CodeStore
from ledger.keys import CODE_JOBS, CodeKeys, code_job

MILLION = 1_000_000
MILLION_JOB_BUDGET_S = 60.0
SUBSTITUTION_SAMPLE = 100_000
FINISH_TIMEOUT_S = 120.0
KILLED_BATCH = 200_000
KILLED_CHUNK = 2_000
KILL_AFTER_CODES = 20_000
DEAD_LEASE_TTL_S = 2.0
FAST_SWEEP_S = 0.1

# The job runner of a process that will be SIGKILLed (argv: redis url).
RUNNER = f"""
import asyncio, sys
import redis.asyncio as aioredis
from api.code_jobs import CodeJobs
from ledger.codes import CodeStore

async def main():
    store = CodeStore(aioredis.Redis.from_url(sys.argv[1]))
    CodeJobs(store, lease_ttl_s={DEAD_LEASE_TTL_S}, sweep_every_s={FAST_SWEEP_S},
             chunk_codes={KILLED_CHUNK}).start()
    await asyncio.sleep(3600)

asyncio.run(main())
"""


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[CodeStore]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        yield CodeStore(client)
    finally:
        await client.aclose()


@pytest.fixture
def tenant(redis_url: str) -> Iterator[str]:
    """A fresh tenant with template 'tpl' (written through the ledger: its API is elsewhere)."""
    tenant_id = f"t{uuid.uuid4().hex[:10]}"
    ledger = SyncLedger.from_url(redis_url)
    ledger.create_tenant(tenant_id, "Codes")
    ledger.install_template(
        CouponTemplate(
            id="tpl",
            tenant_id=tenant_id,
            name="Five off",
            kind="fixed",
            amount_cents=500,
            validity=Validity(days_after_claim=30),
        )
    )
    ledger.close()
    yield tenant_id


async def _batch(
    store: CodeStore,
    tenant_id: str,
    count: int,
    source: BatchSource = "generated",
    state: BatchState = "queued",
    lease: tuple[str, int] | None = None,
) -> CodeBatch:
    now = now_ms()
    batch = CodeBatch(
        id=f"cb-{uuid.uuid4().hex[:12]}",
        tenant_id=tenant_id,
        template_id="tpl",
        source=source,
        pattern=CodePattern() if source == "generated" else None,
        count=count,
        state=state,
        created_by="test",
        created_at=now,
        updated_at=now,
    )
    await store.create_batch(batch, lease=lease)
    return batch


async def _finished(store: CodeStore, batch: CodeBatch, timeout: float) -> CodeBatch:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = await store.batch(batch.tenant_id, batch.id)
        assert current is not None
        if current.finished:
            return current
        await asyncio.sleep(0.05)
    raise AssertionError(f"batch {batch.id} not finished after {timeout}s: {current}")


async def _stored(store: CodeStore, batch: CodeBatch) -> list[str]:
    listed = await store.redis.lrange(CodeKeys(batch.tenant_id).batch_codes(batch.id), 0, -1)
    return [c.decode() for c in listed]


async def _owners(store: CodeStore, tenant_id: str, codes: list[str]) -> set[str]:
    values = await store.redis.hmget(CodeKeys(tenant_id).codes, codes)
    return {v.decode().split("|")[0] for v in values}


def _substitutions_missed(codes: list[str]) -> list[tuple[str, str]]:
    """The codes in which one mistyped character (any position, any other
    character of the charset) still passes the check character."""
    rng = random.Random(11)
    missed = []
    for code in codes:
        at = rng.randrange(len(code))
        typo = rng.choice(SAFE_CHARSET.replace(code[at], ""))
        mutated = code[:at] + typo + code[at + 1 :]
        if has_valid_check(mutated, CodePattern()):
            missed.append((code, mutated))
    return missed


async def test_a_million_code_job_stores_exactly_a_million_unique_codes(
    store: CodeStore, tenant: str
) -> None:
    batch = await _batch(store, tenant, MILLION)
    jobs = CodeJobs(store, sweep_every_s=FAST_SWEEP_S)
    started = time.perf_counter()
    jobs.start()
    try:
        finished = await _finished(store, batch, FINISH_TIMEOUT_S)
    finally:
        await jobs.stop()
    elapsed = time.perf_counter() - started
    codes = await _stored(store, batch)
    print(f"\n1,000,000 codes generated and stored by one job: {elapsed:.1f} s")
    assert (finished.state, finished.done, finished.count) == ("done", MILLION, MILLION)
    assert len(codes) == MILLION
    assert len(set(codes)) == MILLION
    assert await store.redis.hlen(CodeKeys(tenant).codes) == MILLION
    assert all(has_valid_check(code, CodePattern()) for code in codes)
    assert _substitutions_missed(random.Random(7).sample(codes, SUBSTITUTION_SAMPLE)) == []
    assert await _owners(store, tenant, codes[:: MILLION // 1000]) == {batch.id}
    assert not await store.redis.sismember(CODE_JOBS, code_job(tenant, batch.id))
    assert elapsed < MILLION_JOB_BUDGET_S


async def test_a_job_sigkilled_mid_way_resumes_to_exactly_its_count(
    store: CodeStore, tenant: str, redis_url: str
) -> None:
    batch = await _batch(store, tenant, KILLED_BATCH)
    runner = subprocess.Popen([sys.executable, "-c", RUNNER, redis_url], cwd=os.getcwd())
    try:
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        while (
            progress := await store.batch(tenant, batch.id)
        ) and progress.done < KILL_AFTER_CODES:
            assert time.monotonic() < deadline and runner.poll() is None
            await asyncio.sleep(0.01)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    before = await _stored(store, batch)
    killed = await store.batch(tenant, batch.id)
    assert killed is not None and killed.state == "running"
    assert 0 < killed.done == len(before) < KILLED_BATCH, "the job was not killed mid-way"

    jobs = CodeJobs(store, sweep_every_s=FAST_SWEEP_S)
    jobs.start()  # as the api does when it starts: takes the batch once the dead lease expires
    try:
        finished = await _finished(store, batch, FINISH_TIMEOUT_S)
    finally:
        await jobs.stop()
    codes = await _stored(store, batch)
    assert (finished.state, finished.done) == ("done", KILLED_BATCH)
    assert len(codes) == len(set(codes)) == KILLED_BATCH
    assert codes[: len(before)] == before  # nothing stored before the kill was lost
    assert await store.redis.hlen(CodeKeys(tenant).codes) == KILLED_BATCH


async def test_codes_the_tenant_already_holds_are_drawn_again_never_dropped(
    store: CodeStore, tenant: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await _batch(store, tenant, 5_000)
    jobs = CodeJobs(store, sweep_every_s=FAST_SWEEP_S, chunk_codes=1_000)
    jobs.start()
    try:
        await _finished(store, first, FINISH_TIMEOUT_S)
        held = (await _stored(store, first))[:300]
        draws: list[int] = []

        def drawing_held_codes_first(pattern: CodePattern, count: int) -> list[str]:
            draws.append(count)
            fresh = list(generate(pattern, count))
            return held + fresh[len(held) :] if len(draws) == 1 else fresh

        monkeypatch.setattr(code_jobs, "_draw", drawing_held_codes_first)
        second = await _batch(store, tenant, 1_000)
        jobs.wake()
        finished = await _finished(store, second, FINISH_TIMEOUT_S)
    finally:
        await jobs.stop()
    codes = await _stored(store, second)
    assert draws == [1_000, 300]  # the 300 taken codes left room for 300 more
    assert (finished.state, finished.done) == ("done", 1_000)
    assert len(set(codes)) == 1_000 and not set(codes) & set(held)
    assert await _owners(store, tenant, held) == {first.id}  # still the first batch's


async def test_a_chunk_stores_nothing_twice_never_past_the_count_and_only_for_the_lease(
    store: CodeStore, tenant: str
) -> None:
    batch = await _batch(store, tenant, 5)
    taken = await store.take(tenant, batch.id, "me", 10_000, now_ms())
    assert taken is not None and taken.state == "running"
    codes = list(generate(CodePattern(), 8))

    first = await store.insert(tenant, batch.id, "me", 10_000, now_ms(), codes[:3])
    again = await store.insert(tenant, batch.id, "me", 10_000, now_ms(), codes[:3])
    assert (first.status, first.done, first.taken) == ("ok", 3, [])
    assert (again.status, again.done, again.taken) == ("ok", 3, [])  # a retried chunk

    other = await store.insert(tenant, batch.id, "not-me", 10_000, now_ms(), codes[3:])
    assert (other.status, other.done) == ("lease", 3)
    assert await store.take(tenant, batch.id, "not-me", 10_000, now_ms()) is None

    full = await store.insert(tenant, batch.id, "me", 10_000, now_ms(), codes[3:])
    assert (full.status, full.done) == ("ok", 5)
    assert await _stored(store, batch) == codes[:5]
    assert await store.redis.hlen(CodeKeys(tenant).codes) == 5

    assert await store.move(tenant, batch.id, "cancelled", now_ms()) == "running"
    late = await store.insert(tenant, batch.id, "me", 10_000, now_ms(), codes[5:])
    assert (late.status, late.done) == ("cancelled", 5)
    assert await store.move(tenant, batch.id, "running", now_ms()) == "cancelled"  # refused
    assert (await store.batch(tenant, batch.id)).state == "cancelled"  # type: ignore[union-attr]


async def test_a_cancel_stops_a_running_job_between_two_chunks(
    store: CodeStore, tenant: str
) -> None:
    batch = await _batch(store, tenant, MILLION)
    jobs = CodeJobs(store, sweep_every_s=FAST_SWEEP_S)
    jobs.start()
    try:
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        while (progress := await store.batch(tenant, batch.id)) and progress.done == 0:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert await store.move(tenant, batch.id, "cancelled", now_ms()) == "running"
        while await store.redis.sismember(CODE_JOBS, code_job(tenant, batch.id)):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)  # the job saw the cancel at its next chunk
    finally:
        await jobs.stop()
    cancelled = await store.batch(tenant, batch.id)
    assert cancelled is not None and cancelled.state == "cancelled"
    assert 0 < cancelled.done < MILLION
    assert len(await _stored(store, batch)) == cancelled.done


async def test_an_import_left_behind_by_a_dead_process_is_failed_not_resumed(
    store: CodeStore, tenant: str
) -> None:
    batch = await _batch(store, tenant, 10, source="imported", state="running", lease=("dead", 200))
    jobs = CodeJobs(store, sweep_every_s=FAST_SWEEP_S)
    jobs.start()
    try:
        failed = await _finished(store, batch, FINISH_TIMEOUT_S)
    finally:
        await jobs.stop()
    assert (failed.state, failed.error, failed.done) == ("failed", INTERRUPTED_IMPORT, 0)
