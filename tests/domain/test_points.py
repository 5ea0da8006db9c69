"""Pure rules of points accounts (domain/points.py): on any sequence of earn,
spend, expire and reverse the balance equals the sum of the ledger and of the
lots, never negative, and spending takes the soonest-expiring usable lots
first; expiry instants on a tenant's local calendar."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from pydantic import ValidationError

from domain.coupons import DAY_MS
from domain.points import (
    ALREADY_SIGNED_IN,
    EXCHANGE_LIMIT,
    INSUFFICIENT,
    NO_RULE,
    ORDER_NOT_FOUND,
    Account,
    Entry,
    ExpiryPolicy,
    PointsError,
    PointsRules,
    apply,
    count_exchange,
    earn,
    expire,
    reverse,
    signin,
    spend,
)

SHANGHAI = "Asia/Shanghai"


def _ms(zone: str, *parts: int) -> int:
    return int(datetime(*parts, tzinfo=ZoneInfo(zone)).timestamp() * 1000)  # type: ignore[misc]


def test_end_of_month_is_the_tenants_local_month_end() -> None:
    policy = ExpiryPolicy(kind="end_of_month", timezone=SHANGHAI)
    # 23:30 on 31 January in Shanghai is still January there (15:30 UTC).
    earned = _ms(SHANGHAI, 2026, 1, 31, 23, 30)
    assert policy.expires_at(earned) == _ms(SHANGHAI, 2026, 2, 1)
    assert ExpiryPolicy(kind="end_of_month", months=12, timezone=SHANGHAI).expires_at(
        earned
    ) == _ms(SHANGHAI, 2027, 2, 1)
    # In UTC the same instant (15:30 on 31 January) is in January too, ending later.
    assert ExpiryPolicy(kind="end_of_month").expires_at(earned) == _ms("UTC", 2026, 2, 1)


def test_days_after_earning_end_at_local_midnight_across_daylight_saving() -> None:
    zone = "America/New_York"
    policy = ExpiryPolicy(kind="days_after_earning", days=1, timezone=zone)
    # Earned the day before the clocks go forward (8 March 2026).
    assert policy.expires_at(_ms(zone, 2026, 3, 7, 10)) == _ms(zone, 2026, 3, 9)
    assert ExpiryPolicy().expires_at(0) is None


@pytest.mark.parametrize(
    "fields",
    [
        {"kind": "days_after_earning"},
        {"timezone": "Mars/Olympus"},
        {"kind": "end_of_month", "months": -1},
    ],
)
def test_bad_policies_are_refused(fields: dict) -> None:
    with pytest.raises(ValidationError):
        ExpiryPolicy(**fields)


def test_spending_takes_the_soonest_expiring_points_first_and_never_too_many() -> None:
    policy = ExpiryPolicy(kind="days_after_earning", days=10)
    never = ExpiryPolicy()
    account, _ = earn(Account(), "a", 100, 0, never, "sign-in", "s1")
    account, _ = earn(account, "b", 50, DAY_MS, policy, "order", "o1")
    account, spent = spend(account, "s", 70, 2 * DAY_MS, "exchange", "x1")
    assert [(m.lot_id, m.delta) for m in spent.moves] == [("b", -50), ("a", -20)]
    with pytest.raises(PointsError) as refused:
        spend(account, "s2", 81, 2 * DAY_MS, "exchange", "x2")
    assert refused.value.code == INSUFFICIENT
    assert account.balance == 80


def test_pending_points_are_not_spendable_and_a_refund_cancels_them() -> None:
    account, _ = earn(Account(), "o1", 300, 0, ExpiryPolicy(), "order", "o1", pending_ms=DAY_MS)
    assert (account.balance, account.spendable(0), account.pending(0)) == (300, 0, 300)
    with pytest.raises(PointsError):
        spend(account, "s", 1, 0, "exchange", "x")
    account, back = reverse(account, "r1", "o1", 300, 10, "refund", "o1")
    assert (back.amount, account.balance, account.lots) == (-300, 0, ())


def test_a_reversal_of_spent_points_takes_only_what_there_is() -> None:
    account, _ = earn(Account(), "o1", 100, 0, ExpiryPolicy(), "order", "o1")
    account, _ = spend(account, "s", 90, 1, "exchange", "x")
    account, _ = earn(account, "o2", 30, 2, ExpiryPolicy(), "order", "o2")
    account, back = reverse(account, "r1", "o1", 100, 3, "refund", "o1")
    assert back.amount == -40 and account.balance == 0  # 10 left of it, 30 of another


class Ledger(RuleBasedStateMachine):
    """Random earn / spend / expire / reverse, checked against the ledger's sum."""

    def __init__(self) -> None:
        super().__init__()
        self.account = Account()
        self.entries: list[Entry] = []
        self.earned: dict[str, int] = {}
        self.now = 0
        self.n = 0

    def _apply(self, before: Account, result: tuple[Account, Entry]) -> None:
        self.account, entry = result
        assert entry.key not in {e.key for e in self.entries}
        assert sum(m.delta for m in entry.moves) == entry.amount
        assert entry.balance == before.balance + entry.amount
        self.entries.append(entry)

    @rule(amount=st.integers(1, 500), days=st.integers(0, 5), pending=st.integers(0, 2))
    def earn(self, amount: int, days: int, pending: int) -> None:
        self.n += 1
        key = f"e{self.n}"
        policy = ExpiryPolicy(kind="days_after_earning", days=days) if days else ExpiryPolicy()
        before = self.account
        self._apply(
            before,
            earn(before, key, amount, self.now, policy, "r", key, pending_ms=pending * DAY_MS),
        )
        self.earned[key] = amount

    @rule(amount=st.integers(1, 800))
    def spend(self, amount: int) -> None:
        self.n += 1
        before = self.account
        usable = sorted((x for x in before.lots if x.usable(self.now)), key=lambda x: x.order)
        try:
            result = spend(before, f"s{self.n}", amount, self.now, "r", "x")
        except PointsError:
            assert before.spendable(self.now) < amount
            return
        self._apply(before, result)
        # FIFO: every usable lot ahead of the last one touched was emptied.
        touched = {m.lot_id for m in result[1].moves}
        last = max(i for i, x in enumerate(usable) if x.lot_id in touched)
        assert all(x.lot_id in touched for x in usable[:last])
        left = {x.lot_id: x.left for x in self.account.lots}
        assert all(left.get(x.lot_id, 0) == 0 for x in usable[:last])

    @rule(days=st.integers(1, 3))
    def time_passes(self, days: int) -> None:
        self.now += days * DAY_MS

    @rule()
    def expiry_job(self) -> None:
        for lot in self.account.due(self.now):
            self._apply(self.account, expire(self.account, lot, self.now))
        assert not self.account.due(self.now)

    @precondition(lambda self: bool(self.earned))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.earned)))
        self.n += 1
        before = self.account
        self._apply(
            before, reverse(before, f"r{self.n}", key, self.earned.pop(key), self.now, "r", key)
        )

    @invariant()
    def balance_is_the_ledger(self) -> None:
        assert self.account.balance == sum(e.amount for e in self.entries)
        assert self.account.balance == sum(x.left for x in self.account.lots)
        assert self.account.balance >= 0
        assert all(x.left > 0 for x in self.account.lots)


