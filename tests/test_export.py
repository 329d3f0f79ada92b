"""GET /api/reports.csv: what Excel opens, with the list's filters and the list's
visibility, one row per incident, minutes and corrective actions counted."""

from __future__ import annotations

import codecs
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest

from server import export
from server.models import ActionStatus, Report, User
from tests.conftest import CSRF, login
from tests.helpers.reports import act, action, iso, lift_id

HEADERS_ZH = [
    "编号",
    "小区",
    "事件类型",
    "严重程度",
    "状态",
    "上报人",
    "发生时间",
    "接报时间",
    "确认时间",
    "关闭时间",
    "接报至确认（分钟）",
    "接报至关闭（分钟）",
    "预案版本",
    "已完成步骤",
    "未完成整改",
    "逾期整改",
]
HEADERS_EN = [
    "ID",
    "Site",
    "Incident type",
    "Severity",
    "Status",
    "Reporter",
    "Occurred at",
    "Received at",
    "Acknowledged at",
    "Closed at",
    "Minutes to acknowledge",
    "Minutes to close",
    "Playbook version",
    "Steps done",
    "Open actions",
    "Overdue actions",
]


def other_type(app) -> str:
    return next(i.id for i in app.state.playbooks.incidents() if i.id != lift_id(app))


async def send(
    app, client: httpx.AsyncClient, site: str = "north", severity: str = "high", kind=None
) -> str:
    rid = str(uuid.uuid4())
    body = {
        "site": site,
        "incident_type": kind or lift_id(app),
        "severity": severity,
        "occurred_at": iso(datetime.now(UTC) - timedelta(minutes=3)),
    }
    response = await client.put(f"/api/reports/{rid}", json=body, headers=CSRF)
    assert response.status_code == 201, response.text
    return rid


async def download(client: httpx.AsyncClient, **params) -> httpx.Response:
    response = await client.get("/api/reports.csv", params=params)
    assert response.status_code == 200, response.text
    return response


def read(response: httpx.Response) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows, as Python's csv module (and Excel) reads them."""
    assert response.content.startswith(codecs.BOM_UTF8)
    lines = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))
    header, *rows = lines
    return header, [dict(zip(header, row, strict=True)) for row in rows]


async def ids(client: httpx.AsyncClient, **params) -> list[str]:
    _, rows = read(await download(client, **params))
    ids = [row["编号"] for row in rows]
    assert len(ids) == len(set(ids)), "a report exported twice"
    return ids


async def close(as_user, rid: str) -> None:
    """Close as the supervisor; once closing needs the review complete, as an
    admin who waives it."""
    closed = await act(await as_user("super"), rid, "closure", {"note": "已处理"})
    if closed.status_code == 409 and closed.json()["error"]["code"] == "review_incomplete":
        body = {"note": "已处理", "waive": "test"}
        closed = await act(await as_user("admin"), rid, "closure", body)
    assert closed.status_code == 201, closed.text


def local(value: datetime, app) -> str:
    return value.astimezone(ZoneInfo(app.state.settings.timezone)).strftime("%Y-%m-%d %H:%M")


async def test_the_export_is_utf8_with_a_bom_and_chinese_headers_one_row_per_incident(
    app, world, as_user
):
    guard = await as_user("guard")
    first, second = await send(app, guard), await send(app, guard, severity="critical")
    response = await download(await as_user("super"))

    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    today = app.state.context.today()
    assert response.headers["content-disposition"] == (
        f'attachment; filename="onsite-reports-{today:%Y%m%d}.csv"'
    )
    header, rows = read(response)
    assert header == HEADERS_ZH
    assert [row["编号"] for row in rows] == [second, first]  # newest first, as the list
    row = rows[1]
    report = await Report.get(id=first)
    assert row == {
        "编号": first,
        "小区": "北苑",
        "事件类型": "电梯困人事件",
        "严重程度": "高",
        "状态": "新上报",
        "上报人": "Guard",
        "发生时间": local(report.occurred_at, app),
        "接报时间": local(report.received_at, app),
        "确认时间": "",
        "关闭时间": "",
        "接报至确认（分钟）": "",
        "接报至关闭（分钟）": "",
        "预案版本": f"v{app.state.playbooks.incident(lift_id(app)).number}",
        "已完成步骤": "",
        "未完成整改": "0",
        "逾期整改": "0",
    }
    assert rows[0]["严重程度"] == "危急"


