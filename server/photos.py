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
"""

from __future__ import annotations

import hashlib
import uuid
from functools import cache
from pathlib import Path

import anyio.to_thread
from pydantic import BaseModel, ConfigDict
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from server import imaging
from server.context import Context
from server.errors import ApiError
from server.models import Event, Photo, PhotoKind, Report, Role, User
from server.photo_store import DISPLAY, THUMB
from server.schemas import Shape, Timestamp, Written

# Besides the assignee, these may add repair photos (documenting a job themselves).
SUPERVISING = {Role.SUPERVISOR, Role.ADMIN}


class PhotoQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    kind: PhotoKind = PhotoKind.EVIDENCE


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
    url: str
    thumbnail_url: str

    @classmethod
    def of(cls, photo: Photo) -> PhotoOut:
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
            url=url,
            thumbnail_url=f"{url}/thumb",
        )


def parse_ids(report_id: str, photo_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    try:
        return uuid.UUID(report_id), uuid.UUID(photo_id)
    except ValueError:
        raise ApiError(422, "invalid", "Report and photo ids are UUIDs.") from None


async def put_photo(
    ctx: Context, user: User, report_id: str, photo_id: str, kind: PhotoKind, raw: bytes
) -> Written[PhotoOut]:
    """Attach the image ``raw`` to a report under the phone's ``photo_id``."""
    rid, pid = parse_ids(report_id, photo_id)
    report = await Report.seen_by(user, rid)
    if kind != PhotoKind.EVIDENCE and not (
        user.id == report.assignee_id or user.role in SUPERVISING
    ):
        raise ApiError(
            403, "forbidden", "Repair photos come from the technician it is assigned to."
        )
    digest = hashlib.sha256(raw).hexdigest()
    existing = await Photo.get_or_none(id=pid)
    if existing is not None:
        return _resend(existing, report.id, digest, kind)
    report.ensure_open()
    budget = memory_budget(ctx.settings.photo_memory_mb)
    try:
        processed = await anyio.to_thread.run_sync(
            imaging.process, raw, budget, limiter=ctx.photo_limiter
        )
    except imaging.PhotoError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    del raw  # the original is not kept: only what is served, without metadata
    files = {DISPLAY: processed.display, THUMB: processed.thumbnail}
    staged = await anyio.to_thread.run_sync(ctx.photo_store.stage, pid, files)
    meta = processed.metadata
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
            await anyio.to_thread.run_sync(staged.publish)
    except IntegrityError:
        # Another upload of this id won; its files are in place, ours never were.
        winner = await Photo.get_or_none(id=pid)
        if winner is None:
            raise
        return _resend(winner, report.id, digest, kind)
    finally:
        staged.discard()  # whatever was not published (quick: unlinks only)
    ctx.committed()
    return Written(PhotoOut.of(photo), created=True)


@cache
def memory_budget(megabytes: int) -> imaging.MemoryBudget:
    """The one budget of this process for ``ONSITE_PHOTO_MEMORY_MB``."""
    return imaging.MemoryBudget(megabytes * imaging.MB)


def _resend(
    existing: Photo, report_id: uuid.UUID, digest: str, kind: PhotoKind
) -> Written[PhotoOut]:
    same = existing.report_id == report_id and existing.sha256 == digest and existing.kind == kind
    if not same:
        raise ApiError(409, "conflict", "A different photo was already sent with this id.")
    return Written(PhotoOut.of(existing))


async def photo_file(ctx: Context, user: User, report_id: str, photo_id: str, variant: str) -> Path:
    """The file of one size of a photo, for someone who may see its report."""
    rid, pid = parse_ids(report_id, photo_id)
    await Report.seen_by(user, rid)
    photo = await Photo.get_or_none(id=pid, report_id=rid)
    path = ctx.photo_store.path(pid, variant)
    if photo is None or not path.exists():
        raise ApiError(404, "not_found", "No such photo.")
    return path
