"""Errors: one exception class per stable error code of the server, under one base.

Every error carries the server's ``code``, ``message`` and HTTP ``status``. Messages come from
the server, which never echoes what the client sent, so no secret can appear in an exception.
Catch a family through the intermediate bases (``ClientError`` for 4xx, ``ServerError`` for
5xx, ``Retryable`` for what is worth retrying).
"""

from __future__ import annotations

from typing import Dict, Optional, Type


class StrongroomError(Exception):
    """Base of every error this client raises."""

    code: str = "error"

    def __init__(
        self,
        message: str,
        *,
        code: Optional[str] = None,
        status: Optional[int] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.status = status
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, status={self.status!r}, message={self.message!r})"

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" if self.status is None else f"{self.status} {self.code}: {self.message}"


class TransportError(StrongroomError):
    """The server could not be reached or the connection broke (no answer was received)."""

    code = "transport_error"


class ClientError(StrongroomError):
    """The request was refused (4xx): fix the request, retrying it unchanged will not help."""


class ServerError(StrongroomError):
    """The server failed (5xx)."""


class Retryable(StrongroomError):
    """Mixin base: the same request may succeed later (see ``retry_after``)."""


# 400
class InvalidInput(ClientError):
    code = "invalid_input"


class InvalidJson(ClientError):
    code = "invalid_json"


class InvalidParameter(ClientError):
    code = "invalid_parameter"


class BodyReadFailed(ClientError):
    code = "body_read_failed"


class WrongRootKey(ClientError):
    """An unseal brought key material that does not open this store."""

    code = "wrong_root_key"


class InvalidRange(ClientError):
    code = "invalid_range"


# 401 / 403
class Unauthenticated(ClientError):
    code = "unauthenticated"


class Forbidden(ClientError):
    code = "forbidden"


class TokenSuspended(Forbidden, Retryable):
    code = "token_suspended"


class InvalidLink(Forbidden):
    code = "invalid_link"


# 404 / 405 / 408 / 409 / 410
class NotFound(ClientError):
    code = "not_found"


class NoRoute(NotFound):
    code = "no_route"


class VersionDeleted(NotFound):
    code = "version_deleted"


class VersionDestroyed(NotFound):
    code = "version_destroyed"


class RequestTimeout(ClientError, Retryable):
    code = "request_timeout"


class Conflict(ClientError):
    """Base of the 409 answers."""


class AlreadyExists(Conflict):
    code = "already_exists"


class VersionConflict(Conflict):
    code = "version_conflict"


class UniqueViolation(Conflict):
    code = "unique_violation"


class ErasureInProgress(Conflict, Retryable):
    code = "erasure_in_progress"


class ImmutableSetting(Conflict):
    code = "immutable_setting"


class LastOperatorToken(Conflict):
    code = "last_operator_token"


class KeysStillInUse(Conflict):
    code = "keys_still_in_use"


class NotSealed(Conflict):
    """An unseal of a node that is not sealed."""

    code = "not_sealed"


class LinkExpired(ClientError):
    code = "link_expired"


class LinkUsed(ClientError):
    code = "link_used"


# 413 / 415 / 416 / 429
class PayloadTooLarge(ClientError):
    code = "payload_too_large"


class FileTooLarge(ClientError):
    code = "file_too_large"


class QuotaExceeded(ClientError):
    code = "quota_exceeded"


class UnsupportedMediaType(ClientError):
    code = "unsupported_media_type"


class UnsupportedContentType(ClientError):
    code = "unsupported_content_type"


class RangeNotSatisfiable(ClientError):
    code = "range_not_satisfiable"


class LockedOut(ClientError, Retryable):
    code = "locked_out"


class RateLimited(ClientError, Retryable):
    code = "rate_limited"


# OAuth
class NeedsReauthorization(ClientError):
    """The user must sign in with the provider again (no refresh token, or ``invalid_grant``)."""

    code = "needs_reauthorization"


class RefreshFailed(ServerError, Retryable):
    code = "refresh_failed"


class RevocationFailed(ServerError, Retryable):
    code = "revocation_failed"


class VerificationFailed(ServerError):
    code = "verification_failed"


# 5xx
class IntegrityError(ServerError):
    """Stored data was altered or moved: it is refused, never returned wrong."""

    code = "integrity_error"


class KeyRetired(ServerError):
    code = "key_retired"


class Internal(ServerError):
    code = "internal"


class FilesNotConfigured(ServerError):
    code = "files_not_configured"


class ObjectStorageUnavailable(ServerError, Retryable):
    code = "object_storage_unavailable"


class Unavailable(ServerError, Retryable):
    code = "unavailable"


class AuditUnavailable(ServerError, Retryable):
    code = "audit_unavailable"


class InsufficientStorage(ServerError, Retryable):
    code = "insufficient_storage"


class KmsUnavailable(ServerError, Retryable):
    """KMS, which wraps the root key, is unreachable or busy."""

    code = "kms_unavailable"


class KmsRefused(ServerError):
    """KMS refused to unwrap the root key (permissions, a missing or disabled key)."""

    code = "kms_refused"


class Sealed(ServerError):
    """The node is sealed (an operator's incident switch): nothing is served until it is unsealed."""

    code = "sealed"


def _all_codes() -> Dict[str, Type[StrongroomError]]:
    found: Dict[str, Type[StrongroomError]] = {}
    pending = list(StrongroomError.__subclasses__())
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        code = cls.__dict__.get("code")
        if isinstance(code, str) and code not in ("transport_error",):
            found[code] = cls
    return found


#: Every stable error code of the server and its class.
BY_CODE: Dict[str, Type[StrongroomError]] = _all_codes()


_BY_STATUS = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 409: "version_conflict", 429: "rate_limited", 503: "unavailable"}


def from_response(status: int, code: Optional[str], message: str, retry_after: Optional[float]) -> StrongroomError:
    """The exception for an error answer; an unknown code falls back on the status class."""
    cls: Type[StrongroomError]
    if code is None and status in _BY_STATUS:
        # An answer without a body (HEAD): the status says enough.
        code = _BY_STATUS[status]
    if code is not None and code in BY_CODE:
        cls = BY_CODE[code]
    elif status >= 500:
        cls = ServerError
    else:
        cls = ClientError
    return cls(message, code=code or "http_error", status=status, retry_after=retry_after)
