"""What an actor holds in memory per owner (a pool, a template), loaded once.

Both kinds keep an owner's state until the ledger refuses a batch decided on
it, then forget it and load it again. Loads are single-flight: however many
batches wait for an owner, the ledger is read once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Holdings(Generic[K, V]):
    def __init__(self, load: Callable[[K], Awaitable[V | None]]) -> None:
        self._load = load  # None: the ledger has no such owner
        self._held: dict[K, V] = {}
        self._loading: dict[K, asyncio.Future[V | None]] = {}

    async def get(self, key: K) -> V | None:
        held = self._held.get(key)
        if held is not None:
            return held
        loading = self._loading.get(key)
        if loading is None:  # one load per owner, however many batches wait for it
            loading = self._loading[key] = asyncio.ensure_future(self._fill(key))
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        return await asyncio.shield(loading)

    def forget(self, key: K, held: V) -> None:
        """Drop ``held`` unless a newer load already replaced it."""
        if self._held.get(key) is held:
            del self._held[key]

    async def _fill(self, key: K) -> V | None:
        loaded = await self._load(key)
        if loaded is None:
            self._held.pop(key, None)
        else:
            self._held[key] = loaded
        return loaded
