"""Read-side queries over ClickHouse: pure functions of (client, filters).

Every query is scoped by tenant_id (a tenant never sees another tenant's
rows) and deduplicated (events are at-least-once). Totals since the start read
the totals of sql/010_totals.sql and series the minute rollups of
sql/009_minute_rollups.sql: both keep each figure as a set keyed by event id
(uniqExact states for counts, maxMap states of event id -> value for sums), so
an event delivered twice counts once, before and after merges, and the figures
outlive the raw events (kept 90 days: sql/011_raw_ttl.sql). User input only
travels as bound server-side parameters ({name:Type}), never formatted into
the SQL text.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from domain.writeoffs import SETTLED


def summed(value: int, condition: str) -> str:
    """The sum of the ``value``-th column of the ``amounts`` maxMap states of the
    rows matching ``condition``: each event id's value once."""
    return f"arraySum(tupleElement(maxMapMergeIf(amounts, {condition}), {value}))"


_ACTIVITY = "WHERE tenant_id = {tenant_id:String} AND activity_id = {activity_id:String}"
_TOTALS_SQL = f"""
SELECT
    uniqExactMerge(events)                          AS outcomes,
    uniqExactMergeIf(events, status != 'rejected')  AS draws,
    uniqExactMergeIf(users, status != 'rejected')   AS participants,
    uniqExactMergeIf(events, status = 'won')        AS won,
    uniqExactMergeIf(events, status = 'lost')       AS lost,
    uniqExactMergeIf(events, status = 'rejected')   AS rejected,
    {summed(2, "status = 'won'")}                  AS amount_won,
    max(last_at)                                    AS last_event_at
FROM draw_totals
{_ACTIVITY}
"""

_PRIZES_SQL = f"""
SELECT prize_id, anyLast(prize_name) AS prize_name, uniqExactMerge(events) AS wins
FROM draw_totals
{_ACTIVITY} AND status = 'won'
GROUP BY prize_id
ORDER BY wins DESC, prize_id
"""

_COUNT_SQL = """
SELECT uniqExactMerge(events) FROM draw_totals WHERE tenant_id = {tenant_id:String}
"""


def _epoch_ms(value: datetime | None, draws: int) -> int | None:
    # max() over zero rows yields the epoch, not NULL: report "no events" as None.
    if value is None or draws == 0:
        return None
    if value.tzinfo is None:
        # chdb may decode DateTime64('UTC') as a naive datetime; it is UTC.
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def activity_stats(client: Client, tenant_id: str, activity_id: str) -> dict[str, Any]:
    """Live figures of one activity of one tenant.

    Returns outcomes (distinct outcome events), draws (outcomes not rejected),
    participants (distinct users who drew), won / lost / rejected,
    ``amount_won`` (red-envelope cents or points awarded), ``prizes`` =
    [{prize_id, prize_name, wins}] and ``last_event_at`` (epoch ms, or None).
    """
    params = {"tenant_id": tenant_id, "activity_id": activity_id}
    row = client.query(_TOTALS_SQL, parameters=params).first_row
    outcomes, draws, participants, won, lost, rejected, amount_won, last_event_at = row
    prizes = [
        {"prize_id": pid, "prize_name": name, "wins": int(wins)}
        for pid, name, wins in client.query(_PRIZES_SQL, parameters=params).result_rows
    ]
    return {
        "tenant_id": tenant_id,
        "activity_id": activity_id,
        "outcomes": int(outcomes),
        "draws": int(draws),
        "participants": int(participants),
        "won": int(won),
        "lost": int(lost),
        "rejected": int(rejected),
        "amount_won": int(amount_won or 0),
        "prizes": prizes,
        "last_event_at": _epoch_ms(last_event_at, int(outcomes)),
    }


