"""Detail records through the real api and streams worker: a million write-offs
produced onto their Kafka topic (some twice, as an at-least-once stream
delivers them), stored by the worker, then downloaded as one CSV through the
api's streaming proxy while the peak RSS of both processes is measured; and
every bad request a clear 4xx.

Why the bounds hold. The worker reads the export in keyset chunks of
``streams.records.CHUNK_ROWS`` rows and writes each before reading the next;
the api relays the bytes as they come. Neither ever holds the result, so what
each gains during the export is a fixed amount, whatever the row count: the
engine's sort of one chunk, its caches, a few socket buffers. So the api may
gain a few MB (far below the CSV's size), the worker its chunk sort (below the
CSV's size, which a materialised export would add several times over: chdb's
CSVWithNames result alone is +940 MB), and neither may gain more than
FLAT_MARGIN over the second half of the rows. The worker is restarted before
the export: storing a million rows leaves it a large heap, whose free space
would otherwise hide what the export uses.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from domain.topics import WRITEOFFS, pack
from domain.writeoffs import Writeoff
from streams.records import TABLES
from tests.pipeline.conftest import Pipeline, Tenant, assert_error, wait_for

ROWS = 1_000_000
# Events per Kafka record, as the dispatcher packs a batch's outcomes per owner.
PER_RECORD = 100
# The first events are produced a second time: a dispatcher replaying a batch.
REDELIVERED = 20_000
SPACING_MS = 37  # a million write-offs over ~10 hours, up to now
INGEST_TIMEOUT_S = 300.0
EXPORT_TIMEOUT_S = 120.0
RESTART_TIMEOUT_S = 120.0
SAMPLE_EVERY_S = 0.01
MB = 1024 * 1024
# What each process may gain while the export runs (see the module docstring):
# measured +61 MB for the engine's chunk sort on a standalone chdb, and a few MB
# for the api's relay.
STREAMS_GROWTH_BOUND = 160 * MB
API_GROWTH_BOUND = 48 * MB
# What the second half of the rows may add to the peak of the first half: a
# materialised export would add half the CSV (61 MB) or more.
FLAT_MARGIN = 24 * MB


def _template(http: httpx.Client, tenant: Tenant, institution_id: str | None = None) -> str:
    body: dict[str, Any] = {
        "name": "5 off from 20",
        "kind": "fixed",
        "amount_cents": 500,
        "threshold_cents": 2000,
        "validity": {"days_after_claim": 30},
    }
    if institution_id is not None:
        body["institution_id"] = institution_id
    created = http.post("/v1/admin/templates", json=body, headers=tenant.staff_headers)
    assert created.status_code == 201, created.text
    return created.json()["template"]["id"]


def _redeemed(http: httpx.Client, tenant: Tenant, template_id: str) -> int | None:
    """Redemptions of a template in ClickHouse per its stats; None while they do not answer."""
    reply = http.get(f"/v1/stats/templates/{template_id}", headers=tenant.staff_headers)
    return reply.json().get("redeemed") if reply.status_code == 200 else None


def _records(tenant_id: str, template_id: str, first_at: int) -> Iterator[bytes]:
    """Kafka record values of ROWS redemptions, PER_RECORD events each, then the
    first REDELIVERED events again."""
    encode = Writeoff.encoder()

    def event(n: int) -> bytes:
        return encode(
            f"p1:r{n:07d}", tenant_id, template_id, f"c{n:07d}", f"u{n % 50_000}", "p1",
            f"r{n:07d}", "d", "redeem", "redeemed", "", "", f"o{n:07d}", 2500, 500,
            "carnival.test:0:0", first_at + n * SPACING_MS,
        )  # fmt: skip

    for n in (*range(0, ROWS, PER_RECORD), *range(0, REDELIVERED, PER_RECORD)):
        yield pack([event(i) for i in range(n, n + PER_RECORD)])


def _produce(bootstrap: str, key: bytes, values: Iterator[bytes]) -> None:
    async def run() -> None:
        producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1 * MB
        )
        await producer.start()
        try:
            pending = []
            for value in values:
                pending.append(await producer.send(WRITEOFFS.name, value, key=key))
                if len(pending) >= 500:  # bound what waits in the producer
                    await asyncio.gather(*pending)
                    pending.clear()
            await asyncio.gather(*pending)
        finally:
            await producer.stop()

    asyncio.run(run())


def _status(pid: int, field: str) -> int:
    """A VmRSS / VmHWM figure of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for pid {pid}")


