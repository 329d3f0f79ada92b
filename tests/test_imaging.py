"""The photo pipeline on real phone photos and on hostile files made here."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageFile, ImageStat
from PIL.ExifTags import Base

from server import imaging
from server.imaging import MemoryBudget, PhotoError, process
from tests.helpers.photos import PHOTOS, png_bomb, png_header, sample

# Outside CI a checkout without ../shared may skip; in CI the photos must be there.


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


def test_gps_values_are_right_for_a_known_photo():
    meta = process(sample("phone/iphone_hdr_NO.jpg")).metadata
    assert meta.latitude == pytest.approx(40.4469722, abs=1e-5)
    assert meta.longitude == pytest.approx(-3.7247528, abs=1e-5)  # west is negative
    assert meta.camera == "Apple iPhone 6"


def test_an_iphone_heic_converts_to_an_upright_jpeg():
    result = process(sample("heic/iphone_13_pro_max.HEIC"))
    assert result.source_format == "HEIF"
    assert (result.width, result.height) == (1200, 1600)
    assert_no_metadata(result.display)


@pytest.mark.parametrize(
    "path",
    sorted((PHOTOS / "exif-quirks").glob("*.jpg")),
    ids=lambda p: p.name,
)
def test_every_odd_exif_file_still_processes(path):
    result = process(path.read_bytes())
    assert max(result.width, result.height) <= 1600
    assert_no_metadata(result.display)


@pytest.mark.parametrize(
    "path",
    # The phone JPEGs here are 2048 px copies; the HEIC is a whole 12 MP
    # photo as the phone took it (bench/photos.py measures the originals).
    [*sorted((PHOTOS / "phone").glob("*.jpg")), PHOTOS / "heic" / "iphone_13_pro_max.HEIC"],
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


def test_nul_bytes_in_exif_strings_are_stripped():
    # PostgreSQL refuses NUL in text: a camera name with one gave a 500.
    exif = Image.Exif()
    exif[Base.Make] = "Ca\x00non"
    exif[Base.Model] = "EOS 5D\x00\x00"
    buf = io.BytesIO()
    Image.new("RGB", (64, 48)).save(buf, "JPEG", exif=exif)
    assert process(buf.getvalue()).metadata.camera == "Canon EOS 5D"


def png(mode: str, size: tuple[int, int]) -> bytes:
    """A big PNG of one colour: a small file, however many pixels."""
    buf = io.BytesIO()
    Image.new(mode, size).save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def test_a_photo_that_needs_more_than_the_whole_budget_is_422_without_decoding(monkeypatch):
    def no_decoding(self):
        raise AssertionError("decoded although it cannot fit")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(PhotoError) as err:
        # 5000 x 4000 RGBA is 80 MB of pixels before anything else.
        process(png_header("RGBA", 5000, 4000), MemoryBudget(64 * imaging.MB))
    assert (err.value.status, err.value.code) == (422, "too_many_pixels")
    assert "5000x4000" in err.value.message and "64 MB" in err.value.message


def test_a_webp_is_weighed_from_its_header_before_it_is_opened(monkeypatch):
    # Opening a WebP allocates its whole canvas: the budget must come first.
    def no_opening(*args, **kwargs):
        raise AssertionError("opened although it cannot fit")

    raw = make("RGB", "WEBP", size=(4000, 3000))
    assert imaging._webp_size(raw) == (4000, 3000)
    assert imaging._webp_size(make("RGBA", "WEBP", size=(321, 123), lossless=True)) == (321, 123)
    monkeypatch.setattr(Image, "open", no_opening)
    with pytest.raises(PhotoError) as err:
        process(raw, MemoryBudget(64 * imaging.MB))
    assert err.value.status == 422


def in_thread(work):
    """Run ``work`` in a thread; the result holds its answer or its exception."""
    result: dict = {}

    def run():
        try:
            result["value"] = work()
        except BaseException as exc:  # handed to the test
            result["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    return thread, result


def wait_until(condition, what: str) -> None:
    # A deadline for a hung thread, not a timing assertion.
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.005)


def test_a_conversion_waits_while_others_hold_the_budget_then_goes_on():
    budget = MemoryBudget(200 * imaging.MB)
    raw = png("RGBA", (4000, 3000))  # needs about 48 + 12 + 32 MB
    with budget.hold(150 * imaging.MB):
        thread, result = in_thread(lambda: process(raw, budget))
        wait_until(lambda: budget.waiting == 1, "the conversion queued")
        assert thread.is_alive() and not result
    thread.join(60)
    assert result["value"].width == 1600
    assert budget.in_use == 0


def test_the_budget_serves_in_arrival_order_so_a_big_photo_is_not_starved():
    budget = MemoryBudget(100)
    order: list[str] = []

    def take(name: str, need: int) -> None:
        with budget.hold(need):
            order.append(name)

    with budget.hold(60):
        big, _ = in_thread(lambda: take("big", 80))
        wait_until(lambda: budget.waiting == 1, "the big one queued")
        small, _ = in_thread(lambda: take("small", 10))  # would fit now, but comes second
        wait_until(lambda: budget.waiting == 2, "the small one queued")
        assert order == []
    big.join(60)
    small.join(60)
    assert order == ["big", "small"]
    assert budget.in_use == 0
    with pytest.raises(ValueError), budget.hold(101):
        pass


MEASURE = """
import sys
from pathlib import Path
from server import imaging

