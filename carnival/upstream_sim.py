"""A simulated upstream coupon issuer (seed 002's WeChat / Alipay / UnionPay
stand-in) speaking the channel protocol of domain/channels.py, with faults
injected on demand: latency, errors, and timeouts.

``carnival upstream-sim --port 7070`` runs it; tests start it as a process.
It does NOT dedupe issue requests by ``out_request_no``: every issue request
that lands issues a new upstream coupon, so a client that sends one twice is
caught (``GET /sim/state`` counts what landed per ``out_request_no``).

A timeout is simulated either way a real one happens, at random: the request
is dropped before it is processed, or processed and its answer held back; both
answer only after ``hang_ms`` (longer than the client waits).

Control endpoints (unsigned, for tests and demos):
``POST /sim/setup {merchant_id, carnival_public_key_pem, channel_id, carnival_url}``,
``POST /sim/faults {latency_ms, error_rate, timeout_rate, hang_ms}``,
``GET /sim/state``, ``GET /sim/public-key``, and
``POST /sim/writeoffs {out_request_no, order, writeoff_id}``: spend an upstream
coupon, which sends Carnival the signed write-off callback and returns its answer.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
from fastapi import FastAPI, Request, Response

from domain.channels import (
    RESPONSE_SIGNATURE_HEADER,
    UPSTREAM_COUPONS,
    IssueRequest,
    UpstreamCoupon,
    sign_response,
)
from domain.signing import (
    NONCE_HEADER,
    RSA_SHA256,
    PartnerKey,
    SignatureError,
    generate_rsa_key,
    public_pem,
    sign_headers,
    verify,
)


@dataclass
class Faults:
    latency_ms: int = 0
    error_rate: float = 0.0
    timeout_rate: float = 0.0
    hang_ms: int = 5000


@dataclass
class Upstream:
    key: Any = field(default_factory=generate_rsa_key)
    merchant_id: str = ""
    carnival_pem: bytes = b""
    channel_id: str = ""
    carnival_url: str = ""
    faults: Faults = field(default_factory=Faults)
    coupons: dict[str, UpstreamCoupon] = field(default_factory=dict)  # by out_request_no
    landed: Counter[str] = field(default_factory=Counter)  # issue requests processed
    refused_signatures: int = 0


def build_app(seed: int | None = None) -> FastAPI:
    app = FastAPI(title="Simulated upstream coupon issuer")
    up = Upstream()
    rng = random.Random(seed)

    def answer(request: Request, status: int, body: dict[str, Any]) -> Response:
        raw = orjson.dumps(body)
        nonce = request.headers.get(NONCE_HEADER, "")
        signature = sign_response(up.key, nonce, status, raw)
        headers = {RESPONSE_SIGNATURE_HEADER: signature}
        return Response(raw, status, headers=headers, media_type="application/json")

    async def verified(request: Request) -> bytes | None:
        body = await request.body()
        raw_path = request.scope["raw_path"].decode("ascii")
        query = request.scope["query_string"].decode("ascii")
        lookup = {up.merchant_id: PartnerKey(RSA_SHA256, up.carnival_pem)}.get
        try:
            verify(request.method, raw_path, query, request.headers, body, lookup, time.time())
        except SignatureError:
            up.refused_signatures += 1
            return None
        return body

    async def fault(request: Request, work: Any) -> Response:
        """Latency, then an error, a timeout (dropped or answer held back), or the work."""
        f = up.faults
        if f.latency_ms:
            await asyncio.sleep(f.latency_ms / 1000)
        roll = rng.random()
        if roll < f.error_rate:
            return answer(request, 500, {"code": "system_error", "message": "try again"})
        if roll < f.error_rate + f.timeout_rate:
            processed_first = rng.random() < 0.5
            result = work() if processed_first else None
            await asyncio.sleep(f.hang_ms / 1000)
            if result is not None:
                return result
            return answer(request, 504, {"code": "timeout", "message": "gateway timeout"})
        return work()

    @app.post(UPSTREAM_COUPONS)
    async def issue(request: Request) -> Response:
        body = await verified(request)
        if body is None:
            return answer(request, 401, {"code": "bad_signature", "message": "not verified"})
        try:
            ask = IssueRequest.model_validate_json(body)
        except ValueError as exc:
            return answer(request, 400, {"code": "bad_request", "message": str(exc)[:200]})

        def work() -> Response:
            up.landed[ask.out_request_no] += 1
            coupon = UpstreamCoupon(
                coupon_id="up_" + secrets.token_hex(8),
                out_request_no=ask.out_request_no,
                stock_id=ask.stock_id,
                user_id=ask.user_id,
            )
            up.coupons[ask.out_request_no] = coupon
            return answer(request, 200, coupon.model_dump())

        return await fault(request, work)

    @app.get(UPSTREAM_COUPONS)
    async def query(request: Request, out_request_no: str = "") -> Response:
        if await verified(request) is None:
            return answer(request, 401, {"code": "bad_signature", "message": "not verified"})

        def work() -> Response:
            coupon = up.coupons.get(out_request_no)
            if coupon is None:
                return answer(request, 404, {"code": "not_found", "message": "no such request"})
            return answer(request, 200, coupon.model_dump())

        return await fault(request, work)

    @app.post("/sim/setup")
    async def setup(body: dict[str, str]) -> dict[str, str]:
        up.merchant_id = body["merchant_id"]
        up.carnival_pem = body["carnival_public_key_pem"].encode()
        up.channel_id = body["channel_id"]
        up.carnival_url = body["carnival_url"].rstrip("/")
        return {"public_key_pem": public_pem(up.key).decode()}

    @app.get("/sim/public-key")
    async def public_key() -> dict[str, str]:
        return {"public_key_pem": public_pem(up.key).decode()}

    @app.post("/sim/faults")
    async def faults(body: dict[str, float]) -> dict[str, float]:
        up.faults = Faults(
            latency_ms=int(body.get("latency_ms", 0)),
            error_rate=float(body.get("error_rate", 0.0)),
            timeout_rate=float(body.get("timeout_rate", 0.0)),
            hang_ms=int(body.get("hang_ms", 5000)),
        )
        return vars(up.faults)

    @app.get("/sim/state")
    async def state() -> dict[str, Any]:
        return {
            "landed": dict(up.landed),
            "coupons": len(up.coupons),
            "refused_signatures": up.refused_signatures,
        }

    @app.post("/sim/writeoffs")
    async def writeoff(body: dict[str, Any]) -> Response:
        coupon = up.coupons.get(body["out_request_no"])
        if coupon is None:
            return Response(b'{"code":"not_found"}', 404, media_type="application/json")
        callback = orjson.dumps(
            {
                "writeoff_id": body["writeoff_id"],
                "out_request_no": coupon.out_request_no,
                "coupon_id": coupon.coupon_id,
                "order": body["order"],
            }
        )
        path = f"/v1/channels/{up.channel_id}/writeoffs"
        headers = sign_headers("POST", path, callback, up.channel_id, up.key, RSA_SHA256)
        headers["Content-Type"] = "application/json"
        async with httpx.AsyncClient(base_url=up.carnival_url, timeout=30) as client:
            reply = await client.post(path, content=callback, headers=headers)
        return Response(reply.content, reply.status_code, media_type="application/json")

    return app


def main(host: str, port: int, seed: int | None = None) -> None:
    import uvicorn

    uvicorn.run(build_app(seed), host=host, port=port, log_level="warning")
