"""The write-off kind: partners' redemptions, locks, confirms, releases and
reversals, decided by the actor that owns the coupon's template.

Like coupon changes (actors/coupon_changes.py) nothing is held in memory: each
batch reads the template, the coupons it names and the budgets' counters,
decides every request in order (domain.writeoffs.decide; two redemptions of
one coupon in one batch: the first wins; each budget, the template's and the
requesting partner's, is spent as it goes), and commits with what it read, so
a coupon or a budget changed meanwhile (another till, another template's actor
spending the same partner budget) makes the ledger refuse and the batch be
decided again.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from pydantic import ValidationError

from domain.claims import Coupon
from domain.codes import CodeError, CodeState, transition
from domain.coupons import CouponTemplate
from domain.draw import utc_day
from domain.events import now_ms
from domain.partners import Partner
from domain.road import Request
from domain.writeoffs import WRITEOFF_OPS, Budget, BudgetUnit, Writeoff, decide
from ledger.codes import CodeRecord
from ledger.keys import TemplateKeys, TenantKeys
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
        today = utc_day(at)
        partner_ids = sorted({r.user_id for r in unique})
        keys = TemplateKeys(tenant_id, template_id)
        tenant = TenantKeys(tenant_id)
        partner_keys = {p: _partner_keys(tenant, p, today) for p in partner_ids}
        found = await self._ledger.lookup(
            tenant_id,
            template_id,
            [r.key for r in unique],
            sorted({_coupon_id(r) for r in unique} - {""}),
            partner_ids,
            [keys.spent, keys.spent_on(today), *(k for ks in partner_keys.values() for k in ks)],
        )
        template = _template(found.config)
        limits = template.limits if template else None
        read = {coupon_id: _coupon(raw) for coupon_id, raw in found.coupons.items()}
        code_records = await self._ledger.codes(tenant_id, _codes(read))
        # Every budget a request of this batch spends from, as it stands with what
        # the batch spent so far: the template's, then each partner's.
        spent = dict(found.spent)
        shared = [
            _Budget(
                keys.spent, limits.budget_cents if limits else None, "cents", False, "template"
            ),
            _Budget(
                keys.spent_on(today),
                limits.budget_per_day_cents if limits else None,
                "cents",
                True,
                "template_day",
            ),
        ]
        own: dict[str, list[_Budget]] = {}
        for partner_id in partner_ids:
            raw = found.partners.get(partner_id)
            own[partner_id] = (
                _partner_budgets(Partner.model_validate_json(raw), partner_keys[partner_id])
                if raw
                else []
            )
        every = shared + [b for bs in own.values() for b in bs]
        index = {b.key: i + 1 for i, b in enumerate(every)}  # the commit's budget indexes
        limit_of = {b.key: _limit(b.limit) for b in every}

        results: dict[str, bytes] = {}
        entries: list[WriteoffEntry] = []
        current: dict[str, tuple[bytes, Coupon | None]] = {}
        for req, done in zip(unique, found.outcomes, strict=True):
            if done is not None:
                results[req.key] = done
                continue
            body = _body(req)
            op, coupon_id, partner_id = str(body.get("op", "")), _coupon_id(req), req.user_id
            raw, coupon = current.get(coupon_id) or read.get(coupon_id) or (b"", None)
            mine = shared + own.get(partner_id, [])
            budgets = [
                Budget(b.key, _limit(b.limit), spent.get(b.key, 0), b.unit, b.daily, b.name)
                for b in mine
            ]
            d = decide(op, body, coupon, template, partner_id, at, budgets)
            spends: list[str] = []
            if d.after is not None:
                for b in budgets:
                    amount = b.cost(d.spend_cents, d.spend_redemptions)
                    # A past day's budget is over: only today's gets a give-back.
                    if amount and not (b.daily and d.spent_on not in (0, today)):
                        spent[b.key] = spent.get(b.key, 0) + amount
                        spends.append(f"{index[b.key]}:{amount}")
            new_raw = d.after.model_dump_json().encode() if d.after is not None else b""
            if coupon_id:
                current[coupon_id] = (new_raw, d.after) if d.after is not None else (raw, coupon)
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
                d.status,
                d.reason,
                d.detail,
                d.order_id,
                d.order_cents,
                d.discount_cents,
                batch_id,
                at,
            )
            lock = d.after.lock if d.after is not None else None
            code, code_before, code_after = _code_change(coupon, d.redeemed, code_records)
            if code:
                code_records[code] = code_after.encode()
            entries.append(
                WriteoffEntry(
                    req.key,
                    outcome,
                    coupon_id,
                    raw,
                    new_raw,
                    f"{partner_id}:{d.order_id}",
                    d.order_index,
                    d.expiry,
                    "" if coupon is None or coupon.valid_until is None else coupon.valid_until,
                    d.lock,
                    lock.until if lock is not None else "",
                    d.redeemed,
                    ",".join(spends),
                    code,
                    code_before,
                    code_after,
                )
            )
            results[req.key] = outcome
        return results, entries, [(key, limit_of[key]) for key in index]


def _codes(read: dict[str, tuple[bytes, Coupon | None]]) -> list[str]:
    """The codes the batch's coupons stand for (coupons claimed or bound by a code)."""
    return sorted({c.source_id for _, c in read.values() if c and c.source == "code"})


def _code_change(
    coupon: Coupon | None, redeemed: int, records: dict[str, bytes]
) -> tuple[str, str, str]:
    """``(code, record as read, record after)`` when a redemption (or its
    reversal) moves the code its coupon stands for; empty strings otherwise."""
    if coupon is None or coupon.source != "code" or not redeemed:
        return "", "", ""
    raw = records.get(coupon.source_id)
    if raw is None:
        return "", "", ""
    record = CodeRecord.decode(coupon.source_id, raw)
    to: CodeState = "redeemed" if redeemed > 0 else "assigned"
    try:
        state = transition(record.state, to, reversal=redeemed < 0)
    except CodeError:  # a voided code: the coupon's own state decided
        return "", "", ""
    after = dataclasses.replace(record, state=state)
    return record.code, raw.decode(), after.encode()


class _Budget(NamedTuple):
    key: str
    limit: int | None
    unit: BudgetUnit
    daily: bool
    name: str


def _partner_keys(tenant: TenantKeys, partner_id: str, today: int) -> tuple[str, ...]:
    return (
        tenant.partner_spent(partner_id),
        tenant.partner_spent(partner_id, today),
        tenant.partner_redemptions(partner_id),
        tenant.partner_redemptions(partner_id, today),
    )


def _partner_budgets(partner: Partner, keys: tuple[str, ...]) -> list[_Budget]:
    total, day, count, day_count = keys
    return [
        _Budget(total, partner.budget_cents, "cents", False, "partner"),
        _Budget(day, partner.budget_per_day_cents, "cents", True, "partner_day"),
        _Budget(count, partner.budget_redemptions, "redemptions", False, "partner_redemptions"),
        _Budget(
            day_count,
            partner.budget_per_day_redemptions,
            "redemptions",
            True,
            "partner_day_redemptions",
        ),
    ]


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