_TEMPLATE = "WHERE tenant_id = {tenant_id:String} AND template_id = {template_id:String}"
_CLAIMS_SQL = f"""
SELECT
    uniqExactMerge(events)                          AS claims,
    uniqExactMergeIf(events, status = 'issued')     AS issued,
    uniqExactMergeIf(events, status = 'rejected')   AS rejected,
    uniqExactMergeIf(users, status = 'issued')      AS holders,
    max(last_at)                                    AS last_event_at
FROM claim_totals
{_TEMPLATE}
"""

_CLAIM_REASONS_SQL = f"""
SELECT reason, uniqExactMerge(events) AS claims
FROM claim_totals
{_TEMPLATE} AND status = 'rejected'
GROUP BY reason
ORDER BY claims DESC, reason
"""

_CHANGES_SQL = f"""
SELECT
    uniqExactMergeIf(events, status = 'voided')     AS voided,
    uniqExactMergeIf(events, status = 'expired')    AS expired
FROM change_totals
{_TEMPLATE}
"""

# Locks only reserve and releases undo them: money moves with the settled statuses.
_SETTLED = ", ".join(f"'{s}'" for s in sorted(SETTLED))
SETTLED_IN = f"status IN ({_SETTLED})"  # the write-offs that moved money
_WRITEOFFS_SQL = f"""
SELECT
    uniqExactMergeIf(events, status = 'redeemed')   AS redeemed,
    {summed(2, SETTLED_IN)}         AS discount_cents,
    {summed(3, SETTLED_IN)}         AS order_cents
FROM writeoff_totals
{_TEMPLATE}
"""

# Coupons won in draws of any activity of the tenant: coupon_template is not a
# key prefix of draw_totals, but its rows are per (activity, status, prize), few.
_DRAWN_SQL = """
SELECT uniqExactMerge(coupons) FROM draw_totals
WHERE tenant_id = {tenant_id:String} AND coupon_template = {template_id:String}
"""


def template_stats(client: Client, tenant_id: str, template_id: str) -> dict[str, Any]:
    """Live figures of one coupon template of one tenant: claims decided, coupons
    issued by claims and grants, claims rejected (and by reason), distinct
    holders, coupons won in draws, coupons voided and expired, redemptions with
    their discount and order amounts (deduplicated by event id), last claim event."""
    params = {"tenant_id": tenant_id, "template_id": template_id}
    claims, issued, rejected, holders, last_event_at = client.query(
        _CLAIMS_SQL, parameters=params
    ).first_row
    reasons = {
        reason: int(n)
        for reason, n in client.query(_CLAIM_REASONS_SQL, parameters=params).result_rows
    }
    won_in_draws = client.command(_DRAWN_SQL, parameters=params)
    voided, expired = client.query(_CHANGES_SQL, parameters=params).first_row
    redeemed, discount, gmv = client.query(_WRITEOFFS_SQL, parameters=params).first_row
    return {
        "tenant_id": tenant_id,
        "template_id": template_id,
        "won_in_draws": int(won_in_draws or 0),
        "claims": int(claims),
        "issued": int(issued),
        "rejected": int(rejected),
        "rejected_by_reason": reasons,
        "holders": int(holders),
        "voided": int(voided),
        "expired": int(expired),
        "redeemed": int(redeemed),
        "discount_cents": int(discount or 0),
        "order_cents": int(gmv or 0),
        "last_event_at": _epoch_ms(last_event_at, int(claims)),
    }


def tenant_event_count(client: Client, tenant_id: str) -> int:
    """Distinct draw outcome events of one tenant (all activities)."""
    return int(client.command(_COUNT_SQL, parameters={"tenant_id": tenant_id}))


