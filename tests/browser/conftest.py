"""A real server in a subprocess and Debian's Chromium driven by Playwright.

One server per test process (a module may start its own with other
settings); between tests its data is put back to what it started with (site
north, its guard and the administrator), and every test gets a fresh
browser profile. Chromium is started once per module. The plain helpers are
in :mod:`tests.helpers.browser` and :mod:`tests.helpers.live`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, PHONE_OPTIONS
from tests.helpers.live import LiveServer, module_database

# Let context.route() see the service worker's own requests too (Chromium
# only; read by the Playwright driver when it starts): the offline tests cut
# the network under whichever of page or worker is syncing.
os.environ.setdefault("PW_EXPERIMENTAL_SERVICE_WORKER_NETWORK_EVENTS", "1")


@pytest.fixture(scope="session")
def module_server(tmp_path_factory, staffed_template: str) -> Iterator[LiveServer]:
    """``onsite serve`` for this process's browser tests, from the staffed template.

    Named for the modules that override it with a server of their own
    settings (test_channels.py)."""
    data = tmp_path_factory.mktemp("server") / "data"
    with module_database(data, staffed_template) as url:
        server = LiveServer(data, url)
        server.keep_as_start()
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def live_server(module_server: LiveServer) -> LiveServer:
    """The server, its data as it started."""
    module_server.reset()
    return module_server


# Per module, not per run: while Playwright's sync API runs it owns the
# thread's event loop, which the async tests outside browser/ need.
@pytest.fixture(scope="module")
def playwright():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI needs Debian's chromium at {CHROMIUM}")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


class PagesOnly:
    """The browser of a module marked ``pages_only``: its contexts run no
    service worker unless a test asks for one (``service_workers="allow"``).

    Such a module tests what pages draw and do online, not what the phone
    keeps; a worker's install and warm-up (every asset, then every page of
    the user) cost each fresh context about a second of CPU for nothing."""

    def __init__(self, browser) -> None:
        self._browser = browser

    def new_context(self, **options):
        return self._browser.new_context(**{"service_workers": "block", **options})

    def __getattr__(self, name: str):
        return getattr(self._browser, name)


@pytest.fixture(scope="module")
def browser(playwright, request):
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
    )
    try:
        yield PagesOnly(chromium) if request.node.get_closest_marker("pages_only") else chromium
    finally:
        chromium.close()


@pytest.fixture
def photos(tmp_path) -> list[Path]:
    """Two camera-like JPEGs (a flat colour with a noisy middle) to attach."""
    paths = []
    for n, colour in enumerate([(200, 40, 40), (40, 90, 200)]):
        path = tmp_path / f"evidence-{n}.jpg"
        img = Image.new("RGB", (1600, 1200), colour)
        img.paste(Image.effect_noise((800, 600), 80).convert("RGB"), (400, 300))
        img.save(path, "JPEG", quality=90)
        paths.append(path)
    return paths


@pytest.fixture
def phone_profile(playwright, tmp_path):
    """Opens a phone browser on one profile on disk: closing it and opening
    it again is a phone whose browser was closed and opened again."""
    profile = tmp_path / "profile"
    opened = []

    def open_phone(**options):
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            **{**PHONE_OPTIONS, **options},
        )
        opened.append(context)
        return context

    yield open_phone
    for context in opened:
        with contextlib.suppress(Exception):  # already closed by the test
            context.close()


@pytest.fixture
def phone(browser):
    """A fresh phone-sized browser context (390x844, touch, zh-CN)."""
    context = browser.new_context(**PHONE_OPTIONS)
    try:
        yield context
    finally:
        context.close()
