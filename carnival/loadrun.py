"""`carnival load SCENARIO`: one Locust scenario from set-up to closing check.

1. **Set-up** (carnival.loadsetup, this process, the project venv): fresh
   entities for the run through the admin API, shopper tokens, and coupons for
   the tills, all in one JSON file ``loadtests/scenarios.py`` reads
   (``CARNIVAL_LOAD_CONFIG``).
2. **Load**: Locust, headless, in its own venv and process (``.venv-locust``,
   ``make locust``): gevent's monkey-patching breaks ray and clickhouse_connect,
   so the two never share a process. CSV and HTML reports go to the out dir.
3. **Closing check** (carnival.loadcheck): Locust's figures, `carnival
   reconcile --tenant T --topics`, then the stats, records and budgets APIs;
   every broken invariant is listed (a 5xx or any other failed request,
   oversell, a shopper over a limit, a budget overspent, a coupon redeemed
   twice without a refund between). The command exits 1 when the list is not
   empty.

What a passing run does not say: that every 202 ticket's outcome was what the
shopper would have been told (the chaos suite re-asks); throughput figures are
the whole machine's, Locust included.
"""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
from dataclasses import asdict
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlparse

import orjson

from carnival.loadcheck import Check, LocustRun, closing_check
from carnival.loadsetup import LoadConfig, LoadError, Say, Setup, set_up

SCENARIOS: Final[dict[str, tuple[str, ...]]] = {
    "flash": ("FlashRush",),
    "wheel": ("WheelStorm",),
    "writeoffs": ("PartnerTill",),
    "mixed": ("MixedDay", "MixedTill"),
}
ROOT: Final = Path(__file__).resolve().parents[1]
LOCUSTFILE: Final = ROOT / "loadtests" / "scenarios.py"
LOCUST_BIN: Final = ROOT / ".venv-locust" / "bin" / "locust"
LOOPBACK: Final = frozenset({"127.0.0.1", "localhost", "::1"})
# What scenarios.py counts as the system working as designed (a 409 is a business refusal).
SUCCESS: Final = frozenset({200, 202, 409})
# Locust must have exited this long after its --run-time (it stops users, writes reports).
LOCUST_EXIT_GRACE_S: Final = 120.0

# -- Locust ------------------------------------------------------------------------------


def locust_binary() -> Path:
    binary = Path(os.environ.get("CARNIVAL_LOCUST", LOCUST_BIN))
    if not binary.exists():
        raise LoadError(f"{binary} not found: run `make locust` (Locust gets its own venv)")
    return binary


