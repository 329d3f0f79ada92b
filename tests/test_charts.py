"""The server-side SVG charts: well-formed, labelled, escaped, and drawn to scale."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from server.charts import GREY, PALETTE, Series, Tick, bar_chart, line_chart, number, top_series

SVG = "{http://www.w3.org/2000/svg}"


def months(n: int, first_year: int = 2025, first_month: int = 1) -> list[Tick]:
    ticks = []
    for i in range(n):
        index = first_year * 12 + first_month - 1 + i
        year, month = index // 12, index % 12 + 1
        ticks.append(Tick(label=f"{month}月", full=f"{year}年{month}月", group=f"{year}年"))
    return ticks


def parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def texts(svg: ET.Element, group: str) -> list[str]:
    found = svg.find(f".//{SVG}g[@class='{group}']")
    assert found is not None, group
    return [t.text or "" for t in found.iter(f"{SVG}text")]


def test_a_bar_chart_is_an_image_named_by_its_title_that_scales_to_any_width():
    svg = parse(bar_chart(months(3), [Series("电梯", [1, 2, 3], PALETTE[0])], title="每月事件"))
    assert svg.get("role") == "img" and svg.get("aria-label") == "每月事件"
    assert svg.findtext(f"{SVG}title") == "每月事件"
    assert svg.get("viewBox") == "0 0 340 210"
    assert svg.get("width") is None and svg.get("height") is None  # the page sizes it


def test_every_label_is_escaped_whatever_its_source():
    evil = '<script>alert("x")</script> & co'
    ticks = [Tick(label=evil, full=evil, group=evil)]
    for chart in (bar_chart, line_chart):
        markup = str(chart(ticks, [Series(evil, [1], PALETTE[0])], title=evil, unit=evil))
        assert "<script>" not in markup
        assert "&lt;script&gt;" in markup
        svg = parse(markup)  # still well-formed
        assert svg.get("aria-label") == evil


def test_stacked_bars_are_drawn_to_scale_with_a_tooltip_each_and_the_totals_on_top():
    series = [Series("电梯", [1, 0, 3], PALETTE[0]), Series("火警", [1, 2, 5], PALETTE[1])]
    svg = parse(bar_chart(months(3), series, title="t", unit="起"))
    rects = list(svg.iter(f"{SVG}rect"))
    assert len(rects) == 5  # a zero draws nothing
    assert [r.findtext(f"{SVG}title") for r in rects][:2] == [
        "2025年1月 · 电梯: 1 起",
        "2025年1月 · 火警: 1 起",
    ]
    heights = [float(r.get("height")) for r in rects]
    # 1 + 1, 2, 3 + 5: each bar's height follows its value.
    assert heights[0] == heights[1] and abs(heights[2] - 2 * heights[0]) < 0.2
    assert abs(heights[3] + heights[4] - 8 * heights[0]) < 0.5
    assert texts(svg, "chart-values") == ["2", "2", "8"]
    assert texts(svg, "chart-grid") == ["0", "2", "4", "6", "8"]


def test_an_empty_chart_still_has_an_axis_from_0_to_1():
    svg = parse(bar_chart(months(2), [Series("电梯", [0, 0], PALETTE[0])], title="t"))
    assert list(svg.iter(f"{SVG}rect")) == []
    assert texts(svg, "chart-grid") == ["0", "1"]


def test_with_many_months_fewer_are_named_always_this_one_and_the_year_when_it_changes():
    ticks = months(36, 2024, 12)  # Dec 2024 to Nov 2027
    svg = parse(bar_chart(ticks, [Series("x", [1] * 36, PALETTE[0])], title="t"))
    labels = texts(svg, "chart-x")
    assert [t for t in labels if t.endswith("月")][-1] == "11月"  # this month
    assert len([t for t in labels if t.endswith("月")]) <= 10
    years = [t for t in labels if t.endswith("年")]
    assert years == sorted(set(years)) and len(years) >= 3
    # No room for the totals over 36 narrow bars.
    assert svg.find(f".//{SVG}g[@class='chart-values']") is None


def test_twelve_months_are_every_other_one_named_with_the_year_under_the_first():
    labels = texts(
        parse(bar_chart(months(12), [Series("x", [1] * 12, GREY)], title="t")), "chart-x"
    )
    assert labels == ["2月", "2025年", "4月", "6月", "8月", "10月", "12月"]


def test_a_line_breaks_where_a_month_has_no_value_instead_of_falling_to_zero():
    values = [10, 20, None, 40, 30]
    svg = parse(line_chart(months(5), [Series("确认", values, PALETTE[0])], title="t", unit="分钟"))
    lines = list(svg.iter(f"{SVG}polyline"))
    assert [len(line.get("points").split()) for line in lines] == [2, 2]
    points = list(svg.iter(f"{SVG}circle"))
    assert len(points) == 4
    assert points[0].findtext(f"{SVG}title") == "2025年1月 · 确认: 10 分钟"
    # The higher the value, the higher the point.
    ys = [float(p.get("cy")) for p in points]
    assert ys[0] > ys[1] > ys[3] and ys[2] < ys[3]


def test_a_month_alone_between_gaps_is_a_point_without_a_line():
    svg = parse(line_chart(months(3), [Series("x", [None, 5, None], GREY)], title="t"))
    assert list(svg.iter(f"{SVG}polyline")) == []
    assert len(list(svg.iter(f"{SVG}circle"))) == 1


def test_beyond_five_series_the_smallest_are_summed_as_other():
    rows = [(f"type {i}", [i, 1]) for i in range(7, 0, -1)]
    series = top_series(rows, "其他")
    assert [s.label for s in series] == ["type 7", "type 6", "type 5", "type 4", "其他"]
    assert list(series[-1].values) == [3 + 2 + 1, 3]
    assert [s.color for s in series] == [*PALETTE, GREY]
    five = top_series(rows[:5], "其他")
    assert [s.label for s in five] == ["type 7", "type 6", "type 5", "type 4", "type 3"]


def test_numbers_read_as_people_write_them():
    assert number(None) == "—"
    assert number(3.0) == "3"
    assert number(12.5) == "12.5"
    assert number(2880) == "2880"
