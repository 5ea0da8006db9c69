"""Orchestration: one embedded stack, one phase per process killed.

A phase opens a fresh tenant (``shop``), starts the paced load in a thread,
waits until KILL_AT of it is answered, SIGKILLs the process, restarts it,
probes until a draw is decided again (the seconds to recover), restarts
anything else that died, lets the load finish (tickets polled), asks every
decided request again, and runs the checks on that tenant only.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from carnival.chaos import checks
from carnival.chaos.kill import NO_KILL, PROCESSES, kill, restart, revive
from carnival.chaos.load import Tally, plan, reask, run_load
from carnival.chaos.shop import Shop, open_shop
from carnival.chaos.table import Row
from carnival.embedded.ray_head import RayHead
from carnival.stack import LocalStack, isolated_settings
from domain.tokens import sign_shopper_token
from ledger.admin import SyncLedger
from runtime.settings import Settings

Report = Callable[[str], None]

# The kill lands once this share of the phase's planned requests is answered.
KILL_AT = 0.3
# Without --rate, a phase's load is spread over about this long (at least MIN_RATE/s).
PHASE_SECONDS = 20.0
MIN_RATE = 10.0
KILL_WAIT_S = 120.0
# How long the stack may take to decide a draw again after a restart.
RECOVER_TIMEOUT_S = 180.0
PROBE_TIMEOUT_S = 5.0
PROBE_EVERY_S = 0.2
# The load's own bound: its tickets are polled for at most load.TICKET_DEADLINE_S.
LOAD_JOIN_S = 600.0
NOTES_PER_CHECK = 3


@dataclass(frozen=True)
class ChaosConfig:
    processes: tuple[str, ...] = PROCESSES
    requests_per_phase: int = 300
    users: int = 100
    rate: float = 0.0  # requests per second; 0: spread over PHASE_SECONDS
    data_dir: Path | None = None  # None: a temporary directory, removed after
    # service name -> another command to run it with (the harness's faulty variants)
    commands: Mapping[str, Sequence[str]] = field(default_factory=dict)
    seed: int = 7
    # How long ClickHouse and the topics may take to agree with the ledger once
    # the load is over (a broken invariant costs this long to report).
    settle_s: float = 90.0

    def __post_init__(self) -> None:
        unknown = set(self.processes) - {*PROCESSES, NO_KILL}
        if unknown:
            raise ValueError(
                f"unknown process(es) {sorted(unknown)}: choose from {', '.join(PROCESSES)}"
            )
        if self.requests_per_phase < 10 or self.users < 2:
            raise ValueError("at least 10 requests per phase and 2 users")

    @property
    def pace(self) -> float:
        return self.rate or max(MIN_RATE, self.requests_per_phase / PHASE_SECONDS)


def run_chaos(
    config: ChaosConfig, report: Report = print, advance: Callable[[], None] = lambda: None
) -> list[Row]:
    """Start a stack, run one phase per process, stop the stack; the rows."""
    temp = config.data_dir is None
    data_dir = Path(tempfile.mkdtemp(prefix="carnival-chaos-")) if temp else config.data_dir
    assert data_dir is not None
    stack = LocalStack(
        isolated_settings(data_dir), report=report, commands=config.commands, usual_ports=False
    )
    try:
        started = time.monotonic()
        settings = stack.start()
        report(f"stack up in {time.monotonic() - started:.1f}s")
        rows = []
        for index, name in enumerate(config.processes):
            rows.append(Phase(stack, settings, config, report).run(name, index))
            advance()
        return rows
    finally:
        ray = stack.servers.get("ray")
        stack.stop()
        if isinstance(ray, RayHead):
            ray.remove_temp_dir()  # under /tmp, outside the data directory
        if temp:
            shutil.rmtree(data_dir, ignore_errors=True)


class Phase:
    def __init__(
        self, stack: LocalStack, settings: Settings, config: ChaosConfig, report: Report
    ) -> None:
        self.stack, self.settings, self.config, self.report = stack, settings, config, report
        self.api_url = f"http://{settings.api_host}:{settings.api_port}"

    def _redis(self) -> redis.Redis:
        return redis.Redis.from_url(self.settings.redis_url, socket_timeout=30)

    def run(self, name: str, index: int) -> Row:
        c = self.config
        client = self._redis()
        try:
            shop = open_shop(SyncLedger(client), self.api_url, c.requests_per_phase, c.users)
        finally:
            client.close()
        asks = plan(shop, c.requests_per_phase, c.seed + index)
        tally = Tally()
        runner = threading.Thread(
            target=lambda: asyncio.run(run_load(self.api_url, shop, asks, c.pace, tally)),
            name=f"chaos-load-{name}",
            daemon=True,
        )
        self.report(f"phase {name}: {len(asks)} requests at {c.pace:.0f}/s ({shop.tenant_id})")
        runner.start()
        row = Row(name)
        if name != NO_KILL:
            self._wait_under_way(tally, len(asks), runner)
            killed = time.monotonic()
            row.killed_pids = kill(self.stack, name)
            self.report(f"  killed {name} {row.killed_pids} after {tally.finished} answers")
            restart(self.stack, name)
            row.recover_s = round(self._answering(shop, row.also_restarted) - killed, 2)
            self.report(f"  {name} restarted; a draw decided again after {row.recover_s}s")
        runner.join(LOAD_JOIN_S)
        if runner.is_alive():
            raise TimeoutError(f"phase {name}: the load did not finish in {LOAD_JOIN_S:.0f}s")
        row.also_restarted += revive(self.stack)
        self._check(row, shop, tally)
        verdict = "ok" if row.ok else "FAILED: " + "; ".join(row.notes)
        self.report(f"  phase {name}: {row.acknowledged}/{row.sent} acknowledged, {verdict}")
        return row

    def _wait_under_way(self, tally: Tally, planned: int, runner: threading.Thread) -> None:
        deadline = time.monotonic() + KILL_WAIT_S
        while tally.finished < KILL_AT * planned:
            if not runner.is_alive() or time.monotonic() > deadline:
                raise TimeoutError(f"the load never got under way ({tally.finished} answers)")
            time.sleep(0.05)

    def _answering(self, shop: Shop, revived: list[str]) -> float:
        """When a fresh draw was decided at once again (monotonic clock). A process
        that died meanwhile (a dispatcher whose offset commit failed while Kafka was
        away exits by design) is restarted, as `carnival up`'s supervisor does, and
        named in ``revived``."""
        token = sign_shopper_token(shop.secret, shop.tenant_id, "probe")
        headers = {"Authorization": f"Bearer {token}"}
        path = f"/v1/activities/{shop.probe_id}/draws"
        deadline = time.monotonic() + RECOVER_TIMEOUT_S
        with httpx.Client(base_url=self.api_url, timeout=PROBE_TIMEOUT_S) as http:
            while time.monotonic() < deadline:
                revived += revive(self.stack)
                try:
                    reply = http.post(path, json={"request_id": uuid.uuid4().hex}, headers=headers)
                    if reply.status_code == 200:
                        return time.monotonic()
                except httpx.HTTPError:
                    pass  # still down
                time.sleep(PROBE_EVERY_S)
        raise TimeoutError(f"the stack decided no draw for {RECOVER_TIMEOUT_S:.0f}s after a kill")

    def _check(self, row: Row, shop: Shop, tally: Tally) -> None:
        answers, c = tally.answers, self.config
        row.sent = len(answers)
        row.acknowledged = sum(a.acknowledged for a in answers)
        odd = [a for a in answers if not a.acknowledged and a.status not in (None, 503)]
        row.unexpected = len(odd)
        row.not_acknowledged = row.sent - row.acknowledged - row.unexpected
        row.notes += [f"unexpected {a.ask.kind} answer {a.status}: {a.body}" for a in odd][:3]
        again = asyncio.run(reask(self.api_url, shop, answers))
        client = self._redis()
        try:
            ledger = checks.read_ledger(client, shop)
            s = self.settings
            found: dict[str, tuple[int, list[str]]] = {}
            for column, check in (
                ("lost", lambda n: checks.lost(answers, again, ledger, n)),
                ("oversold", lambda n: checks.oversold(shop, ledger, n)),
                ("over_limit", lambda n: checks.over_limit(ledger, n)),
                ("overspent", lambda n: checks.overspent(shop, ledger, n)),
                ("duplicated", lambda n: checks.duplicated(s.kafka_bootstrap, shop, ledger, n)),
                (
                    "reconcile",
                    lambda n: checks.reconcile(
                        client, s.streams_base_url, s.kafka_bootstrap, shop.tenant_id, c.settle_s, n
                    ),
                ),
            ):
                notes: list[str] = []
                found[column] = (check(notes), notes)
        finally:
            client.close()
        for column, (count, notes) in found.items():
            setattr(row, column, count)
            row.notes += notes[:NOTES_PER_CHECK]
            if len(notes) > NOTES_PER_CHECK:
                row.notes.append(f"... {len(notes) - NOTES_PER_CHECK} more {column}")
