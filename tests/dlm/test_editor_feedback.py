"""The DLM editor's conditioning: feedback lines about different findings first."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from diffprompt.dlm.editor import distinct_lines


def test_same_finding_about_other_actions_does_not_crowd_out_the_rest():
    lines = [
        "The agent made changes without asking the user to confirm (yes) first: it booked a new reservation.",
        "The agent made changes without asking the user to confirm (yes) first: it cancelled reservation X1.",
        "The agent made changes without asking the user to confirm (yes) first: it changed the bags of X2.",
        "paid (non-free) checked bags: 1 where 0 was expected; 1 of them should have been free of charge",
        "user comment: why was I charged for my bag?",
    ]
    out = distinct_lines(lines, 3)
    assert out == [lines[0], lines[3], lines[4]]
    assert distinct_lines(lines, 5)[3:] == [lines[1], lines[2]]  # the skipped fill what is left, in order
    assert distinct_lines(lines[:2], 4) == lines[:2]
    assert distinct_lines([], 4) == []
