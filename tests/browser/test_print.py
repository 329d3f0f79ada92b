"""The printable incident report in Chromium: a report taken from new to
closed through the API, printed to an A4 PDF the way "save as PDF" does,
its pages turned into pictures for a person to look at (ONSITE_SCREENSHOTS)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import uuid
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.helpers.browser import PHONE_OPTIONS, log_in, new_report, screenshot
from tests.helpers.live import add_user, api_session

# What pages draw and do online: no service worker (tests/browser/conftest.py).
pytestmark = [pytest.mark.browser, pytest.mark.pages_only]

DESK = {"viewport": {"width": 1280, "height": 900}, "locale": "zh-CN", "bypass_csp": True}
# A4 in PostScript points, as Chromium writes it (to a hundredth of an inch).
A4_POINTS = (595.28, 841.89)
GAP_NOTE = "夜班只有一名保安在岗，到场用了 9 分钟"
ACTION = "每季度与电梯维保单位联合演练困人救援"


@pytest.fixture
def staff(live_server) -> dict[str, str]:
    """A supervisor and a technician of site north; their passwords."""
    return {
        "boss": add_user(live_server, "boss", "supervisor", "陈主管"),
        "tech": add_user(live_server, "tech", "technician", "李工"),
    }


def jpeg(colour: tuple[int, int, int], size=(1200, 900)) -> bytes:
    image = Image.new("RGB", size, colour)
    image.paste(Image.effect_noise((size[0] // 2, size[1] // 2), 60).convert("RGB"), (300, 200))
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def ok(response: httpx.Response) -> httpx.Response:
    assert response.is_success, f"{response.request.method} {response.request.url}: {response.text}"
    return response


def closed_incident(live_server, staff) -> str:
    """A lift entrapment with a photo, acknowledged, answered, assigned,
    repaired with before and after photos, reviewed and closed."""
    rid = new_report(live_server, photo=True)
    base = f"/api/reports/{rid}"
    with (
        api_session(live_server, "boss", staff["boss"]) as boss,
        api_session(live_server, "tech", staff["tech"]) as tech,
    ):
        ok(boss.put(f"{base}/acknowledgement", json={}))
        ok(boss.put(f"{base}/reply", json={"text": "维保人员已在赶来的路上，请保持冷静。"}))
        ok(boss.put(f"{base}/assignment", json={"assignee": "tech"}))
        for kind, colour in [("repair_before", (90, 90, 90)), ("repair_after", (40, 140, 60))]:
            ok(
                tech.put(
                    f"{base}/photos/{uuid.uuid4()}?kind={kind}",
                    content=jpeg(colour, (900, 1200)),
                    headers={"Content-Type": "image/jpeg"},
                )
            )
        ok(tech.put(f"{base}/repair", json={"note": "更换了层门门锁"}))
        closing = {"note": "已复查，运行正常"}
        refused = boss.put(f"{base}/closure", json=closing)
        if refused.status_code == 409 and refused.json()["error"]["code"] == "review_incomplete":
            review(boss, tech, base, refused.json()["error"]["missing"]["analysis"])
            ok(boss.put(f"{base}/closure", json=closing))
        else:
            ok(refused)
    return rid


def review(boss: httpx.Client, tech: httpx.Client, base: str, items: list[int]) -> None:
    """分析: every item answered, the first a gap; 改善: one action, done and re-checked."""
    verdicts = ["gap", "ok", "na"]
    for i in items:
        verdict = verdicts[i % 3]
        note = GAP_NOTE if verdict == "gap" else ""
        ok(boss.put(f"{base}/analysis/{i}", json={"verdict": verdict, "note": note}))
    action = f"{base}/actions/{uuid.uuid4()}"
    due = (date.today() + timedelta(days=30)).isoformat()
    ok(boss.put(action, json={"description": ACTION, "owner": "tech", "due": due, "item": 0}))
    ok(tech.put(f"{action}/done", json={"note": "已与维保单位签订演练计划"}))
    ok(boss.put(f"{action}/check", json={"passed": True, "note": "计划已核对"}))


def pdf_pages(data: bytes) -> list[tuple[float, float]]:
    """Each page's MediaBox size in points, read from the PDF's own bytes."""
    assert data.startswith(b"%PDF-")
    boxes = re.findall(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", data)
    pages = len(re.findall(rb"/Type\s*/Page(?![a-z])", data))
    assert pages and len(boxes) >= 1, "no pages found"
    # Chromium writes a MediaBox on each page.
    assert len(boxes) == pages, (len(boxes), pages)
    return [(float(w), float(h)) for w, h in boxes]


def to_pngs(pdf: Path, folder: Path) -> list[Path]:
    """Every page as a PNG (poppler's pdftoppm), for a person to look at."""
    if shutil.which("pdftoppm") is None:
        return []
    prefix = folder / pdf.stem
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(pdf), str(prefix)], check=True)
    return sorted(folder.glob(f"{pdf.stem}-*.png"))


