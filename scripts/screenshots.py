"""`make screenshots`: a PNG of every console screen and every shopper page at
1280×800 and 390×844, for the README.

It starts an embedded stack of its own in a temporary directory (Kafka, Redis,
Ray, the services: ``carnival.loadstack.embedded_stack``, which seeds the demo tenant
and its admin key), creates representative data through the API (templates,
a themed wheel, a nine-grid, red envelopes, a claim centre, a flash sale, a
partner with a webhook, a code batch, a distribution, draws, claims and a
referral), then drives Debian's chromium with Playwright through the console
(signed in with the admin key) and the shopper pages (a shopper token in the
``#token=`` fragment). Each screenshot is taken once the page is stable: no
loading mask, no running finite animation, every image loaded, and the same
text and charts on two looks in a row (countdowns and "updated at" clocks
excluded). The stack is stopped and the directory removed on the way out.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--only NAME ...]

Console screens are the data in ``CONSOLE_SCREENS``: one entry per route of
web/src/console/router.js (the run fails when a route has no entry, so a new
screen cannot be forgotten). Files are named ``<screen>-<width>x<height>.png``.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run as a file: the project's packages are importable

from carnival.browser import launch_chromium  # noqa: E402
from carnival.demo import DEMO_TENANT, shopper_token  # noqa: E402
from carnival.loadstack import embedded_stack  # noqa: E402

ROUTER_JS = REPO / "web" / "src" / "console" / "router.js"
DEFAULT_OUT = REPO / "docs" / "screenshots"
SIZES: tuple[tuple[int, int], ...] = ((1280, 800), (390, 844))
CONSOLE_KEY_STORAGE = "carnival.console.key"  # web/src/console/session.js
STABLE_TIMEOUT_MS = 20_000
STABLE_POLL_MS = 400
FIGURES_TIMEOUT_S = 60.0
DECIDE_TIMEOUT_S = 30.0
BANNER = "/web/banners/festival.svg"  # served by the api (web/public/banners)


@dataclass(frozen=True)
class Screen:
    """One screenshot: a name (the file's stem before the size) and how to get
    there. Console screens name their router.js route; ``path`` is the hash
    route with ``{placeholders}`` filled from the created data."""

    name: str
    path: str
    route: str = ""  # the router.js route name a console screen shows
    tab: str = ""  # a shopper page's bottom tab (data-tab), "" for the game


# One entry per console route (web/src/console/router.js), plus the sign-in page.
CONSOLE_SCREENS: list[Screen] = [
    Screen("console-sign-in", "", route=""),
    Screen("console-activities", "/activities", route="activities"),
    Screen("console-activity-new", "/activities/new", route="activity-new"),
    Screen("console-activity-edit", "/activities/{wheel}/edit", route="activity-edit"),
    Screen("console-activity-live", "/activities/{wheel}/live", route="activity-live"),
    Screen("console-templates", "/templates", route="templates"),
    Screen("console-template-detail", "/templates/{claim_template}", route="template"),
    Screen("console-code-batches", "/code-batches", route="code-batches"),
    Screen("console-distributions", "/distributions", route="distributions"),
    Screen("console-partners", "/partners", route="partners"),
    Screen("console-partner-detail", "/partners/{partner}", route="partner"),
    Screen(
        "console-webhook-deliveries",
        "/partners/{partner}/webhooks/{webhook}",
        route="deliveries",
    ),
    Screen("console-audit", "/audit", route="audit"),
    Screen("console-points", "/points", route="points"),
]

SHOPPER_SCREENS: list[Screen] = [
    Screen("shopper-wheel", "{wheel}"),
    Screen("shopper-grid", "{grid}"),
    Screen("shopper-red-envelope", "{envelope}"),
    Screen("shopper-claim", "{claim}"),
    Screen("shopper-flash-sale", "{sale}"),
    Screen("shopper-my-coupons", "{wheel}", tab="coupons"),
    Screen("shopper-my-prizes", "{wheel}", tab="prizes"),
    Screen("shopper-my-points", "{wheel}", tab="points"),
]

# Stable = the same signature on two looks STABLE_POLL_MS apart, nothing loading
# and no finite animation running. Clocks that tick every second are left out.
STABLE_JS = """
() => {
  const busy = document.querySelector(
    '.el-loading-mask, [aria-busy="true"], .loading, .el-skeleton, [data-test=spinning]');
  const animating = document.getAnimations().some(a => a.playState === 'running'
    && a.effect && a.effect.getComputedTiming().iterations !== Infinity);
  const images = Array.from(document.images).every(i => i.complete);
  const copy = document.body.cloneNode(true);
  copy.querySelectorAll('[role=timer], [data-testid=last-updated], [data-volatile]')
    .forEach(e => e.remove());
  const charts = Array.from(document.querySelectorAll('canvas')).map(c => {
    try { const d = c.toDataURL(); return d.length + d.slice(-48); } catch { return ''; }
  }).join('|');
  const signature = copy.textContent + '#' + charts;
  const same = window.__screenshotSignature === signature;
  window.__screenshotSignature = signature;
  return same && !busy && !animating && images && copy.textContent.trim().length > 0;
}
"""


def router_routes(router_js: Path = ROUTER_JS) -> list[str]:
    """The route names the console's router knows, in its order (its ROUTES table)."""
    table = re.search(r"const ROUTES = \[(.*?)\];", router_js.read_text(), re.DOTALL)
    if table is None:
        raise SystemExit(f"no ROUTES table in {router_js}: update router_routes()")
    return re.findall(r'\{\s*name:\s*"([^"]+)"', table.group(1))


def missing_routes(router_js: Path = ROUTER_JS) -> list[str]:
    covered = {s.route for s in CONSOLE_SCREENS}
    return [r for r in router_routes(router_js) if r not in covered]


# -- the stack ---------------------------------------------------------------------


@contextmanager
def fresh_stack(report: Callable[[str], None]) -> Iterator[tuple[str, str, str]]:
    """A fresh stack in a temporary directory: (api url, redis url, admin key).
    Its webhook retries are quick, so the failing webhook's deliveries are dead
    letters by the time the delivery log is shot."""
    with (
        tempfile.TemporaryDirectory(prefix="carnival-shots-") as tmp,
        embedded_stack(
            Path(tmp),
            report,
            CARNIVAL_RAY_NAMESPACE=f"shots-{uuid.uuid4().hex[:6]}",
            CARNIVAL_WEBHOOK_BACKOFF_MS=200,
            CARNIVAL_WEBHOOK_MAX_ATTEMPTS=3,
            CARNIVAL_WEBHOOK_TIMEOUT_MS=500,
        ) as stack,
    ):
        yield stack.api, stack.redis_url, stack.admin_key


# -- the data ----------------------------------------------------------------------


class Seeder:
    """Representative data through the API, as an operator and shoppers make it."""

    def __init__(self, api: str, redis_url: str, key: str) -> None:
        self.http = httpx.Client(base_url=api, timeout=30)
        self.redis_url = redis_url
        self.staff = {"X-Api-Key": key}
        self.ids: dict[str, str] = {}
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def token(self, user: str) -> str:
        if user not in self._tokens:
            self._tokens[user] = shopper_token(self.redis_url, DEMO_TENANT, user)
        return self._tokens[user]

    def shopper(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(user)}"}

    def _ok(self, reply: httpx.Response, *statuses: int) -> Any:
        if reply.status_code not in (statuses or (200, 201, 202)):
            raise RuntimeError(f"{reply.request.method} {reply.request.url}: {reply.text}")
        return reply.json()

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        return self._ok(self.http.request(method, path, json=body, headers=self.staff))

    def _decided(self, reply: httpx.Response, poll: str, headers: dict[str, str]) -> Any:
        """A 202 ticket polled until the request is decided (refusals are data too)."""
        deadline = time.monotonic() + DECIDE_TIMEOUT_S
        while reply.status_code == 202 and time.monotonic() < deadline:
            reply = self.http.get(poll, headers=headers)
        return reply.json()

    def template(self, template_id: str, **fields: Any) -> None:
        body = {"id": template_id, "validity": {"days_after_claim": 30}, **fields}
        self.admin("POST", "/v1/admin/templates", body)
        self.admin("POST", f"/v1/admin/templates/{template_id}/start")

    def activity(self, name: str, start: bool = True, **fields: Any) -> str:
        made = self.admin("POST", "/v1/admin/activities", {"name": name, **fields})
        activity_id = made["activity"]["id"]
        self.admin("POST", f"/v1/admin/activities/{activity_id}/transitions", {"to": "scheduled"})
        if start:
            self.admin("POST", f"/v1/admin/activities/{activity_id}/transitions", {"to": "running"})
        return activity_id

    def draw(self, activity_id: str, user: str) -> Any:
        rid = uuid.uuid4().hex
        path = f"/v1/activities/{activity_id}/draws"
        reply = self.http.post(path, json={"request_id": rid}, headers=self.shopper(user))
        return self._decided(reply, f"{path}/{rid}", self.shopper(user))

    def claim(self, template_id: str, user: str) -> Any:
        rid = uuid.uuid4().hex
        path = f"/v1/templates/{template_id}/claims"
        reply = self.http.post(path, json={"request_id": rid}, headers=self.shopper(user))
        return self._decided(reply, f"{path}/{rid}", self.shopper(user))

    def seed(self) -> dict[str, str]:
        now = int(time.time() * 1000)
        sale_opens = now + 2 * 3_600_000
        self.template(
            "welcome-5",
            name="¥5 off, no minimum",
            kind="fixed",
            amount_cents=500,
            description="Any order, 30 days",
            limits={"stock": 1000, "per_user": 1},
        )
        self.template(
            "spend-100-get-20",
            name="¥20 off ¥100",
            kind="threshold",
            amount_cents=2000,
            threshold_cents=10000,
            limits={"stock": 300, "per_user": 2},
        )
        self.template(
            "free-shipping",
            name="Free order up to ¥15",
            kind="free_order",
            cap_cents=1500,
            limits={"stock": 50},
        )
        self.template(
            "flash-half-off",
            name="50% off, up to ¥30",
            kind="percent",
            percent=50,
            cap_cents=3000,
            limits={"stock": 100, "per_user": 1},
            claim_opens_at=sale_opens,
        )
        self.ids["claim_template"] = "welcome-5"
        wheel = self.activity(
            "Spring festival wheel",
            kind="wheel",
            prizes=[
                {
                    "id": "c5",
                    "name": "¥5 coupon",
                    "kind": "coupon",
                    "weight": 20,
                    "stock": 200,
                    "coupon_template": "welcome-5",
                },
                {
                    "id": "p100",
                    "name": "100 points",
                    "kind": "points",
                    "weight": 30,
                    "stock": 1000,
                    "points": 100,
                },
                {"id": "mug", "name": "Festival mug", "kind": "item", "weight": 5, "stock": 20},
                {"id": "thanks", "name": "Thanks for playing", "kind": "thanks", "weight": 45},
            ],
            fallback_prize_id="thanks",
            limits={"per_user_daily": 5},
            theme={"primary": "#d9363e", "accent": "#ffcf5c", "banner_url": BANNER},
        )
        cells = [
            {"id": f"g{i}", "name": name, "kind": kind, "weight": w, **extra}
            for i, (name, kind, w, extra) in enumerate(
                [
                    ("¥5 coupon", "coupon", 10, {"coupon_template": "welcome-5", "stock": 100}),
                    ("50 points", "points", 20, {"points": 50}),
                    ("Tote bag", "item", 3, {"stock": 10}),
                    ("Thanks", "thanks", 30, {}),
                    ("¥20 off ¥100", "coupon", 5, {"coupon_template": "spend-100-get-20"}),
                    ("10 points", "points", 25, {"points": 10}),
                    ("Phone stand", "item", 2, {"stock": 5}),
                    ("Try again", "thanks", 5, {}),
                ]
            )
        ]
        grid = self.activity(
            "Lucky nine-grid",
            kind="grid",
            prizes=cells,
            fallback_prize_id="g3",
            theme={"primary": "#6a3de8"},
        )
        envelope = self.activity(
            "New year red envelopes",
            kind="red_envelope",
            envelopes={"budget_cents": 888_800, "count": 500, "min_cents": 88},
        )
        claim = self.activity(
            "Coupon centre",
            kind="claim",
            templates=["welcome-5", "spend-100-get-20", "free-shipping"],
        )
        sale = self.activity(
            "Double 11 flash sale",
            start=False,
            kind="flash_sale",
            starts_at=sale_opens,
            templates=["flash-half-off"],
        )
        self.ids.update(wheel=wheel, grid=grid, envelope=envelope, claim=claim, sale=sale)

        partner = self.admin(
            "POST",
            "/v1/admin/partners",
            {"name": "Downtown store", "algorithm": "HMAC-SHA256", "store_ids": ["store-01"]},
        )["partner"]
        self.ids["partner"] = partner["id"]
        # Nothing listens on port 9: its deliveries fail and are retried, as a
        # partner whose endpoint is down sees them in the console.
        hook = self.admin(
            "POST",
            f"/v1/admin/partners/{partner['id']}/webhooks",
            {"url": "http://127.0.0.1:9/carnival", "event_types": ["coupon.claimed"]},
        )
        self.ids["webhook"] = hook["webhook"]["id"]
        self.admin(
            "POST", "/v1/admin/code-batches", {"template_id": "spend-100-get-20", "count": 200}
        )
        self._ok(
            self.http.post(
                "/v1/admin/templates/free-shipping/distributions",
                content="\n".join(f"vip{i}" for i in range(20)) + "\nnot a user id\n",
                headers={**self.staff, "Content-Type": "text/csv"},
            )
        )
        self.admin("PUT", "/v1/admin/referral-rules", {"advocate_points": 50, "friend_points": 20})

        shoppers = [f"shopper{i}" for i in range(12)] + ["alice"]
        for user in shoppers:
            for activity_id in (wheel, grid, envelope):
                self.draw(activity_id, user)
        for user in [*shoppers[:8], "alice"]:
            self.claim("welcome-5", user)
        self.claim("spend-100-get-20", "alice")
        link = self._ok(
            self.http.post(
                "/v1/me/shares",
                json={"activity_id": wheel, "channel": "x"},
                headers=self.shopper("alice"),
            )
        )
        self.http.get(f"/s/{link['code']}")
        self.http.post("/v1/me/referrals", json={"code": link["code"]}, headers=self.shopper("bob"))
        self.draw(wheel, "bob")
        self.http.post("/v1/me/referrals", json={"code": link["code"]}, headers=self.shopper("bob"))
        self._wait_for_figures(wheel, len(shoppers) + 1)
        return self.ids

    def _wait_for_figures(self, activity_id: str, draws: int) -> None:
        """Dashboards read ClickHouse: wait until it holds the draws made."""
        deadline = time.monotonic() + FIGURES_TIMEOUT_S
        while time.monotonic() < deadline:
            reply = self.http.get(f"/v1/stats/activities/{activity_id}", headers=self.staff)
            if reply.status_code == 200 and reply.json().get("outcomes", 0) >= draws:
                return
            time.sleep(0.2)  # a poll interval against the stats endpoint, not a settle
        print(f"warning: ClickHouse had not all {draws} draws after {FIGURES_TIMEOUT_S:.0f} s")


# -- the browser -------------------------------------------------------------------


class Camera:
    def __init__(self, browser: Any, api: str, out: Path) -> None:
        self.browser, self.api, self.out = browser, api, out
        self.taken: list[Path] = []
        self.unsettled: list[str] = []

    def _stable(self, page: Any, what: str) -> None:
        page.wait_for_selector("#app > *", state="attached")
        try:
            page.wait_for_function(STABLE_JS, timeout=STABLE_TIMEOUT_MS, polling=STABLE_POLL_MS)
        except Exception:  # Playwright's TimeoutError: shoot anyway, and say so
            self.unsettled.append(what)

    def shoot(self, page: Any, name: str, size: tuple[int, int]) -> None:
        what = f"{name}-{size[0]}x{size[1]}"
        self._stable(page, what)
        path = self.out / f"{what}.png"
        page.screenshot(path=str(path), full_page=False)
        self.taken.append(path)
        print(f"  {path}")

    def _context(self, size: tuple[int, int], mobile: bool) -> Any:
        width, height = size
        return self.browser.new_context(
            viewport={"width": width, "height": height},
            device_scale_factor=1,
            is_mobile=mobile,
            has_touch=mobile,
            locale="en-US",
        )

    def console(self, screens: list[Screen], key: str, ids: dict[str, str]) -> None:
        for size in SIZES:
            context = self._context(size, mobile=False)
            try:
                page = context.new_page()
                for screen in screens:
                    page.goto("about:blank")
                    if not screen.path:  # the sign-in page: no key in this tab yet
                        page.goto(f"{self.api}/console")
                        page.evaluate("k => sessionStorage.removeItem(k)", CONSOLE_KEY_STORAGE)
                        page.reload()
                    else:
                        page.goto(f"{self.api}/console")
                        page.evaluate(
                            "([k, v]) => sessionStorage.setItem(k, v)", [CONSOLE_KEY_STORAGE, key]
                        )
                        page.goto(f"{self.api}/console#{screen.path.format(**ids)}")
                        page.reload()  # the console resumes the stored session on load
                        page.wait_for_selector("[data-testid=tenant]")
                    self.shoot(page, screen.name, size)
            finally:
                context.close()

    def shopper(self, screens: list[Screen], token: str, ids: dict[str, str]) -> None:
        for size in SIZES:
            context = self._context(size, mobile=size[0] < 600)
            try:
                page = context.new_page()
                for screen in screens:
                    activity_id = screen.path.format(**ids)
                    page.goto("about:blank")
                    page.goto(f"{self.api}/p/{DEMO_TENANT}/{activity_id}#token={token}")
                    page.wait_for_selector(".bottom-nav")
                    if screen.tab:
                        page.click(f"[data-tab={screen.tab}]")
                    self.shoot(page, screen.name, size)
            finally:
                context.close()


def parse(argv: list[str] | None) -> argparse.Namespace:
    names = [s.name for s in CONSOLE_SCREENS + SHOPPER_SCREENS]
    ask = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ask.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNGs")
    ask.add_argument(
        "--only", nargs="+", choices=names, metavar="SCREEN", help=f"some of: {', '.join(names)}"
    )
    return ask.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    forgotten = missing_routes()
    if forgotten:
        print(f"error: console routes with no screenshot entry: {', '.join(forgotten)}")
        print("add them to CONSOLE_SCREENS in scripts/screenshots.py")
        return 2
    wanted = set(args.only or [s.name for s in CONSOLE_SCREENS + SHOPPER_SCREENS])
    routes = set(router_routes())
    # An entry for a screen the console does not have (yet) would show the
    # fallback route under the wrong name: left out, and said.
    absent = [s.name for s in CONSOLE_SCREENS if s.route and s.route not in routes]
    if absent:
        print(f"note: no such console route yet, not shot: {', '.join(absent)}")
    console = [s for s in CONSOLE_SCREENS if s.name in wanted and s.name not in absent]
    shopper = [s for s in SHOPPER_SCREENS if s.name in wanted]
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    from playwright.sync_api import sync_playwright

    with fresh_stack(lambda line: print(f"stack: {line}")) as (api, redis_url, key):
        seeder = Seeder(api, redis_url, key)
        try:
            print("creating the data through the API...")
            ids = seeder.seed()
            token = seeder.token("alice")
        finally:
            seeder.close()
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                camera = Camera(browser, api, out)
                camera.console(console, key, ids)
                camera.shopper(shopper, token, ids)
            finally:
                browser.close()
    print(f"{len(camera.taken)} screenshots in {out} ({time.monotonic() - started:.0f} s)")
    if camera.unsettled:
        print(f"warning: not stable within {STABLE_TIMEOUT_MS} ms: {', '.join(camera.unsettled)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
