"""Every Locust scenario, tiny, through `carnival load` against one embedded
stack of its own (Locust from .venv-locust, which scripts/bootstrap.sh makes):
each run's closing check must pass, and the same check, given limits smaller
than what the runs really did, must report each broken invariant."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from carnival.cli import app
from carnival.loadcheck import closing_check
from carnival.loadrun import LOCUST_BIN, SCENARIOS
from carnival.loadsetup import Setup, TemplateLimits
from carnival.loadstack import RunningStack, embedded_stack

USERS = 4
SECONDS = 10
# Requests each scenario must have sent with these names (and 200 for at least one):
# the scenario reached every endpoint it claims to load.
EXPECTED = {
    "flash": {"POST claims (flash)", "GET flash page"},
    "wheel": {"POST draws"},
    "writeoffs": {"POST partner redemptions"},
    "mixed": {
        "POST draws",
        "POST claims",
        "POST exchanges",
        "POST signins",
        "GET points",
        "GET wallet",
        "POST wallet best",
        "POST partner redemptions",
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    # Not a skip: CI makes the venv (scripts/bootstrap.sh), and a missing one is a failure.
    assert LOCUST_BIN.exists(), f"no {LOCUST_BIN}: run `make locust` (scripts/bootstrap.sh does)"
    with embedded_stack(tmp_path_factory.mktemp("loadtests"), print) as running:
        yield running


@pytest.fixture(scope="module")
def runs(
    stack: RunningStack, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, dict[str, Any]]]:
    """`carnival load SCENARIO` once per scenario; the summaries by scenario."""
    out = tmp_path_factory.mktemp("load-reports")
    summaries: dict[str, dict[str, Any]] = {}
    with pytest.MonkeyPatch.context() as env:
        # `carnival reconcile`, run by the closing check, finds this stack through these.
        for name, value in stack.reconcile_env.items():
            env.setenv(name, value)
        for scenario in SCENARIOS:
            args = ["load", scenario, "--users", str(USERS), "--spawn-rate", str(USERS)]
            args += ["--time", f"{SECONDS}s", "--host", stack.api, "--api-key", stack.admin_key]
            args += ["--out", str(out / scenario)]
            result = CliRunner().invoke(app, args)
            summary_file = out / scenario / "summary.json"
            summary = orjson.loads(summary_file.read_bytes()) if summary_file.exists() else {}
            summaries[scenario] = {
                "exit_code": result.exit_code,
                "output": result.output,
                "summary": summary,
                "out": out / scenario,
            }
    yield summaries


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_scenario_passes_its_closing_check(scenario: str, runs: dict[str, dict]) -> None:
    run = runs[scenario]
    summary = run["summary"]
    assert run["exit_code"] == 0 and summary["ok"], run["output"]
    assert summary["failures"] == []
    locust = summary["locust"]
    assert locust["requests"] > 0 and locust["failures"] == 0
    assert not [k for k in locust["statuses"] if not k.endswith((" 200", " 202", " 409"))]
    names = {key.rsplit(" ", 1)[0] for key in locust["statuses"]}
    assert names >= EXPECTED[scenario], names
    assert any(k.endswith(" 200") for k in locust["statuses"])
    assert "ledger and ClickHouse agree" in summary["reconcile"]
    assert "ledger and the outcome topics agree" in summary["reconcile"]
    out: Path = run["out"]
    for report in (f"{scenario}.html", f"{scenario}_stats.csv", "summary.json"):
        assert (out / report).stat().st_size > 0, report


def test_flash_sale_sells_out_exactly(runs: dict[str, dict], stack: RunningStack) -> None:
    """The rush asks for far more than the stock: every unit goes, none more."""
    import httpx

    summary = runs["flash"]["summary"]
    statuses = summary["locust"]["statuses"]
    template_id = summary["entities"]["flash_template_id"]
    with httpx.Client(base_url=stack.api, headers={"X-Api-Key": stack.admin_key}) as admin:
        view = admin.get(f"/v1/admin/templates/{template_id}").json()
    stock = view["template"]["limits"]["stock"]
    assert statuses["POST claims (flash) 409"] > stock  # many more asked than there was
    assert (view["issued"], view["stock_left"]) == (stock, 0)


def test_closing_check_reports_impossible_limits(
    runs: dict[str, dict], stack: RunningStack
) -> None:
    """The runs' real figures held to limits they never had: a stock one below
    what the flash sale issued, one draw per shopper on the storm's wheel, a
    budget of one cent for the tills' template. The same check must report
    each broken invariant, and nothing else."""
    import httpx

    flash, wheel, tills = (runs[s]["summary"] for s in ("flash", "wheel", "writeoffs"))
    template_id = flash["entities"]["flash_template_id"]
    till_template = tills["limits"]["redeem_template"]
    with httpx.Client(base_url=stack.api, headers={"X-Api-Key": stack.admin_key}) as admin:
        issued = admin.get(f"/v1/admin/templates/{template_id}").json()["issued"]
        discount = admin.get(f"/v1/stats/templates/{till_template}").json()["discount_cents"]
    assert discount > 1
    doctored = Setup(
        "doctored",
        flash["tenant_id"],
        {"api": stack.api},
        activities={wheel["entities"]["activity_id"]: 1},
        templates=[
            TemplateLimits(template_id, issued - 1, 1, None),
            TemplateLimits(till_template, None, 0, 1),
        ],
    )
    check = closing_check(doctored, None, stack.api, stack.admin_key, stack.reconcile_env)
    assert not check.ok
    assert [f.split(":")[0] for f in check.failures] == [
        "user over a limit",
        "oversell",
        "budget overspent",
    ], check.failures
    assert check.failures[1].startswith(f"oversell: template {template_id} issued {issued}")
    assert check.failures[2].startswith(
        f"budget overspent: template {till_template} gave {discount}"
    )
