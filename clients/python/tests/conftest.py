"""The real server for the client's tests: one `strongroom serve` per session on a fresh data
directory (SQLite, files in a folder), an operator token, namespace `app` and an app token.

The binary is ``$STRONGROOM_BIN``, else ``target/debug/strongroom`` of this repository (built
by ``cargo test``, which ``scripts/test`` runs first).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from strongroom import Strongroom

REPO = Path(__file__).resolve().parents[3]
#: Secret values the tests send; none may reach the server's log.
PLANTED = ("PLANTED-secret-5f1e", "BQD-example", "AQC-example", "xoxb-good", "xoxb-revoked", "ghp_2")


@dataclass
class Server:
    addr: str
    admin: str
    app: str
    data_dir: Path
    log: Path


def _binary() -> str:
    path = os.environ.get("STRONGROOM_BIN") or str(REPO / "target" / "debug" / "strongroom")
    if not os.path.exists(path):
        pytest.fail(f"no strongroom binary at {path}: run cargo build, or set STRONGROOM_BIN")
    return path


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    work = Path(tempfile.mkdtemp(prefix="strongroom-pytest-"))
    log = work / "server.log"
    proc = subprocess.Popen(
        [_binary(), "serve", "--data-dir", str(work / "data"), "--listen", "127.0.0.1:0", "--log-format", "json"],
        stdout=subprocess.PIPE,
        stderr=open(log, "wb"),
        stdin=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "debug"},
        text=True,
    )
    assert proc.stdout is not None
    admin = addr = None
    deadline = time.time() + 30
    while time.time() < deadline and addr is None:
        line = proc.stdout.readline()
        if not line:
            pytest.fail("the server exited: " + log.read_text())
        if line.startswith("Admin token (shown once; store it safely): "):
            admin = line.split(": ", 1)[1].strip()
        if line.startswith("Listening on "):
            addr = line.split("Listening on ", 1)[1].strip()
    assert addr and admin
    stdout = proc.stdout
    threading.Thread(target=lambda: [None for _ in stdout], daemon=True).start()
    while httpx.get(addr + "/v1/sys/ready").status_code != 200:
        time.sleep(0.05)
    op = Strongroom(addr, admin)
    op.create_namespace("app")
    app = op.create_token("pytest-app", namespaces=["app"], capabilities=["read", "write", "delete", "list", "export", "erase", "admin"]).token
    op.close()
    yield Server(addr, admin, app, work / "data", log)
    proc.terminate()
    proc.wait(timeout=30)
    # After every test: no secret the tests sent reached the server's log.
    text = log.read_text()
    for marker in PLANTED:
        assert marker not in text, f"{marker} reached the server log"
    assert app.split("_")[-1] not in text and admin.split("_")[-1] not in text


@pytest.fixture
def client(server: Server) -> Iterator[Strongroom]:
    with Strongroom(server.addr, server.app, namespace="app") as c:
        yield c


@pytest.fixture
def operator(server: Server) -> Iterator[Strongroom]:
    with Strongroom(server.addr, server.admin, namespace="app") as c:
        yield c


@pytest.fixture
def user(request: pytest.FixtureRequest) -> str:
    """A user id of this test's own."""
    return f"pytest:{request.node.name}"
