"""The in-memory owner of many activities' prize pools.

A plain class so the decision path is testable without Ray; ``pool_actor``
wraps it as a Ray actor. Calls are sequential (one batch at a time), so the
pools need no locks, and no decision awaits anything.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any

import orjson

from actors.ledger import Entry, Ledger, LedgerStale
from domain.activity import Activity
from domain.draw import PoolState
from domain.events import DrawOutcome, DrawRequested, now_ms

log = logging.getLogger(__name__)

REJECT_UNKNOWN_ACTIVITY = "activity_not_found"
_MAX_ATTEMPTS = 3


class PoolHost:
    def __init__(self, redis_url: str, seed: int | None = None) -> None:
        self._ledger = Ledger.from_url(redis_url)
        self._pools: dict[str, PoolState] = {}
        self._config_raw: dict[str, bytes] = {}
        self._rng: random.Random = (
            random.Random(seed) if seed is not None else random.SystemRandom()
        )

    def pid(self) -> int:
        return os.getpid()

    def ping(self) -> bool:
        return True

    def decide_batch(self, batch_id: str, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """One outcome per request, in request order; a repeated request key
        (in this batch or decided earlier) gets the outcome already decided."""
        parsed = [DrawRequested.from_dict(r) for r in requests]
        by_activity: dict[str, list[DrawRequested]] = {}
        for req in parsed:
            by_activity.setdefault(req.activity_id, []).append(req)
        decided: dict[str, dict[str, Any]] = {}
        for activity_id, reqs in by_activity.items():
            decided.update(self._decide_activity(batch_id, activity_id, reqs))
        return [decided[req.event_id] for req in parsed]

    def _decide_activity(
        self, batch_id: str, activity_id: str, reqs: list[DrawRequested]
    ) -> dict[str, dict[str, Any]]:
        unique = list({r.event_id: r for r in reqs}.values())
        keys = [r.event_id for r in unique]
        for _ in range(_MAX_ATTEMPTS):
            config_raw, known = self._ledger.lookup(activity_id, keys)
            results = {k: orjson.loads(v) for k, v in zip(keys, known, strict=True) if v}
            pool = self._pool(activity_id, config_raw)
            entries: list[Entry] = []
            for req in unique:
                if req.event_id in results:
                    continue
                if pool is None or pool.activity.tenant_id != req.tenant_id:
                    # Not recorded: nothing of another tenant's (or nobody's) is touched.
                    results[req.event_id] = _unknown(req, batch_id)
                    continue
                outcome, entry = self._decide_one(pool, req, batch_id)
                results[req.event_id] = outcome
                entries.append(entry)
            if not entries or pool is None:
                return results
            try:
                self._ledger.commit(pool.activity, batch_id, entries)
                return results
            except LedgerStale as exc:
                log.warning(
                    "ledger refused batch %s for %s (%s); rebuilding", batch_id, activity_id, exc
                )
                self._forget(activity_id)
            except Exception:
                self._forget(activity_id)
                raise
        raise LedgerStale(f"batch {batch_id} for {activity_id} refused {_MAX_ATTEMPTS} times")

    def _decide_one(
        self, pool: PoolState, req: DrawRequested, batch_id: str
    ) -> tuple[dict[str, Any], Entry]:
        decision = pool.decide(req.user_id, now_ms(), self._rng)
        prize = decision.prize
        outcome = DrawOutcome(
            event_id=req.event_id,
            tenant_id=req.tenant_id,
            activity_id=req.activity_id,
            user_id=req.user_id,
            request_id=req.request_id,
            status=decision.status,  # type: ignore[arg-type]
            prize_id=prize.id if prize else "",
            prize_name=prize.name if prize else "",
            prize_kind=prize.kind if prize else "",
            reason=decision.reason,
            batch_id=batch_id,
        ).to_dict()
        entry = Entry(
            request_key=req.event_id,
            user_id=req.user_id if decision.counts_as_draw else "",
            prize_id=prize.id if prize and decision.consumes_stock else "",
            outcome=orjson.dumps(outcome),
        )
        return outcome, entry

    def _pool(self, activity_id: str, config_raw: bytes | None) -> PoolState | None:
        if config_raw is None:
            self._forget(activity_id)
            return None
        if self._config_raw.get(activity_id) != config_raw:
            # New or edited config (pause, resume, stock added): rebuild from the ledger.
            activity = Activity.model_validate_json(config_raw)
            self._pools[activity_id] = self._ledger.load_state(activity)
            self._config_raw[activity_id] = config_raw
        return self._pools[activity_id]

    def _forget(self, activity_id: str) -> None:
        self._pools.pop(activity_id, None)
        self._config_raw.pop(activity_id, None)


def _unknown(req: DrawRequested, batch_id: str) -> dict[str, Any]:
    return DrawOutcome(
        event_id=req.event_id,
        tenant_id=req.tenant_id,
        activity_id=req.activity_id,
        user_id=req.user_id,
        request_id=req.request_id,
        status="rejected",
        prize_id="",
        prize_name="",
        prize_kind="",
        reason=REJECT_UNKNOWN_ACTIVITY,
        batch_id=batch_id,
    ).to_dict()
