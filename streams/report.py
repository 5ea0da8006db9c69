"""The stats API's reports over ClickHouse: overview and funnels, time series per
activity / template / partner / channel at a minute, hour or day step, and
budget burn per day. Pure functions of (client, visibility, ...).

Contract, as in streams/stats.py: every query keeps to one tenant and to what
the caller's Visibility sees (streams/scoping.py: draw rows are placed in an
institution by their activity, claim and write-off rows by their template);
counts are exact although events arrive at least once (uniqExact over event
ids on raw rows, uniqExactMerge over the rollups' states, sums over rows
collapsed by event id). User input travels only as bound parameters.

Windows are half-open, ``[since_ms, until_ms)`` in epoch ms on each event's own
``occurred_at``. The series functions expect bounds already aligned on their
step (the api aligns them); a series lists every step of the window, oldest
first, zeros where nothing happened, each step reported by its start (epoch ms,
UTC; a day is a UTC day).

Series read the minute rollups of sql/009 (they outlive raw events), merging a
step's minute states: uniqExactMerge over a group of minute states is the same
set as over the raw rows, so an hour's participants are distinct users of the
hour, not a sum of minutes. Coupons won in draws have no rollup (draw_minutes
does not keep the coupon's template): that figure reads the raw draw outcomes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from clickhouse_connect.driver.client import Client

from domain.series import STEP_MS
from domain.visibility import Visibility
from streams import scoping, stats

# The start of a rollup minute's step; rollup minutes are DateTime('UTC').
_BUCKET: Final[dict[str, str]] = {
    "minute": "minute",
    "hour": "toStartOfHour(minute)",
    "day": "toStartOfDay(minute)",
}
# The same on a raw row's occurred_at (DateTime64(3, 'UTC')).
_RAW_BUCKET: Final[dict[str, str]] = {
    "minute": "toStartOfMinute(occurred_at)",
    "hour": "toStartOfHour(occurred_at)",
    "day": "toStartOfDay(occurred_at)",
}

_REVERSED_IN = "status IN ('reversed', 'partially_reversed')"
_ROLLUP_RANGE = """
  AND minute >= toDateTime(intDiv({since_ms:Int64}, 1000), 'UTC')
  AND minute < toDateTime(intDiv({until_ms:Int64}, 1000), 'UTC')
"""


def _window(since_ms: int | None, until_ms: int | None, params: dict[str, Any]) -> str:
    """`` AND occurred_at in [since, until)`` for raw rows; either bound may be open."""
    sql = ""
    if since_ms is not None:
        params["since_ms"] = since_ms
        sql += " AND occurred_at >= fromUnixTimestamp64Milli({since_ms:Int64}, 'UTC')"
    if until_ms is not None:
        params["until_ms"] = until_ms
        sql += " AND occurred_at < fromUnixTimestamp64Milli({until_ms:Int64}, 'UTC')"
    return sql


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole > 0 else None


def _funnel(steps: Sequence[tuple[str, int]]) -> list[dict[str, Any]]:
    """Each step with its conversion from the step before (None for the first, or
    when the step before is zero). Participants -> draws is draws per participant,
    so that rate may exceed 1."""
    out = []
    before: int | None = None
    for name, count in steps:
        rate = None if before is None else _ratio(count, before)
        out.append({"step": name, "count": count, "rate": rate})
        before = count
    return out


def _roi(order_cents: int, discount_cents: int) -> float | None:
    """Order GMV per cent of discount granted; None when no discount was granted
    (or reversals took back more than was granted in the window)."""
    return _ratio(order_cents, discount_cents)


# -- overview -------------------------------------------------------------------

# One row per write-off event however often it was delivered (aliases apart from
# the columns: a WHERE on the columns must not read the aggregates).
_WRITEOFF_EVENTS = """
    SELECT event_id, any(status) AS w_status, any(coupon_id) AS w_coupon,
           any(discount_cents) AS w_discount, any(order_cents) AS w_order
    FROM writeoffs
    WHERE {where}
    GROUP BY event_id
"""
_W_SETTLED = stats.SETTLED_IN.replace("status", "w_status")
_MONEY = f"""
    uniqExactIf(event_id, w_status = 'redeemed')                            AS redemptions,
    uniqExactIf(w_coupon, w_status = 'redeemed')                            AS coupons_redeemed,
    uniqExactIf(event_id, w_status IN ('reversed', 'partially_reversed'))   AS reversals,
    sumIf(w_discount, {_W_SETTLED})                                         AS discount_cents,
    sumIf(w_order, {_W_SETTLED})                                            AS order_cents
