"""Signed partner requests and signed webhooks (pure, no I/O).

Partners (tills, payment channels, banks) sign every request they send to
Carnival; Carnival signs every webhook it sends to a partner. This module holds
both rules and nothing else: it imports only the standard library and
``cryptography`` (``httpx`` optionally, for `PartnerAuth`), so a load scenario
or a partner's test harness can import it from a virtualenv without the rest of
Carnival.

Partner requests
================

Five headers, all required (names are case-insensitive, as in HTTP):

* ``X-Carnival-Partner``: the partner id Carnival assigned.
* ``X-Carnival-Timestamp``: the signing time in epoch seconds, a decimal integer
  without sign or leading zeros. Carnival accepts it within ±`DEFAULT_WINDOW_S`
  seconds of its own clock, so the partner's clock must be kept by NTP.
* ``X-Carnival-Nonce``: 16 to 64 characters of ``[A-Za-z0-9_-]``, fresh for every
  request (a retry is a new request: new nonce, new timestamp, new signature).
* ``X-Carnival-Content-SHA256``: lower-case hex SHA-256 of the exact body bytes
  sent, of the empty string when there is no body
  (``e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855``).
* ``X-Carnival-Signature``: standard base64 (with padding) of the signature of
  the canonical string (`canonical_string`), either

  - ``RSA-SHA256``: RSASSA-PKCS1-v1_5 with SHA-256 (Java ``SHA256withRSA``, Go
    ``rsa.SignPKCS1v15(rand, key, crypto.SHA256, sha256(canonical))``), with the
    partner's private key; Carnival holds the public key (≥ 2048 bits), or
  - ``HMAC-SHA256``: HMAC-SHA256 keyed with the secret Carnival issued.

Which algorithm a partner uses is fixed at onboarding, not chosen per request.
The partner id is not part of the canonical string: it is bound by the key, so
onboarding must never register one secret or public key for two partners.

Serving one request, in this order:

1. `verify` the headers, body and signature (this module);
2. only then record the nonce, ``SET <prefix><nonce_key_suffix(...)> 1 NX EX
   <VerifiedRequest.nonce_ttl_s>``: if the key already existed, refuse with
   `NONCE_REPLAYED`. The order matters: a forged request must not be able to
   burn a nonce that a genuine request will use.

Every refusal is a `SignatureError` with a machine ``code`` (`SignatureErrorCode`)
and a message written for the partner's developer.

Webhooks (Carnival → partner)
=============================

``X-Carnival-Webhook-Signature: t=<timestamp>,v1=<hex HMAC-SHA256>`` over
``f"{timestamp}.".encode() + body`` with the webhook secret of that partner; see
`sign_webhook` and `verify_webhook`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import math
import re
import secrets
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Final, Literal, get_args
from urllib.parse import quote_from_bytes, unquote_to_bytes, urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

try:
    import httpx
except ImportError:  # a bare verifier (cryptography only) needs no client helper
    _HAS_HTTPX = False
else:
    _HAS_HTTPX = True

Algorithm = Literal["RSA-SHA256", "HMAC-SHA256"]
ALGORITHMS: Final[tuple[Algorithm, ...]] = get_args(Algorithm)
RSA_SHA256: Final[Algorithm] = "RSA-SHA256"
HMAC_SHA256: Final[Algorithm] = "HMAC-SHA256"

PARTNER_HEADER: Final = "X-Carnival-Partner"
TIMESTAMP_HEADER: Final = "X-Carnival-Timestamp"
NONCE_HEADER: Final = "X-Carnival-Nonce"
CONTENT_SHA256_HEADER: Final = "X-Carnival-Content-SHA256"
SIGNATURE_HEADER: Final = "X-Carnival-Signature"
# In the order `verify` reports a missing one.
SIGNED_REQUEST_HEADERS: Final = (
    PARTNER_HEADER,
    TIMESTAMP_HEADER,
    NONCE_HEADER,
    CONTENT_SHA256_HEADER,
    SIGNATURE_HEADER,
)
WEBHOOK_SIGNATURE_HEADER: Final = "X-Carnival-Webhook-Signature"

DEFAULT_WINDOW_S: Final = 300
DEFAULT_WEBHOOK_TOLERANCE_S: Final = 300
MIN_RSA_KEY_BITS: Final = 2048
RSA_PUBLIC_EXPONENT: Final = 65_537
# Parsed public keys, by PEM: a PEM is parsed once per process, not per request.
PUBLIC_KEY_CACHE_SIZE: Final = 1024

NONCE_PATTERN: Final = r"[A-Za-z0-9_-]{16,64}"
# Decimal, no sign, no leading zeros: the text signed is the text of the integer.
TIMESTAMP_PATTERN: Final = r"0|[1-9][0-9]{0,18}"
_NONCE = re.compile(NONCE_PATTERN)
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# A request target on the wire: visible ASCII, no space (RFC 9112 request-target).
_WIRE = re.compile(r"[!-~]+")

SignatureErrorCode = Literal[
    # verify(), in the order it checks
    "missing_signature_header",
    "duplicate_signature_header",
    "unknown_partner",
    "bad_timestamp",
    "request_expired",
    "bad_nonce",
    "body_hash_mismatch",
    "bad_signature",
    # the caller's nonce check against Redis, after verify()
    "nonce_replayed",
    # load_public_key()
    "bad_public_key",
    # verify_webhook(), in the order it checks
    "bad_webhook_signature_header",
    "webhook_expired",
    "bad_webhook_signature",
]
SIGNATURE_ERROR_CODES: Final[tuple[SignatureErrorCode, ...]] = get_args(SignatureErrorCode)
NONCE_REPLAYED: Final[SignatureErrorCode] = "nonce_replayed"


class SignatureError(ValueError):
    """A refused signature: ``code`` is for machines, the message for the partner's developer."""

    def __init__(self, code: SignatureErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class PartnerKey:
    """What Carnival holds to verify one partner.

    ``key`` is the HMAC secret for ``HMAC-SHA256``, or the partner's RSA public
    key as PEM (SubjectPublicKeyInfo, ``-----BEGIN PUBLIC KEY-----``) for
    ``RSA-SHA256``. Validate an RSA key with `load_public_key` when it is
    registered, so a bad key is refused at onboarding and not on every request.
    """

    algorithm: Algorithm
    key: bytes

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ValueError(f"algorithm {self.algorithm!r} must be one of {ALGORITHMS}")
        if not isinstance(self.key, bytes) or not self.key:
            raise ValueError("a partner key must be non-empty bytes (secret or PEM)")


@dataclass(frozen=True, slots=True)
class VerifiedRequest:
    """A request whose signature verified. Its nonce is NOT yet checked for replay.

    ``nonce_ttl_s`` is how long the caller must remember the nonce: as long as
    the request's timestamp stays inside the window on Carnival's clock, i.e.
    ``ceil(timestamp + window_s - now) + 1`` seconds, at most ``2 × window_s + 1``
    (a partner clock ahead of Carnival's keeps a request valid for longer than
    one window after it arrives).
    """

    partner_id: str
    algorithm: Algorithm
    timestamp: int
    nonce: str
    body_sha256: str
    nonce_ttl_s: int


PartnerLookup = Callable[[str], PartnerKey | None]


# ---------------------------------------------------------------------------
# Canonical string


def _canonical_component(component: str) -> str:
    # '+' is a space in a query (HTML forms, Java URLDecoder, Go QueryUnescape),
    # and that is how the server will read it; decoding it as a literal '+'
    # would let "a+b" and "a%2Bb" (two different values) share a signature.
    # quote_from_bytes(safe="") keeps exactly RFC 3986's unreserved set and
    # writes upper-case hex.
    return quote_from_bytes(unquote_to_bytes(component.replace("+", " ")), safe="")


def _canonical_query(query: str) -> str:
    pairs = []
    for part in query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((_canonical_component(key), _canonical_component(value)))
    # Encoded strings are ASCII, so Python's str order is byte order (Java
    # String.compareTo, Go string <).
    pairs.sort()
    return "&".join(f"{key}={value}" for key, value in pairs)


def canonical_string(
    method: str, path: str, query: str, timestamp: int, nonce: str, body_sha256: str
) -> bytes:
    """The bytes a partner signs: six lines joined by ``\\n``, ASCII, no trailing newline.

    1. **Method**, upper-cased (ASCII; Java ``toUpperCase(Locale.ROOT)``).
    2. **Path**, exactly as sent on the request line, percent-encoding kept as is
       (``/a%2Fb`` stays ``/a%2Fb``, ``%2f`` stays lower-case), without the
       query. It starts with ``/``; an empty path is ``/``. A proxy that rewrites
       paths between the partner and Carnival breaks signatures.
    3. **Canonical query**, built from the query string as sent (after ``?``,
       without ``?``; empty line when there is none):

       a. split on ``&``; drop empty pieces (``a=1&&b=2&`` has two pairs);
       b. split each piece on its first ``=`` into key and value; a piece
          without ``=`` is a key with an empty value (``flag`` → ``flag=``);
       c. percent-decode key and value to bytes, ``+`` decoding to a space
          (Go ``url.QueryUnescape``, Java ``URLDecoder.decode(s, UTF_8)``); a
          ``%`` not followed by two hex digits stays a literal ``%`` (Go and Java
          reject it: do not send one);
       d. percent-encode those bytes again: ``A-Z a-z 0-9 - . _ ~`` as they
          are, every other byte as ``%XX`` with upper-case hex, so a space is
          ``%20`` (Go: ``strings.ReplaceAll(url.QueryEscape(s), "+", "%20")``;
          Java: ``URLEncoder.encode(s, UTF_8)`` then ``+``→``%20``,
          ``*``→``%2A``, ``%7E``→``~``);
       e. sort the pairs by encoded key, then by encoded value, comparing bytes
          (repeated keys are kept, in value order);
       f. join as ``key=value`` with ``&``.

    4. **Timestamp**, the ``X-Carnival-Timestamp`` integer in decimal.
    5. **Nonce**, the ``X-Carnival-Nonce`` value.
    6. **Body hash**, the ``X-Carnival-Content-SHA256`` value (lower-case hex).

    Worked example: the request ::

        POST /v1/receipts/till-042%2F7?store=Z%c3%bcrich&b=2&a=x+y&a=1&flag&tag=%7Esale

    at ``1735689600`` with nonce ``n0nce-2025-01-01_0001`` and body
    ``{"amount":1250,"currency":"CHF"}`` (32 bytes, no trailing newline) gives::

        POST
        /v1/receipts/till-042%2F7
        a=1&a=x%20y&b=2&flag=&store=Z%C3%BCrich&tag=~sale
        1735689600
        n0nce-2025-01-01_0001
        756485800532bd07bfa0a3eab4e3bfa191b6c0381587eeffe1ae3d46c8d8dfff

    and with the HMAC secret ``carnival-example-secret`` (ASCII bytes) the
    signature header ``aeKjUJz5vNQEaIkNdlHOQZg75Q47Jkxq8dVLxcslxqc=``.

    Raises ``ValueError`` for parts that cannot be on the wire (a non-ASCII or
    spaced method, path or query, a path not starting with ``/``), a negative
    timestamp, a malformed nonce or a body hash that is not lower-case hex.
    """
    if not _WIRE.fullmatch(method):
        raise ValueError(f"method {method!r} must be visible ASCII")
    if not path.startswith("/") or not _WIRE.fullmatch(path):
        raise ValueError(f"path {path!r} must start with '/' and be percent-encoded ASCII")
    if query and not _WIRE.fullmatch(query):
        raise ValueError(f"query {query!r} must be percent-encoded ASCII")
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp {timestamp!r} must be a non-negative integer")
    if not _NONCE.fullmatch(nonce):
        raise ValueError(f"nonce {nonce!r} must match {NONCE_PATTERN}")
    if not _SHA256_HEX.fullmatch(body_sha256):
        raise ValueError("the body hash must be lower-case hex SHA-256")
    lines = (method.upper(), path, _canonical_query(query), str(timestamp), nonce, body_sha256)
    return "\n".join(lines).encode("ascii")


# ---------------------------------------------------------------------------
# Keys


def generate_rsa_key() -> rsa.RSAPrivateKey:
    """A new 2048-bit RSA key (tests, and partners onboarding without their own tooling)."""
    return rsa.generate_private_key(public_exponent=RSA_PUBLIC_EXPONENT, key_size=MIN_RSA_KEY_BITS)


def public_pem(private_key: rsa.RSAPrivateKey) -> bytes:
    """The public half as SubjectPublicKeyInfo PEM, the form `PartnerKey` stores."""
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(pem: bytes | str) -> rsa.RSAPublicKey:
    """Parse a partner's public key; refuse anything but an RSA key of ≥ 2048 bits.

    Takes SubjectPublicKeyInfo PEM (``-----BEGIN PUBLIC KEY-----``: Java's
    ``publicKey.getEncoded()`` in base64, Go's ``x509.MarshalPKIXPublicKey``) and
    PKCS#1 (``-----BEGIN RSA PUBLIC KEY-----``). Raises
    ``SignatureError("bad_public_key")``.
    """
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SignatureError(
            "bad_public_key", "the public key is not a PEM '-----BEGIN PUBLIC KEY-----' block"
        ) from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise SignatureError("bad_public_key", "the public key must be an RSA key")
    if key.key_size < MIN_RSA_KEY_BITS:
        raise SignatureError(
            "bad_public_key",
            f"the RSA key has {key.key_size} bits; at least {MIN_RSA_KEY_BITS} are required",
        )
    return key


_cached_public_key = functools.lru_cache(maxsize=PUBLIC_KEY_CACHE_SIZE)(load_public_key)


def _load_private_key(key: bytes | rsa.RSAPrivateKey) -> rsa.RSAPrivateKey:
    if isinstance(key, rsa.RSAPrivateKey):
        return key
    if not isinstance(key, bytes):
        raise TypeError("an RSA-SHA256 key is an RSA private key object or its PEM bytes")
    loaded = serialization.load_pem_private_key(key, password=None)
    if not isinstance(loaded, rsa.RSAPrivateKey):
        raise TypeError("the PEM private key is not an RSA key")
    return loaded


# ---------------------------------------------------------------------------
# Signing (the partner's side)


def new_nonce() -> str:
    """32 random URL-safe characters: matches `NONCE_PATTERN`."""
    return secrets.token_urlsafe(24)


def _split_target(url_or_path: str) -> tuple[str, str]:
    if url_or_path.startswith("/"):
        # Not urlsplit: it would read the path "//x/y" as host "x", and a path is signed as is.
        path, _, query = url_or_path.split("#", 1)[0].partition("?")
        return path, query
    parts = urlsplit(url_or_path)
    return parts.path or "/", parts.query


def _sign(message: bytes, key: bytes | rsa.RSAPrivateKey, algorithm: Algorithm) -> bytes:
    if algorithm == HMAC_SHA256:
        if not isinstance(key, bytes) or not key:
            raise TypeError("an HMAC-SHA256 key is the non-empty secret as bytes")
        return hmac.new(key, message, hashlib.sha256).digest()
    if algorithm == RSA_SHA256:
        return _load_private_key(key).sign(message, padding.PKCS1v15(), hashes.SHA256())
    raise ValueError(f"algorithm {algorithm!r} must be one of {ALGORITHMS}")


def sign_headers(
    method: str,
    url_or_path: str,
    body: bytes | None,
    partner_id: str,
    key: bytes | rsa.RSAPrivateKey,
    algorithm: Algorithm,
    now: float | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The five signing headers for one request, to add to the request as sent.

    ``url_or_path`` is a full URL, or a path with its query (anything starting
    with ``/``, even ``//``, is a path), percent-encoded as it will go on the
    wire; the fragment is ignored, it is never sent. ``key``
    is the secret for ``HMAC-SHA256``; for ``RSA-SHA256`` an RSA private key or
    its unencrypted PEM (parsed on every call: pass the key object when signing
    many requests). ``now`` defaults to the clock, ``nonce`` to a fresh
    `new_nonce`; pass them only to reproduce a signature. Raises ``ValueError``
    for a target, nonce or partner id that cannot be sent, ``TypeError`` for a
    key that does not fit the algorithm.
    """
    if not _WIRE.fullmatch(partner_id):
        raise ValueError(f"partner id {partner_id!r} must be visible ASCII")
    path, query = _split_target(url_or_path)
    timestamp = int(time.time() if now is None else now)
    nonce = new_nonce() if nonce is None else nonce
    body_sha256 = hashlib.sha256(body or b"").hexdigest()
    message = canonical_string(method, path, query, timestamp, nonce, body_sha256)
    signature = _sign(message, key, algorithm)
    return {
        PARTNER_HEADER: partner_id,
        TIMESTAMP_HEADER: str(timestamp),
        NONCE_HEADER: nonce,
        CONTENT_SHA256_HEADER: body_sha256,
        SIGNATURE_HEADER: base64.b64encode(signature).decode("ascii"),
    }


if _HAS_HTTPX:

    class PartnerAuth(httpx.Auth):
        """Signs every request of an ``httpx`` client (sync or async) as one partner.

        ``httpx.Client(auth=PartnerAuth("till-042", key, "RSA-SHA256"))``. The
        body is read before signing, so a streamed upload is buffered. httpx
        applies auth before it follows redirects, so a redirected request keeps
        the first signature and fails: partner endpoints do not redirect.
        """

        requires_request_body = True

        def __init__(
            self,
            partner_id: str,
            key: bytes | rsa.RSAPrivateKey,
            algorithm: Algorithm,
            clock: Callable[[], float] = time.time,
        ) -> None:
            if algorithm not in ALGORITHMS:
                raise ValueError(f"algorithm {algorithm!r} must be one of {ALGORITHMS}")
            # Parse a PEM once here, not on every request.
            self._key = _load_private_key(key) if algorithm == RSA_SHA256 else key
            self._partner_id = partner_id
            self._algorithm: Algorithm = algorithm
            self._clock = clock

        def auth_flow(
            self, request: httpx.Request
        ) -> Generator[httpx.Request, httpx.Response, None]:
            # raw_path is the path and query exactly as httpx puts them on the wire.
            target = request.url.raw_path.decode("ascii")
            request.headers.update(
                sign_headers(
                    request.method,
                    target,
                    request.content,
                    self._partner_id,
                    self._key,
                    self._algorithm,
                    now=self._clock(),
                )
            )
            yield request


# ---------------------------------------------------------------------------
# Verifying (Carnival's side)


def _signing_headers(headers: Mapping[str, str]) -> dict[str, list[str]]:
    wanted = {name.lower(): name for name in SIGNED_REQUEST_HEADERS}
    found: dict[str, list[str]] = {name: [] for name in SIGNED_REQUEST_HEADERS}
    # items(), not get(): a plain dict may hold one header under two spellings,
    # and Starlette's Headers lists a repeated header once per occurrence.
    for name, value in headers.items():
        canonical = wanted.get(name.lower())
        if canonical is not None and value.strip():
            found[canonical].append(value.strip())
    return found


def read_unverified_partner(headers: Mapping[str, str]) -> str | None:
    """The partner id a request claims, to fetch its key before `verify` (async callers).

    Nothing is verified: use it only to look the key up, then pass that key to
    `verify` (``lookup=lambda _: key``) and trust only `VerifiedRequest`.
    """
    values = _signing_headers(headers)[PARTNER_HEADER]
    return values[0] if len(values) == 1 else None


def nonce_key_suffix(partner_id: str, nonce: str) -> str:
    """The per-partner part of the Redis key that remembers a nonce.

    Nonces are unique per partner, not globally. A nonce never contains ``:``,
    so the key stays unambiguous whatever the partner id contains.
    """
    return f"{partner_id}:{nonce}"


def verify(
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes,
    lookup: PartnerLookup,
    now: float,
    window_s: int = DEFAULT_WINDOW_S,
) -> VerifiedRequest:
    """Check a partner request's signature; raise `SignatureError` on the first failure.

    ``path`` and ``query`` are the raw request target as received, split at the
    first ``?`` (ASGI: ``scope["raw_path"]`` and ``scope["query_string"]``,
    decoded as ASCII), never the decoded path a framework routes on; ``body`` is
    the raw body bytes. ``headers`` is looked up case-insensitively. ``lookup``
    is called once, with the claimed partner id. ``now`` is Carnival's clock in
    epoch seconds.

    Checks, in this order (the ``code`` of the error):

    1. ``missing_signature_header``: one of the five headers is absent or
       empty (the message names the first, in `SIGNED_REQUEST_HEADERS` order);
    2. ``duplicate_signature_header``: one of them appears more than once;
    3. ``unknown_partner``: ``lookup`` returned None;
    4. ``bad_timestamp``: the timestamp is not a decimal integer;
    5. ``request_expired``: it is more than ``window_s`` seconds from ``now``,
       either side (the message gives Carnival's time, to fix the clock);
    6. ``bad_nonce``: the nonce does not match `NONCE_PATTERN`;
    7. ``body_hash_mismatch``: the declared hash is not the SHA-256 of ``body``;
    8. ``bad_signature``: the signature does not verify over `canonical_string`
       (also when the request target is not ASCII, so it cannot be signed).

    A return means the request is authentic and fresh, NOT that it is new: the
    caller must now check the nonce for replay (see the module docstring and
    `VerifiedRequest.nonce_ttl_s`). Raises `SignatureError` ``bad_public_key`` if
    the stored RSA key itself is unusable (a registration bug, not the partner's
    request).
    """
    found = _signing_headers(headers)
    for name in SIGNED_REQUEST_HEADERS:
        if not found[name]:
            raise SignatureError(
                "missing_signature_header", f"the {name} header is missing or empty"
            )
    for name in SIGNED_REQUEST_HEADERS:
        if len(found[name]) > 1:
            raise SignatureError("duplicate_signature_header", f"the {name} header is repeated")
    partner_id, timestamp_text, nonce, declared_sha256, signature_b64 = (
        found[name][0] for name in SIGNED_REQUEST_HEADERS
    )

    partner = lookup(partner_id)
    if partner is None:
        raise SignatureError("unknown_partner", f"no partner {partner_id!r} is registered")

    if not _TIMESTAMP.fullmatch(timestamp_text):
        raise SignatureError(
            "bad_timestamp",
            f"{TIMESTAMP_HEADER} must be epoch seconds as a decimal integer, "
            f"got {timestamp_text!r}",
        )
    timestamp = int(timestamp_text)
    if abs(now - timestamp) > window_s:
        raise SignatureError(
            "request_expired",
            f"{TIMESTAMP_HEADER} {timestamp} is {abs(int(timestamp - now))} s "
            f"{'ahead of' if timestamp > now else 'behind'} the server time {int(now)}; "
            f"requests are accepted within ±{window_s} s: sign with the current time "
            "and keep the clock synchronised (NTP)",
        )

    if not _NONCE.fullmatch(nonce):
        raise SignatureError("bad_nonce", f"{NONCE_HEADER} must match {NONCE_PATTERN}")

    body_sha256 = hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(declared_sha256.encode(), body_sha256.encode()):
        raise SignatureError(
            "body_hash_mismatch",
            f"{CONTENT_SHA256_HEADER} is not the lower-case hex SHA-256 of the body received",
        )

    _check_signature(partner, method, path, query, timestamp, nonce, body_sha256, signature_b64)
    return VerifiedRequest(
        partner_id=partner_id,
        algorithm=partner.algorithm,
        timestamp=timestamp,
        nonce=nonce,
        body_sha256=body_sha256,
        nonce_ttl_s=math.ceil(timestamp + window_s - now) + 1,
    )


def _check_signature(
    partner: PartnerKey,
    method: str,
    path: str,
    query: str,
    timestamp: int,
    nonce: str,
    body_sha256: str,
    signature_b64: str,
) -> None:
    bad = SignatureError(
        "bad_signature",
        f"{SIGNATURE_HEADER} does not verify ({partner.algorithm} over the canonical string)",
    )
    try:
        signature = base64.b64decode(signature_b64, validate=True)
        message = canonical_string(method, path, query, timestamp, nonce, body_sha256)
    except (binascii.Error, ValueError) as exc:
        raise bad from exc
    if partner.algorithm == HMAC_SHA256:
        expected = hmac.new(partner.key, message, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, signature):
            raise bad
        return
    public_key = _cached_public_key(partner.key)
    try:
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature as exc:
        raise bad from exc


# ---------------------------------------------------------------------------
# Webhooks (Carnival → partner)


def _webhook_mac(secret: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_webhook(secret: bytes, body: bytes, timestamp: int) -> str:
    """The `WEBHOOK_SIGNATURE_HEADER` value for one delivery: ``t=<ts>,v1=<hex>``.

    ``v1`` is the lower-case hex HMAC-SHA256, keyed with the partner's webhook
    secret, of the ASCII timestamp, a ``.``, then the exact body bytes. Sign at
    each delivery attempt (a retry gets a fresh timestamp); the event id in the
    body stays the same, and that is what receivers dedupe on.
    """
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError(f"timestamp {timestamp!r} must be a non-negative integer")
    return f"t={timestamp},v1={_webhook_mac(secret, body, timestamp)}"


def _parse_webhook_header(header: str) -> tuple[int, list[str]]:
    timestamps: list[str] = []
    signatures: list[str] = []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep:
            raise SignatureError(
                "bad_webhook_signature_header", f"{item.strip()!r} is not a name=value item"
            )
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            signatures.append(value)
        # Other names (a later v2) are skipped, so a new scheme can be added alongside v1.
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]):
        raise SignatureError(
            "bad_webhook_signature_header", "the header needs exactly one t=<epoch seconds>"
        )
    if not signatures or not all(_SHA256_HEX.fullmatch(sig) for sig in signatures):
        raise SignatureError(
            "bad_webhook_signature_header", "the header needs v1=<64 lower-case hex digits>"
        )
    return int(timestamps[0]), signatures


def verify_webhook(
    secret: bytes,
    body: bytes,
    header: str,
    now: float,
    tolerance_s: int = DEFAULT_WEBHOOK_TOLERANCE_S,
) -> None:
    """Check a webhook Carnival sent (the receiver's side); raise `SignatureError`.

    ``body`` is the raw body bytes as received, before any JSON parsing. Checks,
    in order: ``bad_webhook_signature_header`` (not ``t=<int>`` and one or more
    ``v1=<hex>``), ``webhook_expired`` (``t`` more than ``tolerance_s`` from
    ``now``, either side), ``bad_webhook_signature`` (no ``v1`` matches; several
    are accepted so a secret can be rotated while both are valid).

    A return does not mean the event is new: a delivery may be retried, and a
    signed delivery replayed within the tolerance. Receivers dedupe on the event
    id inside the body, never on the signature or the timestamp.
    """
    timestamp, signatures = _parse_webhook_header(header)
    if abs(now - timestamp) > tolerance_s:
        raise SignatureError(
            "webhook_expired",
            f"the webhook was signed at {timestamp}, {int(now - timestamp):+d} s from the "
            f"receiver's time {int(now)} (tolerance ±{tolerance_s} s)",
        )
    expected = _webhook_mac(secret, body, timestamp).encode()
    if not any(hmac.compare_digest(expected, sig.encode()) for sig in signatures):
        raise SignatureError(
            "bad_webhook_signature", "no v1 signature matches the body with this secret"
        )
