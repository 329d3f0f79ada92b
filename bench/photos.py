"""The photo pipeline beside a naive Pillow pipeline and pyvips, on phone photos.

For each full-size phone photo (``--photos DIR``, by default
../shared/photos/phone/, the originals of tests/photos/phone) and each pipeline: the median time
of several runs, the output size, SSIM against a reference downscale (full
decode, exact orientation, Lanczos to the same size, never JPEG-compressed),
and the peak memory of one conversion (a forked child's high-water mark
above its starting RSS). Then ten parallel uploads through the real server
code path, for peak memory and the latency of other requests meanwhile;
then four uploads at once of a 10000 x 10000 RGBA PNG (380 KB of file, 400
MB of pixels), for the server's peak memory above its idle size and each
answer.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/photos.py [--runs 5] [--quality 80] [--photos DIR]
    .venv/bin/python bench/photos.py --skip-pipelines   # the server parts only

Targets (issue 6): >= 2x faster than naive, within 1.3x of pyvips,
<= 400 KB for a 12 MP photo, SSIM >= 0.95. Issue 16: the four big PNGs at
once stay under 600 MB of extra server memory, each a 201 or a clear 4xx.

    .venv/bin/python bench/photos.py --phone   # only what the phone sends

The phone's part (issue 17): each photo encoded as the phone does it
(pwa/static/js/photo.js), through Chromium's own canvas encoder, for a grid
of long edge x quality x format: bytes and SSIM against the same reference
downscale. Target: <= 250 KB for a 12 MP photo with SSIM >= 0.95.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

# One thread per conversion for every pipeline: the server already runs
# conversions in parallel (ONSITE_PHOTO_WORKERS), so a pipeline's own threads
# would only take cores from other uploads. Set before pyvips loads.
os.environ.setdefault("VIPS_CONCURRENCY", "1")

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import imaging  # noqa: E402

# Full-size phone photos (2.4 to 12 MP); the copies in tests/photos/phone are
# downscaled, so the figures come from the originals.
PHONE = ROOT.parent / "shared" / "photos" / "phone"
EDGE = imaging.DISPLAY_EDGE


def onsite(raw: bytes) -> bytes:
    return imaging.process(raw).display


def naive(raw: bytes) -> bytes:
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(raw)))
    scale = EDGE / max(im.size)
    im = im.resize((round(im.width * scale), round(im.height * scale)), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    im.convert("RGB").save(out, "JPEG", quality=imaging.DISPLAY_QUALITY, progressive=True)
    return out.getvalue()


def vips(raw: bytes) -> bytes:
    import pyvips

    im = pyvips.Image.thumbnail_buffer(raw, EDGE, height=EDGE, size="down")
    return im.jpegsave_buffer(Q=imaging.DISPLAY_QUALITY, interlace=True, keep="none")


PIPELINES: dict[str, Callable[[bytes], bytes]] = {"onsite": onsite, "naive": naive, "pyvips": vips}


def luma(im: Image.Image) -> Any:
    import numpy as np  # the bench extras: only the pipeline comparison needs them

    # SSIM is defined on luminance (Wang et al. 2004); "L" is ITU-R 601 luma.
    return np.asarray(im.convert("L"), dtype=np.float64)


def reference(raw: bytes, size: tuple[int, int]) -> Any:
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(raw))).convert("RGB")
    return luma(im.resize(size, Image.Resampling.LANCZOS))


def ssim(out: bytes, raw: bytes) -> float:
    from skimage.metrics import structural_similarity

    got = Image.open(io.BytesIO(out))
    return float(structural_similarity(luma(got), reference(raw, got.size), data_range=255))


def peak_memory_mb(name: str, path: Path) -> float:
    """Peak RSS growth of one conversion, in a fresh process (fork is unsafe
    once libvips has started its threads)."""
    import subprocess

    code = f"""
import sys; sys.argv = ["x"]
from pathlib import Path
sys.path.insert(0, {str(ROOT / "bench")!r})
import photos as bench
def status(key):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1])
raw = Path({str(path)!r}).read_bytes()
start = status("VmRSS:")
bench.PIPELINES[{name!r}](raw)
print(status("VmHWM:") - start)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip()) / 1024


