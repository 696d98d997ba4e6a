"""Files (streamed both ways with flat memory, ranges, signed links), export (as a document and
as a streamed archive) and erasure through the real server."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import tracemalloc
from pathlib import Path

import httpx
import pytest

from strongroom import Strongroom, errors


def test_upload_download_ranges_and_links(client: Strongroom, user: str, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    info = client.upload(user, io.BytesIO(data), name="notes.pdf", content_type="application/pdf")
    assert (info.size, info.sha256, info.name) == (len(data), hashlib.sha256(data).hexdigest(), "notes.pdf")
    src = tmp_path / "photo.jpg"
    src.write_bytes(data[:1000])
    by_path = client.upload(user, src, content_type="image/jpeg")
    assert by_path.name == "photo.jpg"
    assert b"".join(client.iter_download(user, info.id)) == data
    assert b"".join(client.iter_download(user, info.id, range=(100, 199))) == data[100:200]
    assert b"".join(client.iter_download(user, info.id, range=(299_990, None))) == data[299_990:]
    out = client.download(user, info.id, tmp_path / "copy.pdf")
    assert out.read_bytes() == data and not (tmp_path / "copy.pdf.partial").exists()
    assert {f.id for f in client.iter_files(user, page_size=1)} == {info.id, by_path.id}
    link = client.file_link(user, info.id, expires_in=60, one_time=True)
    assert httpx.get(link.url).content == data
    assert httpx.get(link.url).status_code == 410
    client.delete_file(user, info.id)
    with pytest.raises(errors.NotFound):
        client.file_info(user, info.id)


def test_a_hundred_mib_streams_with_flat_memory(client: Strongroom, user: str, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()
    with open(big, "wb") as f:
        for _ in range(100):
            f.write(block)
            digest.update(block)
    tracemalloc.start()
    info = client.upload(user, big)
    _, peak_up = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    back = client.download(user, info.id, tmp_path / "back.bin")
    _, peak_down = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert info.size == 100 << 20 and info.sha256 == digest.hexdigest()
    assert back.stat().st_size == 100 << 20
    check = hashlib.sha256()
    with open(back, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            check.update(chunk)
    assert check.hexdigest() == digest.hexdigest()
    assert peak_up < 16 << 20 and peak_down < 16 << 20, (peak_up, peak_down)


def test_export_and_erasure(client: Strongroom, user: str, tmp_path: Path) -> None:
    client.put_secret(user, "slack", {"bot_token": "xoxb-1"})
    client.log_event(user, "login")
    client.upload(user, io.BytesIO(b"hello"), name="a.txt", content_type="text/plain")
    doc = client.export(user)
    assert doc["credentials"][0]["name"] == "slack" and doc["events"]
    archive = client.export_archive(user, tmp_path / "export.tar")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "export.json" in names and any(n.startswith("files/") for n in names)
    with pytest.raises(errors.StrongroomError):
        client.erase(user, confirm="someone-else")
    report = client.erase(user, confirm=user)
    assert report.user_hash
    with pytest.raises(errors.NotFound):
        client.get_secret(user, "slack")
