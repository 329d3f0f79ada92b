"""The imaging pipeline: pure functions from uploaded bytes to what is served.

``process(raw)`` recognises the format by content (never by name or
Content-Type), refuses decompression bombs from the header alone, decodes big
JPEGs at reduced scale (draft mode, before anything loads the pixels), makes a
high-quality downscale, applies the EXIF orientation, and writes progressive
JPEGs that carry no metadata at all. The metadata worth keeping (capture
time, GPS, camera) is returned separately, for the database.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

from PIL import Image, ImageCms, UnidentifiedImageError
from PIL.ExifTags import GPS, IFD, Base

try:  # HEIC/HEIF from iPhones
    from pillow_heif import register_heif_opener

    register_heif_opener()
except ImportError:  # pragma: no cover - a dependency, but keep JPEG working without it
    pass

DISPLAY_EDGE = 1600
THUMB_EDGE = 320
# Chosen with bench/photos.py: the smallest quality whose SSIM against a
# reference downscale stays >= 0.95 on the phone photos, at ~250-350 KB.
DISPLAY_QUALITY = 80
THUMB_QUALITY = 72
# 100 MP covers 108 MP phone sensors; a 30000 x 30000 bomb is 900 MP.
MAX_PIXELS = 100_000_000

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "JPEG"),
    (0, b"\x89PNG\r\n\x1a\n", "PNG"),
)
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SRGB = ImageCms.createProfile("sRGB")

T = TypeVar("T")


class PhotoError(Exception):
    """Bad input: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Metadata:
    taken_at: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    camera: str = ""


@dataclass(frozen=True)
class Processed:
    display: bytes
    thumbnail: bytes
    width: int
    height: int
    sha256: str
    source_format: str
    metadata: Metadata


def sniff(raw: bytes) -> str | None:
    """The image format of ``raw`` by its magic bytes, or None if unsupported."""
    for offset, magic, name in _SIGNATURES:
        if raw[offset : offset + len(magic)] == magic:
            return name
    if raw[:4] == b"RIFF" and raw[8:12] == b"WEBP":
        return "WEBP"
    if raw[4:8] == b"ftyp" and raw[8:12] in _HEIF_BRANDS:
        return "HEIF"
    return None


def process(raw: bytes) -> Processed:
    """Turn uploaded bytes into the display JPEG, a thumbnail and the metadata.

    Raises PhotoError (415 unsupported, 422 undecodable, truncated or too big).
    """
    if not raw:
        raise PhotoError(422, "empty", "The photo is empty.")
    fmt = sniff(raw)
    if fmt is None:
        raise PhotoError(415, "unsupported_image", "Send a JPEG, PNG, WebP or HEIC photo.")
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies below; Pillow's warning would be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im: Image.Image = Image.open(io.BytesIO(raw), formats=[fmt])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise PhotoError(422, "undecodable", f"The photo cannot be read: {exc}") from None
    except Image.DecompressionBombError:
        raise PhotoError(422, "too_many_pixels", "The photo has too many pixels.") from None
    width, height = im.size
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise PhotoError(
            422,
            "too_many_pixels",
            f"The photo is {width}x{height}; at most {MAX_PIXELS // 1_000_000} MP is accepted.",
        )
    exif = _exif(im)
    metadata = _metadata(exif)
    orientation = exif.get(Base.Orientation) if exif else None
    icc = im.info.get("icc_profile")

    if fmt == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT, keeping at
        # least the display size; exif_transpose or load() would decode it all.
        scale = DISPLAY_EDGE / max(width, height)
        if scale < 1:
            im.draft(None, (round(width * scale), round(height * scale)))
    try:
        im.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise PhotoError(422, "undecodable", f"The photo is damaged or truncated: {exc}") from None

    im = _to_rgb(im)
    im = _fit(im, DISPLAY_EDGE)
    if icc:
        im = _to_srgb(im, icc)
    if orientation in _TRANSPOSE:
        im = im.transpose(_TRANSPOSE[orientation])
    display = _jpeg(im, DISPLAY_QUALITY, progressive=True)
    thumb = _jpeg(_fit(im, THUMB_EDGE), THUMB_QUALITY, progressive=False)
    return Processed(
        display=display,
        thumbnail=thumb,
        width=im.width,
        height=im.height,
        sha256=hashlib.sha256(raw).hexdigest(),
        source_format=fmt,
        metadata=metadata,
    )


