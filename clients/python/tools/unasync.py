"""Writes the synchronous client from the asynchronous one (the source of truth).

    python tools/unasync.py          # rewrite src/strongroom/_sync_client.py
    python tools/unasync.py --check  # exit 1 if it is out of date (run by the tests)
"""

import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "src" / "strongroom"
SOURCE = HERE / "_async_client.py"
TARGET = HERE / "_sync_client.py"

# Order matters: longer, more specific patterns first.
REPLACEMENTS = [
    (r'"""The asynchronous client\..*?"""', '"""The synchronous client, written by ``tools/unasync.py`` from ``_async_client.py``:\nedit that file, then run the tool.\n"""'),
    (r"\bAsyncStrongroom\b", "Strongroom"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\basync def\b", "def"),
    (r"\basync with\b", "with"),
    (r"\basync for\b", "for"),
    (r"\bawait ", ""),
    (r"\baiter_bytes\b", "iter_bytes"),
    (r"\baread\b", "read"),
    (r"\baclose\b", "close"),
    (r"\b__aenter__\b", "__enter__"),
    (r"\b__aexit__\b", "__exit__"),
    (r"\basyncio\.sleep\b", "time.sleep"),
    (r"^import asyncio$", "import time"),
]


def render() -> str:
    text = SOURCE.read_text()
    for pattern, replacement in REPLACEMENTS:
        text = re.sub(pattern, replacement, text, flags=re.S | re.M)
    return text


def main() -> int:
    rendered = render()
    if "--check" in sys.argv:
        if TARGET.read_text() != rendered:
            print("src/strongroom/_sync_client.py is out of date: run python tools/unasync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
