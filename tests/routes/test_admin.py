"""Administration through the API: people, sites and their contacts; who may
change what; every change in the log."""

from __future__ import annotations

import uuid

import pytest

from server.models import AdminLog, Role, SiteContact, User
from tests.conftest import CSRF, PASSWORD, api_client, login, make_user


async def put(client, path: str, body: dict | None = None):
    return await client.put(path, json=body if body is not None else {}, headers=CSRF)


async def log_actions() -> list[tuple[str, str, str]]:
    rows = await AdminLog.all().order_by("id")
    return [(r.actor_name, r.action, r.target) for r in rows]


# --- people ---------------------------------------------------------------------


async def test_an_admin_adds_a_person_who_can_log_in_with_the_password_shown_once(
    app, world, as_user
):
    admin = await as_user("admin")
    body = {"display_name": "张保安", "role": "guard", "sites": ["north"]}
    made = await put(admin, "/api/users/zhang", body)
    assert made.status_code == 201, made.text
    password = made.json()["password"]
    assert password and made.json()["user"]["sites"] == [{"code": "north", "name": "北苑"}]
    again = await put(admin, "/api/users/zhang", body)
    assert again.status_code == 200 and again.json()["password"] is None  # never shown again
    async with api_client(app) as phone:
        assert (await login(phone, "zhang", password)).json()["role"] == "guard"
    assert await log_actions() == [("admin", "user.create", "zhang")]


async def test_changing_role_and_sites_is_recorded_with_what_changed(app, world, as_user):
    admin = await as_user("admin")
    body = {"display_name": "Tech", "role": "supervisor", "sites": ["north", "south"]}
    changed = await put(admin, "/api/users/tech", body)
    assert changed.status_code == 200
    assert changed.json()["user"]["role"] == "supervisor"
    assert [s["code"] for s in changed.json()["user"]["sites"]] == ["north", "south"]
    entry = await AdminLog.get(action="user.change")
    assert entry.data == {
        "role": ["technician", "supervisor"],
        "sites": [["north"], ["north", "south"]],
    }


async def test_a_deactivated_persons_cookie_gets_401_at_its_next_request(app, world, as_user):
    guard, admin = await as_user("guard"), await as_user("admin")
    assert (await guard.get("/api/me")).status_code == 200
    body = {"display_name": "Guard", "role": "guard", "sites": ["north"], "active": False}
    assert (await put(admin, "/api/users/guard", body)).status_code == 200
    assert (await guard.get("/api/me")).status_code == 401
    async with api_client(app) as phone:
        response = await phone.post(
            "/api/session", json={"username": "guard", "password": PASSWORD}, headers=CSRF
        )
        assert response.status_code == 401  # and no new login either
    listed = (await admin.get("/api/users")).json()["users"]
    assert next(u for u in listed if u["username"] == "guard")["active"] is False


async def test_a_password_reset_ends_the_old_sessions_and_the_new_one_works(app, world, as_user):
    guard, admin = await as_user("guard"), await as_user("admin")
    reset = await put(admin, "/api/users/guard/password")
    assert reset.status_code == 200
    new = reset.json()["password"]
    assert new and new != PASSWORD
    assert (await guard.get("/api/me")).status_code == 401
    async with api_client(app) as phone:
        await login(phone, "guard", new)
    given = await put(admin, "/api/users/guard/password", {"password": "a-new-password"})
    assert given.json()["password"] is None  # the admin knows it: not echoed
    async with api_client(app) as phone:
        await login(phone, "guard", "a-new-password")
    entries = await AdminLog.filter(action="user.password").order_by("id")
    assert [e.data for e in entries] == [{"made_up": True}, {"made_up": False}]
    assert "a-new-password" not in str([e.data for e in entries])


async def test_revoking_a_lost_phones_sessions_is_logged(app, world, as_user):
    guard, admin = await as_user("guard"), await as_user("admin")
    gone = await admin.delete("/api/users/guard/sessions", headers=CSRF)
    assert gone.status_code == 204
    assert (await guard.get("/api/me")).status_code == 401
    assert await log_actions() == [("admin", "user.sessions", "guard")]


