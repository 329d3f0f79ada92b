"""The imaging pipeline: pure functions from uploaded bytes to what is served.

``process(raw)`` recognises the format by content (never by name or
Content-Type), refuses decompression bombs from the header alone, decodes big
JPEGs at reduced scale (draft mode, before anything loads the pixels), makes a
high-quality downscale, applies the EXIF orientation, and writes progressive
JPEGs that carry no metadata at all. The metadata worth keeping (capture
time, GPS, camera) is returned separately, for the database.

Memory: PNG, WebP and HEIC cannot be decoded at reduced scale, so a 100 MP
one is 400 MB of pixels however small its file. What a conversion will hold
is weighed from the header (pixels x bytes per pixel, plus what its decoder
keeps besides) and taken from a :class:`MemoryBudget` shared by every
conversion in the process before anything is decoded: over the rest of the
budget it waits its turn, over the whole budget it is refused (422). The
decoded image is then converted and reduced strip by strip, so it is never
copied whole.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import SupportsFloat, TypeVar

from PIL import Image, ImageCms, UnidentifiedImageError
from PIL.ExifTags import GPS, IFD, Base

from server.errors import Msg

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
MB = 1 << 20
# Bytes a decoded pixel takes in Pillow by mode ("RGB" is kept in 4); others 4.
_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
# What a decoder holds beside Pillow's image, per pixel: libwebp's canvas,
# its last two frames and the copy it returns; libheif's decoded planes
# (measured: tests/test_imaging.py holds each format to its estimate).
_DECODER_BYTES = {"WEBP": 12, "HEIF": 4}
# The decoder's row buffers, one strip in flight, the resampling pass and
# the JPEGs being written.
_WORKING_BYTES = 32 * MB
# A big decoded image is converted to RGB and reduced this many bytes at a time.
_STRIP_BYTES = 4 * MB

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
        # ``message`` is a message id or a Msg: translated when answered (server.errors).
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _hand_back_big_blocks() -> None:
    """Make memory freed by a conversion go back to the system at once.

    glibc keeps freed memory in the arena of the thread that used it, and
    after the first big free it serves big blocks from arenas too: a
    conversion's 400 MB stayed resident in one worker's arena while the next
    conversion, in the other worker, took 400 MB more (bench/photos.py: +866
    MiB for four big PNGs taken one at a time). A fixed threshold makes each
    block from 8 MiB up (Pillow's pixels come in 16 MiB blocks) a mapping of
    its own, unmapped when freed. Elsewhere than glibc there is nothing to do.
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return
    m_mmap_threshold = -3
    mallopt(m_mmap_threshold, 8 * MB)


class MemoryBudget:
    """Bytes of decoded pixels that the conversions in a process may hold at once.

    ``hold(need)`` blocks until ``need`` fits beside what others hold, in
    arrival order, so a big photo is not starved by small ones. Only the
    photo workers convert (``ONSITE_PHOTO_WORKERS``), so a wait lasts at most
    as long as the other workers' conversions: bounded without a timeout.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.in_use = 0
        self._turns: deque[object] = deque()
        self._changed = threading.Condition()
        _hand_back_big_blocks()

    @property
    def waiting(self) -> int:
        with self._changed:
            return len(self._turns)

    @contextmanager
    def hold(self, need: int) -> Iterator[None]:
        if need > self.capacity:
            raise ValueError(f"{need} bytes is more than the whole budget of {self.capacity}")
        turn = object()
        with self._changed:
            self._turns.append(turn)
            while self._turns[0] is not turn or self.in_use + need > self.capacity:
                self._changed.wait()
            self._turns.popleft()
            self.in_use += need
            self._changed.notify_all()  # the next in line may fit as well
        try:
            yield
        finally:
            with self._changed:
                self.in_use -= need
                self._changed.notify_all()


@dataclass(frozen=True)
class Metadata:
    taken_at: datetime | None = None
    latitude: float | None = None
    longitude: float | None = None
    camera: str = ""
    # Whether the file said its time's zone (OffsetTimeOriginal): without it
    # ``taken_at`` is the camera's wall clock read as UTC, a guess.
    zoned: bool = False


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


def process(raw: bytes, budget: MemoryBudget | None = None) -> Processed:
    """Turn uploaded bytes into the display JPEG, a thumbnail and the metadata.

    With a ``budget``, the memory the conversion will need is taken from it
    (waiting for others to finish) before any pixel is decoded.
    Raises PhotoError (415 unsupported, 422 undecodable, truncated or too big).
    """
    if not raw:
        raise PhotoError(422, "empty", "The photo is empty.")
    fmt = sniff(raw)
    if fmt is None:
        raise PhotoError(415, "unsupported_image", "Send a JPEG, PNG, WebP or HEIC photo.")
    if fmt == "WEBP":
        # Opening a WebP already allocates libwebp's canvas: weigh it first.
        size = _webp_size(raw)
        if size is None:
            raise PhotoError(422, "undecodable", "The photo cannot be read: no WebP header.")
        _check_pixels(*size)
        with _held(budget, fmt, size, _need(fmt, size, "RGBA")):
            return _convert(_open(raw, fmt), raw, fmt)
    im = _open(raw, fmt)
    width, height = im.size
    _check_pixels(width, height)
    coefficients = 0
    if fmt == "JPEG":
        # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT, keeping at
        # least the display size; exif_transpose or load() would decode it all.
        scale = DISPLAY_EDGE / max(width, height)
        if scale < 1:
            im.draft(None, (round(width * scale), round(height * scale)))
        coefficients = _progressive_coefficients(im, width, height)
    need = _need(fmt, im.size, im.mode) + coefficients
    with _held(budget, fmt, (width, height), need):
        return _convert(im, raw, fmt)


def _open(raw: bytes, fmt: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            # Our own pixel limit applies below; Pillow's warning would be noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(raw), formats=[fmt])
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        reason = str(exc)
        raise PhotoError(
            422, "undecodable", Msg("The photo cannot be read: {reason}", reason=reason)
        ) from None
    except Image.DecompressionBombError:
        raise PhotoError(422, "too_many_pixels", "The photo has too many pixels.") from None


def _check_pixels(width: int, height: int) -> None:
    if width < 1 or height < 1 or width * height > MAX_PIXELS:
        raise PhotoError(
            422,
            "too_many_pixels",
            Msg(
                "The photo is {width}x{height}; at most {mp} MP is accepted.",
                width=width,
                height=height,
                mp=MAX_PIXELS // 1_000_000,
            ),
        )


def _need(fmt: str, size: tuple[int, int], mode: str) -> int:
    """Bytes a conversion holds at its peak: the decoded image, what the
    decoder keeps beside it, the reduced copy, and the JPEGs being written."""
    pixels = size[0] * size[1]
    factor = max(1, int(max(size) / DISPLAY_EDGE / 2))
    decoded = pixels * (_PIXEL_BYTES.get(mode, 4) + _DECODER_BYTES.get(fmt, 0))
    # An RGB image that needs no reduction is worked on as it is, not copied.
    reduced = 0 if factor == 1 and mode == "RGB" else pixels * 4 // factor**2
    return decoded + reduced + _WORKING_BYTES


def _progressive_coefficients(im: Image.Image, width: int, height: int) -> int:
    """A progressive JPEG keeps every DCT coefficient of the full image in
    memory (2 bytes each), whatever scale it is decoded at."""
    if not (im.info.get("progressive") or im.info.get("progression")):
        return 0
    layers = getattr(im, "layer", None) or [("", 1, 1, 0)] * 3
    h_max = max(h for _, h, _, _ in layers)
    v_max = max(v for _, _, v, _ in layers)
    share = sum(h * v for _, h, v, _ in layers) / (h_max * v_max)
    return int(width * height * 2 * share)


@contextmanager
def _held(
    budget: MemoryBudget | None, fmt: str, size: tuple[int, int], need: int
) -> Iterator[None]:
    if budget is None:
        yield
        return
    if need > budget.capacity:
        raise PhotoError(
            422,
            "too_many_pixels",
            Msg(
                "The photo is {width}x{height} {format}; converting it takes about {need} MB, "
                "more than the {capacity} MB this server allows. Send a smaller image, or a JPEG.",
                width=size[0],
                height=size[1],
                format=fmt,
                need=-(-need // MB),
                capacity=budget.capacity // MB,
            ),
        )
    with budget.hold(need):
        yield


def _convert(im: Image.Image, raw: bytes, fmt: str) -> Processed:
    exif = _exif(im)
    metadata = _metadata(exif)
    orientation = exif.get(Base.Orientation) if exif else None
    icc = im.info.get("icc_profile")
    try:
        im.load()
        rgb = _reduced_rgb(im, DISPLAY_EDGE)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        im.close()  # frees the pixels now, though the traceback keeps ``im``
        reason = str(exc)
        raise PhotoError(
            422, "undecodable", Msg("The photo is damaged or truncated: {reason}", reason=reason)
        ) from None
    if rgb is not im:
        im.close()  # the full-size pixels go before the reduced image is worked on
    rgb = _fit(rgb, DISPLAY_EDGE)
    if icc:
        rgb = _to_srgb(rgb, icc)
    if orientation in _TRANSPOSE:
        rgb = rgb.transpose(_TRANSPOSE[orientation])
    display = _jpeg(rgb, DISPLAY_QUALITY, progressive=True)
    thumb = _jpeg(_fit(rgb, THUMB_EDGE), THUMB_QUALITY, progressive=False)
    return Processed(
        display=display,
        thumbnail=thumb,
        width=rgb.width,
        height=rgb.height,
        sha256=hashlib.sha256(raw).hexdigest(),
        source_format=fmt,
        metadata=metadata,
    )


def _webp_size(raw: bytes) -> tuple[int, int] | None:
    """Width and height from a WebP's first chunk (VP8X, VP8L or VP8)."""
    chunk = raw[12:16]
    if chunk == b"VP8X" and len(raw) >= 30:
        return 1 + int.from_bytes(raw[24:27], "little"), 1 + int.from_bytes(raw[27:30], "little")
    if chunk == b"VP8L" and len(raw) >= 25 and raw[20] == 0x2F:
        bits = int.from_bytes(raw[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8 " and len(raw) >= 30 and raw[23:26] == b"\x9d\x01\x2a":
        width = int.from_bytes(raw[26:28], "little") & 0x3FFF
        return width, int.from_bytes(raw[28:30], "little") & 0x3FFF
    return None


def _reduced_rgb(im: Image.Image, edge: int) -> Image.Image:
    """RGB, box-reduced by a whole factor that keeps the long edge at least
    twice ``edge`` (as resize's reducing_gap=2 would), a strip at a time: the
    full-size image is never copied or converted whole."""
    factor = int(max(im.size) / edge / 2)
    if factor < 2:
        return _to_rgb(im)
    width, height = im.size
    out = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    rows = max(1, _STRIP_BYTES // (width * 4) // factor) * factor
    for top in range(0, height, rows):
        strip = _to_rgb(im.crop((0, top, width, min(height, top + rows))))
        out.paste(strip.reduce(factor), (0, top // factor))
    return out


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
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode == "RGB":
        return im
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        im = im.point(lambda v: v / 256).convert("L")
    if im.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = im if im.mode == "RGBA" else im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba)  # an RGBA mask pastes by its alpha
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
    taken = _safe(lambda: _taken_at(exif))
    return Metadata(
        taken_at=taken[0] if taken else None,
        zoned=bool(taken and taken[1]),
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
    """An EXIF string without NUL bytes anywhere (PostgreSQL refuses them in text)."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "").strip()


def _camera(exif: Image.Exif) -> str:
    make, model = _text(exif.get(Base.Make, "")), _text(exif.get(Base.Model, ""))
    if make and model.lower().startswith(make.lower()):
        make = ""
    return f"{make} {model}".strip()[:200]


def _taken_at(exif: Image.Exif) -> tuple[datetime, bool] | None:
    """The capture time in UTC, and whether the file said its zone."""
    sub = exif.get_ifd(IFD.Exif)
    raw = sub.get(Base.DateTimeOriginal) or exif.get(Base.DateTime)
    if not raw:
        return None
    taken = datetime.strptime(_text(raw)[:19], "%Y:%m:%d %H:%M:%S")
    offset = _text(sub.get(Base.OffsetTimeOriginal, "") or "")
    if len(offset) == 6 and offset[0] in "+-":
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        return taken.replace(tzinfo=timezone(sign * delta)).astimezone(UTC), True
    # No offset in the file: the phone's local time, which we cannot place.
    return taken.replace(tzinfo=UTC), False


def _gps(exif: Image.Exif) -> dict[str, float] | None:
    gps = exif.get_ifd(IFD.GPSInfo)
    if not gps or GPS.GPSLatitude not in gps or GPS.GPSLongitude not in gps:
        return None
    lat = _degrees(gps[GPS.GPSLatitude], _text(gps.get(GPS.GPSLatitudeRef, "N")))
    lng = _degrees(gps[GPS.GPSLongitude], _text(gps.get(GPS.GPSLongitudeRef, "E")))
    if not (-90 <= lat <= 90 and -180 <= lng <= 180) or (lat == 0 and lng == 0):
        return None
    return {"latitude": round(lat, 7), "longitude": round(lng, 7)}


def _degrees(dms: tuple[SupportsFloat, ...], ref: str) -> float:
    d, m, s = (float(x) for x in dms)
    value = d + m / 60 + s / 3600
    return -value if ref.upper() in ("S", "W") else value