def timed(fn: Callable[[bytes], bytes], raw: bytes, runs: int) -> tuple[float, bytes]:
    fn(raw)  # warm: codecs loaded, caches filled
    times, out = [], b""
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn(raw)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000, out


def main() -> None:
    global PHONE
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quality", type=int, default=imaging.DISPLAY_QUALITY)
    parser.add_argument(
        "--parallel",
        type=int,
        default=10,
        help="uploads at once through the server afterwards (0: skip)",
    )
    parser.add_argument(
        "--big",
        type=int,
        default=4,
        help="10000 x 10000 RGBA PNG uploads at once through the server (0: skip)",
    )
    parser.add_argument(
        "--skip-pipelines", action="store_true", help="only the uploads through the server"
    )
    parser.add_argument(
        "--phone", action="store_true", help="only the phone's encoding, in Chromium"
    )
    parser.add_argument(
        "--photos", type=Path, default=PHONE, help="folder of full-size phone photos (*.jpg)"
    )
    args = parser.parse_args()
    PHONE = args.photos
    imaging.DISPLAY_QUALITY = args.quality
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GiB, Python "
        f"{platform.python_version()}, Pillow {Image.__version__}, one thread per conversion"
    )
    if args.phone:
        phone_encodings()
        return
    if not args.skip_pipelines:
        compare_pipelines(args.runs, args.quality)
        phone_encodings()
    if args.parallel:
        asyncio.run(parallel_uploads(args.parallel))
    if args.big:
        asyncio.run(big_uploads(args.big))


def compare_pipelines(runs: int, quality: int) -> None:
    print(f"JPEG quality {quality}, progressive, long edge {EDGE} px\n")
    header = (
        f"{'photo':<24} {'MP':>5} {'pipeline':<8} {'ms':>7} {'KB':>6} {'SSIM':>6} {'peak MB':>8}"
    )
    print(header)
    print("-" * len(header))
    totals: dict[str, list[float]] = {name: [] for name in PIPELINES}
    for path in sorted(PHONE.glob("*.jpg")):
        raw = path.read_bytes()
        with Image.open(path) as im:
            mp = im.width * im.height / 1e6
        for name, fn in PIPELINES.items():
            ms, out = timed(fn, raw, runs)
            totals[name].append(ms)
            print(
                f"{path.name[:24]:<24} {mp:>5.1f} {name:<8} {ms:>7.1f} {len(out) / 1024:>6.0f} "
                f"{ssim(out, raw):>6.3f} {peak_memory_mb(name, path):>8.0f}"
            )
    print()
    mean = {name: statistics.fmean(ms) for name, ms in totals.items()}
    print(
        f"mean time: onsite {mean['onsite']:.0f} ms, naive {mean['naive']:.0f} ms, "
        f"pyvips {mean['pyvips']:.0f} ms"
    )
    print(
        f"onsite is {mean['naive'] / mean['onsite']:.2f}x faster than naive, "
        f"{mean['onsite'] / mean['pyvips']:.2f}x the time of pyvips"
    )


# What the phone sends today (photo.js before issue 17), and the grid tried.
PHONE_TODAY = (1600, 0.85, "image/jpeg")
PHONE_CHOSEN = (1600, 0.8, "image/webp")  # photo.js ENCODINGS, first choice
PHONE_GRID = [
    *((edge, q, "image/jpeg") for edge in (1600, 1440, 1280) for q in (0.85, 0.8, 0.75, 0.7, 0.6)),
    *((edge, q, "image/webp") for edge in (1600, 1440) for q in (0.85, 0.8, 0.75, 0.7)),
]
# photo.js's compress(), for a list of encodings of one photo: the photo is
# decoded once (upright, as "from-image" does), then drawn and encoded per choice.
ENCODE_JS = """
async ([b64, choices]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const bitmap = await createImageBitmap(new Blob([bytes]), { imageOrientation: "from-image" });
  const out = [];
  for (const [edge, quality, type] of choices) {
    const scale = Math.min(1, edge / Math.max(bitmap.width, bitmap.height));
    const canvas = new OffscreenCanvas(Math.round(bitmap.width * scale),
                                       Math.round(bitmap.height * scale));
    canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const t0 = performance.now();
    const blob = await canvas.convertToBlob({ type, quality });
    const ms = performance.now() - t0;
    const buf = new Uint8Array(await blob.arrayBuffer());
    let bin = "";
    for (let i = 0; i < buf.length; i += 0x8000) {
      bin += String.fromCharCode(...buf.subarray(i, i + 0x8000));
    }
    out.push([btoa(bin), blob.type, ms]);
  }
  bitmap.close();
  return out;
}
"""


