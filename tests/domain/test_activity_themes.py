"""Activity page themes: which colours and banners an activity accepts, and that
a live activity may change its theme but not its pool with it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain import lifecycle
from domain.activity import BANNER_URL_MAX_CHARS, Activity, Prize, Theme

NOW = 1_700_000_000_000


def _wheel(**fields: object) -> Activity:
    return Activity(
        id="w1",
        tenant_id="t1",
        name="Wheel",
        prizes=(
            Prize(id="mug", name="Mug", kind="item", weight=1, stock=5),
            Prize(id="thanks", name="Thanks", kind="thanks", weight=1),
        ),
        fallback_prize_id="thanks",
        **fields,
    )


def _problem(**fields: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Theme(**fields)
    (error,) = caught.value.errors()
    return f"{'.'.join(map(str, error['loc']))}: {error['msg']}"


def test_every_field_is_optional_and_colours_are_kept_in_lower_case() -> None:
    assert Theme() == Theme(primary=None, accent=None, background=None, text=None)
    theme = Theme(primary="#A1B2C3", accent="#ffd400", background="#FFFFFF", text="#111111")
    assert (theme.primary, theme.background) == ("#a1b2c3", "#ffffff")


@pytest.mark.parametrize("field", ["primary", "accent", "background", "text"])
@pytest.mark.parametrize(
    "value", ["red", "#fff", "#12345g", "#1234567", "123456", " #123456", "#123456;x", ""]
)
def test_a_colour_is_hex_rrggbb_and_the_message_names_the_field(field: str, value: str) -> None:
    problem = _problem(**{field: value})
    assert problem.startswith(f"{field}: ") and "#rrggbb" in problem


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.example.com/banners/summer.png",
        "https://cdn.example.com/a%20b.jpg?v=2#top",
        "/web/banners/festival.svg",
        "/" + "a" * (BANNER_URL_MAX_CHARS - 1),
    ],
)
def test_a_banner_is_an_https_url_or_a_path_on_the_same_host(url: str) -> None:
    assert Theme(banner_url=url).banner_url == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("javascript:alert(1)", "javascript:"),
        ("JavaScript:alert(1)", "javascript:"),
        ("data:image/png;base64,AAAA", "data:"),
        ("http://example.com/b.png", "https://"),
        ("//evil.example.com/b.png", "https://"),
        ("https://", "https://"),
        ("ftp://example.com/b.png", "https://"),
        ("banner.png", "https://"),
        ('/b.png") ; background: url("x', "quotes"),
        ("/b.png\nx", "spaces"),
        ("/a b.png", "spaces"),
        ("/b\\.png", "backslashes"),
        ("", "characters"),
        ("/" + "a" * BANNER_URL_MAX_CHARS, "characters"),
    ],
)
def test_a_banner_is_refused_with_a_message_naming_the_field(url: str, why: str) -> None:
    problem = _problem(banner_url=url)
    assert problem.startswith("banner_url: ") and why in problem


def test_unknown_theme_fields_are_refused() -> None:
    assert _problem(sector_colors=["#ffffff"]).startswith("sector_colors: ")


def test_the_theme_is_stored_with_the_activity_and_a_live_activity_may_change_it() -> None:
    themed = _wheel(theme=Theme(primary="#0a7d5a", banner_url="/web/banners/festival.svg"))
    again = Activity.model_validate_json(themed.model_dump_json())
    assert again.theme == themed.theme
    assert _wheel().theme is None

    running = themed.model_copy(update={"status": "running"})
    edited = lifecycle.edit(running, {"theme": {"primary": "#123abc", "text": "#000000"}}, NOW)
    assert edited.theme == Theme(primary="#123abc", text="#000000")
    assert edited.version == running.version + 1
    cleared = lifecycle.edit(edited, {"theme": None}, NOW)
    assert cleared.theme is None
    with pytest.raises(lifecycle.LifecycleError) as refused:
        lifecycle.edit(running, {"theme": {}, "prizes": []}, NOW)
    assert refused.value.code == "activity_live" and "theme" in str(refused.value)
    with pytest.raises(ValidationError):
        lifecycle.edit(running, {"theme": {"primary": "blue"}}, NOW)
