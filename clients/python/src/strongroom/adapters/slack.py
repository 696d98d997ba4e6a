"""The Slack service's ``CredentialService`` (store / retrieve / verify per workspace) over
Strongroom.

    # from src.services.credential_service import CredentialService
    # service = CredentialService()
    from strongroom.adapters.slack import StrongroomCredentialService as CredentialService
    service = CredentialService(namespace="slack-bot")

A workspace's credentials are one secret (``name``, default ``"slack"``) of the workspace id;
``verify_credentials`` calls Slack's ``auth.test`` with the bot token and records the outcome
as a ``slack.verify`` event (never the token).
"""

from __future__ import annotations

from typing import Any, Dict, Optional

import httpx

from .._sync_client import Strongroom
from ..errors import NotFound

AUTH_TEST = "https://slack.com/api/auth.test"


class StrongroomCredentialService:
    def __init__(
        self,
        *,
        namespace: Optional[str] = None,
        name: str = "slack",
        client: Optional[Strongroom] = None,
        auth_test_url: str = AUTH_TEST,
        **client_options: Any,
    ) -> None:
        self._client = client or Strongroom(namespace=namespace, **client_options)
        if client is not None and namespace is not None:
            self._client = client.in_namespace(namespace)
        self._name = name
        self._auth_test_url = auth_test_url

    def __repr__(self) -> str:
        return f"StrongroomCredentialService(client={self._client!r}, name={self._name!r})"

    def store_credentials(
        self,
        workspace_id: str,
        bot_token: str,
        app_token: Optional[str] = None,
        signing_secret: Optional[str] = None,
        bot_user_id: Optional[str] = None,
    ) -> bool:
        values = {"bot_token": bot_token}
        for key, value in (("app_token", app_token), ("signing_secret", signing_secret), ("bot_user_id", bot_user_id)):
            if value is not None:
                values[key] = value
        self._client.put_secret(workspace_id, self._name, values)
        return True

    def get_credentials(self, workspace_id: str) -> Optional[Dict[str, str]]:
        try:
            return {k: str(v) for k, v in self._client.get_secret(workspace_id, self._name).items()}
        except NotFound:
            return None

    def delete_credentials(self, workspace_id: str) -> bool:
        try:
            self._client.purge_credential(workspace_id, self._name)
            return True
        except NotFound:
            return False

    def verify_credentials(self, workspace_id: str) -> bool:
        """Asks Slack whether the bot token still works; records the answer (not the token)."""
        creds = self.get_credentials(workspace_id)
        if creds is None:
            return False
        try:
            answer = httpx.post(
                self._auth_test_url,
                headers={"Authorization": f"Bearer {creds['bot_token']}"},
                timeout=10.0,
            )
            ok = answer.status_code == 200 and bool(answer.json().get("ok"))
        except (httpx.HTTPError, ValueError):
            ok = False
        self._client.log_event(workspace_id, "slack.verify", {"ok": ok})
        return ok
