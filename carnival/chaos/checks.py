"""The invariants, as functions over what a phase collected: the answers the
load got, the answers to asking again, the ledger, the outcome topics, and
ClickHouse (through `carnival reconcile`'s Reconciler and topic audit).

Each returns a count of violations (0 when the invariant holds) and leaves the
details to ``notes`` so a failing row says what broke.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import redis

from carnival.chaos.load import Answer
from carnival.chaos.shop import CLAIM_PER_USER, PRIZE_ID, WHEEL_PER_USER, Shop
from carnival.reconcile import Reconciler
from carnival.topic_audit import audit, events_on
from domain.topics import CLAIM_OUTCOMES, DRAW_OUTCOMES, WRITEOFFS, Topic
from ledger.admin import SyncLedger
from ledger.keys import TemplateKeys

OUTCOME_TOPICS: tuple[Topic, ...] = (DRAW_OUTCOMES, CLAIM_OUTCOMES, WRITEOFFS)
# How long the topics may take to catch up with the ledger, at most.
AUDIT_WAIT_S = 30.0


@dataclass
class Ledger:
    """One shop's decided outcomes, by request key, and its counters."""

    draws: dict[str, dict[str, Any]]
    claims: dict[str, dict[str, Any]]
    exchanges: dict[str, dict[str, Any]]
    writeoffs: dict[str, dict[str, Any]]
    draw_counter: int  # the activity's draws counter
    issued_counter: int  # the flash template's issued counter
    spent_cents: int  # the flash template's write-off budget spent
    bad_accounts: list[str] = field(default_factory=list)

    def of(self, kind: str) -> dict[str, dict[str, Any]]:
        return {
            "draw": self.draws,
            "claim": self.claims,
            "exchange": self.exchanges,
            "redeem": self.writeoffs,
        }[kind]


def read_ledger(client: redis.Redis, shop: Shop) -> Ledger:
    ledger = SyncLedger(client)
    t = shop.tenant_id
    flash = TemplateKeys(t, shop.template_id)
    writeoffs = {k.decode(): orjson.loads(v) for k, v in client.hgetall(flash.writeoffs).items()}
    bad = []
    for user, account in ledger.points_accounts(t).items():
        log = ledger.points_log(t, user)
        if not account.balance == sum(e.amount for e in log) >= 0:
            bad.append(f"points account {user}: balance {account.balance}, log sums otherwise")
    return Ledger(
        draws=ledger.outcomes(t, shop.wheel_id),
        claims=ledger.claim_outcomes(t, shop.template_id),
        exchanges=ledger.claim_outcomes(t, shop.exchange_id),
        writeoffs=writeoffs,
        draw_counter=ledger.totals(t, shop.wheel_id)["draws"],
        issued_counter=int(client.get(flash.issued) or 0),
        spent_cents=int(client.get(flash.spent) or 0),
        bad_accounts=bad,
    )


def _agrees(answer: Answer, entry: dict[str, Any]) -> bool:
    """The answer is the decision the ledger holds."""
    if answer.status == 409:
        return entry.get("status") == "rejected" and entry.get("reason") == answer.code
    body = answer.body if isinstance(answer.body, dict) else {}
    if entry.get("status") == "rejected":
        return False
    if "decided_at" in body and body["decided_at"] != entry.get("occurred_at"):
        return False
    coupon = body.get("coupon")
    coupon_id = coupon.get("coupon_id") if isinstance(coupon, dict) else body.get("coupon_id")
    return coupon_id is None or coupon_id == entry.get("coupon_id")


def _same(first: Answer, second: Answer) -> bool:
    if first.status != second.status:
        return False
    if first.status == 409:
        return first.code == second.code
    return first.body == second.body


def _answered_id(answer: Answer) -> str | None:
    """The request id the answer says it answers (a decision's body, a refusal's details)."""
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status == 409:
        return body.get("error", {}).get("details", {}).get("request_id")
    return body.get("request_id")


def lost(answers: list[Answer], again: dict[int, Answer], ledger: Ledger, notes: list[str]) -> int:
    """Acknowledged answers missing from the ledger, not the ledger's, never
    decided, answering another request, or changed when asked again."""
    count = 0
    for i, answer in enumerate(answers):
        if not answer.acknowledged:
            continue
        why = ""
        entry = ledger.of(answer.ask.kind).get(answer.ask.key)
        answered = _answered_id(answer)
        if not answer.decided:
            why = f"acknowledged, then {answer.refused or answer.status}"
        elif answered not in (None, answer.ask.request_id):
            why = f"answered with request {answered}'s outcome"
        elif entry is None:
            why = "acknowledged, missing from the ledger"
        elif not _agrees(answer, entry):
            why = "acknowledged, the ledger holds another decision"
        elif i in again and not _same(answer, again[i]):
            other = _answered_id(again[i])
            why = f"changed on re-asking: {answer.status} -> {again[i].status} {again[i].code}"
            if other not in (None, answer.ask.request_id):
                why += f" (the outcome of request {other})"
        if why:
            count += 1
            _note(notes, f"{answer.ask.kind} {answer.ask.key}: {why}")
    return count


