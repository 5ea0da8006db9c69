"""Coupon codes: patterns, generation, the check character, parsing, imports and
the code's states (pure, no I/O).

A code is ``prefix + random part (+ check character)``. Every code in the system
is kept in the canonical form `normalize` gives, so what a shopper or a till
types is looked up exactly as it was stored.

Guarantees a caller may rely on:

- `generate` draws the random part from the OS CSPRNG (`secrets`), uniformly
  over the charset (no modulo bias), and never yields the same code twice in one
  call. It does *not* make codes unique across calls or tenants: the ledger
  does, with a set per tenant, and must skip a code it already holds.
- A pattern refuses to exist with fewer than `MIN_ENTROPY_BITS` bits in its
  random part, so a valid pattern always produces unguessable codes.
- The check character catches every single mistyped character and every swap
  of two neighbours, with one documented exception (see `check_character`). It
  is a typing aid, not a security feature: 1 in N random guesses passes it.
- `parse_code` returns the canonical code or raises `CodeError` with a
  machine-readable ``code``; it says nothing about whether the code exists.
"""

from __future__ import annotations

import csv
import math
import random
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal, Self

from pydantic import field_validator, model_validator

from domain.activity import _Frozen

# --- charsets ----------------------------------------------------------------

DIGITS = "0123456789"
ALPHANUMERIC = DIGITS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Codes are read off receipts, screens and phone calls and typed by hand, so
# the default leaves out the characters people confuse: 0 and O, and 1, I and L.
# Dropping both sides of each pair (rather than mapping O to 0 on input) means a
# misread character is simply not a code character and is reported as such.
SAFE_CHARSET = "".join(c for c in ALPHANUMERIC if c not in "01ILO")

CharsetName = Literal["safe", "digits", "alphanumeric"]
CHARSETS: Mapping[CharsetName, str] = {
    "safe": SAFE_CHARSET,
    "digits": DIGITS,
    "alphanumeric": ALPHANUMERIC,
}

# --- limits ------------------------------------------------------------------

# With a million live codes in a space of 2**40, one guess hits a code with
# probability below 1e-6, so guessing needs about a million redemption attempts
# per hit: the redemption rate limits make that impractical.
MIN_ENTROPY_BITS = 40
PREFIX_PATTERN = r"[A-Z0-9-]{0,16}"
PREFIX_MAX_CHARS = 16
RANDOM_PART_MIN_CHARS = 6
RANDOM_PART_MAX_CHARS = 32
# The longest code stored anywhere: an imported external code. Our own codes
# are at most 16 + 32 + 1 = 49 characters.
MAX_CODE_LENGTH = 64
# Input is bounded before it is normalised, so a pasted essay costs nothing;
# generous, because a till may pad a code with spaces.
MAX_RAW_CODE_CHARS = 4 * MAX_CODE_LENGTH
# One `generate` call keeps every body it made in memory (see `generate`).
MAX_CODES_PER_CALL = 1_000_000
# Random bytes drawn from the CSPRNG per system call while generating.
RANDOM_CHUNK_BYTES = 64 * 1024

# Every character a code of ours can contain once normalised (prefixes and
# charsets); imported codes may also contain '_' and are checked on their own.
_CODE_CHARS = re.compile(r"[A-Z0-9-]*")

# --- errors ------------------------------------------------------------------

CodeErrorCode = Literal[
    "empty_code",
    "code_too_long",
    "bad_characters",
    "wrong_prefix",
    "wrong_length",
    "bad_check_character",
    "invalid_code_transition",
]


