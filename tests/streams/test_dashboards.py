"""The Grafana dashboards and the named queries behind them.

Every panel and every template variable of every dashboard runs a named query
from ``sql/queries/`` (mapped to Grafana by `generate.to_grafana`), the JSON is
what ``dashboards/generate.py`` makes, and every named query runs on the
embedded ClickHouse (the session's chdb: one data directory per process) and
returns rows for a tenant with a little of everything.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from clickhouse_connect.driver.client import Client

from dashboards import generate
from domain.claims import ClaimOutcome, ClaimStatus
from domain.coupon_changes import CouponChange
from domain.events import DrawOutcome, OutcomeStatus
from domain.writeoffs import Writeoff, WriteoffOp, WriteoffStatus
from streams import clickhouse, migrations
from tests.streams.test_rollups import signin

PLUGIN = "grafana-clickhouse-datasource"
DATASOURCES = generate.ROOT / "dashboards" / "grafana" / "provisioning" / "datasources"

DAY1 = 1_760_000_000_000  # 2025-10-09 08:53:20 UTC
DAY2 = DAY1 + 86_400_000
BATCH = "carnival.test:0:0"
NAMED = generate.load()


def boards() -> list[Path]:
    return sorted(generate.BOARDS_DIR.glob("*.json"))


def load_board(path: Path) -> dict[str, Any]:
    board = json.loads(path.read_text())
    assert isinstance(board, dict)
    return board


def queries_of(board: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, rawSql) of every panel target and every query variable."""
    found = [
        (f"panel {panel['title']!r}", target["rawSql"])
        for panel in board["panels"]
        for target in panel["targets"]
    ]
    found += [
        (f"variable {v['name']!r}", v["query"]["rawSql"])
        for v in board["templating"]["list"]
        if v["type"] == "query"
    ]
    return found


@pytest.fixture(scope="module")
def by_grafana_sql() -> dict[str, str]:
    """Grafana's text of each named query -> its name."""
    texts = {generate.to_grafana(q.sql): name for name, q in NAMED.items()}
    assert len(texts) == len(NAMED), "two named queries map to the same Grafana text"
    return texts


# -- the mapping (pure) --------------------------------------------------------


def test_mapping_turns_parameters_into_variables_and_macros() -> None:
    sql = (
        "SELECT toStartOfInterval(occurred_at, toIntervalSecond({interval_s:UInt32})) AS time"
        " FROM t WHERE tenant_id = {tenant_id:String} AND partner_id = {partner_id:String}"
        " AND occurred_at >= {from:DateTime64(3)} AND occurred_at < {to:DateTime64(3)}"
    )
    assert generate.to_grafana(sql) == (
        "SELECT toStartOfInterval(occurred_at, toIntervalSecond($__interval_s)) AS time"
        " FROM t WHERE tenant_id = ${tenant_id:sqlstring} AND partner_id = ${partner_id:sqlstring}"
        " AND occurred_at >= $__fromTime_ms AND occurred_at < $__toTime_ms"
    )


@pytest.mark.parametrize(
    "placeholder", ["{from:DateTime}", "{since:DateTime64(3)}", "{limit:UInt32}", "{n:Int64}"]
)
def test_a_parameter_without_a_mapping_is_refused(placeholder: str) -> None:
    with pytest.raises(ValueError, match="no Grafana mapping"):
        generate.to_grafana(f"SELECT 1 WHERE x = {placeholder}")


def test_named_queries_are_tenant_scoped_deduplicated_selects() -> None:
    assert NAMED, "no named queries in sql/queries/"
    keys = {b.key for b in generate.BOARDS}
    for name, query in NAMED.items():
        assert query.sql.lstrip().upper().startswith("SELECT"), name
        assert ";" not in query.sql, f"{name}: one statement per file"
        assert query.description, f"{name}: say what it shows in the header"
        assert set(query.boards) <= keys, f"{name}: unknown board in {query.boards}"
        assert generate.parameters(query.sql).get("tenant_id") == "String", name
        # Events are at-least-once: a redelivered row must not count twice. Only the
        # variables' value lists (SELECT DISTINCT) need neither.
        if not query.sql.startswith("SELECT DISTINCT"):
            deduped = "FINAL" in query.sql or "uniqExact" in query.sql
            assert deduped, f"{name}: count with uniqExact(event_id) or read FINAL"