"""
_MONEY_NAMES = ("redemptions", "coupons_redeemed", "reversals", "discount_cents", "order_cents")


def overview(
    client: Client, view: Visibility, since_ms: int | None = None, until_ms: int | None = None
) -> dict[str, Any]:
    """What the caller sees in ``[since_ms, until_ms)`` (open bounds: all time).

    * participants: distinct shoppers who drew (not rejected) or were issued a
      coupon by a claim, grant, code or exchange;
    * draws (not rejected), wins; coupons_won: coupons won in draws;
    * coupons_claimed: coupons issued by claim outcomes (claims, grants, codes,
      exchanges); coupons_issued = coupons_claimed + coupons_won;
    * redemptions (write-off events that redeemed), coupons_redeemed (distinct
      coupons redeemed), reversals (full or partial);
    * redemption_rate = coupons_redeemed / coupons_issued (both in the window);
    * discount_cents / order_cents: what settled write-offs moved, net of
      reversals (locks move nothing until confirmed);
    * roi = order_cents / discount_cents (GMV per cent of discount), None
      without a discount;
    * funnel: participants -> draws -> wins -> claims (coupons issued) ->
      redemptions (coupons redeemed), each with its rate from the step before.
    """
    params = scoping.parameters(view)
    window = _window(since_ms, until_ms, params)
    draws_where = scoping.condition(view, activity_column="activity_id") + window
    claims_where = scoping.condition(view, template_column="template_id") + window
    draws, wins, coupons_won = client.query(
        f"""
        SELECT uniqExactIf(event_id, status != 'rejected'), uniqExactIf(event_id, status = 'won'),
               uniqExactIf(coupon_id, status = 'won' AND coupon_id != '')
        FROM draw_outcomes WHERE {draws_where}
        """,
        parameters=params,
    ).first_row
    claimed = client.command(
        f"SELECT uniqExactIf(event_id, status = 'issued') FROM claim_outcomes WHERE {claims_where}",
        parameters=params,
    )
    participants = client.command(
        f"""
        SELECT uniqExact(user_id) FROM (
            SELECT user_id FROM draw_outcomes WHERE {draws_where} AND status != 'rejected'
            UNION ALL
            SELECT user_id FROM claim_outcomes WHERE {claims_where} AND status = 'issued'
        )
        """,
        parameters=params,
    )
    money = dict(
        zip(
            _MONEY_NAMES,
            (
                int(v or 0)
                for v in client.query(
                    f"SELECT {_MONEY} FROM ({_WRITEOFF_EVENTS.format(where=claims_where)})",
                    parameters=params,
                ).first_row
            ),
            strict=True,
        )
    )
    issued = int(claimed or 0) + int(coupons_won)
    figures = {
        "participants": int(participants or 0),
        "draws": int(draws),
        "wins": int(wins),
        "coupons_won": int(coupons_won),
        "coupons_claimed": int(claimed or 0),
        "coupons_issued": issued,
        **money,
    }
    return {
        "tenant_id": view.tenant_id,
        "institution_id": view.institution_id,
        "since": since_ms,
        "until": until_ms,
        **figures,
        "redemption_rate": _ratio(money["coupons_redeemed"], issued),
        "roi": _roi(money["order_cents"], money["discount_cents"]),
        # A balance of the whole tenant's shoppers, now (not of the window):
        # none for an institution's key (points accounts are the tenant's).
        "points_liability": (
            None if view.scoped else stats.points_totals(client, view.tenant_id)["liability"]
        ),
        "funnel": _funnel(
            [
                ("participants", figures["participants"]),
                ("draws", figures["draws"]),
                ("wins", figures["wins"]),
                ("claims", issued),
                ("redemptions", money["coupons_redeemed"]),
            ]
        ),
    }


def activity_funnel(
    client: Client,
    view: Visibility,
    activity_id: str,
    since_ms: int | None = None,
    until_ms: int | None = None,
) -> dict[str, Any]:
    """One activity's funnel for the draws in ``[since_ms, until_ms)``:
    participants (distinct shoppers who drew) -> draws (not rejected) -> wins ->
    coupons won (coupon prizes) -> coupons redeemed (of those coupons, the ones
    with a redemption at any time: a cohort, joined on coupon_id). Also the
    discount and order cents their settled write-offs moved, and roi. The api
    checked the activity is visible to the caller."""
    params: dict[str, Any] = {"tenant_id": view.tenant_id, "activity_id": activity_id}
    draws_where = "tenant_id = {tenant_id:String} AND activity_id = {activity_id:String}"
    draws_where += _window(since_ms, until_ms, params)
    participants, draws, wins, coupons_won = client.query(
        f"""
        SELECT uniqExactIf(user_id, status != 'rejected'),
               uniqExactIf(event_id, status != 'rejected'),
               uniqExactIf(event_id, status = 'won'),
               uniqExactIf(coupon_id, status = 'won' AND coupon_id != '')
        FROM draw_outcomes WHERE {draws_where}
        """,
        parameters=params,
    ).first_row
    won = f"""coupon_id IN (
        SELECT coupon_id FROM draw_outcomes
        WHERE {draws_where} AND status = 'won' AND coupon_id != '')"""
    money = dict(
        zip(
            _MONEY_NAMES,
            (
                int(v or 0)
                for v in client.query(
                    f"""SELECT {_MONEY} FROM ({
                        _WRITEOFF_EVENTS.format(where="tenant_id = {tenant_id:String} AND " + won)
                    })""",
                    parameters=params,
                ).first_row
            ),
            strict=True,
        )
    )
    return {
        "tenant_id": view.tenant_id,
        "activity_id": activity_id,
        "since": since_ms,
        "until": until_ms,
        "participants": int(participants),
        "draws": int(draws),
        "wins": int(wins),
        "coupons_won": int(coupons_won),
        "coupons_redeemed": money["coupons_redeemed"],
        "redemption_rate": _ratio(money["coupons_redeemed"], int(coupons_won)),
        "discount_cents": money["discount_cents"],
        "order_cents": money["order_cents"],
        "roi": _roi(money["order_cents"], money["discount_cents"]),
        "funnel": _funnel(
            [
                ("participants", int(participants)),
                ("draws", int(draws)),
                ("wins", int(wins)),
                ("coupons_won", int(coupons_won)),
                ("coupons_redeemed", money["coupons_redeemed"]),
            ]
        ),
    }


# -- series ---------------------------------------------------------------------

_ACTIVITY_FIGURES = f"""
    uniqExactMergeIf(events, status != 'rejected')   AS draws,
    uniqExactMergeIf(events, status = 'won')         AS wins,
    uniqExactMergeIf(events, status = 'rejected')    AS rejected,
    uniqExactMergeIf(users, status != 'rejected')    AS participants,
    {stats.summed(2, "status = 'won'")}                   AS amount_won
