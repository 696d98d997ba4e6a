"""The one description of every call: method, path, query, body, whether it may be retried,
and how its answer becomes a model. The sync and async clients only execute these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar
from urllib.parse import quote

from . import models as m

T = TypeVar("T")

Page = Tuple[List[T], Optional[str]]


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[Any], T]
    params: Optional[Dict[str, str]] = None
    json: Any = None
    #: Safe to send again when no answer came back (reads, deletes, settings written whole).
    idempotent: bool = False


def seg(value: str) -> str:
    """One path segment (user ids such as ``telegram:42`` keep their colon)."""
    return quote(value, safe=":@")


def _none(_: Any) -> None:
    return None


def _page(parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], Page[T]]:
    def go(j: Any) -> Page[T]:
        return [parse(i) for i in j.get("items", [])], j.get("next_cursor")

    return go


def _items(parse: Callable[[Mapping[str, Any]], T]) -> Callable[[Any], List[T]]:
    def go(j: Any) -> List[T]:
        items = j.get("items", j) if isinstance(j, dict) else j
        return [parse(i) for i in items]

    return go


def _page_params(cursor: Optional[str], limit: int, extra: Optional[Dict[str, Optional[str]]] = None) -> Dict[str, str]:
    params = {"limit": str(limit)}
    if cursor:
        params["cursor"] = cursor
    for k, v in (extra or {}).items():
        if v is not None:
            params[k] = v
    return params


def _user(ns: str, user: str) -> str:
    return f"/v1/ns/{seg(ns)}/users/{seg(user)}"


def _cred(ns: str, user: str, name: str) -> str:
    return f"{_user(ns, user)}/credentials/{seg(name)}"


# --- credentials -------------------------------------------------------------------------


def put_credential(ns: str, user: str, name: str, data: Mapping[str, Any], cas: Optional[int], max_versions: Optional[int]) -> Call[m.VersionInfo]:
    options: Dict[str, int] = {}
    if cas is not None:
        options["cas"] = cas
    if max_versions is not None:
        options["max_versions"] = max_versions
    body: Dict[str, Any] = {"data": dict(data)}
    if options:
        body["options"] = options
    return Call("PUT", _cred(ns, user, name), m.VersionInfo.from_json, json=body)


def put_credentials_batch(ns: str, items: Sequence[Mapping[str, Any]]) -> Call[m.BatchResult]:
    """Up to 1,000 writes (``{"user", "name", "data", "options"}``) in one transaction."""
    return Call("POST", f"/v1/ns/{seg(ns)}/credentials/batch", m.BatchResult.from_json, json={"items": [dict(i) for i in items]})


def secret(values: Mapping[str, Any]) -> Dict[str, Any]:
    """The data of a generic secret."""
    return {"type": "secret", "data": dict(values)}


def oauth2(access_token: str, refresh_token: Optional[str], expires_at: Optional[str], scope: Optional[str], token_type: Optional[str], provider: Optional[str], extra: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The data of an OAuth token set."""
    data: Dict[str, Any] = {"type": "oauth2", "access_token": access_token}
    for k, v in (("refresh_token", refresh_token), ("expires_at", expires_at), ("scope", scope), ("token_type", token_type), ("provider", provider)):
        if v is not None:
            data[k] = v
    if extra:
        data["extra"] = dict(extra)
    return data


def get_credential(ns: str, user: str, name: str, version: Optional[int]) -> Call[m.Credential]:
    params = {"version": str(version)} if version is not None else None
    return Call("GET", _cred(ns, user, name), m.Credential.from_json, params=params, idempotent=True)


def credential_exists(ns: str, user: str, name: str) -> Call[None]:
    return Call("HEAD", _cred(ns, user, name), _none, idempotent=True)


def credential_metadata(ns: str, user: str, name: str) -> Call[m.CredentialMetadata]:
    return Call("GET", f"{_cred(ns, user, name)}/metadata", m.CredentialMetadata.from_json, idempotent=True)


def list_credentials(ns: str, user: str, cursor: Optional[str], limit: int) -> Call[Page[m.CredentialSummary]]:
    return Call("GET", f"{_user(ns, user)}/credentials", _page(m.CredentialSummary.from_json), params=_page_params(cursor, limit), idempotent=True)


def _changed(j: Any) -> int:
    return int(j.get("changed", 0)) if isinstance(j, dict) else 0


def versions_call(ns: str, user: str, name: str, action: str, versions: Sequence[int]) -> Call[int]:
    return Call("POST", f"{_cred(ns, user, name)}/{action}", _changed, json={"versions": list(versions)}, idempotent=True)


def delete_current(ns: str, user: str, name: str) -> Call[None]:
    return Call("DELETE", _cred(ns, user, name), _none, idempotent=True)


def purge_credential(ns: str, user: str, name: str) -> Call[None]:
    return Call("DELETE", f"{_cred(ns, user, name)}/metadata", _none, idempotent=True)


