"""The claim kind: coupon templates' stock and per-user counts in memory,
claims decided in batches and committed as a chain (ledger/commit_claims.lua).

The same shape as the draw kind (actors/draws.py): decide a batch without
awaiting, submit its commit in the same step, decide the next batch on top of
it while it is in flight; a refused commit (config edited, stock added, memory
drifted) reloads the template and decides again. An issued claim's coupon,
with its unguessable id, is in the outcome, so a re-delivered request is
answered with the same coupon, never a second one.

A request whose body says ``grant`` (a bulk distribution line, sent by the api's
job) is an operator's grant: ``domain.claims.grant_rejection`` decides it, and it
does not count toward the shopper's claim limit. A request whose body says
``exchange`` buys the coupon with points: the template's ``points_price`` is
spent from the shopper's account in the same commit as the coupon is issued
(ledger/accounts.lua), so neither happens without the other.
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass

from actors.holdings import Holdings
from actors.recent import Commit, RecentOutcomes, settle
from domain import points
from domain.claims import (
    REFERRAL_GRANT,
    REJECT_NOT_EXCHANGEABLE,
    REJECT_UNKNOWN_TEMPLATE,
    ClaimOutcome,
    Coupon,
    CouponSource,
    claim_rejection,
    code_rejection,
    grant_rejection,
)
from domain.coupons import CouponTemplate
from domain.events import now_ms
from domain.points import PointsRules
from domain.road import Request
from ledger.accounts import HeldAccount
from ledger.claims import ClaimEntry, ClaimLedger
from ledger.codes import CodeRecord

_ENCODE_OUTCOME = ClaimOutcome.encoder()
# Attempts per batch and template before the batch fails back to the dispatcher.
MAX_ATTEMPTS = 5

TemplateKey = tuple[str, str]  # (tenant id, template id)


@dataclass(eq=False)
class Held:
    """A template as this actor holds it."""

    template: CouponTemplate
    config: bytes
    left: int | None
    users: dict[str, int]
    head: str
    fresh: bool = True  # nothing decided since loaded: look up the first batch's requests


class TemplateClaims:
    def __init__(self, ledger: ClaimLedger, recent: RecentOutcomes) -> None:
        self._ledger = ledger
        self._recent = recent
        self._held: Holdings[TemplateKey, Held] = Holdings(self._load)

    async def decide(
        self, batch_id: str, tenant_id: str, template_id: str, requests: list[Request]
    ) -> dict[str, bytes]:
        """One outcome per distinct request key; a key decided before gets the
        outcome already decided, byte for byte."""
        key = (tenant_id, template_id)
        owner = f"template/{tenant_id}/{template_id}"
        unique = list({r.key: r for r in requests}.values())
        for attempt in range(MAX_ATTEMPTS):
            held = await self._held.get(key)
            if held is None:
                return {r.key: _unknown(key, r, batch_id) for r in unique}
            decided = await self._decide_once(batch_id, key, owner, held, unique, attempt)
            if decided is not None:
                return decided
        raise RuntimeError(f"claim batch {batch_id} for {key} refused {MAX_ATTEMPTS} times")

    async def _decide_once(
        self,
        batch_id: str,
        key: TemplateKey,
        owner: str,
        held: Held,
        unique: list[Request],
        attempt: int,
    ) -> dict[str, bytes] | None:
        request_keys = [r.key for r in unique]
        # Code claims: the codes' records are read before deciding (a code's state
        # is not held in memory; the commit checks it did not change since).
        codes = [r.body["code"] for r in unique if r.body is not None and "code" in r.body]
        exchangers = sorted({r.user_id for r in unique if r.body and "exchange" in r.body})
        found: dict[str, bytes] = {}
        records: dict[str, CodeRecord] = {}
        accounts: dict[str, HeldAccount] = {}
        rules = PointsRules()
        if attempt or held.fresh or codes or exchangers:
            look = await self._ledger.lookup(*key, request_keys, codes, exchangers)
            if look.config != held.config:
                self._held.forget(key, held)
                return None
            found = {k: v for k, v in zip(request_keys, look.outcomes, strict=True) if v}
            records, accounts, rules = look.codes, look.held, look.rules

        # -- decide and queue the commit: no await from here to the submit --
        at = now_ms()
        template, recent = held.template, self._recent
        results: dict[str, bytes] = {}
        waits: list[Commit] = []
        entries: list[ClaimEntry] = []
        assigned: set[str] = set()  # codes this batch gives out
        for req in unique:
            done = found.get(req.key)
            if done is None and (hit := recent.get(owner, req.key)) is not None:
                done, pending = hit
                if pending is not None:
                    waits.append(pending)
            if done is not None:
                results[req.key] = done
                continue
            user_id = req.user_id
            body = req.body or {}
            grant, exchange = "grant" in body, "exchange" in body
            code, code_batch = body.get("code", ""), body.get("batch", "")
            if grant:
                reason = grant_rejection(template, held.left)
            else:
                reason = claim_rejection(template, at, held.left, held.users.get(user_id, 0))
            if reason is None and code:
                record = records.get(code)
                known = (record.batch_id, record.state) if record else None
                reason = code_rejection(known, code_batch, code in assigned)
            if reason is None and exchange:  # last: nothing may refuse it after the spend
                reason = _exchange(accounts[user_id], template, rules, req, at)
            origin = "g" if grant else "c"
            if reason is None:
                source = _source(code, body.get("grant"), exchange)
                coupon = Coupon.issue(template, user_id, source, code or req.key, at)
                if code:
                    assigned.add(code)
                if held.left is not None:
                    held.left -= 1
                if not grant:
                    held.users[user_id] = held.users.get(user_id, 0) + 1
                spent = template.points_price if exchange else 0
                outcome = _outcome(req, key, "issued", "", coupon, batch_id, at, spent)
                json = coupon.model_dump_json().encode()
                until = "" if coupon.valid_until is None else coupon.valid_until
                entry = ClaimEntry(
                    req.key, outcome, coupon.coupon_id, json, origin, code, code_batch, until
                )
            else:
                outcome = _outcome(req, key, "rejected", reason, None, batch_id, at)
                entry = ClaimEntry(req.key, outcome, "", b"", origin)
            entries.append(entry)
            results[req.key] = outcome
        held.fresh = False
        commit: Commit | None = None
        if entries:
            head = secrets.token_hex(8)
            changes = [h.change(user) for user, h in accounts.items() if h.moved]
            commit = self._ledger.commit(template, entries, changes, held.head, head)
            held.head = head
            recent.add(owner, [(e.request_key, e.outcome) for e in entries], commit)
        # -- end of the decision --

        refused = functools.partial(self._refused, key, owner, held, entries)
        if not await settle(commit, waits, refused, f"{batch_id} for {key}"):
            return None
        return results

    def _refused(self, key: TemplateKey, owner: str, held: Held, entries: list[ClaimEntry]) -> None:
        self._recent.drop(owner, [e.request_key for e in entries])
        self._held.forget(key, held)

    async def _load(self, key: TemplateKey) -> Held | None:
        loaded = await self._ledger.load(*key)
        if loaded is None:
            return None
        return Held(loaded.template, loaded.config, loaded.left, loaded.users, loaded.head)


def _source(code: str, grant: str | None, exchange: bool) -> CouponSource:
    if code:
        return "code"
    if grant == REFERRAL_GRANT:
        return "referral"
    if grant is not None:
        return "distribution"
    return "exchange" if exchange else "claim"


def _exchange(
    held: HeldAccount, template: CouponTemplate, rules: PointsRules, req: Request, at: int
) -> str | None:
    """The points of an exchange spent from the account as held (None), or why not."""
    price = template.points_price
    if not price:
        return REJECT_NOT_EXCHANGEABLE
    try:
        account = points.count_exchange(held.account, rules, at)
        key = f"exchange:{template.id}:{req.request_id}"
        account, entry = points.spend(account, key, price, at, "exchange", template.id)
    except points.PointsError as exc:
        return exc.code
    held.account, held.moved = account, True
    held.entries.append(entry)
    return None


def _outcome(
    req: Request,
    key: TemplateKey,
    status: str,
    reason: str,
    coupon: Coupon | None,
    batch_id: str,
    at: int,
    points_spent: int = 0,
) -> bytes:
    return _ENCODE_OUTCOME(
        req.key,
        *key,
        req.user_id,
        req.request_id,
        status,
        reason,
        coupon.coupon_id if coupon else "",
        coupon.valid_from if coupon else None,
        coupon.valid_until if coupon else None,
        batch_id,
        at,
        coupon.source if coupon else "",
        points_spent,
    )


def _unknown(key: TemplateKey, req: Request, batch_id: str) -> bytes:
    return _outcome(req, key, "rejected", REJECT_UNKNOWN_TEMPLATE, None, batch_id, now_ms())
