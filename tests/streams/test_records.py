"""Detail records (streams/records.py) on the session's embedded chdb: every event
delivered two or three times, in separate inserts, and every page walk, filter,
scope and CSV export must show each event once, newest first."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from domain.claims import ClaimOutcome
from domain.coupon_changes import CouponChange
from domain.events import DrawOutcome
from domain.points import PointsOutcome
from domain.records import Cursor, Filters, RecordsError
from domain.visibility import Visibility
from domain.writeoffs import Writeoff
from streams import clickhouse, records

DAY_MS = 86_400_000
# Yesterday, 00:00 UTC: inside every TTL whenever the test runs.
T0 = (int(time.time() * 1000) // DAY_MS - 1) * DAY_MS
BATCH = "carnival.test:0:0"
WRITEOFFS = 120
STATUSES = ("redeemed", "redeemed", "reversed", "rejected")


def writeoff(tenant: str, n: int) -> Writeoff:
    status = STATUSES[n % len(STATUSES)]
    sign = -1 if status == "reversed" else 1
    partner = "pa" if n % 3 else "pb"
    return Writeoff(
        event_id=f"{partner}:r{n:04d}",
        tenant_id=tenant,
        template_id="tpl-a" if n % 2 else "tpl-b",
        coupon_id=f"cp{n}",
        user_id=f"u{n % 5}",
        partner_id=partner,
        request_id=f"r{n:04d}",
        digest="d",
        op="reverse" if status == "reversed" else "redeem",
        status=status,  # type: ignore[arg-type]
        reason="coupon_already_redeemed" if status == "rejected" else "",
        detail="",
        order_id=f"o{n}",
        order_cents=sign * 1000 * (n + 1) if status != "rejected" else 0,
        discount_cents=sign * 100 if status != "rejected" else 0,
        batch_id=BATCH,
        # Every third event shares its millisecond with the one before: ties are
        # ordered by event_id.
        occurred_at=T0 + 1000 * (n - n % 3 // 2),
    )


def deliver(client: Client, insert: Any, events: Sequence[Any]) -> None:
    """At least once: everything, everything again reversed, every other one a third time."""
    for batch in (list(events), list(reversed(events)), list(events[::2])):
        insert(client, batch)


def walk(client: Client, view: Visibility, kind: str, filters: Filters, limit: int) -> list[dict]:
    """Every row, page after page; asserts each page but the last is full."""
    rows: list[dict] = []
    cursor = None
    while True:
        page = records.page(client, view, kind, filters, cursor, limit)
        rows += page["rows"]
        cursor = page["next_cursor"]
        if cursor is None:
            return rows
        assert len(page["rows"]) == limit


def newest_first(events: Sequence[Any]) -> list[tuple[int, str]]:
    return sorted(((e.occurred_at, e.event_id) for e in events), reverse=True)


def keys(rows: Sequence[dict]) -> list[tuple[int, str]]:
    return [(r["occurred_at"], r["event_id"]) for r in rows]


@pytest.fixture(scope="module")
def tenant(ch_client: Client) -> str:
    """A tenant with WRITEOFFS write-offs, and another tenant's, with the same ids."""
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    deliver(ch_client, clickhouse.insert_writeoffs, [writeoff(tenant, n) for n in range(WRITEOFFS)])
    other = [writeoff(f"x-{tenant}", n) for n in range(10)]
    clickhouse.insert_writeoffs(ch_client, other)
    return tenant


@pytest.fixture(scope="module")
def events(tenant: str) -> list[Writeoff]:
    return [writeoff(tenant, n) for n in range(WRITEOFFS)]


@pytest.mark.parametrize("limit", [1, 7, 120, 1000])
def test_a_walk_shows_every_event_once_newest_first(
    ch_client: Client, tenant: str, events: list[Writeoff], limit: int
) -> None:
    rows = walk(ch_client, Visibility(tenant), "writeoffs", Filters(), limit)
    assert keys(rows) == newest_first(events)
    first = next(r for r in rows if r["event_id"] == events[2].event_id)
    assert first == {
        "occurred_at": events[2].occurred_at,
        "event_id": "pa:r0002",
        "template_id": "tpl-b",
        "partner_id": "pa",
        "coupon_id": "cp2",
        "user_id": "u2",
        "request_id": "r0002",
        "op": "reverse",
        "status": "reversed",
        "reason": "",
        "detail": "",
        "order_id": "o2",
        "order_cents": -3000,
        "discount_cents": -100,
    }


