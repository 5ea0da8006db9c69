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

from domain.claims import Coupon, Redemption
from domain.coupons import CouponTemplate
from domain.draw import utc_day
from domain.events import now_ms
from domain.road import Request
from domain.writeoffs import (
    APPLIED,
    REJECT_COUPON_NOT_FOUND,
    WRITEOFF_OPS,
    Budget,
    Order,
    Writeoff,
    redemption,
    reversal,
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
        today = utc_day(at)
        results: dict[str, bytes] = {}
        entries: list[WriteoffEntry] = []
        current: dict[str, tuple[bytes, Coupon | None]] = {}
        for req, done in zip(unique, found.outcomes, strict=True):
            if done is not None:
                results[req.key] = done
                continue
            body = _body(req)
            op, coupon_id = body.get("op"), _coupon_id(req)
            raw, coupon = current.get(coupon_id) or _coupon(found.coupons.get(coupon_id, b""))
            partner_id = req.user_id
            after: Coupon | None = None
            order_id, order_cents, discount, reason, detail, spends = "", 0, 0, "", "", ""
            if op == "redeem":
                try:
                    order: Order | None = Order.model_validate(body.get("order"))
                except ValidationError:  # the api checked it: a bug, refused as not found
                    order = None
                if order is None:
                    reason = REJECT_COUPON_NOT_FOUND
                else:
                    order_id = order.order_id
                    discount, reason, detail = redemption(coupon, template, order, at, budgets)
                if not reason and coupon is not None and order is not None:
                    order_cents = order.total_cents
                    done_as = Redemption(
                        partner_id=partner_id,
                        order_id=order_id,
                        order_cents=order_cents,
                        discount_cents=discount,
                        redeemed_at=at,
                    )
                    after = coupon.model_copy(update={"state": "used", "redemption": done_as})
                    spends = "1,2"
            elif op == "reverse":
                order_id = str(body.get("order_id", ""))
                back = reversal(coupon, partner_id, order_id)
                if isinstance(back, str):
                    reason = back
                elif coupon is not None and coupon.redemption is not None:
                    after = back
                    order_cents = -coupon.redemption.order_cents
                    discount = -coupon.redemption.discount_cents
                    # A past day's budget is over: only today's gets the discount back.
                    spends = "1,2" if utc_day(coupon.redemption.redeemed_at) == today else "1"
            else:
                reason = REJECT_COUPON_NOT_FOUND
            if after is not None:
                budgets = [
                    Budget(b.key, b.limit, b.spent + discount * (str(i + 1) in spends))
                    for i, b in enumerate(budgets)
                ]
            else:
                discount = 0
            new_raw = after.model_dump_json().encode() if after is not None else b""
            if coupon_id:
                current[coupon_id] = (new_raw, after) if after is not None else (raw, coupon)
            outcome = _ENCODE(
                req.key,
                tenant_id,
                template_id,
                coupon_id,
                coupon.user_id if coupon else "",
                partner_id,
                req.request_id,
                str(body.get("digest", "")),
                op if op in WRITEOFF_OPS else "redeem",
                "rejected" if after is None else APPLIED[str(op)],
                reason,
                detail,
                order_id,
                order_cents,
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
                    new_raw,
                    f"{partner_id}:{order_id}",
                    "" if after is None else ("+" if op == "redeem" else "-"),
                    "" if coupon is None or coupon.valid_until is None else coupon.valid_until,
                    discount,
                    spends if after is not None else "",
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
