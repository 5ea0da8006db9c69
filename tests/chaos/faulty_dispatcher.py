"""A dispatcher whose Ray actor is deliberately broken: test code only, so that
the chaos harness can be shown to catch a broken invariant.

Run as ``python tests/chaos/faulty_dispatcher.py <fault>`` in place of
``python -m carnival dispatcher`` (``ChaosConfig.commands``). The faulty host
class is defined here, in ``__main__``, so Ray ships it to the actor worker by
value; production code carries no fault switch.

Faults:
- ``unlimited-stock``: claims are decided as if no template had a stock limit,
  and the commit is told so too (the actor's check and the ledger's repeat of
  it both skipped): coupons are issued past the stock.
- ``skip-commit``: claim batches are answered as committed without ever reaching
  the ledger: shoppers get coupons the ledger never heard of.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from typing import Any

import ray

import actors.owner_actor as owner_actor
from actors.dispatcher import main
from actors.host import OwnerHost
from domain.road import CLAIM
from ledger.claims import ClaimLedger, LoadedTemplate
from runtime.settings import get_settings

FAULTS = ("unlimited-stock", "skip-commit")


def _claims_ledger(host: OwnerHost) -> ClaimLedger:
    return host._kinds[CLAIM.name]._ledger  # type: ignore[attr-defined]


class UnlimitedStockHost(OwnerHost):
    def __init__(self, redis_url: str, seed: int | None = None) -> None:
        super().__init__(redis_url, seed)
        ledger = _claims_ledger(self)
        real_load = ledger.load

        async def load(tenant_id: str, template_id: str) -> LoadedTemplate | None:
            loaded = await real_load(tenant_id, template_id)
            if loaded is None:
                return None
            limits = loaded.template.limits.model_copy(update={"stock": None})
            template = loaded.template.model_copy(update={"limits": limits})
            return dataclasses.replace(loaded, template=template, left=None)

        ledger.load = load  # type: ignore[method-assign]


class SkipCommitHost(OwnerHost):
    def __init__(self, redis_url: str, seed: int | None = None) -> None:
        super().__init__(redis_url, seed)

        def commit(*args: Any, **kwargs: Any) -> asyncio.Future[list[bytes]]:
            accepted: asyncio.Future[list[bytes]] = asyncio.get_running_loop().create_future()
            accepted.set_result([b"ok", b"0"])
            return accepted

        _claims_ledger(self).commit = commit  # type: ignore[method-assign]


if __name__ == "__main__":
    fault = sys.argv[1] if len(sys.argv) > 1 else ""
    if fault not in FAULTS:
        sys.exit(f"usage: faulty_dispatcher.py {{{','.join(FAULTS)}}}")
    host = UnlimitedStockHost if fault == "unlimited-stock" else SkipCommitHost
    owner_actor.OwnerActor = ray.remote(host)  # owner_actor() looks it up when called
    main(get_settings())