class CodeError(ValueError):
    def __init__(self, code: CodeErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: CodeErrorCode = code


# --- the check character -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Alphabet:
    """A charset and the byte tables that make checking a million codes cheap:
    `bytes.translate` maps every character in C instead of a Python loop."""

    chars: str
    ascii: bytes  # the characters, as `bytes.translate`'s delete argument
    values: bytes  # 256-byte table: a character's byte -> its value 0..N-1
    doubled: bytes  # 256-byte table: a value -> its doubled value (see below)
    draw: bytes  # 256-byte table: a random byte -> a character
    draw_reject: bytes  # random bytes that would bias the draw; they are dropped

    @property
    def size(self) -> int:
        return len(self.chars)


def _alphabet(chars: str) -> _Alphabet:
    n = len(chars)
    values = bytearray(256)
    for value, char in enumerate(chars):
        values[ord(char)] = value
    # Luhn doubles a value and, when 2v >= N, adds its two base-N digits back
    # together (1 + 2v - N). That is a permutation of 0..N-1 only for an even N.
    # The default safe charset has N = 31, where 1 and 16 would both become 2 and
    # a typo swapping those characters would pass; so for an odd N we take
    # 2v mod N instead, a permutation because 2 is invertible mod an odd N.
    if n % 2 == 0:
        doubled = [2 * v if 2 * v < n else 2 * v - n + 1 for v in range(n)]
    else:
        doubled = [2 * v % n for v in range(n)]
    # Only the largest multiple of N below 256 maps bytes to characters evenly;
    # the bytes above it are dropped rather than folded in, which would favour
    # the first characters (modulo bias).
    limit = 256 - 256 % n
    return _Alphabet(
        chars=chars,
        ascii=chars.encode("ascii"),
        values=bytes(values),
        doubled=bytes(doubled + [0] * (256 - n)),
        draw=bytes(ord(chars[b % n]) for b in range(limit)) + bytes(256 - limit),
        draw_reject=bytes(range(limit, 256)),
    )


_ALPHABETS: Mapping[CharsetName, _Alphabet] = {
    name: _alphabet(chars) for name, chars in CHARSETS.items()
}


def _check_value(values: bytes, alphabet: _Alphabet) -> int:
    # Weights alternate 2, 1, 2, ... from the body's last character, so the
    # check character appended after it carries weight 1 and the whole code
    # sums to 0 mod N.
    total = sum(values[-1::-2].translate(alphabet.doubled)) + sum(values[-2::-2])
    return -total % alphabet.size


def check_character(body: str, charset: CharsetName) -> str:
    """The check character for the random part `body` (Luhn mod N, N = charset size).

    Appended to `body`, it makes the weighted sum of the values (weights 1, 2,
    1, ... from the right, doubled values folded back into 0..N-1: Luhn's digit
    sum for an even N, 2v mod N for an odd N) a multiple of N. Because doubling
    is a permutation of the values, this detects:

    - every single-character substitution, including of the check character;
    - every transposition of two adjacent characters, except, for an even N,
      the pair with values 0 and N-1 (their values sum to N - 1), which doubling
      leaves unchanged: "0" <-> "9" for `digits` and "0" <-> "Z" for
      `alphanumeric`, as "09" <-> "90" in the credit-card Luhn. For an odd N,
      as the default `safe` charset (N = 31), every adjacent transposition is
      detected.

    Raises `CodeError("bad_characters")` when `body` has characters outside the charset.
    """
    alphabet = _ALPHABETS[charset]
    return alphabet.chars[_check_value(_values(body, alphabet), alphabet)]


def _values(body: str, alphabet: _Alphabet) -> bytes:
    raw = body.encode("ascii", errors="replace")  # "?" is in no charset
    if raw.translate(None, alphabet.ascii):
        raise CodeError(
            "bad_characters", f"codes of this campaign only use the characters {alphabet.chars}"
        )
    return raw.translate(alphabet.values)


# --- patterns ----------------------------------------------------------------


class CodePattern(_Frozen):
    """How a campaign's codes look: ``prefix + random part (+ check character)``."""

    prefix: str = ""
    # Length of the random part only; the prefix and check character come on top.
    length: int = 12
    charset: CharsetName = "safe"
    check_char: bool = True

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, prefix: str) -> str:
        if len(prefix) > PREFIX_MAX_CHARS:
            raise ValueError(
                f"the prefix has {len(prefix)} characters; use at most {PREFIX_MAX_CHARS}"
            )
        if not re.fullmatch(PREFIX_PATTERN, prefix):
            raise ValueError(
                f"the prefix {prefix!r} may only use upper-case letters A-Z, digits and '-'"
            )
        return prefix

    @field_validator("length")
    @classmethod
    def _check_length(cls, length: int) -> int:
        if not RANDOM_PART_MIN_CHARS <= length <= RANDOM_PART_MAX_CHARS:
            raise ValueError(
                f"the random part's length is {length}; choose between "
                f"{RANDOM_PART_MIN_CHARS} and {RANDOM_PART_MAX_CHARS} characters"
            )
        return length

    @model_validator(mode="after")
    def _check_entropy(self) -> Self:
        if not self.is_unguessable:
            raise ValueError(
                f"a random part of {self.length} {self.charset} characters has only "
                f"{self.entropy_bits:.1f} bits of entropy, and codes need at least "
                f"{MIN_ENTROPY_BITS} to be unguessable: use a length of at least "
                f"{min_length(self.charset)} with this charset, or a bigger charset "
                f"('safe' needs {min_length('safe')}, 'alphanumeric' {min_length('alphanumeric')})"
            )
        return self

    @property
    def entropy_bits(self) -> float:
        """Bits of entropy of the random part (the check character adds none)."""
        return self.length * math.log2(len(CHARSETS[self.charset]))

    @property
    def is_unguessable(self) -> bool:
        # In integers, so a length right at the limit is not refused by a rounding error.
        return len(CHARSETS[self.charset]) ** self.length >= 2**MIN_ENTROPY_BITS

    @property
    def code_length(self) -> int:
        """Length of a whole code: prefix, random part and check character."""
        return len(self.prefix) + self.length + int(self.check_char)


