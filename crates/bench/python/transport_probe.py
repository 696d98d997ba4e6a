"""Where a Python caller's time goes: GETs of one stored credential from the same server through
httpx (what the Strongroom client uses), through httpcore (httpx's transport) alone, and through
plain asyncio streams speaking HTTP/1.1 over keep-alive connections — 1 and 16 in flight.

Run through ``STRONGROOM_BENCH_SCRIPT=crates/bench/python/transport_probe.py
scripts/bench-python-peers target/release/strongroom`` (JSON on stdout). Measured 2026-12-08
(crates/bench/results/2026-12-08-python-transports.json): httpx 1,125 / 543 req/s, httpcore
1,409 / 632, asyncio streams 4,169 / 14,528 (1 / 16 in flight): the transport, not the server
or the client's own code, bounds the Python client.
"""

import argparse
import asyncio
import json
import time
from typing import Awaitable, Callable, Dict

import httpcore
import httpx

TOKEN_SET = {"type": "oauth2", "access_token": "x" * 700, "refresh_token": "y" * 180,
             "expires_at": "2030-01-01T00:00:00Z", "token_type": "Bearer"}


async def rate(call: Callable[[], Awaitable[None]], n: int, in_flight: int) -> float:
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one() for _ in range(min(200, n))))  # warm-up, connections opened
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    return n / (time.perf_counter() - started)


async def streams(addr: str, path: str, auth: str, n: int, in_flight: int) -> float:
    """One keep-alive connection per task, requests written and answers read by hand."""
    host, port = addr.removeprefix("http://").split(":")
    request = f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {auth}\r\n\r\n".encode()
    each = n // in_flight

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        for _ in range(each):
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head[:40]
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(in_flight)))
    return each * in_flight / (time.perf_counter() - started)


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--addr", required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--namespace", required=True)
    p.add_argument("--requests", type=int, default=3000)
    a = p.parse_args()
    auth = f"Bearer {a.token}"
    path = f"/v1/ns/{a.namespace}/users/probe/credentials/spotify"
    async with httpx.AsyncClient(base_url=a.addr) as c:
        (await c.put(path, headers={"Authorization": auth}, json={"data": TOKEN_SET})).raise_for_status()
    out: Dict[str, float] = {}
    for in_flight in (1, 16):
        async with httpx.AsyncClient(base_url=a.addr) as c:
            async def via_httpx() -> None:
                (await c.get(path, headers={"Authorization": auth})).raise_for_status()
            out[f"httpx, {in_flight} in flight"] = await rate(via_httpx, a.requests, in_flight)
        async with httpcore.AsyncConnectionPool(max_connections=in_flight) as pool:
            async def via_httpcore() -> None:
                r = await pool.request("GET", a.addr + path, headers={"Authorization": auth})
                assert r.status == 200
            out[f"httpcore, {in_flight} in flight"] = await rate(via_httpcore, a.requests, in_flight)
        out[f"asyncio streams, {in_flight} in flight"] = await streams(a.addr, path, auth, a.requests, in_flight)
    print(json.dumps({"requests": a.requests, "per_second": out}, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
