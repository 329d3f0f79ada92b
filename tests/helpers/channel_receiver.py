"""WeCom and DingTalk group robots on 127.0.0.1, for tests and benchmarks.

It checks what the real services check before they post into a group:

- the robot's key (WeCom ``key``, DingTalk ``access_token``) names a robot;
- for a DingTalk robot that signs (加签): ``timestamp`` in milliseconds within
  an hour of now, and ``sign`` equal to base64(HMAC-SHA256(secret,
  timestamp + "\\n" + secret)), recomputed here from the secret;
- the body is UTF-8 JSON of the service's markdown message: WeCom
  ``{"msgtype": "markdown", "markdown": {"content"}}`` with at most 4096
  bytes of content, DingTalk ``{"msgtype": "markdown", "markdown": {"title",
  "text"}}``.

It answers as they do: HTTP 200 with ``{"errcode", "errmsg"}``, errcode 0 when
the message was posted. Each robot can be told how to answer its next
requests: ``ok``, ``error`` (HTTP 503), ``limited`` (the service's "too fast"
errcode), ``refuse`` (an errcode such as a keyword the robot requires) or
``hang`` (never answers until the receiver stops).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.helpers.push_receiver import LocalServer

WECOM_PATH = "/cgi-bin/webhook/send"
DINGTALK_PATH = "/robot/send"
LIMITED = {"wecom": (45009, "api freq out of limit"), "dingtalk": (130101, "send too fast")}
REFUSED = {
    "wecom": (93000, "invalid webhook url"),
    "dingtalk": (310000, "keywords not in content"),
}


@dataclass
class Robot:
    """A group robot: its key, its signing secret, and the messages it posted."""

    kind: str  # wecom | dingtalk
    key: str
    secret: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    behaviour: list[str] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # what each request got

    def url(self, origin: str) -> str:
        if self.kind == "wecom":
            return f"{origin}{WECOM_PATH}?key={self.key}"
        return f"{origin}{DINGTALK_PATH}?access_token={self.key}"


class ChannelReceiver(LocalServer):
    def __init__(self) -> None:
        self.robots: dict[str, Robot] = {}
        self.errors: list[str] = []
        self.requests = 0
        self.arrived = asyncio.Event()
        super().__init__(
            [
                Route(WECOM_PATH, self.wecom, methods=["POST"]),
                Route(DINGTALK_PATH, self.dingtalk, methods=["POST"]),
                Route("/wait", self.wait, methods=["GET"]),
            ],
            graceful=1,
        )
        self.host = f"127.0.0.1:{self.port}"

    def robot(self, kind: str, *behaviour: str, secret: str = "") -> Robot:
        """A new robot; ``behaviour`` answers its requests in turn, then ``ok``."""
        robot = Robot(kind, secrets.token_hex(16), secret, behaviour=list(behaviour))
        self.robots[robot.key] = robot
        return robot

    @property
    def received(self) -> int:
        return sum(len(r.received) for r in self.robots.values())

    # --- the two services -----------------------------------------------------------

    async def wecom(self, request: Request) -> Response:
        return await self._post(request, "wecom", request.query_params.get("key", ""))

    async def dingtalk(self, request: Request) -> Response:
        return await self._post(request, "dingtalk", request.query_params.get("access_token", ""))

    async def _post(self, request: Request, kind: str, key: str) -> Response:
        self.requests += 1
        robot = self.robots.get(key)
        if robot is None or robot.kind != kind:
            self.errors.append(f"{kind}: no robot with key {key!r}")
            return (
                answer(*REFUSED["wecom"])
                if kind == "wecom"
                else answer(300001, "token is not exist")
            )
        action = robot.behaviour.pop(0) if robot.behaviour else "ok"
        robot.answered.append(action)
        if action == "hang":
            # Accepted the connection and never answered.
            await self.closing.wait()
            return Response(status_code=503)
        if action == "error":
            return Response("<html>502 Bad Gateway</html>", status_code=503)
        if action == "limited":
            return answer(*LIMITED[kind])
        if action == "refuse":
            return answer(*REFUSED[kind])
        raw = await request.body()
        try:
            if kind == "dingtalk" and robot.secret:
                self.check_signature(request, robot.secret)
            message = self.check_message(request, raw, kind)
        except AssertionError as exc:  # a test receiver reports, never crashes
            self.errors.append(f"{kind}: {exc}")
            return answer(310000, f"rejected: {exc}")
        robot.received.append({**message, "at": time.time()})
        self.arrived.set()
        return answer(0, "ok")

    def check_signature(self, request: Request, secret: str) -> None:
        timestamp = request.query_params.get("timestamp", "")
        sign = request.query_params.get("sign", "")  # URL-decoded by Starlette
        assert timestamp.isdigit(), f"timestamp {timestamp!r} is not milliseconds"
        assert abs(int(timestamp) - time.time() * 1000) < 3600 * 1000, "timestamp over 1 h off"
        digest = hmac.new(
            secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256
        ).digest()
        assert sign == base64.b64encode(digest).decode(), "sign not match"

    def check_message(self, request: Request, raw: bytes, kind: str) -> dict[str, Any]:
        assert request.headers.get("content-type", "").startswith("application/json"), "not JSON"
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise AssertionError(f"body is not UTF-8 JSON: {exc}") from None
        assert data.get("msgtype") == "markdown", f"msgtype {data.get('msgtype')!r}"
        markdown = data.get("markdown")
        assert isinstance(markdown, dict), "no markdown object"
        if kind == "wecom":
            content = markdown.get("content")
            assert isinstance(content, str) and content.strip(), "empty content"
            assert len(content.encode()) <= 4096, f"content is {len(content.encode())} bytes"
            assert set(markdown) == {"content"}, f"unexpected keys {sorted(markdown)}"
            return {"content": content, "raw": raw}
        title, text = markdown.get("title"), markdown.get("text")
        assert isinstance(title, str) and title.strip(), "empty title"
        assert isinstance(text, str) and text.strip(), "empty text"
        return {"title": title, "text": text, "raw": raw}

    # --- for benchmarks: GET /wait?count=N answers once N messages are in -----------

    async def wait(self, request: Request) -> Response:
        want = int(request.query_params["count"])
        while self.received < want:
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), 1.0)
        times = [m["at"] for r in self.robots.values() for m in r.received]
        return JSONResponse(
            {"received": self.received, "errors": self.errors[:5], "last_at": max(times)}
        )


def answer(errcode: int, errmsg: str) -> Response:
    return JSONResponse({"errcode": errcode, "errmsg": errmsg})


# --- standalone, for benchmarks: the two services in a process of their own -----
#
#   python -m tests.helpers.channel_receiver --robots 200
#
# prints one JSON line {"host", "robots": [{"kind", "url", "secret"}]} once it
# listens (half WeCom, half DingTalk with a secret), then serves until stdin
# closes.


async def _standalone(count: int) -> None:
    import sys

    async with ChannelReceiver() as receiver:
        robots = [
            receiver.robot("wecom")
            if n % 2 == 0
            else receiver.robot("dingtalk", secret="SEC" + secrets.token_hex(16))
            for n in range(count)
        ]
        print(
            json.dumps(
                {
                    "host": receiver.host,
                    "robots": [
                        {"kind": r.kind, "url": r.url(receiver.origin), "secret": r.secret}
                        for r in robots
                    ],
                }
            ),
            flush=True,
        )
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="WeCom and DingTalk robots on 127.0.0.1.")
    parser.add_argument("--robots", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(_standalone(args.robots))