def min_length(charset: CharsetName) -> int:
    """The shortest random part with at least `MIN_ENTROPY_BITS` bits in `charset`."""
    n = len(CHARSETS[charset])
    length = 1
    while n**length < 2**MIN_ENTROPY_BITS:
        length += 1
    return length


# --- generation --------------------------------------------------------------


def generate(pattern: CodePattern, count: int, rng: random.Random | None = None) -> Iterator[str]:
    """`count` distinct codes of `pattern`, lazily.

    The random part comes from `secrets` (the OS CSPRNG). `rng` is for tests
    only: a seeded `random.Random` makes the codes reproducible, and guessable.

    Codes are distinct within this call only; the ledger dedupes across calls.
    To keep that promise the call holds a set of every random part it yielded,
    so memory is O(count): about 80 MB (measured) for the maximum `MAX_CODES_PER_CALL` =
    1,000,000 codes of the default pattern, the same order as the million codes
    the caller is about to hold or write anyway. Bigger batches are split into
    several calls. Since a pattern has at least 2**40 possible random parts, a
    repeat is rare (under 1e-6 per code at a million) and costs one more draw.

    Raises ValueError at once (not on first iteration) if `count` is out of range.
    """
    if not 0 <= count <= MAX_CODES_PER_CALL:
        raise ValueError(f"count is {count}; generate 0 to {MAX_CODES_PER_CALL:,} codes per call")
    randbytes = secrets.token_bytes if rng is None else rng.randbytes
    return _generate(pattern, count, randbytes)


def _generate(pattern: CodePattern, count: int, randbytes: Callable[[int], bytes]) -> Iterator[str]:
    alphabet = _ALPHABETS[pattern.charset]
    length = pattern.length
    seen: set[bytes] = set()
    buffer, at = b"", 0
    while len(seen) < count:
        if at + length > len(buffer):
            chunk = randbytes(RANDOM_CHUNK_BYTES).translate(alphabet.draw, alphabet.draw_reject)
            buffer, at = buffer[at:] + chunk, 0
        body = buffer[at : at + length]
        at += length
        if body in seen:
            continue
        seen.add(body)
        code = pattern.prefix + body.decode("ascii")
        if pattern.check_char:
            code += alphabet.chars[_check_value(body.translate(alphabet.values), alphabet)]
        yield code


# --- parsing what people type ------------------------------------------------


def normalize(code: str) -> str:
    """The canonical form of what a shopper or a till typed: upper-cased, with
    all whitespace removed, surrounding and internal ("ab12 cd34 " -> "AB12CD34").

    '-' is kept wherever it is, because a prefix may contain one ("SUMMER-");
    without the pattern we cannot tell a prefix's '-' from a typed one.
    Idempotent: normalize(normalize(x)) == normalize(x).
    """
    # Upper-case first, then drop whitespace, so nothing upper-casing produced
    # could be left for a second call to change.
    return "".join(code.upper().split())


def parse_code(raw: str, pattern: CodePattern) -> str:
    """The canonical code for `raw` if it is shaped like a code of `pattern`,
    else `CodeError` with the first problem found, in this order:

    - ``empty_code``: nothing but whitespace;
    - ``code_too_long``: longer than any code stored anywhere
      (`MAX_CODE_LENGTH` once normalised, `MAX_RAW_CODE_CHARS` as typed);
    - ``bad_characters``: a character no code of this pattern contains;
    - ``wrong_prefix``: does not start with the pattern's prefix;
    - ``wrong_length``: the wrong number of characters after the prefix;
    - ``bad_check_character``: a typo the check character caught.

    A returned code is well formed, not known: the ledger says if it exists.
    """
    if len(raw) > MAX_RAW_CODE_CHARS:
        raise CodeError(
            "code_too_long",
            f"the input has {len(raw)} characters; a code has at most {MAX_CODE_LENGTH}",
        )
    code = normalize(raw)
    problem = _problem(code, pattern)
    if problem is not None:
        raise CodeError(*problem)
    return code


