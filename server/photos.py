"""Photos of a report: the idempotent upload, who may add which kind, the files.

A photo is identified by a UUID made on the phone. Its bytes are hashed: the
same id with the same bytes, report and kind is a resend (200, nothing
changes), anything else under that id a conflict (409). The imaging
pipeline runs in worker threads behind a capacity limiter and a memory
budget shared by the process (``ONSITE_PHOTO_MEMORY_MB``), so parallel
uploads keep memory bounded and the event loop free. Its files are staged
first and put in place by the upload that wins the row insert, inside the
row's transaction: the file served is the one the row describes, and there
is never a row without its files.

The phone re-encodes a photo before sending it, which drops its EXIF, so it
reads the capture time, GPS and camera first and sends them as query
parameters; the server's own reading of the file wins where it has a value
(:func:`merged`). :func:`check` compares a photo's time and place with its
report's, for the warnings shown beside it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server import imaging
from server.access import report_for, require_open, require_photo_kind
from server.context import Context
from server.errors import ApiError
from server.models import Event, Photo, PhotoKind, Report, User
from server.photo_store import DISPLAY, THUMB, Opened
from server.schemas import IN_RANGE, Shape, Time, Timestamp, Written

# A photo taken more than this before the incident is marked. The guard gives
# the incident's time by hand, often rounded or from memory, and camera
# clocks drift by minutes: two hours spares those, while a photo from an
# earlier shift or day (an old one from the gallery) is still caught.
EARLY = timedelta(hours=2)
# A photo taken further than this from the report's location is marked. A
# phone's fix indoors or between towers is often 100-200 m off, and a
# residential compound (小区) spans a few hundred metres: 500 m spares those,
# while a photo from another street is caught.
FAR_M = 500
CAMERA_MAX = 200
EARTH_RADIUS_M = 6_371_000


class PhotoQuery(BaseModel):
    """What the phone says of a photo besides its bytes: its kind, and what
    it read from the original's EXIF before re-encoding dropped it."""

    model_config = ConfigDict(extra="ignore")

    kind: PhotoKind = PhotoKind.EVIDENCE
    taken_at: Time | None = Field(
        None,
        description="when the camera took it (EXIF DateTimeOriginal with its offset), "
        f"ISO 8601 with a zone, {IN_RANGE}",
    )
    lat: float | None = Field(
        None, ge=-90, le=90, allow_inf_nan=False, description="where it was taken (EXIF GPS)"
    )
    lon: float | None = Field(None, ge=-180, le=180, allow_inf_nan=False, validate_default=True)
    camera: str = Field(
        "", max_length=CAMERA_MAX, description="the camera's make and model (EXIF Make, Model)"
    )

    # Checked on lon, which is validated after lat (even when missing), so
    # the error names a parameter rather than the whole query.
    @field_validator("lon")
    @classmethod
    def _both_coordinates(cls, lon: float | None, info: ValidationInfo) -> float | None:
        if "lat" in info.data and (info.data["lat"] is None) != (lon is None):
            raise ValueError("lat and lon go together: send both or neither")
        return lon


def merged(own: imaging.Metadata, query: PhotoQuery) -> imaging.Metadata:
    """The metadata to store: the server's own reading of the file where it
    has a value, else what the phone read before re-encoding.

    One exception: a time whose file gave no zone is the camera's wall clock
    read as UTC, a guess; the phone read the same clock in its own zone (the
    phone's camera took it), so its time is taken instead.
    """
    taken_at = own.taken_at
    if query.taken_at is not None and (taken_at is None or not own.zoned):
        taken_at = query.taken_at
    latitude, longitude = own.latitude, own.longitude
    if latitude is None or longitude is None:
        latitude, longitude = query.lat, query.lon
    camera = own.camera or query.camera.replace("\x00", "").strip()[:CAMERA_MAX]
    return dataclasses.replace(
        own,
        taken_at=taken_at,
        zoned=own.zoned or taken_at is not own.taken_at,
        latitude=latitude,
        longitude=longitude,
        camera=camera,
    )


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Metres between two points on the Earth (haversine, a sphere: within
    0.5 %, plenty to tell the next building from the next street)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


