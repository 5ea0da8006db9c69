"""The write-off kind: partners' redemptions, decided by the actor that owns the
coupon's template.

Like coupon changes (actors/coupon_changes.py) nothing is held in memory: each
batch reads the template, the coupons it names and the budgets' counters,
decides every redemption in order (the discount engine prices the coupon on
the order; two redemptions of one coupon in one batch: the first wins; each
budget is spent as it goes), and commits with what it read, so a coupon or a
budget changed meanwhile (another till, another template's actor spending the
same partner budget) makes the ledger refuse and the batch be decided again.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from domain.claims import Coupon
from domain.coupons import CouponTemplate
from domain.draw import utc_day
from domain.events import now_ms
from domain.road import Request
from domain.writeoffs import (
    REJECT_COUPON_NOT_FOUND,
    Budget,
    Order,
    Writeoff,
    redemption,
)
from ledger.keys import TemplateKeys
from ledger.writeoffs import WriteoffEntry, WriteoffLedger

_ENCODE = Writeoff.encoder()
MAX_ATTEMPTS = 5
# A budget with no limit still counts its burn; this stands for "no limit".
UNLIMITED = 2**62


class Writeoffs:
    def __init__(self, ledger: WriteoffLedger) -> None:
        self._ledger = ledger

    async def decide(
        self, batch_id: str, tenant_id: str, template_id: str, requests: list[Request]
    ) -> dict[str, bytes]:
        unique = list({r.key: r for r in requests}.values())
        for _ in range(MAX_ATTEMPTS):
            decided, entries, budgets = await self._decide_once(
                batch_id, tenant_id, template_id, unique
            )
            if not entries:
                return decided
            reply = await self._ledger.commit(tenant_id, template_id, entries, budgets)
            if reply[0] == b"ok":
                return decided
        raise RuntimeError(f"write-offs {batch_id} for {template_id} refused {MAX_ATTEMPTS}x")

    async def _decide_once(
        self, batch_id: str, tenant_id: str, template_id: str, unique: list[Request]
    ) -> tuple[dict[str, bytes], list[WriteoffEntry], list[tuple[str, int]]]:
        at = now_ms()
        keys = TemplateKeys(tenant_id, template_id)
        budget_keys = [keys.spent, keys.spent_on(utc_day(at))]
        ids = sorted({_coupon_id(r) for r in unique} - {""})
        found = await self._ledger.lookup(
            tenant_id, template_id, [r.key for r in unique], ids, budget_keys
        )
        template = _template(found.config)
        limits = template.limits if template else None
        budgets = [
            Budget(budget_keys[0], _limit(limits.budget_cents if limits else None), found.spent[0]),
            Budget(
                budget_keys[1],
                _limit(limits.budget_per_day_cents if limits else None),
                found.spent[1],
            ),
        ]
        results: dict[str, bytes] = {}
        entries: list[WriteoffEntry] = []
        current: dict[str, tuple[bytes, Coupon | None]] = {}
        for req, done in zip(unique, found.outcomes, strict=True):
            if done is not None:
                results[req.key] = done
                continue
            body = _body(req)
            coupon_id = _coupon_id(req)
            raw, coupon = current.get(coupon_id) or _coupon(found.coupons.get(coupon_id, b""))
            try:
                order = Order.model_validate(body.get("order"))
            except ValidationError:  # the api checked it: a bug, refused as not found
                order = None
            if order is None or body.get("op") != "redeem":
                discount, reason, detail = 0, REJECT_COUPON_NOT_FOUND, ""
            else:
                discount, reason, detail = redemption(coupon, template, order, at, budgets)
            after = b""
            if not reason and coupon is not None:
                coupon = coupon.model_copy(update={"state": "used"})
                after = coupon.model_dump_json().encode()
                budgets = [Budget(b.key, b.limit, b.spent + discount) for b in budgets]
            if coupon_id:
                current[coupon_id] = (after or raw, coupon)
            order_id = order.order_id if order else ""
            outcome = _ENCODE(
                req.key,
                tenant_id,
                template_id,
                coupon_id,
                coupon.user_id if coupon else "",
                req.user_id,
                req.request_id,
                str(body.get("digest", "")),
                "redeem",
                "rejected" if reason else "redeemed",
                reason,
                detail,
                order_id,
                order.total_cents if order and not reason else 0,
                discount,
                batch_id,
                at,
            )
            entries.append(
                WriteoffEntry(
                    req.key,
                    outcome,
                    coupon_id,
                    raw,
                    after,
                    f"{req.user_id}:{order_id}" if after else "",
                    discount,
                    "1,2" if after else "",
                )
            )
            results[req.key] = outcome
        return results, entries, [(b.key, b.limit) for b in budgets]


def _limit(cents: int | None) -> int:
    return UNLIMITED if cents is None else cents


def _body(req: Request) -> dict[str, Any]:
    return req.body if type(req.body) is dict else {}


def _coupon_id(req: Request) -> str:
    coupon_id = _body(req).get("coupon")
    return coupon_id if type(coupon_id) is str else ""


def _template(config: bytes | None) -> CouponTemplate | None:
    return CouponTemplate.model_validate_json(config) if config else None


def _coupon(raw: bytes) -> tuple[bytes, Coupon | None]:
    if not raw:
        return b"", None
    try:
        return raw, Coupon.model_validate_json(raw)
    except ValidationError:
        return raw, None