class Peaks:
    """Peak RSS of some processes from now on: their kernel high-water marks
    reset (clear_refs 5), and VmRSS sampled every SAMPLE_EVERY_S as well."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.before = {name: _status(pid, "VmRSS") for name, pid in pids.items()}
        self.sampled = dict(self.before)
        for pid in pids.values():
            Path(f"/proc/{pid}/clear_refs").write_text("5")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            for name, pid in self.pids.items():
                self.sampled[name] = max(self.sampled[name], _status(pid, "VmRSS"))

    def peak(self) -> dict[str, int]:
        """The peak of each so far."""
        return {
            name: max(self.sampled[name], _status(pid, "VmHWM")) for name, pid in self.pids.items()
        }

    def stop(self) -> dict[str, dict[str, int]]:
        self._stop.set()
        self._thread.join()
        peak = self.peak()
        return {name: {"before": self.before[name], "peak": peak[name]} for name in self.pids}


def _key(line: bytes) -> tuple[int, str]:
    # Our ids hold no comma or quote: the first two fields split plainly.
    at, event_id, _ = line.split(b",", 2)
    return int(at), event_id.strip(b'"').decode()


def test_a_million_writeoffs_export_as_one_csv_in_bounded_memory(
    pipeline: Pipeline, http: httpx.Client
) -> None:
    tenant = pipeline.tenant()
    template_id = _template(http, tenant)
    first_at = int(time.time() * 1000) - ROWS * SPACING_MS

    started = time.monotonic()
    _produce(
        pipeline.settings.kafka_bootstrap,
        template_id.encode(),
        _records(tenant.tenant_id, template_id, first_at),
    )
    produced_s = time.monotonic() - started
    wait_for(
        lambda: _redeemed(http, tenant, template_id) == ROWS,
        INGEST_TIMEOUT_S,
        f"{ROWS} write-offs in ClickHouse",
        every=2.0,
    )
    stored_s = time.monotonic() - started
    # Storing a million events and answering the stats over them grew the worker's
    # heap (see the README); memory freed since would hide what the export uses.
    # A restarted worker (same data directory) measures the export on its own.
    ingest_rss = _status(pipeline.streams.pid, "VmRSS")  # type: ignore[arg-type]
    pipeline.streams.stop()
    pipeline.streams.start(timeout=RESTART_TIMEOUT_S)

    # The first page, through the api: the CSV must start with the same rows.
    page = http.get(
        "/v1/stats/records/writeoffs", params={"limit": 1000}, headers=tenant.staff_headers
    )
    assert page.status_code == 200, page.text
    first_page = [(r["occurred_at"], r["event_id"]) for r in page.json()["rows"]]
    assert first_page[0] == (first_at + (ROWS - 1) * SPACING_MS, f"p1:r{ROWS - 1:07d}")

    peaks = Peaks({"streams": pipeline.streams.pid, "api": pipeline.api.pid})  # type: ignore[dict-item]
    began = time.monotonic()
    rows, size, head, last = 0, 0, b"", (2**63, "")
    firsts: list[tuple[int, str]] = []
    half: dict[str, int] = {}
    try:
        with httpx.stream(
            "GET",
            f"{pipeline.url}/v1/stats/records/writeoffs.csv",
            headers=tenant.staff_headers,
            timeout=EXPORT_TIMEOUT_S,
        ) as reply:
            assert reply.status_code == 200, reply.read()
            assert reply.headers["content-type"].startswith("text/csv")
            assert reply.headers["content-disposition"] == (
                f'attachment; filename="writeoffs-{tenant.tenant_id}.csv"'
            )
            rest = b""
            for data in reply.iter_raw(1 << 16):
                size += len(data)
                *lines, rest = (rest + data).split(b"\n")
                for line in lines:
                    if not head:
                        head = line
                        continue
                    key = _key(line)
                    # Strictly newest first: no event twice, none out of order.
                    assert key < last, (key, last)
                    last = key
                    rows += 1
                    if rows == ROWS // 2:
                        half = peaks.peak()
                    if len(firsts) < len(first_page):
                        firsts.append(key)
            assert rest == b""
    finally:
        memory = peaks.stop()
    export_s = time.monotonic() - began

    print(
        f"\nrecords export: produced {ROWS + REDELIVERED:,} events in {produced_s:.1f} s, "
        f"all in ClickHouse after {stored_s:.1f} s (worker RSS then {ingest_rss / MB:.0f} MB, "
        f"restarted in {pipeline.streams.start_seconds:.1f} s); CSV {rows:,} rows + header, "
        f"{size:,} bytes ({size / MB:.1f} MB) in {export_s:.1f} s"
    )
    for name, m in memory.items():
        print(
            f"  {name}: RSS before {m['before'] / MB:.1f} MB, peak at half the rows "
            f"{half[name] / MB:.1f} MB, during the whole export {m['peak'] / MB:.1f} MB "
            f"(+{(m['peak'] - m['before']) / MB:.1f} MB)"
        )
    assert head.decode() == ",".join(TABLES["writeoffs"].columns)
    assert rows == ROWS
    assert last == (first_at, "p1:r0000000")
    assert firsts == first_page
    streams_growth = memory["streams"]["peak"] - memory["streams"]["before"]
    api_growth = memory["api"]["peak"] - memory["api"]["before"]
    assert streams_growth < min(STREAMS_GROWTH_BOUND, size), streams_growth
    assert api_growth < min(API_GROWTH_BOUND, size // 4), api_growth
    # Bounded, not merely small: the second half of the rows costs no more memory.
    for name, m in memory.items():
        assert m["peak"] - half[name] < FLAT_MARGIN, (name, half[name], m["peak"])


@pytest.fixture(scope="module")
def small(pipeline: Pipeline) -> Iterator[tuple[Tenant, str, str]]:
    """A tenant with a template of branch-a (and one of the whole tenant), three
    of its write-offs stored, and an analyst key scoped to branch-a."""
    with httpx.Client(base_url=pipeline.url, timeout=30) as http:
        yield _small(pipeline, http)


def _small(pipeline: Pipeline, http: httpx.Client) -> tuple[Tenant, str, str]:
    tenant = pipeline.tenant()
    branch_template = _template(http, tenant, "branch-a")
    other_template = _template(http, tenant)
    at = int(time.time() * 1000) - 60_000

    def values() -> Iterator[bytes]:
        encode = Writeoff.encoder()
        for n, template in enumerate((branch_template, other_template, branch_template)):
            yield pack(
                [
                    encode(
                        f"p1:s{n}", tenant.tenant_id, template, f"c{n}", "u1", "p1", f"s{n}",
                        "d", "redeem", "redeemed", "", "", f"o{n}", 2500, 500, "b", at + n,
                    )
                ]
            )  # fmt: skip

    _produce(pipeline.settings.kafka_bootstrap, b"small", values())
    for template, n in ((branch_template, 2), (other_template, 1)):
        wait_for(
            lambda t=template, n=n: _redeemed(http, tenant, t) == n,
            60,
            "the small tenant's write-offs",
        )
    scoped = pipeline.ledger.create_api_key(tenant.tenant_id, "analyst", "branch", "branch-a")
    return tenant, branch_template, scoped


def test_a_branch_key_sees_its_templates_records_only(
    small: tuple[Tenant, str, str], http: httpx.Client
) -> None:
    tenant, branch_template, scoped = small
    headers = {"X-Api-Key": scoped}
    page = http.get("/v1/stats/records/writeoffs", params={"limit": 1}, headers=headers)
    assert page.status_code == 200, page.text
    body = page.json()
    assert [r["event_id"] for r in body["rows"]] == ["p1:s2"]
    after = http.get(
        "/v1/stats/records/writeoffs",
        params={"limit": 1, "cursor": body["next_cursor"]},
        headers=headers,
    ).json()
    assert [r["event_id"] for r in after["rows"]] == ["p1:s0"] and after["next_cursor"] is None
    csv = http.get("/v1/stats/records/writeoffs.csv", headers=headers)
    assert csv.status_code == 200 and csv.text.count("\n") == 3
    whole = http.get("/v1/stats/records/writeoffs", headers=tenant.staff_headers).json()
    assert [r["event_id"] for r in whole["rows"]] == ["p1:s2", "p1:s1", "p1:s0"]
    mine = http.get(
        "/v1/stats/records/writeoffs", params={"template_id": branch_template}, headers=headers
    )
    assert [r["event_id"] for r in mine.json()["rows"]] == ["p1:s2", "p1:s0"]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/v1/stats/records/coupons", {}, 404, "unknown_record_kind"),
        ("/v1/stats/records/coupons.csv", {}, 404, "unknown_record_kind"),
        ("/v1/stats/records/draws", {"template_id": "tpl"}, 400, "filter_not_applicable"),
        ("/v1/stats/records/points.csv", {"status": "earn"}, 400, "filter_not_applicable"),
        ("/v1/stats/records/writeoffs", {"status": "won"}, 400, "invalid_status"),
        ("/v1/stats/records/writeoffs", {"since": 9, "until": 3}, 400, "invalid_time_range"),
        ("/v1/stats/records/writeoffs", {"since": -1}, 422, "invalid_request"),
        ("/v1/stats/records/writeoffs", {"until": "soon"}, 422, "invalid_request"),
        ("/v1/stats/records/writeoffs", {"limit": 0}, 422, "invalid_request"),
        ("/v1/stats/records/writeoffs", {"limit": 1001}, 422, "invalid_request"),
        ("/v1/stats/records/writeoffs", {"cursor": "bm9wZQ"}, 400, "invalid_cursor"),
        ("/v1/stats/records/writeoffs", {"cursor": "x" * 300}, 422, "invalid_request"),
        ("/v1/stats/records/writeoffs", {"user_id": "a:b"}, 422, "invalid_request"),
        ("/v1/stats/records/writeoffs", {"tenant_id": "t2"}, 400, "unknown_parameter"),
        ("/v1/stats/records/writeoffs.csv", {"limit": 5}, 400, "unknown_parameter"),
        ("/v1/stats/records/draws", {"activity_id": "nope"}, 404, "activity_not_found"),
        ("/v1/stats/records/claims", {"template_id": "nope"}, 404, "template_not_found"),
        ("/v1/stats/records/writeoffs.csv", {"partner_id": "nope"}, 404, "partner_not_found"),
    ],
)
def test_every_bad_request_is_a_clear_4xx(
    small: tuple[Tenant, str, str],
    http: httpx.Client,
    path: str,
    params: dict[str, Any],
    status: int,
    code: str,
) -> None:
    tenant, _, _ = small
    assert_error(http.get(path, params=params, headers=tenant.staff_headers), status, code)


def test_what_a_key_may_not_see_is_refused(
    pipeline: Pipeline, small: tuple[Tenant, str, str], http: httpx.Client
) -> None:
    tenant, branch_template, scoped = small
    other = _template(http, tenant)
    headers = {"X-Api-Key": scoped}
    records = "/v1/stats/records"
    # Another branch's template is a 404, exactly like a missing one.
    for path in (f"{records}/writeoffs", f"{records}/writeoffs.csv"):
        reply = http.get(path, params={"template_id": other}, headers=headers)
        assert_error(reply, 404, "template_not_found")
    for path in (f"{records}/points", f"{records}/points.csv"):
        assert_error(http.get(path, headers=headers), 403, "scope_is_institution")
    # Another tenant's template: 404 to its tenant-wide admin too.
    stranger = pipeline.tenant()
    reply = http.get(
        f"{records}/claims", params={"template_id": branch_template}, headers=stranger.staff_headers
    )
    assert_error(reply, 404, "template_not_found")
    assert_error(http.get(f"{records}/writeoffs"), 401, "missing_api_key")
    assert http.get(f"{records}/points.csv", headers=tenant.staff_headers).text.startswith(
        "occurred_at,event_id,user_id"
    )


def test_an_unreachable_worker_is_a_503(
    pipeline: Pipeline, small: tuple[Tenant, str, str], http: httpx.Client
) -> None:
    """With the streams worker stopped, both views answer 503 stats_unavailable
    (never a 5xx of another kind, never a short CSV); it is started again after."""
    tenant, _, _ = small
    pipeline.streams.stop()
    try:
        for path in ("/v1/stats/records/writeoffs", "/v1/stats/records/writeoffs.csv"):
            assert_error(http.get(path, headers=tenant.staff_headers), 503, "stats_unavailable")
    finally:
        pipeline.streams.start(timeout=RESTART_TIMEOUT_S)