def phone_encodings() -> None:
    """Bytes and SSIM of each encoding the phone might send, by Chromium."""
    import base64

    from playwright.sync_api import sync_playwright

    print(
        "\nWhat the phone sends: Chromium's canvas encoder (OffscreenCanvas.convertToBlob), "
        "SSIM against the reference downscale at the output's size"
    )
    results: dict[tuple[int, float, str], list[tuple[int, float, float]]] = {
        c: [] for c in PHONE_GRID
    }
    with sync_playwright() as p:
        from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS

        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        page = browser.new_page()
        print(f"Chromium {browser.version}")
        for path in sorted(PHONE.glob("*.jpg")):
            raw = path.read_bytes()
            encoded = page.evaluate(
                ENCODE_JS, [base64.b64encode(raw).decode(), [list(c) for c in PHONE_GRID]]
            )
            for choice, (b64, mime, ms) in zip(PHONE_GRID, encoded, strict=True):
                out = base64.b64decode(b64)
                assert mime == choice[2], f"{choice}: Chromium made {mime}"
                results[choice].append((len(out), ssim(out, raw), ms))
        browser.close()
    names = [p.name for p in sorted(PHONE.glob("*.jpg"))]
    header = (
        f"{'edge':>5} {'quality':>7} {'type':<5} "
        + " ".join(f"{n[:14]:>20}" for n in names)
        + f" {'mean KB':>8} {'min SSIM':>8}"
    )
    print(header)
    print("-" * len(header))
    for choice in PHONE_GRID:
        edge, quality, mime = choice
        cells = " ".join(
            f"{b / 1024:>7.0f} KB {s:.3f} {ms:>3.0f}ms" for b, s, ms in results[choice]
        )
        mean_kb = statistics.fmean(b for b, _, _ in results[choice]) / 1024
        worst = min(s for _, s, _ in results[choice])
        mark = {PHONE_TODAY: "  <- before", PHONE_CHOSEN: "  <- chosen"}.get(choice, "")
        print(
            f"{edge:>5} {quality:>7.2f} {mime.split('/')[1]:<5} {cells} {mean_kb:>8.0f} "
            f"{worst:>8.3f}{mark}"
        )
    print()
    for label, choice in (("before", PHONE_TODAY), ("chosen", PHONE_CHOSEN)):
        sizes = [b / 1024 for b, _, _ in results[choice]]
        scores = [s for _, s, _ in results[choice]]
        print(
            f"{label}: {choice[2]} {choice[1]:.2f} at {choice[0]} px: {min(sizes):.0f}-"
            f"{max(sizes):.0f} KB (mean {statistics.fmean(sizes):.0f}), SSIM "
            f"{min(scores):.3f}-{max(scores):.3f}"
        )


class Served:
    """A running server (its own process) with the guard logged in and one report."""

    def __init__(self, server: Any, client: Any, report_id: str) -> None:
        self.server, self.client, self.report_id = server, client, report_id

    def memory_mb(self, key: str) -> float:
        """``VmRSS:`` (now) or ``VmHWM:`` (peak) of the server process, in MiB."""
        for line in Path(f"/proc/{self.server.proc.pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
        return 0.0

    def reset_peak(self) -> None:
        # Linux: the high-water mark starts again from the current RSS.
        Path(f"/proc/{self.server.proc.pid}/clear_refs").write_text("5")

    async def upload(self, raw: bytes, content_type: str) -> tuple[int, float, str]:
        from ingest import CSRF

        t0 = time.perf_counter()
        r = await self.client.put(
            f"/api/reports/{self.report_id}/photos/{uuid.uuid4()}",
            content=raw,
            headers={**CSRF, "Content-Type": content_type},
        )
        message = "" if r.status_code < 300 else r.json()["error"]["message"]
        return r.status_code, time.perf_counter() - t0, message


@asynccontextmanager
async def served(**env: str) -> AsyncIterator[Served]:
    import tempfile
    from datetime import UTC, datetime

    import httpx
    from ingest import CSRF, ONSITE_APP, PASSWORD, Server, lift_incident, onsite_env

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(ONSITE_APP, {**onsite_env(Path(tmp), ""), **env}, "/login")
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=300) as c:
                await c.post(
                    "/api/session", json={"username": "guard", "password": PASSWORD}, headers=CSRF
                )
                rid = str(uuid.uuid4())
                now = datetime.now(UTC).isoformat()
                await c.put(
                    f"/api/reports/{rid}",
                    headers=CSRF,
                    json={"site": "bench", "incident_type": lift_incident(), "occurred_at": now},
                )
                yield Served(server, c, rid)
        finally:
            server.stop()


