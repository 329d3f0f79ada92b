"""Where the server may send a request a user chose: a push endpoint, a
group robot's webhook. Only to hosts on a list, and never into the server's
own networks (loopback, private, link-local, reserved), so that a guard's
phone cannot make the server call its neighbours (SSRF).

A host on the list is a name (``fcm.googleapis.com``), a name with a leading
dot for its subdomains (``.notify.windows.com``), or ``host:port``. An IP
literal on the list (tests list ``127.0.0.1`` to reach a local receiver) is
taken as it is; every name is resolved, and all its addresses must be public.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
from collections.abc import Iterable

from server.errors import Msg

# Resolved addresses are remembered this long: a fan-out to a thousand
# devices on one push service resolves it once.
CACHE_SECONDS = 300.0
RESOLVE_TIMEOUT = 5.0

_cache: dict[str, tuple[float, str | None]] = {}


def listed(host: str, port: int | None, allowed: Iterable[str]) -> bool:
    """Whether ``host`` (lower case), on ``port``, is on the ``allowed`` list."""
    for entry in allowed:
        entry = entry.lower()
        if port is not None and entry == f"{host}:{port}":
            return True
        if entry == host or (entry.startswith(".") and host.endswith(entry)):
            return True
    return False


def literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(host.strip("[]"))
    return None


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def private_address(host: str, allowed: Iterable[str]) -> str | None:
    """Why ``host`` must not be called (it is or resolves to a non-public
    address), or None. An IP literal that is itself listed is allowed; a
    name that cannot be resolved now is allowed (the send will fail and be
    retried, and is checked again then)."""
    host = host.lower()
    ip = literal(host)
    if ip is not None:
        entries = [h.lower() for h in allowed]
        if any(e == host or e.startswith(f"{host}:") for e in entries) or _public(ip):
            return None
        return Msg("{host} is not a public address.", host=host)
    now = time.monotonic()
    cached = _cache.get(host)
    if cached and cached[0] > now:
        return cached[1]
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, 443, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT
        )
    except (OSError, TimeoutError):
        return None
    problem = None
    for info in infos:
        address = literal(str(info[4][0]).split("%", 1)[0])
        if address is None or not _public(address):
            problem = f"{host} resolves to {info[4][0]}, which is not a public address."
            break
    _cache[host] = (now + CACHE_SECONDS, problem)
    return problem
