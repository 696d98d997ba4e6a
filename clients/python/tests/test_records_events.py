"""Records (typed collections, TTL, check-and-set, unique look-ups) and events (batched
appends, queries by type and time) through the real server."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from strongroom import Strongroom, errors


def test_collections_records_and_lookups(client: Strongroom, user: str) -> None:
    client.put_collection(
        "py_profiles",
        scope="user",
        unique=["email"],
        fields={"email": {"type": "string", "required": True, "max_length": 100}, "theme": {"type": "string", "default": "dark"}},
    )
    rec = client.put_record("py_profiles", "me", {"email": "a@x.org"}, user=user)
    assert (rec.version, rec.document["theme"]) == (1, "dark")
    with pytest.raises(errors.VersionConflict):
        client.put_record("py_profiles", "me", {"email": "a@x.org"}, user=user, if_version=0)
    client.put_record("py_profiles", "me", {"email": "a@x.org", "theme": "light"}, user=user, if_version=1)
    assert client.get_record("py_profiles", "me", user=user).document["theme"] == "light"
    with pytest.raises(errors.UniqueViolation):
        client.put_record("py_profiles", "me", {"email": "a@x.org"}, user=user + "-other")
    with pytest.raises(errors.InvalidInput) as e:
        client.put_record("py_profiles", "x", {"email": "b" * 101}, user=user)
    assert "email" in e.value.message
    found = client.lookup("py_profiles", "email", "a@x.org")
    assert [(r.user, r.key) for r in found] == [(user, "me")]
    client.delete_record("py_profiles", "me", user=user)
    with pytest.raises(errors.NotFound):
        client.get_record("py_profiles", "me", user=user)


def test_namespace_cache_with_ttl_pages(client: Strongroom) -> None:
    client.put_collection("py_cache", scope="namespace", ttl_secs=30 * 86400, unique=["query"])
    for i in range(5):
        client.put_record("py_cache", f"q{i}", {"query": f"lofi {i}", "hits": i})
    records = list(client.iter_records("py_cache", page_size=2))
    assert sorted(r.key for r in records) == [f"q{i}" for i in range(5)]
    assert all(r.expires_at for r in records)
    assert client.lookup("py_cache", "query", "lofi 3")[0].document["hits"] == 3


def test_events_batches_types_and_time_ranges(client: Strongroom, user: str) -> None:
    base = datetime(2026, 11, 1, tzinfo=timezone.utc)
    batch = [{"type": "command.play" if i % 2 else "command.skip", "details": {"i": i}, "time": base + timedelta(minutes=i)} for i in range(30)]
    client.append_events(user, batch)
    client.log_event(user, "login", {"via": "telegram"})
    plays = list(client.iter_events(user, type="command.play", page_size=4))
    assert len(plays) == 15 and all(e.type == "command.play" for e in plays)
    assert plays[0].time > plays[-1].time, "newest first"
    window = list(client.iter_events(user, since=base + timedelta(minutes=10), until=base + timedelta(minutes=19)))
    assert sorted(e.details["i"] for e in window) == list(range(10, 20))
