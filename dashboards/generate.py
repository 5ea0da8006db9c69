"""The Grafana dashboards, built from the named queries in ``sql/queries/``.

Every panel and every template variable runs one named query: its ``.sql`` file
with the server-side parameters turned into Grafana template variables and
macros of the ClickHouse plugin (`to_grafana`). The JSON under
``dashboards/grafana/dashboards/`` is this module's output, committed so that
docker-compose can provision it; ``tests/streams/test_dashboards.py`` fails when
the two differ, and runs every named query on chdb.

    python -m dashboards.generate          # rewrite the JSON files
    python -m dashboards.generate --check  # exit 1 when a file is stale

A named query file opens with ``--`` comment lines: what it shows (the panel's
description), then ``-- Boards: a, b``, the boards that use it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
QUERIES_DIR = ROOT / "sql" / "queries"
BOARDS_DIR = ROOT / "dashboards" / "grafana" / "dashboards"

# The provisioned datasource: dashboards/grafana/provisioning/datasources/clickhouse.yml.
DATASOURCE: dict[str, str] = {"type": "grafana-clickhouse-datasource", "uid": "carnival-clickhouse"}
DEFAULT_TENANT = "demo"  # carnival/demo.py DEMO_TENANT, the tenant `seed-demo` creates

# A server-side parameter, {name:Type}, as clickhouse-connect binds it; not a
# Grafana variable's ${name:format}.
PARAMETER = re.compile(r"(?<!\$)\{(?P<name>[a-z_]+):(?P<type>[A-Za-z0-9(), ]+)\}")
# Parameters the plugin fills from the dashboard itself, by exact name and type:
# the time range as DateTime64(3) (plugin >= 4.0.3) and the bucket width Grafana
# picks for the panel's width and range.
MACROS: dict[tuple[str, str], str] = {
    ("from", "DateTime64(3)"): "$__fromTime_ms",
    ("to", "DateTime64(3)"): "$__toTime_ms",
    ("interval_s", "UInt32"): "$__interval_s",
}
_BOARDS_LINE = re.compile(r"--\s*Boards:\s*(?P<boards>.+)")


def to_grafana(sql: str) -> str:
    """The query text Grafana runs for a named query: ``{name:String}`` becomes
    ``${name:sqlstring}`` (the template variable of that name, quoted by Grafana
    with ``'`` doubled), the `MACROS` parameters their macro. Any other
    parameter is a `ValueError`: Grafana would send it to ClickHouse unbound."""

    def replace(match: re.Match[str]) -> str:
        name, type_ = match["name"], match["type"]
        if type_ == "String":
            return f"${{{name}:sqlstring}}"
        try:
            return MACROS[(name, type_)]
        except KeyError:
            raise ValueError(f"no Grafana mapping for the parameter {match[0]}") from None

    return PARAMETER.sub(replace, sql)


def parameters(sql: str) -> dict[str, str]:
    """Name -> ClickHouse type of every server-side parameter in ``sql``."""
    return {m["name"]: m["type"] for m in PARAMETER.finditer(sql)}


@dataclass(frozen=True, slots=True)
class NamedQuery:
    name: str
    description: str
    boards: tuple[str, ...]
    sql: str  # the SELECT, without its comment header


def parse(name: str, text: str) -> NamedQuery:
    header: list[str] = []
    lines = text.strip().splitlines()
    while lines and lines[0].startswith("--"):
        header.append(lines.pop(0))
    boards: tuple[str, ...] = ()
    words: list[str] = []
    for line in header:
        match = _BOARDS_LINE.fullmatch(line.strip())
        if match:
            boards = tuple(b.strip() for b in match["boards"].split(","))
        else:
            words.append(line.removeprefix("--").strip())
    if not boards:
        raise ValueError(f"{name}.sql: no '-- Boards: ...' line in its header")
    return NamedQuery(name, " ".join(words), boards, "\n".join(lines))


def load(queries_dir: Path = QUERIES_DIR) -> dict[str, NamedQuery]:
    """Every named query, by file stem."""
    return {p.stem: parse(p.stem, p.read_text()) for p in sorted(queries_dir.glob("*.sql"))}


PanelKind = Literal["timeseries", "stat", "barchart", "table"]


@dataclass(frozen=True, slots=True)
class Panel:
    title: str
    query: str  # a named query
    kind: PanelKind
    w: int = 12
    h: int = 8
    unit: str = "short"
    bars: bool = False  # timeseries drawn as bars (daily figures)
    stacked: bool = False


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    label: str
    query: str  # a named query listing the values


@dataclass(frozen=True, slots=True)
class Board:
    key: str  # as named in the queries' "-- Boards:" lines
    uid: str
    title: str
    description: str
    refresh: str
    time_from: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...] = field(default_factory=tuple)

    @property
    def file(self) -> str:
        return f"{self.uid}.json"


ACTIVITY = Variable("activity_id", "Activity", "activity_ids")
TEMPLATE = Variable("template_id", "Coupon template", "template_ids")
PARTNER = Variable("partner_id", "Partner", "partner_ids")

BOARDS: tuple[Board, ...] = (
    Board(
        key="flash-sale",
        uid="carnival-flash-sale",
        title="Carnival — flash sale (live)",
        description="A flash sale as it happens: claims of one coupon template and draws "
        "of one activity, second by second.",
        refresh="1s",
        time_from="now-15m",
        variables=(TEMPLATE, ACTIVITY),
        panels=(
            Panel("Claims per second", "claims_per_second", "timeseries", w=16, unit="ops"),
            Panel("Issued so far (sold-out progress)", "coupons_issued_total", "timeseries", w=8),
            Panel("Claims refused by reason", "claim_rejections_by_reason", "barchart"),
            Panel("Draws per minute", "draws_per_minute", "timeseries", bars=True, stacked=True),
            Panel("Wins per prize", "draw_wins_per_prize", "barchart", w=24),
        ),
    ),
    Board(
        key="activity",
        # The uid of the first dashboard, kept so that saved links still open it.
        uid="carnival-draws",
        title="Carnival — activity",
        description="One activity: draws, participants and wins over time, prizes won "
        "and requests refused.",
        refresh="1s",
        time_from="now-1h",
        variables=(ACTIVITY,),
        panels=(
            Panel("Totals", "activity_totals", "stat", w=24, h=4),
            Panel("Draws, participants and wins", "activity_over_time", "timeseries", w=24),
            Panel("Wins per prize", "draw_wins_per_prize", "barchart"),
            Panel("Rejections by reason", "draw_rejections_by_reason", "barchart"),
        ),
    ),
    Board(
        key="coupons",
        uid="carnival-coupons",
        title="Carnival — coupons & write-offs",
        description="Coupons issued per template, one template's redemptions, reversals, "
        "discount cost and GMV, and the tenant's points.",
        refresh="30s",
        time_from="now-7d",
        variables=(TEMPLATE,),
        panels=(
            Panel("Redemption (selected template)", "coupon_redemption_rate", "stat", w=24, h=4),
            Panel(
                "Coupons issued per template",
                "coupons_issued_by_template",
                "timeseries",
                w=24,
                stacked=True,
            ),
            Panel("Redemptions and reversals", "coupon_writeoffs_over_time", "timeseries"),
            Panel("Discount cost and GMV (cents)", "coupon_money_over_time", "timeseries"),
            Panel("Points per day", "points_by_day", "timeseries", w=24, bars=True),
        ),
    ),
    Board(
        key="partner",
        uid="carnival-partner-settlement",
        title="Carnival — partner settlement",
        description="What each partner redeemed and reversed, per UTC day, and the net it settles.",
        refresh="1m",
        time_from="now-30d",
        variables=(PARTNER,),
        panels=(
            Panel(
                "Net per day (selected partner)",
                "partner_net_by_day",
                "timeseries",
                w=24,
                bars=True,
            ),
            Panel(
                "Settlement by partner and day", "partner_settlement_by_day", "table", w=24, h=12
            ),
        ),
    ),
)


def _target(sql: str, kind: PanelKind) -> dict[str, Any]:
    series = kind == "timeseries"
    return {
        "datasource": dict(DATASOURCE),
        "editorType": "sql",
        # The plugin's format codes: 0 time series (long rows pivot into one series
        # per string column), 1 table.
        "format": 0 if series else 1,
        "queryType": "timeSeries" if series else "table",
        "rawSql": to_grafana(sql),
        "refId": "A",
    }


def _field_config(panel: Panel) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "color": {"mode": "palette-classic"}}
    if panel.kind == "timeseries":
        defaults["custom"] = {
            "drawStyle": "bars" if panel.bars else "line",
            "lineWidth": 2,
            "fillOpacity": 60 if panel.bars else 10,
            "showPoints": "never",
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
        }
    elif panel.kind == "barchart":
        defaults["custom"] = {"fillOpacity": 80, "lineWidth": 1}
    return {"defaults": defaults, "overrides": []}


_OPTIONS: dict[PanelKind, dict[str, Any]] = {
    "timeseries": {
        "legend": {"showLegend": True, "displayMode": "list", "placement": "bottom"},
        "tooltip": {"mode": "multi", "sort": "desc"},
    },
    "stat": {
        "colorMode": "value",
        "graphMode": "none",
        "justifyMode": "center",
        "textMode": "value_and_name",
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
    },
    "barchart": {
        "orientation": "horizontal",
        "showValue": "auto",
        "legend": {"showLegend": False, "displayMode": "list", "placement": "bottom"},
        "tooltip": {"mode": "single", "sort": "none"},
    },
    "table": {"showHeader": True, "cellHeight": "sm"},
}


def _panels(board: Board, queries: dict[str, NamedQuery]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    x = y = row_h = 0
    for n, panel in enumerate(board.panels, start=1):
        if x + panel.w > 24:  # wrap onto a new row under the tallest panel so far
            x, y, row_h = 0, y + row_h, 0
        query = queries[panel.query]
        out.append(
            {
                "id": n,
                "type": panel.kind,
                "title": panel.title,
                "description": query.description,
                "datasource": dict(DATASOURCE),
                # Grafana's floor for $__interval_s: one bucket per second at most.
                "interval": "1s",
                "gridPos": {"h": panel.h, "w": panel.w, "x": x, "y": y},
                "fieldConfig": _field_config(panel),
                "options": _OPTIONS[panel.kind],
                "targets": [_target(query.sql, panel.kind)],
            }
        )
        x += panel.w
        row_h = max(row_h, panel.h)
    return out


def _variables(board: Board, queries: dict[str, NamedQuery]) -> list[dict[str, Any]]:
    tenant = {
        # A textbox, not a list: a board shows one tenant, named by whoever opens it.
        "name": "tenant_id",
        "label": "Tenant",
        "type": "textbox",
        "query": DEFAULT_TENANT,
        "current": {"text": DEFAULT_TENANT, "value": DEFAULT_TENANT},
        "options": [{"selected": True, "text": DEFAULT_TENANT, "value": DEFAULT_TENANT}],
        "hide": 0,
    }
    listed = []
    for variable in board.variables:
        sql = to_grafana(queries[variable.query].sql)
        listed.append(
            {
                "name": variable.name,
                "label": variable.label,
                "type": "query",
                "datasource": dict(DATASOURCE),
                "definition": sql,
                "query": {"editorType": "sql", "queryType": "table", "rawSql": sql},
                "refresh": 1,
                "sort": 1,
                "multi": False,
                "includeAll": False,
                "current": {},
                "options": [],
                "hide": 0,
                "regex": "",
                "skipUrlSync": False,
            }
        )
    return [tenant, *listed]


def dashboard(board: Board, queries: dict[str, NamedQuery]) -> dict[str, Any]:
    """The Grafana dashboard model of one board."""
    return {
        "uid": board.uid,
        "title": board.title,
        "description": board.description,
        "tags": ["carnival", "clickhouse"],
        "editable": True,
        "graphTooltip": 1,
        "id": None,
        "schemaVersion": 39,
        "version": 1,
        "refresh": board.refresh,
        "time": {"from": board.time_from, "to": "now"},
        "timepicker": {"refresh_intervals": ["1s", "5s", "10s", "30s", "1m", "5m"]},
        "timezone": "utc",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "links": [],
        "annotations": {"list": []},
        "templating": {"list": _variables(board, queries)},
        "panels": _panels(board, queries),
    }


def render(board: Board, queries: dict[str, NamedQuery]) -> str:
    return json.dumps(dashboard(board, queries), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Grafana dashboards.")
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args(argv)
    queries = load()
    stale = []
    for board in BOARDS:
        path = BOARDS_DIR / board.file
        text = render(board, queries)
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text)
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'} {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
