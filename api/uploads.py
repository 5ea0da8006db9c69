"""Uploaded CSV files: read with a size bound, decoded as UTF-8, each failure a
4xx a person can act on."""

from __future__ import annotations

from fastapi import Request

from api.errors import ApiError

CSV_MEDIA_TYPES = frozenset({"text/csv", "text/plain"})


async def read_csv(request: Request, max_bytes: int, what: str) -> str:
    """The body of a CSV upload; ``what`` says what each line holds, for messages."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type not in CSV_MEDIA_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the file as the body with 'Content-Type: text/csv' (got '{media_type}')",
        )
    body = bytearray()
    async for part in request.stream():
        body += part
        if len(body) > max_bytes:
            raise ApiError(
                413, "body_too_large", f"an upload is at most {max_bytes // 2**20} MiB; split it"
            )
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            422,
            "invalid_csv",
            f"the file is not UTF-8 text (byte {exc.start} is not); save it as UTF-8 CSV",
        ) from exc
    if not text.strip():
        raise ApiError(422, "invalid_csv", f"the file is empty; send {what}, one per line")
    return text
