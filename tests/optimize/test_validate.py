"""Candidate validation before screening: malformed new spans are invalid, with a reason (issue 13.2)."""

from __future__ import annotations

import pytest

from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.validate import malformed_reason, validate_candidate
from diffprompt.spans import replace_spans, segment
from diffprompt.types import Candidate
from tests.optimize.helpers import PROMPT, version

CFG = OptimizeConfig()


def _check(new_text: str, prompt: str = PROMPT, target: str = "Basic economy"):
    v = version(prompt)
    sid = next(s.id for s in v.spans if target in s.text)
    text = replace_spans(v.text, v.spans, {sid: new_text})
    cand = Candidate(text=text, parent_id=v.id, masked_span_ids=(sid,), editor="t", seed=0)
    return validate_candidate(
        cand, incumbent=v, parent=v, base=v, placeholders={}, protected=(), rejected={}, config=CFG
    )


@pytest.mark.parametrize(
    ("new", "why"),
    [
        ("- A reservation can be cancelled only if it was booked within the last", "cut off"),
        ("- Basic economy flights cannot be changed by the", "cut off after 'the'"),
        ("- Always confirm with the user before booking.", "duplicates another span"),
        ("- Basic economy flights cannot be be modified.", "repeats the word 'be'"),
        ("- Never change basic economy fares, never change basic economy fares.", "repeats"),
    ],
)
def test_malformed_new_spans_are_invalid_with_a_reason(new, why):
    out = _check(new)
    assert not out.valid and out.status == "malformed"
    assert why in out.reason


@pytest.mark.parametrize(
    "new",
    [
        "- Basic economy flights cannot be modified or changed after booking.",
        "- Ask for an explicit yes (confirm) before any change.",
        "- Bags: 50 dollars each (up to 2 extra).",
    ],
)
def test_well_formed_new_spans_pass(new):
    out = _check(new)
    assert out.valid and out.status == "valid", out.reason


def test_the_house_style_decides_about_closing_punctuation():
    bare = "\n".join(line.rstrip(".") for line in PROMPT.splitlines()) + "\n"  # no bullet ends with "."
    assert _check("- Basic economy flights can never be modified", prompt=bare).valid
    assert not _check("- Basic economy flights can never be modified", prompt=PROMPT).valid


def test_headings_and_unchanged_spans_are_not_judged():
    spans = segment("# Baggage rules\n- x.")
    assert malformed_reason(spans[0], spans[1:], {"bullet": True}) == ""
