"""Strongroom's Python client: per-user credentials (OAuth token sets refreshed for you), records,
events, files, export and erasure, and the operator calls — sync (``Strongroom``) and async
(``AsyncStrongroom``) on httpx, typed, with one exception class per error code.

    from strongroom import Strongroom
    sr = Strongroom(namespace="musicbot")          # STRONGROOM_ADDR / STRONGROOM_TOKEN
    sr.put_oauth2("telegram:42", "spotify", access_token, refresh_token=rt, provider="spotify")
    token = sr.access_token("telegram:42", "spotify", min_valid=60).access_token
"""

from . import errors, models
from ._async_client import AsyncStrongroom
from ._sync_client import Strongroom
from ._version import __version__
from .errors import *  # noqa: F401,F403  (one class per error code)
from .errors import StrongroomError

__all__ = ["AsyncStrongroom", "Strongroom", "StrongroomError", "errors", "models", "__version__"]
