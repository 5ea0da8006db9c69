"""Shoppers' phones in a real browser, shared by the page tests (the `phones`
fixture in tests/pipeline/conftest.py opens them)."""

from __future__ import annotations

from typing import Any

from domain.tokens import sign_shopper_token
from tests.pipeline.conftest import Pipeline, Tenant

PHONE = {"width": 390, "height": 844}
# A spin takes ~3 s and a draw may wait for a 202 ticket: generous, never a sleep.
SETTLE_MS = 20_000


class Shopper:
    """One shopper's phone: its own browser context (so its own sessionStorage),
    the page, and every uncaught error the page raised."""

    def __init__(self, browser: Any, pipeline: Pipeline, tenant: Tenant, user: str) -> None:
        self.pipeline, self.tenant, self.user = pipeline, tenant, user
        self.context = browser.new_context(viewport=PHONE, locale="en-US", device_scale_factor=2)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))

    def skew_clock(self, seconds: float) -> None:
        """This phone's clock is ``seconds`` off the server's (negative: behind)."""
        self.page.add_init_script(
            f"(() => {{ const real = Date.now; Date.now = () => real() + {seconds * 1000}; }})()"
        )

    def open(self, activity_id: str, token: str | None = "") -> Any:
        if token == "":
            token = sign_shopper_token(self.tenant.secret, self.tenant.tenant_id, self.user)
        url = f"{self.pipeline.url}/p/{self.tenant.tenant_id}/{activity_id}"
        # Leave first: a goto that only changes the fragment would not load the page again.
        self.page.goto("about:blank")
        self.page.goto(url + (f"#token={token}" if token else ""))
        self.page.wait_for_selector("#app > *")
        return self.page

    @property
    def headers(self) -> dict[str, str]:
        return self.tenant.shopper_headers(self.user)

    def close(self) -> None:
        self.context.close()


def settled(page: Any) -> Any:
    """The page once every finite animation (a dialog popping up, the wheel's
    last turn) has finished: what a screenshot should show."""
    page.wait_for_function(
        "document.getAnimations().every(a => a.playState !== 'running'"
        " || a.effect.getComputedTiming().iterations === Infinity)"
    )
    return page


def only_outcome(pipeline: Pipeline, tenant: Tenant, activity_id: str, user: str) -> dict:
    outcomes = [
        o
        for o in pipeline.ledger.outcomes(tenant.tenant_id, activity_id).values()
        if o["user_id"] == user
    ]
    assert len(outcomes) == 1, outcomes
    return outcomes[0]
