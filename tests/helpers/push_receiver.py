"""A push service on 127.0.0.1 for tests and benchmarks.

It checks what a real push service checks: the VAPID JWT (ES256, signed by
the ``k=`` key, ``aud`` equal to this origin, ``exp`` at most 24 h ahead) and
the TTL and Urgency headers; then decrypts the aes128gcm body with the
independent ``http_ece`` library and the subscription's private key. Each
endpoint path can be told how to answer: 201, gone (410), busy (429 with
Retry-After, then 201) or hang.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Self

import http_ece
import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """A browser's side of one subscription: its keys and what it received."""

    path: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    received: list[dict[str, Any]] = field(default_factory=list)

    def subscription(self, origin: str) -> dict[str, Any]:
        public = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {
            "endpoint": f"{origin}/push/{self.path}",
            "expirationTime": None,
            "keys": {"p256dh": b64(public), "auth": b64(self.auth)},
        }


class LocalServer:
    """A Starlette app of ``routes`` served by uvicorn on a free port of
    127.0.0.1, in this event loop, for ``async with``. ``closing`` is set as it
    stops (what hangs on purpose waits for it)."""

    def __init__(self, routes: list[Route], graceful: float = 2) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                Starlette(routes=routes),
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                access_log=False,
                lifespan="off",
                timeout_graceful_shutdown=graceful,
            )
        )
        self.task: asyncio.Task | None = None
        self.closing = asyncio.Event()

    async def __aenter__(self) -> Self:
        self.task = asyncio.create_task(self.server.serve())
        while not self.server.started:
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.closing.set()
        self.server.should_exit = True
        if self.task:
            await self.task


class Receiver(LocalServer):
    def __init__(self, verify_every: int = 1) -> None:
        # verify_every > 1 (benchmarks) checks and decrypts one message in n,
        # so the receiver's own work does not swamp what is measured.
        self.verify_every = verify_every
        self.devices: dict[str, Device] = {}
        self.behaviour: dict[str, list[str]] = {}
        self.errors: list[str] = []
        self.requests = 0
        super().__init__([Route("/push/{path}", self.push, methods=["POST"])])

    def device(self, path: str, *behaviour: str) -> Device:
        """A new device at /push/<path>; ``behaviour`` answers in turn, then 201."""
        device = Device(path)
        self.devices[path] = device
        self.behaviour[path] = list(behaviour)
        return device

    async def push(self, request: Request) -> Response:
        self.requests += 1
        path = request.path_params["path"]
        device = self.devices.get(path)
        if device is None:
            return Response(status_code=404)
        plan = self.behaviour[path]
        action = plan.pop(0) if plan else "ok"
        if action == "hang":
            # Hang until the receiver shuts down, like a push service that
            # accepted the connection and never answered.
            await self.closing.wait()
            return Response(status_code=503)
        if action == "gone":
            return Response(status_code=410)
        if action == "busy":
            return Response(status_code=429, headers={"Retry-After": "1"})
        if action == "error":
            return Response(status_code=503)
        body = await request.body()
        if self.requests % self.verify_every:
            device.received.append({"size": len(body), "at": time.time(), "verified": False})
            return Response(status_code=201)
        try:
            message = self.verify(request, body, device)
        except Exception as exc:  # a test receiver reports, never crashes
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return Response(status_code=400)
        device.received.append(message)
        return Response(status_code=201)

    def verify(self, request: Request, body: bytes, device: Device) -> dict[str, Any]:
        scheme, _, params = request.headers["authorization"].partition(" ")
        assert scheme == "vapid", scheme
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        k = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64(fields["k"]))
        claims = jwt.decode(fields["t"], k, algorithms=["ES256"], audience=self.origin)
        assert claims["exp"] <= time.time() + 24 * 3600, "exp more than 24 h ahead"
        assert claims["sub"].startswith(("mailto:", "https:")), claims["sub"]
        ttl = int(request.headers["ttl"])
        assert ttl > 0, "TTL 0 drops alerts for phones that are off"
        assert request.headers["content-encoding"] == "aes128gcm"
        plain = http_ece.decrypt(
            body, private_key=device.private_key, auth_secret=device.auth, version="aes128gcm"
        )
        return {
            "payload": json.loads(plain),
            "ttl": ttl,
            "urgency": request.headers.get("urgency"),
            "topic": request.headers.get("topic"),
            "size": len(body),
            "at": time.time(),
        }


# --- standalone, for benchmarks: a push service in a process of its own ----------
#
#   python -m tests.helpers.push_receiver --devices 1000 --verify-every 10
#
#   python -m tests.helpers.push_receiver --devices 41 --hang 40
#
# prints one JSON line {"origin", "subscriptions": [...]} once it listens,
# then serves until stdin closes. GET /wait?count=N answers once N messages
# have arrived: {"received", "verified", "errors", "last_at"}.


async def _standalone(devices: int, verify_every: int, hang: int = 0) -> None:
    import sys

    receiver = Receiver(verify_every=verify_every)
    arrived = asyncio.Event()
    push = receiver.push

    async def counted(request: Request) -> Response:
        response = await push(request)
        arrived.set()
        return response

    async def wait(request: Request) -> Response:
        want = int(request.query_params["count"])
        while sum(len(d.received) for d in receiver.devices.values()) < want:
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), 1.0)
        messages = [m for d in receiver.devices.values() for m in d.received]
        return Response(
            json.dumps(
                {
                    "received": len(messages),
                    "verified": sum(1 for m in messages if m.get("verified", True)),
                    "errors": receiver.errors[:5],
                    "last_at": max(m["at"] for m in messages),
                }
            ),
            media_type="application/json",
        )

    receiver.server.config.app.router.routes[:] = [
        Route("/push/{path}", counted, methods=["POST"]),
        Route("/wait", wait, methods=["GET"]),
    ]
    async with receiver:
        subs = [
            receiver.device(f"d{n}", *(["hang"] if n < hang else [])).subscription(receiver.origin)
            for n in range(devices)
        ]
        print(json.dumps({"origin": receiver.origin, "subscriptions": subs}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="A push service on 127.0.0.1.")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--verify-every", type=int, default=1)
    parser.add_argument("--hang", type=int, default=0, help="the first N devices never answer")
    args = parser.parse_args()
    asyncio.run(_standalone(args.devices, args.verify_every, args.hang))
