"""Sustained mixed load: report PUTs, photo PUTs, list queries and logins.

Configurations, each for a fixed time at a fixed concurrency:

- ``sqlite``: ``onsite serve`` (one uvicorn process) on SQLite;
- ``postgres``: uvicorn with ``--workers 2`` on PostgreSQL. ``onsite serve``
  has no workers option, so this runs ``uvicorn --factory --workers 2`` on
  the factory the CLI uses (``create_app(settings.load())``), after
  ``onsite`` has migrated the database;
- ``pg1``: one ``onsite serve`` on PostgreSQL;
- ``pg2``: two ``onsite serve`` processes (two app servers, own ports) on the
  same PostgreSQL database, sharing ONSITE_SECRET_KEY,
  ONSITE_VAPID_PRIVATE_KEY and the data folder (photos); started after
  ``onsite`` has migrated. Client n talks to server n % 2, as a balancer
  would spread them, and logs in there.

``--db scale`` runs pg1 and pg2 alternately (pg1, pg2, pg1, pg2, ...) and
prints the ratio pg2/pg1 of total throughput and of p99; ``--db both`` is
sqlite then postgres.

Each client is a closed loop as one of several guards of site ``bench``
(logged in, with one report, before the clock starts): it picks the next
request at random, 45% report PUT (a fresh uuid), 35% ``GET /api/reports``
(first page of 50), 15% photo PUT (a fresh uuid, on one of its recent
reports; two small real photos from tests/photos/gps), 5% a login
(``POST /api/session``, a correct password: only failures are throttled).
Passwords are hashed at the server's default cost (argon2id, 64 MiB)
unless ONSITE_PASSWORD_MEMORY_KIB says otherwise.
Prints per kind: requests/s, p50, p99 and errors (anything but the
expected 2xx, or no answer), for each run and the median of the runs.

    .venv/bin/python bench/load.py                       # both, 2 runs x 30 s
    .venv/bin/python bench/load.py --db sqlite --duration 10 --runs 1
    .venv/bin/python bench/load.py --db scale --duration 20 --runs 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "tests" / "photos" / "gps"
CSRF = {"X-Requested-With": "onsite"}
JPEG = {**CSRF, "Content-Type": "image/jpeg"}
MIX = {"report": 45, "list": 35, "photo": 15, "login": 5}
EXPECTED = {"report": 201, "list": 200, "photo": 201, "login": 200}
LABELS = {
    "sqlite": "onsite serve, SQLite",
    "postgres": "uvicorn --workers 2, PostgreSQL",
    "pg1": "pg1: one onsite serve, PostgreSQL",
    "pg2": "pg2: two onsite serve, one PostgreSQL",
}
# target: (on PostgreSQL, uvicorn workers per process, app server processes)
SETUPS = {
    "sqlite": (False, 1, 1),
    "postgres": (True, 2, 1),
    "pg1": (True, 1, 1),
    "pg2": (True, 1, 2),
}
FACTORY = """
from server import logs
from server.app import create_app
from server.settings import load


def app():
    settings = load()
    logs.configure(settings.log_level)
    return create_app(settings)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def password(n: int) -> str:
    return f"bench-password-{n}"


