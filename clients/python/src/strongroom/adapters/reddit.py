"""The Reddit listener's ``TokenStorage`` interface (async ``store_token`` / ``get_token`` /
``delete_token`` / ``has_token``) over Strongroom.

    # from reddit_listener.storage.sqlite import SQLiteTokenStorage
    # storage = SQLiteTokenStorage(db_path, encryption_key)
    from strongroom.adapters.reddit import StrongroomTokenStorage
    storage = StrongroomTokenStorage(namespace="reddit-listener")

Each user's token dict is one credential (``name``, default ``"reddit"``) of that user, kept
byte for byte and returned exactly as stored; deleting removes it with its history. Erasure,
export, audit and key rotation come with it.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from .._async_client import AsyncStrongroom
from ..errors import NotFound


class StrongroomTokenStorage:
    def __init__(self, *, namespace: Optional[str] = None, name: str = "reddit", client: Optional[AsyncStrongroom] = None, **client_options: Any) -> None:
        self._client = client or AsyncStrongroom(namespace=namespace, **client_options)
        if client is not None and namespace is not None:
            self._client = client.in_namespace(namespace)
        self._name = name

    def __repr__(self) -> str:
        return f"StrongroomTokenStorage(client={self._client!r}, name={self._name!r})"

    async def initialize(self) -> None:
        """Nothing to create (kept for the interface: apps call it at start)."""

    async def close(self) -> None:
        await self._client.aclose()

    async def store_token(self, user_id: str, token_data: Dict[str, Any]) -> None:
        await self._client.put_secret(user_id, self._name, token_data)

    async def get_token(self, user_id: str) -> Optional[Dict[str, Any]]:
        try:
            return await self._client.get_secret(user_id, self._name)
        except NotFound:
            return None

    async def delete_token(self, user_id: str) -> None:
        try:
            await self._client.purge_credential(user_id, self._name)
        except NotFound:
            pass

    async def has_token(self, user_id: str) -> bool:
        return await self._client.credential_exists(user_id, self._name)
