"""Credentials through the real server: versions, check-and-set, soft delete and destroy,
metadata, listing, and the OAuth refresh behind ``access_token`` (against a local token
endpoint that counts its calls)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Iterator, List

import pytest

import strongroom
from strongroom import Strongroom, errors


def test_versions_cas_delete_undelete_destroy(client: Strongroom, user: str) -> None:
    v1 = client.put_secret(user, "github", {"token": "ghp_1"})
    v2 = client.put_secret(user, "github", {"token": "ghp_2"}, cas=v1.version)
    assert (v1.version, v2.version) == (1, 2)
    with pytest.raises(errors.VersionConflict) as e:
        client.put_secret(user, "github", {"token": "x"}, cas=1)
    assert e.value.status == 409 and e.value.code == "version_conflict"
    with pytest.raises(errors.VersionConflict):
        client.put_secret(user, "github", {"token": "x"}, cas=0)
    assert client.get_secret(user, "github") == {"token": "ghp_2"}
    assert client.get_secret(user, "github", version=1) == {"token": "ghp_1"}
    assert client.credential_exists(user, "github")
    client.delete_credential(user, "github")
    with pytest.raises(errors.VersionDeleted):
        client.get_credential(user, "github")
    assert not client.credential_exists(user, "github")
    client.undelete_credential(user, "github", [2])
    assert client.get_secret(user, "github") == {"token": "ghp_2"}
    client.destroy_credential(user, "github", [1])
    with pytest.raises(errors.VersionDestroyed):
        client.get_credential(user, "github", version=1)
    meta = client.credential_metadata(user, "github")
    assert (meta.current_version, [v.destroyed for v in meta.versions]) == (2, [True, False])
    client.purge_credential(user, "github")
    with pytest.raises(errors.NotFound):
        client.credential_metadata(user, "github")


def test_values_come_back_byte_for_byte_and_listing_walks_every_page(client: Strongroom, user: str) -> None:
    client.put_secret(user, "cfg", {"b": 1, "a": 18446744073709551617, "c": "x"})
    assert list(client.get_secret(user, "cfg")) == ["b", "a", "c"]
    assert client.get_secret(user, "cfg")["a"] == 18446744073709551617
    for i in range(7):
        client.put_secret(user, f"key-{i}", {"i": i})
    names = sorted(c.name for c in client.iter_credentials(user, page_size=3))
    assert names == ["cfg"] + [f"key-{i}" for i in range(7)]


def test_secrets_never_appear_in_repr_or_errors(client: Strongroom, user: str, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    marker = "PLANTED-secret-5f1e"
    client.put_oauth2(user, "spotify", marker, refresh_token=marker + "-rt")
    cred = client.get_credential(user, "spotify")
    assert cred.data["access_token"] == marker
    token = client.access_token(user, "spotify")
    assert token.access_token == marker
    for text in (repr(cred), repr(token), repr(client), str(client.__dict__.get("_settings"))):
        assert marker not in text and client._settings.token not in text
    with pytest.raises(errors.StrongroomError) as e:
        client.put_credential(user, "spotify", {"type": "oauth2", "access_token": marker, "bogus": marker})
    assert isinstance(e.value, errors.InvalidJson)
    assert marker not in str(e.value) and marker not in repr(e.value)
    assert marker not in caplog.text and client._settings.token not in caplog.text


class _Provider(BaseHTTPRequestHandler):
    calls: List[str] = []

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", "0"))
        form = self.rfile.read(length).decode()
        _Provider.calls.append(form)
        body = json.dumps({"access_token": f"fresh-{len(_Provider.calls)}", "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Provider)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Provider.calls = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}/token"
    httpd.shutdown()


def test_access_token_refreshes_exactly_once(client: Strongroom, user: str, provider: str) -> None:
    client.put_provider("pytest-idp", token_url=provider, client_id="cid", client_secret="csecret", refresh_margin_secs=60)
    assert [p.name for p in client.providers() if p.name == "pytest-idp"] == ["pytest-idp"]
    expired = datetime.now(timezone.utc) - timedelta(minutes=5)
    client.put_oauth2(user, "idp", "old", refresh_token="rt-1", expires_at=expired, provider="pytest-idp")
    results = []
    threads = [threading.Thread(target=lambda: results.append(client.access_token(user, "idp", min_valid=60))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.access_token for r in results} == {"fresh-1"}
    assert len(_Provider.calls) == 1, _Provider.calls
    assert sum(r.refreshed for r in results) == 1
    statuses = {s.name: s.status for s in client.credential_statuses() if s.user == user}
    assert statuses == {"idp": "valid"}
    # A valid token refreshed on request (the provider revoked it early).
    forced = client.access_token(user, "idp", force=True)
    assert (forced.refreshed, len(_Provider.calls)) == (True, 2)
    # No refresh token: the user must sign in again.
    client.put_oauth2(user, "gone", "old", expires_at=int(expired.timestamp()), provider="pytest-idp")
    with pytest.raises(errors.NeedsReauthorization):
        client.access_token(user, "gone", min_valid=60)
    client.delete_provider("pytest-idp")


def test_every_server_code_has_its_class() -> None:
    import re
    from pathlib import Path

    source = (Path(__file__).resolve().parents[3] / "crates/server/src/error_code.rs").read_text()
    codes = set(re.findall(r'=> "([a-z_]+)",', source))
    assert codes and codes <= set(strongroom.errors.BY_CODE), codes - set(strongroom.errors.BY_CODE)
    assert issubclass(errors.RateLimited, errors.Retryable) and issubclass(errors.IntegrityError, errors.ServerError)
