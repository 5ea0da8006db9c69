"""Host prerequisites for the embedded stack, each failing with one line that says the fix."""

from __future__ import annotations

import re
import shutil
import subprocess

JAVA_MIN = 17


class MissingPrerequisite(RuntimeError):
    """A host tool is missing; the message is one line and includes the fix."""


def java_major(version_output: str) -> int | None:
    """Major version from `java -version` output ('17.0.15' -> 17, '1.8.0' -> 8)."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def check_java() -> str:
    """Path of a Java 17+ `java`, else MissingPrerequisite."""
    fix = "apt-get install -y openjdk-17-jre-headless"
    java = shutil.which("java")
    if java is None:
        raise MissingPrerequisite(f"Java {JAVA_MIN}+ not found on PATH: {fix}")
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MissingPrerequisite(f"`{java} -version` failed ({exc}): {fix}") from exc
    major = java_major(out.stderr + out.stdout)
    if major is None or major < JAVA_MIN:
        raise MissingPrerequisite(f"Java {JAVA_MIN}+ required, found {major or 'unknown'}: {fix}")
    return java


def check_maven() -> str:
    """Path of `mvn`, else MissingPrerequisite."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise MissingPrerequisite("Maven (mvn) not found on PATH: apt-get install -y maven")
    return mvn
