"""The photo pipeline on real phone photos and on hostile files made here."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFile, ImageStat

from server import imaging
from server.imaging import PhotoError, process

PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"
# Outside CI a checkout without ../shared may skip; in CI the photos must be there.
needs_photos = pytest.mark.skipif(
    not PHOTOS.exists() and not os.environ.get("CI"), reason=f"no sample photos at {PHOTOS}"
)


def sample(name: str) -> bytes:
    return (PHOTOS / name).read_bytes()


def opened(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference of two images, compared small and grey."""
    size = (64, 48) if a.width >= a.height else (48, 64)
    a, b = (x.convert("L").resize(size, Image.Resampling.BOX) for x in (a, b))
    return ImageStat.Stat(ImageChops.difference(a, b)).mean[0]


def assert_no_metadata(data: bytes) -> None:
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    assert not im.getexif(), "served JPEG carries EXIF"
    assert b"Exif\x00\x00" not in data
    assert "icc_profile" not in im.info
    assert "comment" not in im.info


@needs_photos
@pytest.mark.parametrize("shape", ["landscape", "portrait"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_comes_out_upright(shape, orientation):
    reference = opened(process(sample(f"orientation/{shape}_1.jpg")).display)
    out = opened(process(sample(f"orientation/{shape}_{orientation}.jpg")).display)
    assert out.size == reference.size
    upright = difference(out, reference)
    # Upright is far closer to the reference than any wrong turn or flip.
    wrong = [
        difference(out.transpose(t), reference)
        for t in (
            Image.Transpose.ROTATE_180,
            Image.Transpose.FLIP_LEFT_RIGHT,
            Image.Transpose.FLIP_TOP_BOTTOM,
        )
    ]
    assert upright < 8, upright
    assert upright < min(wrong) / 2


@needs_photos
@pytest.mark.parametrize(
    "name",
    [
        "gps/DSCN0010.jpg",
        "gps/DSCN0012.jpg",
        "gps/DSCN0021.jpg",
        "phone/iphone_hdr_NO.jpg",
        "phone/HMD_Nokia_8.3_5G.jpg",
    ],
)
def test_gps_is_read_out_and_stripped_from_what_is_served(name):
    result = process(sample(name))
    assert result.metadata.latitude is not None and result.metadata.longitude is not None
    assert -90 <= result.metadata.latitude <= 90
    assert result.metadata.taken_at is not None
    assert result.metadata.camera
    assert_no_metadata(result.display)
    assert_no_metadata(result.thumbnail)


@needs_photos
def test_gps_values_are_right_for_a_known_photo():
    meta = process(sample("phone/iphone_hdr_NO.jpg")).metadata
    assert meta.latitude == pytest.approx(40.4469722, abs=1e-5)
    assert meta.longitude == pytest.approx(-3.7247528, abs=1e-5)  # west is negative
    assert meta.camera == "Apple iPhone 6"


@needs_photos
def test_an_iphone_heic_converts_to_an_upright_jpeg():
    result = process(sample("heic/iphone_13_pro_max.HEIC"))
    assert result.source_format == "HEIF"
    assert (result.width, result.height) == (1200, 1600)
    assert_no_metadata(result.display)


@needs_photos
@pytest.mark.parametrize(
    "path",
    sorted((PHOTOS / "exif-quirks").glob("*.jpg")) if PHOTOS.exists() else [],
    ids=lambda p: p.name,
)
def test_every_odd_exif_file_still_processes(path):
    result = process(path.read_bytes())
    assert max(result.width, result.height) <= 1600
    assert_no_metadata(result.display)


@needs_photos
@pytest.mark.parametrize(
    "path",
    sorted((PHOTOS / "phone").glob("*.jpg")) if PHOTOS.exists() else [],
    ids=lambda p: p.name,
)
def test_phone_photos_come_out_small_enough_for_a_basement(path):
    result = process(path.read_bytes())
    assert max(result.width, result.height) == 1600
    assert len(result.display) <= 400_000
    assert max(opened(result.thumbnail).size) <= 320
    assert opened(result.display).info.get("progressive") or opened(result.display).info.get(
        "progression"
    )


def make(mode: str, fmt: str, size=(800, 600), **save) -> bytes:
    im = Image.new(mode, size)
    if mode == "P":
        im.putpalette([i % 256 for i in range(768)])
    buf = io.BytesIO()
    im.save(buf, fmt, **save)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("mode", "fmt", "save"),
    [
        ("CMYK", "JPEG", {}),
        ("L", "JPEG", {}),
        ("RGBA", "PNG", {}),
        ("LA", "PNG", {}),
        ("P", "PNG", {"transparency": 0}),
        ("P", "PNG", {}),
        ("I;16", "PNG", {}),
        ("RGB", "WEBP", {}),
        ("RGBA", "WEBP", {}),
    ],
)
def test_colour_modes_and_formats_become_rgb_jpegs(mode, fmt, save):
    result = process(make(mode, fmt, **save))
    out = opened(result.display)
    assert out.mode == "RGB"
    assert out.size == (800, 600)


def test_transparent_pixels_become_white():
    im = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    buf = io.BytesIO()
    im.save(buf, "PNG")
    out = opened(process(buf.getvalue()).display)
    assert out.getpixel((5, 5)) >= (250, 250, 250)


def test_the_format_is_told_by_content_not_by_name():
    assert imaging.sniff(make("RGB", "PNG")) == "PNG"
    assert imaging.sniff(make("RGB", "JPEG")) == "JPEG"
    assert imaging.sniff(make("RGB", "WEBP")) == "WEBP"
    assert imaging.sniff(b"<html><body>not a photo</body></html>") is None


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


def test_a_decompression_bomb_is_refused_without_decoding(monkeypatch):
    def no_decoding(self):
        raise AssertionError("the bomb was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(PhotoError) as err:
        process(png_bomb())
    assert (err.value.status, err.value.code) == (422, "too_many_pixels")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 422),
        (b"<!doctype html><html><body>hello</body></html>", 415),
        (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>', 415),
        (b"GIF89a" + b"\x00" * 100, 415),
        (b"\xff\xd8\xff\xe0" + b"\x00" * 50, 422),  # a JPEG start and nothing after
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, 422),
    ],
    ids=["empty", "html", "svg", "gif", "jpeg-header-only", "png-garbage"],
)
def test_bad_input_gets_its_4xx(data, status):
    with pytest.raises(PhotoError) as err:
        process(data)
    assert err.value.status == status
    assert err.value.message


def test_a_truncated_jpeg_is_422():
    whole = make("RGB", "JPEG", size=(1200, 900), quality=95)
    with pytest.raises(PhotoError) as err:
        process(whole[: len(whole) // 2])
    assert err.value.status == 422
