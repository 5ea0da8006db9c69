"""The seeded demo must stay a valid, running activity as the model evolves."""

from __future__ import annotations

from carnival.demo import DEMO_TENANT, demo_activity


def test_demo_wheel_is_valid_and_running() -> None:
    wheel = demo_activity()
    assert wheel.tenant_id == DEMO_TENANT and wheel.status == "running"
    assert wheel.is_open(0)
