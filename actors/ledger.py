"""The Redis ledger: activity config, pool state and decided outcomes.

Synchronous on purpose: it runs inside the actor, whose decisions must not
await, and each batch costs two round trips (look-up, then commit script).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from domain.activity import Activity
from domain.draw import PoolState
from domain.ledger_keys import ActivityKeys, tenant_activities_key

BATCH_MARKER_TTL_S = 7 * 86_400
_SCRIPT = (Path(__file__).parent / "commit_batch.lua").read_text()


class LedgerStale(RuntimeError):
    """The ledger refused a batch: the actor's memory no longer matches it."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One decision as the commit script needs it."""

    request_key: str
    user_id: str  # "" when the request was rejected (not a draw)
    prize_id: str  # "" when no stock was used
    outcome: bytes


class Ledger:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._commit = client.register_script(_SCRIPT)

    @classmethod
    def from_url(cls, url: str) -> Ledger:
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5))

    def install_activity(self, activity: Activity) -> None:
        """Write config and initial stock; stock already on the ledger is kept."""
        keys = ActivityKeys(activity.id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(keys.config, activity.model_dump_json())
        for prize in activity.prizes:
            if prize.stock is not None:
                pipe.hsetnx(keys.stock, prize.id, prize.stock)
        pipe.sadd(tenant_activities_key(activity.tenant_id), activity.id)
        pipe.execute()

    def load_activity(self, activity_id: str) -> Activity | None:
        raw = self._redis.get(ActivityKeys(activity_id).config)
        return Activity.model_validate_json(raw) if raw else None

    def load_state(self, activity: Activity) -> PoolState:
        keys = ActivityKeys(activity.id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(keys.stock)
        pipe.hgetall(keys.users)
        pipe.get(keys.draws)
        stock, users, draws = pipe.execute()
        return PoolState(
            activity=activity,
            stock={k.decode(): int(v) for k, v in stock.items()},
            user_draws={k.decode(): int(v) for k, v in users.items()},
            total_draws=int(draws or 0),
        )

    def lookup(
        self, activity_id: str, request_keys: list[str]
    ) -> tuple[bytes | None, list[bytes | None]]:
        """Current config and any outcomes already decided, in one round trip."""
        keys = ActivityKeys(activity_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.hmget(keys.outcomes, request_keys)
        config, outcomes = pipe.execute()
        return config, outcomes

    def commit(self, activity: Activity, batch_id: str, entries: list[Entry]) -> int:
        keys = ActivityKeys(activity.id)
        args: list[str | bytes | int] = [BATCH_MARKER_TTL_S, activity.per_user_limit, len(entries)]
        for e in entries:
            args += [e.request_key, e.user_id, e.prize_id, e.outcome]
        status, detail = self._commit(
            keys=[keys.stock, keys.users, keys.draws, keys.outcomes, keys.batch(batch_id)],
            args=args,
        )
        if status != b"ok":
            raise LedgerStale(detail.decode())
        return int(detail)

    def outcome(self, activity_id: str, request_key: str) -> bytes | None:
        return self._redis.hget(ActivityKeys(activity_id).outcomes, request_key)

    def totals(self, activity_id: str) -> dict[str, int]:
        """Ledger figures used to reconcile with the outcome stream."""
        keys = ActivityKeys(activity_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(keys.stock)
        pipe.get(keys.draws)
        pipe.hlen(keys.outcomes)
        stock, draws, outcomes = pipe.execute()
        return {
            "draws": int(draws or 0),
            "outcomes": int(outcomes),
            **{f"stock:{k.decode()}": int(v) for k, v in stock.items()},
        }
