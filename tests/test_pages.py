"""The page shell: login page, languages, manifest, worker, translations."""

from __future__ import annotations

import json
import re
from pathlib import Path

from babel.messages.extract import extract_from_dir

from server.build import build_id
from server.i18n import translations
from tests.conftest import PASSWORD, login

PWA = Path(__file__).resolve().parent.parent / "pwa"


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


async def test_the_home_page_sends_a_visitor_to_login(client):
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


async def test_the_login_page_speaks_chinese_by_default(client):
    response = await client.get("/login")
    assert response.status_code == 200
    assert '<html lang="zh-CN">' in response.text
    assert "用户名" in response.text and "密码" in response.text
    assert 'href="tel:110"' in response.text  # emergency calls need no login


async def test_the_login_page_speaks_english_on_request(client):
    response = await client.get("/login?lang=en")
    assert '<html lang="en">' in response.text
    assert "Username" in response.text and "Password" in response.text
    assert "用户名" not in response.text


async def test_the_language_switch_is_remembered_in_a_cookie(client):
    response = await client.get("/lang/en?next=/login")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert 'lang="en"' in (await client.get("/login")).text


async def test_the_language_switch_refuses_to_redirect_off_site(client):
    response = await client.get("/lang/en?next=https://evil.example/")
    assert response.headers["location"] == "/"
    response = await client.get("/lang/en?next=//evil.example/")
    assert response.headers["location"] == "/"


async def test_the_login_form_logs_in_and_redirects_home(client, world):
    page = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "csrf_token": form_token(page.text),
            "username": "guard",
            "password": PASSWORD,
            "next": "/",
        },
    )
    assert response.status_code == 303
    home = await client.get("/")
    assert home.status_code == 200
    assert "Guard" in home.text and "北苑" in home.text


async def test_the_login_form_shows_an_error_for_a_wrong_password(client, world):
    page = await client.get("/login")
    response = await client.post(
        "/login",
        data={
            "csrf_token": form_token(page.text),
            "username": "guard",
            "password": "wrong",
        },
    )
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert 'value="guard"' in response.text  # what the guard typed is kept


async def test_the_login_form_without_its_token_is_403(client, world):
    await client.get("/login")
    response = await client.post("/login", data={"username": "guard", "password": PASSWORD})
    assert response.status_code == 403
    assert (await client.get("/api/me")).status_code == 401


async def test_logout_needs_the_form_token(client, world):
    page = await client.get("/login")
    token = form_token(page.text)
    await client.post(
        "/login", data={"csrf_token": token, "username": "guard", "password": PASSWORD}
    )
    assert (await client.post("/logout", data={})).status_code == 403
    assert (await client.post("/logout", data={"csrf_token": token})).status_code == 303
    assert (await client.get("/api/me")).status_code == 401


async def test_the_manifest_makes_the_app_installable(client):
    response = await client.get("/manifest.webmanifest")
    assert response.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(response.text)
    assert manifest["lang"] == "zh-CN"
    assert manifest["display"] == "standalone"
    assert manifest["name"] and manifest["short_name"] and manifest["start_url"]
    sizes = {(i["sizes"], i.get("purpose", "any")) for i in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        assert (await client.get(icon["src"])).status_code == 200


async def test_the_service_worker_is_served_from_the_root_uncached(client):
    response = await client.get("/sw.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "no-cache"
    # The build is written into the worker and into each module it imports,
    # so a new build is a new worker with new caches.
    assert "__BUILD__" not in response.text
    assert f'const VERSION = "{build_id()}";' in response.text
    imports = re.findall(r'from "([^"]+)"', response.text)
    assert imports and all(i.endswith(f"?v={build_id()}") for i in imports)
    for module in imports:
        assert (await client.get(module)).status_code == 200


async def test_the_precache_list_names_every_asset_and_page_a_guard_needs_offline(client, app):
    response = await client.get("/sw/precache.json")
    assert response.headers["cache-control"] == "no-store"
    listed = response.json()
    assert listed["version"] == build_id()
    assets = set(listed["assets"])
    on_disk = {
        "/static/" + p.relative_to(PWA / "static").as_posix()
        for p in (PWA / "static").rglob("*")
        if p.suffix in {".js", ".css", ".png", ".svg"}
    }
    assert on_disk <= assets and "/offline" in assets
    for url in assets:
        assert (await client.get(url)).status_code == 200, url
    incidents = [i.id for i in app.state.playbooks.incidents()]
    pages = set(listed["pages"])
    assert {"/", "/new", "/reports", "/outbox", "/playbooks", "/me", "/api/playbooks"} <= pages
    assert {f"/report/{i}" for i in incidents} <= pages
    assert {f"/playbooks/{i}" for i in incidents} <= pages


async def test_static_files_are_checked_again_before_use(client):
    response = await client.get("/static/js/app.js")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["etag"]
    again = await client.get(
        "/static/js/app.js", headers={"If-None-Match": response.headers["etag"]}
    )
    assert again.status_code == 304


async def test_the_offline_and_outbox_pages_need_no_login(client):
    # An expired session must not hide what waits on the phone.
    for path in ("/offline", "/outbox"):
        response = await client.get(path)
        assert response.status_code == 200, path
        assert 'id="main"' in response.text


async def test_the_me_page_needs_a_login_and_shows_the_guards_sites(client, world):
    response = await client.get("/me")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/me"
    await login(client, "guard")
    page = (await client.get("/me")).text
    assert "北苑" in page
    assert "开启本机通知" in page and "退出登录" in page
    assert "南苑" not in page  # only the guard's own sites


def test_every_template_message_has_an_english_translation():
    en = translations("en")
    method_map = [("templates/**.html", "jinja2")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    missing = []
    for _file, _line, message, _comments, _ctx in extract_from_dir(str(PWA), method_map, options):
        msgid = message if isinstance(message, str) else message[0]
        if en.gettext(msgid) == msgid:
            missing.append(msgid)
    assert not missing, f"no English for: {missing}"
