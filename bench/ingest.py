"""Report ingest: 50 concurrent clients creating reports, beside a bare endpoint.

Runs, in one go and with the same client code, the Onsite server (uvicorn,
one process, exactly as `onsite serve` builds it) on SQLite and on
PostgreSQL, and a bare Starlette app whose endpoint only parses and echoes
the same JSON. Each client is a closed loop: send, wait for the answer, send
the next report with a fresh uuid. Prints requests/s, p50, p99 and the ratio
to the bare endpoint.

    .venv/bin/python bench/ingest.py                  # sqlite + postgres + bare
    .venv/bin/python bench/ingest.py --db sqlite --requests 5000

Targets (issue 4): ratio >= 0.10 and p99 < 100 ms on SQLite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
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

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-1"
CSRF = {"X-Requested-With": "onsite"}

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def put_report(request):
    return JSONResponse(await request.json(), status_code=201)

async def ping(request):
    return JSONResponse({"ok": True})

app = Starlette(routes=[Route("/api/reports/{rid}", put_report, methods=["PUT"]),
                        Route("/ping", ping)])
"""

ONSITE_APP = """
from server.app import create_app
from server.settings import load
app = create_app(load())
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, code: str, env: dict[str, str], ready_path: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        module = Path(env["BENCH_DIR"]) / f"app_{self.port}.py"
        module.write_text(code)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--app-dir",
                str(module.parent),
                f"{module.stem}:app",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env={
                **env,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
            },
            cwd=ROOT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + ready_path, timeout=1).status_code < 500:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server {module} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


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
        "steps": [{"index": 0, "checked_at": now}, {"index": 1, "checked_at": now}],
    }


async def run_load(
    url: str, clients: int, total: int, incident: str, login: bool, rate: float = 0
) -> dict:
    """Send ``total`` reports from ``clients`` clients.

    rate 0: closed loop, each client sends its next report when the last is
    answered (saturation). rate > 0: open loop at ``rate`` reports/s in all,
    latency timed from when each send was due, so a stall is not hidden
    (no coordinated omission).
    """
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    latencies: list[float] = []
    errors = 0
    remaining = total
    sessions = []
    for _ in range(clients):
        c = httpx.AsyncClient(base_url=url, limits=limits, timeout=30)
        if login:
            r = await c.post(
                "/api/session", json={"username": "guard", "password": PASSWORD}, headers=CSRF
            )
            r.raise_for_status()
        sessions.append(c)

    async def worker(c: httpx.AsyncClient, measure: bool, offset: float = 0) -> None:
        nonlocal remaining, errors
        interval = clients / rate if rate else 0
        due = time.perf_counter() + offset * interval
        while remaining > 0:
            remaining -= 1
            body = report_body(incident)
            if rate:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                t0 = due
                due += interval
            else:
                t0 = time.perf_counter()
            r = await c.put(f"/api/reports/{uuid.uuid4()}", json=body, headers=CSRF)
            if measure:
                latencies.append(time.perf_counter() - t0)
            if r.status_code != 201:
                errors += 1

    remaining = clients * 4  # warm-up: connections, caches, JIT-less but warm
    await asyncio.gather(*(worker(c, False) for c in sessions))
    remaining = total
    start = time.perf_counter()
    await asyncio.gather(*(worker(c, True, i / clients) for i, c in enumerate(sessions)))
    elapsed = time.perf_counter() - start
    for c in sessions:
        await c.aclose()
    latencies.sort()
    return {
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "errors": errors,
        "n": len(latencies),
    }


def onsite_env(base: Path, database_url: str) -> dict[str, str]:
    env = {
        **os.environ,
        "ONSITE_DATA_DIR": str(base / "data"),
        "ONSITE_DATABASE_URL": database_url,
        "BENCH_DIR": str(base),
    }
    cli = [sys.executable, "-m", "server.cli"]
    subprocess.run(
        [*cli, "site", "add", "bench", "压测小区"],
        env=env,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    subprocess.run(
        [*cli, "user", "add", "guard", "--role", "guard", "--site", "bench", "--password-stdin"],
        env=env,
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    return env


def lift_incident() -> str:
    sys.path.insert(0, str(ROOT))
    from server.playbooks import load

    return next(i.id for i in load().incidents() if i.title.zh == "电梯困人事件")


def fresh_postgres(server_url: str) -> tuple[str, str]:
    name = f"onsite_bench_{uuid.uuid4().hex[:8]}"
    base = server_url.rpartition("/")[0]
    subprocess.run(["psql", f"{base}/postgres", "-qc", f'CREATE DATABASE "{name}"'], check=True)
    return f"{base}/{name}", name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--rate",
        type=float,
        default=200,
        help="offered load of the open-loop run, reports/s (0: skip it)",
    )
    args = parser.parse_args()
    incident = lift_incident()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        bare = Server(BARE_APP, {**os.environ, "BENCH_DIR": tmp}, "/ping")
        try:
            rows.append(
                (
                    "bare Starlette echo",
                    asyncio.run(
                        run_load(bare.url, args.clients, args.requests, incident, login=False)
                    ),
                )
            )
        finally:
            bare.stop()
        targets = ["sqlite", "postgres"] if args.db == "both" else [args.db]
        for target in targets:
            pg_name = None
            url = ""
            if target == "postgres":
                url, pg_name = fresh_postgres(args.postgres)
            env = onsite_env(base / target, url)
            server = Server(ONSITE_APP, env, "/login")
            try:
                rows.append(
                    (
                        f"onsite PUT report ({target})",
                        asyncio.run(
                            run_load(server.url, args.clients, args.requests, incident, login=True)
                        ),
                    )
                )
                if args.rate:
                    rows.append(
                        (
                            f"  at {args.rate:.0f}/s offered ({target})",
                            asyncio.run(
                                run_load(
                                    server.url,
                                    args.clients,
                                    min(args.requests, int(args.rate * 10)),
                                    incident,
                                    login=True,
                                    rate=args.rate,
                                )
                            ),
                        )
                    )
            finally:
                server.stop()
                if pg_name:
                    base_url = args.postgres.rpartition("/")[0]
                    subprocess.run(
                        [
                            "psql",
                            f"{base_url}/postgres",
                            "-qc",
                            f'DROP DATABASE "{pg_name}" WITH (FORCE)',
                        ],
                        check=False,
                    )
    bare_rps = rows[0][1]["rps"]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {platform.platform()}"
    )
    print(
        f"{args.clients} concurrent clients, {args.requests} requests each target, "
        f"client and server on one machine over loopback\n"
    )
    print(f"{'target':<32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'ratio':>6} {'errors':>6}")
    for name, r in rows:
        ratio = "" if name.startswith("  at") else f"{r['rps'] / bare_rps:.2f}"
        print(
            f"{name:<32} {r['rps']:>8.0f} {r['p50']:>8.1f} {r['p99']:>8.1f} "
            f"{ratio:>6} {r['errors']:>6}"
        )
    print("\nclosed loop = saturation: latency there is clients / throughput (Little's law);")
    print(
        "'at N/s offered' = open loop at a fixed rate, latency timed from when each send was due."
    )


if __name__ == "__main__":
    main()
