"""Configuration shared by both clients: address, token and namespace from arguments or the
environment (``STRONGROOM_ADDR``, ``STRONGROOM_TOKEN``, ``STRONGROOM_NAMESPACE``), the retry
policy, and the error answer parser."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Optional, Union

from .errors import StrongroomError, from_response

DEFAULT_ADDR = "http://127.0.0.1:8470"

#: What a time argument may be: an aware datetime, RFC 3339 text, or Unix seconds.
TimeLike = Union[datetime, str, int, float]


def rfc3339(value: Optional[TimeLike]) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        value = datetime.fromtimestamp(value, tz=timezone.utc)
    if value.tzinfo is None:
        raise ValueError("times must be timezone-aware (or RFC 3339 text, or Unix seconds)")
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Settings:
    addr: str
    token: str
    namespace: Optional[str]
    timeout: float
    retries: int
    backoff: float
    max_backoff: float

    @classmethod
    def resolve(
        cls,
        addr: Optional[str],
        token: Optional[str],
        namespace: Optional[str],
        timeout: float,
        retries: int,
        backoff: float,
        max_backoff: float,
    ) -> "Settings":
        addr = addr or os.environ.get("STRONGROOM_ADDR") or DEFAULT_ADDR
        token = token or os.environ.get("STRONGROOM_TOKEN")
        if not token:
            raise StrongroomError("no API token: pass token=… or set STRONGROOM_TOKEN", code="no_token")
        namespace = namespace or os.environ.get("STRONGROOM_NAMESPACE") or None
        return cls(addr.rstrip("/"), token, namespace, timeout, retries, backoff, max_backoff)

    def __repr__(self) -> str:
        return f"Settings(addr={self.addr!r}, namespace={self.namespace!r}, token=[redacted])"

    def delay(self, attempt: int, retry_after: Optional[float]) -> float:
        """Exponential back-off with jitter; never shorter than the server's Retry-After."""
        computed = min(self.max_backoff, self.backoff * (2.0**attempt)) * (0.5 + random.random() / 2)
        return max(computed, retry_after or 0.0)


RETRYABLE_CODES = frozenset(
    {"rate_limited", "unavailable", "audit_unavailable", "object_storage_unavailable", "insufficient_storage", "request_timeout"}
)


def error_from(status: int, headers: Any, body: bytes) -> StrongroomError:
    """The exception for an error answer of the server."""
    import json

    retry_after: Optional[float] = None
    raw = headers.get("retry-after")
    if raw:
        try:
            retry_after = float(raw)
        except ValueError:
            retry_after = None
    code: Optional[str] = None
    message = f"HTTP {status}"
    try:
        err = json.loads(body.decode("utf-8"))["error"]
        code, message = str(err["code"]), str(err["message"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        pass
    return from_response(status, code, message, retry_after)
