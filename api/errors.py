"""One error shape for every 4xx/5xx: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import redis.exceptions
from aiokafka.errors import KafkaError
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("carnival.api")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details


def validation_error(code: str, errors: Sequence[Any], whole: str = "body") -> ApiError:
    """A 422 naming each field that failed (pydantic's ``errors()``) and why;
    an error about the object as a whole is reported against ``whole``."""
    problems = [
        {"field": ".".join(str(p) for p in e["loc"]) or whole, "problem": e["msg"]} for e in errors
    ]
    message = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    return ApiError(422, code, message, {"problems": problems})


def activity_not_found(activity_id: str) -> ApiError:
    """Also what another tenant's activity looks like: the same 404, nothing more."""
    return ApiError(404, "activity_not_found", f"no activity '{activity_id}' in your tenant")


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def _respond(status: int, code: str, message: str, details: Any = None) -> JSONResponse:
    return JSONResponse(error_body(code, message, details), status_code=status)


_HTTP_CODES = {
    404: ("not_found", "no such endpoint; see /docs for the API"),
    405: ("method_not_allowed", "this endpoint does not accept that HTTP method"),
}


def as_api_error(exc: Exception) -> ApiError:
    """Any exception as the error a client gets: a dependency down is a 503 with its
    code, anything unforeseen a 500 that is logged (never a traceback to the client)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        log.warning("redis unavailable: %s", exc)
        return ApiError(503, "redis_unavailable", "the ledger is unreachable; retry shortly")
    if isinstance(exc, KafkaError):
        log.warning("kafka unavailable: %s", exc)
        return ApiError(503, "kafka_unavailable", "the request queue is unreachable; retry shortly")
    log.error("unhandled error", exc_info=exc)
    return ApiError(500, "internal_error", "an unexpected error occurred; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = validation_error("invalid_request", exc.errors())
        return _respond(error.status, error.code, error.message, error.details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code, message = _HTTP_CODES.get(exc.status_code, ("http_error", str(exc.detail)))
        return _respond(exc.status_code, code, message)

    @app.exception_handler(ApiError)
    @app.exception_handler(redis.exceptions.ConnectionError)
    @app.exception_handler(redis.exceptions.TimeoutError)
    @app.exception_handler(KafkaError)
    @app.exception_handler(Exception)
    async def _error(_: Request, exc: Exception) -> JSONResponse:
        error = as_api_error(exc)
        return _respond(error.status, error.code, error.message, error.details)
