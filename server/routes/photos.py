"""Photo upload (the raw image as the body) and authorised download."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute

from server import photos
from server.api import Answer, ApiRoute, Raw, written
from server.models import User
from server.photo_store import DISPLAY, THUMB
from server.photos import PhotoOut, PhotoQuery

IMAGE = Raw(
    "image/*",
    "A JPEG, PNG, WebP or HEIC image.",
    limit=lambda settings: settings.max_photo_mb * 1_000_000,
)
# Private: evidence must not sit in shared caches; immutable: a photo id
# never changes its bytes, so the phone may keep it.
CACHE = {"Cache-Control": "private, max-age=31536000, immutable"}


async def put_photo(request: Request, user: User, body: bytes, query: PhotoQuery) -> Response:
    """Attach a photo under the id the phone made; a resend is safe.

    The phone re-encodes a photo before sending it, which drops its EXIF: it
    sends what it read there (capture time, GPS, camera) as query parameters.
    What the server reads in the file itself wins where it has a value.
    """
    result = await photos.put_photo(
        request.app.state.context,
        user,
        request.path_params["report_id"],
        request.path_params["photo_id"],
        query,
        body,
    )
    return written(result)


async def _serve(request: Request, user: User, variant: str) -> Response:
    opened = await photos.photo_file(
        request.app.state.context,
        user,
        request.path_params["report_id"],
        request.path_params["photo_id"],
        variant,
    )
    if opened.path is not None:
        return FileResponse(opened.path, media_type="image/jpeg", headers=CACHE)
    # From object storage: streamed through here, never a link to the bucket.
    assert opened.chunks is not None
    headers = {**CACHE, "Content-Length": str(opened.size)}
    return StreamingResponse(opened.chunks, media_type="image/jpeg", headers=headers)


async def get_photo(request: Request, user: User) -> Response:
    """The display JPEG (long edge <= 1600 px, no metadata), for those who may see the report."""
    return await _serve(request, user, DISPLAY)


async def get_thumbnail(request: Request, user: User) -> Response:
    """The thumbnail JPEG (<= 320 px, no metadata)."""
    return await _serve(request, user, THUMB)


READ_ANSWERS: dict[int, Answer] = {
    200: Raw("image/jpeg", "The JPEG."),
    403: "Not the user's report.",
    404: "No such report or photo.",
    422: "An id is not a UUID.",
}

routes: list[BaseRoute] = [
    ApiRoute(
        "PUT",
        "/api/reports/{report_id}/photos/{photo_id}",
        put_photo,
        body=IMAGE,
        query=PhotoQuery,
        responses={
            201: (PhotoOut, "Stored: the photo."),
            200: (PhotoOut, "The same photo again: nothing changed."),
            403: "Not the user's report, or a repair photo from a guard.",
            404: "No such report.",
            409: "Another photo, or another report, under this id.",
            415: "Not a JPEG, PNG, WebP or HEIC image.",
            422: "Damaged, truncated, empty, too many pixels, or more memory to convert than "
            "the server allows (ONSITE_PHOTO_MEMORY_MB); an id that is not a UUID; or "
            "metadata out of range (a time that is not ISO 8601 with a zone, lat or lon "
            "alone or off the globe, a camera over 200 characters): nothing is stored.",
        },
    ),
    ApiRoute(
        "GET", "/api/reports/{report_id}/photos/{photo_id}", get_photo, responses=READ_ANSWERS
    ),
    ApiRoute(
        "GET",
        "/api/reports/{report_id}/photos/{photo_id}/thumb",
        get_thumbnail,
        responses=READ_ANSWERS,
    ),
]
