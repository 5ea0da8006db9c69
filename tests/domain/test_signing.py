"""Partner request signatures and webhook signatures (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.signing import (
    CONTENT_SHA256_HEADER,
    HMAC_SHA256,
    NONCE_HEADER,
    NONCE_PATTERN,
    NONCE_REPLAYED,
    PARTNER_HEADER,
    RSA_SHA256,
    SIGNATURE_ERROR_CODES,
    SIGNATURE_HEADER,
    SIGNED_REQUEST_HEADERS,
    TIMESTAMP_HEADER,
    Algorithm,
    PartnerAuth,
    PartnerKey,
    SignatureError,
    VerifiedRequest,
    canonical_string,
    generate_rsa_key,
    load_public_key,
    nonce_key_suffix,
    public_pem,
    read_unverified_partner,
    sign_headers,
    sign_webhook,
    verify,
    verify_webhook,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
NOW = 1_735_689_600.0
BODY = b'{"amount":1250,"currency":"CHF"}'
TARGET = "/v1/receipts/till-042?store=zurich&b=2&a=1"
WEBHOOK_SECRET = b"w" * 32


@dataclass(frozen=True, slots=True)
class Partner:
    partner_id: str
    algorithm: Algorithm
    signing_key: bytes | rsa.RSAPrivateKey
    wrong_key: bytes | rsa.RSAPrivateKey
    stored: PartnerKey

    def lookup(self, partner_id: str) -> PartnerKey | None:
        return self.stored if partner_id == self.partner_id else None


@pytest.fixture(scope="module")
def rsa_keys() -> tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]:
    # Two 2048-bit keys per module: generating one takes up to a second.
    return generate_rsa_key(), generate_rsa_key()


@pytest.fixture(scope="module", params=[RSA_SHA256, HMAC_SHA256])
def partner(
    request: pytest.FixtureRequest, rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]
) -> Partner:
    if request.param == RSA_SHA256:
        key, other = rsa_keys
        return Partner("bank-7", RSA_SHA256, key, other, PartnerKey(RSA_SHA256, public_pem(key)))
    secret = b"s" * 32
    return Partner("till-042", HMAC_SHA256, secret, b"x" * 32, PartnerKey(HMAC_SHA256, secret))


def signed(
    partner: Partner,
    method: str = "POST",
    target: str = TARGET,
    body: bytes | None = BODY,
    now: float = NOW,
    nonce: str | None = None,
    key: bytes | rsa.RSAPrivateKey | None = None,
) -> dict[str, str]:
    return sign_headers(
        method,
        target,
        body,
        partner.partner_id,
        partner.signing_key if key is None else key,
        partner.algorithm,
        now=now,
        nonce=nonce,
    )


def check(
    partner: Partner,
    headers: dict[str, str],
    method: str = "POST",
    target: str = TARGET,
    body: bytes = BODY,
    now: float = NOW,
) -> VerifiedRequest:
    path, _, query = target.partition("?")
    return verify(method, path, query, headers, body, partner.lookup, now)


def code_of(call: Callable[[], object]) -> str:
    with pytest.raises(SignatureError) as refused:
        call()
    return refused.value.code


# ---------------------------------------------------------------------------
# Round trips


def test_signed_request_verifies(partner: Partner) -> None:
    headers = signed(partner)
    assert list(headers) == list(SIGNED_REQUEST_HEADERS)
    verified = check(partner, headers)
    assert verified.partner_id == partner.partner_id
    assert verified.algorithm == partner.algorithm
    assert verified.timestamp == int(NOW)
    assert verified.nonce == headers[NONCE_HEADER]
    assert verified.body_sha256 == hashlib.sha256(BODY).hexdigest()


def test_request_without_body_hashes_the_empty_string(partner: Partner) -> None:
    headers = signed(partner, method="GET", body=None)
    assert headers[CONTENT_SHA256_HEADER] == hashlib.sha256(b"").hexdigest()
    assert check(partner, headers, method="GET", body=b"").partner_id == partner.partner_id


def test_full_url_signs_like_its_path(partner: Partner) -> None:
    headers = signed(partner, target="https://api.carnival.test:8443" + TARGET + "#fragment")
    check(partner, headers)
    bare = signed(partner, target="https://api.carnival.test", body=None)
    check(partner, bare, target="/", body=b"")


def test_header_names_are_case_insensitive(partner: Partner) -> None:
    headers = {name.lower(): value for name, value in signed(partner).items()}
    check(partner, headers)
    check(partner, {name.upper(): value for name, value in headers.items()})


def test_method_is_upper_cased(partner: Partner) -> None:
    check(partner, signed(partner, method="post"), method="POST")


def test_nonce_ttl_covers_the_rest_of_the_window(partner: Partner) -> None:
    verified = check(partner, signed(partner, now=NOW - 100))
    assert verified.nonce_ttl_s == 300 - 100 + 1
    # A partner clock 300 s ahead: the request stays valid for 600 s on ours.
    assert check(partner, signed(partner, now=NOW + 300)).nonce_ttl_s == 601


def test_nonce_key_suffix_is_per_partner() -> None:
    nonce = "n" * 16
    assert nonce_key_suffix("till-042", nonce) == f"till-042:{nonce}"
    assert nonce_key_suffix("till-042", nonce) != nonce_key_suffix("till-043", nonce)


def test_error_codes_are_distinct() -> None:
    assert len(set(SIGNATURE_ERROR_CODES)) == len(SIGNATURE_ERROR_CODES)
    assert NONCE_REPLAYED == "nonce_replayed" and NONCE_REPLAYED in SIGNATURE_ERROR_CODES


# ---------------------------------------------------------------------------
# The canonical string


def test_canonical_string_of_the_documented_example() -> None:
    body_sha256 = hashlib.sha256(BODY).hexdigest()
    assert body_sha256 == "756485800532bd07bfa0a3eab4e3bfa191b6c0381587eeffe1ae3d46c8d8dfff"
    target = "/v1/receipts/till-042%2F7?store=Z%c3%bcrich&b=2&a=x+y&a=1&flag&tag=%7Esale"
    path, _, query = target.partition("?")
    expected = (
        b"POST\n"
        b"/v1/receipts/till-042%2F7\n"
        b"a=1&a=x%20y&b=2&flag=&store=Z%C3%BCrich&tag=~sale\n"
        b"1735689600\n"
        b"n0nce-2025-01-01_0001\n"
        b"756485800532bd07bfa0a3eab4e3bfa191b6c0381587eeffe1ae3d46c8d8dfff"
    )
    assert (
        canonical_string("post", path, query, 1735689600, "n0nce-2025-01-01_0001", body_sha256)
        == expected
    )
    headers = sign_headers(
        "POST",
        "https://api.carnival.test" + target,
        BODY,
        "till-042",
        b"carnival-example-secret",
        HMAC_SHA256,
        now=1735689600,
        nonce="n0nce-2025-01-01_0001",
    )
    assert headers[SIGNATURE_HEADER] == "aeKjUJz5vNQEaIkNdlHOQZg75Q47Jkxq8dVLxcslxqc="


def test_canonical_query_edge_cases() -> None:
    def query_line(query: str) -> bytes:
        return canonical_string("GET", "/", query, 0, "n" * 16, "0" * 64).split(b"\n")[2]

    assert query_line("") == b""
    assert query_line("&&") == b""
    assert query_line("a=1&&b=2&") == b"a=1&b=2"
    assert query_line("a=b=c") == b"a=b%3Dc"
    assert query_line("=v") == b"=v"
    assert query_line("a=%zz&b=%4") == b"a=%25zz&b=%254"
    assert query_line("k=%2b&k=+") == b"k=%20&k=%2B"
    assert query_line("k=a&k=B&K=c") == b"K=c&k=B&k=a"
    assert query_line("k=%41%2d%2e%5f%7e*") == b"k=A-._~%2A"


@pytest.mark.parametrize(
    ("method", "path", "query"),
    [
        ("GET", "v1/no-slash", ""),
        ("GET", "/v1/ünicode", ""),
        ("GET", "/v1/a b", ""),
        ("GET", "/", "q=ünicode"),
        ("GET", "/", "q=a b"),
        ("GE T", "/", ""),
    ],
)
def test_canonical_string_refuses_what_cannot_be_on_the_wire(
    method: str, path: str, query: str
) -> None:
    with pytest.raises(ValueError):
        canonical_string(method, path, query, 0, "n" * 16, "0" * 64)


def test_sign_headers_refuses_bad_inputs(partner: Partner) -> None:
    with pytest.raises(ValueError):
        signed(partner, nonce="too-short")
    with pytest.raises(ValueError):
        signed(partner, target="/v1/ünicode")
    with pytest.raises(TypeError):
        sign_headers("GET", "/", None, "p", object(), partner.algorithm)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        sign_headers("GET", "/", None, "has space", partner.signing_key, partner.algorithm)


# ---------------------------------------------------------------------------
# Refusals, for RSA and HMAC partners alike


@pytest.mark.parametrize("header", SIGNED_REQUEST_HEADERS)
def test_missing_header(partner: Partner, header: str) -> None:
    headers = signed(partner)
    del headers[header]
    with pytest.raises(SignatureError) as refused:
        check(partner, headers)
    assert refused.value.code == "missing_signature_header"
    assert header in str(refused.value)


def test_empty_header_counts_as_missing(partner: Partner) -> None:
    headers = signed(partner) | {NONCE_HEADER: "  "}
    assert code_of(lambda: check(partner, headers)) == "missing_signature_header"


def test_repeated_header(partner: Partner) -> None:
    headers = signed(partner)
    headers[NONCE_HEADER.lower()] = "another-nonce-0000"
    assert code_of(lambda: check(partner, headers)) == "duplicate_signature_header"
    assert read_unverified_partner(headers) == partner.partner_id


def test_unknown_partner(partner: Partner) -> None:
    headers = signed(partner) | {PARTNER_HEADER: "someone-else"}
    assert code_of(lambda: check(partner, headers)) == "unknown_partner"
    assert read_unverified_partner(headers) == "someone-else"


@pytest.mark.parametrize("timestamp", ["1735689600.5", "soon", "+1735689600", "01735689600"])
def test_bad_timestamp(partner: Partner, timestamp: str) -> None:
    headers = signed(partner) | {TIMESTAMP_HEADER: timestamp}
    assert code_of(lambda: check(partner, headers)) == "bad_timestamp"


@pytest.mark.parametrize("skew_s", [-301, 301, -10_000, 10_000])
def test_request_outside_the_window_expired(partner: Partner, skew_s: int) -> None:
    headers = signed(partner, now=NOW + skew_s)
    with pytest.raises(SignatureError) as refused:
        check(partner, headers)
    assert refused.value.code == "request_expired"
    assert str(int(NOW)) in str(refused.value)  # the server time, to fix the clock


@pytest.mark.parametrize("skew_s", [-300, 300])
def test_request_at_the_window_edge_verifies(partner: Partner, skew_s: int) -> None:
    check(partner, signed(partner, now=NOW + skew_s))


@pytest.mark.parametrize("nonce", ["short", "x" * 65, "has space in it!!", "ünïcödé-nonce-0000"])
def test_bad_nonce(partner: Partner, nonce: str) -> None:
    headers = signed(partner) | {NONCE_HEADER: nonce}
    assert code_of(lambda: check(partner, headers)) == "bad_nonce"


def test_body_tampered_after_signing(partner: Partner) -> None:
    headers = signed(partner)
    tampered = BODY.replace(b"1250", b"9999")
    assert code_of(lambda: check(partner, headers, body=tampered)) == "body_hash_mismatch"


def test_body_hash_recomputed_without_the_key(partner: Partner) -> None:
    tampered = BODY.replace(b"1250", b"9999")
    headers = signed(partner) | {CONTENT_SHA256_HEADER: hashlib.sha256(tampered).hexdigest()}
    assert code_of(lambda: check(partner, headers, body=tampered)) == "bad_signature"


def test_signed_with_the_wrong_key(partner: Partner) -> None:
    headers = signed(partner, key=partner.wrong_key)
    assert code_of(lambda: check(partner, headers)) == "bad_signature"


def test_signature_that_is_not_base64(partner: Partner) -> None:
    headers = signed(partner) | {SIGNATURE_HEADER: "not base64 !"}
    assert code_of(lambda: check(partner, headers)) == "bad_signature"


@pytest.mark.parametrize(
    "received",
    [
        "/v1/receipts/till-042?a=1&b=2&store=zurich",
        "/v1/receipts/till-042?b=2&store=zurich&a=1&",
        "/v1/receipts/till-042?store=%7A%75rich&b=2&a=1",
    ],
)
def test_query_reordered_or_re_encoded_still_verifies(partner: Partner, received: str) -> None:
    check(partner, signed(partner), target=received)


def test_space_encodings_are_equivalent(partner: Partner) -> None:
    check(partner, signed(partner, target="/q?text=x+y"), target="/q?text=x%20y")


@pytest.mark.parametrize(
    ("sent", "received"),
    [
        (TARGET, "/v1/receipts/till-042?store=zurich&b=2&a=2"),
        (TARGET, "/v1/receipts/till-042?store=zurich&b=2&a=1&a=1"),
        (TARGET, "/v1/receipts/till-042?store=zurich&b=2"),
        # '+' is a space; '%2B' is a plus: different values to the server.
        ("/q?text=x+y", "/q?text=x%2By"),
    ],
)
def test_query_changed(partner: Partner, sent: str, received: str) -> None:
    headers = signed(partner, target=sent)
    assert code_of(lambda: check(partner, headers, target=received)) == "bad_signature"


@pytest.mark.parametrize(
    "received", ["/v1/receipts/till-043?store=zurich&b=2&a=1", "/v1/receipts/till%2D042"]
)
def test_path_changed(partner: Partner, received: str) -> None:
    headers = signed(partner, target="/v1/receipts/till-042")
    assert code_of(lambda: check(partner, headers, target=received)) == "bad_signature"


def test_method_changed(partner: Partner) -> None:
    headers = signed(partner, method="POST")
    assert code_of(lambda: check(partner, headers, method="PUT")) == "bad_signature"


def test_request_target_not_on_the_wire_is_a_bad_signature(partner: Partner) -> None:
    headers = signed(partner)
    assert code_of(lambda: check(partner, headers, target="/v1/ünicode")) == "bad_signature"


def test_failures_are_reported_in_order(partner: Partner) -> None:
    tampered = BODY + b" "
    headers = signed(partner, now=NOW + 1000) | {NONCE_HEADER: "bad"}
    # Expired, bad nonce, body changed and (consequently) bad signature: expiry wins.
    assert code_of(lambda: check(partner, headers, body=tampered)) == "request_expired"
    headers = signed(partner) | {NONCE_HEADER: "bad"}
    assert code_of(lambda: check(partner, headers, body=tampered)) == "bad_nonce"
    headers = signed(partner) | {PARTNER_HEADER: "nobody", TIMESTAMP_HEADER: "x"}
    assert code_of(lambda: check(partner, headers)) == "unknown_partner"
    headers = {PARTNER_HEADER: "nobody"}
    assert code_of(lambda: check(partner, headers)) == "missing_signature_header"


def test_hmac_partner_cannot_be_passed_an_rsa_signature(
    rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
) -> None:
    hmac_partner = Partner(
        "till-042", HMAC_SHA256, b"s" * 32, b"x" * 32, PartnerKey(HMAC_SHA256, b"s" * 32)
    )
    headers = sign_headers("POST", TARGET, BODY, "till-042", rsa_keys[0], RSA_SHA256, now=NOW)
    assert code_of(lambda: check(hmac_partner, headers)) == "bad_signature"


def test_rsa_key_as_pem_signs_too(rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey]) -> None:
    key = rsa_keys[0]
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    partner = Partner(
        "bank-7", RSA_SHA256, pem, rsa_keys[1], PartnerKey(RSA_SHA256, public_pem(key))
    )
    check(partner, signed(partner))


# ---------------------------------------------------------------------------
# Any request round-trips

# Visible ASCII that may stand in a path segment as sent (a raw '%' included).
_PATH_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "/?#")
_QUERY_CHARS = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in "#&")
_segment = st.one_of(st.text(max_size=12).map(lambda s: quote(s, safe="")), st.text(_PATH_CHARS))
_query_part = st.one_of(
    st.tuples(st.text(max_size=8), st.text(max_size=8)).map(
        lambda kv: f"{quote(kv[0], safe='')}={quote(kv[1], safe='')}"
    ),
    st.text(_QUERY_CHARS, max_size=12),
)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    method=st.sampled_from(["GET", "post", "Put", "DELETE", "PATCH"]),
    segments=st.lists(_segment, max_size=5),
    query_parts=st.lists(_query_part, max_size=6),
    body=st.binary(max_size=1024),
    nonce=st.from_regex(NONCE_PATTERN, fullmatch=True),
)
def test_any_request_round_trips(
    partner: Partner,
    data: st.DataObject,
    method: str,
    segments: list[str],
    query_parts: list[str],
    body: bytes,
    nonce: str,
) -> None:
    path = "/" + "/".join(segments)
    query = "&".join(query_parts)
    target = f"{path}?{query}" if query else path
    headers = signed(partner, method=method, target=target, body=body, nonce=nonce)
    # The server may see the pairs in any order: a proxy or client library can reorder them.
    received_query = "&".join(data.draw(st.permutations(query_parts)))
    verified = verify(method.upper(), path, received_query, headers, body, partner.lookup, NOW)
    assert verified.nonce == nonce


# ---------------------------------------------------------------------------
# The httpx client helper


def test_partner_auth_signs_every_request(partner: Partner) -> None:
    seen: list[VerifiedRequest] = []

    def server(request: httpx.Request) -> httpx.Response:
        path, _, query = request.url.raw_path.decode("ascii").partition("?")
        headers = dict(request.headers.items())
        seen.append(
            verify(request.method, path, query, headers, request.content, partner.lookup, NOW)
        )
        return httpx.Response(204)

    auth = PartnerAuth(
        partner.partner_id, partner.signing_key, partner.algorithm, clock=lambda: NOW
    )
    with httpx.Client(transport=httpx.MockTransport(server), auth=auth) as client:
        client.post(
            "https://api.carnival.test/v1/receipts", params={"b": "x y", "a": "ü"}, content=BODY
        )
        client.get("https://api.carnival.test/v1/receipts/r%2F1")
    assert len(seen) == 2
    assert seen[0].nonce != seen[1].nonce


def test_module_imports_with_cryptography_only() -> None:
    # What a Locust scenario does: the repo root on sys.path, no httpx, no project packages.
    script = f"""