@pytest.mark.parametrize(
    "filters",
    [
        Filters(template_id="tpl-a"),
        Filters(partner_id="pb"),
        Filters(user_id="u3"),
        Filters(status="rejected"),
        Filters(since=T0 + 30_000, until=T0 + 60_000),
        Filters(since=T0 + 30_000, template_id="tpl-b", partner_id="pa", status="redeemed"),
        Filters(until=T0),
    ],
)
def test_filters_keep_exactly_the_matching_events(
    ch_client: Client, tenant: str, events: list[Writeoff], filters: Filters
) -> None:
    def matches(e: Writeoff) -> bool:
        given = filters.given()
        return (
            all(getattr(e, name) == value for name, value in given.items())
            and (filters.since is None or e.occurred_at >= filters.since)
            and (filters.until is None or e.occurred_at < filters.until)
        )

    rows = walk(ch_client, Visibility(tenant), "writeoffs", filters, 10)
    assert keys(rows) == newest_first([e for e in events if matches(e)])


def test_an_institution_sees_its_templates_only_and_no_tenant_sees_another(
    ch_client: Client, tenant: str, events: list[Writeoff]
) -> None:
    branch = Visibility(tenant, "branch-1", frozenset(), frozenset({"tpl-a", "tpl-z"}))
    rows = walk(ch_client, branch, "writeoffs", Filters(), 25)
    assert keys(rows) == newest_first([e for e in events if e.template_id == "tpl-a"])
    # A filter on another branch's template finds nothing (the api answers 404 first).
    assert walk(ch_client, branch, "writeoffs", Filters(template_id="tpl-b"), 25) == []
    nothing = Visibility(tenant, "branch-2", frozenset(), frozenset())
    assert walk(ch_client, nothing, "writeoffs", Filters(), 25) == []
    other = walk(ch_client, Visibility(f"x-{tenant}"), "writeoffs", Filters(), 100)
    assert len(other) == 10 and {r["event_id"] for r in other} <= {e.event_id for e in events}
    assert walk(ch_client, Visibility(f"t-{uuid.uuid4().hex[:8]}"), "writeoffs", Filters(), 5) == []


def test_a_cursor_round_trips_and_a_bad_one_is_refused(ch_client: Client, tenant: str) -> None:
    cursor = Cursor(T0 + 1, "pa:r0001:cp-1")
    assert Cursor.decode(cursor.encode()) == cursor
    page = records.page(ch_client, Visibility(tenant), "writeoffs", Filters(), None, 3)
    last = page["rows"][-1]
    assert Cursor.decode(page["next_cursor"]) == Cursor(last["occurred_at"], last["event_id"])
    for bad in ("", "nope", "x" * 300, Cursor(-1, "a").encode(), "WzEsMl0", "bnVsbA"):
        with pytest.raises(RecordsError) as caught:
            records.page(ch_client, Visibility(tenant), "writeoffs", Filters(), bad, 3)
        assert caught.value.code == "invalid_cursor"


@pytest.mark.parametrize(
    ("kind", "filters", "code"),
    [
        ("draws", Filters(template_id="tpl-a"), "filter_not_applicable"),
        ("claims", Filters(partner_id="pa"), "filter_not_applicable"),
        ("points", Filters(status="earn"), "filter_not_applicable"),
        ("writeoffs", Filters(status="won"), "invalid_status"),
        ("writeoffs", Filters(since=5, until=5), "invalid_time_range"),
        ("coupons", Filters(), "unknown_record_kind"),
    ],
)
def test_a_filter_that_does_not_apply_is_refused(
    ch_client: Client, tenant: str, kind: str, filters: Filters, code: str
) -> None:
    with pytest.raises(RecordsError) as caught:
        records.page(ch_client, Visibility(tenant), kind, filters)
    assert caught.value.code == code


def parse_csv(chunks: Sequence[bytes]) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode())))


def as_csv(value: Any) -> str:
    return "" if value is None else str(value)


