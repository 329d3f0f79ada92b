"""Sample photos (tests/photos, CC BY-SA 4.0: see its README) and images made here."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

from PIL import Image

from tests.helpers.core import CSRF

PHOTOS = Path(__file__).resolve().parents[1] / "photos"
JPEG = {**CSRF, "Content-Type": "image/jpeg"}


def sample(name: str) -> bytes:
    """The bytes of ``tests/photos/<name>``, e.g. ``gps/DSCN0010.jpg``."""
    return (PHOTOS / name).read_bytes()


def jpeg(size: tuple[int, int] = (2000, 1500), color=(200, 30, 30), quality: int = 90) -> bytes:
    """A JPEG of one flat colour."""
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A tiny PNG whose header claims a huge image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data))
            + kind
            + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png_header(mode: str, width: int, height: int) -> bytes:
    """A PNG that claims ``width`` x ``height`` (RGBA or RGB, 8 bits) with a token of data."""
    colour = {"RGB": 2, "RGBA": 6}[mode]
    data = png_bomb(width, height)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return data[:8] + chunk + crc + data[33:]


def stored_files(app) -> list:
    store = app.state.context.photo_store
    return sorted([*store.files(), *store.temporaries()])


def colour_of(jpeg_bytes: bytes) -> tuple[int, ...]:
    return Image.open(io.BytesIO(jpeg_bytes)).convert("RGB").getpixel((5, 5))


async def upload(client, rid, pid, data: bytes, kind: str | None = None, headers=JPEG):
    params = {"kind": kind} if kind else None
    return await client.put(
        f"/api/reports/{rid}/photos/{pid}", content=data, params=params, headers=headers
    )