async def test_lang_en_gives_english_headers_types_and_labels(app, world, as_user):
    await send(app, await as_user("guard"))
    sup = await as_user("super")
    lift = app.state.playbooks.incident(lift_id(app)).title.en
    for response in (await download(sup, lang="en"), await sup.get("/api/reports.csv?lang=en")):
        header, [row] = read(response)
        assert header == HEADERS_EN
        assert (row["Incident type"], row["Severity"], row["Status"]) == (lift, "High", "New")
        assert row["Site"] == "北苑"  # a name, not translated


async def test_times_are_in_the_sites_time_zone(app, world, as_user):
    rid = await send(app, await as_user("guard"))
    received = datetime(2026, 3, 1, 16, 30, tzinfo=UTC)  # 00:30 the next day in Shanghai
    await Report.filter(id=rid).update(received_at=received)
    _, [row] = read(await download(await as_user("super")))
    assert app.state.settings.timezone == "Asia/Shanghai"
    assert row["接报时间"] == "2026-03-02 00:30"


async def test_minutes_to_acknowledge_and_to_close_are_whole_minutes_from_receipt(
    app, world, as_user, clock
):
    rid = await send(app, await as_user("guard"))
    clock.advance(10 * 60 + 30)
    acked = await act(await as_user("super"), rid, "acknowledgement")
    assert acked.status_code == 201, acked.text
    _, [row] = read(await download(await as_user("super")))
    assert (row["接报至确认（分钟）"], row["接报至关闭（分钟）"]) == ("10", "")
    assert row["状态"] == "已确认"

    clock.advance(50 * 60)
    await close(as_user, rid)
    _, [row] = read(await download(await as_user("super")))
    report = await Report.get(id=rid)
    assert (row["接报至确认（分钟）"], row["接报至关闭（分钟）"]) == ("10", "60")
    assert row["确认时间"] == local(report.acknowledged_at, app)
    assert row["关闭时间"] == local(report.closed_at, app)
    assert row["状态"] == "已关闭"


async def test_open_actions_are_those_not_verified_and_overdue_those_open_past_their_day(
    app, world, as_user
):
    rid = await send(app, await as_user("guard"))
    other = await send(app, await as_user("guard"))
    today = app.state.context.today()
    await action(as_user, rid, today - timedelta(days=1))  # overdue
    await action(as_user, rid, today)  # due today: not yet overdue
    await action(as_user, rid, today - timedelta(days=3), ActionStatus.DONE)  # open until verified
    await action(as_user, rid, today - timedelta(days=3), ActionStatus.VERIFIED)  # neither
    _, rows = read(await download(await as_user("super")))
    counts = {row["编号"]: (row["未完成整改"], row["逾期整改"]) for row in rows}
    assert counts == {rid: ("3", "1"), other: ("0", "0")}