def test_named_queries_are_not_migrations() -> None:
    # migrations.load globs sql/ for NNN_*.sql without recursing; even scanned
    # directly, no named query's file name would pass for a migration.
    assert migrations.load(generate.QUERIES_DIR) == []
    assert all(m.file in {p.name for p in migrations.SQL_DIR.iterdir()} for m in migrations.load())


# -- the dashboards ------------------------------------------------------------


def test_every_board_is_generated_and_up_to_date() -> None:
    expected = {board.file: generate.render(board, NAMED) for board in generate.BOARDS}
    assert {p.name for p in boards()} == set(expected), "a dashboard is missing or not generated"
    for path in boards():
        assert path.read_text() == expected[path.name], (
            f"{path.name} is stale: run python -m dashboards.generate"
        )
    assert generate.main(["--check"]) == 0


@pytest.mark.parametrize("path", boards(), ids=lambda p: p.name)
def test_board_loads_and_uses_the_clickhouse_plugin(path: Path) -> None:
    (datasource,) = yaml.safe_load((DATASOURCES / "clickhouse.yml").read_text())["datasources"]
    wanted = {"type": PLUGIN, "uid": datasource["uid"]}
    assert datasource["type"] == PLUGIN
    board = load_board(path)
    assert board["uid"] and board["title"]
    assert board["panels"], f"{path.name} has no panels"
    for panel in board["panels"]:
        assert panel["datasource"] == wanted, panel["title"]
        assert panel["targets"], f"panel {panel['title']!r} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == wanted, panel["title"]
            assert target["editorType"] == "sql"
    variables = board["templating"]["list"]
    assert variables[0]["name"] == "tenant_id"
    for variable in variables:
        if variable["type"] == "query":
            assert variable["datasource"] == wanted, variable["name"]


@pytest.mark.parametrize("path", boards(), ids=lambda p: p.name)
def test_every_board_query_is_a_named_query(path: Path, by_grafana_sql: dict[str, str]) -> None:
    board = load_board(path)
    declared = {v["name"] for v in board["templating"]["list"]}
    for where, sql in queries_of(board):
        assert sql in by_grafana_sql, f"{path.name}: {where} runs a query not in sql/queries/"
        assert generate.PARAMETER.search(sql) is None, f"{where}: an unmapped parameter"
        wanted = generate.parameters(NAMED[by_grafana_sql[sql]].sql)
        variables = {n for n, t in wanted.items() if t == "String"}
        assert variables <= declared, f"{path.name}: {where} needs {variables - declared}"


def test_every_named_query_is_used_where_its_header_says(by_grafana_sql: dict[str, str]) -> None:
    key_of = {board.file: board.key for board in generate.BOARDS}
    used: dict[str, set[str]] = {name: set() for name in NAMED}
    for path in boards():
        for _, sql in queries_of(load_board(path)):
            used[by_grafana_sql[sql]].add(key_of[path.name])
    for name, query in NAMED.items():
        assert used[name], f"{name}.sql is used by no panel or variable"
        assert used[name] == set(query.boards), f"{name}.sql: header says {query.boards}"


def test_the_provisioned_folder_is_where_the_boards_are() -> None:
    compose = yaml.safe_load((generate.ROOT / "docker-compose.yml").read_text())
    mounts = dict(str(v).split(":")[:2][::-1] for v in compose["services"]["grafana"]["volumes"])
    provider = generate.ROOT / "dashboards" / "grafana" / "provisioning" / "dashboards"
    (entry,) = yaml.safe_load((provider / "carnival.yml").read_text())["providers"]
    source = mounts[entry["options"]["path"]]
    assert (generate.ROOT / source).resolve() == generate.BOARDS_DIR


# -- every named query on the embedded ClickHouse -------------------------------


def draw(
    tenant: str,
    n: int,
    user: str,
    status: OutcomeStatus,
    prize: str = "",
    coupon: str = "",
    points_spent: int = 0,
) -> DrawOutcome:
    return DrawOutcome(
        event_id=f"{user}:d{n}",
        tenant_id=tenant,
        activity_id="act-1",
        user_id=user,
        request_id=f"d{n}",
        status=status,
        prize_id=prize,
        prize_name=f"Prize {prize}" if status == "won" else "",
        prize_kind=("coupon" if coupon else "physical") if status == "won" else "",
        reason="user_limit_reached" if status == "rejected" else "",
        batch_id=BATCH,
        occurred_at=DAY1 + n * 1000,
        coupon_id=coupon,
        coupon_template="tpl-1" if coupon else "",
        points_spent=points_spent,
    )


