"""The playbook API and the guide pages."""

from __future__ import annotations

import html as html_lib
import re

import pytest


def lift(app):
    return next(i for i in app.state.playbooks.incidents() if i.title.zh == "电梯困人事件")


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))


@pytest.mark.parametrize(
    ("lang", "parts"),
    [("zh-CN", ["处理", "分析", "改善"]), ("en", ["Handling", "Analysis", "Improvement"])],
)
async def test_the_lift_guide_renders_its_three_parts(app, client, lang, parts):
    incident = lift(app)
    response = await client.get(f"/playbooks/{incident.id}?lang={lang}")
    assert response.status_code == 200
    html = response.text
    assert f'<html lang="{lang}">' in html
    for part_id, heading in zip(("handling", "analysis", "improvement"), parts, strict=True):
        section = re.search(
            rf'<section class="part part-{part_id}" id="{part_id}">(.*?)</section>', html, re.S
        )
        assert section, part_id
        assert f"<h2>{heading}</h2>" in section.group(1)
    page = text_of(html)
    assert incident.title.get(lang) in page
    for item in (*incident.handling, *incident.analysis, *incident.improvement):
        assert text_of(item.text.get(lang)).strip() in page


async def test_the_index_lists_every_incident_by_section(app, client):
    page = (await client.get("/playbooks")).text
    for category in app.state.playbooks.categories:
        assert category.title.zh in page
        for incident in category.incidents:
            assert f'href="/playbooks/{incident.id}"' in page


async def test_a_call_step_carries_a_call_button_and_the_reply_script_shows(app, client):
    power = app.state.playbooks.incident("power-cut-generator")
    page = (await client.get(f"/playbooks/{power.id}")).text
    assert "市政停电,已联系供电局,正在抢修中。" in page
    pool = next(i for i in app.state.playbooks.incidents() if i.title.zh == "泳池类突发事件处理")
    assert 'href="tel:120"' in (await client.get(f"/playbooks/{pool.id}")).text


async def test_an_unknown_guide_is_404(client):
    assert (await client.get("/playbooks/no-such-thing")).status_code == 404


async def test_the_api_gives_every_playbook_in_the_language_asked(app, client):
    zh = (await client.get("/api/playbooks?lang=zh-CN")).json()
    en = (await client.get("/api/playbooks?lang=en")).json()
    assert zh["version"] == en["version"] == app.state.playbooks.version
    assert zh["lang"] == "zh-CN" and en["lang"] == "en"
    count = sum(len(c["incidents"]) for c in zh["categories"])
    assert count == len(app.state.playbooks.incidents())
    lift_en = next(i for c in en["categories"] for i in c["incidents"] if i["id"] == lift(app).id)
    assert lift_en["title"] == lift(app).title.en
    assert lift_en["handling"][0]["text"] == lift(app).handling[0].text.en


async def test_the_api_answers_304_to_a_fresh_etag(client):
    first = await client.get("/api/playbooks")
    again = await client.get("/api/playbooks", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


async def test_an_unsupported_language_is_422(client):
    response = await client.get("/api/playbooks?lang=fr")
    assert response.status_code == 422
    assert response.json()["error"]["message"]
