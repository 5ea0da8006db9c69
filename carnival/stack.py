"""`carnival up`: the embedded stack, started in order and supervised.

Each address left unset in the environment is filled by an embedded piece:
Kafka (KRaft, from Maven jars), Redis with AOF, a local Ray head; ClickHouse
is embedded in the streams worker through chdb. Everything lives under the
data directory, so Ctrl-C and `carnival up` again resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import orjson

from carnival.demo import seed_demo
from carnival.embedded import (
    KafkaServer,
    ManagedProcess,
    RayHead,
    RedisServer,
    check_java,
    check_maven,
    create_topics,
    free_port,
)
from carnival.embedded.kafka import ensure_kafka_jars, kafka_libs_dir
from carnival.embedded.process import free_ports
from carnival.services import (
    ApiService,
    DispatcherService,
    RelayService,
    Service,
    StreamsService,
)
from domain.topics import ALL_TOPICS
from runtime.settings import Settings

log = logging.getLogger("carnival.stack")

Report = Callable[[str], None]


def _port(preferred: int) -> int:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            return free_port()


def isolated_settings(data_dir: Path, **overrides: object) -> Settings:
    """Settings for a throwaway stack beside any other on this machine (the
    chaos run, the soak, screenshots): every server embedded, every port free.
    Use it with ``LocalStack(..., usual_ports=False)``."""
    api, streams, metrics = free_ports(3)
    fields: dict[str, object] = {
        "KAFKA_BOOTSTRAP": "",
        "REDIS_URL": "",
        "RAY_ADDRESS": "",
        "CLICKHOUSE_URL": "",
        "CARNIVAL_DATA_DIR": data_dir,
        "CARNIVAL_API_PORT": api,
        "CARNIVAL_STREAMS_PORT": streams,
        "CARNIVAL_DISPATCHER_METRICS_PORT": metrics,
    }
    return Settings(**(fields | overrides))  # type: ignore[arg-type]


def stack_file(data_dir: Path) -> Path:
    return data_dir / "stack.json"


class LocalStack:
    def __init__(
        self,
        settings: Settings,
        report: Report = print,
        commands: Mapping[str, Sequence[str]] | None = None,
        usual_ports: bool = True,
    ) -> None:
        """``commands``: service name -> the command to run it with instead of
        `python -m carnival <name>` (the chaos harness's faulty variants).
        ``usual_ports=False``: the embedded servers take any free ports, never the
        usual 9092/9093/6379/6380 (a stack beside another one on this machine)."""
        self.data_dir = settings.data_dir.resolve()
        self.settings = settings.model_copy(update={"data_dir": self.data_dir})
        self.report = report
        self.commands = dict(commands or {})
        self.usual_ports = usual_ports
        self.servers: dict[str, ManagedProcess] = {}
        self.services: list[Service] = []

    def _port(self, preferred: int) -> int:
        return _port(preferred) if self.usual_ports else free_port()

    def start(self) -> Settings:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        s = self.settings
        updates: dict[str, str] = {}
        if not s.kafka_bootstrap:
            check_java()
            if not (kafka_libs_dir() / "kafka_2.13-3.9.1.jar").exists():
                check_maven()
                self.report("fetching Kafka jars with Maven (once)...")
            ensure_kafka_jars()
            kafka = KafkaServer(self.data_dir / "kafka", self._port(9092), self._port(9093))
            updates["kafka_bootstrap"] = self._start_server("kafka", kafka, kafka.bootstrap)
        if not s.redis_url:
            redis = RedisServer(self.data_dir / "redis", self._port(6379))
            updates["redis_url"] = self._start_server("redis", redis, redis.url)
        if not s.ray_address:
            ray = RayHead(self.data_dir / "ray", self._port(6380))
            updates["ray_address"] = self._start_server("ray", ray, ray.address)
        s = self.settings = s.model_copy(update=updates)
        asyncio.run(create_topics(s.kafka_bootstrap, ALL_TOPICS))
        seed_demo(s.redis_url, self.data_dir)
        logs = self.data_dir / "logs"
        self.services = [
            StreamsService(s, logs),
            DispatcherService(s, logs),
            ApiService(s, logs),
            RelayService(s, logs),
        ]
        for service in self.services:
            service.command_override = self.commands.get(service.name)
            self.report(f"starting {service.name}...")
            service.start(timeout=120)
        self._write_state()
        return s

    def _start_server(self, name: str, server: ManagedProcess, address: str) -> str:
        self.report(f"starting {name}...")
        server.start(timeout=120)
        self.servers[name] = server
        return address

    def _write_state(self) -> None:
        s = self.settings
        state = {
            "kafka": s.kafka_bootstrap,
            "redis": s.redis_url,
            "clickhouse": s.clickhouse_dsn,
            "ray": s.ray_address,
            "api": f"http://{s.api_host}:{s.api_port}",
            "streams": s.streams_base_url,
            "dispatcher_metrics": f"http://127.0.0.1:{s.dispatcher_metrics_port}/metrics",
            "embedded": sorted(self.servers),
            "pids": {
                name: proc.pid for name, proc in [*self.servers.items(), *self._named_services()]
            },
        }
        stack_file(self.data_dir).write_bytes(orjson.dumps(state, option=orjson.OPT_INDENT_2))

    def _named_services(self) -> list[tuple[str, ManagedProcess]]:
        return [(svc.name, svc) for svc in self.services]

    def supervise(self, poll_s: float = 1.0) -> None:
        """Restart any process that died, until interrupted."""
        while True:
            time.sleep(poll_s)
            for name, proc in [*self.servers.items(), *self._named_services()]:
                if not proc.alive:
                    self.report(f"{name} exited; restarting (log: {proc.log_path})")
                    try:
                        proc.start(timeout=120)
                    except Exception as exc:
                        self.report(f"{name} failed to restart: {exc}")
            self._write_state()

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()
        for server in reversed(list(self.servers.values())):
            server.stop()
        stack_file(self.data_dir).unlink(missing_ok=True)
