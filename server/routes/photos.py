"""Photo upload and authorised download.

The body is the raw image; its size is checked while it is read (413 before
it is all in). Pillow work runs in worker threads behind a capacity limiter,
so parallel 12 MP uploads keep memory bounded and the event loop free.
"""

from __future__ import annotations

import hashlib
import uuid

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from tortoise.exceptions import IntegrityError

from server import photos as pipeline
from server import reports as report_service
from server.auth import current_user, requires
from server.errors import ApiError
from server.models import Event, Photo, PhotoKind, Role
from server.photo_store import DISPLAY, THUMB, PhotoStore

REPAIR_ROLES = {Role.TECHNICIAN, Role.SUPERVISOR, Role.ADMIN}


def _store(request: Request) -> PhotoStore:
    return request.app.state.photo_store


async def read_limited(request: Request, limit: int) -> bytes:
    """The body, refusing with 413 as soon as it passes ``limit`` bytes."""
    too_large = ApiError(413, "too_large", f"The photo is over {limit // 1_000_000} MB.")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise too_large
    return bytes(buf)


def _ids(request: Request) -> tuple[uuid.UUID, uuid.UUID]:
    try:
        return (
            uuid.UUID(request.path_params["report_id"]),
            uuid.UUID(request.path_params["photo_id"]),
        )
    except ValueError:
        raise ApiError(422, "invalid", "Report and photo ids are UUIDs.") from None


@requires()
async def put_photo(request: Request) -> Response:
    """Upload a photo.
    ---
    summary: Attach a photo (the raw image as the body) under the id the phone made; a resend is safe.
    parameters:
      - {name: report_id, in: path, required: true, schema: {type: string, format: uuid}}
      - {name: photo_id, in: path, required: true, schema: {type: string, format: uuid}}
      - {name: kind, in: query, schema: {type: string, enum: [evidence, repair_before, repair_after]}}
    requestBody:
      content:
        image/*: {schema: {type: string, format: binary}}
    responses:
      201: {description: Stored; the photo.}
      200: {description: "The same photo again: nothing changed."}
      403: {description: "Not the user's report, or a repair photo from a guard."}
      404: {description: No such report.}
      409: {description: "Another photo, or another report, under this id."}
      413: {description: Over the size limit.}
      415: {description: Not a JPEG, PNG, WebP or HEIC image.}
      422: {description: "Damaged, truncated, empty, or too many pixels."}
    """
    user = current_user(request)
    report_id, photo_id = _ids(request)
    try:
        kind = PhotoKind(request.query_params.get("kind", PhotoKind.EVIDENCE.value))
    except ValueError:
        raise ApiError(422, "invalid", "kind: evidence, repair_before or repair_after.") from None
    report = await report_service.get_visible(user, report_id)
    if kind != PhotoKind.EVIDENCE and user.role not in REPAIR_ROLES:
        raise ApiError(403, "forbidden", "Repair photos come from technicians and supervisors.")
    settings = request.app.state.settings
    raw = await read_limited(request, settings.max_photo_mb * 1_000_000)
    digest = hashlib.sha256(raw).hexdigest()

    existing = await Photo.get_or_none(id=photo_id)
    if existing is not None:
        return _resend(existing, report_id, digest, kind)
    try:
        processed = await anyio.to_thread.run_sync(
            pipeline.process, raw, limiter=request.app.state.photo_limiter
        )
    except pipeline.PhotoError as exc:
        raise ApiError(exc.status, exc.code, exc.message) from None
    del raw  # the original is not kept: only what is served, without metadata
    store = _store(request)
    await anyio.to_thread.run_sync(store.write, photo_id, DISPLAY, processed.display)
    await anyio.to_thread.run_sync(store.write, photo_id, THUMB, processed.thumbnail)
    meta = processed.metadata
    try:
        photo = await Photo.create(
            id=photo_id,
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
    except IntegrityError:
        # A concurrent resend of this photo won; its files equal ours.
        existing = await Photo.get(id=photo_id)
        return _resend(existing, report_id, digest, kind)
    await Event.create(
        report=report, actor=user, kind="photo", data={"photo": str(photo_id), "kind": kind.value}
    )
    return JSONResponse(report_service.photo_json(photo, report_id), status_code=201)


def _resend(existing: Photo, report_id: uuid.UUID, digest: str, kind: PhotoKind) -> Response:
    same = (
        existing.report_id == report_id  # type: ignore[attr-defined]
        and existing.sha256 == digest
        and existing.kind == kind
    )
    if not same:
        raise ApiError(409, "conflict", "A different photo was already sent with this id.")
    return JSONResponse(report_service.photo_json(existing, report_id))


async def _serve(request: Request, variant: str) -> Response:
    user = current_user(request)
    report_id, photo_id = _ids(request)
    await report_service.get_visible(user, report_id)
    photo = await Photo.get_or_none(id=photo_id, report_id=report_id)
    path = _store(request).path(photo_id, variant)
    if photo is None or not path.exists():
        raise ApiError(404, "not_found", "No such photo.")
    # Private: evidence must not sit in shared caches; immutable: a photo id
    # never changes its bytes, so the phone may keep it.
    return FileResponse(
        path,
        media_type="image/jpeg",
        headers={"Cache-Control": "private, max-age=31536000, immutable"},
    )


@requires()
async def get_photo(request: Request) -> Response:
    """A photo.
    ---
    summary: "The display JPEG (long edge <= 1600 px, no metadata), for those who may see the report."
    parameters:
      - {name: report_id, in: path, required: true, schema: {type: string, format: uuid}}
      - {name: photo_id, in: path, required: true, schema: {type: string, format: uuid}}
    responses:
      200: {description: image/jpeg}
      403: {description: Not the user's report.}
      404: {description: No such photo.}
    """
    return await _serve(request, DISPLAY)


@requires()
async def get_thumbnail(request: Request) -> Response:
    """A thumbnail.
    ---
    summary: "The thumbnail JPEG (<= 320 px, no metadata)."
    parameters:
      - {name: report_id, in: path, required: true, schema: {type: string, format: uuid}}
      - {name: photo_id, in: path, required: true, schema: {type: string, format: uuid}}
    responses:
      200: {description: image/jpeg}
      403: {description: Not the user's report.}
      404: {description: No such photo.}
    """
    return await _serve(request, THUMB)


routes = [
    Route("/api/reports/{report_id}/photos/{photo_id}", put_photo, methods=["PUT"]),
    Route("/api/reports/{report_id}/photos/{photo_id}", get_photo, methods=["GET"]),
    Route("/api/reports/{report_id}/photos/{photo_id}/thumb", get_thumbnail, methods=["GET"]),
]
