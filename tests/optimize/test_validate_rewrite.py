"""A rewrite that throws most of the prompt away, or echoes the editor's instruction, is invalid."""

from __future__ import annotations

import pytest

from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.validate import validate_candidate
from diffprompt.types import Candidate
from tests.optimize.helpers import PROMPT, version


def _check(text: str):
    inc = version(PROMPT)
    cand = Candidate(text=text, parent_id=inc.id, masked_span_ids=(), editor="rewrite", seed=0)
    return validate_candidate(
        cand, incumbent=inc, parent=inc, base=inc, placeholders={}, protected=(), rejected={}, config=OptimizeConfig()
    )


def test_ninety_percent_shrink_is_invalid():
    res = _check("# Airline agent policy\nBe nice.")
    assert not res.valid and "shrinks the prompt" in res.reason


@pytest.mark.parametrize(
    "echo",
    [
        "Rewrite the system prompt below following the critique.",
        "Answer with the new system prompt only, no commentary.",
        "- Fill [MASK_1] with a rule.",
    ],
)
def test_echoed_instruction_is_invalid(echo):
    res = _check(PROMPT + echo + "\n")
    assert not res.valid and "echoes the editor's instruction" in res.reason


def test_a_real_edit_stays_valid():
    res = _check(PROMPT.replace("at most two bags", "at most two bags; extra bags cost 50 dollars"))
    assert res.valid, res.reason
