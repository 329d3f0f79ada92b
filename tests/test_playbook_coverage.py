"""Every content sentence of the source is in exactly one incident: none dropped, none doubled.

The test reads 《各类突发事件处理、回复要点》 itself, drops its headings and the
bare 处理/分析/改善 labels, joins the lines it wrapped mid-sentence, splits the
text into sentences at 。and ;, and compares without punctuation or spaces
(the playbooks split sentences into steps and may drop punctuation at the
splits). A sentence that occurs n times in the source must occur n times in
the playbooks, and the playbooks' Chinese must be exactly as long as the
source's content: so nothing is added either.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections import Counter
from pathlib import Path

from server.playbooks import load

SOURCE = Path(
    os.environ.get("ONSITE_PLAYBOOK_SOURCE")
    or Path(__file__).resolve().parents[1] / "playbooks" / "source" / "key-points.zh-CN.txt"
)

TITLE = "各类突发事件处理、回复要点"
LABELS = {"处理", "分析", "改善"}
SECTION = re.compile(r"^[一二三四五六七八九十]+、(.+)$")
INCIDENT = re.compile(r"^(\d+)、(.+)$")

# The one reviewed exception: a paragraph cut and glued to another. The source
# sentence on the left is, in the playbooks, the sentences on the right: the
# end of the pool-drowning 处理 (呼叫120) and the start of its 分析 (救生员…).
REPAIRED = {
    "呼叫1生员的上岗证是否齐全": ("呼叫120", "救生员的上岗证是否齐全"),
}


def normalise(text: str) -> str:
    """Only letters, digits and CJK: punctuation and spaces do not count."""
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def source_paragraphs() -> list[str]:
    paragraphs: list[str] = []
    open_paragraph = ""
    for line in SOURCE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if (
            not line
            or line == TITLE
            or line in LABELS
            or SECTION.match(line)
            or INCIDENT.match(line)
        ):
            continue
        open_paragraph += line
        # A line that does not end a sentence was wrapped: the next continues it.
        if open_paragraph.endswith(("。", ";", "；")):
            paragraphs.append(open_paragraph)
            open_paragraph = ""
    if open_paragraph:
        paragraphs.append(open_paragraph)
    return paragraphs


def source_sentences() -> list[str]:
    sentences = []
    for paragraph in source_paragraphs():
        for sentence in re.split(r"(?<=[。;；])", paragraph):
            norm = normalise(sentence)
            if not norm:
                continue
            cut = next((c for c in REPAIRED if norm.startswith(c)), None)
            if cut:
                head, tail_start = REPAIRED[cut]
                sentences += [head, tail_start + norm[len(cut) :]]
            else:
                sentences.append(norm)
    return sentences


def playbook_texts() -> dict[tuple[str, str], str]:
    """The normalised Chinese of each incident's part, from the source only."""
    texts = {}
    for incident in load().incidents():
        if not incident.from_source:
            continue
        for part in ("handling", "analysis", "improvement"):
            items = getattr(incident, part)
            texts[(incident.id, part)] = "".join(normalise(i.text.zh) for i in items)
    return texts


def decompose(text: str, available: Counter) -> list[str] | None:
    """``text`` as a run of whole source sentences taken from ``available``, or None."""
    if not text:
        return []
    for sentence in sorted((s for s in available if available[s] > 0), key=len, reverse=True):
        if text.startswith(sentence):
            available[sentence] -= 1
            rest = decompose(text[len(sentence) :], available)
            if rest is not None:
                return [sentence, *rest]
            available[sentence] += 1
    return None


def test_every_source_sentence_is_in_exactly_one_incident_part():
    available = Counter(source_sentences())
    unexplained = []
    for (incident, part), text in playbook_texts().items():
        if decompose(text, available) is None:
            unexplained.append(f"{incident}.{part} is not made of source sentences: {text}")
    assert not unexplained, "\n".join(unexplained)
    left = [s for s, n in available.items() for _ in range(n)]
    assert not left, "source sentences in no incident:\n" + "\n".join(left)


def test_the_playbooks_add_nothing_to_the_source():
    source_length = sum(len(s) for s in source_sentences())
    playbook_length = sum(len(t) for t in playbook_texts().values())
    assert playbook_length == source_length


def test_the_cut_paragraph_is_repaired_as_reviewed():
    pool = next(i for i in load().incidents() if i.title.zh == "泳池类突发事件处理")
    assert pool.handling[-1].text.zh.startswith("呼叫120")
    assert pool.handling[-1].action == "call:120"
    assert pool.analysis[0].text.zh.startswith("救生员的上岗证是否齐全")
    assert "repaired" in (pool.note or "").lower()


def headings() -> tuple[list[tuple[str, str]], list[tuple[int, str]]]:
    sections, incidents = [], []
    for line in SOURCE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if (m := SECTION.match(line)) and line != TITLE:
            sections.append((line.split("、")[0], m.group(1)))
        elif m := INCIDENT.match(line):
            incidents.append((int(m.group(1)), m.group(2)))
    return sections, incidents


def test_every_numbered_incident_of_the_source_exists_under_its_number():
    library = load()
    _sections, numbered = headings()
    found = {(i.source_number, i.title.zh) for i in library.incidents() if i.source_number}
    assert set(numbered) == found
    assert len(numbered) == len(found) == 17


def test_every_section_heading_of_the_source_is_a_category_with_its_number():
    library = load()
    sections, _ = headings()
    categories = {(c.number, c.title.zh) for c in library.categories if not c.title_inferred}
    assert set(sections) <= categories
    for category in library.categories:
        if category.title_inferred:
            assert category.note, f"{category.id} is inferred without a note"


def test_the_playbooks_have_as_many_parts_as_the_source_has_labels():
    labels = Counter(
        line.strip()
        for line in SOURCE.read_text(encoding="utf-8").splitlines()
        if line.strip() in LABELS
    )
    incidents = [i for i in load().incidents() if i.from_source]
    assert sum(1 for i in incidents if i.handling) == labels["处理"]
    # The cut glued one 分析 onto a 处理 without its label: one more than the labels.
    assert sum(1 for i in incidents if i.analysis) == labels["分析"] + 1
    assert sum(1 for i in incidents if i.improvement) == labels["改善"]
