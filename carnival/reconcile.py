"""`carnival reconcile`: the Redis ledger against ClickHouse, entity by entity.

The ledger keeps every decided outcome event per owner (an activity's draw
outcomes; a template's claim outcomes, coupon changes and write-offs), so the
figures ClickHouse shows can be recomputed from the ledger with the same rules:
distinct events, sums over settled write-offs. Any difference means an event
was lost or counted twice on the way (Kafka -> Faust -> ClickHouse), or the
ledger was changed outside its owner. ClickHouse is read through the streams
worker's internal stats endpoints (chdb allows one process), so this runs
beside a live stack; ``--wait`` retries while the stream catches up.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import redis

from domain.writeoffs import SETTLED
from ledger.keys import TENANTS, ActivityKeys, TemplateKeys, TenantKeys

SCAN_COUNT = 2000


@dataclass(frozen=True, slots=True)
class Difference:
    tenant_id: str
    kind: str  # "activity" | "template"
    entity_id: str
    figure: str
    ledger: Any
    clickhouse: Any


def activity_figures(outcomes: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """What streams.stats.activity_stats reports, from the ledger's outcome events."""
    seen: set[str] = set()
    participants: set[str] = set()
    counts = {"outcomes": 0, "draws": 0, "won": 0, "lost": 0, "rejected": 0, "amount_won": 0}
    prizes: dict[str, int] = {}
    for o in outcomes:
        if o["event_id"] in seen:
            continue
        seen.add(o["event_id"])
        counts["outcomes"] += 1
        counts[o["status"]] += 1
        if o["status"] != "rejected":
            counts["draws"] += 1
            participants.add(o["user_id"])
        if o["status"] == "won":
            counts["amount_won"] += o.get("amount", 0)
            prizes[o["prize_id"]] = prizes.get(o["prize_id"], 0) + 1
    return {**counts, "participants": len(participants), "prizes": prizes}


def template_figures(
    claims: Iterable[dict[str, Any]],
    changes: Iterable[dict[str, Any]],
    writeoffs: Iterable[dict[str, Any]],
    won_in_draws: int,
) -> dict[str, Any]:
    """What streams.stats.template_stats reports, from the ledger's events."""
    issued: set[str] = set()
    rejected: set[str] = set()
    holders: set[str] = set()
    for c in claims:
        if c["status"] == "issued":
            issued.add(c["event_id"])
            holders.add(c["user_id"])
        else:
            rejected.add(c["event_id"])
    voided = {c["event_id"] for c in changes if c["status"] == "voided"}
    expired = {c["event_id"] for c in changes if c["status"] == "expired"}
    redeemed, discount, order = set(), 0, 0
    settled: set[str] = set()
    for w in writeoffs:
        if w["status"] == "redeemed":
            redeemed.add(w["event_id"])
        if w["status"] in SETTLED and w["event_id"] not in settled:
            settled.add(w["event_id"])
            discount += w["discount_cents"]
            order += w["order_cents"]
    return {
        "claims": len(issued) + len(rejected),
        "issued": len(issued),
        "rejected": len(rejected),
        "holders": len(holders),
        "won_in_draws": won_in_draws,
        "voided": len(voided),
        "expired": len(expired),
        "redeemed": len(redeemed),
        "discount_cents": discount,
        "order_cents": order,
    }


def _values(client: redis.Redis, key: str) -> Iterator[dict[str, Any]]:
    for _, raw in client.hscan_iter(key, count=SCAN_COUNT):
        yield orjson.loads(raw)


def _draw_coupons(client: redis.Redis, tenant_id: str) -> dict[str, int]:
    """Coupons won in draws, per template, from the tenant's coupons."""
    won: dict[str, int] = {}
    for coupon in _values(client, TenantKeys(tenant_id).coupons):
        if coupon["source"] == "draw":
            won[coupon["template_id"]] = won.get(coupon["template_id"], 0) + 1
    return won


def _compare(
    tenant_id: str, kind: str, entity_id: str, ledger: dict[str, Any], stats: dict[str, Any]
) -> list[Difference]:
    out = []
    for figure, value in ledger.items():
        seen = stats.get(figure)
        if figure == "prizes":
            seen = {p["prize_id"]: p["wins"] for p in stats.get("prizes", [])}
        if seen != value:
            out.append(Difference(tenant_id, kind, entity_id, figure, value, seen))
    return out


class Reconciler:
    def __init__(self, client: redis.Redis, streams_url: str) -> None:
        self.redis = client
        self.http = httpx.Client(base_url=streams_url, timeout=60)

    def close(self) -> None:
        self.http.close()

    def tenants(self) -> list[str]:
        return sorted(t.decode() for t in self.redis.smembers(TENANTS))

    def _stats(self, path: str, tenant_id: str) -> dict[str, Any]:
        reply = self.http.get(path, params={"tenant_id": tenant_id})
        reply.raise_for_status()
        return reply.json()

    def tenant(self, tenant_id: str) -> tuple[int, list[Difference]]:
        """(entities compared, differences) of one tenant."""
        keys = TenantKeys(tenant_id)
        differences: list[Difference] = []
        activities = sorted(a.decode() for a in self.redis.smembers(keys.activities))
        for activity_id in activities:
            ledger = activity_figures(
                _values(self.redis, ActivityKeys(tenant_id, activity_id).outcomes)
            )
            stats = self._stats(f"/internal/stats/activities/{activity_id}", tenant_id)
            differences += _compare(tenant_id, "activity", activity_id, ledger, stats)
        templates = sorted(t.decode() for t in self.redis.smembers(keys.templates))
        drawn = _draw_coupons(self.redis, tenant_id) if templates else {}
        for template_id in templates:
            t = TemplateKeys(tenant_id, template_id)
            ledger = template_figures(
                _values(self.redis, t.outcomes),
                _values(self.redis, t.changes),
                _values(self.redis, t.writeoffs),
                drawn.get(template_id, 0),
            )
            stats = self._stats(f"/internal/stats/templates/{template_id}", tenant_id)
            differences += _compare(tenant_id, "template", template_id, ledger, stats)
        return len(activities) + len(templates), differences

    def run(self, tenants: list[str], wait_s: float) -> tuple[int, list[Difference]]:
        """Compare every tenant's entities; while differences remain, ask again
        until ``wait_s`` has passed (events may still be on their way)."""
        deadline = time.monotonic() + wait_s
        while True:
            compared, differences = 0, []
            for tenant_id in tenants:
                n, found = self.tenant(tenant_id)
                compared += n
                differences += found
            if not differences or time.monotonic() >= deadline:
                return compared, differences
            time.sleep(0.5)