def big_png() -> bytes:
    """10000 x 10000 RGBA of one colour: a few hundred KB, 400 MB once decoded."""
    buf = io.BytesIO()
    Image.new("RGBA", (10000, 10000), (200, 40, 40, 160)).save(buf, "PNG")
    return buf.getvalue()


async def big_uploads(count: int) -> None:
    """``count`` uploads at once of a PNG at the pixel cap: the server's peak
    memory above its warm idle size, and what each upload was answered."""
    raw = big_png()
    budget = os.environ.get("ONSITE_PHOTO_MEMORY_MB", "512 (default)")
    async with served() as s:
        # Warm: codecs loaded, a conversion's buffers made once.
        await s.upload((PHONE / "4032x3024.jpg").read_bytes(), "image/jpeg")
        before = s.memory_mb("VmRSS:")
        s.reset_peak()
        t0 = time.perf_counter()
        answers = await asyncio.gather(*(s.upload(raw, "image/png") for _ in range(count)))
        elapsed = time.perf_counter() - t0
        peak = s.memory_mb("VmHWM:")
    print(
        f"\n{count} uploads at once of a 10000x10000 RGBA PNG ({len(raw) / 1e3:.0f} KB, 400 MB "
        f"of pixels), ONSITE_PHOTO_MEMORY_MB {budget}: {elapsed:.1f} s in all"
    )
    for status, seconds, message in sorted(answers, key=lambda a: a[1]):
        print(f"  {status} after {seconds:.1f} s {message}")
    print(f"server memory: {before:.0f} MiB warm, peak {peak:.0f} MiB (+{peak - before:.0f} MiB)")


async def parallel_uploads(count: int) -> None:
    """``count`` 12 MP uploads at once through the real server: its peak memory,
    and how long other requests take meanwhile."""
    raw = (PHONE / "4032x3024.jpg").read_bytes()
    async with served() as s:
        idle = []
        for _ in range(20):
            t0 = time.perf_counter()
            await s.client.get("/api/me")
            idle.append((time.perf_counter() - t0) * 1000)
        before = s.memory_mb("VmRSS:")
        busy: list[float] = []
        done = False

        async def probe() -> None:
            while not done:
                t0 = time.perf_counter()
                await s.client.get("/api/me")
                busy.append((time.perf_counter() - t0) * 1000)
                await asyncio.sleep(0.02)

        prober = asyncio.create_task(probe())
        t0 = time.perf_counter()
        answers = await asyncio.gather(*(s.upload(raw, "image/jpeg") for _ in range(count)))
        elapsed = time.perf_counter() - t0
        done = True
        await prober
        peak = s.memory_mb("VmHWM:")
    busy.sort()
    print(
        f"\n{count} parallel uploads of a 12 MP photo ({len(raw) / 1e6:.1f} MB) through the "
        f"server: all {set(a[0] for a in answers)}, {elapsed:.1f} s in all"
    )
    print(f"server memory: {before:.0f} MB before, peak {peak:.0f} MB (+{peak - before:.0f} MB)")
    print(
        f"GET /api/me meanwhile: p50 {statistics.median(busy):.1f} ms, max {busy[-1]:.1f} ms "
        f"(idle p50 {statistics.median(idle):.1f} ms)"
    )


if __name__ == "__main__":
    main()
