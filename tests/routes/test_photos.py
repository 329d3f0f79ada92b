"""Photo upload and download: idempotent, size-limited, site-checked, never half-stored."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import logging
import os
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from asgi_lifespan import LifespanManager
from PIL import Image
from PIL.ExifTags import Base

from server.app import create_app
from server.models import Event, Photo, Role, Site
from server.photo_store import DISPLAY, THUMB, FilePhotoStore
from tests.conftest import CSRF, api_client, login, make_user
from tests.helpers.photos import (
    JPEG,
    PHOTOS,
    colour_of,
    jpeg,
    png_bomb,
    png_header,
    stored_files,
    upload,
)
from tests.helpers.reports import iso, lift_id


@pytest.fixture
async def report_id(app, client, world) -> uuid.UUID:
    await login(client, "guard")
    rid = uuid.uuid4()
    body = {"site": "north", "incident_type": lift_id(app), "occurred_at": iso(datetime.now(UTC))}
    response = await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)
    assert response.status_code == 201
    return rid


async def test_a_photo_is_stored_once_and_served_without_metadata(app, client, report_id):
    pid = uuid.uuid4()
    response = await upload(client, report_id, pid, jpeg())
    assert response.status_code == 201, response.text
    photo = response.json()
    assert (photo["width"], photo["height"]) == (1600, 1200)
    served = await client.get(photo["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"].startswith("private")
    assert Image.open(io.BytesIO(served.content)).size == (1600, 1200)
    thumb = await client.get(photo["thumbnail_url"])
    assert max(Image.open(io.BytesIO(thumb.content)).size) == 320
    report = (await client.get(f"/api/reports/{report_id}")).json()
    assert [p["id"] for p in report["photos"]] == [str(pid)]
    assert [e["kind"] for e in report["events"]] == ["created", "photo"]


async def test_gps_goes_into_the_database_and_not_into_the_served_file(client, report_id):
    raw = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    photo = (await upload(client, report_id, uuid.uuid4(), raw)).json()
    assert photo["latitude"] == pytest.approx(43.4674483, abs=1e-5)
    assert photo["camera"] == "NIKON COOLPIX P6000"
    served = (await client.get(photo["url"])).content
    assert not Image.open(io.BytesIO(served)).getexif()
    assert b"Exif" not in served


async def test_the_same_photo_twice_is_one_photo(client, report_id):
    pid, data = uuid.uuid4(), jpeg()
    first = await upload(client, report_id, pid, data)
    second = await upload(client, report_id, pid, data)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()
    assert await Photo.filter(id=pid).count() == 1
    assert await Event.filter(kind="photo").count() == 1


async def test_another_photo_under_the_same_id_is_409(client, report_id):
    pid = uuid.uuid4()
    await upload(client, report_id, pid, jpeg())
    response = await upload(client, report_id, pid, jpeg(color=(0, 0, 255)))
    assert response.status_code == 409


async def test_another_sites_user_can_neither_upload_nor_see(app, client, report_id):
    pid = uuid.uuid4()
    await upload(client, report_id, pid, jpeg())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as other:
        await login(other, "southguard")
        assert (await upload(other, report_id, uuid.uuid4(), jpeg())).status_code == 403
        url = f"/api/reports/{report_id}/photos/{pid}"
        assert (await other.get(url)).status_code == 403
        assert (await other.get(url + "/thumb")).status_code == 403


async def test_photos_need_a_login(app, report_id):
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as anon:
        assert (await upload(anon, report_id, uuid.uuid4(), jpeg())).status_code == 401


async def test_a_guard_cannot_add_repair_photos_but_a_supervisor_can(client, report_id):
    assert (
        await upload(client, report_id, uuid.uuid4(), jpeg(), "repair_before")
    ).status_code == 403
    await login(client, "super")
    response = await upload(client, report_id, uuid.uuid4(), jpeg(), "repair_after")
    assert response.status_code == 201
    assert response.json()["kind"] == "repair_after"


def truncated() -> bytes:
    whole = jpeg(size=(1200, 900))
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (lambda: b"", 422),
        (truncated, 422),
        (lambda: b"<!doctype html><title>x</title><p>not a photo", 415),
        (lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', 415),
        (png_bomb, 422),
    ],
    ids=["zero-bytes", "truncated-jpeg", "html-named-jpg", "svg", "png-bomb"],
)
async def test_bad_photos_get_their_4xx_store_nothing_and_the_server_carries_on(
    app, client, report_id, make, status
):
    pid = uuid.uuid4()
    response = await upload(client, report_id, pid, make())
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]
    assert not await Photo.exists(id=pid)
    assert stored_files(app) == []
    assert await Event.filter(kind="photo").count() == 0
    assert (await upload(client, report_id, uuid.uuid4(), jpeg())).status_code == 201


async def test_a_40_mb_body_is_413_and_stores_nothing(app, client, report_id):
    pid = uuid.uuid4()
    body = b"\xff\xd8\xff" + os.urandom(40_000_000)
    response = await upload(client, report_id, pid, body)
    assert response.status_code == 413
    assert not await Photo.exists(id=pid)
    assert stored_files(app) == []


async def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(app, client, report_id):
    sent = 0

    async def chunks():
        nonlocal sent
        for _ in range(40):
            sent += 1_000_000
            yield b"\x00" * 1_000_000

    response = await client.put(
        f"/api/reports/{report_id}/photos/{uuid.uuid4()}", content=chunks(), headers=JPEG
    )
    assert response.status_code == 413


async def test_bad_ids_and_kinds_are_422(client, report_id):
    assert (await upload(client, report_id, "nope", jpeg())).status_code == 422
    assert (await upload(client, report_id, uuid.uuid4(), jpeg(), "selfie")).status_code == 422


async def test_a_photo_for_an_unknown_report_is_404(client, report_id):
    assert (await upload(client, uuid.uuid4(), uuid.uuid4(), jpeg())).status_code == 404


async def test_an_unknown_photo_is_404(client, report_id):
    assert (await client.get(f"/api/reports/{report_id}/photos/{uuid.uuid4()}")).status_code == 404


async def test_orphan_files_are_removed_but_fresh_ones_and_known_ones_kept(app):
    store = app.state.context.photo_store
    known, orphan, fresh = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for pid in (known, orphan, fresh):
        store.write(pid, "display", b"x")
    old = time.time() - 7200
    for pid in (known, orphan):
        os.utime(store.path(pid, "display"), (old, old))
    assert store.remove_orphans({known}) == 1
    assert store.path(known, "display").exists()
    assert not store.path(orphan, "display").exists()
    assert store.path(fresh, "display").exists()


async def test_two_photos_sent_at_once_under_one_id_serve_the_one_in_the_row(
    app, client, report_id
):
    # Both are converted at the same time; before, both wrote the files and
    # the row went to the first insert, so the loser's image was served.
    red, blue = jpeg(color=(220, 20, 20)), jpeg(color=(20, 20, 220))
    for _ in range(6):
        pid = uuid.uuid4()
        answers = await asyncio.gather(
            upload(client, report_id, pid, red), upload(client, report_id, pid, blue)
        )
        assert sorted(a.status_code for a in answers) == [201, 409]
        won = red if answers[0].status_code == 201 else blue
        row = await Photo.get(id=pid)
        assert row.sha256 == hashlib.sha256(won).hexdigest()
        for url in (
            f"/api/reports/{report_id}/photos/{pid}",
            f"/api/reports/{report_id}/photos/{pid}/thumb",
        ):
            served = colour_of((await client.get(url)).content)
            assert sum(abs(a - b) for a, b in zip(served, colour_of(won), strict=True)) < 30, url
    assert not list(app.state.context.photo_store.temporaries())


def exif_jpeg(make: str, model: str) -> bytes:
    exif = Image.Exif()
    exif[Base.Make], exif[Base.Model] = make, model
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), (90, 90, 90)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


async def test_a_nul_in_the_exif_camera_is_stripped_not_a_500(app, client, report_id):
    # PostgreSQL refused the NUL ("invalid byte sequence"), after the files
    # were written: a 500, files without a row, and a phone retrying forever.
    pid = uuid.uuid4()
    response = await upload(client, report_id, pid, exif_jpeg("Ca\x00non", "EOS 5D\x00"))
    assert response.status_code == 201, response.text
    assert response.json()["camera"] == "Canon EOS 5D"
    assert (await Photo.get(id=pid)).camera == "Canon EOS 5D"
    assert len(stored_files(app)) == 2


@pytest.mark.parametrize("failing", [Photo, Event], ids=["photo-insert", "event-insert"])
async def test_a_failure_while_storing_leaves_neither_files_nor_a_row(
    app, client, report_id, monkeypatch, failing
):
    async def broken(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(failing, "create", broken)
    pid = uuid.uuid4()
    with pytest.raises(RuntimeError):
        await upload(client, report_id, pid, jpeg())
    monkeypatch.undo()
    assert not await Photo.exists(id=pid)
    assert stored_files(app) == []
    # The phone's retry then stores it whole.
    assert (await upload(client, report_id, pid, jpeg())).status_code == 201
    assert len(stored_files(app)) == 2


async def test_a_photo_too_big_for_the_memory_budget_is_422_and_stores_nothing(
    app, client, report_id
):
    ctx = app.state.context
    app.state.context = dataclasses.replace(
        ctx, settings=dataclasses.replace(ctx.settings, photo_memory_mb=64)
    )
    pid = uuid.uuid4()
    # 10000 x 10000 RGBA: 400 MB of pixels from a file of a few hundred bytes.
    response = await upload(client, report_id, pid, png_header("RGBA", 10000, 10000))
    assert response.status_code == 422
    message = response.json()["error"]["message"]
    assert "10000x10000" in message and "64 MB" in message
    assert not await Photo.exists(id=pid)
    assert stored_files(app) == []
    assert (await upload(client, report_id, uuid.uuid4(), jpeg())).status_code == 201


async def test_a_start_sweeps_what_a_crash_left_and_logs_it(settings, caplog):
    caplog.set_level(logging.INFO, logger="onsite")
    first = create_app(settings, apply_migrations=False)
    async with LifespanManager(first), api_client(first) as client:
        north = await Site.create(code="north", name="北苑")
        await make_user("guard", Role.GUARD, north)
        await login(client, "guard")
        rid, kept = uuid.uuid4(), uuid.uuid4()
        body = {
            "site": "north",
            "incident_type": lift_id(first),
            "occurred_at": iso(datetime.now(UTC)),
        }
        assert (await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)).status_code == 201
        assert (await upload(client, rid, kept, jpeg())).status_code == 201
    # What a kill -9 mid-upload leaves: staged files, and files put in place
    # whose row was never committed.
    store = FilePhotoStore(settings.data_dir / "photos")
    orphan = uuid.uuid4()
    store.write(orphan, DISPLAY, b"x")
    store.write(orphan, THUMB, b"x")
    staged = store.stage(uuid.uuid4(), {DISPLAY: b"x"})
    minute_ago = time.time() - 60
    for path in [*staged.moves, store.path(orphan, DISPLAY), store.path(orphan, THUMB)]:
        os.utime(path, (minute_ago, minute_ago))
    kept_old = store.path(kept, DISPLAY)
    os.utime(kept_old, (minute_ago, minute_ago))
    caplog.clear()
    second = create_app(settings, apply_migrations=False)
    async with LifespanManager(second):
        assert sorted(second.state.context.photo_store.files()) == sorted(
            [store.path(kept, DISPLAY), store.path(kept, THUMB)]
        )
        assert not list(store.temporaries())
    assert "removed 3 orphan photo files" in caplog.messages