def run_locust(
    config: LoadConfig, setup: Setup, out: Path, say: Say, extra: tuple[str, ...] = ()
) -> LocustRun:
    """Locust headless with the scenario's user classes; waits for it to exit."""
    out.mkdir(parents=True, exist_ok=True)
    config_file = out / "load-config.json"
    status_file = out / "statuses.json"
    config_file.write_bytes(orjson.dumps(setup.locust | {"status_file": str(status_file)}))
    prefix, html = out / config.scenario, out / f"{config.scenario}.html"
    command = [
        str(locust_binary()),
        *("-f", str(LOCUSTFILE), "--headless", "--only-summary"),
        *("-u", str(config.users), "-r", str(config.spawn_rate)),
        *("-t", f"{config.duration_s}s", "--host", setup.locust["api"]),
        *("--csv", str(prefix), "--html", str(html), "--stop-timeout", "10"),
        *extra,
        *SCENARIOS[config.scenario],
    ]
    env = {**os.environ, "CARNIVAL_LOAD_CONFIG": str(config_file)}
    say(f"locust: {config.users} users, spawn rate {config.spawn_rate}/s, {config.duration_s}s")
    with open(out / "locust.log", "wb") as log:
        proc = subprocess.Popen(
            command, cwd=LOCUSTFILE.parent, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            code = proc.wait(timeout=config.duration_s + LOCUST_EXIT_GRACE_S)
        except BaseException:  # a deadline, Ctrl-C, SIGTERM: Locust must not outlive us
            proc.kill()
            proc.wait()
            raise
    stats = prefix.with_name(prefix.name + "_stats.csv")
    if not stats.exists():
        tail = (out / "locust.log").read_text(errors="replace")[-3000:]
        raise LoadError(f"locust wrote no stats (exit {code}); its log:\n{tail}")
    return read_locust(prefix, html, status_file, code, config.duration_s)


def read_locust(
    prefix: Path, html: Path, status_file: Path, code: int, duration_s: int
) -> LocustRun:
    """Locust's figures. Counts come from the status file the locustfile writes
    as it quits (every answer, those of the last tasks after the run time
    included; the stats CSV is written before those); the CSV gives the failure
    messages, and its counts when the status file is missing."""
    with open(prefix.with_name(prefix.name + "_stats.csv"), newline="") as f:
        total = next(row for row in csv.DictReader(f) if row["Name"] == "Aggregated")
    messages = []
    failures_csv = prefix.with_name(prefix.name + "_failures.csv")
    if failures_csv.exists():
        with open(failures_csv, newline="") as f:
            messages = [
                f"{row['Occurrences']}× {row['Method']} {row['Name']}: {row['Error']}"
                for row in csv.DictReader(f)
            ]
    statuses = orjson.loads(status_file.read_bytes()) if status_file.exists() else {}
    requests, failures = int(total["Request Count"]), int(total["Failure Count"])
    if statuses:
        requests = sum(statuses.values())
        failed = sum(n for k, n in statuses.items() if int(k.rsplit(" ", 1)[1]) not in SUCCESS)
        failures = max(failures, failed)
    return LocustRun(
        requests=requests,
        failures=failures,
        req_per_s=round(requests / max(duration_s, 1), 1),
        statuses=statuses,
        failure_messages=messages,
        csv_prefix=prefix,
        html=html,
        returncode=code,
    )


# -- one run ------------------------------------------------------------------------------


def check_loopback(api: str) -> None:
    if urlparse(api).hostname not in LOOPBACK:
        raise LoadError(f"refusing to load-test {api!r}: only 127.0.0.1 / localhost")


def summary(
    config: LoadConfig, setup: Setup, run: LocustRun, check: Check, notes: list[str]
) -> dict[str, Any]:
    """What ``<out>/summary.json`` holds."""
    return {
        "scenario": config.scenario,
        "config": asdict(config),
        "tenant_id": setup.tenant_id,
        "run_tag": setup.tag,
        "entities": {k: v for k, v in setup.locust.items() if k not in ("tokens", "coupons",
                     "partner_secret")} | {"coupons": len(setup.locust.get("coupons", [])),
                     "shoppers": len(setup.locust["tokens"])},
        # What the closing check held the run to.
        "limits": {
            "activities": setup.activities,
            "prize_stock": setup.prize_stock,
            "templates": [asdict(t) for t in setup.templates],
            "partners": setup.partners,
            "redeem_template": setup.redeem_template,
        },
        "locust": {
            "requests": run.requests,
            "failures": run.failures,
            "req_per_s": run.req_per_s,
            "statuses": run.statuses,
            "csv": str(run.csv_prefix) + "_stats.csv",
            "html": str(run.html),
        },
        "ok": check.ok,
        "failures": check.failures,
        "reconcile": check.reconcile_output,
        "notes": notes,
    }  # fmt: skip


def run_load(
    config: LoadConfig,
    api: str,
    admin_key: str,
    out: Path,
    say: Say,
    reconcile_env: dict[str, str] | None = None,
    locust_args: tuple[str, ...] = (),
    during: contextlib.AbstractContextManager[Any] | None = None,
) -> dict[str, Any]:
    """Set up, load, check; returns the summary (also written to ``out``).
    ``reconcile_env`` points `carnival reconcile` at the stack (default: the
    environment's, or the running stack of the data directory); ``during`` is
    entered while Locust runs (the soak's sampler)."""
    check_loopback(api)
    locust_binary()  # before the set-up: say at once that the venv is missing
    setup, notes = set_up(config, api, admin_key, say)
    with during or contextlib.nullcontext():
        run = run_locust(config, setup, out, say, locust_args)
    say(f"locust: {run.requests:,} requests, {run.failures:,} failed, {run.req_per_s} req/s")
    say("closing check: carnival reconcile --topics, the stats and budgets APIs...")
    check = closing_check(setup, run, api, admin_key, reconcile_env)
    report = summary(config, setup, run, check, notes)
    (out / "summary.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
    return report
