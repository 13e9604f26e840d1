"""Property and example tests of span segmentation, replacement and diffs (pure core)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffprompt.errors import ValidationError
from diffprompt.spans import (
    changed_span_ids,
    diff_spans,
    mask_text,
    normalize_text,
    render_diff,
    replace_spans,
    segment,
    span_id,
    split_marker,
    strip_marker,
)

POLICY = """# Airline agent policy

You are a helpful airline agent. Always verify the user id before acting. Do not guess.

## Cancellation
- Cancel only within 24 hours of booking,
  or when the airline cancelled the flight.
- Obtain an explicit yes before any write.
1. Basic economy cannot be modified.

Thank you (e.g. for flying with us).
"""

words = st.sampled_from(
    ["Refund", "the", "user", "only", "if", "booking", "cancel", "Verify", "id", "Yes", "24h", "rule"]
)
sentence = st.lists(words, min_size=1, max_size=8).map(lambda ws: " ".join(ws) + ".")
line = st.one_of(
    sentence,
    sentence.map(lambda s: "- " + s),
    sentence.map(lambda s: "# " + s),
    st.lists(sentence, min_size=1, max_size=3).map(" ".join),
    st.just(""),
)
prompts = st.lists(line, min_size=1, max_size=12).map("\n".join)


def test_segments_kinds_and_offsets() -> None:
    spans = segment(POLICY)
    kinds = [s.kind for s in spans]
    assert kinds[0] == "heading"
    assert kinds.count("bullet") == 3
    assert [s.text for s in spans if s.kind == "sentence"] == [
        "You are a helpful airline agent.",
        "Always verify the user id before acting.",
        "Do not guess.",
        "Thank you (e.g. for flying with us).",
    ]
    bullet = next(s for s in spans if s.kind == "bullet")
    assert "airline cancelled the flight." in bullet.text  # continuation line joins its bullet
    for s in spans:
        assert POLICY[s.start : s.end] == s.text


@settings(max_examples=200, deadline=None)
@given(prompts)
def test_spans_cover_all_text_without_overlap(text: str) -> None:
    spans = segment(text)
    covered = [False] * len(text)
    for s in spans:
        assert text[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text
        for i in range(s.start, s.end):
            assert not covered[i]
            covered[i] = True
    assert all(covered[i] or text[i].isspace() for i in range(len(text)))
    assert len({s.id for s in spans}) == len(spans)


@settings(max_examples=200, deadline=None)
@given(prompts, st.data())
def test_replacing_spans_leaves_other_spans_byte_identical(text: str, data: st.DataObject) -> None:
    spans = segment(text)
    if not spans:
        return
    chosen = data.draw(st.lists(st.sampled_from(spans), min_size=1, max_size=3, unique_by=lambda s: s.id))
    prefix = {"bullet": "- ", "heading": "# ", "sentence": "", "block": ""}
    new = replace_spans(
        text, spans, {s.id: f"{prefix[s.kind]}Replacement number {i}." for i, s in enumerate(chosen)}
    )
    new_ids = {s.id for s in segment(new)}
    for s in spans:
        if s not in chosen:
            assert s.text in new
            assert s.id in new_ids or any(s.text in c.text for c in chosen)


def test_stable_ids_across_versions() -> None:
    spans = segment(POLICY)
    target = spans[2]
    new = replace_spans(POLICY, spans, {target.id: "Always confirm the reservation id first."})
    old_ids = [s.id for s in spans]
    new_ids = [s.id for s in segment(new)]
    assert [i for i in old_ids if i != target.id] == [i for i in new_ids if i in old_ids]
    assert changed_span_ids(POLICY, new) == (target.id,)


def test_repeated_text_gets_distinct_ids() -> None:
    spans = segment("Be brief. Be brief. Be brief.")
    assert [s.id for s in spans] == [span_id("Be brief."), span_id("Be brief.", 1), span_id("Be brief.", 2)]


def test_delete_span_leaves_no_hole() -> None:
    spans = segment(POLICY)
    bullet = [s for s in spans if s.kind == "bullet"][1]
    new = replace_spans(POLICY, spans, {bullet.id: ""})
    assert "explicit yes" not in new
    assert "\n\n\n" not in new
    diff = diff_spans(spans, segment(new))
    assert [c.kind for c in diff if c.kind != "unchanged"] == ["removed"]


def test_unknown_span_id_is_a_clear_error() -> None:
    with pytest.raises(ValidationError, match="unknown span ids"):
        replace_spans(POLICY, segment(POLICY), {"sp_nope": "x"})


def test_diff_render_and_mask_text() -> None:
    spans = segment(POLICY)
    s = spans[3]
    new = replace_spans(POLICY, spans, {s.id: "Never guess an id."})
    rendered = render_diff(spans, segment(new))
    assert f"- [{s.id}] Do not guess." in rendered
    assert "+ [" in rendered and "Never guess an id." in rendered
    assert "[MASK]" in mask_text(POLICY, spans, [s.id])
    assert "Do not guess." not in mask_text(POLICY, spans, [s.id])


# --- the one marker / text normaliser -------------------------------------------------------------
markers = st.sampled_from(["- ", "* ", "+ ", "1. ", "12) ", "  - ", "-\t", "## ", "# ", "###### "])
words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40)


@settings(max_examples=300, deadline=None)
@given(words)
def test_split_marker_is_lossless_and_normalize_is_idempotent(text: str) -> None:
    marker, rest = split_marker(text)
    assert marker + rest == text
    assert strip_marker(text) == rest
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert once == once.strip() and "  " not in once


@settings(max_examples=300, deadline=None)
@given(markers, markers, st.text(alphabet="abcXYZ .,!", min_size=1, max_size=30), st.sampled_from([" ", "\n  ", "\t"]))
def test_normalize_ignores_marker_style_wrapping_and_case(m1: str, m2: str, body: str, gap: str) -> None:
    body = "word " + body
    wrapped = body.replace(" ", gap, 1)
    assert normalize_text(m1 + body) == normalize_text(m2 + wrapped.upper()) == normalize_text(body)


def test_marker_examples() -> None:
    assert split_marker("- Confirm before refunds.") == ("- ", "Confirm before refunds.")
    assert split_marker("  3) Ask first") == ("  3) ", "Ask first")
    assert split_marker("## Cancellation") == ("## ", "Cancellation")
    assert split_marker("## Cancellation", headings=False) == ("", "## Cancellation")
    assert split_marker("-5 dollars is the fee") == ("", "-5 dollars is the fee")  # no space: no marker
    assert split_marker("1234. Not a list") == ("", "1234. Not a list")  # at most three digits
    assert normalize_text("- 1. Never  Guess") == "never guess"
    assert normalize_text("- ") == ""
