"""Ledger scripts run in the order they were decided, written as they are submitted.

The actor decides a batch without awaiting and submits its commit in the same
step: ``submit`` packs the script call (hiredis, in C) and writes it to the
socket at once, so Redis runs batch N's commit while the actor decides batch
N+1, and submission order is execution order. One reader task parses the
replies in order and resolves each submission's future.

A pool's commits form a chain (each names the head it was decided on), so a
commit refused or lost makes every commit decided on top of it refused too:
this module needs no rollback, only order.

Contract for a future: its result is the script's reply (an error reply is an
exception); a connection failure fails every future in flight with
``ConnectionError`` and says nothing about whether those scripts ran (the
caller reloads from the ledger, whose chain head tells what happened).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import hiredis
from redis.exceptions import NoScriptError, ResponseError

log = logging.getLogger("carnival.ledger.committer")

CONNECT_TIMEOUT_S = 5.0
# With commits in flight and no reply for this long (checked every REPLY_TIMEOUT_S,
# so at most twice this after a submission), the connection is given up.
REPLY_TIMEOUT_S = 10.0
READ_CHUNK_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class Script:
    source: str
    sha: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


@dataclass(slots=True)
class _Job:
    script: Script
    packed: bytes
    future: asyncio.Future[Any]


class Committer:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._password = unquote(parts.password) if parts.password else None
        self._username = unquote(parts.username) if parts.username else None
        self._db = int(parts.path.strip("/") or 0)
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._backlog: list[_Job] = []  # submitted while connecting
        self._in_flight: collections.deque[_Job | None] = collections.deque()
        self._loaded: set[str] = set()

    def submit(self, script: Script, keys: list[str], args: list[Any]) -> asyncio.Future[Any]:
        """Queue a script run now (synchronous: callers rely on submission order)."""
        packed = hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys, *args))
        job = _Job(script, packed, asyncio.get_running_loop().create_future())
        if self._writer is None or self._writer.is_closing():
            self._backlog.append(job)
            if self._connecting is None or self._connecting.done():
                self._connecting = asyncio.ensure_future(self._connect())
        else:
            self._write(job)
        return job.future

    async def close(self) -> None:
        for task in (self._connecting, self._reader_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._writer is not None:
            self._writer.close()
        self._fail(ConnectionError("the committer was closed"))

    def _write(self, job: _Job) -> None:
        assert self._writer is not None
        if job.script.sha not in self._loaded:
            # Loaded on this connection before its first use (a restarted Redis has
            # no scripts); its reply is skipped by the reader (None in the queue).
            self._loaded.add(job.script.sha)
            self._writer.write(hiredis.pack_command(("SCRIPT", "LOAD", job.script.source)))
            self._in_flight.append(None)
        self._writer.write(job.packed)
        self._in_flight.append(job)

    async def _connect(self) -> None:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(self._host, self._port), CONNECT_TIMEOUT_S
            )
            parser = hiredis.Reader()
            for command in self._handshake():
                writer.write(hiredis.pack_command(command))
                reply = await self._read_one(reader, parser)
                if isinstance(reply, hiredis.ReplyError):
                    raise ConnectionError(f"redis refused {command[0]}: {reply}")
        except Exception as exc:
            backlog, self._backlog = self._backlog, []
            for job in backlog:
                if not job.future.done():
                    job.future.set_exception(ConnectionError(f"cannot reach the ledger: {exc}"))
            return
        self._writer, self._loaded = writer, set()
        self._reader_task = asyncio.ensure_future(self._read(reader, parser))
        backlog, self._backlog = self._backlog, []
        for job in backlog:
            self._write(job)

    def _handshake(self) -> list[tuple[str, ...]]:
        commands: list[tuple[str, ...]] = []
        if self._password is not None:
            user = (self._username,) if self._username else ()
            commands.append(("AUTH", *user, self._password))
        if self._db:
            commands.append(("SELECT", str(self._db)))
        return commands

    @staticmethod
    async def _read_one(reader: asyncio.StreamReader, parser: hiredis.Reader) -> Any:
        while (reply := parser.gets()) is False:
            data = await asyncio.wait_for(reader.read(READ_CHUNK_BYTES), CONNECT_TIMEOUT_S)
            if not data:
                raise ConnectionError("the ledger closed the connection")
            parser.feed(data)
        return reply

    async def _read(self, reader: asyncio.StreamReader, parser: hiredis.Reader) -> None:
        try:
            while True:
                # Always bounded: commits submitted during an idle wait are covered too.
                try:
                    data = await asyncio.wait_for(reader.read(READ_CHUNK_BYTES), REPLY_TIMEOUT_S)
                except TimeoutError:
                    if self._in_flight:
                        raise
                    continue
                if not data:
                    raise ConnectionError("the ledger closed the connection")
                parser.feed(data)
                while (reply := parser.gets()) is not False:
                    job = self._in_flight.popleft()
                    if job is not None:
                        self._resolve(job, reply)
        except (Exception, asyncio.CancelledError) as exc:
            if self._writer is not None:
                self._writer.close()
            self._writer = None
            self._fail(ConnectionError(f"the ledger connection failed: {exc!r}"))
            if isinstance(exc, asyncio.CancelledError):
                raise

    def _resolve(self, job: _Job, reply: Any) -> None:
        if job.future.done():  # the waiter was cancelled
            return
        if isinstance(reply, hiredis.ReplyError):
            message = str(reply)
            if message.startswith("NOSCRIPT"):  # flushed meanwhile: load it again next time
                self._loaded.discard(job.script.sha)
                job.future.set_exception(NoScriptError(message))
            else:
                job.future.set_exception(ResponseError(message))
        else:
            job.future.set_result(reply)

    def _fail(self, exc: Exception) -> None:
        in_flight, self._in_flight = self._in_flight, collections.deque()
        for job in in_flight:
            if job is not None and not job.future.done():
                job.future.set_exception(exc)