def claim(tenant: str, n: int, user: str, status: ClaimStatus, reason: str = "") -> ClaimOutcome:
    issued = status == "issued"
    return ClaimOutcome(
        event_id=f"{user}:c{n}",
        tenant_id=tenant,
        template_id="tpl-1",
        user_id=user,
        request_id=f"c{n}",
        status=status,
        reason=reason,
        coupon_id=f"cp{n}" if issued else "",
        valid_from=None,
        valid_until=None,
        batch_id=BATCH,
        occurred_at=DAY1 + n * 1000,
        source="claim" if issued else "",
    )


def writeoff(
    tenant: str,
    partner: str,
    request: str,
    coupon: str,
    op: WriteoffOp,
    status: WriteoffStatus,
    order_cents: int,
    discount_cents: int,
    at: int,
    reason: str = "",
) -> Writeoff:
    return Writeoff(
        event_id=f"{partner}:{request}",
        tenant_id=tenant,
        template_id="tpl-1",
        coupon_id=coupon,
        user_id="u1",
        partner_id=partner,
        request_id=request,
        digest="d",
        op=op,
        status=status,
        reason=reason,
        detail="",
        order_id=f"o-{request}",
        order_cents=order_cents,
        discount_cents=discount_cents,
        batch_id=BATCH,
        occurred_at=at,
    )


def deliver(client: Client, tenant: str) -> None:
    """A flash sale of one tenant: draws, claims, write-offs by two partners on two
    days, a void and some points; a few events delivered twice, as on a replay."""
    draws = [
        draw(tenant, 1, "u1", "won", "p1", coupon="cp-d1", points_spent=10),
        draw(tenant, 2, "u2", "won", "p1"),
        draw(tenant, 3, "u3", "won", "p2"),
        draw(tenant, 4, "u4", "lost", "luck"),
        draw(tenant, 5, "u5", "rejected"),
        draw(tenant, 6, "u1", "lost", "luck"),
    ]
    clickhouse.insert_outcomes(client, [*draws, draws[0]])
    clickhouse.insert_outcomes(client, draws[:2])
    claims = [
        claim(tenant, 1, "u1", "issued"),
        claim(tenant, 2, "u2", "issued"),
        claim(tenant, 3, "u3", "issued"),
        claim(tenant, 4, "u4", "rejected", "sold_out"),
        claim(tenant, 5, "u5", "rejected", "user_limit_reached"),
    ]
    clickhouse.insert_claims(client, claims)
    clickhouse.insert_claims(client, claims[:1])
    writeoffs = [
        writeoff(tenant, "pa", "r1", "cp1", "redeem", "redeemed", 10_000, 1_000, DAY1 + 60_000),
        writeoff(tenant, "pa", "r2", "cp2", "redeem", "redeemed", 5_000, 500, DAY1 + 61_000),
        writeoff(tenant, "pa", "r3", "cp2", "reverse", "reversed", -5_000, -500, DAY1 + 62_000),
        writeoff(tenant, "pb", "r4", "cp3", "redeem", "redeemed", 8_000, 800, DAY2),
        writeoff(
            tenant, "pb", "r5", "cp1", "redeem", "rejected", 0, 0, DAY2 + 1,
            reason="coupon_already_redeemed",
        ),
    ]  # fmt: skip
    clickhouse.insert_writeoffs(client, writeoffs)
    clickhouse.insert_writeoffs(client, writeoffs[:1])  # redelivered: counted once
    void = CouponChange(
        event_id="u3:void-cp3",
        tenant_id=tenant,
        template_id="tpl-1",
        coupon_id="cp3",
        user_id="u3",
        request_id="void-cp3",
        op="void",
        status="voided",
        reason="",
        note="fraud",
        batch_id=BATCH,
        occurred_at=DAY2 + 2,
    )
    clickhouse.insert_changes(client, [void])
    clickhouse.insert_points(client, [signin(tenant, "u1", 5, DAY1), signin(tenant, "u2", 7, DAY2)])


