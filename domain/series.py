"""The steps of a stats time series (shared by the api, which aligns windows, and
the streams worker, which groups rollup minutes into steps)."""

from __future__ import annotations

from typing import Final, Literal

Step = Literal["minute", "hour", "day"]
STEP_MS: Final[dict[str, int]] = {"minute": 60_000, "hour": 3_600_000, "day": 86_400_000}