@pytest.mark.parametrize("size", [1, 11, 10_000])
def test_the_csv_is_the_pages_in_chunks_of_any_size(
    ch_client: Client, tenant: str, size: int
) -> None:
    view, filters = Visibility(tenant), Filters(partner_id="pa")
    chunks = list(records.export(ch_client, view, "writeoffs", filters, size))
    header, *lines = parse_csv(chunks)
    assert header == list(records.TABLES["writeoffs"].columns)
    pages = walk(ch_client, view, "writeoffs", filters, 13)
    assert lines == [[as_csv(v) for v in row.values()] for row in pages]
    assert len(chunks) == 1 + -(-len(pages) // size)


def test_every_kind_pages_and_exports_its_own_columns(ch_client: Client) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    draws = [
        DrawOutcome(
            event_id=f"u{n}:d{n}",
            tenant_id=tenant,
            activity_id="act-1" if n % 2 else "act-2",
            user_id=f"u{n}",
            request_id=f"d{n}",
            status="won" if n % 3 == 0 else "lost",
            prize_id="p1",
            prize_name='Mug, "large"',
            prize_kind="goods",
            reason="",
            batch_id=BATCH,
            occurred_at=T0 + n,
            points_spent=5,
        )
        for n in range(6)
    ]
    claims = [
        ClaimOutcome(
            event_id=f"u{n}:c{n}",
            tenant_id=tenant,
            template_id="tpl-a",
            user_id=f"u{n}",
            request_id=f"c{n}",
            status="issued",
            reason="",
            coupon_id=f"cp{n}",
            valid_from=T0,
            valid_until=None if n % 2 else T0 + DAY_MS,
            batch_id=BATCH,
            occurred_at=T0 + n,
            source="claim",
        )
        for n in range(4)
    ]
    changes = [
        CouponChange(
            event_id=f"u1:void-cp{n}",
            tenant_id=tenant,
            template_id="tpl-a",
            coupon_id=f"cp{n}",
            user_id="u1",
            request_id=f"v{n}",
            op="void",
            status="voided",
            reason="",
            note='sent in error,\nsee "ticket 7"',
            batch_id=BATCH,
            occurred_at=T0 + n,
        )
        for n in range(3)
    ]
    signins = [
        PointsOutcome(
            event_id=f"u{n}:s",
            tenant_id=tenant,
            user_id=f"u{n}",
            request_id="s",
            op="signin",
            status="applied",
            reason="",
            amount=5,
            balance=5,
            movements=[
                {
                    "key": f"signin:{n}",
                    "kind": "earn",
                    "amount": 5,
                    "balance": 5,
                    "at": T0 + n,
                    "reason": "signin day 1",
                    "source_id": "",
                    "moves": [],
                }
            ],
            batch_id=BATCH,
            occurred_at=T0 + n,
        )
        for n in range(2)
    ]
    deliver(ch_client, clickhouse.insert_outcomes, draws)
    deliver(ch_client, clickhouse.insert_claims, claims)
    deliver(ch_client, clickhouse.insert_changes, changes)
    deliver(ch_client, clickhouse.insert_points, signins)
    view = Visibility(tenant)
    # Draw outcomes also wrote the points they cost: 6 movements and 2 sign-ins.
    expected = {"draws": 6, "claims": 4, "changes": 3, "points": 8}
    for kind, n in expected.items():
        rows = walk(ch_client, view, kind, Filters(), 4)
        assert len(rows) == n and len({r["event_id"] for r in rows}) == n
        assert list(rows[0]) == list(records.TABLES[kind].columns)
        header, *lines = parse_csv(list(records.export(ch_client, view, kind, Filters(), 3)))
        assert header == list(rows[0])
        assert lines == [[as_csv(v) for v in row.values()] for row in rows]
    won = walk(ch_client, view, "draws", Filters(activity_id="act-2", status="won"), 10)
    assert [r["event_id"] for r in won] == ["u0:d0"]
    assert [r["prize_name"] for r in won] == ['Mug, "large"']
    # A draw scope is by activity; claims, changes and write-offs by template.
    branch = Visibility(tenant, "b", frozenset({"act-1"}), frozenset())
    assert {r["activity_id"] for r in walk(ch_client, branch, "draws", Filters(), 10)} == {"act-1"}
    assert walk(ch_client, branch, "claims", Filters(), 10) == []
    with pytest.raises(RecordsError) as caught:
        records.page(ch_client, branch, "points", Filters())
    assert caught.value.code == "scope_is_institution"
    open_ended = walk(ch_client, view, "claims", Filters(user_id="u1"), 10)
    assert [r["valid_until"] for r in open_ended] == [None]
