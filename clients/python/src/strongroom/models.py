"""What the server answers, as frozen dataclasses (standard library only: no extra dependency
for apps, and ``mypy --strict`` checks every field). Values that are secrets — token sets,
secret data, API tokens, record documents, file bytes — never appear in ``repr``.

Times are kept as the RFC 3339 strings the server sends; ``parse_time`` turns one into a
``datetime`` when an app needs arithmetic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, List, Mapping, Optional

JSON = Dict[str, Any]


def parse_time(value: str) -> datetime:
    """An RFC 3339 time from the server as an aware ``datetime``."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _opt_str(v: Any) -> Optional[str]:
    return None if v is None else str(v)


@dataclass(frozen=True)
class VersionInfo:
    version: int
    created_at: str
    deleted_at: Optional[str] = None
    destroyed: bool = False

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "VersionInfo":
        return cls(int(j["version"]), str(j["created_at"]), _opt_str(j.get("deleted_at")), bool(j.get("destroyed", False)))


@dataclass(frozen=True)
class BatchItemResult:
    """One item of a batch write: ``version`` when written, else the status and error code a
    single write of it would have answered (``409`` / ``version_conflict`` when it exists)."""

    index: int
    status: int
    version: Optional[VersionInfo] = None
    error_code: Optional[str] = None
    error_message: Optional[str] = None

    @property
    def ok(self) -> bool:
        return self.version is not None

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "BatchItemResult":
        error = j.get("error") or {}
        version = j.get("version")
        return cls(
            int(j["index"]),
            int(j["status"]),
            VersionInfo.from_json(version) if version else None,
            _opt_str(error.get("code")),
            _opt_str(error.get("message")),
        )


@dataclass(frozen=True)
class BatchResult:
    """What a batch write did, item by item in the order sent."""

    written: int
    failed: int
    items: List[BatchItemResult]

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "BatchResult":
        return cls(int(j["written"]), int(j["failed"]), [BatchItemResult.from_json(i) for i in j.get("items", [])])


@dataclass(frozen=True)
class Credential:
    """A credential's current (or requested) version. ``data`` is the stored object: an OAuth
    token set (``{"type": "oauth2", "access_token": …}``) or ``{"type": "secret", "data": …}``."""

    name: str
    data: JSON = field(repr=False)
    metadata: VersionInfo

    @property
    def is_oauth2(self) -> bool:
        return self.data.get("type") == "oauth2"

    @property
    def secret(self) -> JSON:
        """The object of a generic secret (``data.data``), or the token set's fields."""
        inner = self.data.get("data")
        return dict(inner) if isinstance(inner, dict) else {k: v for k, v in self.data.items() if k != "type"}

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "Credential":
        return cls(str(j["name"]), dict(j["data"]), VersionInfo.from_json(j["metadata"]))


@dataclass(frozen=True)
class CredentialSummary:
    name: str
    current_version: int
    updated_at: str

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "CredentialSummary":
        return cls(str(j["name"]), int(j["current_version"]), str(j["updated_at"]))


@dataclass(frozen=True)
class CredentialMetadata:
    name: str
    current_version: int
    oldest_version: int
    max_versions: int
    created_at: str
    updated_at: str
    versions: List[VersionInfo]

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "CredentialMetadata":
        return cls(
            str(j["name"]),
            int(j["current_version"]),
            int(j["oldest_version"]),
            int(j["max_versions"]),
            str(j["created_at"]),
            str(j["updated_at"]),
            [VersionInfo.from_json(v) for v in j["versions"]],
        )


@dataclass(frozen=True)
class AccessToken:
    """A valid access token (refreshed exactly once across callers when it was due)."""

    access_token: str = field(repr=False)
    token_type: Optional[str]
    expires_at: Optional[str]
    refreshed: bool
    version: int

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "AccessToken":
        return cls(str(j["access_token"]), _opt_str(j.get("token_type")), _opt_str(j.get("expires_at")), bool(j["refreshed"]), int(j["version"]))


@dataclass(frozen=True)
class CredentialStatus:
    user: str
    name: str
    status: str
    error: Optional[str]
    updated_at: str
    verified: Optional[bool] = None
    last_verified_at: Optional[str] = None

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "CredentialStatus":
        return cls(
            str(j["user"]),
            str(j["name"]),
            str(j["status"]),
            _opt_str(j.get("error")),
            str(j["updated_at"]),
            j.get("verified"),
            _opt_str(j.get("last_verified_at")),
        )


@dataclass(frozen=True)
class Provider:
    name: str
    token_url: str
    client_id: str
    auth_method: str
    revocation_url: Optional[str]
    refresh_margin_secs: int
    verify_url: Optional[str]
    extra_params: Dict[str, str]

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "Provider":
        return cls(
            str(j["name"]),
            str(j["token_url"]),
            str(j["client_id"]),
            str(j.get("auth_method", "client_secret_basic")),
            _opt_str(j.get("revocation_url")),
            int(j.get("refresh_margin_secs", 0)),
            _opt_str(j.get("verify_url")),
            dict(j.get("extra_params") or {}),
        )


