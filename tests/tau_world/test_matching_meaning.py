"""Property tests of the simulated target's reading: paraphrases state a rule, negations and
contradictions do not (every rule of both catalogues)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tau_envs.rules import ALL_RULES, rule_by_id
from tau_envs.sim.matching import negates, stated_rules

# Paraphrases (other words, same meaning) of every rule.
PARAPHRASES: dict[str, tuple[str, ...]] = {
    "airline.verify_owner": (
        "Get the user id before anything else and only touch reservations owned by that user.",
    ),
    "airline.confirm": (
        "Always get the customer's clear approval (a yes) before you make any change to a booking.",
        "Do not make any change without explicit user confirmation (yes) first.",
        "Do not update the database until the user gives explicit confirmation (yes).",
    ),
    "airline.max_passengers": ("No booking may include more than 5 travelers.",
                               "A reservation holds no more than five passengers."),
    "airline.one_certificate": ("Pay for a booking with a single travel voucher at most, plus one card.",),
    "airline.free_bags": (
        "Bag allowance depends on tier: gold members get more free luggage; additional bags are $50.",
    ),
    "airline.basic_no_change": ("Reservations booked in basic economy are not modifiable to other flights.",
                                "Never move a basic economy booking to another flight."),
    "airline.cabin_change_ok": (
        "Any reservation may change its cabin class, even basic economy, if the flights stay.",
    ),
    "airline.ask_payment": ("When a flight or cabin changes, request which credit card or gift card covers the fare "
                            "difference.",),
    "airline.cancel_eligibility": (
        "Refund a cancellation only when the booking is under 24 hours old, the cabin is business, or the "
        "traveller is insured for the reason given.",
        "Do not cancel a reservation unless it was booked in the last 24 hours, is in business, or has insurance.",
    ),
    "airline.no_remove_bags": ("Customers may add extra luggage, but bags can't be removed afterwards.",),
    "airline.comp_eligibility": ("Give a compensation voucher only if the user asks and is a silver or gold member, "
                                 "has insurance or flies business; never to regular members otherwise.",),
    "airline.comp_amount": ("Compensation vouchers are $100 for each passenger.",),
    "retail.authenticate": ("Verify who the user is by email, or by name plus zip code, before anything else.",),
    "retail.one_user": ("Serve only the authenticated user and decline requests about another customer's order.",),
    "retail.confirm": (
        "Before you cancel, modify, return or exchange, get the user's explicit consent (yes) to proceed.",
        "Never cancel, return or exchange without explicit confirmation (yes) from the user first.",
    ),
    "retail.pending_only": ("Orders can be cancelled or modified only while they are pending.",
                            "An order that is not pending cannot be cancelled or modified."),
    "retail.cancel_reason": ("Cancel only with the reason 'no longer needed' or 'ordered by mistake'.",),
    "retail.delivered_only": ("Returns and exchanges are possible only for delivered orders.",),
    "retail.refund_method": ("Refunds must go to the original payment method or else to an existing gift card.",),
    "retail.same_product": ("Exchange or modify an item only to another option of the same product type.",),
    "retail.collect_all_items": ("Collect all items into one list first: exchange and modify can run only once per "
                                 "order.",),
    "retail.gift_card_balance": (
        "Make sure a gift card has enough balance to cover the amount before paying with it.",
    ),
}

# Negations (positive rules) and contradictions (every rule): what the prompt says is the opposite.
NEGATED: dict[str, str] = {
    "airline.verify_owner": "{neg} verify the user id; act on any reservation, whoever it belongs to.",
    "airline.confirm": "{neg} obtain explicit user confirmation (yes) before an action that updates the database.",
    "airline.free_bags": "{neg} give free checked bags to silver or gold members; every bag costs 50 dollars extra.",
    "airline.cabin_change_ok": "{neg} allow cabin changes for every reservation, including basic economy.",
    "airline.ask_payment": "{neg} ask which gift card or credit card pays the price difference of a flight change.",
    "airline.cancel_eligibility": "{neg} refuse to cancel: cancel any reservation, even if not booked in the last "
                                  "24 hours, not business and without insurance.",
    "airline.comp_amount": "{neg} give the compensation certificate per passenger: 100 dollars in total for "
                           "every reservation.",
    "retail.authenticate": "{neg} authenticate the user by email or by name and zip code before helping.",
    "retail.confirm": "{neg} obtain explicit confirmation (yes) before you cancel, modify, return or exchange.",
    "retail.refund_method": "{neg} send the refund to the original payment method or a gift card.",
    "retail.gift_card_balance": "{neg} check that a gift card has enough balance to cover the amount.",
}
NEG_CUES = ("Never", "Do not", "Don't", "You do not need to", "There is no need to", "It is unnecessary to",
            "Please never", "You should not")
CONTRADICTED: dict[str, tuple[str, ...]] = {
    "airline.max_passengers": ("Each reservation can have as many passengers as the user wants.",),
    "airline.one_certificate": ("A reservation can be paid with several travel certificates and many gift cards.",),
    "airline.basic_no_change": ("Basic economy reservations can be changed to different flights.",
                                "Basic economy reservations can be changed to different flights at no charge."),
    "airline.no_remove_bags": ("Checked bags can be added to a reservation and removed again at any time.",),
    "airline.comp_eligibility": ("Offer every user a certificate as compensation whenever a flight is late.",),
    "retail.one_user": ("Help anyone with any order, whoever placed it.",),
    "retail.pending_only": ("Orders can be cancelled or modified in any status.",),
    "retail.cancel_reason": ("Any cancellation reason is fine; pass along whatever the user says.",),
    "retail.delivered_only": ("Orders can be returned or exchanged in any status, delivered or pending.",),
    "retail.same_product": ("An item can be exchanged for any product the store sells.",),
    "retail.collect_all_items": ("Call the exchange and modify-items tools as often as you like, one item at a time.",),
}
ALL_IDS = sorted(r.id for rules in ALL_RULES.values() for r in rules)
PREFIX = st.sampled_from(("", "Important: ", "Note that ", "As a rule, ", "Remember: "))
SUFFIX = st.sampled_from(("", " Thank you.", " This matters.", " Be polite."))


def _states(rule_id: str, text: str) -> bool:
    rule = rule_by_id(rule_id)
    return rule_id in stated_rules(text, ALL_RULES[rule.domain])


def test_every_rule_has_a_paraphrase_and_an_opposite() -> None:
    assert set(PARAPHRASES) == set(ALL_IDS)
    assert set(NEGATED) | set(CONTRADICTED) == set(ALL_IDS)
    for rid in ALL_IDS:
        assert _states(rid, rule_by_id(rid).text), rid  # the catalogue sentence itself


@settings(max_examples=150, deadline=None)
@given(rid=st.sampled_from(ALL_IDS), k=st.integers(0, 2), pre=PREFIX, suf=SUFFIX)
def test_paraphrases_state_the_rule(rid: str, k: int, pre: str, suf: str) -> None:
    options = PARAPHRASES[rid]
    text = options[k % len(options)]
    text = pre + (text[0].lower() + text[1:] if pre else text) + suf
    assert _states(rid, text), text


@settings(max_examples=150, deadline=None)
@given(rid=st.sampled_from(sorted(NEGATED)), neg=st.sampled_from(NEG_CUES), pre=PREFIX, suf=SUFFIX)
def test_negations_do_not_state_the_rule(rid: str, neg: str, pre: str, suf: str) -> None:
    text = NEGATED[rid].format(neg=neg)
    text = pre + (text[0].lower() + text[1:] if pre else text) + suf
    assert not _states(rid, text), text
    assert negates(rule_by_id(rid), text) or not _states(rid, text)


@settings(max_examples=80, deadline=None)
@given(rid=st.sampled_from(sorted(CONTRADICTED)), k=st.integers(0, 1), pre=PREFIX, suf=SUFFIX)
def test_contradictions_do_not_state_the_rule(rid: str, k: int, pre: str, suf: str) -> None:
    options = CONTRADICTED[rid]
    text = pre + options[k % len(options)] + suf
    assert not _states(rid, text), text


@pytest.mark.parametrize("rid", sorted(NEGATED))
def test_a_negated_span_does_not_hide_a_real_statement(rid: str) -> None:
    """A prompt holding both the rule and its negation still states it (the sim reads the best span)."""
    rule = rule_by_id(rid)
    both = f"- {rule.text}\n- {NEGATED[rid].format(neg='Never')}"
    assert _states(rid, both)
    assert not _states(rid, NEGATED[rid].format(neg="Never"))