"""
_ACTIVITY_NAMES = ("draws", "wins", "rejected", "participants", "amount_won")

_CLAIM_FIGURES = """
    uniqExactMerge(events)                           AS claims,
    uniqExactMergeIf(events, status = 'issued')      AS issued,
    uniqExactMergeIf(events, status = 'rejected')    AS rejected,
    uniqExactMergeIf(users, status = 'issued')       AS holders
"""
_CLAIM_NAMES = ("claims", "issued", "rejected", "holders")

# Money moves with the settled statuses only; a reversal's amounts are negative.
_WRITEOFF_FIGURES = f"""
    uniqExactMergeIf(events, status = 'redeemed')    AS redeemed,
    uniqExactMergeIf(events, {_REVERSED_IN})         AS reversed,
    uniqExactMergeIf(events, status = 'rejected')    AS writeoffs_rejected,
    {stats.summed(2, stats.SETTLED_IN)}                        AS discount_cents,
    {stats.summed(3, stats.SETTLED_IN)}                        AS order_cents
"""
_WRITEOFF_NAMES = ("redeemed", "reversed", "writeoffs_rejected", "discount_cents", "order_cents")


def _rollup(
    client: Client,
    table: str,
    figures: str,
    names: tuple[str, ...],
    where: str,
    step: str,
    params: dict[str, Any],
) -> dict[int, dict[str, int]]:
    """Figures per step start (epoch ms) of the rollup rows matching ``where``."""
    sql = f"""
    SELECT toUnixTimestamp({_BUCKET[step]}) * 1000 AS at, {figures}
    FROM {table}
    WHERE {where} {_ROLLUP_RANGE}
    GROUP BY at ORDER BY at
    """
    return {
        int(at): {n: int(v or 0) for n, v in zip(names, rest, strict=True)}
        for at, *rest in client.query(sql, parameters=params).result_rows
    }


def _won_in_draws(
    client: Client, where: str, step: str, params: dict[str, Any]
) -> dict[int, dict[str, int]]:
    """Coupons won in draws per step, from the raw draw outcomes (no rollup keeps
    the coupon's template): rows matching ``where``."""
    sql = f"""
    SELECT toUnixTimestamp({_RAW_BUCKET[step]}) * 1000 AS at, uniqExact(coupon_id)
    FROM draw_outcomes
    WHERE {where} AND status = 'won' AND coupon_id != ''
      AND occurred_at >= fromUnixTimestamp64Milli({{since_ms:Int64}}, 'UTC')
      AND occurred_at < fromUnixTimestamp64Milli({{until_ms:Int64}}, 'UTC')
    GROUP BY at ORDER BY at
    """
    return {
        int(at): {"won_in_draws": int(n)}
        for at, n in client.query(sql, parameters=params).result_rows
    }


def _series(
    step: str,
    since_ms: int,
    until_ms: int,
    parts: Iterable[tuple[tuple[str, ...], dict[int, dict[str, int]]]],
) -> list[dict[str, int]]:
    """Every step start in [since, until), each with every figure (0 when none)."""
    parts = list(parts)
    names = [n for part_names, _ in parts for n in part_names]
    out = []
    for at in range(since_ms, until_ms, STEP_MS[step]):
        point = {"at": at, **dict.fromkeys(names, 0)}
        for _, rows in parts:
            point.update(rows.get(at, {}))
        out.append(point)
    return out


def _series_params(view: Visibility, step: str, since_ms: int, until_ms: int) -> dict[str, Any]:
    if step not in STEP_MS:
        raise ValueError(f"step must be one of {', '.join(STEP_MS)}")
    if since_ms % STEP_MS[step] or until_ms % STEP_MS[step] or until_ms <= since_ms:
        raise ValueError("a series' bounds are aligned on its step, since before until")
    return {**scoping.parameters(view), "since_ms": since_ms, "until_ms": until_ms}


def activity_series(
    client: Client, view: Visibility, activity_id: str, step: str, since_ms: int, until_ms: int
) -> list[dict[str, int]]:
    """One activity per step: draws (not rejected), wins, rejected, participants
    (distinct shoppers who drew in the step), amount_won (envelope cents or
    points), and coupons won (won_in_draws)."""
    params = _series_params(view, step, since_ms, until_ms)
    params["activity_id"] = activity_id
    where = "tenant_id = {tenant_id:String} AND activity_id = {activity_id:String}"
    return _series(
        step,
        since_ms,
        until_ms,
        [
            (
                _ACTIVITY_NAMES,
                _rollup(
                    client, "draw_minutes", _ACTIVITY_FIGURES, _ACTIVITY_NAMES, where, step, params
                ),
            ),
            (("won_in_draws",), _won_in_draws(client, where, step, params)),
        ],
    )


def _coupon_series(
    client: Client,
    step: str,
    since_ms: int,
    until_ms: int,
    params: dict[str, Any],
    templates: str,
    partner: str = "",
) -> list[dict[str, int]]:
    """Claims, coupons won in draws and write-offs of the templates matching the
    condition ``templates`` (``COLUMN`` in it names the template column), write-offs
    also by ``partner`` when given."""
    tenant = "tenant_id = {tenant_id:String} AND "
    claims_where = tenant + templates.replace("COLUMN", "template_id")
    draws_where = tenant + templates.replace("COLUMN", "coupon_template")
    writeoffs_where = claims_where + (f" AND {partner}" if partner else "")
    return _series(
        step,
        since_ms,
        until_ms,
        [
            (
                _CLAIM_NAMES,
                _rollup(
                    client,
                    "claim_minutes",
                    _CLAIM_FIGURES,
                    _CLAIM_NAMES,
                    claims_where,
                    step,
                    params,
                ),
            ),
            (("won_in_draws",), _won_in_draws(client, draws_where, step, params)),
            (
                _WRITEOFF_NAMES,
                _rollup(
                    client,
                    "writeoff_minutes",
                    _WRITEOFF_FIGURES,
                    _WRITEOFF_NAMES,
                    writeoffs_where,
                    step,
                    params,
                ),
            ),
        ],
    )


def template_series(
    client: Client, view: Visibility, template_id: str, step: str, since_ms: int, until_ms: int
) -> list[dict[str, int]]:
    """One coupon template per step: claims decided, issued (claims, grants,
    codes, exchanges), rejected, holders, coupons won in draws, and its
    write-offs: redeemed, reversed, writeoffs_rejected, discount and order cents
    (settled, net of reversals)."""
    params = _series_params(view, step, since_ms, until_ms)
    params["template_id"] = template_id
    return _coupon_series(client, step, since_ms, until_ms, params, "COLUMN = {template_id:String}")


def partner_series(
    client: Client, view: Visibility, partner_id: str, step: str, since_ms: int, until_ms: int
) -> list[dict[str, int]]:
    """One partner's write-offs per step: redeemed, reversed, writeoffs_rejected,
    discount and order cents (settled, net). An institution's key sees the
    write-offs of its own templates only."""
    params = _series_params(view, step, since_ms, until_ms)
    params["partner_id"] = partner_id
    where = scoping.condition(view, template_column="template_id")
    where += " AND partner_id = {partner_id:String}"
    rows = _rollup(
        client, "writeoff_minutes", _WRITEOFF_FIGURES, _WRITEOFF_NAMES, where, step, params
    )
    return _series(step, since_ms, until_ms, [(_WRITEOFF_NAMES, rows)])


def channel_series(
    client: Client,
    view: Visibility,
    partner_id: str,
    templates: Sequence[str],
    step: str,
    since_ms: int,
    until_ms: int,
) -> list[dict[str, int]]:
    """One upstream channel per step. Its coupons are those of the templates
    linked to it (``templates``: the api resolves them, keeping those the caller
    sees): every one issued in Carnival is sent upstream once (relay/channels.py),
    so issued (claims, grants, codes, exchanges) and won_in_draws are the
    channel's issuances; the upstream's write-offs are recorded for the
    channel's partner (``partner_id``), so redeemed, reversed, discount and
    order cents are write-offs of those templates by that partner.

    Not here: whether the upstream itself issued or refused each coupon (the
    issuance states live in the Redis outbox, not in ClickHouse)."""
    params = _series_params(view, step, since_ms, until_ms)
    params |= {"channel_templates": sorted(templates), "partner_id": partner_id}
    return _coupon_series(
        client,
        step,
        since_ms,
        until_ms,
        params,
        "has({channel_templates:Array(String)}, COLUMN)",
        "partner_id = {partner_id:String}",
    )


# -- budget burn ----------------------------------------------------------------

_BURN_FIGURES = f"""
    {stats.summed(2, stats.SETTLED_IN)}                        AS discount_cents,
    uniqExactMergeIf(events, status = 'redeemed')    AS redeemed,
    uniqExactMergeIf(events, status = 'reversed')    AS reversed
"""
_BURN_NAMES = ("discount_cents", "redeemed", "reversed")


def _burn(
    client: Client, where: str, params: dict[str, Any], since_ms: int, until_ms: int
) -> list[dict[str, int]]:
    """Per UTC day of [since, until): the discount cents settled that day and
    cumulated since the first write-off (before ``since`` too), and the
    redemptions net of full reversals, the same two ways."""
    params = {**params, "since_ms": 0, "until_ms": until_ms}
    days = _rollup(client, "writeoff_minutes", _BURN_FIGURES, _BURN_NAMES, where, "day", params)
    spent = redemptions = 0
    before: dict[str, int] = {"spent_total": 0, "redemptions_total": 0}
    totals: dict[int, dict[str, int]] = {}
    for at in sorted(days):
        spent += days[at]["discount_cents"]
        redemptions += days[at]["redeemed"] - days[at]["reversed"]
        totals[at] = {"spent_total": spent, "redemptions_total": redemptions}
        if at < since_ms:
            before = totals[at]
    out = []
    for at in range(since_ms, until_ms, STEP_MS["day"]):
        day = days.get(at)
        if day is not None:
            before = totals[at]
        out.append(
            {
                "at": at,
                "spent": day["discount_cents"] if day else 0,
                "redemptions": day["redeemed"] - day["reversed"] if day else 0,
                **before,
            }
        )
    return out


def template_burn(
    client: Client, view: Visibility, template_id: str, since_ms: int, until_ms: int
) -> list[dict[str, int]]:
    """A coupon template's discount burn per UTC day (see _burn)."""
    _series_params(view, "day", since_ms, until_ms)
    where = "tenant_id = {tenant_id:String} AND template_id = {template_id:String}"
    params = {"tenant_id": view.tenant_id, "template_id": template_id}
    return _burn(client, where, params, since_ms, until_ms)


def partner_burn(
    client: Client, view: Visibility, partner_id: str, since_ms: int, until_ms: int
) -> list[dict[str, int]]:
    """A partner's discount and redemption burn per UTC day, all templates (its
    budgets are the whole tenant's: the api asks for a tenant-wide key)."""
    _series_params(view, "day", since_ms, until_ms)
    where = "tenant_id = {tenant_id:String} AND partner_id = {partner_id:String}"
    params = {"tenant_id": view.tenant_id, "partner_id": partner_id}
    return _burn(client, where, params, since_ms, until_ms)