# Points figures, one set whatever the grouping. Amounts are signed (what balances
# gained): earned and adjusted are net gains, the others the points taken, as
# positive numbers. Days are UTC days (from the minute rollup), reasons and the
# totals from points_totals.
_POINTS_FIGURES = f"""
    {summed(2, "kind = 'earn'")}       AS earned,
    -{summed(2, "kind = 'spend'")}     AS spent,
    -{summed(2, "kind = 'expire'")}    AS expired,
    -{summed(2, "kind = 'reverse'")}   AS reversed,
    {summed(2, "kind = 'adjust'")}     AS adjusted,
    {summed(2, "1")}                   AS net,
    uniqExactMerge(events)              AS movements
"""
_POINTS_NAMES = ("earned", "spent", "expired", "reversed", "adjusted", "net", "movements")
_POINTS_TENANT = "WHERE tenant_id = {tenant_id:String}"

_POINTS_TOTALS_SQL = f"""
SELECT {_POINTS_FIGURES}, uniqExactMerge(users) AS accounts, max(last_at) AS last_event_at
FROM points_totals {_POINTS_TENANT}
"""
_POINTS_BY_DAY_SQL = f"""
SELECT toDate(minute) AS day, {_POINTS_FIGURES}
FROM points_minutes {_POINTS_TENANT}
GROUP BY day ORDER BY day
"""
_POINTS_BY_REASON_SQL = f"""
SELECT reason, {_POINTS_FIGURES}
FROM points_totals {_POINTS_TENANT}
GROUP BY reason ORDER BY reason
"""


def _figures(values: tuple[Any, ...]) -> dict[str, int]:
    return {name: int(v or 0) for name, v in zip(_POINTS_NAMES, values, strict=True)}


def points_totals(client: Client, tenant_id: str) -> dict[str, Any]:
    """One tenant's points since the start: earned, spent, expired, reversed (all
    positive), adjusted (net, signed), ``liability`` (points held by shoppers: the
    sum of every movement), movements and accounts counted once each, and
    ``last_event_at`` (epoch ms, or None)."""
    row = client.query(_POINTS_TOTALS_SQL, parameters={"tenant_id": tenant_id}).first_row
    figures = _figures(row[: len(_POINTS_NAMES)])
    accounts, last_event_at = row[len(_POINTS_NAMES) :]
    liability = figures.pop("net")
    return {
        "tenant_id": tenant_id,
        **figures,
        "liability": liability,
        "accounts": int(accounts),
        "last_event_at": _epoch_ms(last_event_at, figures["movements"]),
    }


def points_by_day(client: Client, tenant_id: str) -> list[dict[str, Any]]:
    """The same figures per UTC day (``day`` as YYYY-MM-DD), oldest first; ``net``
    is the day's change of the liability."""
    rows = client.query(_POINTS_BY_DAY_SQL, parameters={"tenant_id": tenant_id}).result_rows
    return [{"day": day.isoformat(), **_figures(tuple(rest))} for day, *rest in rows]


def points_by_reason(client: Client, tenant_id: str) -> list[dict[str, Any]]:
    """The same figures per movement reason (order, signin day N, refund, expired,
    draw, prize, exchange, an operator's adjustment reason), by reason."""
    rows = client.query(_POINTS_BY_REASON_SQL, parameters={"tenant_id": tenant_id}).result_rows
    return [{"reason": reason, **_figures(tuple(rest))} for reason, *rest in rows]


def points_stats(client: Client, tenant_id: str) -> dict[str, Any]:
    """The points section of the stats: totals, and the figures per day and per reason."""
    return {
        **points_totals(client, tenant_id),
        "by_day": points_by_day(client, tenant_id),
        "by_reason": points_by_reason(client, tenant_id),
    }


# The points minute series, over the rollup of sql/009_minute_rollups.sql (the
# other entities' series are streams/report.py's, at any step). A rollup state is
# a set keyed by event id (uniqExact for counts, a maxMap of event id -> value for
# sums), so merging a minute's rows counts an event delivered twice once: a series
# equals what the raw tables give deduplicated, and outlives them (raw events
# expire 90 days after they occurred, rollups two years after their minute).
# A minute is reported by its start in epoch ms (UTC); a series holds the minutes
# that start in [since_ms, until_ms) and had events, oldest first.
_MINUTE_RANGE = """
  AND minute >= toDateTime(intDiv({since_ms:Int64} + 999, 1000), 'UTC')
  AND minute < toDateTime(intDiv({until_ms:Int64} + 999, 1000), 'UTC')
GROUP BY minute ORDER BY minute
"""


