"""Module preloads: every page names, in its head, every module its scripts
import, directly or not, at the exact URL the browser will ask for; and its
language in a Content-Language header (the service worker keeps a copy of
each page per language by it)."""

from __future__ import annotations

import re
from urllib.parse import urljoin

import httpx
import pytest

from tests.conftest import login

SCRIPT = re.compile(r'<script type="module" src="([^"]+)"')
PRELOAD = re.compile(r'<link rel="modulepreload" href="([^"]+)"')
# Static imports only: a dynamic import() is fetched when it is needed.
IMPORT = re.compile(
    r"""(?:^|;)\s*(?:import\s*(?:[^;'"()]*?\bfrom\s*)?|export\b[^;'"()]*?\bfrom\s*)['"]([^'"]+)['"]""",
    re.M,
)

GUARD_PAGES = ["/", "/new", "/reports", "/outbox", "/playbooks", "/me", "/contacts",
               "/report/lift-entrapment", "/playbooks/lift-entrapment"]  # fmt: skip
SUPERVISOR_PAGES = ["/", "/reports", "/dashboard", "/admin/sites"]


async def import_graph(client: httpx.AsyncClient, entries: list[str]) -> set[str]:
    """Every module the entries need before they run, as the browser resolves them."""
    seen: set[str] = set()
    todo = list(entries)
    while todo:
        url = todo.pop()
        if url in seen:
            continue
        seen.add(url)
        response = await client.get(url)
        assert response.status_code == 200, url
        todo.extend(urljoin(f"http://testserver{url}", spec).removeprefix("http://testserver")
                    for spec in IMPORT.findall(response.text))  # fmt: skip
    return seen


async def check_preloads(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 200, path
    head = response.text.split("</head>", 1)[0]
    preloads = PRELOAD.findall(head)
    scripts = SCRIPT.findall(response.text)
    assert scripts, path
    needed = await import_graph(client, scripts)
    assert needed - set(preloads) == set(), f"{path}: not preloaded"
    assert len(preloads) == len(set(preloads)), f"{path}: a module preloaded twice"
    # Nothing the page would not load: a preload of another URL is a wasted download.
    assert set(preloads) - needed == set(), f"{path}: preloaded but never imported"


async def test_every_module_a_guard_page_imports_is_preloaded_at_its_exact_url(app, client, world):
    from tests.helpers.reports import make_report

    await login(client, "guard")
    report = await make_report(app, client)
    for path in [*GUARD_PAGES, f"/reports/{report}"]:
        await check_preloads(client, path)
    # A page whose scripts depend on who looks: the supervisor's copy of the
    # same report draws neither the guard's step script nor the job's, and
    # preloads neither (a wasted download on a weak link).
    await login(client, "super")
    await check_preloads(client, f"/reports/{report}")


async def test_every_module_a_supervisor_page_imports_is_preloaded(client, world):
    await login(client, "super")
    for path in SUPERVISOR_PAGES:
        await check_preloads(client, path)


async def test_the_login_page_preloads_the_outbox_modules_of_app_js(client):
    response = await client.get("/login")
    preloads = PRELOAD.findall(response.text)
    assert [p.split("?")[0] for p in preloads] == [
        "/static/js/app.js",
        "/static/js/outbox/queue.js",
        "/static/js/outbox/store.js",
        "/static/js/outbox/settle.js",
        "/static/js/idb.js",
    ]
    assert preloads[0] == SCRIPT.findall(response.text)[0]  # with its ?v=, as the script asks


async def test_the_bench_can_draw_a_page_without_preloads(client, world):
    await login(client, "guard")
    response = await client.get("/?modulepreload=0")
    assert response.status_code == 200
    assert PRELOAD.findall(response.text) == []
    assert SCRIPT.findall(response.text)  # the scripts themselves stay


@pytest.mark.parametrize(("query", "lang"), [("", "zh-CN"), ("?lang=en", "en")])
async def test_pages_say_their_language_in_a_header(client, world, query, lang):
    assert (await client.get(f"/login{query}")).headers["content-language"] == lang
    await login(client, "guard")
    response = await client.get(f"/playbooks{query}")
    assert response.headers["content-language"] == lang
    assert f'<html lang="{lang}">' in response.text
