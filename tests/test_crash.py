"""kill -9 during uploads (issue 16): every write that got a 2xx survives, intact.

A real ``onsite serve`` (the browser tests' LiveServer, without a browser)
takes 50 report and 20 photo uploads from eight concurrent clients; when
about half have answered, the server process gets SIGKILL. After a restart
on the same data: each report that got a 2xx is there with its fields, each
photo that got a 2xx is served as exactly what the pipeline makes of the
bytes sent (and its row keeps their sha256), every photo row has both its
files and every file its row, no staged ``.tmp`` is left, and sending every
upload again gives 200 or 201 and no duplicate row or event.

Runs on SQLite, and on PostgreSQL when ONSITE_TEST_DATABASE_URL is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import json
import os
import random
import signal
import sqlite3
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image

from server import imaging
from server import playbooks as playbook_lib
from server.photo_store import ORPHAN_GRACE_S
from tests.conftest import CSRF, run_async
from tests.helpers.live import GUARD_PASSWORD, LiveServer, module_database
from tests.helpers.photos import PHOTOS as SAMPLES

PHOTOS = SAMPLES / "gps"
PHOTO_FILES = ["DSCN0010.jpg", "DSCN0012.jpg", "DSCN0021.jpg"]  # 160 KB each
REPORTS, UPLOADED_PHOTOS, CLIENTS = 50, 20, 8
KILL_AFTER = (REPORTS + UPLOADED_PHOTOS) // 2
LIFT = next(i.id for i in playbook_lib.load().incidents() if i.title.zh == "电梯困人事件")
JPEG = {**CSRF, "Content-Type": "image/jpeg"}


@dataclass
class Upload:
    kind: str  # "report" or "photo"
    url: str
    body: bytes | dict
    status: int | None = None  # None: no answer (the connection died)
    resent: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@pytest.fixture
def server(tmp_path, staffed_template: str):
    data = tmp_path / "data"
    with module_database(data, staffed_template) as url:
        live = LiveServer(data, url)
        live.start()
        try:
            yield live
        finally:
            live.stop()


def report_body(n: int, now: datetime) -> dict:
    return {
        "site": "north",
        "incident_type": LIFT,
        "severity": ["low", "medium", "high", "critical"][n % 4],
        "occurred_at": (now - timedelta(minutes=n)).isoformat(),
        "location": {"text": f"{n}栋 电梯", "lat": 22.5 + n / 1000, "lng": 114.05},
        "notes": f"崩溃测试 {n} " + "注" * n,
        "steps": [{"index": 0, "checked_at": now.isoformat()}],
    }


def log_in(server: LiveServer) -> httpx.Cookies:
    response = httpx.post(
        f"{server.url}/api/session",
        json={"username": "guard", "password": GUARD_PASSWORD},
        headers=CSRF,
    )
    assert response.status_code == 200, response.text
    return response.cookies


async def send_all(server: LiveServer, uploads: list[Upload], kill_after: int | None) -> None:
    """Send ``uploads`` from CLIENTS concurrent clients; SIGKILL the server
    once ``kill_after`` have answered (each answer recorded, or None)."""
    cookies = log_in(server)
    queue: asyncio.Queue[Upload] = asyncio.Queue()
    for upload in uploads:
        queue.put_nowait(upload)
    answered = 0
    pid = server.proc.pid if server.proc else 0

    async def client() -> None:
        nonlocal answered
        async with httpx.AsyncClient(base_url=server.url, cookies=cookies, timeout=30) as c:
            while not queue.empty():
                upload = queue.get_nowait()
                try:
                    if isinstance(upload.body, dict):
                        response = await c.put(upload.url, json=upload.body, headers=CSRF)
                    else:
                        response = await c.put(upload.url, content=upload.body, headers=JPEG)
                    status = response.status_code
                except httpx.TransportError:
                    status = None
                if kill_after is None:
                    upload.resent = status
                    continue
                upload.status = status
                answered += 1
                if answered == kill_after:
                    os.kill(pid, signal.SIGKILL)  # the uvicorn process itself, no shell

    await asyncio.gather(*(client() for _ in range(CLIENTS)))


def query(server: LiveServer, sql: str) -> list[tuple]:
    db = server.database
    if db.sqlite:
        with contextlib.closing(sqlite3.connect(db.sqlite)) as conn:
            return conn.execute(sql).fetchall()

    async def run() -> list[tuple]:
        import asyncpg

        conn = await asyncpg.connect(db.url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    return run_async(run())


def photo_files(server: LiveServer) -> tuple[Counter[str], list[Path]]:
    """Files per photo id under the photo folder, and the staged leftovers."""
    root = Path(server.env["ONSITE_DATA_DIR"]) / "photos"
    files = Counter(uuid.UUID(p.name.split(".")[0]).hex for p in root.glob("*/*/*.jpg"))
    return files, list(root.glob("*/*/.*.tmp"))


def check_consistent(server: LiveServer) -> tuple[set[str], set[str]]:
    """Every photo row has its two files, no .tmp is left: the row ids, and
    the ids of files without a row."""
    rows = {uuid.UUID(str(pid)).hex for (pid,) in query(server, "SELECT id FROM photo")}
    files, staged = photo_files(server)
    assert not staged, f"staged files left: {staged}"
    assert {pid: files[pid] for pid in rows if files[pid] != 2} == {}, "rows without their files"
    return rows, set(files) - rows


def test_kill_9_during_uploads_loses_no_acknowledged_write(server: LiveServer) -> None:
    now = datetime.now(UTC)
    now = now.replace(microsecond=now.microsecond // 1000 * 1000)  # stored to the millisecond
    originals = [(PHOTOS / name).read_bytes() for name in PHOTO_FILES]
    expected = {}  # sha256 of the original -> what the pipeline serves for it
    for raw in originals:
        processed = imaging.process(raw)
        expected[hashlib.sha256(raw).hexdigest()] = (processed.display, processed.thumbnail)

    # Photos go to two reports made before the barrage.
    with httpx.Client(base_url=server.url, cookies=log_in(server), headers=CSRF) as guard:
        parents = [str(uuid.uuid4()) for _ in range(2)]
        for n, rid in enumerate(parents):
            made = guard.put(f"/api/reports/{rid}", json=report_body(100 + n, now))
            assert made.status_code == 201, made.text

    uploads = [
        Upload("report", f"/api/reports/{uuid.uuid4()}", report_body(n, now))
        for n in range(REPORTS)
    ]
    uploads += [
        Upload(
            "photo",
            f"/api/reports/{parents[n % 2]}/photos/{uuid.uuid4()}",
            originals[n % len(originals)],
        )
        for n in range(UPLOADED_PHOTOS)
    ]
    random.Random(16).shuffle(uploads)

    run_async(send_all(server, uploads, kill_after=KILL_AFTER))
    assert server.proc is not None
    assert server.proc.wait(10) == -signal.SIGKILL
    answered = [u for u in uploads if u.status is not None]
    assert all(u.ok for u in answered), [(u.url, u.status) for u in answered if not u.ok]
    acked = [u for u in uploads if u.ok]
    assert KILL_AFTER <= len(acked) < len(uploads), "the kill came mid-barrage"

    server.start()  # the same data folder and database
    rows_before, orphans = check_consistent(server)
    if orphans:
        # A kill between a photo's publish (rename into place, inside the
        # transaction) and its commit leaves files with no row, younger than
        # the start-up sweep's grace (another server's upload may be
        # mid-commit): the sweep looks again once the grace has passed.
        deadline = time.monotonic() + ORPHAN_GRACE_S + 15
        while orphans and time.monotonic() < deadline:
            time.sleep(0.5)
            rows_before, orphans = check_consistent(server)
        assert not orphans, f"files without their row after the second sweep: {orphans}"
    acked_photos = {u.url.rsplit("/", 1)[1].replace("-", "") for u in acked if u.kind == "photo"}
    assert acked_photos <= rows_before
    assert not orphans & acked_photos

    with httpx.Client(base_url=server.url, cookies=log_in(server), headers=CSRF) as guard:
        for upload in (u for u in acked if u.kind == "report"):
            got = guard.get(upload.url)
            assert got.status_code == 200, (upload.url, got.text)
            report, sent = got.json(), upload.body
            assert isinstance(sent, dict)
            assert report["site"]["code"] == "north"
            assert report["incident_type"] == LIFT
            assert report["severity"] == sent["severity"]
            assert report["notes"] == sent["notes"]
            assert report["location"]["text"] == sent["location"]["text"]
            assert report["location"]["lat"] == pytest.approx(sent["location"]["lat"])
            assert datetime.fromisoformat(report["occurred_at"]) == datetime.fromisoformat(
                sent["occurred_at"]
            )
            assert [s["index"] for s in report["steps"]] == [0]
        listed = {
            p["id"]: p for rid in parents for p in guard.get(f"/api/reports/{rid}").json()["photos"]
        }
        for upload in (u for u in acked if u.kind == "photo"):
            assert isinstance(upload.body, bytes)
            digest = hashlib.sha256(upload.body).hexdigest()
            photo = listed[upload.url.rsplit("/", 1)[1]]
            assert photo["sha256"] == digest
            display, thumbnail = expected[digest]
            served = guard.get(upload.url)
            assert served.status_code == 200
            assert served.content == display, "the served photo is what was sent"
            assert guard.get(f"{upload.url}/thumb").content == thumbnail
            with Image.open(io.BytesIO(served.content)) as image:
                assert image.size == (photo["width"], photo["height"])

    # The phone resends whatever it has no answer for; resending everything is safe.
    run_async(send_all(server, uploads, kill_after=None))
    assert sorted({u.resent for u in uploads}) <= [200, 201], Counter(u.resent for u in uploads)
    assert all(u.resent == 200 for u in acked), "a 2xx write is not made again"
    rows, left = check_consistent(server)
    assert not left, "files without their row"
    ours = {u.url.rsplit("/", 1)[1].replace("-", "") for u in uploads if u.kind == "photo"}
    assert rows == ours
    events = Counter()
    for kind, report_id, data in query(server, "SELECT kind, report_id, data FROM event"):
        data = json.loads(data) if isinstance(data, str) else data
        key = data.get("photo") if kind == "photo" else str(uuid.UUID(str(report_id)))
        events[kind, key] += 1
    report_ids = [u.url.rsplit("/", 1)[1] for u in uploads if u.kind == "report"]
    assert [events["created", rid] for rid in report_ids] == [1] * REPORTS
    photo_ids = [u.url.rsplit("/", 1)[1] for u in uploads if u.kind == "photo"]
    assert [events["photo", pid] for pid in photo_ids] == [1] * UPLOADED_PHOTOS
    count = query(server, "SELECT COUNT(*) FROM report")[0][0]
    assert count == REPORTS + len(parents)
    kinds = Counter((u.kind, u.status) for u in uploads)
    print(f"\nbefore the kill: {dict(kinds)}; photo rows after restart {len(rows_before)}")
    if orphans:
        print(f"files without their row at the restart: {sorted(orphans)}")
