"""Coupon codes: a million unique codes from one call, what the check character
catches, parse and import errors one reason at a time, and code states."""

from __future__ import annotations

import itertools
import random
import re
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.codes import (
    ALPHANUMERIC,
    CHARSETS,
    CODE_TRANSITIONS,
    DIGITS,
    MAX_CODE_LENGTH,
    MAX_CODES_PER_CALL,
    MAX_IMPORT_LINES,
    MAX_RAW_CODE_CHARS,
    SAFE_CHARSET,
    CharsetName,
    CodeError,
    CodePattern,
    CodeState,
    check_character,
    generate,
    has_valid_check,
    min_length,
    normalize,
    parse_code,
    parse_import,
    transition,
)

MILLION = 1_000_000
MILLION_CODES_BUDGET_S = 20.0
# Critical value of chi-square with 30 degrees of freedom (31 characters) at p = 0.001.
CHI2_CRITICAL_30DF_P001 = 59.703

# One pattern per charset, with and without a prefix, each at a legal length.
PATTERNS: dict[CharsetName, CodePattern] = {
    "safe": CodePattern(),
    "alphanumeric": CodePattern(prefix="SUMMER-", length=10, charset="alphanumeric"),
    "digits": CodePattern(prefix="77", length=14, charset="digits"),
}
CHARSET_NAMES: tuple[CharsetName, ...] = ("safe", "alphanumeric", "digits")
STATES: tuple[CodeState, ...] = ("available", "assigned", "redeemed", "voided")


def _error(raw: str, pattern: CodePattern) -> str:
    with pytest.raises(CodeError) as caught:
        parse_code(raw, pattern)
    return caught.value.code


def _undetected_swap(a: str, b: str, charset: CharsetName) -> bool:
    """The documented blind spot: for an even charset size N, values 0 and N-1."""
    chars = CHARSETS[charset]
    n = len(chars)
    return n % 2 == 0 and {chars.index(a), chars.index(b)} == {0, n - 1}


# --- generation ---------------------------------------------------------------


def test_a_million_codes_from_one_call_are_unique_well_formed_and_checked() -> None:
    pattern = CodePattern()
    started = time.perf_counter()
    codes = list(generate(pattern, MILLION))
    generated = time.perf_counter()
    shape = re.compile(f"[{SAFE_CHARSET}]{{{pattern.length + 1}}}")
    assert len(codes) == MILLION
    assert len(set(codes)) == MILLION
    assert all(shape.fullmatch(code) for code in codes)
    assert all(has_valid_check(code, pattern) for code in codes)
    done = time.perf_counter()
    print(
        f"\n1,000,000 codes: generate {generated - started:.2f} s, "
        f"check shape, uniqueness and check character {done - generated:.2f} s, "
        f"total {done - started:.2f} s"
    )
    assert done - started < MILLION_CODES_BUDGET_S


def test_random_part_is_uniform_over_the_charset() -> None:
    # Rejection sampling, not byte % N: a modulo bias would favour the first characters.
    counts = Counter("".join(generate(CodePattern(check_char=False), 100_000, random.Random(11))))
    total = sum(counts.values())
    expected = total / len(SAFE_CHARSET)
    assert set(counts) == set(SAFE_CHARSET)
    chi2 = sum((counts[c] - expected) ** 2 / expected for c in SAFE_CHARSET)
    assert chi2 < CHI2_CRITICAL_30DF_P001, (chi2, counts)


class _RepeatingThenRandom(random.Random):
    """Hands out one chunk of zero bytes (the same random part again and again), then random."""

    def __init__(self) -> None:
        super().__init__(5)
        self.calls = 0

    def randbytes(self, n: int) -> bytes:
        self.calls += 1
        return bytes(n) if self.calls == 1 else super().randbytes(n)


def test_one_call_never_yields_the_same_code_twice() -> None:
    pattern = CodePattern(check_char=False)
    codes = list(generate(pattern, 3, _RepeatingThenRandom()))
    assert codes[0] == SAFE_CHARSET[0] * pattern.length
    assert len(set(codes)) == 3


def test_generate_builds_prefix_random_part_and_check_character() -> None:
    for pattern in PATTERNS.values():
        for code in generate(pattern, 100, random.Random(3)):
            assert code.startswith(pattern.prefix)
            assert len(code) == pattern.code_length
            body = code[len(pattern.prefix) : -1]
            assert code[-1] == check_character(body, pattern.charset)
    plain = CodePattern(prefix="X-", check_char=False)
    code = next(generate(plain, 1, random.Random(3)))
    assert len(code) == 2 + plain.length


