"""The Redis ledger: activity config, pool state, points and decided outcomes.

Synchronous on purpose: it runs inside the actor, whose decisions must not
await, and each batch costs two round trips (look-up, then commit script).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import redis

from domain.activity import Activity
from domain.draw import PoolState, initial_stock
from ledger.keys import ActivityKeys, TenantKeys

BATCH_MARKER_TTL_S = 7 * 86_400
DAY_COUNTER_TTL_S = 2 * 86_400
_SCRIPT = (Path(__file__).parent / "commit_batch.lua").read_text()


class LedgerStale(RuntimeError):
    """The ledger refused a batch: the actor's memory no longer matches it."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One decision as the commit script needs it."""

    request_key: str
    user_id: str  # "" when the request was rejected (not a draw)
    stock: tuple[tuple[str, int], ...]  # at most two (field, amount) pairs
    points_delta: int
    won: bool
    outcome: bytes


@dataclass(frozen=True, slots=True)
class Lookup:
    config: bytes | None
    outcomes: list[bytes | None]
    balances: dict[str, int]


def _int_map(raw: dict[bytes, bytes]) -> dict[str, int]:
    return {k.decode(): int(v) for k, v in raw.items()}


class Ledger:
    def __init__(self, client: redis.Redis) -> None:
        self._redis = client
        self._commit = client.register_script(_SCRIPT)

    @classmethod
    def from_url(cls, url: str) -> Ledger:
        return cls(redis.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=5))

    def install_activity(self, activity: Activity) -> None:
        """Write config and initial stock; stock already on the ledger is kept."""
        keys = ActivityKeys(activity.tenant_id, activity.id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.set(keys.config, activity.model_dump_json())
        for field, amount in initial_stock(activity).items():
            pipe.hsetnx(keys.stock, field, amount)
        pipe.sadd(TenantKeys(activity.tenant_id).activities, activity.id)
        pipe.execute()

    def load_state(self, activity: Activity, day: int) -> PoolState:
        keys = ActivityKeys(activity.tenant_id, activity.id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(keys.stock)
        pipe.hgetall(keys.users)
        pipe.hgetall(keys.day(day))
        pipe.get(keys.draws)
        stock, users, today, draws = pipe.execute()
        return PoolState(
            activity=activity,
            stock=_int_map(stock),
            user_draws=_int_map(users),
            day=day,
            user_day_draws=_int_map(today),
            total_draws=int(draws or 0),
        )

    def load_stock(self, tenant_id: str, activity_id: str) -> dict[str, int]:
        return _int_map(self._redis.hgetall(ActivityKeys(tenant_id, activity_id).stock))

    def lookup(
        self, tenant_id: str, activity_id: str, request_keys: list[str], users: list[str]
    ) -> Lookup:
        """Config, outcomes already decided and the users' points, in one round trip."""
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.get(keys.config)
        pipe.hmget(keys.outcomes, request_keys)
        if users:
            pipe.hmget(TenantKeys(tenant_id).points, users)
        config, outcomes, *points = pipe.execute()
        balances = {u: int(b or 0) for u, b in zip(users, points[0], strict=True)} if users else {}
        return Lookup(config, outcomes, balances)

    def commit(
        self,
        activity: Activity,
        batch_id: str,
        day: int,
        entries: list[Entry],
        balances: dict[str, int],
    ) -> int:
        """``balances``: the points each user had when the actor decided (checked,
        so a concurrent points change makes the batch stale instead of wrong)."""
        keys = ActivityKeys(activity.tenant_id, activity.id)
        limits = activity.limits
        stock: dict[str, int] = {}
        users: dict[str, list] = {}  # user -> [draws added, points delta, [request keys won]]
        outcomes: list[str | bytes] = []
        for e in entries:
            outcomes += [e.request_key, e.outcome]
            for field, amount in e.stock:
                stock[field] = stock.get(field, 0) + amount
            if e.user_id:
                agg = users.setdefault(e.user_id, [0, 0, []])
                agg[0] += 1
                agg[1] += e.points_delta
                if e.won:
                    agg[2].append(e.request_key)
        args: list[str | bytes | int] = [
            BATCH_MARKER_TTL_S,
            limits.per_user_total,
            limits.per_user_daily,
            limits.max_draws,
            DAY_COUNTER_TTL_S,
            len(entries),
            len(stock),
            len(users),
            *outcomes,
        ]
        for field, amount in stock.items():
            args += [field, amount]
        for user, (draws, delta, won) in users.items():
            expected = balances.get(user)
            args += [user, draws, delta, "" if expected is None else expected, "\n".join(won)]
        status, detail = self._commit(
            keys=[
                keys.stock,
                keys.users,
                keys.day(day),
                keys.draws,
                keys.outcomes,
                keys.batch(batch_id),
                TenantKeys(activity.tenant_id).points,
                keys.wins,
            ],
            args=args,
        )
        if status != b"ok":
            raise LedgerStale(detail.decode())
        return int(detail)

    def totals(self, tenant_id: str, activity_id: str) -> dict[str, int]:
        """Ledger figures used to reconcile with the outcome stream."""
        keys = ActivityKeys(tenant_id, activity_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(keys.stock)
        pipe.get(keys.draws)
        pipe.hlen(keys.outcomes)
        stock, draws, outcomes = pipe.execute()
        return {
            "draws": int(draws or 0),
            "outcomes": int(outcomes),
            **{f"stock:{k}": v for k, v in _int_map(stock).items()},
        }
