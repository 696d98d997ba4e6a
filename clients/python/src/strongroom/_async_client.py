"""The asynchronous client. This file is the source of the synchronous client too:
``tools/unasync.py`` writes ``_sync_client.py`` from it (a test keeps the two in step), so
both clients have the same calls, the same retries and the same streaming.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import ssl
from pathlib import Path
from typing import IO, Any, AsyncIterator, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

import httpx

from . import _api as api
from . import models as m
from ._config import RETRYABLE_CODES, Settings, TimeLike, error_from, rfc3339
from .errors import IntegrityError, StrongroomError, TransportError

T = TypeVar("T")

#: What can be uploaded: a path, or a binary file object (read in chunks, never whole).
Source = Union[str, "os.PathLike[str]", IO[bytes]]
CHUNK = 1024 * 1024


def _trust(ca_file: Optional[str]) -> Union[ssl.SSLContext, bool]:
    """Certificates to trust for https: the system's, or only the CA in ``ca_file`` (else
    ``STRONGROOM_CA_FILE``), as the CLI's ``--ca-file``."""
    path = ca_file or os.environ.get("STRONGROOM_CA_FILE")
    if not path:
        return True
    return ssl.create_default_context(cafile=path)


class AsyncStrongroom:
    """A Strongroom client.

    ``addr``, ``token`` and ``namespace`` default to ``STRONGROOM_ADDR``, ``STRONGROOM_TOKEN``
    and ``STRONGROOM_NAMESPACE``. Data calls act in the client's namespace (see
    ``in_namespace``). Over https, ``ca_file`` (else ``STRONGROOM_CA_FILE``) names the only CA
    to trust (a private CA); without it the system's CAs are trusted.
    Idempotent calls are retried on 429 / 503 and lost connections, with
    exponential back-off that honours ``Retry-After``; other calls are never sent twice.
    """

    def __init__(
        self,
        addr: Optional[str] = None,
        token: Optional[str] = None,
        namespace: Optional[str] = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.2,
        max_backoff: float = 10.0,
        http: Optional[httpx.AsyncClient] = None,
        ca_file: Optional[str] = None,
    ) -> None:
        self._settings = Settings.resolve(addr, token, namespace, timeout, retries, backoff, max_backoff)
        self._own_http = http is None
        self._http = http or httpx.AsyncClient(timeout=timeout, verify=_trust(ca_file))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(addr={self._settings.addr!r}, namespace={self._settings.namespace!r})"

    @property
    def addr(self) -> str:
        return self._settings.addr

    @property
    def namespace(self) -> str:
        if not self._settings.namespace:
            raise StrongroomError("no namespace: pass namespace=… or set STRONGROOM_NAMESPACE", code="no_namespace")
        return self._settings.namespace

    def in_namespace(self, namespace: str) -> "AsyncStrongroom":
        """The same client (same connections) acting in another namespace."""
        other = object.__new__(type(self))
        other.__dict__.update(self.__dict__)
        other._own_http = False
        other._settings = Settings(**{**self._settings.__dict__, "namespace": namespace})
        return other

    async def aclose(self) -> None:
        if self._own_http:
            await self._http.aclose()

    async def __aenter__(self) -> "AsyncStrongroom":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    # --- transport -----------------------------------------------------------------------

    def _headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        headers = {"Authorization": f"Bearer {self._settings.token}"}
        headers.update(extra or {})
        return headers

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Optional[Mapping[str, str]] = None,
        json: Any = None,
        idempotent: bool,
    ) -> httpx.Response:
        attempt = 0
        while True:
            try:
                response = await self._http.request(
                    method, self._settings.addr + path, params=params, json=json, headers=self._headers()
                )
            except httpx.TransportError as e:
                if not idempotent or attempt >= self._settings.retries:
                    raise TransportError(f"{method} {path}: {type(e).__name__}") from None
                await asyncio.sleep(self._settings.delay(attempt, None))
                attempt += 1
                continue
            if response.status_code < 400:
                return response
            error = error_from(response.status_code, response.headers, response.content)
            if idempotent and error.code in RETRYABLE_CODES and attempt < self._settings.retries:
                await asyncio.sleep(self._settings.delay(attempt, error.retry_after))
                attempt += 1
                continue
            raise error

    async def _do(self, call: "api.Call[T]") -> T:
        response = await self._send(call.method, call.path, params=call.params, json=call.json, idempotent=call.idempotent)
        if response.status_code == 204 or not response.content or call.method == "HEAD":
            return call.parse(None)
        return call.parse(response.json())

    # --- credentials ---------------------------------------------------------------------

    async def put_secret(
        self, user: str, name: str, values: Mapping[str, Any], *, cas: Optional[int] = None, max_versions: Optional[int] = None
    ) -> m.VersionInfo:
        """Stores a generic secret (any JSON object) as the next version; ``cas`` makes it
        check-and-set (0: it must not exist yet)."""
        return await self._do(api.put_credential(self.namespace, user, name, api.secret(values), cas, max_versions))

    async def put_oauth2(
        self,
        user: str,
        name: str,
        access_token: str,
        *,
        refresh_token: Optional[str] = None,
        expires_at: Optional[TimeLike] = None,
        scope: Optional[str] = None,
        token_type: Optional[str] = None,
        provider: Optional[str] = None,
        extra: Optional[Mapping[str, Any]] = None,
        cas: Optional[int] = None,
    ) -> m.VersionInfo:
        """Stores an OAuth token set; with ``provider`` set, Strongroom refreshes it for you."""
        data = api.oauth2(access_token, refresh_token, rfc3339(expires_at), scope, token_type, provider, extra)
        return await self._do(api.put_credential(self.namespace, user, name, data, cas, None))

    async def put_credential(self, user: str, name: str, data: Mapping[str, Any], *, cas: Optional[int] = None) -> m.VersionInfo:
        """Stores credential data as the server takes it (``{"type": "oauth2"|"secret", …}``)."""
        return await self._do(api.put_credential(self.namespace, user, name, data, cas, None))

    async def put_credentials(self, items: Iterable[Tuple[str, str, Mapping[str, Any]]], *, cas: Optional[int] = None) -> m.BatchResult:
        """Writes up to 1,000 ``(user, name, data)`` in one call and one transaction; each item
        gets its own result (``cas=0`` skips what exists: those come back as ``409``)."""
        body = []
        for user, name, data in items:
            item: Dict[str, Any] = {"user": user, "name": name, "data": dict(data)}
            if cas is not None:
                item["options"] = {"cas": cas}
            body.append(item)
        return await self._do(api.put_credentials_batch(self.namespace, body))

    async def get_credential(self, user: str, name: str, *, version: Optional[int] = None) -> m.Credential:
        return await self._do(api.get_credential(self.namespace, user, name, version))

    async def get_secret(self, user: str, name: str, *, version: Optional[int] = None) -> Dict[str, Any]:
        """A generic secret's object (or a token set's fields)."""
        return (await self.get_credential(user, name, version=version)).secret

    async def credential_exists(self, user: str, name: str) -> bool:
        from .errors import NotFound

        try:
            await self._do(api.credential_exists(self.namespace, user, name))
            return True
        except NotFound:
            return False

    async def credential_metadata(self, user: str, name: str) -> m.CredentialMetadata:
        return await self._do(api.credential_metadata(self.namespace, user, name))

    async def iter_credentials(self, user: str, *, page_size: int = 100) -> AsyncIterator[m.CredentialSummary]:
        """A user's credentials, every page (in a stable order that is not by name)."""
        cursor: Optional[str] = None
        while True:
            items, cursor = await self._do(api.list_credentials(self.namespace, user, cursor, page_size))
            for item in items:
                yield item
            if not cursor:
                return

    async def delete_credential(self, user: str, name: str, *, versions: Optional[Sequence[int]] = None) -> None:
        """Soft-deletes the current version (or ``versions``); ``undelete`` restores them."""
        if versions:
            await self._do(api.versions_call(self.namespace, user, name, "delete", versions))
        else:
            await self._do(api.delete_current(self.namespace, user, name))

    async def undelete_credential(self, user: str, name: str, versions: Sequence[int]) -> int:
        return await self._do(api.versions_call(self.namespace, user, name, "undelete", versions))

    async def destroy_credential(self, user: str, name: str, versions: Sequence[int]) -> int:
        """Erases the ciphertext of ``versions`` for good."""
        return await self._do(api.versions_call(self.namespace, user, name, "destroy", versions))

    async def purge_credential(self, user: str, name: str) -> None:
        """Removes the credential with its whole history."""
        await self._do(api.purge_credential(self.namespace, user, name))

    async def access_token(self, user: str, name: str, *, min_valid: int = 0, force: bool = False) -> m.AccessToken:
        """An access token valid for at least ``min_valid`` seconds, refreshed exactly once
        across every caller and node when it is due (raises ``NeedsReauthorization`` when the
        user must sign in again). ``force`` refreshes even a token that looks valid (the
        provider revoked it early), still once across callers; after a failed refresh every
        caller gets ``RefreshFailed`` until the back-off allows the next attempt."""
        return await self._do(api.access_token(self.namespace, user, name, min_valid, force))

    async def revoke_credential(self, user: str, name: str) -> Any:
        """Revokes the grant at the provider, then deletes the credential."""
        return await self._do(api.revoke_credential(self.namespace, user, name))

    async def verify_credential(self, user: str, name: str) -> Any:
        return await self._do(api.verify_credential(self.namespace, user, name))

    async def credential_statuses(self, *, status: Optional[str] = None) -> List[m.CredentialStatus]:
        return await self._do(api.credential_statuses(self.namespace, status))

    # --- providers -----------------------------------------------------------------------

    async def put_provider(
        self,
        name: str,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        auth_method: Optional[str] = None,
        revocation_url: Optional[str] = None,
        verify_url: Optional[str] = None,
        refresh_margin_secs: Optional[int] = None,
        extra_params: Optional[Mapping[str, str]] = None,
    ) -> Any:
        body: Dict[str, Any] = {"token_url": token_url, "client_id": client_id, "client_secret": client_secret}
        for k, v in (
            ("auth_method", auth_method),
            ("revocation_url", revocation_url),
            ("verify_url", verify_url),
            ("refresh_margin_secs", refresh_margin_secs),
            ("extra_params", dict(extra_params) if extra_params else None),
        ):
            if v is not None:
                body[k] = v
        return await self._do(api.put_provider(self.namespace, name, body))

    async def providers(self) -> List[m.Provider]:
        return await self._do(api.list_providers(self.namespace))

    async def delete_provider(self, name: str) -> None:
        await self._do(api.delete_provider(self.namespace, name))

    # --- records -------------------------------------------------------------------------

    async def put_collection(
        self,
        name: str,
        *,
        scope: str = "user",
        ttl_secs: Optional[int] = None,
        searchable: Sequence[str] = (),
        unique: Sequence[str] = (),
        fields: Optional[Mapping[str, Mapping[str, Any]]] = None,
        additional_fields: bool = True,
    ) -> Any:
        """Declares a collection: ``scope`` "user" or "namespace", TTL, keyed-hash look-ups
        on ``searchable`` / ``unique`` fields, typed ``fields`` with defaults."""
        settings: Dict[str, Any] = {
            "scope": scope,
            "searchable": list(searchable),
            "unique": list(unique),
            "additional_fields": additional_fields,
        }
        if ttl_secs is not None:
            settings["ttl_secs"] = ttl_secs
        if fields:
            settings["fields"] = {k: dict(v) for k, v in fields.items()}
        return await self._do(api.put_collection(self.namespace, name, settings))

    async def collections(self) -> List[Any]:
        return await self._do(api.list_collections(self.namespace))

    async def put_record(
        self, collection: str, key: str, document: Mapping[str, Any], *, user: Optional[str] = None, if_version: Optional[int] = None
    ) -> m.Record:
        """Writes a document (a user's, or the namespace's when ``user`` is None)."""
        return await self._do(api.put_record(self.namespace, collection, user, key, document, if_version))

    async def get_record(self, collection: str, key: str, *, user: Optional[str] = None) -> m.Record:
        return await self._do(api.get_record(self.namespace, collection, user, key))

    async def delete_record(self, collection: str, key: str, *, user: Optional[str] = None) -> None:
        await self._do(api.delete_record(self.namespace, collection, user, key))

    async def iter_records(self, collection: str, *, user: Optional[str] = None, page_size: int = 100) -> AsyncIterator[m.Record]:
        cursor: Optional[str] = None
        while True:
            items, cursor = await self._do(api.list_records(self.namespace, collection, user, cursor, page_size))
            for item in items:
                yield item
            if not cursor:
                return

    async def lookup(self, collection: str, field: str, value: Any) -> List[m.Record]:
        """Documents whose ``field`` equals ``value`` (a searchable or unique field)."""
        return await self._do(api.lookup_records(self.namespace, collection, field, value))

    # --- events --------------------------------------------------------------------------

    async def append_events(self, user: str, events: Sequence[Mapping[str, Any]]) -> Any:
        """Appends up to 1,000 events in one transaction: ``{"type", "details", "time"?}``."""
        normalized = []
        for e in events:
            event = dict(e)
            if "time" in event:
                event["time"] = rfc3339(event["time"])
            normalized.append(event)
        return await self._do(api.append_events(self.namespace, user, normalized))

    async def log_event(self, user: str, type: str, details: Optional[Mapping[str, Any]] = None, *, time: Optional[TimeLike] = None) -> Any:
        event: Dict[str, Any] = {"type": type, "details": dict(details or {})}
        if time is not None:
            event["time"] = time
        return await self.append_events(user, [event])

    async def iter_events(
        self,
        user: str,
        *,
        type: Optional[str] = None,
        since: Optional[TimeLike] = None,
        until: Optional[TimeLike] = None,
        page_size: int = 100,
    ) -> AsyncIterator[m.Event]:
        """A user's events, newest first."""
        cursor: Optional[str] = None
        while True:
            call = api.query_events(self.namespace, user, type, rfc3339(since), rfc3339(until), cursor, page_size)
            items, cursor = await self._do(call)
            for item in items:
                yield item
            if not cursor:
                return

    async def set_event_retention(self, days: Optional[int]) -> Any:
        return await self._do(api.event_retention(self.namespace, days))

    # --- files ---------------------------------------------------------------------------

    async def upload(
        self, user: str, source: Source, *, name: Optional[str] = None, content_type: Optional[str] = None, size: Optional[int] = None
    ) -> m.FileInfo:
        """Streams a file (a path or a binary file object) in 1 MiB chunks; the SHA-256 of
        what was sent is computed on the way and checked against what the server stored."""
        own = isinstance(source, (str, os.PathLike))
        f: IO[bytes] = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source
        if name is None:
            name = os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else getattr(f, "name", "upload")
            name = os.path.basename(str(name))
        if size is None and own:
            size = os.path.getsize(source)  # type: ignore[arg-type]
        hasher = hashlib.sha256()

        async def chunks() -> AsyncIterator[bytes]:
            while True:
                block = f.read(CHUNK)
                if not block:
                    return
                hasher.update(block)
                yield block

        headers = {"Content-Type": content_type or "application/octet-stream"}
        if size is not None:
            headers["Content-Length"] = str(size)
        try:
            try:
                response = await self._http.post(
                    self._settings.addr + api.files_path(self.namespace, user),
                    params={"name": name},
                    content=chunks(),
                    headers=self._headers(headers),
                    timeout=httpx.Timeout(self._settings.timeout, read=None, write=None),
                )
            except httpx.TransportError as e:
                raise TransportError(f"upload: {type(e).__name__}") from None
        finally:
            if own:
                f.close()
        if response.status_code >= 400:
            raise error_from(response.status_code, response.headers, response.content)
        info = m.FileInfo.from_json(response.json())
        if info.sha256 != hasher.hexdigest():
            await self.delete_file(user, info.id)
            raise IntegrityError("the stored file does not match what was sent; it was deleted", status=None)
        return info

    async def iter_download(
        self, user: str, file_id: str, *, range: Optional[Tuple[int, Optional[int]]] = None, chunk_size: int = CHUNK
    ) -> AsyncIterator[bytes]:
        """The file's bytes as they arrive (``range``: first byte, last byte inclusive or None)."""
        headers = {}
        if range is not None:
            start, end = range
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        path = f"{api.files_path(self.namespace, user)}/{api.seg(file_id)}/content"
        async with self._http.stream("GET", self._settings.addr + path, headers=self._headers(headers)) as response:
            if response.status_code >= 400:
                body = await response.aread()
                raise error_from(response.status_code, response.headers, body)
            try:
                async for block in response.aiter_bytes(chunk_size):
                    yield block
            except httpx.TransportError:
                raise IntegrityError("the download was cut off before its end (damage or a lost connection)", status=None) from None

    async def download(self, user: str, file_id: str, dest: Union[str, "os.PathLike[str]"], *, range: Optional[Tuple[int, Optional[int]]] = None) -> Path:
        """Streams a file to ``dest`` (written to ``<dest>.partial``, renamed when complete)."""
        target = Path(dest)
        partial = target.with_name(target.name + ".partial")
        try:
            with open(partial, "wb") as out:
                async for block in self.iter_download(user, file_id, range=range):
                    out.write(block)
            partial.replace(target)
        finally:
            if partial.exists():
                partial.unlink()
        return target

    async def file_info(self, user: str, file_id: str) -> m.FileInfo:
        return await self._do(api.file_info(self.namespace, user, file_id))

    async def iter_files(self, user: str, *, page_size: int = 100) -> AsyncIterator[m.FileInfo]:
        cursor: Optional[str] = None
        while True:
            items, cursor = await self._do(api.list_files(self.namespace, user, cursor, page_size))
            for item in items:
                yield item
            if not cursor:
                return

    async def delete_file(self, user: str, file_id: str) -> None:
        await self._do(api.delete_file(self.namespace, user, file_id))

    async def file_link(self, user: str, file_id: str, *, expires_in: int = 3600, one_time: bool = False) -> m.DownloadLink:
        """A signed download link that needs no token (``.url``)."""
        return await self._do(api.file_link(self.namespace, user, file_id, expires_in, one_time, self._settings.addr))

    async def file_policy(self) -> Any:
        return await self._do(api.file_policy(self.namespace))

    async def set_file_policy(self, **policy: Any) -> Any:
        return await self._do(api.set_file_policy(self.namespace, policy))

    # --- export and erasure ----------------------------------------------------------------

    async def export(self, user: str) -> Dict[str, Any]:
        """Everything held about a user (credentials decrypted, records, events, file list)."""
        result: Dict[str, Any] = await self._do(api.export_user(self.namespace, user))
        return result

    async def export_archive(self, user: str, dest: Union[str, "os.PathLike[str]"]) -> Path:
        """The export with the user's files as one tar archive, streamed to ``dest``."""
        target = Path(dest)
        partial = target.with_name(target.name + ".partial")
        path = f"/v1/ns/{api.seg(self.namespace)}/users/{api.seg(user)}/export/archive"
        try:
            async with self._http.stream("GET", self._settings.addr + path, headers=self._headers()) as response:
                if response.status_code >= 400:
                    body = await response.aread()
                    raise error_from(response.status_code, response.headers, body)
                with open(partial, "wb") as out:
                    async for block in response.aiter_bytes(CHUNK):
                        out.write(block)
            partial.replace(target)
        finally:
            if partial.exists():
                partial.unlink()
        return target

    async def erase(self, user: str, *, confirm: str) -> m.ErasureReport:
        """Erases a user completely (crypto-shredding, then purge). ``confirm`` must repeat the
        user id, so a wrong variable cannot erase someone."""
        if confirm != user:
            raise StrongroomError("confirm must repeat the user id", code="confirmation_mismatch")
        return await self._do(api.erase_user(self.namespace, user))

    async def erasure_status(self, user: str) -> Any:
        return await self._do(api.erasure_status(self.namespace, user))

    async def iter_users(self, *, page_size: int = 100) -> AsyncIterator[str]:
        cursor: Optional[str] = None
        while True:
            items, cursor = await self._do(api.list_users(self.namespace, cursor, page_size))
            for item in items:
                yield item
            if not cursor:
                return

    # --- operators -----------------------------------------------------------------------

    async def create_namespace(self, name: str) -> m.Namespace:
        return await self._do(api.create_namespace(name))

    async def namespaces(self) -> List[m.Namespace]:
        return await self._do(api.list_namespaces())

    async def create_token(
        self,
        name: str,
        *,
        namespaces: Sequence[str],
        capabilities: Sequence[str],
        expires_in: Optional[int] = None,
        rate_limit: Optional[int] = None,
    ) -> m.CreatedToken:
        return await self._do(api.create_token(name, namespaces, capabilities, expires_in, rate_limit))

    async def iter_tokens(self, *, page_size: int = 100) -> AsyncIterator[m.TokenInfo]:
        cursor: Optional[str] = None
        while True:
            items, cursor = await self._do(api.list_tokens(cursor, page_size))
            for item in items:
                yield item
            if not cursor:
                return

    async def revoke_token(self, token_id: str) -> None:
        await self._do(api.revoke_token(token_id))

    async def whoami(self) -> Any:
        return await self._do(api.whoami())

    async def key_status(self, namespace: Optional[str] = None) -> m.KeyStatus:
        return await self._do(api.key_status(namespace or self.namespace))

    async def rotate_key(self, namespace: Optional[str] = None) -> m.KeyStatus:
        return await self._do(api.rotate_key(namespace or self.namespace))

    async def rewrap(self, namespace: Optional[str] = None) -> m.RewrapReport:
        return await self._do(api.rewrap(namespace or self.namespace))

    async def retire_keys(self, below: int, namespace: Optional[str] = None) -> m.KeyStatus:
        return await self._do(api.retire_keys(namespace or self.namespace, below))

    async def iter_audit(
        self,
        *,
        since: Optional[TimeLike] = None,
        until: Optional[TimeLike] = None,
        token_id: Optional[str] = None,
        action: Optional[str] = None,
        name: Optional[str] = None,
        page_size: int = 100,
    ) -> AsyncIterator[m.AuditRecord]:
        """Audit entries, oldest first (``name``: a credential name or event type)."""
        cursor: Optional[str] = None
        while True:
            call = api.query_audit(rfc3339(since), rfc3339(until), token_id, action, name, cursor, page_size)
            items, cursor = await self._do(call)
            for item in items:
                yield item
            if not cursor:
                return

    async def verify_audit(self) -> m.VerifyReport:
        return await self._do(api.verify_audit())

    async def jobs(self) -> Any:
        return await self._do(api.jobs())
