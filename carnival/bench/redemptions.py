"""`carnival bench redemptions`: signed partner redemptions/s of the durable
actor path next to the classic per-request design, measured in one run
against the same Redis (AOF, appendfsync always).

Both paths get the same N requests, each signed by an HMAC partner before the
clock starts (the partner's work), and each verified inside the clock
(``domain.signing.verify``: the ingress's work), for N coupons of one template
with a discount budget, each coupon redeemed once.

1. durable - the real path: per batch, the ingress's Redis work for its
             requests in one pipeline (each nonce remembered, each request id
             recorded), then ``OwnerActor.decide_batch`` on WRITEOFF records:
             the template's actor reads the coupons and budgets, prices each
             order with the discount engine and commits the batch with one Lua
             (coupon states, order index, budgets, outcomes), ``depth`` calls
             in flight.
2. classic - the per-request design of payment-side coupon services: verify,
             price the order in the app, then one EVALSHA per redemption that
             remembers the nonce, answers a known request id, checks the
             coupon is unused and the budget has room, and writes the coupon's
             state, the budget and the outcome.

Exactness is checked, not assumed: after each path every coupon is redeemed
once and the budget counter equals the sum of the discounts, else the bench
fails.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from carnival.bench.classic import CLASSIC_THREADS
from carnival.bench.durable import PIPELINE_DEPTH
from carnival.bench.fixtures import Advance, PathResult, advancers
from carnival.bench.report import aim, path_rows, paths_table, progress_bars, publish
from carnival.bench.sessions import cleanup, machine_info, ray_session, redis_session
from domain.claims import Coupon
from domain.coupons import CouponLimits, CouponTemplate, Validity
from domain.discount import Candidate, evaluate
from domain.signing import HMAC_SHA256, PartnerKey, nonce_key_suffix, sign_headers, verify
from domain.writeoffs import Order, body_digest
from ledger.keys import TemplateKeys, TenantKeys

PATHS = ("durable", "classic")
AIM_DURABLE_VS_CLASSIC = 10.0
PATH = "/v1/partner/redemptions"
DISCOUNT_CENTS = 500
ORDER = {
    "shipping_cents": 300,
    "items": [{"sku": "tee", "category": "clothes", "unit_cents": 2500, "qty": 2}],
}

# One redemption, one script: the nonce, the request id, the coupon's state and
# the budget, then the coupon, the budget, the outcome and the order's coupon.
CLASSIC_REDEEM_LUA = """
if redis.call('SET', KEYS[5] .. ARGV[1], 1, 'NX', 'EX', 600) == false then
  return 'nonce_replayed'