def oversold(shop: Shop, ledger: Ledger, notes: list[str]) -> int:
    """Coupons and prizes given beyond their stock."""
    won = sum(o["status"] == "won" and o.get("prize_id") == PRIZE_ID for o in ledger.draws.values())
    issued = sum(o["status"] == "issued" for o in ledger.claims.values())
    bought = sum(o["status"] == "issued" for o in ledger.exchanges.values())
    over = 0
    for what, given, stock in (
        ("wheel prize", won, shop.prize_stock),
        ("flash-sale coupons", issued, shop.template_stock),
        ("exchange coupons", bought, shop.exchange_stock),
    ):
        if given > stock:
            over += given - stock
            _note(notes, f"{what}: {given} given, stock {stock}")
    return over


def over_limit(ledger: Ledger, notes: list[str]) -> int:
    """Decisions beyond a shopper's limit: draws per shopper, claims per shopper."""
    drawn = Counter(o["user_id"] for o in ledger.draws.values() if o["status"] != "rejected")
    claimed = Counter(o["user_id"] for o in ledger.claims.values() if o["status"] == "issued")
    over = 0
    for what, counts, limit in (
        ("draws", drawn, WHEEL_PER_USER),
        ("claims", claimed, CLAIM_PER_USER),
    ):
        for user, n in counts.items():
            if n > limit:
                over += n - limit
                _note(notes, f"{user}: {n} {what}, limit {limit}")
    return over


def overspent(shop: Shop, ledger: Ledger, notes: list[str]) -> int:
    """Budgets spent past their cap: the write-off budget (its counter and the sum
    of the settled write-offs) and every points account (never below zero, equal
    to its log)."""
    discount = sum(
        w.get("discount_cents", 0) for w in ledger.writeoffs.values() if w["status"] == "redeemed"
    )
    over = 0
    if max(discount, ledger.spent_cents) > shop.budget_cents:
        over += 1
        _note(notes, f"write-off budget {shop.budget_cents}: spent {ledger.spent_cents}, "
                     f"write-offs sum {discount}")  # fmt: skip
    for why in ledger.bad_accounts:
        over += 1
        _note(notes, why)
    return over


async def _read_topic(bootstrap: str, topic: Topic, tenant_id: str) -> dict[str, set[bytes]]:
    """event id -> the distinct payloads of the tenant's events on one topic."""
    found: dict[str, set[bytes]] = defaultdict(set)
    async for event in events_on(bootstrap, topic):
        if event.get("tenant_id") == tenant_id:
            found[event["event_id"]].add(orjson.dumps(event, option=orjson.OPT_SORT_KEYS))
    return found


def duplicated(bootstrap: str, shop: Shop, ledger: Ledger, notes: list[str]) -> int:
    """Request ids with two different outcomes on an outcome topic (the same
    event produced twice is one outcome), and ledger counters that counted a
    decision twice."""
    count = 0
    for topic in OUTCOME_TOPICS:
        events = asyncio.run(_read_topic(bootstrap, topic, shop.tenant_id))
        for event_id, payloads in events.items():
            if len(payloads) > 1:
                count += len(payloads) - 1
                _note(notes, f"{topic.name}: {len(payloads)} outcomes for {event_id}")
    drawn = sum(o["status"] != "rejected" for o in ledger.draws.values())
    issued = sum(o["status"] == "issued" for o in ledger.claims.values())
    for what, counter, decided in (
        ("draws", ledger.draw_counter, drawn),
        ("issued", ledger.issued_counter, issued),
    ):
        if counter != decided:
            count += abs(counter - decided)
            _note(notes, f"ledger {what} counter {counter}, outcomes say {decided}")
    return count


def reconcile(
    client: redis.Redis,
    streams_url: str,
    bootstrap: str,
    tenant_id: str,
    wait_s: float,
    notes: list[str],
) -> int:
    """`carnival reconcile --tenant <tenant> --wait <wait_s> --topics`: differences
    between the ledger and ClickHouse, then between the ledger and the outcome topics."""
    checker = Reconciler(client, streams_url)
    try:
        report = checker.run([tenant_id], wait_s)
    finally:
        checker.close()
    for d in report.differences:
        _note(notes, f"reconcile {d.kind} {d.entity_id} {d.figure}: ledger {d.ledger}, "
                     f"clickhouse {d.clickhouse}")  # fmt: skip
    deadline = time.monotonic() + min(wait_s, AUDIT_WAIT_S)
    while True:
        _, gaps = audit(client, bootstrap, [tenant_id])
        if not gaps or time.monotonic() >= deadline:
            break
        time.sleep(1.0)
    for g in gaps:
        _note(notes, f"topic {g.topic} {g.entity_id}: ledger {g.ledger}, on topic "
                     f"{g.on_topic}, missing {g.missing}, unknown {g.unknown}")  # fmt: skip
    return len(report.differences) + len(gaps)


def _note(notes: list[str], note: str) -> None:
    notes.append(note)