def access_token(ns: str, user: str, name: str, min_valid: int, force: bool = False) -> Call[m.AccessToken]:
    # Idempotent by design: the refresh behind it happens exactly once across callers.
    body: Dict[str, Any] = {"min_valid_secs": min_valid}
    if force:
        body["force"] = True
    return Call("POST", f"{_cred(ns, user, name)}/access-token", m.AccessToken.from_json, json=body, idempotent=True)


def revoke_credential(ns: str, user: str, name: str) -> Call[Any]:
    return Call("POST", f"{_cred(ns, user, name)}/revoke", lambda j: j)


def verify_credential(ns: str, user: str, name: str) -> Call[Any]:
    return Call("POST", f"{_cred(ns, user, name)}/verify", lambda j: j, idempotent=True)


def credential_statuses(ns: str, status: Optional[str]) -> Call[List[m.CredentialStatus]]:
    params = {"status": status} if status else None
    return Call("GET", f"/v1/ns/{seg(ns)}/credential-status", _items(m.CredentialStatus.from_json), params=params, idempotent=True)


# --- providers ---------------------------------------------------------------------------


def put_provider(ns: str, name: str, body: Mapping[str, Any]) -> Call[Any]:
    return Call("PUT", f"/v1/ns/{seg(ns)}/providers/{seg(name)}", lambda j: j, json=dict(body), idempotent=True)


def list_providers(ns: str) -> Call[List[m.Provider]]:
    return Call("GET", f"/v1/ns/{seg(ns)}/providers", _items(m.Provider.from_json), idempotent=True)


def delete_provider(ns: str, name: str) -> Call[None]:
    return Call("DELETE", f"/v1/ns/{seg(ns)}/providers/{seg(name)}", _none, idempotent=True)


# --- records -----------------------------------------------------------------------------


def put_collection(ns: str, name: str, settings: Mapping[str, Any]) -> Call[Any]:
    return Call("PUT", f"/v1/ns/{seg(ns)}/collections/{seg(name)}", lambda j: j, json=dict(settings), idempotent=True)


def list_collections(ns: str) -> Call[List[Any]]:
    return Call("GET", f"/v1/ns/{seg(ns)}/collections", lambda j: list(j.get("items", j) if isinstance(j, dict) else j), idempotent=True)


def _records(ns: str, collection: str, user: Optional[str]) -> str:
    base = _user(ns, user) if user is not None else f"/v1/ns/{seg(ns)}"
    return f"{base}/records/{seg(collection)}"


def put_record(ns: str, collection: str, user: Optional[str], key: str, document: Mapping[str, Any], if_version: Optional[int]) -> Call[m.Record]:
    body: Dict[str, Any] = {"document": dict(document)}
    if if_version is not None:
        body["if_version"] = if_version
    return Call("PUT", f"{_records(ns, collection, user)}/{seg(key)}", m.Record.from_json, json=body)


def get_record(ns: str, collection: str, user: Optional[str], key: str) -> Call[m.Record]:
    return Call("GET", f"{_records(ns, collection, user)}/{seg(key)}", m.Record.from_json, idempotent=True)


def delete_record(ns: str, collection: str, user: Optional[str], key: str) -> Call[None]:
    return Call("DELETE", f"{_records(ns, collection, user)}/{seg(key)}", _none, idempotent=True)


def list_records(ns: str, collection: str, user: Optional[str], cursor: Optional[str], limit: int) -> Call[Page[m.Record]]:
    return Call("GET", _records(ns, collection, user), _page(m.Record.from_json), params=_page_params(cursor, limit), idempotent=True)


def _json_value(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value)


def lookup_records(ns: str, collection: str, field: str, value: Any) -> Call[List[m.Record]]:
    params = {"field": field, "value": _json_value(value)}
    return Call("GET", f"/v1/ns/{seg(ns)}/collections/{seg(collection)}/lookup", _items(m.Record.from_json), params=params, idempotent=True)


# --- events ------------------------------------------------------------------------------


def append_events(ns: str, user: str, events: Iterable[Mapping[str, Any]]) -> Call[Any]:
    return Call("POST", f"{_user(ns, user)}/events", lambda j: j, json={"events": [dict(e) for e in events]})


def query_events(ns: str, user: str, type_: Optional[str], since: Optional[str], until: Optional[str], cursor: Optional[str], limit: int) -> Call[Page[m.Event]]:
    params = _page_params(cursor, limit, {"type": type_, "since": since, "until": until})
    return Call("GET", f"{_user(ns, user)}/events", _page(m.Event.from_json), params=params, idempotent=True)


def event_retention(ns: str, days: Optional[int]) -> Call[Any]:
    return Call("PUT", f"/v1/ns/{seg(ns)}/events/retention", lambda j: j, json={"days": days}, idempotent=True)


# --- files -------------------------------------------------------------------------------


def files_path(ns: str, user: str) -> str:
    return f"{_user(ns, user)}/files"


def file_info(ns: str, user: str, file_id: str) -> Call[m.FileInfo]:
    return Call("GET", f"{files_path(ns, user)}/{seg(file_id)}", m.FileInfo.from_json, idempotent=True)


