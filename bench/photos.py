"""The photo pipeline beside a naive Pillow pipeline and pyvips, on phone photos.

For each photo in ../shared/photos/phone/ and each pipeline: the median time
of several runs, the output size, SSIM against a reference downscale (full
decode, exact orientation, Lanczos to the same size, never JPEG-compressed),
and the peak memory of one conversion (a forked child's high-water mark
above its starting RSS). Then ten parallel uploads through the real server
code path, for peak memory and the latency of other requests meanwhile.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/photos.py [--runs 5] [--quality 80]

Targets (issue 6): >= 2x faster than naive, within 1.3x of pyvips,
<= 400 KB for a 12 MP photo, SSIM >= 0.95.
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
from collections.abc import Callable
from pathlib import Path

# One thread per conversion for every pipeline: the server already runs
# conversions in parallel (ONSITE_PHOTO_WORKERS), so a pipeline's own threads
# would only take cores from other uploads. Set before pyvips loads.
os.environ.setdefault("VIPS_CONCURRENCY", "1")

import numpy as np
from PIL import Image, ImageOps
from skimage.metrics import structural_similarity

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import imaging  # noqa: E402

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


def luma(im: Image.Image) -> np.ndarray:
    # SSIM is defined on luminance (Wang et al. 2004); "L" is ITU-R 601 luma.
    return np.asarray(im.convert("L"), dtype=np.float64)


def reference(raw: bytes, size: tuple[int, int]) -> np.ndarray:
    im = ImageOps.exif_transpose(Image.open(io.BytesIO(raw))).convert("RGB")
    return luma(im.resize(size, Image.Resampling.LANCZOS))


def ssim(out: bytes, raw: bytes) -> float:
    got = Image.open(io.BytesIO(out))
    return structural_similarity(luma(got), reference(raw, got.size), data_range=255)


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
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quality", type=int, default=imaging.DISPLAY_QUALITY)
    parser.add_argument(
        "--parallel",
        type=int,
        default=10,
        help="uploads at once through the server afterwards (0: skip)",
    )
    args = parser.parse_args()
    imaging.DISPLAY_QUALITY = args.quality
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, Pillow {Image.__version__}, one thread per conversion"
    )
    print(f"JPEG quality {args.quality}, progressive, long edge {EDGE} px\n")
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
            ms, out = timed(fn, raw, args.runs)
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
    if args.parallel:
        asyncio.run(parallel_uploads(args.parallel))


async def parallel_uploads(count: int) -> None:
    """``count`` 12 MP uploads at once through the real server: its peak memory,
    and how long other requests take meanwhile."""
    import tempfile
    import uuid
    from datetime import UTC, datetime

    import httpx
    from ingest import CSRF, ONSITE_APP, PASSWORD, Server, lift_incident, onsite_env

    raw = (PHONE / "4032x3024.jpg").read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(ONSITE_APP, onsite_env(Path(tmp), ""), "/login")
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=120) as c:
                await c.post(
                    "/api/session", json={"username": "guard", "password": PASSWORD}, headers=CSRF
                )
                rid = uuid.uuid4()
                now = datetime.now(UTC).isoformat()
                await c.put(
                    f"/api/reports/{rid}",
                    headers=CSRF,
                    json={"site": "bench", "incident_type": lift_incident(), "occurred_at": now},
                )

                def rss(key: str) -> float:
                    for line in Path(f"/proc/{server.proc.pid}/status").read_text().splitlines():
                        if line.startswith(key):
                            return int(line.split()[1]) / 1024
                    return 0.0

                idle = []
                for _ in range(20):
                    t0 = time.perf_counter()
                    await c.get("/api/me")
                    idle.append((time.perf_counter() - t0) * 1000)
                before = rss("VmRSS:")
                busy: list[float] = []
                done = False

                async def probe() -> None:
                    while not done:
                        t0 = time.perf_counter()
                        await c.get("/api/me")
                        busy.append((time.perf_counter() - t0) * 1000)
                        await asyncio.sleep(0.02)

                async def upload() -> int:
                    r = await c.put(
                        f"/api/reports/{rid}/photos/{uuid.uuid4()}",
                        content=raw,
                        headers={**CSRF, "Content-Type": "image/jpeg"},
                    )
                    return r.status_code

                prober = asyncio.create_task(probe())
                t0 = time.perf_counter()
                codes = await asyncio.gather(*(upload() for _ in range(count)))
                elapsed = time.perf_counter() - t0
                done = True
                await prober
                peak = rss("VmHWM:")
        finally:
            server.stop()
    busy.sort()
    print(
        f"\n{count} parallel uploads of a 12 MP photo ({len(raw) / 1e6:.1f} MB) through the "
        f"server: all {set(codes)}, {elapsed:.1f} s in all"
    )
    print(f"server memory: {before:.0f} MB before, peak {peak:.0f} MB (+{peak - before:.0f} MB)")
    print(
        f"GET /api/me meanwhile: p50 {statistics.median(busy):.1f} ms, max {busy[-1]:.1f} ms "
        f"(idle p50 {statistics.median(idle):.1f} ms)"
    )


if __name__ == "__main__":
    main()