import sys
sys.path.insert(0, {str(REPO_ROOT)!r})
sys.modules["httpx"] = None
before = set(sys.modules)
import domain.signing as signing
assert not hasattr(signing, "PartnerAuth")
loaded = set(sys.modules) - before
forbidden = {{"pydantic", "orjson", "httpx", "api", "actors", "streams", "ledger", "runtime",
              "carnival"}}
bad = sorted(m for m in loaded if m.split(".")[0] in forbidden
             or (m.startswith("domain.") and m != "domain.signing"))
assert not bad, bad
"""
    subprocess.run([sys.executable, "-I", "-c", script], check=True, timeout=60)


# ---------------------------------------------------------------------------
# Keys


def test_load_public_key_accepts_rsa_2048(
    rsa_keys: tuple[rsa.RSAPrivateKey, rsa.RSAPrivateKey],
) -> None:
    key = rsa_keys[0]
    assert load_public_key(public_pem(key)).public_numbers() == key.public_key().public_numbers()
    assert load_public_key(public_pem(key).decode()).key_size == 2048
    pkcs1 = key.public_key().public_bytes(Encoding.PEM, PublicFormat.PKCS1)
    assert load_public_key(pkcs1).key_size == 2048


def test_load_public_key_refuses_a_1024_bit_key() -> None:
    small = rsa.generate_private_key(public_exponent=65_537, key_size=1024)
    with pytest.raises(SignatureError) as refused:
        load_public_key(public_pem(small))
    assert refused.value.code == "bad_public_key"
    assert "1024" in str(refused.value)


@pytest.mark.parametrize(
    "pem",
    [
        b"",
        b"garbage",
        b"-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----\n",
        "not even bytes",
    ],
)
def test_load_public_key_refuses_garbage(pem: bytes | str) -> None:
    assert code_of(lambda: load_public_key(pem)) == "bad_public_key"


def test_load_public_key_refuses_a_non_rsa_key() -> None:
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    assert code_of(lambda: load_public_key(ec_pem)) == "bad_public_key"


def test_partner_with_an_unusable_stored_key() -> None:
    stored = Partner("bank-7", RSA_SHA256, b"", b"", PartnerKey(RSA_SHA256, b"not a pem"))
    headers = sign_headers("POST", TARGET, BODY, "bank-7", b"s" * 32, HMAC_SHA256, now=NOW)
    assert code_of(lambda: check(stored, headers)) == "bad_public_key"


def test_partner_key_refuses_unknown_algorithm_and_empty_key() -> None:
    with pytest.raises(ValueError):
        PartnerKey("RSA-SHA1", b"k")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PartnerKey(HMAC_SHA256, b"")


# ---------------------------------------------------------------------------
# Webhooks


def test_webhook_round_trip() -> None:
    header = sign_webhook(WEBHOOK_SECRET, BODY, int(NOW))
    timestamp, _, mac = header.partition(",v1=")
    assert timestamp == f"t={int(NOW)}"
    assert mac == hmac.new(WEBHOOK_SECRET, f"{int(NOW)}.".encode() + BODY, "sha256").hexdigest()
    verify_webhook(WEBHOOK_SECRET, BODY, header, NOW + 299)
    verify_webhook(WEBHOOK_SECRET, BODY, header.replace(",", ", "), NOW)


def test_webhook_with_a_rotated_secret() -> None:
    old = sign_webhook(b"o" * 32, BODY, int(NOW))
    new = sign_webhook(WEBHOOK_SECRET, BODY, int(NOW))
    both = f"{old},v1={new.partition(',v1=')[2]},v2=future-scheme"
    verify_webhook(WEBHOOK_SECRET, BODY, both, NOW)
    verify_webhook(b"o" * 32, BODY, both, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "v1=" + "0" * 64,
        "t=1735689600",
        "t=1735689600,v1=short",
        "t=1735689600,v1=" + "A" * 64,
        "t=soon,v1=" + "0" * 64,
        "t=1735689600,t=1735689601,v1=" + "0" * 64,
        "t=1735689600;v1=" + "0" * 64,
    ],
)
def test_bad_webhook_signature_header(header: str) -> None:
    assert code_of(lambda: verify_webhook(WEBHOOK_SECRET, BODY, header, NOW)) == (
        "bad_webhook_signature_header"
    )


@pytest.mark.parametrize("skew_s", [-301, 301])
def test_webhook_expired(skew_s: int) -> None:
    header = sign_webhook(WEBHOOK_SECRET, BODY, int(NOW))
    assert code_of(lambda: verify_webhook(WEBHOOK_SECRET, BODY, header, NOW + skew_s)) == (
        "webhook_expired"
    )


def test_bad_webhook_signature() -> None:
    header = sign_webhook(WEBHOOK_SECRET, BODY, int(NOW))
    assert code_of(lambda: verify_webhook(WEBHOOK_SECRET, BODY + b" ", header, NOW)) == (
        "bad_webhook_signature"
    )
    assert code_of(lambda: verify_webhook(b"x" * 32, BODY, header, NOW)) == "bad_webhook_signature"
    moved = header.replace(f"t={int(NOW)}", f"t={int(NOW) + 1}")
    assert code_of(lambda: verify_webhook(WEBHOOK_SECRET, BODY, moved, NOW)) == (
        "bad_webhook_signature"
    )


def test_signature_is_base64_of_the_raw_signature(partner: Partner) -> None:
    raw = base64.b64decode(signed(partner)[SIGNATURE_HEADER], validate=True)
    assert len(raw) == (256 if partner.algorithm == RSA_SHA256 else 32)
