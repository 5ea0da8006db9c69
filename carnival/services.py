"""Our own services (api, dispatcher, streams worker, relay) as supervised processes."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import orjson
import redis

from carnival.embedded.process import ManagedProcess
from ledger.keys import DISPATCHER_HEARTBEAT, RELAY_HEARTBEAT
from runtime.ray_env import RAY_ENV
from runtime.settings import Settings


def service_env(settings: Settings) -> dict[str, str]:
    """The environment every service gets: the same variables the compose file sets."""
    env = dict(os.environ)
    env.update(
        {
            "KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "REDIS_URL": settings.redis_url,
            "CLICKHOUSE_URL": settings.clickhouse_dsn,
            "RAY_ADDRESS": settings.ray_address,
            "CARNIVAL_DATA_DIR": str(settings.data_dir.resolve()),
            "CARNIVAL_API_HOST": settings.api_host,
            "CARNIVAL_API_PORT": str(settings.api_port),
            "CARNIVAL_STREAMS_HOST": settings.streams_host,
            "CARNIVAL_STREAMS_PORT": str(settings.streams_port),
            "CARNIVAL_STREAMS_APP_ID": settings.streams_app_id,
            "CARNIVAL_DISPATCHER_METRICS_PORT": str(settings.dispatcher_metrics_port),
            "CARNIVAL_REPLY_TIMEOUT_MS": str(settings.reply_timeout_ms),
            "CARNIVAL_BATCH_MAX": str(settings.batch_max),
            "CARNIVAL_PIPELINE_DEPTH": str(settings.pipeline_depth),
            "CARNIVAL_API_WORKERS": str(settings.api_workers),
            "CARNIVAL_ACTORS": str(settings.actor_count),
            "CARNIVAL_RAY_NAMESPACE": settings.ray_namespace,
            "CARNIVAL_LOG_LEVEL": settings.log_level,
            "CARNIVAL_RELAY_GROUP_ID": settings.relay_group_id,
            "CARNIVAL_WEBHOOK_BACKOFF_MS": str(settings.webhook_backoff_ms),
            "CARNIVAL_WEBHOOK_BACKOFF_CAP_MS": str(settings.webhook_backoff_cap_ms),
            "CARNIVAL_WEBHOOK_MAX_ATTEMPTS": str(settings.webhook_max_attempts),
            "CARNIVAL_WEBHOOK_TIMEOUT_MS": str(settings.webhook_timeout_ms),
            "CARNIVAL_WEBHOOK_RETENTION_DAYS": str(settings.webhook_retention_days),
            **RAY_ENV,
        }
    )
    return env


class Service(ManagedProcess):
    # Another command for this service (the chaos harness starts a deliberately
    # faulty variant from test code); None: `python -m carnival <name>`.
    command_override: Sequence[str] | None = None

    def __init__(self, name: str, settings: Settings, log_dir: Path) -> None:
        self.name = name
        super().__init__(log_dir)
        self.settings = settings

    def command(self) -> list[str]:
        if self.command_override is not None:
            return list(self.command_override)
        return [sys.executable, "-m", "carnival", self.name]

    def env(self) -> Mapping[str, str]:
        return service_env(self.settings)


class ApiService(Service):
    def __init__(self, settings: Settings, log_dir: Path) -> None:
        super().__init__("api", settings, log_dir)

    @property
    def url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    def is_ready(self) -> bool:
        return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200


class StreamsService(Service):
    def __init__(self, settings: Settings, log_dir: Path) -> None:
        super().__init__("streams", settings, log_dir)

    def is_ready(self) -> bool:
        url = f"{self.settings.streams_base_url}/internal/health"
        return httpx.get(url, timeout=1.0).status_code == 200


class _HeartbeatService(Service):
    """Ready once it has written its heartbeat after this launch."""

    heartbeat_key = ""

    def __init__(self, name: str, settings: Settings, log_dir: Path) -> None:
        super().__init__(name, settings, log_dir)
        self._launched_at = 0.0

    def launch(self, cmd: list[str]) -> None:  # type: ignore[override]
        self._launched_at = time.time()
        super().launch(cmd)

    def is_ready(self) -> bool:
        client = redis.Redis.from_url(self.settings.redis_url, socket_timeout=1)
        try:
            raw = client.get(self.heartbeat_key)
        finally:
            client.close()
        return raw is not None and orjson.loads(raw)["at"] >= self._launched_at


class DispatcherService(_HeartbeatService):
    """Its heartbeat is written once it has pinged its actors."""

    heartbeat_key = DISPATCHER_HEARTBEAT

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        super().__init__("dispatcher", settings, log_dir)


class RelayService(_HeartbeatService):
    """Its heartbeat is written once its consumer has joined the group."""

    heartbeat_key = RELAY_HEARTBEAT

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        super().__init__("relay", settings, log_dir)