@pytest.mark.parametrize(
    ("username", "body", "field"),
    [
        ("Bad Name", {"role": "guard", "sites": ["north"]}, "username"),
        ("x" * 65, {"role": "guard", "sites": ["north"]}, "username"),
        ("new1", {"role": "guard", "sites": []}, "sites"),
        ("new1", {"role": "guard", "sites": ["north", "nowhere"]}, "sites.1"),
        ("new1", {"role": "janitor", "sites": ["north"]}, "role"),
        ("new1", {"role": "guard", "sites": "north"}, "sites"),
        ("new1", {"role": "guard", "sites": ["north"], "display_name": "x" * 201}, "display_name"),
    ],
    ids=["spaces", "too-long", "no-site", "unknown-site", "unknown-role", "not-a-list", "name"],
)
async def test_bad_people_are_422_naming_the_field_and_store_nothing(
    app, world, as_user, username, body, field
):
    response = await put(await as_user("admin"), f"/api/users/{username}", body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == field
    assert await User.all().count() == 5  # the world's, no more
    assert await AdminLog.all().count() == 0


async def test_an_admin_cannot_lock_themselves_out(app, world, as_user):
    admin = await as_user("admin")
    for body, field in [
        ({"role": "admin", "sites": [], "active": False}, "active"),
        ({"role": "supervisor", "sites": ["north"]}, "role"),
    ]:
        response = await put(admin, "/api/users/admin", body)
        assert (
            response.status_code == 422 and response.json()["error"]["fields"][0]["field"] == field
        )
    assert (await admin.get("/api/me")).status_code == 200


async def test_only_admins_change_people_and_supervisors_see_their_sites_staff(app, world, as_user):
    await make_user("southsuper", Role.SUPERVISOR, world.south)
    sup, south, guard = await as_user("super"), await as_user("southsuper"), await as_user("guard")
    body = {"role": "guard", "sites": ["north"]}
    for who in (sup, guard):
        assert (await put(who, "/api/users/someone", body)).status_code == 403
        assert (await put(who, "/api/users/guard/password")).status_code == 403
        assert (await who.delete("/api/users/guard/sessions", headers=CSRF)).status_code == 403
    staff = [u["username"] for u in (await sup.get("/api/users")).json()["users"]]
    assert staff == ["guard", "super", "tech"]  # north's, not south's (nor the admin)
    assert [u["username"] for u in (await south.get("/api/users")).json()["users"]] == [
        "southguard",
        "southsuper",
    ]
    assert (await sup.get("/api/users", params={"site": "south"})).status_code == 403
    assert (await guard.get("/api/users")).status_code == 403
    everyone = (await (await as_user("admin")).get("/api/users")).json()["users"]
    assert len(everyone) == 6


# --- sites and contacts -------------------------------------------------------------


async def test_an_admin_adds_and_renames_a_site(app, world, as_user):
    admin = await as_user("admin")
    made = await put(admin, "/api/sites/east", {"name": "东苑"})
    assert made.status_code == 201 and made.json() == {
        "code": "east",
        "name": "东苑",
        "contacts": [],
    }
    assert (await put(admin, "/api/sites/east", {"name": "东苑"})).status_code == 200
    renamed = await put(admin, "/api/sites/east", {"name": "东苑二期"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "东苑二期"
    assert [a for _, a, _ in await log_actions()] == ["site.create", "site.rename"]
    assert (await put(admin, "/api/sites/bad code", {"name": "x"})).status_code == 422
    assert (await put(await as_user("super"), "/api/sites/north", {"name": "x"})).status_code == 403


def contact(**change) -> dict:
    body = {
        "name": "奥的斯电梯 24 小时",
        "phone": "400-890-9999",
        "kind": "lift",
        "incident_types": ["lift-entrapment"],
    }
    return {**body, **change}


async def test_a_sites_contact_is_added_changed_and_removed_by_its_client_id(app, world, as_user):
    admin, guard = await as_user("admin"), await as_user("guard")
    cid = str(uuid.uuid4())
    path = f"/api/sites/north/contacts/{cid}"
    made = await put(admin, path, contact())
    assert made.status_code == 201, made.text
    assert made.json() == {"id": cid, **contact()}
    assert (await put(admin, path, contact())).status_code == 200
    assert (await SiteContact.all().count()) == 1
    changed = await put(admin, path, contact(phone="+86 21 5555 0100"))
    assert changed.json()["phone"] == "+86 21 5555 0100"
    seen = (await guard.get("/api/sites/north")).json()["contacts"]  # members see it
    assert [c["id"] for c in seen] == [cid]
    assert (await admin.delete(path, headers=CSRF)).status_code == 204
    assert (await admin.delete(path, headers=CSRF)).status_code == 204  # gone already: fine
    assert [a for _, a, _ in await log_actions()] == [
        "contact.create",
        "contact.change",
        "contact.delete",
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"phone": "call 110"}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"phone": "++--"}, "phone"),
        ({"kind": "plumber"}, "kind"),
        ({"incident_types": ["no-such-incident"]}, "incident_types.0"),
        ({"name": ""}, "name"),
    ],
    ids=["letters", "too-short", "no-digits", "unknown-kind", "unknown-incident", "no-name"],
)
async def test_a_bad_contact_is_422_naming_the_field(app, world, as_user, change, field):
    response = await put(
        await as_user("admin"), f"/api/sites/north/contacts/{uuid.uuid4()}", contact(**change)
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["fields"][0]["field"] == field
    assert await SiteContact.all().count() == 0


async def test_contacts_are_written_by_admins_only_and_kept_to_their_site(app, world, as_user):
    admin, sup = await as_user("admin"), await as_user("super")
    cid = str(uuid.uuid4())
    assert (await put(sup, f"/api/sites/north/contacts/{cid}", contact())).status_code == 403
    assert (await put(admin, f"/api/sites/north/contacts/{cid}", contact())).status_code == 201
    other = await put(admin, f"/api/sites/south/contacts/{cid}", contact())
    assert other.status_code == 409  # the id is north's
    assert (await put(admin, f"/api/sites/nowhere/contacts/{cid}", contact())).status_code == 404
    south_guard = await as_user("southguard")
    assert (await south_guard.get("/api/sites/north")).status_code == 403


async def test_an_admin_set_password_is_hashed_off_the_event_loop(app, world, as_user, monkeypatch):
    """argon2 takes tens of milliseconds at production cost: never on the loop."""
    import threading

    from server import users

    threads: list[str] = []
    real = users.hash_password

    def recorded(password: str) -> str:
        threads.append(threading.current_thread().name)
        return real(password)

    monkeypatch.setattr(users, "hash_password", recorded)
    admin = await as_user("admin")
    made = await put(
        admin, "/api/users/zhang", {"display_name": "张", "role": "guard", "sites": ["north"]}
    )
    assert made.status_code == 201
    assert (await put(admin, "/api/users/zhang/password")).status_code == 200
    loop = threading.main_thread().name
    assert len(threads) == 2 and loop not in threads
