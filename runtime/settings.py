"""Settings, from the environment only (12-factor).

An unset address means "use the embedded piece `carnival up` started"; the
launcher exports the addresses it chose to the services it spawns, so every
service reads the same variables whether embedded or on the compose stack.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    kafka_bootstrap: str = Field("", alias="KAFKA_BOOTSTRAP")
    redis_url: str = Field("", alias="REDIS_URL")
    clickhouse_url: str = Field("", alias="CLICKHOUSE_URL")
    ray_address: str = Field("", alias="RAY_ADDRESS")

    data_dir: Path = Field(Path("data"), alias="CARNIVAL_DATA_DIR")
    api_host: str = Field("127.0.0.1", alias="CARNIVAL_API_HOST")
    api_port: int = Field(8000, alias="CARNIVAL_API_PORT")
    # The Faust worker owns the (embedded) ClickHouse and serves stats queries.
    streams_host: str = Field("127.0.0.1", alias="CARNIVAL_STREAMS_HOST")
    streams_port: int = Field(6066, alias="CARNIVAL_STREAMS_PORT")
    # Also the Faust consumer group: a test worker on a shared broker uses its own.
    streams_app_id: str = Field("carnival-streams", alias="CARNIVAL_STREAMS_APP_ID")
    reply_timeout_ms: int = Field(3000, alias="CARNIVAL_REPLY_TIMEOUT_MS")
    # How often each api instance looks for coupons whose window has passed.
    expiry_sweep_ms: int = Field(5000, alias="CARNIVAL_EXPIRY_SWEEP_MS", ge=100)
    api_workers: int = Field(1, alias="CARNIVAL_API_WORKERS")
    # Requests per actor call (a poll is split into calls of at most this many).
    batch_max: int = Field(1000, alias="CARNIVAL_BATCH_MAX")
    # Polls in flight in the dispatcher: the actor decides poll N+1 while N commits.
    pipeline_depth: int = Field(3, alias="CARNIVAL_PIPELINE_DEPTH")
    actor_count: int = Field(1, alias="CARNIVAL_ACTORS")
    ray_namespace: str = Field("carnival", alias="CARNIVAL_RAY_NAMESPACE")
    dispatcher_metrics_port: int = Field(9101, alias="CARNIVAL_DISPATCHER_METRICS_PORT")
    log_level: str = Field("INFO", alias="CARNIVAL_LOG_LEVEL")
    # The relay (webhooks, channel issuances): its consumer group, and the retry
    # schedule of a webhook delivery (base, 2·base, 4·base ... capped), the attempts
    # in a row after which it is dead-lettered, and one attempt's timeout.
    relay_group_id: str = Field("carnival-relay", alias="CARNIVAL_RELAY_GROUP_ID")
    webhook_backoff_ms: int = Field(5000, alias="CARNIVAL_WEBHOOK_BACKOFF_MS", ge=10)
    webhook_backoff_cap_ms: int = Field(3_600_000, alias="CARNIVAL_WEBHOOK_BACKOFF_CAP_MS", ge=10)
    webhook_max_attempts: int = Field(10, alias="CARNIVAL_WEBHOOK_MAX_ATTEMPTS", ge=1, le=40)
    webhook_timeout_ms: int = Field(10_000, alias="CARNIVAL_WEBHOOK_TIMEOUT_MS", ge=100)
    # Delivered and dead-lettered deliveries are listed this long, then forgotten.
    webhook_retention_days: int = Field(30, alias="CARNIVAL_WEBHOOK_RETENTION_DAYS", ge=1)

    @property
    def clickhouse_dsn(self) -> str:
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def streams_base_url(self) -> str:
        return f"http://{self.streams_host}:{self.streams_port}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
