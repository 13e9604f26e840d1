"""The oracle infill ceiling writes only masked spans and insertion slots, never over a correct rule."""

from __future__ import annotations

import pytest

from diffprompt.editing import EditRequest, only_masked_changed
from diffprompt.optimize.attribution import SpanScore
from diffprompt.optimize.oracle import OracleEditor, restates
from diffprompt.optimize.prepare import insert_placeholders
from tests.optimize.helpers import PROMPT, version

BAGS = "Extra checked bags cost 50 dollars each."
USER_ID = "Ask for the user id before any booking."  # close to the refunds span's neighbours, not to it


def _request(v, chosen, hints, n=4, seed=0):
    base, mask_ids, slots = insert_placeholders(v, chosen)
    return EditRequest(prompt=base, span_ids=tuple(mask_ids), insert_span_ids=tuple(slots), hints=hints, n=n, seed=seed)


def _span(v, needle):
    return next(s for s in v.spans if needle in s.text)


@pytest.mark.parametrize("explore", [0.0, 0.5])
def test_a_correct_rule_masked_in_place_is_not_overwritten_by_an_unrelated_hint(explore):
    # airline-confirm-bags-basic: a correct bullet picked by feedback similarity (no blame) was masked
    # in place next to two insertion slots, and the filler wrote a missing rule over it.
    v = version()
    refunds, bags = _span(v, "Refunds"), _span(v, "two bags")
    chosen = [SpanScore(span_id=refunds.id, score=0.2), SpanScore(span_id=bags.id, score=1.0, insert=True)]
    req = _request(v, chosen, (USER_ID, BAGS))
    cands = OracleEditor(explore=explore).propose(req)
    assert cands
    for c in cands:
        assert refunds.text in c.text, c.text
        assert bags.text in c.text
        assert only_masked_changed(req, c.text)
    assert any(f"- {BAGS}" in c.text for c in cands)  # the missing rule still lands in its slot


def test_a_garbled_or_contradicted_span_masked_in_place_gets_its_corrected_rule():
    garbled = PROMPT.replace("Basic economy flights cannot be modified.", "Bsaic emnocoy fgilhts cnanot be mdoeiifd.")
    garbled = garbled.replace("Always confirm with the user", "Never confirm with the user")
    v = version(garbled)
    basic, confirm = _span(v, "Bsaic"), _span(v, "Never confirm")
    chosen = [SpanScore(span_id=basic.id, score=1.0), SpanScore(span_id=confirm.id, score=0.9)]
    hints = ("Always confirm with the user before booking.", "Basic economy flights cannot be modified.")
    (c, *_) = OracleEditor(explore=0.0).propose(_request(v, chosen, hints, n=1))
    assert "- Basic economy flights cannot be modified." in c.text and "Bsaic" not in c.text
    assert "- Always confirm with the user before booking." in c.text and "Never confirm" not in c.text
    assert "Refunds go to the original payment method." in c.text


def test_restates():
    assert restates("Basic economy flights cannot be modified or changed after booking.",
                    "- Basic economy flights cannot be modified.")
    assert restates("Basic economy flights cannot be modified.", "Bsaic emnocoy fgilhts cnanot be mdoeiifd.")
    assert not restates(USER_ID, "- Refunds go to the original payment method.")
    assert not restates(BAGS, "- Each passenger may check at most two bags.")


def test_a_hint_stated_next_to_an_insertion_slot_in_a_paragraph_is_not_written_again():
    # retail-confirm-pending-refund: the second iteration's slot after the opening sentence merged (as
    # masked text) with the sentence the first iteration had inserted, so the hint looked unstated and
    # was written twice (a malformed duplicate)
    confirm = "Before cancelling an order, obtain explicit user confirmation (yes) to proceed."
    v = version(PROMPT.replace("You help customers of the airline.", f"You help customers of the airline. {confirm}"))
    anchor = _span(v, "You help customers")
    req = _request(v, [SpanScore(span_id=anchor.id, score=1.0, insert=True)], (confirm,), n=2)
    for c in OracleEditor(explore=0.0).propose(req):
        assert c.text.count(confirm) == 1, c.text
