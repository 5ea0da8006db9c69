"""Session test bed: real Kafka (KRaft), Redis and a Ray head, each started lazily.

A test that requests `kafka_bootstrap`, `redis_url`, `ray_address` or
`ray_client` gets the one shared server for the whole session; tests that ask
for none start nothing. Servers run on free ports under one temp directory and
are stopped by PID at the end, with an atexit fallback that SIGKILLs them if
the session dies before its fixtures finalise.
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from carnival.browser import launch_chromium
from carnival.embedded.kafka import KafkaServer, create_topics, run_coro_sync
from carnival.embedded.process import ManagedProcess, free_port
from carnival.embedded.ray_head import RayHead
from carnival.embedded.redis import RedisServer
from runtime.ray_env import set_ray_env

set_ray_env()

_STARTED: list[ManagedProcess] = []


def _kill_all_started() -> None:
    for server in reversed(_STARTED):
        with contextlib.suppress(Exception):  # best effort at interpreter exit
            server.kill()


atexit.register(_kill_all_started)


def _run(server: ManagedProcess, timeout: float) -> ManagedProcess:
    _STARTED.append(server)
    server.start(timeout=timeout)
    return server


def _stop(server: ManagedProcess) -> None:
    try:
        server.stop()
    finally:
        if server in _STARTED:
            _STARTED.remove(server)


@pytest.fixture
def own_servers() -> Iterator[Callable[..., Any]]:
    """`own_servers(server, timeout=90)` starts a test-private server; all are stopped after."""
    mine: list[ManagedProcess] = []

    def start(server: ManagedProcess, timeout: float = 90.0) -> Any:
        mine.append(server)
        return _run(server, timeout)

    try:
        yield start
    finally:
        for server in reversed(mine):
            _stop(server)


SERVER_FIXTURES = frozenset(
    {
        "kafka_server",
        "kafka_bootstrap",
        "redis_server",
        "redis_url",
        "ray_head",
        "ray_address",
        "ray_client",
        "own_servers",
    }
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a real server `servers` (deselect with -m "not servers")."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


@pytest.fixture(scope="session")
def servers_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def kafka_server(servers_dir: Path) -> Iterator[KafkaServer]:
    from domain.topics import ALL_TOPICS

    server = KafkaServer(servers_dir / "kafka", free_port(), free_port())
    try:
        _run(server, timeout=120)
        run_coro_sync(create_topics(server.bootstrap, ALL_TOPICS))
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_server: KafkaServer) -> str:
    """ "127.0.0.1:port" of a single-node Kafka with every topic in domain.topics.ALL_TOPICS."""
    return kafka_server.bootstrap


@pytest.fixture(scope="session")
def redis_server(servers_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer(servers_dir / "redis", free_port())
    try:
        _run(server, timeout=30)
        yield server
    finally:
        _stop(server)


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """redis://127.0.0.1:port/0 of a Redis (AOF, fsync always) shared by the session."""
    return redis_server.url


@pytest.fixture(scope="session")
def ray_head(servers_dir: Path) -> Iterator[RayHead]:
    server = RayHead(servers_dir / "ray", free_port())
    try:
        _run(server, timeout=120)
        yield server
    finally:
        _stop(server)
        server.remove_temp_dir()


@pytest.fixture(scope="session")
def ray_address(ray_head: RayHead) -> str:
    """ "127.0.0.1:port" of a Ray head (2 CPUs) shared by the session."""
    return ray_head.address


@pytest.fixture(scope="session")
def ray_client(ray_address: str) -> Iterator[Any]:
    """The `ray` module, connected once (namespace "carnival-test") to the session's head."""
    import ray

    ray.init(address=ray_address, log_to_driver=False, namespace="carnival-test")
    try:
        yield ray
    finally:
        ray.shutdown()


# -- a real browser: Debian's chromium driven by Playwright ----------------------------------

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless chromium for one test module (make bootstrap installs it).

    Per module, not per session: Playwright's sync API keeps an event loop
    running in this thread while it is started, and every later test that calls
    asyncio.run (the storms, the topic readers) would fail on it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def screenshots(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """``shot(page, name)`` saves a PNG under test-artifacts/<test name>/."""
    folder = ARTIFACTS / request.node.name.replace("/", "_")

    def shot(page: Any, name: str) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return shot