Ledger.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestLedger = Ledger.TestCase


def test_signin_streaks_on_the_tenants_calendar() -> None:
    rules = PointsRules(signin=(5, 10, 20), expiry=ExpiryPolicy(timezone=SHANGHAI))
    account = Account()
    day1 = _ms(SHANGHAI, 2026, 3, 1, 23, 50)
    account, entry = signin(account, rules, "s1", day1)
    assert (entry.amount, account.streak, account.signin_day) == (5, 1, 20260301)
    with pytest.raises(PointsError) as refused:
        signin(account, rules, "s2", day1 + 5 * 60_000)  # 23:55, the same local day
    assert refused.value.code == ALREADY_SIGNED_IN
    account, entry = signin(account, rules, "s2", day1 + 20 * 60_000)  # 00:10 the next day
    assert (entry.amount, account.streak) == (10, 2)
    account, _ = earn(account, "o", 3, day1 + DAY_MS, rules.expiry, "order", "o")
    assert account.streak == 2, "an earning keeps the streak"
    account, entry = signin(account, rules, "s3", day1 + 2 * DAY_MS)
    account, entry = signin(account, rules, "s4", day1 + 3 * DAY_MS)
    assert (entry.amount, account.streak) == (20, 4), "past the table: its last day"
    account, entry = signin(account, rules, "s5", day1 + 5 * DAY_MS)  # a day skipped
    assert (entry.amount, account.streak) == (5, 1)
    assert account.balance == 5 + 10 + 3 + 20 + 20 + 5
    with pytest.raises(PointsError) as none:
        signin(Account(), PointsRules(), "s", day1)
    assert none.value.code == NO_RULE


def test_daily_exchange_limit_counts_local_days() -> None:
    rules = PointsRules(exchange_daily_limit=2, expiry=ExpiryPolicy(timezone=SHANGHAI))
    at = _ms(SHANGHAI, 2026, 3, 1, 12)
    account = count_exchange(count_exchange(Account(), rules, at), rules, at)
    with pytest.raises(PointsError) as refused:
        count_exchange(account, rules, at)
    assert refused.value.code == EXCHANGE_LIMIT
    assert count_exchange(account, rules, at + DAY_MS).exchanges == 1


def test_refund_of_a_pending_rebate_takes_it_all_back() -> None:
    rules = PointsRules(order_points_per_unit=2, order_pending_days=7)
    at = 1_000 * DAY_MS
    account, earned = apply(
        Account(),
        rules,
        "order:o1",
        {"op": "order", "order_id": "o1", "amount_cents": 1050},
        at,
        None,
    )
    assert earned[0].amount == 21 and account.spendable(at) == 0 and account.pending(at) == 21
    account, reversed_ = apply(
        account, rules, "refund:o1", {"op": "refund", "order_id": "o1"}, at, 21
    )
    assert reversed_[0].amount == -21 and account.balance == 0 and account.lots == ()
    assert account.spendable(at + 8 * DAY_MS) == 0, "a refunded rebate never becomes usable"
    with pytest.raises(PointsError) as unknown:
        apply(account, rules, "refund:o2", {"op": "refund", "order_id": "o2"}, at, None)
    assert unknown.value.code == ORDER_NOT_FOUND
