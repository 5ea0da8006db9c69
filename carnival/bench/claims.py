"""`carnival bench claims`: claims/s of the durable actor path next to the classic
per-request Redis-Lua claim, measured in one run against the same Redis.

1. durable - the real path: ``OwnerActor.decide_batch`` on CLAIM records, one
             Lua commit per batch (stock, per-user counts, coupon, wallet, outcome)
             to the ledger (AOF, appendfsync always), ``depth`` calls in flight.
2. classic - the per-request design of mall / seckill coupon services: the app
             builds the coupon, then one EVALSHA per claim checks idempotency,
             the per-user limit and stock, and writes coupon, wallet and outcome.

Every claim issues a coupon (stock covers them all): the expensive case for both.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from carnival.bench.classic import CLASSIC_THREADS
from carnival.bench.durable import PIPELINE_DEPTH
from carnival.bench.fixtures import Advance, PathResult, advancers, user_ids
from carnival.bench.report import aim, path_rows, paths_table, progress_bars, publish
from carnival.bench.sessions import cleanup, machine_info, ray_session, redis_session
from domain.claims import Coupon
from domain.coupons import CouponLimits, CouponTemplate, Validity
from ledger.keys import TemplateKeys

PATHS = ("durable", "classic")
AIM_DURABLE_VS_CLASSIC = 10.0
# Per-user limit of the bench template: checked on every claim, never reached.
BENCH_PER_USER = 1_000_000

# One claim, one script: idempotent by request key, per-user limit, stock, then
# the coupon, the wallet entry and the outcome.
CLASSIC_CLAIM_LUA = """
local done = redis.call('HGET', KEYS[3], ARGV[1])
if done then return done end
local used = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
if used >= tonumber(ARGV[3]) then return 'user_limit_reached' end
if tonumber(redis.call('GET', KEYS[1]) or '0') <= 0 then return 'sold_out' end
redis.call('DECR', KEYS[1])
redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
redis.call('HSET', KEYS[4], ARGV[4], ARGV[5])
redis.call('RPUSH', KEYS[5] .. ARGV[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return ARGV[4]
"""


def bench_template(tenant_id: str, template_id: str, stock: int) -> CouponTemplate:
    return CouponTemplate(
        id=template_id,
        tenant_id=tenant_id,
        name="Bench 5 off",
        kind="fixed",
        amount_cents=500,
        status="running",
        validity=Validity(days_after_claim=30),
        limits=CouponLimits(stock=stock, per_user=BENCH_PER_USER),
    )


def run_durable_claims(
    redis_url: str,
    template: CouponTemplate,
    users: list[str],
    claims: int,
    batch: int,
    advance: Advance,
    depth: int = PIPELINE_DEPTH,
) -> PathResult:
    import ray

    from actors.owner_actor import OwnerActor
    from domain.road import CLAIM, RequestRecord
    from ledger.admin import SyncLedger

    ledger = SyncLedger.from_url(redis_url)
    ledger.install_template(template)
    actor = OwnerActor.options(num_cpus=0).remote(redis_url, 7)  # type: ignore[attr-defined]
    n_users = len(users)
    # Built before the clock starts: the api builds records, in its own process.
    records = [
        RequestRecord(
            CLAIM.name,
            template.tenant_id,
            template.id,
            "",
            [
                (users[i % n_users], f"r{i}", 0, None)
                for i in range(first, min(first + batch, claims))
            ],
        ).dumps()
        for first in range(0, claims, batch)
    ]
    try:
        ray.get(actor.ping.remote())
        decided = 0
        in_flight: list = []
        began = time.perf_counter()
        for call, record in enumerate(records):
            in_flight.append(actor.decide_batch.remote(f"bench:0:{call}", [record]))
            if len(in_flight) >= depth:
                result = ray.get(in_flight.pop(0))
                decided += result.decided
                advance(result.decided)
        for ref in in_flight:
            result = ray.get(ref)
            decided += result.decided
            advance(result.decided)
        seconds = time.perf_counter() - began
    finally:
        ray.kill(actor)
    totals = ledger.claim_totals(template.tenant_id, template.id)
    ledger.close()
    detail = {"calls": len(records), "in_flight": depth, "decided": decided, **totals}
    return PathResult("durable", claims, seconds, detail)


def run_classic_claims(
    redis_url: str, template: CouponTemplate, users: list[str], claims: int, advance: Advance
) -> PathResult:
    import redis

    base = TemplateKeys(template.tenant_id, template.id).base  # the ledger's hash tag
    keys = [f"{base}:classic:{name}" for name in ("left", "users", "out", "coupons", "wallet:")]
    client = redis.Redis.from_url(redis_url, max_connections=CLASSIC_THREADS + 2)
    try:
        client.set(keys[0], 2 * claims)
        sha = client.script_load(CLASSIC_CLAIM_LUA)

        def one_range(start: int, count: int) -> None:
            n_users = len(users)
            for i in range(start, start + count):
                user = users[i % n_users]
                key = f"{user}:c{i}"
                coupon = Coupon.issue(template, user, "claim", key, int(time.time() * 1000))
                client.evalsha(
                    sha,
                    5,
                    *keys,
                    key,
                    user,
                    BENCH_PER_USER,
                    coupon.coupon_id,
                    coupon.model_dump_json(),
                )
                if (i - start) % 100 == 99:
                    advance(100)

        began = time.perf_counter()
        one_range(0, claims)
        sequential = time.perf_counter() - began
        advance(claims % 100)
        shares = [
            claims // CLASSIC_THREADS + (t < claims % CLASSIC_THREADS)
            for t in range(CLASSIC_THREADS)
        ]
        starts = [claims + sum(shares[:t]) for t in range(CLASSIC_THREADS)]
        began = time.perf_counter()
        with ThreadPoolExecutor(CLASSIC_THREADS, thread_name_prefix="classic") as pool:
            for future in [
                pool.submit(one_range, s, n) for s, n in zip(starts, shares, strict=True)
            ]:
                future.result()
        threaded = time.perf_counter() - began
        advance(sum(n % 100 for n in shares))
        issued = int(client.hlen(keys[3]))
    finally:
        client.close()
    detail = {
        "sequential_claims_per_s": claims / sequential,
        f"threads_{CLASSIC_THREADS}_claims_per_s": claims / threaded,
        "best": "sequential" if sequential <= threaded else f"threads_{CLASSIC_THREADS}",
        "issued": issued,
    }
    return PathResult("classic", claims, min(sequential, threaded), detail)


def run_bench(
    claims: int,
    classic_claims: int,
    batch: int,
    users: int,
    *,
    redis_url: str | None = None,
    progress: Progress | None = None,
    keep_data: bool = False,
) -> dict[str, Any]:
    """Both paths once; returns the report (what ``--out`` holds)."""
    run_id = f"{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    tenant_id = f"bench-{run_id}"
    template = bench_template(tenant_id, "bench-coupon", claims)
    shoppers = user_ids(users)

    advancer = advancers(progress)

    with redis_session(redis_url) as url, ray_session():
        results = {
            "durable": run_durable_claims(
                url, template, shoppers, claims, batch, advancer("durable (ledger)", claims)
            ),
            "classic": run_classic_claims(
                url,
                template,
                shoppers,
                classic_claims,
                advancer(f"classic (seq + {CLASSIC_THREADS} threads)", 2 * classic_claims),
            ),
        }
        machine = machine_info(url)
        removed = 0 if keep_data else cleanup(url, tenant_id)
    paths = path_rows(results, "claims")
    ratio = paths["durable"]["ratio_to_classic"] or 0.0
    return {
        "machine": machine,
        "config": {
            "claims": claims,
            "classic_claims": classic_claims,
            "batch": batch,
            "users": users,
        },
        "paths": paths,
        "aims": {"durable_vs_classic": aim(ratio, AIM_DURABLE_VS_CLASSIC)},
        "ledger": {
            "tenant_id": tenant_id,
            "template_id": template.id,
            "kept": keep_data,
            "keys_removed": removed,
        },
    }


def render(report: dict[str, Any]) -> Table:
    return paths_table(report, "Carnival claims/s", "claims")


def claims_cmd(
    claims: int = typer.Option(200_000, min=1, help="claims of the durable path"),
    classic_claims: int = typer.Option(20_000, min=8, help="claims per classic variant"),
    batch: int = typer.Option(1000, min=1, help="requests per actor call"),
    users: int = typer.Option(100_000, min=1, help="distinct shoppers"),
    out: Path = typer.Option(Path("bench-claims.json"), help="JSON report"),  # noqa: B008
    keep_data: bool = typer.Option(False, help="keep the bench tenant's keys in Redis"),
) -> None:
    """Claims/s of the durable actor path and of the classic Lua-per-claim design."""
    console = Console(stderr=True)
    with progress_bars(console) as progress:
        report = run_bench(
            claims, classic_claims, batch, users, progress=progress, keep_data=keep_data
        )
    publish(report, render(report), out, console)
