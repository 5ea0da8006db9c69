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
from domain.draw import Decision, PoolState, utc_day
from domain.events import DrawOutcome, now_ms

log = logging.getLogger(__name__)

REJECT_UNKNOWN_ACTIVITY = "activity_not_found"
_MAX_ATTEMPTS = 5

PoolKey = tuple[str, str]  # (tenant id, activity id)
Request = dict[str, Any]  # a DrawRequested body


class PoolHost:
    def __init__(self, redis_url: str, seed: int | None = None) -> None:
        self._ledger = Ledger.from_url(redis_url)
        self._pools: dict[PoolKey, PoolState] = {}
        self._config_raw: dict[PoolKey, bytes] = {}
        self._rng = random.Random(seed) if seed is not None else random.SystemRandom()

    def pid(self) -> int:
        return os.getpid()

    def ping(self) -> bool:
        return True

    def decide_batch(self, batch_id: str, messages: list[bytes]) -> list[bytes]:
        """One outcome event (serialised DrawOutcome) per request, in request
        order; a repeated request key (in this batch or decided earlier) gets
        the outcome already decided, byte for byte."""
        # Messages are the DrawRequested events as consumed (the dispatcher has
        # validated them): bytes cross Ray far cheaper than dicts, and plain dicts
        # are used because building a dataclass per request cost a sixth of the batch.
        requests: list[Request] = [orjson.loads(m) for m in messages]
        by_pool: dict[PoolKey, list[Request]] = {}
        for req in requests:
            by_pool.setdefault((req["tenant_id"], req["activity_id"]), []).append(req)
        decided: dict[str, bytes] = {}
        for key, reqs in by_pool.items():
            decided.update(self._decide_pool(batch_id, key, reqs))
        return [decided[req["event_id"]] for req in requests]

    def _decide_pool(self, batch_id: str, key: PoolKey, reqs: list[Request]) -> dict[str, bytes]:
        tenant_id, activity_id = key
        unique = list({r["event_id"]: r for r in reqs}.values())
        request_keys = [r["event_id"] for r in unique]
        users = sorted({r["user_id"] for r in unique})
        for _ in range(_MAX_ATTEMPTS):
            at = now_ms()
            day = utc_day(at)
            found = self._ledger.lookup(tenant_id, activity_id, request_keys, users)
            results = {k: v for k, v in zip(request_keys, found.outcomes, strict=True) if v}
            pool = self._pool(key, found.config, day)
            if pool is None:  # nothing recorded: there is no such activity in this tenant
                return {
                    r["event_id"]: results.get(r["event_id"]) or _unknown(r, batch_id)
                    for r in unique
                }
            wallet = dict(found.balances)
            entries: list[Entry] = []
            for req in unique:
                if req["event_id"] not in results:
                    decision = pool.decide(req["user_id"], at, self._rng, wallet)
                    outcome = _outcome(req, decision, batch_id, at).dumps()
                    results[req["event_id"]] = outcome
                    entries.append(_entry(req, decision, outcome))
            if not entries:
                return results
            checked = found.balances if _needs_wallet(pool.activity) else {}
            try:
                self._ledger.commit(pool.activity, batch_id, day, entries, checked)
                return results
            except LedgerStale as exc:
                log.warning("ledger refused %s for %s (%s); rebuilding", batch_id, key, exc)
                self._forget(key)
            except Exception:
                self._forget(key)
                raise
        raise LedgerStale(f"batch {batch_id} for {key} refused {_MAX_ATTEMPTS} times")

    def _pool(self, key: PoolKey, config_raw: bytes | None, day: int) -> PoolState | None:
        if config_raw is None:
            self._forget(key)
            return None
        pool = self._pools.get(key)
        if pool is None:
            activity = Activity.model_validate_json(config_raw)
            pool = self._pools[key] = self._ledger.load_state(activity, day)
        elif self._config_raw.get(key) != config_raw:
            # Pause, resume, edit or stock added: new config and stock, same counters.
            activity = Activity.model_validate_json(config_raw)
            pool.reconfigure(activity, self._ledger.load_stock(*key))
        self._config_raw[key] = config_raw
        return pool

    def _forget(self, key: PoolKey) -> None:
        self._pools.pop(key, None)
        self._config_raw.pop(key, None)


def _needs_wallet(activity: Activity) -> bool:
    """Whether decisions depend on points balances (then they are checked at commit)."""
    return activity.limits.points_cost > 0 or any(t.min_points for t in activity.rules.tiers)


def _outcome(req: Request, decision: Decision, batch_id: str, at: int) -> DrawOutcome:
    prize = decision.prize
    return DrawOutcome(
        event_id=req["event_id"],
        tenant_id=req["tenant_id"],
        activity_id=req["activity_id"],
        user_id=req["user_id"],
        request_id=req["request_id"],
        status=decision.status,  # type: ignore[arg-type]
        prize_id=prize.id if prize else "",
        prize_name=prize.name if prize else "",
        prize_kind=prize.kind if prize else ("red_envelope" if decision.amount else ""),
        reason=decision.reason,
        batch_id=batch_id,
        occurred_at=at,
        amount=decision.amount,
    )


def _entry(req: Request, decision: Decision, outcome: bytes) -> Entry:
    return Entry(
        request_key=req["event_id"],
        user_id=req["user_id"] if decision.counts_as_draw else "",
        stock=decision.stock,
        points_delta=decision.points_delta,
        won=decision.status == "won",
        outcome=outcome,
    )


def _unknown(req: Request, batch_id: str) -> bytes:
    decision = Decision("rejected", reason=REJECT_UNKNOWN_ACTIVITY)
    return _outcome(req, decision, batch_id, now_ms()).dumps()