# _POINTS_FIGURES per minute, from the rollup.
_POINTS_MINUTES_SQL = f"""
SELECT
    toUnixTimestamp(minute) * 1000                   AS minute_ms,
    {_POINTS_FIGURES},
    uniqExactMerge(users)                            AS accounts
FROM points_minutes
WHERE tenant_id = {{tenant_id:String}}
{_MINUTE_RANGE}
"""
_POINTS_MINUTE_NAMES = (*_POINTS_NAMES, "accounts")


def _minutes(
    client: Client, sql: str, names: tuple[str, ...], params: dict[str, Any]
) -> list[dict[str, int]]:
    rows = client.query(sql, parameters=params).result_rows
    return [
        {"minute": int(minute), **{n: int(v or 0) for n, v in zip(names, rest, strict=True)}}
        for minute, *rest in rows
    ]


def points_minutes(
    client: Client, tenant_id: str, since_ms: int, until_ms: int
) -> list[dict[str, int]]:
    """One tenant's points per minute: ``minute`` (epoch ms) and the figures of
    points_by_day (earned, spent, expired, reversed, adjusted, net, movements),
    plus accounts (distinct shoppers whose points moved that minute)."""
    params = {"tenant_id": tenant_id, "since_ms": since_ms, "until_ms": until_ms}
    return _minutes(client, _POINTS_MINUTES_SQL, _POINTS_MINUTE_NAMES, params)


# A partner's write-offs across the tenant's templates, from the since-the-start
# totals (they outlive the raw events): each template's figures first, then their
# sum, so that an event id is counted once in its template as the ledger keys it.
# Money moves with the settled statuses only, as in template_stats.
_PARTNER_SQL = f"""
SELECT
    sum(writeoffs), sum(redeemed), sum(reversed), sum(rejected),
    sum(discount_cents), sum(order_cents), max(last_at)
FROM (
    SELECT
        template_id,
        uniqExactMerge(events)                                              AS writeoffs,
        uniqExactMergeIf(events, status = 'redeemed')                       AS redeemed,
        uniqExactMergeIf(events, status IN ('reversed', 'partially_reversed')) AS reversed,
        uniqExactMergeIf(events, status = 'rejected')                       AS rejected,
        {summed(2, SETTLED_IN)}                             AS discount_cents,
        {summed(3, SETTLED_IN)}                             AS order_cents,
        max(last_at)                                                        AS last_at
    FROM writeoff_totals
    WHERE tenant_id = {{tenant_id:String}} AND partner_id = {{partner_id:String}}
    GROUP BY template_id
)
"""


def partner_stats(client: Client, tenant_id: str, partner_id: str) -> dict[str, Any]:
    """One partner's write-offs since the start, every template of the tenant:
    ``writeoffs`` (distinct events, locks and releases included), redeemed,
    reversed (full or partial), rejected, and the discount and order cents the
    settled ones moved (net: a reversal's are negative), with ``last_event_at``
    (epoch ms, or None). The totals of report.partner_series."""
    params = {"tenant_id": tenant_id, "partner_id": partner_id}
    row = client.query(_PARTNER_SQL, parameters=params).first_row
    writeoffs, redeemed, reversed_, rejected, discount, order, last_event_at = row
    return {
        "tenant_id": tenant_id,
        "partner_id": partner_id,
        "writeoffs": int(writeoffs),
        "redeemed": int(redeemed),
        "reversed": int(reversed_),
        "rejected": int(rejected),
        "discount_cents": int(discount or 0),
        "order_cents": int(order or 0),
        "last_event_at": _epoch_ms(last_event_at, int(writeoffs)),
    }