def list_files(ns: str, user: str, cursor: Optional[str], limit: int) -> Call[Page[m.FileInfo]]:
    return Call("GET", files_path(ns, user), _page(m.FileInfo.from_json), params=_page_params(cursor, limit), idempotent=True)


def delete_file(ns: str, user: str, file_id: str) -> Call[None]:
    return Call("DELETE", f"{files_path(ns, user)}/{seg(file_id)}", _none, idempotent=True)


def file_link(ns: str, user: str, file_id: str, expires_in: int, one_time: bool, base: str) -> Call[m.DownloadLink]:
    return Call(
        "POST",
        f"{files_path(ns, user)}/{seg(file_id)}/links",
        lambda j: m.DownloadLink.from_json(j, base),
        json={"expires_in_secs": expires_in, "one_time": one_time},
    )


def file_policy(ns: str) -> Call[Any]:
    return Call("GET", f"/v1/ns/{seg(ns)}/file-policy", lambda j: j, idempotent=True)


def set_file_policy(ns: str, policy: Mapping[str, Any]) -> Call[Any]:
    return Call("PUT", f"/v1/ns/{seg(ns)}/file-policy", lambda j: j, json=dict(policy), idempotent=True)


# --- users: export and erasure -----------------------------------------------------------


def export_user(ns: str, user: str) -> Call[Any]:
    return Call("GET", f"{_user(ns, user)}/export", lambda j: j, idempotent=True)


def erase_user(ns: str, user: str) -> Call[m.ErasureReport]:
    return Call("DELETE", _user(ns, user), m.ErasureReport.from_json, params={"confirm": user}, idempotent=True)


def erasure_status(ns: str, user: str) -> Call[Any]:
    return Call("GET", f"{_user(ns, user)}/erasure", lambda j: j, idempotent=True)


def list_users(ns: str, cursor: Optional[str], limit: int) -> Call[Page[str]]:
    return Call("GET", f"/v1/ns/{seg(ns)}/users", _page(lambda j: str(j["user"])), params=_page_params(cursor, limit), idempotent=True)


# --- operators -----------------------------------------------------------------------------


def create_namespace(name: str) -> Call[m.Namespace]:
    return Call("POST", "/v1/sys/namespaces", m.Namespace.from_json, json={"name": name})


def list_namespaces() -> Call[List[m.Namespace]]:
    return Call("GET", "/v1/sys/namespaces", _items(m.Namespace.from_json), idempotent=True)


def create_token(name: str, namespaces: Sequence[str], capabilities: Sequence[str], expires_in: Optional[int], rate_limit: Optional[int]) -> Call[m.CreatedToken]:
    body: Dict[str, Any] = {"name": name, "namespaces": list(namespaces), "capabilities": list(capabilities)}
    if expires_in is not None:
        body["expires_in_secs"] = expires_in
    if rate_limit is not None:
        body["rate_limit_per_sec"] = rate_limit
    return Call("POST", "/v1/sys/tokens", m.CreatedToken.from_json, json=body)


def list_tokens(cursor: Optional[str], limit: int) -> Call[Page[m.TokenInfo]]:
    return Call("GET", "/v1/sys/tokens", _page(m.TokenInfo.from_json), params=_page_params(cursor, limit), idempotent=True)


def revoke_token(token_id: str) -> Call[None]:
    return Call("DELETE", f"/v1/sys/tokens/{seg(token_id)}", _none, idempotent=True)


def whoami() -> Call[Any]:
    return Call("GET", "/v1/sys/tokens/self", lambda j: j, idempotent=True)


def key_status(ns: str) -> Call[m.KeyStatus]:
    return Call("GET", f"/v1/ns/{seg(ns)}/keys", m.KeyStatus.from_json, idempotent=True)


def rotate_key(ns: str) -> Call[m.KeyStatus]:
    return Call("POST", f"/v1/ns/{seg(ns)}/keys/rotate", m.KeyStatus.from_json)


def rewrap(ns: str) -> Call[m.RewrapReport]:
    return Call("POST", f"/v1/ns/{seg(ns)}/keys/rewrap", m.RewrapReport.from_json, idempotent=True)


def retire_keys(ns: str, below: int) -> Call[m.KeyStatus]:
    return Call("POST", f"/v1/ns/{seg(ns)}/keys/min-version", m.KeyStatus.from_json, json={"version": below}, idempotent=True)


def query_audit(since: Optional[str], until: Optional[str], token_id: Optional[str], action: Optional[str], name: Optional[str], cursor: Optional[str], limit: int) -> Call[Page[m.AuditRecord]]:
    params = _page_params(cursor, limit, {"since": since, "until": until, "token_id": token_id, "action": action, "name": name})
    return Call("GET", "/v1/sys/audit", _page(m.AuditRecord.from_json), params=params, idempotent=True)


def verify_audit() -> Call[m.VerifyReport]:
    return Call("POST", "/v1/sys/audit/verify", m.VerifyReport.from_json, idempotent=True)


def jobs() -> Call[Any]:
    return Call("GET", "/v1/sys/jobs", lambda j: j, idempotent=True)
