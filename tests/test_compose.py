"""The compose stack, checked by parsing (no Docker needed).

Guards the wiring that only breaks at `docker compose up` time: every service
that runs our code gets the addresses it reads (named exactly as
runtime/settings.py declares them), every address points at a declared service,
Redis keeps its AOF, everything is built from the one Dockerfile, and Grafana's
provisioning and dashboard files exist and query the right table.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from runtime.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DASHBOARD_DIR = ROOT / "dashboards" / "grafana" / "dashboards"
PROVISIONING_DIR = ROOT / "dashboards" / "grafana" / "provisioning"

INFRA = ("kafka", "clickhouse", "redis", "ray-head", "grafana")
OURS = ("api", "dispatcher", "streams", "relay")
ADDRESS_FIELDS = ("kafka_bootstrap", "redis_url", "clickhouse_url", "ray_address")
# What each service must be told, by Settings field.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {
    "api": ADDRESS_FIELDS,
    "dispatcher": ("ray_address", "kafka_bootstrap", "redis_url"),
    "streams": ("kafka_bootstrap", "clickhouse_url"),
    "relay": ("kafka_bootstrap", "redis_url"),
}
# Variables read by Ray itself rather than by our Settings.
THIRD_PARTY_ENV = {"RAY_AUTH_MODE", "RAY_USAGE_STATS_ENABLED"}
# The port each infrastructure service listens on inside the compose network.
SERVICE_PORTS = {"kafka": 9092, "redis": 6379, "clickhouse": 8123, "ray-head": 6379}


def alias(field: str) -> str:
    name = Settings.model_fields[field].alias
    assert name, f"Settings.{field} has no env alias"
    return name


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "KEY=value" list form
        env = dict(item.split("=", 1) for item in env)
    return {key: str(value) for key, value in env.items()}


def command_text(service: dict) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else str(cmd)


def host_port(address: str) -> tuple[str, int | None]:
    """Host and port of a plain `host:port` or of a URL."""
    if "://" in address:
        parts = urlsplit(address)
        return parts.hostname or "", parts.port
    host, _, port = address.rpartition(":")
    return host, int(port) if port else None


def test_all_services_declared(services: dict) -> None:
    missing = set(INFRA + OURS + ("init",)) - set(services)
    assert not missing, f"services missing from docker-compose.yml: {sorted(missing)}"


@pytest.mark.parametrize("name", OURS)
def test_service_gets_the_addresses_it_reads(services: dict, name: str) -> None:
    env = env_of(services[name])
    for field in REQUIRED_FIELDS[name]:
        assert env.get(alias(field)), f"{name} lacks {alias(field)}"


@pytest.mark.parametrize("name", (*OURS, "init", "ray-head"))
def test_env_names_are_the_ones_settings_reads(services: dict, name: str) -> None:
    """A typo in a variable name would silently fall back to the embedded stack."""
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    unknown = set(env_of(services[name])) - aliases - THIRD_PARTY_ENV
    assert not unknown, f"{name} sets variables Settings does not read: {sorted(unknown)}"


def test_settings_aliases_are_the_documented_addresses() -> None:
    assert [alias(f) for f in ADDRESS_FIELDS] == [
        "KAFKA_BOOTSTRAP",
        "REDIS_URL",
        "CLICKHOUSE_URL",
        "RAY_ADDRESS",
    ]


@pytest.mark.parametrize("name", (*OURS, "init"))
def test_addresses_point_at_declared_services(services: dict, name: str) -> None:
    env = env_of(services[name])
    targets = {
        "kafka_bootstrap": [host_port(a) for a in env.get(alias("kafka_bootstrap"), "").split(",")],
        "redis_url": [host_port(env.get(alias("redis_url"), ""))],
        "clickhouse_url": [host_port(env.get(alias("clickhouse_url"), ""))],
        "ray_address": [host_port(env.get(alias("ray_address"), "").removeprefix("ray://"))],
    }
    expected = {
        "kafka_bootstrap": "kafka",
        "redis_url": "redis",
        "clickhouse_url": "clickhouse",
        "ray_address": "ray-head",
    }
    for field, hosts in targets.items():
        if not env.get(alias(field)):
            continue
        for host, port in hosts:
            assert host in services, f"{name}: {alias(field)} host {host!r} is not a service"
            assert host == expected[field], f"{name}: {alias(field)} points at {host!r}"
            assert port == SERVICE_PORTS[host], f"{name}: {alias(field)} port {port}"


def test_clickhouse_url_is_a_clickhouse_connect_dsn(services: dict) -> None:
    url = urlsplit(env_of(services["streams"])[alias("clickhouse_url")])
    assert url.scheme in ("http", "https")
    assert url.path.strip("/"), "the DSN names a database"


def test_api_reaches_streams_and_listens_on_all_interfaces(services: dict) -> None:
    env = env_of(services["api"])
    assert env[alias("streams_host")] in services
    assert env[alias("streams_host")] == "streams"
    assert int(env[alias("streams_port")]) == Settings.model_fields["streams_port"].default
    assert env[alias("api_host")] == "0.0.0.0"
    port = env.get(alias("api_port"), str(Settings.model_fields["api_port"].default))
    assert any(str(p).endswith(f":{port}") for p in services["api"].get("ports", []))


def test_redis_is_durable(services: dict) -> None:
    redis = services["redis"]
    cmd = command_text(redis)
    assert "--appendonly yes" in cmd
    assert "--appendfsync always" in cmd
    assert any(str(v).endswith(":/data") for v in redis.get("volumes", []))


def test_our_services_build_from_the_one_dockerfile(services: dict) -> None:
    builds = set()
    for name in (*OURS, "init", "ray-head"):
        build = services[name].get("build")
        assert build, f"{name} is not built from the repo"
        if isinstance(build, str):
            build = {"context": build}
        context = (ROOT / build.get("context", ".")).resolve()
        dockerfile = (context / build.get("dockerfile", "Dockerfile")).resolve()
        builds.add(dockerfile)
    assert builds == {(ROOT / "Dockerfile").resolve()}
    assert (ROOT / "Dockerfile").is_file()


def test_dockerfile_basics() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    assert "\nUSER " in text, "runs as a non-root user"
    assert 'CMD ["carnival", "api"]' in text
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignore
    assert ".git" in ignore


def test_ray_head_matches_the_design(services: dict) -> None:
    head = services["ray-head"]
    cmd = command_text(head)
    for flag in (
        "ray start",
        "--head",
        "--block",
        "--port=6379",
        "--include-dashboard=false",
        "--disable-usage-stats",
    ):
        assert flag in cmd
    assert head.get("shm_size")
    assert not head.get("ports"), "the Ray head is reached over the compose network only"
    for name in ("ray-head", "dispatcher"):
        env = env_of(services[name])
        assert env.get("RAY_AUTH_MODE") == "disabled"
        assert env.get("RAY_USAGE_STATS_ENABLED") == "0"


def test_dispatcher_joins_the_ray_cluster(services: dict) -> None:
    cmd = command_text(services["dispatcher"])
    # $$ is compose's escape for a literal $ (expanded by the container's shell).
    assert 'ray start --address="$$RAY_ADDRESS"' in cmd
    assert "carnival dispatcher" in cmd


def test_startup_order(services: dict) -> None:
    init = services["init"]
    assert "carnival init-topics" in command_text(init)
    assert "carnival seed-demo" in command_text(init)
    assert init["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert init["depends_on"]["redis"]["condition"] == "service_healthy"
    assert init.get("restart") in ("no", None)
    for name in OURS:
        deps = services[name]["depends_on"]
        assert deps["init"]["condition"] == "service_completed_successfully", name
        for dep in deps:
            assert dep in services, f"{name} depends on unknown {dep}"
    for name in ("kafka", "clickhouse", "redis", "ray-head"):
        assert services[name].get("healthcheck"), f"{name} has no healthcheck"


def test_kafka_is_single_node_kraft(services: dict) -> None:
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = env_of(kafka)
    assert "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]


def test_grafana_has_plugin_and_provisioning(services: dict) -> None:
    grafana = services["grafana"]
    env = env_of(grafana)
    assert "grafana-clickhouse-datasource" in env["GF_INSTALL_PLUGINS"]
    assert any(str(p).endswith(":3000") for p in grafana["ports"])
    mounts = {}
    for volume in grafana["volumes"]:
        source, target = str(volume).split(":")[:2]
        mounts[target] = source
    for target in ("/etc/grafana/provisioning", "/var/lib/grafana/dashboards"):
        source = mounts[target]
        assert source.startswith("./"), f"{target} is not mounted from the repo"
        assert (ROOT / source).is_dir(), f"{source} does not exist"
    assert (ROOT / mounts["/etc/grafana/provisioning"]).resolve() == PROVISIONING_DIR
    assert (ROOT / mounts["/var/lib/grafana/dashboards"]).resolve() == DASHBOARD_DIR


def test_datasource_provisioning() -> None:
    doc = yaml.safe_load((PROVISIONING_DIR / "datasources" / "clickhouse.yml").read_text())
    (ds,) = doc["datasources"]
    assert ds["uid"] == "carnival-clickhouse"
    assert ds["type"] == "grafana-clickhouse-datasource"
    assert ds["jsonData"]["host"] == "clickhouse"
    assert (ds["jsonData"]["protocol"], ds["jsonData"]["port"]) in (
        ("native", 9000),
        ("http", 8123),
    )
    providers = yaml.safe_load((PROVISIONING_DIR / "dashboards" / "carnival.yml").read_text())
    (provider,) = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"


def dashboards() -> list[Path]:
    return sorted(DASHBOARD_DIR.glob("*.json"))


def test_there_is_a_draws_dashboard() -> None:
    assert DASHBOARD_DIR / "carnival-draws.json" in dashboards()