def test_a_seeded_rng_reproduces_the_codes_and_the_default_does_not() -> None:
    pattern = CodePattern()
    assert list(generate(pattern, 50, random.Random(9))) == list(
        generate(pattern, 50, random.Random(9))
    )
    assert list(generate(pattern, 50)) != list(generate(pattern, 50))


def test_generate_refuses_a_bad_count_at_the_call() -> None:
    pattern = CodePattern()
    assert list(generate(pattern, 0)) == []
    for count in (-1, MAX_CODES_PER_CALL + 1):
        with pytest.raises(ValueError, match="codes per call"):
            generate(pattern, count)  # raised before any iteration


# --- the check character ------------------------------------------------------


def test_check_character_is_luhn_for_an_even_charset() -> None:
    # The textbook credit-card example: 7992739871 has check digit 3 (leading
    # zeros weigh nothing, so it can be padded to a legal length).
    assert check_character("7992739871", "digits") == "3"
    pattern = CodePattern(length=13, charset="digits")
    assert has_valid_check("000" + "7992739871" + "3", pattern)
    assert not has_valid_check("000" + "7992739871" + "4", pattern)


@pytest.mark.parametrize("charset", CHARSET_NAMES)
def test_a_sample_of_100000_substitutions_is_all_caught(charset: CharsetName) -> None:
    pattern = PATTERNS[charset]
    chars = CHARSETS[charset]
    rng = random.Random(20260301)
    missed = []
    for code in generate(pattern, 100_000, rng):
        # Any position after the prefix, the check character included.
        at = rng.randrange(len(pattern.prefix), len(code))
        typo = rng.choice(chars.replace(code[at], ""))
        mutated = code[:at] + typo + code[at + 1 :]
        if has_valid_check(mutated, pattern):
            missed.append((code, mutated))
    assert missed == []


@pytest.mark.parametrize("charset", CHARSET_NAMES)
def test_every_substitution_at_every_position_of_1000_codes_is_caught(
    charset: CharsetName,
) -> None:
    pattern = PATTERNS[charset]
    chars = CHARSETS[charset]
    missed = []
    for code in generate(pattern, 1000, random.Random(17)):
        for at in range(len(pattern.prefix), len(code)):
            for typo in chars.replace(code[at], ""):
                mutated = code[:at] + typo + code[at + 1 :]
                if has_valid_check(mutated, pattern):
                    missed.append((code, mutated))
    assert missed == []


@pytest.mark.parametrize("charset", CHARSET_NAMES)
def test_adjacent_transpositions_in_1000_codes_are_caught_but_the_documented_pair(
    charset: CharsetName,
) -> None:
    pattern = PATTERNS[charset]
    wrong = []
    blind_spots = 0
    for code in generate(pattern, 1000, random.Random(23)):
        for at in range(len(pattern.prefix), len(code) - 1):
            a, b = code[at], code[at + 1]
            if a == b:
                continue
            swapped = code[:at] + b + a + code[at + 2 :]
            expected = _undetected_swap(a, b, charset)
            blind_spots += expected
            if has_valid_check(swapped, pattern) != expected:
                wrong.append((code, swapped))
    assert wrong == []
    # The sample reaches the blind spot where one exists, so the rule above is exercised.
    assert (blind_spots > 0) == (len(CHARSETS[charset]) % 2 == 0)


@pytest.mark.parametrize("charset", CHARSET_NAMES)
def test_every_pair_of_characters_swapped_at_either_weight(charset: CharsetName) -> None:
    chars = CHARSETS[charset]
    pattern = CodePattern(length=13, charset=charset)
    base = random.Random(29).choices(chars, k=13)
    wrong = []
    for a, b in itertools.permutations(chars, 2):
        for at in (10, 11):  # the pair at weights (2, 1), then (1, 2)
            body = "".join([*base[:at], a, b, *base[at + 2 :]])
            code = body + check_character(body, charset)
            swapped = code[:at] + b + a + code[at + 2 :]
            if has_valid_check(swapped, pattern) != _undetected_swap(a, b, charset):
                wrong.append((a, b, at))
    assert wrong == []


def test_the_documented_blind_spots() -> None:
    assert check_character("09", "digits") == check_character("90", "digits")
    assert check_character("0Z", "alphanumeric") == check_character("Z0", "alphanumeric")
    first, last = SAFE_CHARSET[0], SAFE_CHARSET[-1]
    assert check_character(first + last, "safe") != check_character(last + first, "safe")


def test_check_character_refuses_characters_outside_the_charset() -> None:
    for body, charset in (("ABC0", "safe"), ("12A", "digits"), ("ÄB", "alphanumeric")):
        with pytest.raises(CodeError) as caught:
            check_character(body, charset)  # type: ignore[arg-type]
        assert caught.value.code == "bad_characters"


