"""The web pages are served by the api from the build in web/dist and load in a
real browser (the flows: tests/pipeline/test_web_console.py, test_web_shopper.py)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.pipeline.conftest import Pipeline, assert_error


def test_pages_load_in_chromium(pipeline: Pipeline, browser: Any, screenshots: Any) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{pipeline.url}/console")
    page.wait_for_selector("#app > *")
    screenshots(page, "console")
    page.goto(f"{pipeline.url}/p/demo/demo-wheel")
    page.wait_for_selector("#app > *")
    screenshots(page, "shopper")
    page.close()
    assert errors == []


def test_unknown_page_is_a_clear_404(pipeline: Pipeline, http: httpx.Client) -> None:
    assert_error(http.get("/p/demo/not a valid id!"), 404, "page_not_found")
    assert http.get("/web/assets/nothing-here.js").status_code == 404