def has_valid_check(code: str, pattern: CodePattern) -> bool:
    """Whether the canonical `code` is a well-formed code of `pattern` with a
    correct check character (for a pattern without one, whether it is well
    formed). Never raises; `normalize` what people typed first."""
    return _problem(code, pattern) is None


def _problem(code: str, pattern: CodePattern) -> tuple[CodeErrorCode, str] | None:
    if not code:
        return "empty_code", "no code was entered"
    if len(code) > MAX_CODE_LENGTH:
        return "code_too_long", f"a code has at most {MAX_CODE_LENGTH} characters"
    if not _CODE_CHARS.fullmatch(code):
        return "bad_characters", "a code only contains letters, digits and '-'"
    if not code.startswith(pattern.prefix):
        return "wrong_prefix", f"codes of this campaign start with {pattern.prefix!r}"
    rest = code[len(pattern.prefix) :]
    if len(rest) != pattern.length + int(pattern.check_char):
        return (
            "wrong_length",
            f"codes of this campaign have {pattern.code_length} characters, this one {len(code)}",
        )
    alphabet = _ALPHABETS[pattern.charset]
    encoded = rest.encode("ascii")  # ASCII: checked by _CODE_CHARS above
    if encoded.translate(None, alphabet.ascii):
        excluded = "" if pattern.charset != "safe" else " (0, 1, I, L and O are never used)"
        return "bad_characters", f"a character is not used in this campaign's codes{excluded}"
    if pattern.check_char:
        values = encoded.translate(alphabet.values)
        if _check_value(values[:-1], alphabet) != values[-1]:
            return "bad_check_character", "the code has a typo: check it and type it again"
    return None


# --- importing external codes ------------------------------------------------

# External codes come from other systems and do not follow our patterns.
EXTERNAL_CODE_PATTERN = r"[A-Za-z0-9_-]*"
EXTERNAL_CODE_MIN_CHARS = 4
EXTERNAL_CODE_MAX_CHARS = MAX_CODE_LENGTH
MAX_IMPORT_LINES = 1_000_000
IMPORT_HEADER = "code"
REJECTED_RAW_MAX_CHARS = 100

ImportRejectReason = Literal[
    "empty_line",
    "bad_characters",
    "too_short",
    "too_long",
    "duplicate_in_file",
    "too_many_lines",
    # Found by the ledger, not here: the code is already one of the tenant's codes.
    "duplicate_in_tenant",
]

_EXTERNAL_CODE_CHARS = re.compile(EXTERNAL_CODE_PATTERN)


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int  # 1-based, counting the items of the uploaded lines
    raw: str  # the first column as uploaded, cut to REJECTED_RAW_MAX_CHARS
    reason: ImportRejectReason
    message: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    """The result of reading an upload; built once, not meant to be mutated."""

    accepted: list[str] = field(default_factory=list)  # canonical, in file order
    # The line of each accepted code, so a rejection found later (by the ledger) names it.
    accepted_lines: list[int] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)  # in file order
    header_skipped: bool = False


