"""Web Push in tests: a device subscribing through the API, and waiting for deliveries."""

from __future__ import annotations

import asyncio
import time

import httpx

from server.models import DeliveryStatus, PushDelivery
from tests.helpers.core import CSRF, login
from tests.helpers.push_receiver import Device, Receiver


async def subscribe(client, device, origin) -> httpx.Response:
    """``device`` (a :class:`~tests.helpers.push_receiver.Device`) subscribes through the API."""
    return await client.put(
        "/api/push/subscriptions", json=device.subscription(origin), headers=CSRF
    )


async def until(check, timeout: float = 10.0) -> None:
    """Wait until ``check()`` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def until_async(query, expect, timeout: float = 10.0) -> None:
    """Wait until ``await query()`` equals ``expect``."""
    deadline = time.monotonic() + timeout
    while await query() != expect:
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)


async def settled(app, timeout: float = 10.0) -> None:
    """Wait until every queued push is sent (or given up) and written down:
    after this nothing more can arrive, however late."""
    deliverer = app.state.deliverer

    async def done() -> bool:
        pending = await PushDelivery.filter(status=DeliveryStatus.PENDING).exists()
        return not pending and deliverer.idle

    await until_async(done, expect=True, timeout=timeout)


def push_kinds(device: Device) -> list[str]:
    """The kinds of the pushes ``device`` received, in order."""
    return [m["payload"]["kind"] for m in device.received]


async def phone_of(app, receiver: Receiver, username: str) -> Device:
    """A device of ``username`` subscribed to pushes."""
    device = receiver.device(f"{username}-phone")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as c:
        await login(c, username)
        assert (await subscribe(c, device, receiver.origin)).status_code == 201
    return device
