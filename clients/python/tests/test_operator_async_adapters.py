"""Operator calls, the async client, retries and rate limits, the drop-in adapters, and the
generated sync client being current."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, Iterator, List

import pytest

from strongroom import AsyncStrongroom, Strongroom, errors
from strongroom.adapters.reddit import StrongroomTokenStorage
from strongroom.adapters.slack import StrongroomCredentialService

from conftest import Server


def test_namespaces_tokens_keys_audit_and_jobs(operator: Strongroom, server: Server) -> None:
    operator.create_namespace("py-ops")
    assert "py-ops" in [n.name for n in operator.namespaces()]
    made = operator.create_token("py-reader", namespaces=["py-ops"], capabilities=["read"], expires_in=3600)
    assert made.token.startswith("sr_") and made.token not in repr(made)
    assert made.info.id in {t.id for t in operator.iter_tokens(page_size=2)}
    reader = Strongroom(server.addr, made.token, namespace="py-ops")
    with pytest.raises(errors.Forbidden):
        reader.put_secret("u", "c", {"k": "v"})
    operator.revoke_token(made.info.id)
    with pytest.raises(errors.Unauthenticated):
        reader.get_secret("u", "c")
    ops = operator.in_namespace("py-ops")
    ops.put_secret("u1", "c", {"k": "v"})
    assert ops.rotate_key().primary_version == 2
    assert ops.rewrap().remaining == 0
    assert ops.retire_keys(2).min_decrypt_version == 2
    assert ops.get_secret("u1", "c") == {"k": "v"}
    entries = list(operator.iter_audit(action="credential.put", name="c"))
    assert entries and all(e.target.startswith("~") for e in entries)
    assert operator.verify_audit().valid
    assert operator.jobs()


def test_the_async_client_does_the_same(server: Server) -> None:
    async def scenario() -> None:
        async with AsyncStrongroom(server.addr, server.app, namespace="app") as c:
            await c.put_secret("async:1", "k", {"v": 1})
            await asyncio.gather(*(c.put_secret("async:1", f"k{i}", {"v": i}) for i in range(10)))
            assert await c.get_secret("async:1", "k") == {"v": 1}
            names = [s.name async for s in c.iter_credentials("async:1", page_size=4)]
            assert len(names) == 11
            await c.log_event("async:1", "play", {"song": "x"})
            assert [e.type async for e in c.iter_events("async:1")] == ["play"]
            info = await c.upload("async:1", __import__("io").BytesIO(b"abc" * 1000), name="x.bin")
            assert b"".join([b async for b in c.iter_download("async:1", info.id)]) == b"abc" * 1000
            with pytest.raises(errors.NotFound):
                await c.get_secret("async:1", "missing")

    asyncio.run(scenario())


class _Flaky(BaseHTTPRequestHandler):
    """Answers 503 (Retry-After: 0) to the first two requests, then 200."""

    seen: List[str] = []

    def _answer(self) -> None:
        _Flaky.seen.append(self.command)
        if len(_Flaky.seen) <= 2:
            body = json.dumps({"error": {"code": "unavailable", "message": "storage is temporarily unavailable"}}).encode()
            self.send_response(503)
            self.send_header("Retry-After", "0")
        else:
            body = json.dumps({"name": "c", "data": {"type": "secret", "data": {"k": "v"}}, "metadata": {"version": 1, "created_at": "2026-01-01T00:00:00Z", "deleted_at": None, "destroyed": False}}).encode()
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = _answer
    do_PUT = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    httpd = HTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    _Flaky.seen = []
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_idempotent_calls_are_retried_others_never(flaky: str) -> None:
    c = Strongroom(flaky, "sr_0000000000000000_x", namespace="app", backoff=0.01)
    assert c.get_secret("u", "c") == {"k": "v"}
    assert _Flaky.seen == ["GET", "GET", "GET"]
    _Flaky.seen = []
    with pytest.raises(errors.Unavailable) as e:
        c.put_secret("u", "c", {"k": "v"})
    assert _Flaky.seen == ["PUT"] and e.value.retry_after == 0
    _Flaky.seen = []
    with pytest.raises(errors.Unavailable):
        Strongroom(flaky, "sr_0000000000000000_x", namespace="app", retries=1, backoff=0.01).get_secret("u", "c")
    assert _Flaky.seen == ["GET", "GET"]


def test_rate_limits_are_waited_out_for_reads(operator: Strongroom, server: Server) -> None:
    limited = operator.create_token("py-limited", namespaces=["app"], capabilities=["read", "write"], rate_limit=2)
    c = Strongroom(server.addr, limited.token, namespace="app", backoff=0.05)
    c.put_secret("rl:1", "k", {"v": 1})
    for _ in range(6):
        assert c.get_secret("rl:1", "k") == {"v": 1}
    fast = Strongroom(server.addr, limited.token, namespace="app", retries=0)
    with pytest.raises(errors.RateLimited) as e:
        for _ in range(20):
            fast.get_secret("rl:1", "k")
    assert e.value.retry_after is not None and e.value.status == 429


def test_reddit_token_storage_drop_in(server: Server) -> None:
    async def scenario() -> None:
        storage = StrongroomTokenStorage(namespace="app", addr=server.addr, token=server.app)
        await storage.initialize()
        token = {"access_token": "a", "refresh_token": "r", "expires_at": 1700000000, "scope": "identity read"}
        assert not await storage.has_token("reddit:alice")
        assert await storage.get_token("reddit:alice") is None
        await storage.store_token("reddit:alice", token)
        assert await storage.has_token("reddit:alice")
        assert await storage.get_token("reddit:alice") == token
        await storage.delete_token("reddit:alice")
        await storage.delete_token("reddit:alice")
        assert not await storage.has_token("reddit:alice")
        await storage.close()

    asyncio.run(scenario())


class _SlackAuthTest(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        ok = self.headers.get("Authorization") == "Bearer xoxb-good"
        body = json.dumps({"ok": ok}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_slack_credential_service_drop_in(server: Server) -> None:
    httpd = HTTPServer(("127.0.0.1", 0), _SlackAuthTest)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/api/auth.test"
    service = StrongroomCredentialService(namespace="app", addr=server.addr, token=server.app, auth_test_url=url)
    assert service.store_credentials("W_DEFAULT", bot_token="xoxb-good", app_token="xapp-1", signing_secret="s")
    assert service.get_credentials("W_DEFAULT") == {"bot_token": "xoxb-good", "app_token": "xapp-1", "signing_secret": "s"}
    assert service.verify_credentials("W_DEFAULT")
    service.store_credentials("W_DEFAULT", bot_token="xoxb-revoked")
    assert not service.verify_credentials("W_DEFAULT")
    assert service.get_credentials("W_NOPE") is None and not service.verify_credentials("W_NOPE")
    assert "xoxb" not in repr(service)
    httpd.shutdown()


def test_the_sync_client_is_generated_from_the_async_one() -> None:
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, str(root / "tools" / "unasync.py"), "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