def parse_import(lines: Iterable[str]) -> ImportReport:
    """Read a CSV upload of external codes: one code per line, in the first
    column (other columns are ignored; quoted fields work).

    - A first line whose first column is ``code`` (any case) is a header and is
      skipped, so a real code "CODE" must not be on the first line. A UTF-8
      byte-order mark, as spreadsheet exports write, is ignored.
    - Codes are stored in `normalize`'s canonical form, the form a shopper's
      input is looked up in; so codes differing only in case or spaces are the
      same code (reported as ``duplicate_in_file``). After normalising a code
      has `EXTERNAL_CODE_MIN_CHARS`..`EXTERNAL_CODE_MAX_CHARS` characters from
      A-Z, 0-9, '_' and '-'.
    - Every other line is rejected with a reason: ``empty_line``,
      ``bad_characters`` (also for a line the csv module cannot read),
      ``too_short``, ``too_long``, ``duplicate_in_file``.
    - At most `MAX_IMPORT_LINES` lines, not counting the header, are read. The
      first line past that is rejected as ``too_many_lines`` and the rest are
      not read: the accepted codes are then a truncated file, which the caller
      should refuse rather than half-import.

    Line numbers count the items of `lines`: a file's lines when it is a file.
    """
    accepted: list[str] = []
    accepted_lines: list[int] = []
    rejected: list[Rejection] = []
    first_seen: dict[str, int] = {}
    header_skipped = False
    for line, record in _records(lines):
        raw = record[0] if isinstance(record, list) and record else ""
        if line == 1:
            raw = raw.removeprefix("\ufeff")
            if normalize(raw) == IMPORT_HEADER.upper():
                header_skipped = True
                continue
        if line > MAX_IMPORT_LINES + header_skipped:
            rejected.append(
                Rejection(
                    line,
                    raw[:REJECTED_RAW_MAX_CHARS],
                    "too_many_lines",
                    f"a file holds at most {MAX_IMPORT_LINES:,} codes; lines from {line} on "
                    "were not read: split the file and upload each part",
                )
            )
            break
        if isinstance(record, csv.Error):
            rejected.append(Rejection(line, "", "bad_characters", f"not a CSV line: {record}"))
            continue
        code = normalize(raw)
        problem = _external_problem(code, first_seen)
        if problem is None:
            first_seen[code] = line
            accepted.append(code)
            accepted_lines.append(line)
        else:
            rejected.append(Rejection(line, raw[:REJECTED_RAW_MAX_CHARS], *problem))
    return ImportReport(
        accepted=accepted,
        accepted_lines=accepted_lines,
        rejected=rejected,
        header_skipped=header_skipped,
    )


def _records(lines: Iterable[str]) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(line where the record starts, its fields or the csv error it raised)."""
    reader = csv.reader(lines)
    last_line = 0
    while True:
        try:
            record: list[str] | csv.Error = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # The reader starts afresh at the next line, so one bad line costs one rejection.
            record = exc
        yield last_line + 1, record
        last_line = reader.line_num


def _external_problem(
    code: str, first_seen: Mapping[str, int]
) -> tuple[ImportRejectReason, str] | None:
    if not code:
        return "empty_line", "the line has no code in its first column"
    if not _EXTERNAL_CODE_CHARS.fullmatch(code):
        return "bad_characters", "a code may only contain letters, digits, '_' and '-'"
    if len(code) < EXTERNAL_CODE_MIN_CHARS:
        return (
            "too_short",
            f"a code needs at least {EXTERNAL_CODE_MIN_CHARS} characters, this one has {len(code)}",
        )
    if len(code) > EXTERNAL_CODE_MAX_CHARS:
        return (
            "too_long",
            f"a code has at most {EXTERNAL_CODE_MAX_CHARS} characters, this one has {len(code)}",
        )
    if code in first_seen:
        return (
            "duplicate_in_file",
            f"the same code as line {first_seen[code]} (codes are compared upper-cased, "
            "without spaces)",
        )
    return None


# --- states ------------------------------------------------------------------

CodeState = Literal["available", "assigned", "redeemed", "voided"]

CODE_TRANSITIONS: Mapping[CodeState, frozenset[CodeState]] = {
    # A code is bound to its coupon before it is redeemed, a printed code too (the
    # till's redemption binds it first): the coupon carries the redemption.
    "available": frozenset({"assigned", "voided"}),
    "assigned": frozenset({"redeemed", "voided"}),
    # Only a reversal (a refunded order) gives a redeemed code's coupon back.
    "redeemed": frozenset({"assigned"}),
    "voided": frozenset(),
}
REVERSALS: frozenset[tuple[CodeState, CodeState]] = frozenset({("redeemed", "assigned")})


def transition(state: CodeState, to: CodeState, *, reversal: bool = False) -> CodeState:
    """The new state of a code in `state` moved to `to`, or
    `CodeError("invalid_code_transition")`. A transition in `REVERSALS` needs
    ``reversal=True``, and ``reversal=True`` is refused for any other, so a
    redemption is only undone on purpose. Moving to the same state is refused
    too: the ledger makes retries idempotent, not this rule."""
    allowed = CODE_TRANSITIONS[state]
    if to not in allowed:
        names = ", ".join(sorted(allowed)) or "none"
        raise CodeError(
            "invalid_code_transition",
            f"a code cannot go from '{state}' to '{to}' (allowed from '{state}': {names})",
        )
    is_reversal = (state, to) in REVERSALS
    if is_reversal and not reversal:
        raise CodeError(
            "invalid_code_transition",
            f"a code goes from '{state}' back to '{to}' only through a reversal",
        )
    if reversal and not is_reversal:
        raise CodeError(
            "invalid_code_transition",
            f"'{state}' -> '{to}' is not a reversal; only a redeemed code can be reversed",
        )
    return to