end
local done = redis.call('HGET', KEYS[3], ARGV[2])
if done then return done end
if redis.call('HGET', KEYS[1], ARGV[3]) ~= 'available' then return 'coupon_already_redeemed' end
local spent = tonumber(redis.call('GET', KEYS[2]) or '0')
if spent + tonumber(ARGV[4]) > tonumber(ARGV[5]) then return 'budget_exhausted' end
redis.call('HSET', KEYS[1], ARGV[3], 'used')
redis.call('INCRBY', KEYS[2], ARGV[4])
redis.call('HSET', KEYS[3], ARGV[2], ARGV[6])
redis.call('HSET', KEYS[4], ARGV[7], ARGV[3])
return ARGV[6]
"""


def bench_template(tenant_id: str, template_id: str, redemptions: int) -> CouponTemplate:
    return CouponTemplate(
        id=template_id,
        tenant_id=tenant_id,
        name="Bench 5 off from 20",
        kind="fixed",
        amount_cents=DISCOUNT_CENTS,
        threshold_cents=2000,
        status="running",
        validity=Validity(days_after_claim=30),
        # Room for every redemption: the budget is checked on each, never reached.
        limits=CouponLimits(budget_cents=DISCOUNT_CENTS * redemptions),
    )


class Signed:
    """N signed requests of one HMAC partner, built before the clock starts."""

    def __init__(self, partner_id: str, secret: bytes, coupon_ids: list[str], tag: str) -> None:
        self.partner_id = partner_id
        self.key = PartnerKey(HMAC_SHA256, secret)
        self.requests: list[tuple[dict[str, str], bytes, str, str]] = []
        for i, coupon_id in enumerate(coupon_ids):
            request_id = f"{tag}{i}"
            body = orjson.dumps(
                {
                    "request_id": request_id,
                    "coupon_id": coupon_id,
                    "order": {"order_id": f"o-{tag}{i}", **ORDER},
                }
            )
            headers = sign_headers("POST", PATH, body, partner_id, secret, HMAC_SHA256)
            self.requests.append((headers, body, request_id, coupon_id))

    def verified(self, i: int) -> tuple[dict[str, Any], str, str, str]:
        """Request ``i`` as the ingress has it once verified: its body, request id,
        coupon id and nonce (a bad signature raises: the bench stops)."""
        headers, body, request_id, coupon_id = self.requests[i]
        checked = verify("POST", PATH, "", headers, body, self._lookup, time.time())
        return orjson.loads(body), request_id, coupon_id, checked.nonce

    def _lookup(self, partner_id: str) -> PartnerKey | None:
        return self.key if partner_id == self.partner_id else None


def _seed(redis_url: str, template: CouponTemplate, n: int) -> list[str]:
    """N coupons as the claim commit writes them (claims have their own bench)."""
    import redis

    at = int(time.time() * 1000)
    coupons = [Coupon.issue(template, f"u{i}", "claim", f"u{i}:r", at) for i in range(n)]
    client = redis.Redis.from_url(redis_url)
    try:
        pipe = client.pipeline(transaction=False)
        coupons_key = TenantKeys(template.tenant_id).coupons
        for first in range(0, n, 1000):
            chunk = coupons[first : first + 1000]
            pipe.hset(coupons_key, mapping={c.coupon_id: c.model_dump_json() for c in chunk})
        pipe.execute()
    finally:
        client.close()
    return [c.coupon_id for c in coupons]


def run_durable(
    redis_url: str,
    template: CouponTemplate,
    signed: Signed,
    batch: int,
    advance: Advance,
    depth: int = PIPELINE_DEPTH,
) -> PathResult:
    import ray
    import redis

    from actors.owner_actor import OwnerActor
    from domain.road import WRITEOFF, RequestRecord
    from ledger.admin import SyncLedger

    ledger = SyncLedger.from_url(redis_url)
    ledger.install_template(template)
    client = redis.Redis.from_url(redis_url)
    tenant = TenantKeys(template.tenant_id)
    actor = OwnerActor.options(num_cpus=0).remote(redis_url, 7)  # type: ignore[attr-defined]
    n = len(signed.requests)
    try:
        ray.get(actor.ping.remote())
        decided, call = 0, 0
        in_flight: list = []
        began = time.perf_counter()
        for first in range(0, n, batch):
            rows, pipe = [], client.pipeline(transaction=False)
            for i in range(first, min(first + batch, n)):
                body, request_id, coupon_id, nonce = signed.verified(i)
                digest = body_digest(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
                pipe.set(
                    tenant.nonce(nonce_key_suffix(signed.partner_id, nonce)), 1, nx=True, ex=600
                )
                pipe.hsetnx(
                    tenant.partner_requests,
                    f"{signed.partner_id}:{request_id}",
                    orjson.dumps({"op": "redeem", "digest": digest, "template": template.id}),
                )
                rows.append(
                    (
                        signed.partner_id,
                        request_id,
                        0,
                        {
                            "op": "redeem",
                            "coupon": coupon_id,
                            "order": body["order"],
                            "digest": digest,
                        },
                    )
                )
            pipe.execute()
            record = RequestRecord(WRITEOFF.name, template.tenant_id, template.id, "", rows)
            in_flight.append(actor.decide_batch.remote(f"bench:0:{call}", [record.dumps()]))
            call += 1
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
    keys = TemplateKeys(template.tenant_id, template.id)
    redeemed, spent = (int(v or 0) for v in client.mget([keys.redeemed, keys.spent]))
    used = sum(
        1 for raw in client.hvals(tenant.coupons) if Coupon.model_validate_json(raw).state == "used"
    )
    client.close()
    ledger.close()
    detail = {"calls": call, "in_flight": depth, "decided": decided, "redeemed": redeemed}
    _check("durable", n, used, redeemed, spent)
    return PathResult("durable", n, seconds, {**detail, "used": used, "spent_cents": spent})


def run_classic(
    redis_url: str, template: CouponTemplate, signed: Signed, advance: Advance
) -> PathResult:
    import redis

    base = TemplateKeys(template.tenant_id, template.id).base  # the ledger's hash tag
    keys = [f"{base}:classic:{name}" for name in ("coupons", "spent", "out", "orders", "nonce:")]
    n = len(signed.requests)
    half = n // 2
    client = redis.Redis.from_url(redis_url, max_connections=CLASSIC_THREADS + 2)
    candidate = Candidate("c", template, None, None)
    budget = template.limits.budget_cents or 0
    try:
        client.hset(keys[0], mapping={c: "available" for _, _, _, c in signed.requests})
        sha = client.script_load(CLASSIC_REDEEM_LUA)

        def one_range(start: int, count: int) -> None:
            for i in range(start, start + count):
                body, request_id, coupon_id, nonce = signed.verified(i)
                discount = evaluate(candidate, Order.model_validate(body["order"]), 0)
                assert isinstance(discount, int), discount
                outcome = orjson.dumps(
                    {"request_id": request_id, "coupon_id": coupon_id, "discount_cents": discount}
                )
                client.evalsha(
                    sha,
                    5,
                    *keys,
                    nonce_key_suffix(signed.partner_id, nonce),
                    f"{signed.partner_id}:{request_id}",
                    coupon_id,
                    discount,
                    budget,
                    outcome,
                    f"{signed.partner_id}:{body['order']['order_id']}",
                )
                if (i - start) % 100 == 99:
                    advance(100)

        # Half the requests one after the other, half on client threads: the
        # better of the two is the classic design's rate.
        began = time.perf_counter()
        one_range(0, half)
        sequential = time.perf_counter() - began
        advance(half % 100)
        rest = n - half
        shares = [
            rest // CLASSIC_THREADS + (t < rest % CLASSIC_THREADS) for t in range(CLASSIC_THREADS)
        ]
        starts = [half + sum(shares[:t]) for t in range(CLASSIC_THREADS)]
        began = time.perf_counter()
        with ThreadPoolExecutor(CLASSIC_THREADS, thread_name_prefix="classic") as pool:
            for future in [
                pool.submit(one_range, s, c) for s, c in zip(starts, shares, strict=True)
            ]:
                future.result()
        threaded = time.perf_counter() - began
        advance(sum(c % 100 for c in shares))
        states = client.hvals(keys[0])
        used = sum(1 for s in states if s == b"used")
        spent = int(client.get(keys[1]) or 0)
        redeemed = int(client.hlen(keys[2]))
    finally:
        client.close()
    _check("classic", n, used, redeemed, spent)
    rates = {"sequential": half / sequential, f"threads_{CLASSIC_THREADS}": rest / threaded}
    best = max(rates, key=lambda k: rates[k])
    detail = {
        **{f"{k}_redemptions_per_s": round(v, 1) for k, v in rates.items()},
        "best": best,
        "used": used,
        "spent_cents": spent,
    }
    return PathResult("classic", n, n / rates[best], detail)


def _check(path: str, n: int, used: int, redeemed: int, spent: int) -> None:
    if not used == redeemed == n or spent != n * DISCOUNT_CENTS:
        raise RuntimeError(
            f"{path}: {n} coupons, {used} used, {redeemed} redeemed, budget spent {spent} "
            f"(expected {n * DISCOUNT_CENTS}): not exact"
        )


def run_bench(
    redemptions: int,
    classic_redemptions: int,
    batch: int,
    *,
    redis_url: str | None = None,
    progress: Progress | None = None,
    keep_data: bool = False,
) -> dict[str, Any]:
    """Both paths once; returns the report (what ``--out`` holds)."""
    run_id = f"{time.strftime('%Y%m%d%H%M%S')}-{secrets.token_hex(3)}"
    tenant_id = f"bench-{run_id}"
    secret = secrets.token_bytes(32)
    advancer = advancers(progress)
    with redis_session(redis_url) as url, ray_session():
        durable_template = bench_template(tenant_id, "bench-durable", redemptions)
        classic_template = bench_template(tenant_id, "bench-classic", classic_redemptions)
        durable = Signed("p_bench", secret, _seed(url, durable_template, redemptions), "d")
        classic_ids = [f"c{i}" for i in range(classic_redemptions)]
        classic = Signed("p_bench", secret, classic_ids, "k")
        results = {
            "durable": run_durable(
                url, durable_template, durable, batch, advancer("durable (ledger)", redemptions)
            ),
            "classic": run_classic(
                url,
                classic_template,
                classic,
                advancer(f"classic (seq + {CLASSIC_THREADS} threads)", classic_redemptions),
            ),
        }
        machine = machine_info(url)
        removed = 0 if keep_data else cleanup(url, tenant_id)
    paths = path_rows(results, "redemptions")
    ratio = paths["durable"]["ratio_to_classic"] or 0.0
    return {
        "machine": machine,
        "config": {
            "redemptions": redemptions,
            "classic_redemptions": classic_redemptions,
            "batch": batch,
            "signature": HMAC_SHA256,
        },
        "paths": paths,
        "aims": {"durable_vs_classic": aim(ratio, AIM_DURABLE_VS_CLASSIC)},
        "ledger": {"tenant_id": tenant_id, "kept": keep_data, "keys_removed": removed},
    }


def render(report: dict[str, Any]) -> Table:
    return paths_table(report, "Carnival signed redemptions/s", "redemptions")


def redemptions_cmd(
    redemptions: int = typer.Option(100_000, min=1, help="redemptions of the durable path"),
    classic_redemptions: int = typer.Option(20_000, min=16, help="redemptions of the classic path"),
    batch: int = typer.Option(1000, min=1, help="requests per actor call"),
    out: Path = typer.Option(Path("bench-redemptions.json"), help="JSON report"),  # noqa: B008
    keep_data: bool = typer.Option(False, help="keep the bench tenant's keys in Redis"),
) -> None:
    """Signed redemptions/s of the durable actor path and of the classic Lua-per-request design."""
    console = Console(stderr=True)
    with progress_bars(console) as progress:
        report = run_bench(
            redemptions, classic_redemptions, batch, progress=progress, keep_data=keep_data
        )
    publish(report, render(report), out, console)
