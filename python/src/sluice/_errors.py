"""Typed errors rebuilt from the wire's error table (docs/api.md#errors) by one factory. A
program that exits non-zero, times out or is cancelled is not an error: that is a result
(``RunResult.reason``)."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Dict, Mapping, Optional, Type


class SluiceError(Exception):
    """Base class of every error the SDK raises on purpose; ``code`` says which kind it is."""

    code: str = "INTERNAL"

    def __init__(
        self,
        message: str,
        *,
        status: Optional[int] = None,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        code: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        #: The HTTP status, or None for errors that never reached the server.
        self.status = status if status is not None else ERROR_STATUS.get(self.code)
        #: The ``X-Request-Id`` of the failed request: find it in the server's log.
        self.request_id = request_id
        #: Seconds to wait before retrying (``Retry-After``), when the server said.
        self.retry_after = retry_after

    def __str__(self) -> str:
        suffix = f" (request {self.request_id})" if self.request_id else ""
        return f"{self.code}: {self.message}{suffix}"


class InvalidRequestError(SluiceError):
    """400: the request was malformed; the message names the field."""

    code = "INVALID_REQUEST"


class UnauthorizedError(SluiceError):
    """401: API keys are configured and the key is missing or wrong."""

    code = "UNAUTHORIZED"


class ForbiddenError(SluiceError):
    """403: not allowed (network the server does not grant, a link in the workspace)."""

    code = "FORBIDDEN"


class NotFoundError(SluiceError):
    """404: no such session, execution, run, file or route (another tenant's look the same)."""

    code = "NOT_FOUND"


class SessionBusyError(SluiceError):
    """409: the session's queue is full, or it already runs an agent; see ``retry_after``."""

    code = "SESSION_BUSY"


class PayloadTooLargeError(SluiceError):
    """413: a body, an upload or the workspace is over its limit."""

    code = "PAYLOAD_TOO_LARGE"


class UnsupportedLanguageError(SluiceError):
    """422: a language this server cannot run."""

    code = "UNSUPPORTED_LANGUAGE"


class RateLimitedError(SluiceError):
    """429: a cap is reached; ``retry_after`` says when to try again."""

    code = "RATE_LIMITED"


class InternalError(SluiceError):
    """500: a server bug (or a malformed answer from it)."""

    code = "INTERNAL"


class SandboxUnavailableError(SluiceError):
    """503: the sandbox cannot run code here, or the server is draining."""

    code = "SANDBOX_UNAVAILABLE"


class LLMUnavailableError(SluiceError):
    """502: the server's model endpoint failed or is not configured (agent runs)."""

    code = "LLM_UNAVAILABLE"


class LLMStreamError(SluiceError):
    """502: the model's stream failed after it began (an agent run's ``error`` event)."""

    code = "LLM_ERROR"


class SluiceConnectionError(SluiceError):
    """The server could not be reached, or a stream's reconnections ran out."""

    code = "CONNECTION_ERROR"


class SluiceTimeoutError(SluiceError):
    """A client-side deadline ran out before the server answered."""

    code = "TIMEOUT"


#: ErrorCode → HTTP status, the wire's table.
ERROR_STATUS: Dict[str, int] = {
    "INVALID_REQUEST": 400,
    "UNAUTHORIZED": 401,
    "FORBIDDEN": 403,
    "NOT_FOUND": 404,
    "SESSION_BUSY": 409,
    "PAYLOAD_TOO_LARGE": 413,
    "UNSUPPORTED_LANGUAGE": 422,
    "RATE_LIMITED": 429,
    "INTERNAL": 500,
    "SANDBOX_UNAVAILABLE": 503,
    "LLM_UNAVAILABLE": 502,
    "LLM_ERROR": 502,
}

_CLASSES: Dict[str, Type[SluiceError]] = {
    "INVALID_REQUEST": InvalidRequestError,
    "UNAUTHORIZED": UnauthorizedError,
    "FORBIDDEN": ForbiddenError,
    "NOT_FOUND": NotFoundError,
    "SESSION_BUSY": SessionBusyError,
    "PAYLOAD_TOO_LARGE": PayloadTooLargeError,
    "UNSUPPORTED_LANGUAGE": UnsupportedLanguageError,
    "RATE_LIMITED": RateLimitedError,
    "INTERNAL": InternalError,
    "SANDBOX_UNAVAILABLE": SandboxUnavailableError,
    "LLM_UNAVAILABLE": LLMUnavailableError,
    "LLM_ERROR": LLMStreamError,
}

# A bare 502 (a proxy's) says nothing about the model endpoint: only a Sluice body names these.
_BODY_ONLY = ("LLM_UNAVAILABLE", "LLM_ERROR")


def code_for_status(status: int) -> Optional[str]:
    """The code whose status this is (the table read backwards), or None."""
    for code, s in ERROR_STATUS.items():
        if s == status and code not in _BODY_ONLY:
            return code
    return None


def error_from_code(
    code: str,
    message: str,
    *,
    status: Optional[int] = None,
    request_id: Optional[str] = None,
    retry_after: Optional[float] = None,
) -> SluiceError:
    """The one factory. A code outside the table (a newer server, a proxy) falls back to the
    status's class, then to INTERNAL for 5xx and INVALID_REQUEST for 4xx, keeping the code in
    the message."""
    cls = _CLASSES.get(code)
    if cls is None:
        fallback = (code_for_status(status) if status is not None else None) or (
            "INVALID_REQUEST" if status is not None and status < 500 else "INTERNAL"
        )
        cls = _CLASSES[fallback]
        message = f"{code}: {message}" if code else message
    return cls(message, status=status, request_id=request_id, retry_after=retry_after)


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    if v.isascii() and v.isdigit():
        return float(v)
    try:
        at = email.utils.parsedate_to_datetime(v)
    except (TypeError, ValueError):
        return None
    return max(0.0, at.timestamp() - (time.time() if now is None else now))


def parse_error_body(text: str) -> Optional[Dict[str, str]]:
    """``{error: {code, message}}`` narrowed from text, or None."""
    try:
        value: object = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    error = value.get("error")
    if not isinstance(error, dict):
        return None
    code, message = error.get("code"), error.get("message")
    if not isinstance(code, str) or not isinstance(message, str):
        return None
    return {"code": code, "message": message}


def error_from_answer(
    status: int, reason: str, headers: Mapping[str, str], body: str, what: str, sent_request_id: Optional[str]
) -> SluiceError:
    """The typed error of a non-2xx answer from its body, falling back to the status when the
    body is not Sluice's (a proxy's HTML page, an empty 502)."""
    request_id = headers.get("request-id") or headers.get("x-request-id") or sent_request_id
    retry_after = parse_retry_after(headers.get("retry-after"))
    parsed = parse_error_body(body)
    if parsed is not None:
        return error_from_code(parsed["code"], parsed["message"], status=status, request_id=request_id, retry_after=retry_after)
    shown = body.strip()[:200]
    message = f"{what}: HTTP {status}{' ' + reason if reason else ''}{': ' + shown if shown else ''}"
    return error_from_code(code_for_status(status) or "", message, status=status, request_id=request_id, retry_after=retry_after)