# --- patterns -----------------------------------------------------------------


def test_charsets_are_defined_once_without_look_alikes() -> None:
    assert DIGITS == "0123456789"
    assert len(ALPHANUMERIC) == 36
    assert len(SAFE_CHARSET) == 31
    assert not set("01ILO") & set(SAFE_CHARSET)


def test_patterns_need_40_bits_of_entropy_and_say_how_to_get_them() -> None:
    for charset, shortest in (("safe", 9), ("alphanumeric", 8), ("digits", 13)):
        assert min_length(charset) == shortest
        assert CodePattern(length=shortest, charset=charset).entropy_bits >= 40
        with pytest.raises(ValidationError, match=f"use a length of at least {shortest}"):
            CodePattern(length=shortest - 1, charset=charset)
    assert CodePattern().entropy_bits == pytest.approx(12 * 4.954196, abs=1e-5)


def test_pattern_fields_are_checked_with_actionable_messages() -> None:
    with pytest.raises(ValidationError, match="upper-case letters A-Z, digits and '-'"):
        CodePattern(prefix="summer")
    with pytest.raises(ValidationError, match="use at most 16"):
        CodePattern(prefix="A" * 17)
    with pytest.raises(ValidationError, match="choose between 6 and 32"):
        CodePattern(length=33)
    with pytest.raises(ValidationError):
        CodePattern(charset="hex")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        CodePattern(suffix="X")  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        CodePattern().length = 20  # type: ignore[misc]
    assert CodePattern(prefix="A-" * 8).code_length == 16 + 12 + 1


# --- normalize and parse_code -------------------------------------------------


@given(st.text())
def test_normalize_is_idempotent(raw: str) -> None:
    assert normalize(normalize(raw)) == normalize(raw)


def test_normalize_upper_cases_and_drops_spaces_but_keeps_dashes() -> None:
    assert normalize("  summer-ab cd\t12\n") == "SUMMER-ABCD12"


@st.composite
def _patterns(draw: st.DrawFn) -> CodePattern:
    charset = draw(st.sampled_from(CHARSET_NAMES))
    return CodePattern(
        prefix=draw(st.text(alphabet=ALPHANUMERIC + "-", max_size=16)),
        length=draw(st.integers(min_length(charset), 32)),
        charset=charset,
        check_char=draw(st.booleans()),
    )


@given(_patterns(), st.integers(0, 2**32), st.integers(0, 64), st.booleans())
def test_any_generated_code_survives_normalize_and_parse(
    pattern: CodePattern, seed: int, space_at: int, lower: bool
) -> None:
    code = next(generate(pattern, 1, random.Random(seed)))
    assert parse_code(normalize(code), pattern) == code
    typed = code.lower() if lower else code
    typed = f" {typed[:space_at]} {typed[space_at:]}\t"  # as a shopper or a till types it
    assert parse_code(typed, pattern) == code
    assert has_valid_check(code, pattern)


def test_parse_code_empty_code() -> None:
    assert _error("", CodePattern()) == "empty_code"
    assert _error(" \t\n ", CodePattern()) == "empty_code"


def test_parse_code_code_too_long() -> None:
    assert _error("A" * (MAX_CODE_LENGTH + 1), CodePattern()) == "code_too_long"
    # Bounded before normalising, whatever the whitespace hides.
    assert _error(" " * MAX_RAW_CODE_CHARS + "ABC", CodePattern()) == "code_too_long"


def test_parse_code_bad_characters() -> None:
    pattern = CodePattern()
    code = next(generate(pattern, 1, random.Random(1)))
    assert _error(code[:5] + "!" + code[6:], pattern) == "bad_characters"
    assert _error(code[:5] + "É" + code[6:], pattern) == "bad_characters"
    # O and 0 are never in safe codes: a misread character, not a typo to guess at.
    assert _error(code[:5] + "O" + code[6:], pattern) == "bad_characters"
    assert _error(code[:5] + "0" + code[6:], pattern) == "bad_characters"


def test_parse_code_wrong_prefix() -> None:
    pattern = PATTERNS["alphanumeric"]
    code = next(generate(pattern, 1, random.Random(1)))
    assert _error("WINTER-" + code.removeprefix("SUMMER-"), pattern) == "wrong_prefix"
    assert _error(code.removeprefix("SUMMER-"), pattern) == "wrong_prefix"


def test_parse_code_wrong_length() -> None:
    pattern = CodePattern(prefix="SUMMER-")
    code = next(generate(pattern, 1, random.Random(1)))
    assert _error(code[:-1], pattern) == "wrong_length"
    assert _error(code + "2", pattern) == "wrong_length"


