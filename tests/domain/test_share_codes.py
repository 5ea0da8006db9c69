"""Share codes, channel URLs and reward request ids: pure rules."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from domain.ids import REQUEST_ID_PATTERN
from domain.shares import (
    CHANNELS,
    CODE_CHARS,
    intent_url,
    is_code,
    reward_request_id,
    share_code,
)


def test_a_code_is_stable_short_and_distinct_per_field() -> None:
    code = share_code("t1", "wheel", "ann", "x")
    assert code == share_code("t1", "wheel", "ann", "x")
    assert len(code) == CODE_CHARS and is_code(code)
    others = {
        share_code("t2", "wheel", "ann", "x"),
        share_code("t1", "grid", "ann", "x"),
        share_code("t1", "wheel", "bob", "x"),
        *(share_code("t1", "wheel", "ann", c) for c in CHANNELS if c != "x"),
    }
    assert code not in others and len(others) == 3 + len(CHANNELS) - 1
    # The fields cannot run into each other: ("ab", "c") is not ("a", "bc").
    assert share_code("t", "ab", "c", "x") != share_code("t", "a", "bc", "x")
    assert "ann" not in code and "wheel" not in code


@pytest.mark.parametrize(
    "value", ["", "ABCDEFGHIJKLMNOP", "abc", "a" * (CODE_CHARS + 1), "abcdefghijklmno1", "../etc"]
)
def test_not_a_code(value: str) -> None:
    assert not is_code(value)


def test_intent_urls() -> None:
    landing = "https://shop.example/s/abcdefghijklmnop"
    x = urlsplit(intent_url("x", landing, "Spin & win"))
    assert (x.netloc, x.path) == ("twitter.com", "/intent/tweet")
    assert parse_qs(x.query) == {"url": [landing], "text": ["Spin & win"]}
    fb = urlsplit(intent_url("facebook", landing, "Spin"))
    assert (fb.netloc, fb.path) == ("www.facebook.com", "/sharer/sharer.php")
    assert parse_qs(fb.query) == {"u": [landing]}
    # TikTok has no web share intent; copy is the landing URL itself.
    assert intent_url("tiktok", landing, "Spin") == landing
    assert intent_url("copy", landing, "Spin") == landing


def test_reward_request_ids_are_one_per_friend_and_side_and_valid_ids() -> None:
    long_id = "a" * 64
    advocate = reward_request_id(long_id, long_id, "advocate")
    friend = reward_request_id(long_id, long_id, "friend")
    assert advocate != friend
    assert advocate == reward_request_id(long_id, long_id, "advocate")
    assert advocate != reward_request_id(long_id, "b", "advocate")
    for rid in (advocate, friend):
        assert re.fullmatch(REQUEST_ID_PATTERN, rid)
