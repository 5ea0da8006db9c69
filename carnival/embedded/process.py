"""A child server process we own: own process group, log file, readiness poll, stop by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

POLL_INTERVAL_S = 0.05


class ProcessFailed(RuntimeError):
    """The server exited or did not become ready in time; the message carries the log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_ports(count: int, taken: set[int] | frozenset[int] = frozenset()) -> list[int]:
    """``count`` distinct free ports, none in ``taken``: every socket stays bound
    until all are chosen, so the OS cannot hand the same port out twice (one
    free_port() after another can, while nothing listens on the first yet)."""
    with contextlib.ExitStack() as held:
        ports: list[int] = []
        while len(ports) < count:
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
            if port not in taken:
                ports.append(port)
        return ports


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state field follows the parenthesised command name.
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def kill_pids(pids: Sequence[int], sig: int = signal.SIGKILL) -> None:
    """Send `sig` to each PID, ignoring the ones already gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def session_pids(sid: int) -> list[int]:
    """Live PIDs whose session id is `sid` (children that left the process group stay here)."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[-1].split()
        except OSError:
            continue
        # fields: state ppid pgrp session ...
        if int(fields[3]) == sid and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


class ManagedProcess:
    """Runs one server command in its own session (process group) and owns its lifetime.

    Subclasses set the command with `command()` and readiness with `is_ready()`;
    `start()` launches it, `wait_ready()` polls, `stop()` sends SIGTERM to the
    group and SIGKILL after the timeout.
    """

    name: str = "process"
    # False: SIGTERM only the leader (it shuts its children down itself), then
    # SIGKILL whatever is left of the group/session.
    terminate_group: bool = True

    def __init__(self, data_dir: Path | str) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.start_seconds: float | None = None

    # -- to override -------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def env(self) -> Mapping[str, str]:
        return dict(os.environ)

    def prepare(self) -> None:
        """Write config files etc. before the process starts."""

    def is_ready(self) -> bool:
        raise NotImplementedError

    # -- lifecycle ---------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout: float = 60.0) -> ManagedProcess:
        """Start the process and wait until it is ready; returns self."""
        if self.alive:
            return self
        began = time.monotonic()
        self.prepare()
        self.launch(self.command())
        self.wait_ready(timeout)
        self.start_seconds = time.monotonic() - began
        return self

    def launch(self, cmd: Sequence[str]) -> None:
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the child
        self._log_file.write(f"\n=== {time.strftime('%F %T')} start: {' '.join(cmd)}\n".encode())
        self._log_file.flush()
        self._proc = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            cwd=self.data_dir,
            env=dict(self.env()),
            start_new_session=True,
        )
        (self.data_dir / f"{self.name}.pid").write_text(str(self._proc.pid))

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Poll `is_ready()` until true; raise ProcessFailed on exit or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                code = self._proc.returncode if self._proc is not None else None
                raise ProcessFailed(
                    f"{self.name} exited with code {code} before becoming ready; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            try:
                if self.is_ready():
                    return
            except Exception:  # not ready yet: the probe itself failed
                pass
            if time.monotonic() >= deadline:
                self.kill()
                raise ProcessFailed(
                    f"{self.name} not ready after {timeout:.0f}s; "
                    f"log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(POLL_INTERVAL_S)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def _signal_group(self, sig: int) -> None:
        if self._proc is None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self._proc.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the process group, SIGKILL it after `timeout` seconds."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            if self.terminate_group:
                self._signal_group(signal.SIGTERM)
            else:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self._proc.wait(5)
        self._kill_leftovers()
        self._after_exit()

    def _kill_leftovers(self) -> None:
        """SIGKILL children left in the process group or session (by PID)."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGKILL)
        kill_pids(session_pids(self._proc.pid), signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the process group now."""
        if self._proc is None:
            return
        self._signal_group(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(5)
        self._kill_leftovers()
        self._after_exit()

    def _after_exit(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        with contextlib.suppress(OSError):
            (self.data_dir / f"{self.name}.pid").unlink()

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every POLL_INTERVAL_S; raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(POLL_INTERVAL_S)