@pytest.fixture(scope="module")
def tenant(ch_client: Client) -> str:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    deliver(ch_client, tenant)
    # The same ids under another tenant: none of it may reach the first's figures.
    deliver(ch_client, f"{tenant}-other")
    return tenant


def at(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)


def run(client: Client, name: str, tenant: str) -> list[dict[str, Any]]:
    """A named query with the values the dashboard would bind: the sale's tenant,
    activity, template and partner, two days of time range, one-minute buckets."""
    sql = NAMED[name].sql
    values: dict[str, Any] = {
        "tenant_id": tenant,
        "activity_id": "act-1",
        "template_id": "tpl-1",
        "partner_id": "pa",
        "from": at(DAY1 - 3_600_000),
        "to": at(DAY2 + 3_600_000),
        "interval_s": 60,
    }
    wanted = generate.parameters(sql)
    assert set(wanted) <= set(values), f"{name}: no test value for {set(wanted) - set(values)}"
    result = client.query(sql, parameters={k: values[k] for k in wanted})
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


SERIES = {p.query for b in generate.BOARDS for p in b.panels if p.kind == "timeseries"}


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_query_returns_rows(ch_client: Client, tenant: str, name: str) -> None:
    rows = run(ch_client, name, tenant)
    assert rows, f"{name} returned no rows"
    if name in SERIES:
        assert next(iter(rows[0])) == "time", f"{name}: a time series returns its time first"


def test_activity_totals_count_each_event_once(ch_client: Client, tenant: str) -> None:
    (row,) = run(ch_client, "activity_totals", tenant)
    assert row == {
        "draws": 5,  # the rejected request is not a draw
        "participants": 4,  # u5 was only refused; u1 drew twice
        "wins": 3,
        "rejections": 1,
        "win_rate": pytest.approx(3 / 5),
    }


def test_wins_per_prize(ch_client: Client, tenant: str) -> None:
    rows = run(ch_client, "draw_wins_per_prize", tenant)
    assert rows == [{"prize": "Prize p1", "wins": 2}, {"prize": "Prize p2", "wins": 1}]


def test_sold_out_progress_ends_at_the_issued_count(ch_client: Client, tenant: str) -> None:
    rows = run(ch_client, "coupons_issued_total", tenant)
    assert rows[-1]["issued_total"] == 3
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


def test_redemption_rate(ch_client: Client, tenant: str) -> None:
    (row,) = run(ch_client, "coupon_redemption_rate", tenant)
    # Issued: three claims and one coupon won in a draw; cp2 was redeemed then reversed.
    assert row == {
        "issued": 4,
        "redemptions": 3,
        "reversals": 1,
        "redemption_rate": pytest.approx(2 / 4),
    }


def test_partner_settlement_by_day(ch_client: Client, tenant: str) -> None:
    rows = run(ch_client, "partner_settlement_by_day", tenant)
    assert [(str(r["day"]), r["partner_id"]) for r in rows] == [
        ("2025-10-09", "pa"),
        ("2025-10-10", "pb"),
    ]
    pa = rows[0]
    assert (pa["redemptions"], pa["reversals"]) == (2, 1)
    assert (pa["redeemed_discount_cents"], pa["reversed_discount_cents"]) == (1_500, 500)
    assert (pa["net_discount_cents"], pa["net_order_cents"]) == (1_000, 10_000)
    assert (rows[1]["net_discount_cents"], rows[1]["net_order_cents"]) == (800, 8_000)


def test_points_by_day(ch_client: Client, tenant: str) -> None:
    rows = run(ch_client, "points_by_day", tenant)
    figures = [(r["earned"], r["spent"], r["net"]) for r in rows]
    # Day 1: u1 signed in (5) and paid 10 for a draw; day 2: u2 signed in (7).
    assert figures == [(5, 10, -5), (7, 0, 7)]


def test_issued_per_template_counts_claims_and_draws(ch_client: Client, tenant: str) -> None:
    rows = run(ch_client, "coupons_issued_by_template", tenant)
    # Three claims (one redelivered) and one coupon won in a draw (redelivered twice).
    assert {r["template_id"] for r in rows} == {"tpl-1"}
    assert sum(r["issued"] for r in rows) == 4
