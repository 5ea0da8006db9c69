"""The coupon kind: changes to coupons already issued (an operator's void, the
sweep's expiry), decided by the actor that owns the coupon's template.

Nothing about a coupon's state is held in memory (a template may have millions
of coupons and a change is rare next to a claim): each batch reads the coupons
it names, decides every change in order (a void and an expiry of one coupon in
one batch: the first wins), and commits with the coupons as read, so a change
decided on a coupon something else changed meanwhile is refused by the ledger
and decided again on a fresh read.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from domain.claims import Coupon
from domain.coupon_changes import (
    APPLIED,
    CHANGE_OPS,
    REJECT_COUPON_NOT_AVAILABLE,
    REJECT_COUPON_NOT_FOUND,
    CouponChange,
    change_rejection,
    change_request_id,
    changed,
)
from domain.events import now_ms
from domain.road import Request
from ledger.coupon_changes import ChangeEntry, CouponChangeLedger

_ENCODE = CouponChange.encoder()
# Attempts per batch and template before the batch fails back to the dispatcher.
MAX_ATTEMPTS = 5


class CouponChanges:
    def __init__(self, ledger: CouponChangeLedger) -> None:
        self._ledger = ledger

    async def decide(
        self, batch_id: str, tenant_id: str, template_id: str, requests: list[Request]
    ) -> dict[str, bytes]:
        """One outcome per distinct request key; a key decided before gets the
        outcome already decided, byte for byte."""
        unique = list({r.key: r for r in requests}.values())
        for _ in range(MAX_ATTEMPTS):
            decided, entries = await self._decide_once(batch_id, tenant_id, template_id, unique)
            if not entries:
                return decided
            reply = await self._ledger.commit(tenant_id, template_id, entries)
            if reply[0] == b"ok":
                return decided
        raise RuntimeError(f"coupon changes {batch_id} for {template_id} refused {MAX_ATTEMPTS}x")

    async def _decide_once(
        self, batch_id: str, tenant_id: str, template_id: str, unique: list[Request]
    ) -> tuple[dict[str, bytes], list[ChangeEntry]]:
        ids = sorted({_coupon_id(r) for r in unique} - {""})
        outcomes, raws = await self._ledger.lookup(
            tenant_id, template_id, [r.key for r in unique], ids
        )
        at = now_ms()
        results: dict[str, bytes] = {}
        entries: list[ChangeEntry] = []
        current: dict[str, tuple[bytes, Coupon | None]] = {}
        for req, done in zip(unique, outcomes, strict=True):
            if done is not None:
                results[req.key] = done
                continue
            body = _body(req)
            op, coupon_id = body.get("op"), _coupon_id(req)
            op = op if type(op) is str else ""
            raw, coupon = current.get(coupon_id) or _parse(raws.get(coupon_id, b""))
            reason: str | None
            if (
                op not in CHANGE_OPS
                or req.request_id != change_request_id(op, coupon_id)
                or (coupon is not None and coupon.user_id != req.user_id)
            ):
                # The api derives these from the coupon; a mismatch is a bug, answered
                # as not found rather than applied to a coupon it did not name.
                reason = REJECT_COUPON_NOT_FOUND
            else:
                reason = change_rejection(op, coupon, template_id, at)
            after = b""
            if reason is None and coupon is not None:
                coupon = changed(coupon, op)
                after = coupon.model_dump_json().encode()
                current[coupon_id] = (after, coupon)
            elif coupon_id:
                current[coupon_id] = (raw, coupon)
            outcome = _ENCODE(
                req.key,
                tenant_id,
                template_id,
                coupon_id,
                req.user_id,
                req.request_id,
                op,
                APPLIED[op] if reason is None else "rejected",
                reason or "",
                str(body.get("note", "")) if op == "void" else "",
                batch_id,
                at,
            )
            unschedule = reason is None or reason == REJECT_COUPON_NOT_AVAILABLE
            entries.append(
                ChangeEntry(req.key, outcome, coupon_id, raw, after, "1" if unschedule else "0")
            )
            results[req.key] = outcome
        return results, entries


def _body(req: Request) -> dict[str, Any]:
    return req.body if type(req.body) is dict else {}


def _coupon_id(req: Request) -> str:
    coupon_id = _body(req).get("coupon")
    return coupon_id if type(coupon_id) is str else ""


def _parse(raw: bytes) -> tuple[bytes, Coupon | None]:
    if not raw:
        return b"", None
    try:
        return raw, Coupon.model_validate_json(raw)
    except ValidationError:  # written only by our own commits: a bug, not a coupon
        return raw, None
