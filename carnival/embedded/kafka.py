"""Single-node Apache Kafka 3.9 in KRaft combined mode, run from jars Maven fetched into a cache."""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import threading
import uuid
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

from carnival.embedded.prereqs import check_java, check_maven
from carnival.embedded.process import ManagedProcess, port_open

KAFKA_VERSION = "3.9.1"
KAFKA_JAR = f"kafka_2.13-{KAFKA_VERSION}.jar"
POM_PATH = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"

T = TypeVar("T")


class TopicSpec(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def partitions(self) -> int: ...


def cache_dir() -> Path:
    """Root of Carnival's download cache (env CARNIVAL_CACHE_DIR, default ~/.cache/carnival)."""
    env = os.environ.get("CARNIVAL_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "carnival"


def kafka_libs_dir() -> Path:
    return cache_dir() / f"kafka-{KAFKA_VERSION}" / "libs"


def ensure_kafka_jars() -> Path:
    """The directory holding the Kafka broker jars, fetching them with Maven when absent."""
    libs = kafka_libs_dir()
    if (libs / KAFKA_JAR).is_file():
        return libs
    mvn = check_maven()
    libs.mkdir(parents=True, exist_ok=True)
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM_PATH),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 or not (libs / KAFKA_JAR).is_file():
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-30:])
        raise RuntimeError(f"fetching Kafka jars failed: {' '.join(cmd)}\n{tail}")
    return libs


def java_env() -> dict[str, str]:
    """The environment minus variables that would inject JVM options or a classpath."""
    env = dict(os.environ)
    for var in ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH"):
        env.pop(var, None)
    return env


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID, URL-safe base64 without padding (22 chars)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def run_coro_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion on a fresh loop in a helper thread (safe inside a running loop)."""
    box: dict[str, Any] = {}

    def runner() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=runner, name="carnival-kafka-probe", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


async def broker_count(bootstrap: str, timeout_ms: int = 2000) -> int:
    """Number of brokers the cluster metadata lists (0 if none registered yet)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=timeout_ms)
    await admin.start()
    try:
        cluster = await admin.describe_cluster()
        return len(cluster.get("brokers", []))
    finally:
        await admin.close()


class KafkaServer(ManagedProcess):
    """Apache Kafka broker+controller (KRaft) on 127.0.0.1, storage under `data_dir`.

    Storage is formatted once (when meta.properties is absent) with a cluster id
    kept in `data_dir/cluster.id`; restarting on the same directory reuses topics
    and offsets. The controller quorum is static (controller.quorum.voters), so
    the ports may differ between restarts.
    """

    name = "kafka"

    def __init__(
        self,
        data_dir: Path | str,
        port: int,
        controller_port: int,
        *,
        heap: str = "768m",
        extra_properties: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(data_dir)
        self.port = port
        self.controller_port = controller_port
        self.heap = heap
        self.extra_properties = dict(extra_properties or {})
        self.log_dirs = self.data_dir / "data"
        self.properties_path = self.data_dir / "server.properties"
        self.log4j_path = self.data_dir / "log4j.properties"
        self.libs: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def properties(self) -> dict[str, str]:
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.log_dirs),
            "num.partitions": "6",
            "default.replication.factor": "1",
            "min.insync.replicas": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "12",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "6",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "delete.topic.enable": "true",
            "num.network.threads": "2",
            "num.io.threads": "4",
            "log.retention.hours": "168",
            "log.segment.bytes": str(256 * 1024 * 1024),
        }
        props.update(self.extra_properties)
        return props

    def prepare(self) -> None:
        check_java()
        self.libs = ensure_kafka_jars()
        self.log_dirs.mkdir(parents=True, exist_ok=True)
        self.properties_path.write_text(
            "".join(f"{key}={value}\n" for key, value in self.properties().items())
        )
        self.log4j_path.write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
        )
        self.format_storage()

    def java_base(self) -> list[str]:
        assert self.libs is not None
        return [
            "java",
            "-cp",
            f"{self.libs}/*",
            f"-Dlog4j.configuration=file:{self.log4j_path}",
            "-Djava.awt.headless=true",
        ]

    def format_storage(self) -> None:
        """Format the log dir once; a later start finds meta.properties and skips this."""
        if (self.log_dirs / "meta.properties").is_file():
            return
        id_file = self.data_dir / "cluster.id"
        if not id_file.is_file():
            id_file.write_text(new_cluster_id())
        cluster_id = id_file.read_text().strip()
        cmd = [
            *self.java_base(),
            "-Xmx256m",
            "kafka.tools.StorageTool",
            "format",
            # "=" form: a base64 cluster id may start with "-", which argparse
            # would otherwise read as an option.
            f"--cluster-id={cluster_id}",
            f"--config={self.properties_path}",
            "--ignore-formatted",
        ]
        result = subprocess.run(
            cmd, capture_output=True, text=True, env=java_env(), cwd=self.data_dir, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"kafka storage format failed ({result.returncode}): {result.stdout}{result.stderr}"
            )

    def command(self) -> list[str]:
        return [
            *self.java_base(),
            "-Xms256m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            f"-Dkafka.logs.dir={self.data_dir / 'logs'}",
            "kafka.Kafka",
            str(self.properties_path),
        ]

    def env(self) -> Mapping[str, str]:
        return java_env()

    def is_ready(self) -> bool:
        if not port_open(self.port):
            return False
        return run_coro_sync(broker_count(self.bootstrap)) > 0

    def stop(self, timeout: float = 30.0) -> None:
        super().stop(timeout)


async def create_topics(
    bootstrap: str,
    topics: Iterable[TopicSpec],
    *,
    replication_factor: int = 1,
    timeout_s: float = 30.0,
) -> list[str]:
    """Create the topics that do not exist yet (idempotent); returns the names created.

    Waits until every topic has a leader for each partition so producers can use it.
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    wanted = {topic.name: topic.partitions for topic in topics}
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [name for name in wanted if name not in existing]
        if missing:
            new = [NewTopic(name, wanted[name], replication_factor) for name in missing]
            try:
                response = await admin.create_topics(new, timeout_ms=int(timeout_s * 1000))
            except TopicAlreadyExistsError:
                response = None
            errors = [
                (name, code, msg)
                for name, code, *rest in (getattr(response, "topic_errors", None) or [])
                for msg in [rest[0] if rest else ""]
                if code not in (0, TopicAlreadyExistsError.errno)
            ]
            if errors:
                raise RuntimeError(f"create_topics failed: {errors}")
        await _wait_for_leaders(admin, wanted, timeout_s)
        return missing
    finally:
        await admin.close()


async def _wait_for_leaders(admin: Any, wanted: Mapping[str, int], timeout_s: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        described = await admin.describe_topics(list(wanted))
        ready = 0
        for topic in described:
            partitions = topic.get("partitions") or []
            if (
                topic.get("error_code", 0) == 0
                and len(partitions) >= wanted.get(topic.get("topic", ""), 1)
                and all(p.get("leader", -1) >= 0 for p in partitions)
            ):
                ready += 1
        if ready == len(wanted):
            return
        if loop.time() >= deadline:
            raise TimeoutError(f"topics {sorted(wanted)} have no leaders after {timeout_s}s")
        await asyncio.sleep(0.05)
