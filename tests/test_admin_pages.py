"""The administration pages: who sees which (admins change, supervisors read
their own sites, guards and technicians get the 403 page), and that each page
shows what the API holds."""

from __future__ import annotations

import re
import uuid

import pytest

from server import audit
from server.routes import admin_pages
from tests.conftest import CSRF

PAGES = [
    "/admin",
    "/admin/users/guard",
    "/admin/sites",
    "/admin/sites/north",
    "/admin/sites/north/contacts/new",
    "/admin/log",
]
LIFT = "lift-entrapment"


async def put(client, path: str, body: dict):
    response = await client.put(path, json=body, headers=CSRF)
    assert response.is_success, response.text
    return response.json()


async def add_contact(client, **changes) -> str:
    contact_id = str(uuid.uuid4())
    body = {"name": "奥的斯维保", "phone": "400 820 1234", "kind": "lift", "incident_types": [LIFT]}
    await put(client, f"/api/sites/north/contacts/{contact_id}", {**body, **changes})
    return contact_id


@pytest.mark.parametrize("path", PAGES)
async def test_every_page_sends_a_visitor_without_a_session_to_log_in_and_back(client, world, path):
    response = await client.get(path)
    assert response.status_code == 303
    assert response.headers["location"] == f"/login?next={path}"


@pytest.mark.parametrize("username", ["guard", "tech"])
@pytest.mark.parametrize("path", PAGES)
async def test_guards_and_technicians_get_the_forbidden_page(as_user, world, username, path):
    response = await (await as_user(username)).get(path)
    assert response.status_code == 403
    assert "没有权限查看" in response.text


async def test_an_admin_sees_everyone_with_role_and_sites_and_the_form_to_add(as_user, world):
    page = (await (await as_user("admin")).get("/admin")).text
    for username in ("guard", "tech", "super", "admin", "southguard"):
        assert f'href="/admin/users/{username}"' in page
    assert 'data-admin="user-new"' in page
    row = re.search(r'data-username="southguard">.*?</a>', page, re.S)
    assert row and "南苑" in row.group(0) and "保安" in row.group(0)
    assert 'name="sites" value="north"' in page and 'name="sites" value="south"' in page
    assert 'id="password-box"' in page and 'src="/static/js/admin.js' in page


async def test_the_people_list_filters_by_site_and_ignores_an_unknown_one(as_user, world):
    admin = await as_user("admin")
    south = (await admin.get("/admin?site=south")).text
    assert 'data-username="southguard"' in south and 'data-username="guard"' not in south
    assert '<option value="south" selected>' in south
    everyone = (await admin.get("/admin?site=nowhere")).text
    assert 'data-username="southguard"' in everyone and 'data-username="guard"' in everyone


async def test_a_deactivated_person_is_marked_in_the_list_and_on_their_page(as_user, world):
    admin = await as_user("admin")
    body = {"display_name": "Guard", "role": "guard", "sites": ["north"], "active": False}
    await put(admin, "/api/users/guard", body)
    row = re.search(r'data-username="guard">.*?</a>', (await admin.get("/admin")).text, re.S)
    assert row and "inactive" in (await admin.get("/admin")).text and "已停用" in row.group(0)
    page = (await admin.get("/admin/users/guard")).text
    assert "已停用" in page and 'data-admin-do="activate"' in page
    assert 'data-admin-do="deactivate"' not in page


async def test_a_supervisor_reads_their_sites_people_without_forms_or_links(as_user, world):
    boss = await as_user("super")
    page = (await boss.get("/admin")).text
    assert 'data-username="guard"' in page and 'data-username="southguard"' not in page
    assert "data-admin=" not in page and "/admin/users/" not in page
    assert "/admin/log" not in page  # the log is for admins
    # A site of theirs, read-only; another site, forbidden.
    assert (await boss.get("/admin?site=south")).status_code == 200
    assert 'data-username="southguard"' not in (await boss.get("/admin?site=south")).text
    for path in ("/admin/users/guard", "/admin/log", "/admin/sites/north/contacts/new"):
        assert (await boss.get(path)).status_code == 403, path
    assert (await boss.get("/admin/sites/south")).status_code == 403


async def test_a_persons_page_shows_their_name_role_sites_and_history(as_user, world):
    admin = await as_user("admin")
    body = {"display_name": "李工", "role": "supervisor", "sites": ["north", "south"]}
    await put(admin, "/api/users/tech", body)
    page = (await admin.get("/admin/users/tech")).text
    assert 'name="display_name" maxlength="200" value="李工"' in page
    assert 'name="role" value="supervisor" checked' in page
    assert 'name="sites" value="north" checked' in page
    assert 'name="sites" value="south" checked' in page
    assert "角色：维修技师 → 主管" in page  # the change, from the admin log
    for action in ("password", "sessions", "deactivate"):
        assert f'data-admin-do="{action}"' in page
    assert (await admin.get("/admin/users/nobody")).status_code == 404


