"""The examples run end to end against the real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import Server


def test_telegram_bot_example(server: Server) -> None:
    script = Path(__file__).resolve().parents[1] / "examples" / "telegram_spotify_bot.py"
    env = {**os.environ, "STRONGROOM_ADDR": server.addr, "STRONGROOM_TOKEN": server.app, "STRONGROOM_NAMESPACE": "app"}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "after /logout the user's data is gone" in done.stdout
    assert "command.search" in done.stdout