@dataclass(frozen=True)
class Check:
    """How a photo's own time and place compare with its report's."""

    # How long before the incident it was taken (negative: after); None
    # without a capture time.
    before: timedelta | None
    # Metres from the report's location; None unless both have coordinates.
    distance: float | None

    @property
    def early(self) -> bool:
        return self.before is not None and self.before > EARLY

    @property
    def far(self) -> bool:
        return self.distance is not None and self.distance > FAR_M

    @property
    def early_hours(self) -> int:
        """Whole hours before the incident (for the warning's text)."""
        return int(self.before.total_seconds() // 3600) if self.before else 0

    @property
    def distance_text(self) -> str:
        """The distance as a map gives it: 650 m, 1.2 km, 38 km."""
        if self.distance is None:
            return ""
        # A no-break space: the unit never goes to the next line alone.
        if self.distance < 1000:
            return f"{round(self.distance, -1):.0f}\u00a0m"
        km = self.distance / 1000
        return f"{km:.1f}\u00a0km" if km < 10 else f"{km:.0f}\u00a0km"


def check(photo: Photo, report: Report) -> Check:
    """``photo``'s time against the report's occurred_at, its place against
    the report's location."""
    before = report.occurred_at - photo.taken_at if photo.taken_at is not None else None
    here, there = (photo.latitude, photo.longitude), (report.latitude, report.longitude)
    distance = None
    if (
        here[0] is not None
        and here[1] is not None
        and there[0] is not None
        and there[1] is not None
    ):
        distance = distance_m(here[0], here[1], there[0], there[1])
    return Check(before=before, distance=distance)


class PhotoCheckOut(Shape):
    """How the photo's capture time and place compare with the report's."""

    minutes_before_incident: int | None = Field(
        description="taken this long before the incident (negative: after); "
        "null without a capture time"
    )
    metres_from_report: int | None = Field(
        description="from the report's location; null unless both have coordinates"
    )
    taken_long_before: bool = Field(
        description=f"taken more than {EARLY.seconds // 3600} hours before the incident"
    )
    far_away: bool = Field(description=f"taken more than {FAR_M} m from the report's location")

    @classmethod
    def of(cls, c: Check) -> PhotoCheckOut:
        return cls(
            minutes_before_incident=None
            if c.before is None
            else math.floor(c.before.total_seconds() / 60),
            metres_from_report=None if c.distance is None else round(c.distance),
            taken_long_before=c.early,
            far_away=c.far,
        )


class PhotoOut(Shape):
    """A photo: its metadata and the authorised URLs of its two sizes."""

    id: uuid.UUID
    kind: PhotoKind
    width: int
    height: int
    sha256: str
    taken_at: Timestamp | None
    latitude: float | None
    longitude: float | None
    camera: str
    check: PhotoCheckOut
    url: str
    thumbnail_url: str

    @classmethod
    def of(cls, photo: Photo, report: Report) -> PhotoOut:
        """``photo`` of ``report`` (whose time and place it is checked against)."""
        url = f"/api/reports/{photo.report_id}/photos/{photo.id}"
        return cls(
            id=photo.id,
            kind=photo.kind,
            width=photo.width,
            height=photo.height,
            sha256=photo.sha256,
            taken_at=photo.taken_at,
            latitude=photo.latitude,
            longitude=photo.longitude,
            camera=photo.camera,
            check=PhotoCheckOut.of(check(photo, report)),
            url=url,
            thumbnail_url=f"{url}/thumb",
        )


def parse_ids(report_id: str, photo_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    try:
        return uuid.UUID(report_id), uuid.UUID(photo_id)
    except ValueError:
        raise ApiError(422, "invalid", "Report and photo ids are UUIDs.") from None


async def put_photo(
    ctx: Context, user: User, report_id: str, photo_id: str, query: PhotoQuery, raw: bytes
) -> Written[PhotoOut]:
    """Attach the image ``raw`` to a report under the phone's ``photo_id``,
    of ``query.kind`` and with the metadata the phone read (see :func:`merged`)."""
    kind = query.kind
    rid, pid = parse_ids(report_id, photo_id)
    report = await report_for(user, rid)
    require_photo_kind(user, report, kind)
    digest = hashlib.sha256(raw).hexdigest()
    existing = await Photo.get_or_none(id=pid)
    if existing is not None:
        return _resend(existing, report, digest, kind)
    require_open(report)
    budget = memory_budget(ctx.settings.photo_memory_mb)
    try:
        processed = await anyio.to_thread.run_sync(
            imaging.process, raw, budget, limiter=ctx.photo_limiter
        )
    except imaging.PhotoError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    del raw  # the original is not kept: only what is served, without metadata
    files = {DISPLAY: processed.display, THUMB: processed.thumbnail}
    pending = await ctx.photo_store.prepare(pid, files)
    meta = merged(processed.metadata, query)
    try:
        async with in_transaction():
            photo = await Photo.create(
                id=pid,
                report=report,
                kind=kind,
                uploaded_by=user,
                sha256=digest,
                width=processed.width,
                height=processed.height,
                display_bytes=len(processed.display),
                thumb_bytes=len(processed.thumbnail),
                taken_at=meta.taken_at,
                latitude=meta.latitude,
                longitude=meta.longitude,
                camera=meta.camera,
            )
            await Event.create(
                report=report,
                actor=user,
                kind="photo",
                data={"photo": str(pid), "kind": kind.value},
            )
            # Only the upload that inserted the row gets here: its files go
            # into place before the commit, so a row never lacks them.
            await pending.place()
    except IntegrityError:
        # Another upload of this id won; its files are in place, ours never were.
        winner = await Photo.get_or_none(id=pid)
        if winner is None:
            raise
        return _resend(winner, report, digest, kind)
    finally:
        await pending.drop()  # whatever was not placed
    ctx.committed()
    return Written(PhotoOut.of(photo, report), created=True)


@cache
def memory_budget(megabytes: int) -> imaging.MemoryBudget:
    """The one budget of this process for ``ONSITE_PHOTO_MEMORY_MB``."""
    return imaging.MemoryBudget(megabytes * imaging.MB)


def _resend(existing: Photo, report: Report, digest: str, kind: PhotoKind) -> Written[PhotoOut]:
    # The metadata sent again is not compared: the photo is its bytes, and
    # what was stored the first time stays.
    same = existing.report_id == report.id and existing.sha256 == digest and existing.kind == kind
    if not same:
        raise ApiError(409, "conflict", "A different photo was already sent with this id.")
    return Written(PhotoOut.of(existing, report))


async def photo_file(
    ctx: Context, user: User, report_id: str, photo_id: str, variant: str
) -> Opened:
    """One size of a photo, for someone who may see its report: looked for
    in the store only once its row is found, so nothing without a row is served."""
    rid, pid = parse_ids(report_id, photo_id)
    await report_for(user, rid)
    photo = await Photo.get_or_none(id=pid, report_id=rid)
    opened = None if photo is None else await ctx.photo_store.open(pid, variant)
    if opened is None:
        raise ApiError(404, "not_found", "No such photo.")
    return opened


async def with_rows(ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Those of ``ids`` that have a photo row (the store's sweep asks a page at a time)."""
    if not ids:
        return set()
    found = await Photo.filter(id__in=list(ids)).values_list("id", flat=True)
    return {uuid.UUID(str(pid)) for pid in found}
