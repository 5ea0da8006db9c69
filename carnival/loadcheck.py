"""The closing check of a load run (carnival.loadrun): every invariant, read
the way an operator reads it.

Locust's figures first (any 5xx, any other failed request), then `carnival
reconcile --tenant T --topics` in its own process (ledger == outcome topics ==
ClickHouse, waiting while events are in flight), then, with ClickHouse caught
up, the stats, records and budgets APIs: no prize or template over its stock,
no shopper over a per-user limit, no budget overspent, no coupon redeemed twice
without a refund between.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import httpx

from carnival.loadsetup import HTTP_TIMEOUT_S, LoadError, Setup, expect

# How long reconcile waits for ClickHouse to catch up with the ledger after the load.
RECONCILE_WAIT_S: Final = 120.0
RECONCILE_TIMEOUT_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class LocustRun:
    requests: int
    failures: int
    req_per_s: float
    statuses: dict[str, int]  # "<request name> <status>" -> count (0: no answer)
    failure_messages: list[str]
    csv_prefix: Path
    html: Path
    returncode: int


@dataclass
class Check:
    ok: bool
    failures: list[str]
    reconcile_output: str = ""


def _records(admin: httpx.Client, kind: str, **filters: str) -> Iterator[dict[str, str]]:
    """Every detail record matching the filters, from the records API's CSV
    export (one streamed download: a soak's draws are hundreds of pages)."""
    with admin.stream("GET", f"/v1/stats/records/{kind}.csv", params=filters) as reply:
        if reply.status_code != 200:
            reply.read()
            raise LoadError(f"GET records/{kind}.csv: {reply.status_code} {reply.text}")
        yield from csv.DictReader(reply.iter_lines())


def _locust_failures(run: LocustRun) -> list[str]:
    failures = []
    if run.requests == 0:
        failures.append("locust sent no request")
    server_errors = {k: v for k, v in run.statuses.items() if k.rsplit(" ", 1)[1][0] == "5"}
    if server_errors:
        failures.append(f"5xx answers: {server_errors}")
    if not run.statuses:
        failures.append("locust wrote no status counts (statuses.json): 5xx cannot be ruled out")
    if run.failures:
        failures.append(
            f"{run.failures} of {run.requests} requests failed: " + "; ".join(run.failure_messages)
        )
    return failures


def reconcile(tenant_id: str, env: dict[str, str] | None = None) -> tuple[bool, str]:
    """`carnival reconcile --tenant <tenant> --topics` in its own process, as an
    operator runs it; (clean, output)."""
    done = subprocess.run(
        [
            *(sys.executable, "-m", "carnival", "reconcile", "--tenant", tenant_id),
            *("--wait", str(RECONCILE_WAIT_S), "--topics"),
        ],
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=RECONCILE_TIMEOUT_S,
    )
    return done.returncode == 0, done.stdout.strip()


def _activity_failures(admin: httpx.Client, setup: Setup) -> list[str]:
    failures = []
    for activity_id, per_user_total in setup.activities.items():
        stats = expect(admin.get(f"/v1/stats/activities/{activity_id}"), 200)
        for prize in stats["prize_stock"]:
            stock = setup.prize_stock.get(activity_id, {}).get(prize["prize_id"], prize["stock"])
            if stock is None:
                continue
            where = f"activity {activity_id} prize {prize['prize_id']}"
            if prize["wins"] > stock or (prize["awarded"] or 0) > stock:
                failures.append(
                    f"oversell: {where} won {prize['wins']} times, awarded "
                    f"{prize['awarded']}, stock {stock}"
                )
            if (prize["left"] or 0) < 0:
                failures.append(f"oversell: {where} has {prize['left']} left")
            if prize["wins"] != prize["awarded"]:
                failures.append(
                    f"{where}: ClickHouse counts {prize['wins']} wins, the ledger "
                    f"awarded {prize['awarded']}"
                )
        if per_user_total:
            draws = Counter(
                r["user_id"]
                for r in _records(admin, "draws", activity_id=activity_id)
                if r["status"] != "rejected"
            )
            over = {u: n for u, n in draws.items() if n > per_user_total}
            if over:
                failures.append(
                    f"user over a limit: activity {activity_id} allows {per_user_total} "
                    f"draws per shopper; {len(over)} drew more, e.g. {dict(list(over.items())[:3])}"
                )
    return failures


def _template_failures(admin: httpx.Client, setup: Setup) -> list[str]:
    failures = []
    for t in setup.templates:
        stats = expect(admin.get(f"/v1/stats/templates/{t.template_id}"), 200)
        view = expect(admin.get(f"/v1/admin/templates/{t.template_id}"), 200)
        if t.stock is not None:
            if stats["issued"] > t.stock or view["issued"] > t.stock:
                failures.append(
                    f"oversell: template {t.template_id} issued {stats['issued']} coupons "
                    f"(ledger {view['issued']}), stock {t.stock}"
                )
            if (view["stock_left"] or 0) < 0:
                failures.append(f"oversell: template {t.template_id} has {view['stock_left']} left")
        if t.per_user:
            held = Counter(
                r["user_id"]
                for r in _records(admin, "claims", template_id=t.template_id, status="issued")
            )
            over = {u: n for u, n in held.items() if n > t.per_user}
            if over:
                failures.append(
                    f"user over a limit: template {t.template_id} allows {t.per_user} per "
                    f"shopper; {len(over)} hold more, e.g. {dict(list(over.items())[:3])}"
                )
        if t.budget_cents is not None and stats.get("discount_cents", 0) > t.budget_cents:
            failures.append(
                f"budget overspent: template {t.template_id} gave {stats['discount_cents']} "
                f"cents of discount, budget {t.budget_cents}"
            )
        burn = expect(admin.get(f"/v1/budgets/templates/{t.template_id}"), 200)
        failures += _burn_failures(f"template {t.template_id}", burn)
    return failures


def _burn_failures(owner: str, burn: dict[str, Any]) -> list[str]:
    return [
        f"budget overspent: {owner} {b['name']} spent {b['spent']} {b['unit']}, limit {b['limit']}"
        for b in burn["budgets"]
        if b["limit"] is not None and b["spent"] > b["limit"]
    ]


def _writeoff_failures(admin: httpx.Client, setup: Setup) -> list[str]:
    failures = []
    for partner_id, budget in setup.partners.items():
        burn = expect(admin.get(f"/v1/budgets/partners/{partner_id}"), 200)
        failures += _burn_failures(f"partner {partner_id}", burn)
        if budget is not None:
            spent = next(b["spent"] for b in burn["budgets"] if b["name"] == "partner")
            if spent > budget:
                failures.append(f"budget overspent: partner {partner_id} {spent} > {budget}")
    if setup.redeem_template:
        net: Counter[str] = Counter()
        for r in _records(admin, "writeoffs", template_id=setup.redeem_template):
            net[r["coupon_id"]] += {"redeemed": 1, "reversed": -1}.get(r["status"], 0)
        twice = {c: n for c, n in net.items() if n not in (0, 1)}
        if twice:
            failures.append(
                f"a coupon redeemed twice without a refund between: {len(twice)} coupons, "
                f"e.g. {dict(list(twice.items())[:3])}"
            )
    return failures


def closing_check(
    setup: Setup,
    run: LocustRun | None,
    api: str,
    admin_key: str,
    reconcile_env: dict[str, str] | None = None,
) -> Check:
    """Every invariant of the run; reconcile first, so ClickHouse holds every
    decided event when the stats are read."""
    failures = _locust_failures(run) if run is not None else []
    clean, output = reconcile(setup.tenant_id, reconcile_env)
    if not clean:
        failures.append(f"ledger != ClickHouse / outcome topics (carnival reconcile):\n{output}")
    headers = {"X-Api-Key": admin_key}
    with httpx.Client(base_url=api, headers=headers, timeout=HTTP_TIMEOUT_S) as admin:
        failures += _activity_failures(admin, setup)
        failures += _template_failures(admin, setup)
        failures += _writeoff_failures(admin, setup)
    return Check(not failures, failures, output)
