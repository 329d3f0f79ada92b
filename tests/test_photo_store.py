"""The photo files: staged apart, published by the winner, leftovers swept at start."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import pytest

from server.photo_store import DISPLAY, ORPHAN_GRACE_S, THUMB, FilePhotoStore


@pytest.fixture
def store(tmp_path) -> FilePhotoStore:
    return FilePhotoStore(tmp_path / "photos")


def age(path, seconds: float) -> None:
    """Set the file's time ``seconds`` ago (negative: in the future)."""
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_a_staged_photo_is_not_served_until_published(store):
    pid = uuid.uuid4()
    staged = store.stage(pid, {DISPLAY: b"display", THUMB: b"thumb"})
    assert not store.path(pid, DISPLAY).exists()
    assert len(list(store.temporaries())) == 2
    staged.publish()
    assert store.path(pid, DISPLAY).read_bytes() == b"display"
    assert store.path(pid, THUMB).read_bytes() == b"thumb"
    assert not list(store.temporaries())
    staged.discard()  # after publishing: nothing left to discard
    assert store.path(pid, DISPLAY).exists()


def test_the_loser_of_a_race_discards_its_files_and_never_touches_the_winners(store):
    pid = uuid.uuid4()
    winner = store.stage(pid, {DISPLAY: b"winner"})
    loser = store.stage(pid, {DISPLAY: b"loser"})
    winner.publish()
    loser.discard()
    assert store.path(pid, DISPLAY).read_bytes() == b"winner"
    assert not list(store.temporaries())


def test_a_start_sweeps_staged_files_from_before_it_and_spares_newer_ones(tmp_path):
    earlier = FilePhotoStore(tmp_path / "photos")
    crashed = earlier.stage(uuid.uuid4(), {DISPLAY: b"x"})
    for path in crashed.moves:
        age(path, 1)
    store = FilePhotoStore(tmp_path / "photos")
    # Another app server's upload in flight, staged after this one started.
    in_flight = store.stage(uuid.uuid4(), {DISPLAY: b"x"})
    for path in in_flight.moves:
        age(path, -1)
    assert store.remove_orphans(set()) == 1
    assert list(store.temporaries()) == list(in_flight.moves)
    in_flight.publish()


def test_files_without_a_row_go_once_older_than_the_grace(store):
    known, orphan, just_published = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for pid in (known, orphan, just_published):
        store.write(pid, DISPLAY, b"x")
    for pid in (known, orphan):
        age(store.path(pid, DISPLAY), ORPHAN_GRACE_S + 1)
    # ``just_published`` may be another server's, between rename and commit.
    assert store.remove_orphans({known}) == 1
    assert store.path(known, DISPLAY).exists()
    assert not store.path(orphan, DISPLAY).exists()
    assert store.path(just_published, DISPLAY).exists()


def test_publishing_restarts_the_grace_however_long_the_insert_waited(store):
    pid = uuid.uuid4()
    staged = store.stage(pid, {DISPLAY: b"x"})
    for path in staged.moves:
        age(path, 3600)  # staged long ago, then waited on the database
    staged.publish()
    assert store.remove_orphans(set()) == 0
    assert store.path(pid, DISPLAY).exists()


def test_names_that_are_not_photos_are_left_alone(store):
    stray = store.root / "ab" / "cd" / "notes.jpg"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    age(stray, 3600)
    assert store.remove_orphans(set()) == 0
    assert stray.exists()


def test_the_second_look_takes_only_files_from_before_this_start(tmp_path):
    first = FilePhotoStore(tmp_path / "photos")
    crashed, known = uuid.uuid4(), uuid.uuid4()
    for pid in (crashed, known):
        first.write(pid, DISPLAY, b"x")
    age(first.path(crashed, DISPLAY), 2)  # published 2 s before the crash
    restarted = FilePhotoStore(tmp_path / "photos")
    assert restarted.remove_orphans({known}) == 0  # younger than the grace: spared at start
    mine = uuid.uuid4()
    time.sleep(0.01)
    restarted.write(mine, DISPLAY, b"x")  # this server's upload, row not yet committed
    assert restarted.remove_orphans({known}, 0.0, before_start=True) == 1
    assert not restarted.path(crashed, DISPLAY).exists()
    assert restarted.path(mine, DISPLAY).exists() and restarted.path(known, DISPLAY).exists()


async def test_a_started_app_looks_again_once_the_grace_has_passed(settings, monkeypatch):
    """Files a crash left younger than the grace go without waiting for the next start."""
    from asgi_lifespan import LifespanManager

    from server import app as app_module
    from server.app import create_app

    monkeypatch.setattr(app_module, "ORPHAN_GRACE_S", 0.2)
    photos = FilePhotoStore(settings.data_dir / "photos")
    crashed = uuid.uuid4()
    photos.write(crashed, DISPLAY, b"x")  # just before the crash: within the grace
    app = create_app(settings)
    async with LifespanManager(app):
        assert photos.path(crashed, DISPLAY).exists()  # the start spared it
        deadline = time.monotonic() + 10
        while photos.path(crashed, DISPLAY).exists() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert not photos.path(crashed, DISPLAY).exists()


async def test_the_sweep_asks_for_rows_a_page_of_files_at_a_time(store, monkeypatch):
    from server import photo_store

    monkeypatch.setattr(photo_store, "PAGE", 2)
    known, orphans = uuid.uuid4(), [uuid.uuid4() for _ in range(4)]
    for pid in (known, *orphans):
        store.write(pid, DISPLAY, b"x")
        age(store.path(pid, DISPLAY), ORPHAN_GRACE_S + 1)
    asked: list[set[uuid.UUID]] = []

    async def with_rows(ids):
        asked.append(set(ids))
        return {known} & set(ids)

    assert await store.sweep(with_rows) == 4
    assert [len(ids) for ids in asked] == [2, 2, 1]
    assert [p.name for p in store.files()] == [store.path(known, DISPLAY).name]