async def test_an_admin_cannot_deactivate_or_demote_themselves_from_their_page(as_user, world):
    page = (await (await as_user("admin")).get("/admin/users/admin")).text
    assert "data-admin-do=" not in page
    assert 'name="role-shown" value="admin" checked disabled' in page
    assert '<input type="hidden" name="role" value="admin">' in page


async def test_the_sites_page_counts_people_and_contacts_of_each_site(as_user, world):
    admin = await as_user("admin")
    await add_contact(admin)
    page = (await admin.get("/admin/sites")).text
    assert 'data-admin="site-new"' in page
    north = re.search(r'href="/admin/sites/north">.*?</a>', page, re.S)
    assert north and "3 人" in north.group(0) and "1 个紧急联系人" in north.group(0)
    boss = (await (await as_user("super")).get("/admin/sites")).text
    assert "/admin/sites/north" in boss and "/admin/sites/south" not in boss
    assert "data-admin=" not in boss


async def test_a_sites_page_shows_its_contacts_as_the_api_holds_them(as_user, world):
    admin = await as_user("admin")
    contact_id = await add_contact(admin)
    await add_contact(admin, name="燃气公司", phone="96777", kind="gas", incident_types=[])
    page = (await admin.get("/admin/sites/north")).text
    assert 'href="tel:4008201234"' in page and "400 820 1234" in page
    assert "电梯维保" in page and "燃气" in page and "电梯困人事件" in page
    assert "未选择事件类型" in page
    assert f'href="/admin/sites/north/contacts/{contact_id}"' in page
    assert f'data-id="{contact_id}" data-name="奥的斯维保"' in page
    boss = (await (await as_user("super")).get("/admin/sites/north")).text
    assert 'href="tel:4008201234"' in boss
    assert "data-admin-do" not in boss and "/contacts/" not in boss
    assert (await admin.get("/admin/sites/nowhere")).status_code == 404


async def test_the_contact_form_comes_filled_in_for_a_contact_and_empty_for_a_new_one(
    app, as_user, world
):
    admin = await as_user("admin")
    contact_id = await add_contact(admin)
    page = (await admin.get(f"/admin/sites/north/contacts/{contact_id}")).text
    assert f'data-id="{contact_id}"' in page and 'value="奥的斯维保"' in page
    assert 'name="kind" value="lift" required checked' in page
    assert f'name="incident_types" value="{LIFT}" checked' in page
    new = (await admin.get("/admin/sites/north/contacts/new")).text
    assert "data-id=" not in new and " checked" not in new
    # Every incident type of the playbooks, under its category.
    for category in app.state.playbooks.categories:
        assert category.title.zh in new
    assert new.count('name="incident_types"') == len(app.state.playbooks.incidents())
    for bad in ("not-a-uuid", str(uuid.uuid4())):
        assert (await admin.get(f"/admin/sites/north/contacts/{bad}")).status_code == 404
    # A contact of another site is not this site's.
    assert (await admin.get(f"/admin/sites/south/contacts/{contact_id}")).status_code == 404


async def test_the_log_shows_who_did_what_newest_first(as_user, world):
    admin = await as_user("admin")
    await put(admin, "/api/sites/east", {"name": "东苑"})
    await put(admin, "/api/users/tech/password", {})
    page = (await admin.get("/admin/log")).text
    assert page.index("重置密码") < page.index("添加项目")  # newest first
    assert 'href="/admin/users/tech"' in page and 'href="/admin/sites/east"' in page
    assert "系统生成的密码" in page and "东苑" in page
    assert "更早" not in page


async def test_the_log_pages_back_with_before(as_user, world, monkeypatch):
    monkeypatch.setattr(admin_pages, "LOG_PAGE", 2)
    for n in range(3):
        await audit.record(None, "site.create", f"s{n}", name=f"第{n}苑")
    admin = await as_user("admin")
    first = (await admin.get("/admin/log")).text
    assert "第2苑" in first and "第1苑" in first and "第0苑" not in first
    assert "命令行" in first
    earlier = re.search(r'href="/admin/log\?before=(\d+)"', first)
    assert earlier
    second = (await admin.get(f"/admin/log?before={earlier.group(1)}")).text
    assert "第0苑" in second and "第1苑" not in second and 'href="/admin/log"' in second
    assert (await admin.get("/admin/log?before=soon")).status_code == 400


async def test_me_links_admins_and_supervisors_to_administration(as_user, world):
    assert 'href="/admin"' in (await (await as_user("admin")).get("/me")).text
    assert 'href="/admin"' in (await (await as_user("super")).get("/me")).text
    assert 'href="/admin"' not in (await (await as_user("guard")).get("/me")).text


@pytest.mark.parametrize("path", [p for p in PAGES if p != "/admin/users/guard"])
async def test_every_page_is_drawn_in_english_too(as_user, world, path):
    response = await (await as_user("admin")).get(path, params={"lang": "en"})
    assert response.status_code == 200 and '<html lang="en">' in response.text
