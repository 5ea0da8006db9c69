"""`carnival reconcile`: the Redis ledger against ClickHouse, entity by entity.

The ledger keeps every decided outcome event per owner (an activity's draw
outcomes; a template's claim outcomes, coupon changes and write-offs) and every
shopper's points entries, so the figures ClickHouse shows can be recomputed
from the ledger with the same rules: distinct events, sums over settled
write-offs, one movement per points entry. Per tenant it compares each
activity, each template, each partner (its write-offs across the templates)
and the points totals. Any difference means an event was lost or counted twice
on the way (Kafka -> Faust -> ClickHouse), or the ledger was changed outside
its owner. ClickHouse is read through the streams worker's internal stats
endpoints (chdb allows one process), so this runs beside a live stack;
``--wait`` retries while the stream catches up.

Points entries seeded by tools straight into Redis (ledger.admin.is_seeded)
are not events: they are left out of the points figures and counted apart.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import orjson
import redis

from domain.writeoffs import SETTLED
from ledger.admin import is_seeded
from ledger.keys import TENANTS, ActivityKeys, TemplateKeys, TenantKeys

SCAN_COUNT = 2000
# Points logs read per Redis round trip.
LOGS_PER_CALL = 500
# How long to wait between two comparisons while --wait lets events arrive.
RETRY_EVERY_S = 0.5

Kind = Literal["activity", "template", "partner", "points"]
# The entity id of a tenant's points totals (one per tenant).
POINTS_ENTITY = "all accounts"


@dataclass(frozen=True, slots=True)
class Difference:
    tenant_id: str
    kind: Kind
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


# What streams.stats.partner_stats reports that the ledger can recompute.
PARTNER_FIGURES = (
    "writeoffs",
    "redeemed",
    "reversed",
    "rejected",
    "discount_cents",
    "order_cents",
)


def partner_figures(writeoffs: Iterable[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """What streams.stats.partner_stats reports, per partner id, from the ledger's
    write-off events of every template: distinct events (by template and event
    id), by status, and the sums over settled ones."""
    seen: set[tuple[str, str]] = set()
    partners: dict[str, dict[str, int]] = {}
    for w in writeoffs:
        key = (w["template_id"], w["event_id"])
        if key in seen:
            continue
        seen.add(key)
        f = partners.setdefault(w["partner_id"], dict.fromkeys(PARTNER_FIGURES, 0))
        f["writeoffs"] += 1
        if w["status"] == "redeemed":
            f["redeemed"] += 1
        elif w["status"] in ("reversed", "partially_reversed"):
            f["reversed"] += 1
        elif w["status"] == "rejected":
            f["rejected"] += 1
        if w["status"] in SETTLED:
            f["discount_cents"] += w["discount_cents"]
            f["order_cents"] += w["order_cents"]
    return partners


# Entry kind -> the points figure it adds to, and the sign it is reported with
# (streams.stats points figures: spent, expired, reversed as positive numbers).
_POINTS_KINDS = {
    "earn": ("earned", 1),
    "spend": ("spent", -1),
    "expire": ("expired", -1),
    "reverse": ("reversed", -1),
    "adjust": ("adjusted", 1),
}


@dataclass(frozen=True, slots=True)
class PointsFigures:
    figures: dict[str, int]  # what streams.stats.points_totals reports
    seeded: int  # entries left out: seeded by tools, never events
    seeded_points: int


def points_figures(logs: Iterable[tuple[str, Iterable[dict[str, Any]]]]) -> PointsFigures:
    """What streams.stats.points_totals reports, from each user's ledger entries
    ``(user id, entries)``: one movement per entry (its key is unique in the
    account), seeded entries left out."""
    figures = dict.fromkeys(
        ("earned", "spent", "expired", "reversed", "adjusted", "liability", "movements"), 0
    )
    accounts, seeded, seeded_points = 0, 0, 0
    for _, entries in logs:
        moved = False
        for e in entries:
            if is_seeded(e):
                seeded += 1
                seeded_points += e["amount"]
                continue
            moved = True
            name, sign = _POINTS_KINDS[e["kind"]]
            figures[name] += sign * e["amount"]
            figures["liability"] += e["amount"]
            figures["movements"] += 1
        accounts += moved
    return PointsFigures({**figures, "accounts": accounts}, seeded, seeded_points)


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


@dataclass(frozen=True, slots=True)
class Report:
    compared: int  # entities compared
    differences: list[Difference]
    seeded: int  # points entries left out (seeded by tools), every tenant
    seeded_points: int


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

    def _logs(self, tenant_id: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
        """Every points log of the tenant: users with an account, or with a
        balance written before accounts existed."""
        keys = TenantKeys(tenant_id)
        users = sorted(
            {u.decode() for u in self.redis.hkeys(keys.points_accounts)}
            | {u.decode() for u in self.redis.hkeys(keys.points)}
        )
        for start in range(0, len(users), LOGS_PER_CALL):
            chunk = users[start : start + LOGS_PER_CALL]
            pipe = self.redis.pipeline(transaction=False)
            for user in chunk:
                pipe.lrange(keys.points_log(user), 0, -1)
            for user, raws in zip(chunk, pipe.execute(), strict=True):
                yield user, [orjson.loads(raw) for raw in raws]

    def tenant(self, tenant_id: str) -> Report:
        """Every entity of one tenant compared once."""
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
        writeoffs: list[dict[str, Any]] = []  # of every template: the partners' figures
        for template_id in templates:
            t = TemplateKeys(tenant_id, template_id)
            redemptions = list(_values(self.redis, t.writeoffs))
            writeoffs += redemptions
            ledger = template_figures(
                _values(self.redis, t.outcomes),
                _values(self.redis, t.changes),
                redemptions,
                drawn.get(template_id, 0),
            )
            stats = self._stats(f"/internal/stats/templates/{template_id}", tenant_id)
            differences += _compare(tenant_id, "template", template_id, ledger, stats)
        by_partner = partner_figures(writeoffs)
        # Registered partners, and any a write-off names (one removed since).
        partners = sorted({p.decode() for p in self.redis.hkeys(keys.partners)} | set(by_partner))
        for partner_id in partners:
            ledger = by_partner.get(partner_id) or dict.fromkeys(PARTNER_FIGURES, 0)
            stats = self._stats(f"/internal/stats/partners/{partner_id}", tenant_id)
            differences += _compare(tenant_id, "partner", partner_id, ledger, stats)
        points = points_figures(self._logs(tenant_id))
        stats = self._stats("/internal/stats/points", tenant_id)
        differences += _compare(tenant_id, "points", POINTS_ENTITY, points.figures, stats)
        compared = len(activities) + len(templates) + len(partners) + 1
        return Report(compared, differences, points.seeded, points.seeded_points)

    def once(self, tenants: list[str]) -> Report:
        reports = [self.tenant(t) for t in tenants]
        return Report(
            sum(r.compared for r in reports),
            [d for r in reports for d in r.differences],
            sum(r.seeded for r in reports),
            sum(r.seeded_points for r in reports),
        )

    def run(self, tenants: list[str], wait_s: float) -> Report:
        """Compare every tenant's entities; while differences remain, ask again
        until ``wait_s`` has passed (events may still be on their way). The
        report is the last comparison's."""
        deadline = time.monotonic() + wait_s
        while True:
            report = self.once(tenants)
            if not report.differences or time.monotonic() >= deadline:
                return report
            time.sleep(RETRY_EVERY_S)
