"""A photo's capture time, GPS and camera: sent by the phone beside the bytes
(its re-encoding drops the EXIF), checked, stored unless the file itself says
otherwise, and compared with the report's time and place."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from PIL import Image
from PIL.ExifTags import IFD, Base

from server import imaging
from server.models import Event, Photo
from server.photos import EARLY, FAR_M, Check, PhotoQuery, check, distance_m, merged
from tests.conftest import CSRF, login
from tests.helpers.photos import JPEG, PHOTOS, jpeg, stored_files
from tests.helpers.reports import iso, lift_id

# The report's place in these tests: a lift lobby in Shenzhen.
HERE = (22.5431, 114.0579)


@pytest.fixture
async def report_at(app, client, world):
    """A report that happened five minutes ago at HERE; its id."""
    await login(client, "guard")
    rid = uuid.uuid4()
    occurred = datetime.now(UTC) - timedelta(minutes=5)
    body = {
        "site": "north",
        "incident_type": lift_id(app),
        "occurred_at": iso(occurred),
        "location": {"text": "3栋 电梯", "lat": HERE[0], "lng": HERE[1]},
    }
    response = await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)
    assert response.status_code == 201, response.text
    return SimpleNamespace(id=rid, occurred=occurred)


def exif_jpeg(taken: str, offset: str | None = None) -> bytes:
    """A small JPEG whose EXIF holds a capture time (and its offset)."""
    exif = Image.Exif()
    exif[Base.Make] = "Canon"
    exif[Base.Model] = "Canon EOS 5D"
    sub = exif.get_ifd(IFD.Exif)
    sub[Base.DateTimeOriginal] = taken
    if offset:
        sub[Base.OffsetTimeOriginal] = offset
    buf = io.BytesIO()
    Image.new("RGB", (800, 600), (30, 120, 60)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


# --- what the phone sends is checked ----------------------------------------------

BAD = {
    "a time that is not a time": {"taken_at": "yesterday"},
    "a time without a zone": {"taken_at": "2024-05-03T14:02:00"},
    "a time in 1999": {"taken_at": "1999-12-31T12:00:00+08:00"},
    "a time in 2100": {"taken_at": "2100-01-02T00:00:00Z"},
    "a latitude past the pole": {"lat": "90.5", "lon": "114"},
    "a latitude below the south pole": {"lat": "-91", "lon": "114"},
    "a longitude past 180": {"lat": "22", "lon": "180.01"},
    "a latitude that is not a number": {"lat": "north", "lon": "114"},
    "NaN for a latitude": {"lat": "nan", "lon": "114"},
    "infinity for a longitude": {"lat": "22", "lon": "inf"},
    "a latitude alone": {"lat": "22.5"},
    "a longitude alone": {"lon": "114.1"},
    "a camera of 201 characters": {"camera": "x" * 201},
    "NUL in the camera": {"camera": "Canon\x00EOS"},
}


@pytest.mark.parametrize("params", BAD.values(), ids=BAD.keys())
async def test_bad_metadata_is_a_422_that_names_it_and_stores_nothing(
    app, client, report_at, params
):
    before = stored_files(app)
    response = await client.put(
        f"/api/reports/{report_at.id}/photos/{uuid.uuid4()}",
        content=jpeg(),
        params=params,
        headers=JPEG,
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    named = {f["field"] for f in error.get("fields", [])} or {error.get("field")}
    assert named & {*params, "lon"}, error  # lat alone: lon is named as missing
    assert await Photo.all().count() == 0
    assert await Event.filter(kind="photo").count() == 0
    assert stored_files(app) == before


async def test_the_phones_metadata_is_stored_for_a_photo_without_exif(client, report_at):
    taken = "2026-11-26T14:02:11+08:00"
    response = await upload_with(
        client,
        report_at.id,
        jpeg(),
        taken_at=taken,
        lat="22.5432",
        lon="114.058",
        camera="Xiaomi 14",
    )
    assert response.status_code == 201, response.text
    photo = await Photo.get(id=response.json()["id"])
    assert photo.taken_at == datetime(2026, 11, 26, 6, 2, 11, tzinfo=UTC)
    assert (photo.latitude, photo.longitude) == (22.5432, 114.058)
    assert photo.camera == "Xiaomi 14"
    shape = response.json()
    assert shape["taken_at"] == "2026-11-26T06:02:11.000Z"
    assert (shape["latitude"], shape["longitude"], shape["camera"]) == (
        22.5432,
        114.058,
        "Xiaomi 14",
    )


async def test_a_resend_with_other_metadata_changes_nothing(client, report_at):
    pid, data = uuid.uuid4(), jpeg()
    first = await upload_with(client, report_at.id, data, pid=pid, lat="22.5", lon="114.1")
    again = await upload_with(client, report_at.id, data, pid=pid, lat="1", lon="2", camera="X")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    photo = await Photo.get(id=pid)
    assert (photo.latitude, photo.longitude, photo.camera) == (22.5, 114.1, "")
    assert await Event.filter(kind="photo").count() == 1


async def upload_with(client, rid, data: bytes, pid=None, **params: str):
    return await client.put(
        f"/api/reports/{rid}/photos/{pid or uuid.uuid4()}",
        content=data,
        params=params,
        headers=JPEG,
    )


# --- the server's own reading of the file wins ---------------------------------------


async def test_the_files_own_gps_and_camera_win_over_the_phones(client, report_at):
    raw = (PHOTOS / "gps" / "DSCN0010.jpg").read_bytes()
    response = await upload_with(
        client,
        report_at.id,
        raw,
        lat="1.5",
        lon="2.5",
        camera="Phone",
        taken_at="2026-01-01T10:00:00+08:00",
    )
    shape = response.json()
    assert shape["latitude"] == pytest.approx(43.4674483, abs=1e-6)
    assert shape["longitude"] == pytest.approx(11.8851267, abs=1e-6)
    assert shape["camera"] == "NIKON COOLPIX P6000"
    # The file's time has no zone (a guess, read as UTC): the phone's is taken.
    assert shape["taken_at"] == "2026-01-01T02:00:00.000Z"


async def test_a_files_zoned_time_wins_over_the_phones(client, report_at):
    raw = exif_jpeg("2026:11:20 09:30:00", "+08:00")
    response = await upload_with(client, report_at.id, raw, taken_at="2026-01-01T10:00:00+08:00")
    assert response.json()["taken_at"] == "2026-11-20T01:30:00.000Z"
    assert response.json()["camera"] == "Canon EOS 5D"


async def test_the_phones_values_fill_what_the_file_lacks(client, report_at):
    raw = exif_jpeg("2026:11:20 09:30:00")  # a time, but no GPS
    response = await upload_with(client, report_at.id, raw, lat="22.5", lon="114.1", camera="X")
    shape = response.json()
    assert (shape["latitude"], shape["longitude"]) == (22.5, 114.1)
    assert shape["camera"] == "Canon EOS 5D"
    assert shape["taken_at"] == "2026-11-20T09:30:00.000Z"  # the file's, read as UTC


def test_merging_keeps_the_servers_values_and_fills_the_rest():
    tz8 = timezone(timedelta(hours=8))
    phone = PhotoQuery(
        taken_at=datetime(2026, 1, 1, 10, tzinfo=tz8), lat=1.0, lon=2.0, camera=" Phone "
    )
    own = imaging.Metadata(
        taken_at=datetime(2026, 1, 1, 3, tzinfo=UTC), latitude=3.0, longitude=4.0, camera="Cam",
        zoned=True,
    )  # fmt: skip
    assert merged(own, phone) == own
    nothing = merged(imaging.Metadata(), phone)
    assert nothing.taken_at == datetime(2026, 1, 1, 2, tzinfo=UTC)
    assert (nothing.latitude, nothing.longitude, nothing.camera) == (1.0, 2.0, "Phone")
    assert merged(imaging.Metadata(), PhotoQuery()) == imaging.Metadata()


# --- the warnings --------------------------------------------------------------------


def photo_at(taken: datetime | None, lat: float | None = None, lon: float | None = None):
    return SimpleNamespace(taken_at=taken, latitude=lat, longitude=lon)


def report_of(occurred: datetime, lat: float | None = HERE[0], lng: float | None = HERE[1]):
    return SimpleNamespace(occurred_at=occurred, latitude=lat, longitude=lng)


NOON = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)


def test_a_degree_of_latitude_is_about_111_km():
    assert distance_m(22.0, 114.0, 23.0, 114.0) == pytest.approx(111_195, rel=1e-3)
    assert distance_m(*HERE, *HERE) == 0


def test_a_photo_more_than_two_hours_before_the_incident_is_early():
    assert not check(photo_at(NOON - EARLY), report_of(NOON)).early
    early = check(photo_at(NOON - EARLY - timedelta(minutes=1)), report_of(NOON))
    assert early.early and early.early_hours == 2
    assert check(photo_at(NOON - timedelta(hours=3, minutes=40)), report_of(NOON)).early_hours == 3


def test_a_photo_after_the_incident_or_without_a_time_is_not_early():
    assert not check(photo_at(NOON + timedelta(hours=30)), report_of(NOON)).early
    nothing = check(photo_at(None), report_of(NOON))
    assert nothing == Check(before=None, distance=None)
    assert not nothing.early and not nothing.far


def test_a_photo_more_than_500_m_away_is_far_and_only_with_both_places():
    # 0.001 degrees of latitude is about 111 m.
    near = check(photo_at(NOON, HERE[0] + 0.004, HERE[1]), report_of(NOON))
    assert near.distance == pytest.approx(445, abs=2) and not near.far
    far = check(photo_at(NOON, HERE[0] + 0.011, HERE[1]), report_of(NOON))
    assert far.distance > FAR_M and far.far
    assert far.distance_text == "1.2\u00a0km"
    assert check(photo_at(NOON, *HERE), report_of(NOON, None, None)).distance is None
    assert check(photo_at(NOON), report_of(NOON)).distance is None


def test_distances_read_as_a_map_gives_them():
    # With a no-break space: "km" never sits alone on the next line.
    assert Check(None, 445.0).distance_text == "440\u00a0m"
    assert Check(None, 1234.0).distance_text == "1.2\u00a0km"
    assert Check(None, 38_400.0).distance_text == "38\u00a0km"
    assert Check(None, None).distance_text == ""


async def test_the_api_answers_each_photos_check(client, report_at):
    taken = report_at.occurred - timedelta(hours=3)
    far = (HERE[0] + 0.011, HERE[1])
    response = await upload_with(
        client, report_at.id, jpeg(), taken_at=iso(taken), lat=str(far[0]), lon=str(far[1])
    )
    assert response.json()["check"] == {
        "minutes_before_incident": 180,
        "metres_from_report": pytest.approx(1223, abs=3),
        "taken_long_before": True,
        "far_away": True,
    }
    report = (await client.get(f"/api/reports/{report_at.id}")).json()
    assert report["photos"][0]["check"]["far_away"] is True
    plain = await upload_with(client, report_at.id, jpeg(color=(0, 0, 200)))
    assert plain.json()["check"] == {
        "minutes_before_incident": None,
        "metres_from_report": None,
        "taken_long_before": False,
        "far_away": False,
    }


async def test_the_report_page_shows_when_and_where_each_photo_was_taken(client, report_at):
    recent = report_at.occurred + timedelta(minutes=2)
    await upload_with(
        client, report_at.id, jpeg(), taken_at=iso(recent), lat=str(HERE[0]), lon=str(HERE[1])
    )
    old = report_at.occurred - timedelta(hours=3, minutes=5)
    await upload_with(
        client,
        report_at.id,
        jpeg(color=(0, 90, 0)),
        taken_at=iso(old),
        lat=str(HERE[0] + 0.011),
        lon=str(HERE[1]),
    )
    page = (await client.get(f"/reports/{report_at.id}")).text
    shanghai = recent.astimezone(timezone(timedelta(hours=8)))
    assert f"拍摄于 {shanghai:%H:%M} · GPS" in page
    assert "⚠ 拍摄时间早于事发 3\u00a0小时" in page
    assert "⚠ 距上报位置 1.2\u00a0km" in page
    assert page.count("data-photo ") == 2


# --- the vendored libraries ------------------------------------------------------------

VENDORED = {
    "/static/vendor/exifr/lite.esm.js": "javascript",
    "/static/vendor/photoswipe/photoswipe.esm.min.js": "javascript",
    "/static/vendor/photoswipe/photoswipe.css": "css",
}


async def test_the_vendored_libraries_are_served_and_kept_for_offline_use(app, client):
    assets = (await client.get("/sw/precache.json")).json()["assets"]
    for url, kind in VENDORED.items():
        assert url in assets
        response = await client.get(url)
        assert response.status_code == 200
        assert kind in response.headers["content-type"]
        assert b"eval(" not in response.content and b"new Function" not in response.content


def test_each_vendored_library_keeps_its_licence():
    from server.paths import STATIC_DIR

    for name in ("exifr", "photoswipe"):
        licence = (STATIC_DIR / "vendor" / name / "LICENSE").read_text()
        assert "MIT License" in licence or "Permission is hereby granted" in licence
