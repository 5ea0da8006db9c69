"""The committer gives up on a ledger that stops answering, even after an idle spell."""

from __future__ import annotations

import asyncio

import hiredis
import pytest

from ledger import committer
from ledger.committer import Committer, Script


async def test_a_commit_after_an_idle_spell_fails_when_the_ledger_stops_answering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(committer, "REPLY_TIMEOUT_S", 0.2)
    answering = True
    received_after = asyncio.Event()

    async def ledger_that_goes_quiet(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        parser = hiredis.Reader()
        while data := await reader.read(65536):
            parser.feed(data)
            while (command := parser.gets()) is not False:
                if not answering:
                    received_after.set()
                elif command[0] == b"SCRIPT":
                    writer.write(b"+loaded\r\n")
                else:
                    writer.write(b":1\r\n")

    server = await asyncio.start_server(ledger_that_goes_quiet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ledger = Committer(f"redis://127.0.0.1:{port}/0")
    try:
        async with server:
            script = Script("return 1")
            assert await asyncio.wait_for(ledger.submit(script, [], []), 5) == 1
            await asyncio.sleep(0.5)  # idle for longer than the reply timeout: no failure
            answering = False
            late = ledger.submit(script, [], [])
            await asyncio.wait_for(received_after.wait(), 5)
            with pytest.raises(ConnectionError):
                await asyncio.wait_for(late, 5)
    finally:
        await ledger.close()
