"""Server messages exist in zh-CN and English, and answer in the user's language.

The catalog test reads every message out of ``server/`` the way ``pybabel
extract`` does (the command in :mod:`server.error_text`), through Babel's Python
API: a new message without Chinese fails it.
"""

from __future__ import annotations

import ast
import string
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_keywords
from babel.messages.pofile import read_po

from server import error_text
from server.errors import ApiError, Joined, Msg, invalid
from tests.conftest import CSRF, login
from tests.helpers.reports import lift_id

LANG_COOKIE = "onsite_lang"
ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = parse_keywords(error_text.KEYWORDS)


def catalog() -> dict[str, str]:
    with open(error_text.catalog_path("zh_CN"), "rb") as fh:
        po = read_po(fh, locale="zh_CN", domain="server")
    return {m.id: m.string for m in po if m.id and "fuzzy" not in m.flags}


def extract(source: Path = ROOT / "server", root: Path = ROOT) -> Iterator[tuple[str, str]]:
    """Every message id in ``source`` and where it is (``file:line``), as
    ``pybabel extract`` finds them."""
    for filename, lineno, msgid, _, _ in extract_from_dir(source, keywords=KEYWORDS):
        yield str(msgid), f"{(source / filename).relative_to(root)}:{lineno}"


def scan(source: Path = ROOT / "server", root: Path = ROOT) -> Iterator[tuple[str | None, str]]:
    """Every message argument of a KEYWORDS call in ``source``, read from the
    syntax tree: ``(message id, "file:line")``, or ``(None, where)`` for one the
    catalog cannot hold (an f-string, text put together with ``+``): a value
    belongs in a :class:`~server.errors.Msg`."""
    for path in sorted(source.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name not in KEYWORDS:
                continue
            index = (KEYWORDS[name] or (1,))[0]
            if len(node.args) < index:
                continue
            arg = node.args[index - 1]
            where = f"{path.relative_to(root)}:{node.lineno}"
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                yield arg.value, where
            elif isinstance(arg, ast.JoinedStr | ast.BinOp):
                yield None, where


def placeholders(text: str) -> set[str]:
    return {
        f"{name}!{conversion}" if conversion else name
        for _, name, _, conversion in string.Formatter().parse(text)
        if name is not None
    }


# --- the catalog ---------------------------------------------------------------------


def test_every_server_message_has_a_chinese_translation():
    translated = catalog()
    missing = sorted(
        f"{where}: {msgid!r}" for msgid, where in extract() if not translated.get(msgid, "").strip()
    )
    assert not missing, (
        "messages without zh-CN (fill them in pwa/translations/zh_CN/LC_MESSAGES/server.po"
        " after the pybabel commands in server/error_text.py):\n" + "\n".join(missing)
    )


def test_no_message_is_put_together_where_the_catalog_cannot_see_it():
    built = [where for msgid, where in scan() if msgid is None]
    assert not built, f"f-strings or + as messages (use Msg with values): {built}"


def test_pybabel_finds_every_message_the_calls_take():
    # pybabel sees no message nested deeper than one call in another's
    # arguments: such a message would go untranslated, unseen by the test above.
    unseen = {m for m, _ in scan() if m} - {m for m, _ in extract()}
    assert not unseen, f"messages pybabel does not extract (mark them apart with N_): {unseen}"


def test_every_translation_keeps_the_placeholders_of_its_message():
    wrong = {
        msgid: text
        for msgid, text in catalog().items()
        if text and placeholders(msgid) != placeholders(text)
    }
    assert not wrong


def test_the_catalog_lists_no_message_the_code_no_longer_has():
    in_code = {msgid for msgid, _ in extract()}
    assert not set(catalog()) - in_code


def test_a_new_message_without_a_translation_is_found(tmp_path):
    (tmp_path / "new.py").write_text(
        "from server.errors import ApiError, Msg\n"
        "def f(x):\n"
        '    raise ApiError(409, "conflict", Msg("A message nobody translated: {x}", x=x))\n'
        "def g(x):\n"
        '    raise ApiError(409, "conflict", f"Built in place: {x}")\n'
    )
    assert ("A message nobody translated: {x}", "new.py:3") in list(extract(tmp_path, tmp_path))
    assert (None, "new.py:5") in list(scan(tmp_path, tmp_path))
    assert "A message nobody translated: {x}" not in catalog()


# --- messages with values -------------------------------------------------------------


def test_values_are_filled_in_after_translation():
    zh = error_text.gettext_for("zh-CN")
    said = Msg("Step {index} was already ticked at {at}.", index=2, at="x")
    error = ApiError(409, "conflict", said)
    assert error.message == "Step 2 was already ticked at x."
    assert error.text(zh) == "步骤 2 已于 x 勾选。"


def test_a_value_never_becomes_part_of_the_format():
    zh = error_text.gettext_for("zh-CN")
    error = invalid("site", Msg("no site {site!r}.", site="{0.__class__}"))
    assert error.text(zh) == "site：没有小区 '{0.__class__}'。"
    assert error.detail["fields"] == [{"field": "site", "message": "no site '{0.__class__}'."}]


def test_a_message_is_its_english_text_for_code_that_only_compares_it():
    said = Msg("{host} is not a known push service.", host="evil.example")
    assert said == "evil.example is not a known push service."
    assert "not a known" in said
    joined = Joined([Msg("supervisors"), Msg("admins")], ", ")
    assert joined == "supervisors, admins"
    assert joined.render(error_text.gettext_for("zh-CN")) == "主管、管理员"


# --- answers ---------------------------------------------------------------------------


async def test_the_api_answers_in_chinese_by_default(client, world):
    await login(client, "guard")
    response = await client.get(f"/api/reports/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "没有这份上报。"}


async def test_the_api_answers_in_english_with_the_english_cookie(client, world):
    await login(client, "guard")
    client.cookies.set(LANG_COOKIE, "en")
    response = await client.get(f"/api/reports/{uuid.uuid4()}")
    assert response.json()["error"] == {"code": "not_found", "message": "No such report."}


async def test_someone_elses_report_is_refused_in_the_users_language(app, world, as_user):
    guard = await as_user("guard")
    rid = uuid.uuid4()
    now = datetime.now(UTC).isoformat()
    body = {"site": "north", "incident_type": lift_id(app), "occurred_at": now}
    assert (await guard.put(f"/api/reports/{rid}", json=body, headers=CSRF)).status_code == 201
    other = await as_user("southguard")
    refused = await other.get(f"/api/reports/{rid}")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"] == "你无权查看这份上报。"
    other.cookies.set(LANG_COOKIE, "en")
    refused = await other.get(f"/api/reports/{rid}")
    assert refused.json()["error"]["message"] == "This report is not yours to see."
    page = await other.get(f"/reports/{rid}")
    assert page.status_code == 403 and "This report is not yours to see." in page.text
    other.cookies.delete(LANG_COOKIE)
    page = await other.get(f"/reports/{rid}")
    assert "你无权查看这份上报。" in page.text and "not yours" not in page.text


async def test_an_unknown_incident_type_page_is_a_chinese_404(client, world):
    await login(client, "guard")
    page = await client.get("/report/no_such_thing")
    assert page.status_code == 404
    assert "没有这种事件类型。" in page.text and "No such" not in page.text
    client.cookies.set(LANG_COOKIE, "en")
    page = await client.get("/report/no_such_thing")
    assert "No such incident type." in page.text


async def test_validation_errors_lead_in_the_users_language(client, world):
    await login(client, "guard")
    rid = uuid.uuid4()
    response = await client.put(f"/api/reports/{rid}", json={"site": "north"}, headers=CSRF)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["message"].startswith("输入有误：")
    assert {f["field"] for f in error["fields"]} >= {"incident_type", "occurred_at"}
    client.cookies.set(LANG_COOKIE, "en")
    response = await client.put(f"/api/reports/{rid}", json={"site": "north"}, headers=CSRF)
    assert response.json()["error"]["message"].startswith("Invalid input: ")


@pytest.mark.parametrize(("lang", "expected"), [(None, "请先登录。"), ("en", "Log in first.")])
async def test_not_logged_in_is_said_in_the_users_language(client, lang, expected):
    if lang:
        client.cookies.set(LANG_COOKIE, lang)
    response = await client.get("/api/reports")
    assert response.status_code == 401
    assert response.json()["error"]["message"] == expected


async def test_the_csrf_refusal_before_the_language_is_known_is_still_translated(client):
    response = await client.put(f"/api/reports/{uuid.uuid4()}", json={})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "csrf"
    assert "X-Requested-With: onsite" in response.json()["error"]["message"]
    assert "请求头" in response.json()["error"]["message"]
    response = await client.put(f"/api/reports/{uuid.uuid4()}?lang=en", json={})
    assert response.json()["error"]["message"].startswith("State-changing calls")


async def test_a_role_refusal_names_the_roles_in_chinese(client, world):
    await login(client, "guard")
    response = await client.get("/api/users")
    assert response.status_code == 403
    assert response.json()["error"]["message"] == "只有主管可以进行此操作。"