def test_a_closed_incident_prints_as_clean_a4_pages(live_server, browser, staff, tmp_path):
    rid = closed_incident(live_server, staff)
    context = browser.new_context(**DESK)
    try:
        page = context.new_page()
        log_in(page, live_server.url, username="boss", password=staff["boss"])
        page.goto(f"{live_server.url}/reports/{rid}/print")
        # Nothing of the app's shell: no tab bar, no top bar, no service worker script.
        assert page.locator(".tabbar, .topbar, script[src*='app.js']").count() == 0
        button = page.get_by_role("button", name="打印")
        assert button.is_visible()
        # Every photo has arrived before anything is printed.
        page.wait_for_function("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator("#photos img").count() == 3
        screenshot(page, "print-screen-zh-CN")

        text = page.locator("main").inner_text()
        for heading in ("基本信息", "处理", "照片", "分析", "改善", "经过"):
            assert heading in page.locator("h2").all_inner_texts() or heading in text, heading
        assert "电梯困人事件" in text and "北苑" in text and str(rid) in text
        assert "王师傅" in text and "3栋2单元 电梯" in text and "GPS 22.54310, 114.05790" in text
        assert "✓" in text and "未完成" in text  # the first step ticked, the rest not
        assert "维保人员已在赶来的路上" in text
        assert "现场 1" in text and "维修前 1" in text and "维修后 1" in text
        assert "已关闭" in text and "已复查，运行正常" in text
        if ACTION in text:  # the review exists: 分析 answered, 改善 re-checked
            assert "存在不足" in text and GAP_NOTE in text
            assert "复查通过" in text and "计划已核对" in text and "陈主管" in text
        else:
            assert "未分析" in text and "没有改善措施" in text

        page.emulate_media(media="print")
        assert not button.is_visible()  # the button is not printed
        pdf = tmp_path / f"incident-{rid[:8]}.pdf"
        page.pdf(path=str(pdf), format="A4")
    finally:
        context.close()

    # Opened on a phone first: readable there too, nothing wider than the screen.
    phone = browser.new_context(**PHONE_OPTIONS)
    try:
        page = phone.new_page()
        log_in(page, live_server.url, username="boss", password=staff["boss"])
        page.goto(f"{live_server.url}/reports/{rid}/print")
        page.wait_for_function("[...document.images].every(i => i.complete)")
        assert (
            page.evaluate("document.documentElement.scrollWidth")
            <= PHONE_OPTIONS["viewport"]["width"]
        )
        screenshot(page, "print-phone-zh-CN")
    finally:
        phone.close()

    sizes = pdf_pages(pdf.read_bytes())
    assert 1 <= len(sizes) <= 6, len(sizes)
    for width, height in sizes:
        assert width == pytest.approx(A4_POINTS[0], abs=1)
        assert height == pytest.approx(A4_POINTS[1], abs=1)
    folder = Path(os.environ.get("ONSITE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    pngs = to_pngs(pdf, folder)
    if pngs:
        assert len(pngs) == len(sizes)
        with Image.open(pngs[0]) as first:
            assert first.width < first.height  # portrait


def test_the_print_page_is_for_those_who_may_see_the_report(live_server, staff):
    rid = new_report(live_server)
    with httpx.Client(base_url=live_server.url) as anyone:
        response = anyone.get(f"/reports/{rid}/print")
        assert response.status_code == 303
        assert response.headers["location"] == f"/login?next=/reports/{rid}/print"
    other = add_user(live_server, "guard2", "guard", "赵师傅")
    with api_session(live_server, "guard2", other) as guard2:
        refused = guard2.get(f"/reports/{rid}/print")
        assert refused.status_code == 403 and "没有权限查看" in refused.text
        assert guard2.get(f"/reports/{uuid.uuid4()}/print").status_code == 404
        assert guard2.get("/reports/not-a-uuid/print").status_code == 404
    with api_session(live_server, "boss", staff["boss"]) as boss:
        page = boss.get(f"/reports/{rid}/print")
        assert page.status_code == 200
        assert "未分析" in page.text or "—" in page.text
        english = boss.get(f"/reports/{rid}/print?lang=en")
        assert '<html lang="en">' in english.text
