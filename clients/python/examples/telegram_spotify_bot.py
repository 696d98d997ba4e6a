"""The Telegram/Spotify bot's storage flows, end to end, on Strongroom.

    STRONGROOM_ADDR=http://127.0.0.1:8470 STRONGROOM_TOKEN=sr_… STRONGROOM_NAMESPACE=musicbot \\
        python examples/telegram_spotify_bot.py

What the bot's design asks of its storage, one function per flow:
- /login: the Spotify token set arrives from the OAuth callback; Strongroom keeps it
  encrypted per user and refreshes it (set up a provider named "spotify" to enable that);
- searches: results cached app-wide for 30 days, one entry per query (the query is stored
  only as a keyed hash and a sealed key, never in the clear);
- every command is logged per user, queryable by type and time, with retention;
- /exportdata: everything about the user as one archive;
- /logout: the user is erased (crypto-shredding; the grant is revoked at the provider when it
  has a revocation URL).
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict, List

from strongroom import Strongroom, errors

CACHE = "search_cache"


def setup(sr: Strongroom) -> None:
    """Once per deployment (needs an admin token for the namespace)."""
    sr.put_collection(CACHE, scope="namespace", ttl_secs=30 * 86400, unique=["query"])
    sr.set_event_retention(90)


def login(sr: Strongroom, telegram_id: int, token_set: Dict[str, Any]) -> None:
    sr.put_oauth2(
        f"telegram:{telegram_id}",
        "spotify",
        token_set["access_token"],
        refresh_token=token_set.get("refresh_token"),
        expires_at=token_set.get("expires_at"),
        scope=token_set.get("scope"),
        token_type="Bearer",
        provider="spotify",
    )
    sr.log_event(f"telegram:{telegram_id}", "login", {"via": "spotify"})


def search(sr: Strongroom, telegram_id: int, query: str) -> List[str]:
    """Cached search: a hit comes from Strongroom, a miss would call Spotify and store it."""
    sr.log_event(f"telegram:{telegram_id}", "command.search", {})
    key = hashlib.sha256(query.lower().encode()).hexdigest()[:40]
    try:
        return list(sr.get_record(CACHE, key).document["tracks"])
    except errors.NotFound:
        tracks = [f"{query} (track {i})" for i in range(3)]  # stands in for the Spotify API
        sr.put_record(CACHE, key, {"query": query.lower(), "tracks": tracks})
        return tracks


def export_data(sr: Strongroom, telegram_id: int, folder: Path) -> Path:
    return sr.export_archive(f"telegram:{telegram_id}", folder / f"{telegram_id}.tar")


def logout(sr: Strongroom, telegram_id: int) -> None:
    user = f"telegram:{telegram_id}"
    sr.erase(user, confirm=user)


def main() -> int:
    with Strongroom() as sr:
        setup(sr)
        login(sr, 123456789, {"access_token": "BQD-example", "refresh_token": "AQC-example", "expires_at": "2030-01-01T00:00:00Z", "scope": "user-read-email"})
        first = search(sr, 123456789, "Lofi Beats")
        again = search(sr, 123456789, "lofi beats")
        assert first == again, "the second search is a cache hit"
        commands = [e.type for e in sr.iter_events("telegram:123456789")]
        print("events:", commands)
        with tempfile.TemporaryDirectory() as tmp:
            archive = export_data(sr, 123456789, Path(tmp))
            print("export archive:", archive.stat().st_size, "bytes")
        logout(sr, 123456789)
        try:
            sr.get_credential("telegram:123456789", "spotify")
        except errors.NotFound:
            print("after /logout the user's data is gone")
    return 0


if __name__ == "__main__":
    sys.exit(main())
