"""Garbage-collector settings for the long-running processes of the hot path.

Measured in the api under 1,200 draws/s: every few seconds a full (generation 2)
collection walked the ~100,000 objects left by imports and start-up and paused
the event loop for 65-73 ms, the largest share of the draw's p99. Freezing what
start-up built moves it out of the collector's sight (full collections then take
~5 ms); requests allocate containers that are almost never in cycles, so
collecting generation 0 every 100,000 allocations instead of 700 costs little
memory and much less CPU (in the owner actor: ~15 % more draws/s in
``carnival bench draws``).
"""

from __future__ import annotations

import gc

THRESHOLDS = (100_000, 50, 100)


def settle() -> None:
    """Call once start-up is done: freeze what exists, collect young objects rarely."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
