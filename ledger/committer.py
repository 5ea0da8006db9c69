"""Ledger scripts run in the order they were decided, pipelined.

The actor decides a batch without awaiting and submits its commit in the same
step, so submission order is decision order. One task sends whatever is queued
in one round trip on one connection, in that order, and resolves each future
with its script's reply; meanwhile the actor decides the next batch. A pool's
commits form a chain (each names the head it was decided on), so a commit
refused or lost makes every commit decided on top of it refused too: this
module needs no rollback, only order.

Contract for a future: its result is the script's reply; an exception means
the round trip failed and says nothing about whether the script ran (the
caller reloads from the ledger, whose chain head tells what happened).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

log = logging.getLogger("carnival.ledger.committer")

# Commits per round trip: bounds the latency one round adds to the first of them.
MAX_PER_ROUND = 32


@dataclass(frozen=True, slots=True)
class Script:
    source: str

    @property
    def sha(self) -> str:
        return hashlib.sha1(self.source.encode()).hexdigest()


@dataclass(slots=True)
class _Job:
    script: Script
    keys: list[str]
    args: list[Any]
    future: asyncio.Future[Any]


class Committer:
    def __init__(self, client: aioredis.Redis) -> None:
        self._redis = client
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def submit(self, script: Script, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Queue a script run (synchronous: callers rely on submission order)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(script, keys, args, future))
        return future

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            while len(jobs) < MAX_PER_ROUND and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
            try:
                await self._round(jobs)
            except Exception as exc:  # the connection failed: every job of the round is unknown
                log.warning("ledger round of %d commits failed: %s", len(jobs), exc)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)

    async def _round(self, jobs: list[_Job]) -> None:
        replies = await self._send(jobs)
        missing = [job for job, reply in zip(jobs, replies, strict=True) if _no_script(reply)]
        if missing:  # Redis restarted or flushed its scripts: none of these ran
            for script in {job.script.source: job.script for job in missing}.values():
                await self._redis.script_load(script.source)
            replies = [*replies]
            retried = iter(await self._send(missing))
            replies = [next(retried) if _no_script(r) else r for r in replies]
        for job, reply in zip(jobs, replies, strict=True):
            if job.future.done():  # the waiter was cancelled
                continue
            if isinstance(reply, Exception):
                job.future.set_exception(reply)
            else:
                job.future.set_result(reply)

    async def _send(self, jobs: list[_Job]) -> list[Any]:
        pipe = self._redis.pipeline(transaction=False)
        for job in jobs:
            pipe.evalsha(job.script.sha, len(job.keys), *job.keys, *job.args)
        return await pipe.execute(raise_on_error=False)


def _no_script(reply: Any) -> bool:
    return isinstance(reply, NoScriptError)