@dataclass(frozen=True)
class Record:
    """A document of a collection; ``user`` is set on look-ups in per-user collections."""

    key: str
    version: int
    updated_at: str
    expires_at: Optional[str]
    document: JSON = field(repr=False)
    user: Optional[str] = None

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "Record":
        return cls(str(j["key"]), int(j["version"]), str(j["updated_at"]), _opt_str(j.get("expires_at")), dict(j["document"]), _opt_str(j.get("user")))


@dataclass(frozen=True)
class Event:
    id: str
    type: str
    time: str
    details: JSON = field(repr=False)

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "Event":
        return cls(str(j["id"]), str(j["type"]), str(j["time"]), dict(j.get("details") or {}))


@dataclass(frozen=True)
class FileInfo:
    id: str
    name: str
    content_type: str
    size: int
    sha256: str
    created_at: str

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "FileInfo":
        return cls(str(j["id"]), str(j["name"]), str(j["content_type"]), int(j["size"]), str(j["sha256"]), str(j["created_at"]))


@dataclass(frozen=True)
class DownloadLink:
    """A signed, short-lived download link; ``url`` needs no token (keep it private)."""

    token: str = field(repr=False)
    path: str = field(repr=False)
    expires_at: str
    one_time: bool
    url: str = field(repr=False, default="")

    @classmethod
    def from_json(cls, j: Mapping[str, Any], base: str) -> "DownloadLink":
        path = str(j["path"])
        return cls(str(j["token"]), path, str(j["expires_at"]), bool(j["one_time"]), base.rstrip("/") + path)


@dataclass(frozen=True)
class Namespace:
    name: str
    created_at: str
    primary_key_version: int
    min_decrypt_version: int

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "Namespace":
        return cls(str(j["name"]), str(j["created_at"]), int(j["primary_key_version"]), int(j["min_decrypt_version"]))


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    namespaces: List[str]
    capabilities: List[str]
    created_at: str
    expires_at: Optional[str]
    revoked_at: Optional[str]
    rate_limit_per_sec: Optional[int] = None

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "TokenInfo":
        policy = j.get("policy") or {}
        return cls(
            str(j["id"]),
            str(j["name"]),
            list(policy.get("namespaces", [])),
            list(policy.get("capabilities", [])),
            str(j["created_at"]),
            _opt_str(j.get("expires_at")),
            _opt_str(j.get("revoked_at")),
            policy.get("rate_limit_per_sec"),
        )


@dataclass(frozen=True)
class CreatedToken:
    """A new API token: ``token`` is shown this once and never again."""

    info: TokenInfo
    token: str = field(repr=False)

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "CreatedToken":
        return cls(TokenInfo.from_json(j), str(j["token"]))


@dataclass(frozen=True)
class KeyStatus:
    namespace: str
    primary_version: int
    min_decrypt_version: int
    versions: List[int]
    users_on_old_versions: int

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "KeyStatus":
        versions = [int(v["version"]) if isinstance(v, dict) else int(v) for v in j.get("versions", [])]
        return cls(str(j["namespace"]), int(j["primary_version"]), int(j["min_decrypt_version"]), versions, int(j.get("users_on_old_versions", 0)))


@dataclass(frozen=True)
class RewrapReport:
    namespace: str
    primary_version: int
    rewrapped: int
    remaining: int
    transit_versions_rewrapped: int = 0

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "RewrapReport":
        return cls(str(j["namespace"]), int(j["primary_version"]), int(j["rewrapped"]), int(j["remaining"]), int(j.get("transit_versions_rewrapped", 0)))


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    time: str
    token_id: str
    action: str
    namespace: str
    user_hash: str
    target: str
    outcome: str
    hash: str

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "AuditRecord":
        return cls(*(j[k] for k in ("seq", "time", "token_id", "action", "namespace", "user_hash", "target", "outcome", "hash")))


@dataclass(frozen=True)
class VerifyReport:
    valid: bool
    entries_checked: int
    first_bad_seq: Optional[int] = None
    problem: Optional[str] = None

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "VerifyReport":
        return cls(bool(j["valid"]), int(j["entries_checked"]), j.get("first_bad_seq"), _opt_str(j.get("problem")))


@dataclass(frozen=True)
class ErasureReport:
    user_hash: str
    erased_at: str
    items_purged: int
    purge_pending: bool
    provider_revocations: int = 0
    provider_revocation_failures: int = 0

    @classmethod
    def from_json(cls, j: Mapping[str, Any]) -> "ErasureReport":
        return cls(
            str(j["user_hash"]),
            str(j["erased_at"]),
            int(j.get("items_purged", 0)),
            bool(j.get("purge_pending", False)),
            int(j.get("provider_revocations", 0)),
            int(j.get("provider_revocation_failures", 0)),
        )
