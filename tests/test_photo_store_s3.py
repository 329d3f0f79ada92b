"""Photos in S3-compatible storage, against moto's standalone server started here.

The same guarantees as the files: nothing served without a row, no row
without both objects, a loser or a failure leaves nothing, orphans swept
after the grace, and a backup that restores into a bucket.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import socket
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import obstore
import pytest
from moto.server import ThreadedMotoServer

from server import photo_store_s3
from server import settings as settings_mod
from server.models import Event, Photo
from server.photo_store import DISPLAY, ORPHAN_GRACE_S, THUMB, photo_name
from server.photo_store_s3 import S3PhotoStore
from server.photos import with_rows
from tests.conftest import CSRF, login
from tests.helpers.backup import furnish, onsite, rows, running, seen, settings_for
from tests.helpers.photos import colour_of, jpeg, upload
from tests.helpers.reports import iso, lift_id
from tests.helpers.s3 import KEYS, new_bucket


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 and a free port, for the whole run."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def on_s3(base: settings_mod.Settings, endpoint: str, url: str) -> settings_mod.Settings:
    return dataclasses.replace(base, photo_store=url, s3_endpoint=endpoint, **KEYS)


@pytest.fixture
def settings(settings: settings_mod.Settings, s3_endpoint: str) -> settings_mod.Settings:
    """The usual test settings, with the photos in a bucket of this test's own."""
    return on_s3(settings, s3_endpoint, f"s3://{new_bucket(s3_endpoint)}/photos")


@pytest.fixture
def store(app) -> S3PhotoStore:
    photo_store = app.state.context.photo_store
    assert isinstance(photo_store, S3PhotoStore)
    return photo_store


@pytest.fixture
async def report_id(app, client, world) -> uuid.UUID:
    await login(client, "guard")
    rid = uuid.uuid4()
    body = {"site": "north", "incident_type": lift_id(app), "occurred_at": iso(datetime.now(UTC))}
    assert (await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)).status_code == 201
    return rid


async def names(store: S3PhotoStore) -> list[str]:
    return [name async for page in store.pages() for name, _ in page]


async def test_an_upload_puts_both_sizes_under_their_keys_and_serves_those_bytes(
    client, store, report_id
):
    pid = uuid.uuid4()
    response = await upload(client, report_id, pid, jpeg())
    assert response.status_code == 201, response.text
    photo = response.json()
    assert await Photo.exists(id=pid)
    assert await names(store) == sorted(photo_name(pid, v) for v in (DISPLAY, THUMB))
    for url, variant in ((photo["url"], DISPLAY), (photo["thumbnail_url"], THUMB)):
        assert url.startswith("/api/reports/")  # never a link to the bucket
        served = await client.get(url)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/jpeg"
        assert served.headers["cache-control"].startswith("private")
        stored = await store.read(photo_name(pid, variant))
        assert served.content == stored
        assert served.headers["content-length"] == str(len(stored or b""))


async def test_the_same_photo_twice_is_one_photo_and_puts_nothing_again(
    client, store, report_id, monkeypatch
):
    pid, data = uuid.uuid4(), jpeg()
    assert (await upload(client, report_id, pid, data)).status_code == 201
    puts = []
    real_put = obstore.put_async

    async def counted(*args, **kwargs):
        puts.append(args[1])
        return await real_put(*args, **kwargs)

    monkeypatch.setattr(photo_store_s3.obstore, "put_async", counted)
    assert (await upload(client, report_id, pid, data)).status_code == 200
    assert puts == []
    assert await Photo.filter(id=pid).count() == 1
    assert len(await names(store)) == 2


@pytest.mark.parametrize("failing", [Photo, Event], ids=["photo-insert", "event-insert"])
async def test_a_failed_insert_leaves_no_object(client, store, report_id, monkeypatch, failing):
    async def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(failing, "create", broken)
    pid = uuid.uuid4()
    with pytest.raises(RuntimeError):
        await upload(client, report_id, pid, jpeg())
    monkeypatch.undo()
    assert not await Photo.exists(id=pid)
    assert await names(store) == []
    assert (await upload(client, report_id, pid, jpeg())).status_code == 201
    assert len(await names(store)) == 2


async def test_a_put_that_fails_takes_out_the_size_already_put_and_the_row(
    client, store, report_id, monkeypatch
):
    real_put = obstore.put_async

    async def thumb_fails(store_, name, *args, **kwargs):
        if name.endswith(f".{THUMB}.jpg"):
            raise OSError("the bucket went away")
        return await real_put(store_, name, *args, **kwargs)

    monkeypatch.setattr(photo_store_s3.obstore, "put_async", thumb_fails)
    pid = uuid.uuid4()
    with pytest.raises(OSError):
        await upload(client, report_id, pid, jpeg())
    monkeypatch.undo()
    assert not await Photo.exists(id=pid)
    assert await names(store) == []  # the display put first is gone again


