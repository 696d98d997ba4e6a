"""The client over https with a private CA: the certificates are made here with the
``openssl`` command (a CA and a server certificate for 127.0.0.1), the real server serves TLS
with them, and the client trusts exactly that CA — given as ``ca_file`` or
``STRONGROOM_CA_FILE`` — and refuses the server without it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator, Tuple

import httpx
import pytest

from strongroom import AsyncStrongroom, Strongroom
from strongroom.errors import StrongroomError

from conftest import _binary


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _certificates(work: Path) -> Tuple[Path, Path, Path]:
    ca_key, ca, key, csr, cert = (work / n for n in ("ca.key", "ca.pem", "server.key", "server.csr", "server.pem"))
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
             "-days", "2", "-subj", "/CN=strongroom test CA")
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", "/CN=127.0.0.1")
    ext = work / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
             "-out", str(cert), "-days", "2", "-extfile", str(ext))
    os.chmod(key, 0o600)
    return ca, cert, key


@pytest.fixture(scope="module")
def tls_server() -> Iterator[Tuple[str, str, Path]]:
    work = Path(tempfile.mkdtemp(prefix="strongroom-pytest-tls-"))
    ca, cert, key = _certificates(work)
    proc = subprocess.Popen(
        [_binary(), "serve", "--data-dir", str(work / "data"), "--listen", "127.0.0.1:0",
         "--tls-cert", str(cert), "--tls-key", str(key)],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True,
    )
    assert proc.stdout is not None
    admin = addr = None
    deadline = time.time() + 30
    while time.time() < deadline and addr is None:
        line = proc.stdout.readline()
        if not line:
            pytest.fail("the TLS server exited")
        if line.startswith("Admin token (shown once; store it safely): "):
            admin = line.split(": ", 1)[1].strip()
        if line.startswith("Listening on "):
            addr = line.split("Listening on ", 1)[1].strip()
    assert addr and admin and addr.startswith("https://"), addr
    yield addr, admin, ca
    proc.terminate()
    proc.wait(timeout=30)


def test_a_private_ca_is_trusted_only_when_given(tls_server: Tuple[str, str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    addr, admin, ca = tls_server
    with Strongroom(addr, admin, ca_file=str(ca)) as sr:
        assert sr.create_namespace("app-tls").name == "app-tls"
    monkeypatch.setenv("STRONGROOM_CA_FILE", str(ca))
    with Strongroom(addr, admin) as sr:
        assert any(n.name == "app-tls" for n in sr.namespaces())
    monkeypatch.delenv("STRONGROOM_CA_FILE")
    with Strongroom(addr, admin, retries=0) as sr:
        with pytest.raises((StrongroomError, httpx.HTTPError)):
            sr.namespaces()


def test_the_async_client_takes_the_ca_too(tls_server: Tuple[str, str, Path]) -> None:
    addr, admin, ca = tls_server

    async def scenario() -> None:
        async with AsyncStrongroom(addr, admin, ca_file=str(ca)) as sr:
            assert any(n.name == "app-tls" for n in await sr.namespaces())

    asyncio.run(scenario())