def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) * 1024

class Noted(imaging.MemoryBudget):
    def hold(self, need):
        self.need = need
        return super().hold(need)

raw = Path(sys.argv[1]).read_bytes()
budget = Noted(1 << 40)
start = status("VmRSS:")
imaging.process(raw, budget)
print(status("VmHWM:") - start, budget.need)
"""


def jpeg_bytes(size: tuple[int, int], **save) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 90, 200)).save(buf, "JPEG", **save)
    return buf.getvalue()


def measured(tmp_path: Path, raw: bytes) -> tuple[int, int]:
    """Converting ``raw`` in a fresh process: its peak memory above where it
    started, and what it asked the budget for, in bytes."""
    path = tmp_path / "photo"
    path.write_bytes(raw)
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout.split()
    return int(out[0]), int(out[1])


linux_only = pytest.mark.skipif(
    not Path("/proc/self/status").exists(), reason="reads /proc (Linux)"
)
MEASURED = {
    "png-rgba-30mp": lambda: png("RGBA", (6000, 5000)),
    "png-palette-30mp": lambda: png("P", (6000, 5000)),
    "webp-12mp": lambda: make("RGB", "WEBP", size=(4000, 3000)),
    "jpeg-progressive-48mp": lambda: jpeg_bytes((8000, 6000), progressive=True),
    "jpeg-48mp": lambda: jpeg_bytes((8000, 6000)),
    "heic-12mp": lambda: sample("heic/iphone_13_pro_max.HEIC"),
}


@linux_only
@pytest.mark.parametrize("kind", MEASURED)
def test_a_conversion_never_takes_more_memory_than_it_asked_the_budget_for(tmp_path, kind):
    # The budget bounds memory only if each estimate is honest.
    peak, need = measured(tmp_path, MEASURED[kind]())
    assert peak <= need, f"peak {peak / imaging.MB:.0f} MB over the {need / imaging.MB:.0f} asked"


@linux_only
def test_a_big_transparent_png_is_reduced_a_strip_at_a_time_never_copied_whole(tmp_path):
    # 35 MP RGBA is 140 MB of pixels; compositing it onto white whole, then
    # resizing, peaked at 3.1 times that (a 100 MP one at 1.24 GB).
    peak, _ = measured(tmp_path, png("RGBA", (7000, 5000)))
    assert peak < 1.5 * 7000 * 5000 * 4, f"peak {peak / imaging.MB:.0f} MB"