class Server:
    """The app server(s) of one configuration, on a fresh data folder and
    database; ``servers`` > 1 runs that many ``onsite serve`` processes on the
    same database and data folder, with the same keys."""

    def __init__(
        self, base: Path, database_url: str, workers: int, users: int, servers: int = 1
    ) -> None:
        vapid = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.env = {
            **os.environ,
            "ONSITE_SECRET_KEY": secrets.token_urlsafe(48),
            "ONSITE_VAPID_PRIVATE_KEY": vapid.decode(),
            "ONSITE_DATA_DIR": str(base / "data"),
            "ONSITE_DATABASE_URL": database_url,
            "ONSITE_LOG_LEVEL": "WARNING",  # no access log line per request
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.cli("site", "add", "bench", "压测小区")  # migrates first
        for n in range(users):
            self.cli(
                "user", "add", f"guard{n}", "--role", "guard", "--site", "bench",
                "--password-stdin", input=password(n) + "\n",
            )  # fmt: skip
        self.urls: list[str] = []
        self.procs: list[subprocess.Popen] = []
        for _ in range(servers):
            port = free_port()
            self.urls.append(f"http://127.0.0.1:{port}")
            if workers == 1:
                command = ["-m", "server.cli", "serve", "--port", str(port)]
            else:
                (base / "bench_factory.py").write_text(FACTORY)
                command = [
                    "-m", "uvicorn", "--factory", "--app-dir", str(base), "bench_factory:app",
                    "--port", str(port), "--workers", str(workers),
                    "--log-level", "warning", "--no-access-log", "--proxy-headers",
                ]  # fmt: skip
            self.procs.append(subprocess.Popen([sys.executable, *command], env=self.env, cwd=ROOT))
        deadline = time.monotonic() + 60
        waiting = list(self.urls)
        while waiting and time.monotonic() < deadline:
            try:
                if httpx.get(waiting[0] + "/login", timeout=1).status_code == 200:
                    waiting.pop(0)
            except httpx.TransportError:
                time.sleep(0.2)
        if waiting:
            self.stop()
            raise RuntimeError("server did not start")

    def cli(self, *args: str, input: str | None = None) -> None:
        subprocess.run(
            [sys.executable, "-m", "server.cli", *args],
            env=self.env,
            input=input,
            text=True,
            check=True,
            capture_output=True,
            cwd=ROOT,
        )

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def report_body(incident: str) -> dict:
    now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {
        "site": "bench",
        "incident_type": incident,
        "severity": "high",
        "occurred_at": now,
        "client_sent_at": now,
        "location": {"text": "3栋2单元 电梯", "lat": 22.54, "lng": 114.05, "accuracy_m": 12.5},
        "notes": "两人被困，已安抚，已通知维保单位",
        "steps": [{"index": 0, "checked_at": now}],
    }


async def run_load(
    urls: list[str], clients: int, users: int, duration: float, warmup: float, incident: str
) -> dict[str, dict]:
    """``clients`` closed loops for ``warmup`` then ``duration`` seconds (only
    the latter measured): per kind, requests/s, p50 and p99 in ms, errors.
    Client n talks to ``urls[n % len(urls)]``."""
    photos = [p.read_bytes() for p in sorted(PHOTOS.glob("*.jpg"))[:2]]
    latencies: dict[str, list[float]] = {kind: [] for kind in MIX}
    errors: dict[str, int] = dict.fromkeys(MIX, 0)
    failures: list[str] = []
    logged_in: list[int] = []
    kinds, weights = list(MIX), list(MIX.values())
    measuring = False
    stop_at = 0.0
    ready = asyncio.Event()

    async def client(n: int) -> None:
        rng = random.Random(n)
        user = {"username": f"guard{n % users}", "password": password(n % users)}
        async with httpx.AsyncClient(base_url=urls[n % len(urls)], timeout=60) as c:
            r = await c.post("/api/session", json=user, headers=CSRF)
            r.raise_for_status()
            first = str(uuid.uuid4())
            r = await c.put(f"/api/reports/{first}", json=report_body(incident), headers=CSRF)
            r.raise_for_status()
            own = [first]
            logged_in.append(n)
            if len(logged_in) == clients:
                ready.set()
            await ready.wait()
            while time.perf_counter() < stop_at:
                kind = rng.choices(kinds, weights)[0]
                t0 = time.perf_counter()
                try:
                    if kind == "report":
                        rid = str(uuid.uuid4())
                        r = await c.put(
                            f"/api/reports/{rid}", json=report_body(incident), headers=CSRF
                        )
                        if r.status_code == 201:
                            own.append(rid)
                    elif kind == "list":
                        r = await c.get("/api/reports", params={"limit": 50})
                    elif kind == "photo":
                        r = await c.put(
                            f"/api/reports/{rng.choice(own[-20:])}/photos/{uuid.uuid4()}",
                            content=rng.choice(photos),
                            headers=JPEG,
                        )
                    else:
                        r = await c.post("/api/session", json=user, headers=CSRF)
                    status = r.status_code
                except httpx.TransportError as exc:
                    status, r = 0, None
                    failures.append(f"{kind}: {exc!r}")
                if not measuring:
                    continue
                latencies[kind].append(time.perf_counter() - t0)
                if status != EXPECTED[kind]:
                    errors[kind] += 1
                    if r is not None:
                        failures.append(f"{kind}: {status} {r.text[:200]}")

    async def clock() -> float:
        nonlocal measuring, stop_at
        await ready.wait()  # every client logged in, with a report of its own
        stop_at = time.perf_counter() + warmup + duration
        await asyncio.sleep(warmup)
        measuring = True
        start = time.perf_counter()
        await asyncio.sleep(max(0.0, stop_at - time.perf_counter()))
        return time.perf_counter() - start

    *_, elapsed = await asyncio.gather(*(client(n) for n in range(clients)), clock())
    # The last requests of each loop end after the clock: count them in.
    elapsed = max(elapsed, 1e-9)
    for line in failures[:5]:
        print("  error:", line)
    result = {}
    for kind, values in [*latencies.items(), ("all", sum(latencies.values(), []))]:
        values.sort()
        result[kind] = {
            "rps": len(values) / elapsed,
            "p50": statistics.median(values) * 1000 if values else 0.0,
            "p99": values[max(0, int(len(values) * 0.99) - 1)] * 1000 if values else 0.0,
            "errors": sum(errors.values()) if kind == "all" else errors[kind],
        }
    return result


def lift_incident() -> str:
    sys.path.insert(0, str(ROOT))
    from server.playbooks import load

    return next(i.id for i in load().incidents() if i.title.zh == "电梯困人事件")


def postgres(server_url: str, sql: str) -> None:
    base = server_url.rpartition("/")[0]
    subprocess.run(["psql", f"{base}/postgres", "-qc", sql], check=True)


def show(title: str, result: dict[str, dict]) -> None:
    print(title)
    print(f"  {'kind':<8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for kind, r in result.items():
        print(f"  {kind:<8} {r['rps']:>8.1f} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['errors']:>7d}")


def ratio(pg1: dict[str, dict], pg2: dict[str, dict]) -> str:
    rps = pg2["all"]["rps"] / pg1["all"]["rps"] if pg1["all"]["rps"] else float("nan")
    p99 = pg2["all"]["p99"] / pg1["all"]["p99"] if pg1["all"]["p99"] else float("nan")
    return f"  ratio pg2/pg1: throughput {rps:.2f}, p99 {p99:.2f}"


def median_of(runs: list[dict[str, dict]]) -> dict[str, dict]:
    return {
        kind: {key: statistics.median(r[kind][key] for r in runs) for key in ("rps", "p50", "p99")}
        | {"errors": sum(r[kind]["errors"] for r in runs)}
        for kind in runs[0]
    }


def one_run(target: str, args: argparse.Namespace, incident: str) -> dict[str, dict]:
    on_postgres, workers, servers = SETUPS[target]
    with tempfile.TemporaryDirectory() as tmp:
        url, name = "", ""
        if on_postgres:
            name = f"onsite_load_{uuid.uuid4().hex[:8]}"
            postgres(args.postgres, f'CREATE DATABASE "{name}"')
            url = f"{args.postgres.rpartition('/')[0]}/{name}"
        try:
            server = Server(Path(tmp), url, workers, args.users, servers)
            try:
                return asyncio.run(
                    run_load(
                        server.urls, args.clients, args.users, args.duration, args.warmup, incident
                    )
                )
            finally:
                server.stop()
        finally:
            if name:
                postgres(args.postgres, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", choices=[*SETUPS, "scale", "both"], default="both")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--users", type=int, default=8, help="guards the clients log in as")
    parser.add_argument("--duration", type=float, default=30, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds first")
    parser.add_argument("--runs", type=int, default=2, help="runs per configuration")
    args = parser.parse_args()
    incident = lift_incident()
    machine = (
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}; client and server on one "
        f"machine, loopback; {args.clients} clients as {args.users} guards, "
        f"{args.duration:.0f} s per run after {args.warmup:.0f} s of warm-up"
    )
    print(machine)
    targets = {"both": ["sqlite", "postgres"], "scale": ["pg1", "pg2"]}.get(args.db, [args.db])
    runs: dict[str, list[dict[str, dict]]] = {target: [] for target in targets}
    # scale: pg1 and pg2 alternate, so a change in the machine's load falls on both.
    order = (
        [t for _ in range(args.runs) for t in targets]
        if args.db == "scale"
        else [t for t in targets for _ in range(args.runs)]
    )
    for target in order:
        result = one_run(target, args, incident)
        runs[target].append(result)
        show(f"{LABELS[target]}, run {len(runs[target])}", result)
        if args.db == "scale" and target == "pg2":
            print(ratio(runs["pg1"][-1], result))
    summary = {target: median_of(results) for target, results in runs.items()}
    print()
    print(machine)
    for target, median in summary.items():
        show(f"{LABELS[target]}: median of {args.runs} runs (errors: the sum)", median)
    if "pg1" in summary and "pg2" in summary:
        print(ratio(summary["pg1"], summary["pg2"]) + " (medians)")


if __name__ == "__main__":
    main()
