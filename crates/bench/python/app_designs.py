"""What an app pays per token-set read and write, in Python, for the designs apps use today
beside Strongroom's own Python client — same machine, same 1 KiB OAuth token set, same users.

The designs, reproduced from the apps' own notes (../shared/user-research/):

- ``fernet-aiosqlite``: the Reddit listener's ``SQLiteTokenStorage`` — aiosqlite, a connection
  opened per call, ``INSERT OR REPLACE`` and commit per write — with the Telegram bot's cipher,
  Fernet under one key from the environment, the token set as a JSON column.
- ``fernet-pbkdf2-per-call``: the Slack service's ``EncryptionManager`` — Fernet under a key
  derived from ``ENCRYPTION_KEY`` with PBKDF2-HMAC-SHA256, 100,000 iterations and a static
  salt, derived on every encrypt and decrypt call — over the same aiosqlite table.
- ``plain-aiosqlite``: the same table and calls with no encryption at all (the app-side limit).
- ``strongroom``: ``AsyncStrongroom.put_oauth2`` / ``get_credential`` against a release
  ``strongroom serve`` on loopback (SQLite, every call authenticated, audited before it is
  answered, per-user keys).

Each design runs its writes (one per user) then its reads (random users), first one call at a
time (per-operation latency), then ``--concurrency`` calls in flight on one event loop
(throughput). Prints one JSON object; ``scripts/bench-python-peers`` runs it.
"""

import argparse
import asyncio
import base64
import json
import os
import random
import statistics
import sys
import tempfile
import time
from typing import Any, Awaitable, Callable, Dict, List

import aiosqlite
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from strongroom import AsyncStrongroom


def token_set(i: int) -> Dict[str, Any]:
    """About 1 KiB of JSON, like the Rust harness's token set."""
    return {
        "access_token": f"BQD{i:08d}" + "a" * 300,
        "refresh_token": f"AQC{i:08d}" + "r" * 300,
        "expires_at": "2099-01-01T00:00:00Z",
        "scope": "user-read-private user-read-email playlist-modify-public " * 4,
        "token_type": "Bearer",
    }


class AioSqliteTable:
    """The Reddit listener's table and access pattern: a connection per call."""

    def __init__(self, path: str, seal: Callable[[bytes], bytes], open_: Callable[[bytes], bytes]):
        self.path, self.seal, self.open = path, seal, open_

    async def setup(self) -> None:
        async with aiosqlite.connect(self.path) as db:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(
                "CREATE TABLE IF NOT EXISTS tokens (user_id TEXT PRIMARY KEY, encrypted_data BLOB NOT NULL,"
                " created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)"
            )
            await db.commit()

    async def put(self, user: str, data: Dict[str, Any]) -> None:
        blob = self.seal(json.dumps(data).encode())
        async with aiosqlite.connect(self.path) as db:
            await db.execute(
                "INSERT OR REPLACE INTO tokens (user_id, encrypted_data, updated_at) VALUES (?, ?, CURRENT_TIMESTAMP)",
                (user, blob),
            )
            await db.commit()

    async def get(self, user: str) -> Dict[str, Any]:
        async with aiosqlite.connect(self.path) as db:
            async with db.execute("SELECT encrypted_data FROM tokens WHERE user_id = ?", (user,)) as cursor:
                row = await cursor.fetchone()
        assert row is not None
        return json.loads(self.open(row[0]))


def fernet_key_design() -> tuple:
    f = Fernet(Fernet.generate_key())
    return f.encrypt, f.decrypt


def pbkdf2_per_call_design() -> tuple:
    master = base64.urlsafe_b64encode(os.urandom(32))
    salt = b"strongroom-bench-static-salt"

    def fernet() -> Fernet:
        kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=100_000)
        return Fernet(base64.urlsafe_b64encode(kdf.derive(master)))

    return (lambda b: fernet().encrypt(b)), (lambda b: fernet().decrypt(b))


async def timed(op: Callable[[int], Awaitable[Any]], n: int, concurrency: int) -> Dict[str, float]:
    latencies: List[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            await op(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "ops_per_sec": round(n / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3),
        "ops": n,
    }


async def measure(name: str, put: Callable, get: Callable, users: int, reads: int, concurrency: int, seed: int) -> Dict[str, Any]:
    rng = random.Random(seed)
    ids = [f"telegram:{i}" for i in range(users)]
    picks = [rng.randrange(users) for _ in range(reads)]
    out: Dict[str, Any] = {"design": name}
    out["put, 1 at a time"] = await timed(lambda i: put(ids[i], token_set(i)), users, 1)
    out["get, 1 at a time"] = await timed(lambda i: get(ids[picks[i]]), reads, 1)
    out[f"put, {concurrency} in flight"] = await timed(lambda i: put(ids[i], token_set(i + 1)), users, concurrency)
    out[f"get, {concurrency} in flight"] = await timed(lambda i: get(ids[picks[i]]), reads, concurrency)
    print(f"{name}: " + ", ".join(f"{k} {v['ops_per_sec']}/s" for k, v in out.items() if isinstance(v, dict)), file=sys.stderr)
    return out


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--reads", type=int, default=2000)
    p.add_argument("--pbkdf2-ops", type=int, default=200, help="users and reads for the PBKDF2 design (slow by design)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--addr", required=True, help="a strongroom serve to measure")
    p.add_argument("--token", required=True, help="a token with read and write in --namespace")
    p.add_argument("--namespace", default="bench")
    args = p.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (seal, open_), n, reads in [
            ("plain-aiosqlite (no encryption)", (lambda b: b, lambda b: b), args.users, args.reads),
            ("fernet-aiosqlite", fernet_key_design(), args.users, args.reads),
            ("fernet-pbkdf2-per-call", pbkdf2_per_call_design(), args.pbkdf2_ops, args.pbkdf2_ops),
        ]:
            table = AioSqliteTable(os.path.join(tmp, f"{len(results)}.db"), seal, open_)
            await table.setup()
            results.append(await measure(name, table.put, table.get, n, reads, args.concurrency, 7))

    async with AsyncStrongroom(args.addr, args.token, args.namespace, retries=0) as sr:

        async def put(user: str, data: Dict[str, Any]) -> None:
            await sr.put_oauth2(user, "spotify", data["access_token"], refresh_token=data["refresh_token"], expires_at=data["expires_at"], scope=data["scope"])

        async def get(user: str) -> Dict[str, Any]:
            return (await sr.get_credential(user, "spotify")).secret

        results.append(await measure("strongroom (Python client, HTTP)", put, get, args.users, args.reads, args.concurrency, 7))
    json.dump({"users": args.users, "reads": args.reads, "concurrency": args.concurrency, "results": results}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    asyncio.run(main())