async def test_the_loser_of_a_race_puts_nothing_and_the_winner_is_served(client, store, report_id):
    red, blue = jpeg(color=(220, 20, 20)), jpeg(color=(20, 20, 220))
    for _ in range(3):
        pid = uuid.uuid4()
        answers = await asyncio.gather(
            upload(client, report_id, pid, red), upload(client, report_id, pid, blue)
        )
        assert sorted(a.status_code for a in answers) == [201, 409]
        won = red if answers[0].status_code == 201 else blue
        assert (await Photo.get(id=pid)).sha256 == hashlib.sha256(won).hexdigest()
        served = (await client.get(f"/api/reports/{report_id}/photos/{pid}")).content
        diff = zip(colour_of(served), colour_of(won), strict=True)
        assert sum(abs(a - b) for a, b in diff) < 30


async def test_the_sweep_deletes_objects_without_a_row_once_past_the_grace(
    client, store, report_id, monkeypatch
):
    kept = uuid.uuid4()
    assert (await upload(client, report_id, kept, jpeg())).status_code == 201
    orphans = [uuid.uuid4() for _ in range(3)]
    for pid in orphans:  # what a crash between the puts and the commit leaves
        for variant in (DISPLAY, THUMB):
            await store.put(photo_name(pid, variant), b"x")
    await obstore.put_async(store.s3, "notes/readme.txt", b"not a photo")
    monkeypatch.setattr(photo_store_s3, "PAGE", 2)  # several pages, rows asked per page
    # Young: may be another server's upload before its commit.
    assert await store.sweep(with_rows) == 0
    assert len(await names(store)) == 8
    store.clock = lambda: time.time() + ORPHAN_GRACE_S + 5
    assert await store.sweep(with_rows) == 6
    assert await names(store) == sorted(photo_name(kept, v) for v in (DISPLAY, THUMB))
    assert await obstore.head_async(store.s3, "notes/readme.txt")  # left alone
    assert (await client.get(f"/api/reports/{report_id}/photos/{kept}")).status_code == 200


async def test_nothing_is_served_without_a_row_nor_to_another_site(app, client, store, report_id):
    pid = uuid.uuid4()
    await upload(client, report_id, pid, jpeg())
    stray = uuid.uuid4()
    await store.put(photo_name(stray, DISPLAY), b"an object with no row")
    assert (await client.get(f"/api/reports/{report_id}/photos/{stray}")).status_code == 404
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, "southguard")
        url = f"/api/reports/{report_id}/photos/{pid}"
        assert (await other.get(url)).status_code == 403
        assert (await other.get(url + "/thumb")).status_code == 403


async def test_a_row_whose_object_is_gone_is_404_not_a_500(client, store, report_id):
    pid = uuid.uuid4()
    await upload(client, report_id, pid, jpeg())
    await store.remove([photo_name(pid, DISPLAY)])
    assert (await client.get(f"/api/reports/{report_id}/photos/{pid}")).status_code == 404


def test_a_photo_store_that_is_not_s3_is_refused_naming_the_setting(tmp_path):
    with pytest.raises(ValueError, match="ONSITE_PHOTO_STORE"):
        settings_mod.load({"ONSITE_DATA_DIR": str(tmp_path), "ONSITE_PHOTO_STORE": "gs://x/y"})


@pytest.mark.parametrize("into", ["s3", "files"])
async def test_a_backup_of_a_bucket_restores_every_photo_into_either_store(
    settings, s3_endpoint, tmp_path, into
):
    archive = tmp_path / "onsite-backup.tar.gz"
    async with running(settings) as app:
        await furnish(app, [jpeg(), jpeg(color=(0, 90, 200))])
        saved = await seen(app)
        before = await rows()
        done = onsite(settings, "backup", str(archive))
        assert done.returncode == 0, done.stderr
        assert "4 photo files" in done.stdout
    target = settings_for(tmp_path / "restored", "")
    if into == "s3":
        target = on_s3(target, s3_endpoint, f"s3://{new_bucket(s3_endpoint)}/restored")
    restored = onsite(target, "restore", str(archive))
    assert restored.returncode == 0, restored.stderr
    assert "every photo row has its files" in restored.stdout
    async with running(target) as app:
        assert await rows() == before
        after = await seen(app)
    assert len(saved.files) == 4
    assert after.files == saved.files
    if into == "s3":
        # Again into the same bucket, now not empty, with an empty database: refused.
        third = dataclasses.replace(target, data_dir=tmp_path / "third")
        again = onsite(third, "restore", str(archive))
        assert again.returncode == 1
        assert "already holds photos" in again.stderr
