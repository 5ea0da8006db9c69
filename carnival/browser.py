"""Debian's chromium driven by Playwright: how the page tests and `make
screenshots` launch it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")  # scripts/bootstrap.sh installs it
# This machine's network is closed: without these flags Chromium tries Google's
# hosts at start and its refused connections slow every page.
CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def launch_chromium(playwright: Any) -> Any:
    """A headless chromium from a started Playwright (sync API)."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: run `make bootstrap`")
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS)
    )
