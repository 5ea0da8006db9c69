"""Finding, SIGKILLing and restarting each process of a LocalStack.

The api, dispatcher, streams worker, relay, Redis and Kafka are ManagedProcess
objects of the stack: ``kill()`` SIGKILLs the whole process group, ``start()``
starts it again and waits until it is ready. The actor worker is Ray's: it is
found among the Ray head's session by its process title (``ray::<class>``), and
Ray restarts it by itself (``max_restarts=-1``).
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

from carnival.embedded.process import ManagedProcess, session_pids
from carnival.stack import LocalStack

PROCESSES = ("api", "dispatcher", "actor", "streams", "redis", "kafka")
# A phase with no kill: the harness's baseline.
NO_KILL = "none"
RESTART_TIMEOUT_S = 180.0
# Ray titles an actor's worker "ray::<ActorClass>" (and ".method" while it runs
# one); the owner actors' classes are OwnerHost and test variants of it. Ray's own
# agents are titled alike (ray::DashboardAgent): killing one takes the node down.
ACTOR_TITLE = re.compile(r"ray::\w*Host(\.\w+)?$")


def managed(stack: LocalStack) -> dict[str, ManagedProcess]:
    """Every process the stack started, by name."""
    return {**stack.servers, **{s.name: s for s in stack.services}}


def _title(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.split(b"\0")[0].decode(errors="replace")


def actor_pids(stack: LocalStack) -> list[int]:
    """The PIDs of the Ray actor workers (Carnival's owner actors) of the stack's head."""
    head = stack.servers["ray"].pid
    assert head is not None, "the stack's Ray head is not running"
    return sorted(pid for pid in session_pids(head) if ACTOR_TITLE.match(_title(pid)))


def kill(stack: LocalStack, name: str) -> list[int]:
    """SIGKILL one process (``name`` in PROCESSES); the PIDs killed."""
    if name == "actor":
        pids = actor_pids(stack)
        if not pids:
            raise LookupError("no Ray actor worker found to kill")
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids
    proc = managed(stack)[name]
    pid = proc.pid
    proc.kill()
    return [pid] if pid is not None else []


def restart(stack: LocalStack, name: str) -> None:
    """Start a killed process again and wait until it is ready (Ray restarts its
    actor itself: nothing to do)."""
    if name != "actor":
        managed(stack)[name].start(timeout=RESTART_TIMEOUT_S)


def revive(stack: LocalStack) -> list[str]:
    """Restart every process that died (what `carnival up`'s supervisor does); the
    names restarted. A kill of one process may take another down with it."""
    dead = [name for name, proc in managed(stack).items() if not proc.alive]
    for name in dead:
        managed(stack)[name].start(timeout=RESTART_TIMEOUT_S)
    return dead
