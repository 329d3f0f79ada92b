"""The company's playbook library: layers, drafts, versions, diff, revert,
import and export, and a report that keeps the version it followed."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from server.models import AdminLog, PlaybookVersion, Report
from server.playbooks import PlaybookError, check_export, check_export_file
from server.schemas import iso
from tests.conftest import CSRF

LIFT = "lift-entrapment"
FIRE = "fire-alarm"
BASE = f"/api/playbooks/{LIFT}"


async def put_draft(client, layer, incident: str = LIFT, site: str | None = None):
    params = {"site": site} if site else None
    return await client.put(
        f"/api/playbooks/{incident}/draft", json=layer, params=params, headers=CSRF
    )


async def publish(client, note: str = "修订", incident: str = LIFT, site=None, **extra):
    params = {"site": site} if site else None
    return await client.post(
        f"/api/playbooks/{incident}/publish",
        json={"note": note, **extra},
        params=params,
        headers=CSRF,
    )


async def edit(client, layer, note: str = "修订", incident: str = LIFT, site=None) -> dict:
    """Put the draft and publish it: the new version."""
    drafted = await put_draft(client, layer, incident, site)
    assert drafted.status_code == 200, drafted.text
    published = await publish(client, note, incident, site)
    assert published.status_code == 201, published.text
    return published.json()


async def playbook(client, incident: str = LIFT, site: str | None = None) -> dict:
    params = {"site": site} if site else {}
    response = await client.get(f"/api/playbooks/{incident}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def texts(found: dict, part: str = "handling") -> list[str]:
    return [s["text"] for s in found[part]]


async def report(app, client, incident: str = LIFT, **extra) -> dict:
    rid = str(uuid.uuid4())
    body = {
        "site": "north",
        "incident_type": incident,
        "occurred_at": iso(datetime.now(UTC) - timedelta(minutes=2)),
        "steps": [{"index": 0, "checked_at": iso(datetime.now(UTC) - timedelta(minutes=1))}],
        **extra,
    }
    response = await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)
    assert response.status_code == 201, response.text
    return response.json()


# --- the shipped layers ------------------------------------------------------------------


async def test_every_playbook_names_its_version_and_each_step_its_origin(client):
    library = (await client.get("/api/playbooks")).json()
    incidents = [i for c in library["categories"] for i in c["incidents"]]
    assert len(incidents) == 21
    for incident in incidents:
        assert incident["version"].isdigit()
        for part in ("handling", "analysis", "improvement"):
            assert {s["origin"] for s in incident[part]} <= {"source", "product"}


async def test_the_products_defaults_give_fire_and_the_lift_guard_level_first_steps(client):
    fire = await playbook(client, FIRE)
    assert fire["handling"], "火警 has guard steps"
    assert {s["origin"] for s in fire["handling"]} == {"product"}
    assert "call:119" in [s["action"] for s in fire["handling"]]
    assert any("楼梯" in t and "电梯" in t for t in texts(fire))
    # The source's 分析 and 改善 stay as they were.
    assert {s["origin"] for s in fire["analysis"] + fire["improvement"]} == {"source"}
    lift = await playbook(client, LIFT)
    origins = [s["origin"] for s in lift["handling"]]
    assert origins[:5] == ["product"] * 5 and set(origins[5:]) == {"source"}
    assert any("对讲" in t for t in texts(lift)[:5])
    assert any("扒门" in t for t in texts(lift)[:5])
    assert lift["replies"][0]["audience"] == "resident"


# --- layers ----------------------------------------------------------------------------------


async def test_a_company_rewords_hides_adds_and_reorders_steps(app, world, as_user):
    admin = await as_user("admin")
    before = await playbook(admin)
    layer = {
        "severity": "critical",
        "handling": [
            {"key": "p-count"},
            {
                "key": "p-intercom",
                "zh-CN": "用对讲机安抚被困人员",
                "en": "Reassure them over the intercom",
            },
            {"key": "s2", "hidden": True},
            {"zh-CN": "记录被困时间", "en": "Note when they were trapped", "action": "photo"},
        ],
        "replies": [
            {"audience": "media", "zh-CN": "请联系公司新闻发言人", "en": "Ask our spokesperson"}
        ],
    }
    version = await edit(admin, layer, "公司电梯困人流程")
    assert version["number"] == 2 and version["note"] == "公司电梯困人流程"
    assert version["author"]["username"] == "admin"
    now = await playbook(admin)
    assert now["version"] == version["id"] != before["version"]
    assert now["severity"] == "critical"
    steps = now["handling"]
    assert steps[0]["text"].startswith("问清被困人数")  # moved up
    assert steps[1] == {"text": "用对讲机安抚被困人员", "action": None, "origin": "company"}
    assert "分析原因" not in texts(now)  # s2, hidden from guards
    assert {"text": "记录被困时间", "action": "photo", "origin": "company"} in steps
    # Steps the layer did not name stay, after the step before them.
    assert len(steps) == len(before["handling"])
    assert [r["audience"] for r in now["replies"]] == ["resident", "media"]


async def test_a_site_layer_adds_its_own_over_the_company_and_stays_in_its_site(
    app, world, as_user
):
    admin, sup = await as_user("admin"), await as_user("super")
    await edit(
        admin, {"handling": [{"key": "s1", "zh-CN": "设备主管到场", "en": "The supervisor comes"}]}
    )
    site_step = {
        "zh-CN": "致电本项目电梯维保：奥的斯 400-820-0000",
        "en": "Call Otis: 400-820-0000",
    }
    site_version = await edit(sup, {"handling": [site_step]}, "北苑电梯维保", site="north")
    assert site_version["site"] == "north" and site_version["base"]
    north = await playbook(await as_user("guard"), site="north")
    assert north["version"] == site_version["id"]
    assert {"text": site_step["zh-CN"], "action": None, "origin": "site"} in north["handling"]
    assert "设备主管到场" in texts(north)  # the company's word under it
    # The company's own playbook, and another site's, have no such step.
    assert site_step["zh-CN"] not in texts(await playbook(admin))
    south = await playbook(await as_user("southguard"), site="south")
    assert site_step["zh-CN"] not in texts(south)
    assert "设备主管到场" in texts(south)
    # A guard of north asks for south's: refused, and the library is the same.
    guard = await as_user("guard")
    assert (await guard.get(BASE, params={"site": "south"})).status_code == 403
    assert (await guard.get("/api/playbooks", params={"site": "south"})).status_code == 403
    whole = (await guard.get("/api/playbooks", params={"site": "north"})).json()
    lift = next(i for c in whole["categories"] for i in c["incidents"] if i["id"] == LIFT)
    assert lift["version"] == site_version["id"]
    # A site's history is its members'.
    assert (await guard.get(f"{BASE}/versions", params={"site": "south"})).status_code == 403
    other = await as_user("southguard")
    assert (await other.get(f"{BASE}/versions/{site_version['id']}")).status_code == 403


async def test_a_company_version_is_carried_into_each_site_layer_over_it(app, world, as_user):
    admin, sup = await as_user("admin"), await as_user("super")
    site_step = {"zh-CN": "打开泵房排风扇", "en": "Turn on the pump room fan"}
    first = await edit(sup, {"handling": [site_step]}, site="north")
    company = await edit(admin, {"severity": "critical"}, "升级为危急")
    north = await playbook(admin, site="north")
    assert north["version"] not in (first["id"], company["id"])
    assert north["severity"] == "critical" and site_step["zh-CN"] in texts(north)
    listed = (await admin.get(f"{BASE}/versions", params={"site": "north"})).json()
    assert [v["number"] for v in listed["versions"]] == [2, 1]
    assert listed["versions"][0]["base"] == company["id"]


async def test_a_company_adds_an_incident_type_of_its_own(app, world, as_user):
    admin = await as_user("admin")
    layer = {
        "title": {"zh-CN": "燃气泄漏", "en": "Gas leak"},
        "category": "safety",
        "icon": "🔥",
        "severity": "critical",
        "severity_reason": {"zh-CN": "可能爆炸", "en": "It may explode"},
        "handling": [
            {
                "zh-CN": "关闭燃气总阀，开窗通风，严禁开关电器",
                "en": "Shut the main valve, open windows",
            },
            {"zh-CN": "撤离后拨打119", "en": "Once out, call 119", "action": "call:119"},
        ],
        "analysis": [
            {"zh-CN": "燃气管道巡查是否到位", "en": "Whether the gas pipes were inspected"}
        ],
    }
    version = await edit(admin, layer, "新增燃气泄漏", incident="gas-leak")
    assert version["number"] == 1
    library = (await admin.get("/api/playbooks")).json()
    safety = next(c for c in library["categories"] if c["id"] == "safety")
    gas = next(i for i in safety["incidents"] if i["id"] == "gas-leak")
    assert gas["title"] == "燃气泄漏" and gas["icon"] == "🔥" and gas["origin"] == "company"
    assert gas["handling"][1]["action"] == "call:119"
    made = await report(app, await as_user("guard"), "gas-leak")
    assert made["playbook_version"] == version["id"]
    assert made["severity"] == "critical"
    assert "燃气泄漏" in (await (await as_user("guard")).get("/")).text


# --- versions -------------------------------------------------------------------------------


async def test_versions_diff_and_a_revert_that_is_a_new_version(app, world, as_user):
    admin = await as_user("admin")
    first = (await admin.get(f"{BASE}/versions")).json()
    assert [v["number"] for v in first["versions"]] == [1]
    assert first["versions"][0]["author"] is None  # shipped with the app
    v1 = first["current"]
    keys = [
        s["key"] for s in (await admin.get(f"{BASE}/versions/{v1}")).json()["content"]["handling"]
    ]
    # The whole list, as the editor sends it: p-doors moved to the top.
    entries = [{"key": k} for k in keys if k != "p-doors"]
    entries[4] = {"key": "s1", "zh-CN": "设备主管到场查看", "en": "The supervisor inspects"}
    entries[5] = {"key": "s2", "hidden": True}
    layer = {
        "handling": [
            {"key": "p-doors"},
            *entries,
            {"zh-CN": "通知客服中心", "en": "Tell the service desk"},
        ]
    }
    v2 = (await edit(admin, layer, "第二版"))["id"]
    changes = (await admin.get(f"{BASE}/diff", params={"before": v1, "after": v2})).json()[
        "changes"
    ]
    kinds = {(c["kind"], c.get("key")) for c in changes if c["part"] == "handling"}
    assert ("moved", "p-doors") in kinds
    assert ("reworded", "s1") in kinds
    assert ("removed", "s2") in kinds
    assert any(k == "added" for k, _ in kinds)
    hidden = next(c for c in changes if c["kind"] == "removed")
    assert hidden["hidden"] is True and hidden["before"]["zh-CN"] == "分析原因"
    # Versions by number too; one version as it was.
    one = (await admin.get(f"{BASE}/versions/v1")).json()
    assert one["id"] == v1 and one["number"] == 1
    assert [s["key"] for s in one["content"]["handling"]][:2] == ["p-intercom", "p-count"]
    # Revert: v1's layer published again, as v3.
    reverted = await publish(admin, "回到第一版", revert_to=v1)
    assert reverted.status_code == 201, reverted.text
    v3 = reverted.json()
    assert v3["number"] == 3
    again = (await admin.get(f"{BASE}/diff", params={"before": v1, "after": v3["id"]})).json()
    assert again["changes"] == []
    assert [v["number"] for v in (await admin.get(f"{BASE}/versions")).json()["versions"]] == [
        3,
        2,
        1,
    ]


async def test_every_publish_is_in_the_admin_log(app, world, as_user):
    await edit(await as_user("admin"), {"severity": "critical"}, "提高严重程度")
    await edit(await as_user("super"), {"severity": "high"}, "北苑", site="north")
    entries = await AdminLog.filter(action="playbook_published").order_by("id")
    assert [(e.actor_name, e.target, e.data["note"]) for e in entries] == [
        ("admin", LIFT, "提高严重程度"),
        ("super", f"{LIFT}@north", "北苑"),
    ]


async def test_a_publish_without_a_draft_is_a_409_and_a_draft_can_be_dropped(app, world, as_user):
    admin = await as_user("admin")
    assert (await publish(admin)).status_code == 409
    await put_draft(admin, {"severity": "low"})
    draft = (await admin.get(f"{BASE}/draft")).json()
    assert draft["draft"] is True and draft["preview"]["severity"] == "low"
    assert draft["below"]["handling"][0]["key"] == "p-intercom"
    dropped = await admin.delete(f"{BASE}/draft", headers=CSRF)
    assert dropped.json()["draft"] is False
    assert (await publish(admin)).status_code == 409
    assert await PlaybookVersion.filter(incident_type=LIFT).count() == 1


# --- a report keeps its version --------------------------------------------------------------


async def test_a_report_keeps_the_steps_of_its_version_after_later_publishes(app, world, as_user):
    guard, admin, sup = await as_user("guard"), await as_user("admin"), await as_user("super")
    old = await playbook(guard)
    first_step = old["handling"][0]["text"]
    made = await report(app, guard)
    assert made["playbook_version"] == old["version"]
    await edit(
        admin, {"handling": [{"key": "p-intercom", "zh-CN": "新的第一步", "en": "New first"}]}
    )
    assert texts(await playbook(guard))[0] == "新的第一步"

    answer = (await sup.get(f"/api/reports/{made['id']}")).json()
    assert answer["playbook_version"] == old["version"]
    assert answer["playbook"]["version"] == old["version"]
    assert answer["playbook"]["handling"][0]["text"]["zh-CN"] == first_step
    page = (await sup.get(f"/reports/{made['id']}")).text
    printed = (await sup.get(f"/reports/{made['id']}/print")).text
    for html in (page, printed):
        assert first_step in html and "新的第一步" not in html
        assert "v1" in html
    sheet = (await sup.get("/api/reports.csv")).content.decode("utf-8-sig")
    row = next(csv.DictReader(io.StringIO(sheet)))
    assert row["预案版本"] == "v1" and row["已完成步骤"] == first_step


async def test_a_report_begun_on_an_old_version_is_sent_with_that_version(app, world, as_user):
    guard, admin = await as_user("guard"), await as_user("admin")
    old = (await playbook(guard))["version"]
    await edit(admin, {"severity": "critical"})
    late = await report(app, guard, playbook_version=old)
    assert late["playbook_version"] == old
    assert late["severity"] == "high"  # that version's default, not the new one
    # A version of another playbook, or none at all: refused, nothing stored.
    fire = (await playbook(guard, FIRE))["version"]
    for wrong in (fire, "99999"):
        rid = str(uuid.uuid4())
        body = {
            "site": "north",
            "incident_type": LIFT,
            "occurred_at": iso(datetime.now(UTC)),
            "playbook_version": wrong,
        }
        refused = await guard.put(f"/api/reports/{rid}", json=body, headers=CSRF)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["fields"][0]["field"] == "playbook_version"
        assert not await Report.exists(id=rid)


async def test_a_phone_from_before_versions_sends_the_files_hash_and_is_taken(app, world, as_user):
    guard = await as_user("guard")
    made = await report(app, guard, playbook_version="1b1600e42873")
    first = (await (await as_user("admin")).get(f"{BASE}/versions")).json()["versions"][-1]
    assert made["playbook_version"] == first["id"]


# --- who, and bad drafts ------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["guard", "tech", "super"])
async def test_only_admins_edit_and_publish_the_companys_layer(app, world, as_user, who):
    client = await as_user(who)
    assert (await put_draft(client, {"severity": "low"})).status_code == 403
    assert (await publish(client)).status_code == 403
    assert (
        await client.post("/api/playbooks/import", content=b"{}", headers=CSRF)
    ).status_code == 403


async def test_a_site_layer_is_its_supervisors_and_not_another_sites(app, world, as_user):
    sup = await as_user("super")
    refused = await put_draft(sup, {"severity": "low"}, site="south")
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["field"] == "site"
    for who in ("guard", "tech"):
        assert (await put_draft(await as_user(who), {}, site="north")).status_code == 403
    assert (await put_draft(sup, {"severity": "low"}, site="north")).status_code == 200


@pytest.mark.parametrize(
    ("incident", "site", "layer", "field"),
    [
        ("gas-leak", None, {"category": "safety"}, "title"),
        ("gas-leak", None, {"title": {"zh-CN": "燃气", "en": "Gas"}}, "category"),
        (LIFT, None, {"handling": [{"en": "only English"}]}, "handling[0].zh-CN"),
        (LIFT, None, {"handling": [{"zh-CN": "", "en": "x"}]}, "handling.0.zh-CN"),
        (
            LIFT,
            None,
            {"analysis": [{"zh-CN": "拨打", "en": "Call", "action": "call:110"}]},
            "analysis[0].action",
        ),
        (LIFT, None, {"replies": [{"audience": "media"}]}, "replies[0].zh-CN"),
        ("gas-leak", "north", {"severity": "low"}, "incident"),
    ],
)
async def test_a_bad_draft_is_a_422_naming_the_field_and_stores_nothing(
    app, world, as_user, incident, site, layer, field
):
    refused = await put_draft(await as_user("admin"), layer, incident, site)
    assert refused.status_code == 422, refused.text
    assert field in [f["field"] for f in refused.json()["error"]["fields"]]
    assert (await (await as_user("admin")).get(f"/api/playbooks/{incident}/draft")).status_code in (
        200,
        404,
    )
    from server.models import PlaybookDraft

    assert not await PlaybookDraft.exists()


# --- import and export --------------------------------------------------------------------------


async def test_the_library_exports_as_yaml_that_checks_and_imports_back(
    app, world, as_user, tmp_path: Path
):
    admin = await as_user("admin")
    exported = await admin.get("/api/playbooks/export")
    assert exported.headers["content-type"].startswith("application/yaml")
    path = tmp_path / "library.yaml"
    path.write_bytes(exported.content)
    incidents = check_export_file(path)
    assert len(incidents) == 21
    # The company's own words for the lift, brought in as a draft over the source.
    one = yaml.safe_load((await admin.get(f"{BASE}/export")).content)
    one["handling"] = [one["handling"][5], {"zh-CN": "本公司第一步", "en": "Our first step"}]
    answer = await admin.post(
        "/api/playbooks/import",
        content=yaml.safe_dump(one, allow_unicode=True).encode(),
        headers={**CSRF, "content-type": "application/yaml"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["drafted"] == [LIFT]
    draft = (await admin.get(f"{BASE}/draft")).json()
    visible = [s for s in draft["preview"]["handling"] if not s.get("hidden")]
    assert [s["origin"] for s in visible] == ["source", "company"]  # the source's step kept as it
    await publish(admin, "导入本公司预案")
    assert texts(await playbook(admin)) == [one["handling"][0]["zh-CN"], "本公司第一步"]


def test_a_broken_export_names_the_field():
    with pytest.raises(PlaybookError) as raised:
        check_export({"categories": [], "incidents": [{"id": "x", "category": "safety"}]})
    assert any(e.startswith("incidents[0].") for e in raised.value.errors)
