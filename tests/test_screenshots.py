"""`make screenshots` (scripts/screenshots.py) without its stack: every console
route has an entry, and screen names make unique file names. The full run
starts its own embedded stack and takes minutes, so it is not part of the
suite (README: "Screenshots")."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "screenshots.py"


@pytest.fixture(scope="module")
def shots() -> ModuleType:
    spec = importlib.util.spec_from_file_location("carnival_screenshots", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def test_every_console_route_has_a_screenshot(shots: ModuleType) -> None:
    routes = shots.router_routes()
    assert "activities" in routes and "activity-live" in routes  # the table was read
    assert shots.missing_routes() == []
    covered = [s.route for s in shots.CONSOLE_SCREENS if s.route]
    assert sorted(covered) == sorted(set(covered)), "a route with two entries"


def test_a_route_left_out_is_found(shots: ModuleType, tmp_path: Path) -> None:
    router = tmp_path / "router.js"
    router.write_text(
        'const ROUTES = [\n  { name: "activities", pattern: /x/ },\n'
        '  { name: "coupon-wall", pattern: /y/ },\n];\n'
        'Object.assign(route, { name: "activities" });\n'
    )
    assert shots.router_routes(router) == ["activities", "coupon-wall"]
    assert shots.missing_routes(router) == ["coupon-wall"]


def test_screen_names_are_unique_and_files_are_named_by_size(shots: ModuleType) -> None:
    names = [s.name for s in shots.CONSOLE_SCREENS + shots.SHOPPER_SCREENS]
    assert len(names) == len(set(names))
    assert set(shots.SIZES) == {(1280, 800), (390, 844)}
    kinds = {"wheel", "grid", "red-envelope", "claim", "flash-sale"}
    assert {f"shopper-{k}" for k in kinds} <= set(names)
    assert {"shopper-my-coupons", "shopper-my-prizes", "shopper-my-points"} <= set(names)
    assert shots.parse(["--only", "shopper-wheel"]).only == ["shopper-wheel"]
    with pytest.raises(SystemExit):
        shots.parse(["--only", "no-such-screen"])