async def test_the_filters_of_the_list_apply(app, world, as_user):
    guard, sup = await as_user("guard"), await as_user("super")
    high = await send(app, guard, severity="high")
    low = await send(app, guard, severity="low", kind=other_type(app))
    acked = await send(app, guard, severity="high")
    assert (await act(sup, acked, "acknowledgement")).status_code == 201
    week_ago = datetime.now(UTC) - timedelta(days=7)
    await Report.filter(id=low).update(received_at=week_ago)

    assert set(await ids(sup)) == {high, low, acked}
    assert await ids(sup, status="acknowledged") == [acked]
    assert set(await ids(sup, status="new")) == {high, low}
    assert await ids(sup, severity="low") == [low]
    assert await ids(sup, type=other_type(app)) == [low]
    assert set(await ids(sup, site="north")) == {high, low, acked}
    day_ago = iso(datetime.now(UTC) - timedelta(days=1))
    assert set(await ids(sup, **{"from": day_ago})) == {high, acked}
    assert set(await ids(sup, since=day_ago)) == {high, acked}
    assert await ids(sup, to=day_ago) == [low]
    assert await ids(sup, severity="high", status="new") == [high]
    assigned = await act(sup, acked, "assignment", {"assignee": "tech"})
    assert assigned.status_code == 201, assigned.text
    assert await ids(sup, assignee="tech") == [acked]
    assert await ids(await as_user("tech"), assignee="me") == [acked]


async def test_another_sites_reports_are_absent_and_a_guard_gets_only_their_own(
    app, world, as_user
):
    mine = await send(app, await as_user("guard"))
    theirs = await send(app, await as_user("southguard"), site="south")

    assert await ids(await as_user("super")) == [mine]
    assert await ids(await as_user("guard")) == [mine]
    assert await ids(await as_user("southguard")) == [theirs]
    assert set(await ids(await as_user("admin"))) == {mine, theirs}
    _, rows = read(await download(await as_user("admin"), site="south"))
    assert [(r["编号"], r["小区"], r["上报人"]) for r in rows] == [(theirs, "南苑", "Southguard")]


async def test_every_report_is_written_once_across_batches_even_at_the_same_instant(
    app, world, as_user, monkeypatch
):
    monkeypatch.setattr(export, "BATCH", 2)
    guard = await as_user("guard")
    sent = [await send(app, guard) for _ in range(7)]
    # Three received at the very same instant: the id orders them, across a batch's end.
    same = datetime.now(UTC) - timedelta(hours=1)
    await Report.filter(id__in=sent[:3]).update(received_at=same)

    exported = await ids(await as_user("super"))
    assert sorted(exported) == sorted(sent)
    assert exported[:4] == list(reversed(sent[3:]))


async def test_no_reports_is_the_header_alone(app, world, as_user):
    header, rows = read(await download(await as_user("super")))
    assert (header, rows) == (HEADERS_ZH, [])


async def test_a_name_that_starts_like_a_formula_is_written_as_text(app, world, as_user):
    await User.filter(id=world.guard.id).update(display_name='=HYPERLINK("x")')
    await send(app, await as_user("guard"))
    _, [row] = read(await download(await as_user("super")))
    assert row["上报人"] == '\'=HYPERLINK("x")'


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"site": "south"}, 403, None),
        ({"site": "atlantis"}, 422, "site"),
        ({"status": "lost"}, 422, "status"),
        ({"severity": "awful"}, 422, "severity"),
        ({"from": "last week"}, 422, "from"),
        ({"lang": "fr"}, 422, "lang"),
    ],
)
async def test_bad_filters_are_refused_before_any_csv(client, world, params, status, field):
    await login(client, "super")
    response = await client.get("/api/reports.csv", params=params)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if field:
        assert [f["field"] for f in error["fields"]] == [field]


async def test_the_export_needs_a_login(client, world):
    response = await client.get("/api/reports.csv")
    assert response.status_code == 401
    assert response.json()["error"]["code"]


async def test_the_export_is_in_the_openapi_document(client):
    doc = (await client.get("/api/openapi.json")).json()
    op = doc["paths"]["/api/reports.csv"]["get"]
    assert "text/csv" in op["responses"]["200"]["content"]
    assert op["security"] == [{"session": []}]
    params = {p["name"] for p in op["parameters"]}
    assert params == {
        "status",
        "severity",
        "type",
        "site",
        "assignee",
        "from",
        "to",
        "since",
        "lang",
    }