def _fit(im: Image.Image, edge: int) -> Image.Image:
    """Downscale so the long edge is at most ``edge``.

    A big reduction box-reduces by whole factors, then finishes with Lanczos.
    The last small step after a JPEG's draft decode (at most 2x; the DCT
    scaling has already filtered the image) uses bicubic, a third cheaper at
    the same SSIM (bench/photos.py).
    """
    scale = edge / max(im.size)
    if scale >= 1:
        return im
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    if scale >= 0.5:
        return im.resize(size, Image.Resampling.BICUBIC)
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _to_rgb(im: Image.Image) -> Image.Image:
    """RGB for JPEG: transparency goes onto white, CMYK and 16-bit converted."""
    if im.mode == "RGB":
        return im
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    if im.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def _to_srgb(im: Image.Image, icc: bytes) -> Image.Image:
    """Convert from an embedded colour profile (e.g. Display P3) to sRGB."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.profileToProfile(im, source, _SRGB, outputMode="RGB") or im
    except (ImageCms.PyCMSError, OSError, ValueError):
        return im  # a broken profile: keep the pixels as they are


def _jpeg(im: Image.Image, quality: int, *, progressive: bool) -> bytes:
    out = io.BytesIO()
    # No exif=, icc_profile= or comment: the served file carries no metadata.
    im.save(out, "JPEG", quality=quality, progressive=progressive, optimize=not progressive)
    return out.getvalue()


def _exif(im: Image.Image) -> Image.Exif | None:
    try:
        return im.getexif()
    except Exception:  # corrupt EXIF must never stop a photo
        return None


def _metadata(exif: Image.Exif | None) -> Metadata:
    if not exif:
        return Metadata()
    return Metadata(
        taken_at=_safe(lambda: _taken_at(exif)),
        camera=_safe(lambda: _camera(exif)) or "",
        **(_safe(lambda: _gps(exif)) or {}),
    )


def _safe(read: Callable[[], T]) -> T | None:
    """``read()``, or None when odd metadata makes it fail."""
    try:
        return read()
    except Exception:  # corrupt or unusual EXIF is ignored, not fatal
        return None


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip("\x00 ").strip()


def _camera(exif: Image.Exif) -> str:
    make, model = _text(exif.get(Base.Make, "")), _text(exif.get(Base.Model, ""))
    if make and model.lower().startswith(make.lower()):
        make = ""
    return f"{make} {model}".strip()[:200]


def _taken_at(exif: Image.Exif) -> datetime | None:
    sub = exif.get_ifd(IFD.Exif)
    raw = sub.get(Base.DateTimeOriginal) or exif.get(Base.DateTime)
    if not raw:
        return None
    taken = datetime.strptime(_text(raw)[:19], "%Y:%m:%d %H:%M:%S")
    offset = _text(sub.get(Base.OffsetTimeOriginal, "") or "")
    if len(offset) == 6 and offset[0] in "+-":
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        return taken.replace(tzinfo=timezone(sign * delta)).astimezone(UTC)
    # No offset in the file: the phone's local time, which we cannot place.
    return taken.replace(tzinfo=UTC)


def _gps(exif: Image.Exif) -> dict[str, float] | None:
    gps = exif.get_ifd(IFD.GPSInfo)
    if not gps or GPS.GPSLatitude not in gps or GPS.GPSLongitude not in gps:
        return None
    lat = _degrees(gps[GPS.GPSLatitude], _text(gps.get(GPS.GPSLatitudeRef, "N")))
    lng = _degrees(gps[GPS.GPSLongitude], _text(gps.get(GPS.GPSLongitudeRef, "E")))
    if not (-90 <= lat <= 90 and -180 <= lng <= 180) or (lat == 0 and lng == 0):
        return None
    return {"latitude": round(lat, 7), "longitude": round(lng, 7)}


def _degrees(dms: tuple, ref: str) -> float:
    d, m, s = (float(x) for x in dms)
    value = d + m / 60 + s / 3600
    return -value if ref.upper() in ("S", "W") else value