def test_parse_code_bad_check_character() -> None:
    pattern = CodePattern()
    code = next(generate(pattern, 1, random.Random(1)))
    other = SAFE_CHARSET[(SAFE_CHARSET.index(code[-1]) + 1) % len(SAFE_CHARSET)]
    assert _error(code[:-1] + other, pattern) == "bad_check_character"
    # Without a check character the same code is just well formed.
    assert parse_code(code[:-1], CodePattern(check_char=False)) == code[:-1]


# --- importing external codes -------------------------------------------------


def _reasons(lines: list[str]) -> list[tuple[int, str]]:
    return [(r.line, r.reason) for r in parse_import(lines).rejected]


def test_import_accepts_codes_in_file_order_skipping_the_header() -> None:
    report = parse_import(
        ["\ufeffCode,note\n", "abc-123,first\n", '"WX_99 88",quoted\n', '"A,B",comma\n']
    )
    assert report.header_skipped
    assert report.accepted == ["ABC-123", "WX_9988"]
    assert report.accepted_lines == [2, 3]
    assert _reasons(['"A,B",comma\n']) == [(1, "bad_characters")]
    assert parse_import(["ABCD\n", "code\n"]).accepted == ["ABCD", "CODE"]


def test_import_empty_line() -> None:
    assert _reasons(["ABCD\n", "\n", "   \n", ",second column only\n", "EFGH\n"]) == [
        (2, "empty_line"),
        (3, "empty_line"),
        (4, "empty_line"),
    ]


def test_import_bad_characters() -> None:
    report = parse_import(["AB CD!\n", "ÄBCD\n", "AB\rCD\n", "GOOD\n"])
    assert [(r.line, r.reason) for r in report.rejected] == [
        (1, "bad_characters"),
        (2, "bad_characters"),
        (3, "bad_characters"),  # not readable as CSV
    ]
    assert report.accepted == ["GOOD"]


def test_import_too_short() -> None:
    assert _reasons(["abc\n", " a b c \n", "abcd\n"]) == [(1, "too_short"), (2, "too_short")]


def test_import_too_long() -> None:
    report = parse_import(["X" * 64 + "\n", "Y" * 65 + "\n", "Z" * 500 + "\n"])
    assert [(r.line, r.reason) for r in report.rejected] == [(2, "too_long"), (3, "too_long")]
    assert report.rejected[1].raw == "Z" * 100  # what the report echoes is bounded
    assert report.rejected[1].message.endswith("this one has 500")


def test_import_duplicate_in_file() -> None:
    report = parse_import(["code\n", "ABCD-1\n", "efgh\n", " abcd-1 \n", "EF GH\n"])
    assert report.accepted == ["ABCD-1", "EFGH"]
    assert [(r.line, r.reason) for r in report.rejected] == [
        (4, "duplicate_in_file"),
        (5, "duplicate_in_file"),
    ]
    assert "line 2" in report.rejected[0].message


def test_import_too_many_lines_stops_reading() -> None:
    def upload() -> Iterator[str]:
        yield "code\n"
        for i in itertools.count():
            yield f"X{i:07d}\n"

    lines = upload()
    started = time.perf_counter()
    report = parse_import(lines)
    print(f"\nimport of {MAX_IMPORT_LINES + 2:,} lines: {time.perf_counter() - started:.2f} s")
    assert len(report.accepted) == MAX_IMPORT_LINES  # a header does not count
    assert [(r.line, r.reason) for r in report.rejected] == [
        (MAX_IMPORT_LINES + 2, "too_many_lines")
    ]
    assert next(lines) == f"X{MAX_IMPORT_LINES + 1:07d}\n"  # the rest was not read


# --- states -------------------------------------------------------------------


def test_code_transitions_are_exactly_the_allowed_ones() -> None:
    allowed = {
        ("available", "assigned"),
        ("available", "voided"),
        ("assigned", "redeemed"),
        ("assigned", "voided"),
        ("redeemed", "assigned"),
    }
    assert {(s, t) for s, targets in CODE_TRANSITIONS.items() for t in targets} == allowed
    for state, to in itertools.product(STATES, STATES):
        reversal = (state, to) == ("redeemed", "assigned")
        if (state, to) in allowed:
            assert transition(state, to, reversal=reversal) == to
        else:
            with pytest.raises(CodeError) as caught:
                transition(state, to)
            assert caught.value.code == "invalid_code_transition"


def test_a_redemption_is_only_undone_as_a_reversal() -> None:
    with pytest.raises(CodeError, match="only through a reversal"):
        transition("redeemed", "assigned")
    with pytest.raises(CodeError, match="not a reversal"):
        transition("available", "assigned", reversal=True)
    assert transition("redeemed", "assigned", reversal=True) == "assigned"
