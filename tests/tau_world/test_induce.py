"""The honest judge's window-level induction (tau_envs.induce): pure cores and one real world."""

from __future__ import annotations

from tau_envs.evidence import ActionDiff, Evidence
from tau_envs.induce import Episode, Featurizer, Instance, Suggestion, _merge, gerund, induce, permissions, prohibitions

DB = {
    "reservations": {
        "R1": {"reservation_id": "R1", "user_id": "ann", "cabin": "basic_economy", "passengers": [1, 2],
               "insurance": "no"},
        "R2": {"reservation_id": "R2", "user_id": "ann", "cabin": "economy", "passengers": [1], "insurance": "no"},
        "R3": {"reservation_id": "R3", "user_id": "bob", "cabin": "business", "passengers": [1, 2, 3],
               "insurance": "yes"},
        "R4": {"reservation_id": "R4", "user_id": "bob", "cabin": "basic_economy", "passengers": [1],
               "insurance": "yes"},
    },
    "users": {"ann": {"membership": "gold"}, "bob": {"membership": "regular"}, "cy": {"membership": "silver"}},
}


def _inst(source: str, feats: dict, numbers: dict | None = None, tid: str = "t") -> Instance:
    return Instance(source=source, tool="x", did="change the flights of a reservation", trace_id=tid, feats=feats,
                    numbers=numbers or {})


def test_featurizer_describes_small_vocabulary_fields_owner_and_list_sizes() -> None:
    fz = Featurizer(DB)
    did, feats, numbers = fz.describe("update_reservation_flights", {"reservation_id": "R1", "flights": []}, "ann")
    assert did == "change the flights of a reservation"
    assert feats["its cabin"] == "basic_economy" and feats["owner"] == "the user"
    assert feats["the user's membership"] == "gold" and numbers["passengers"] == 2
    assert "reservation id" not in " ".join(feats)  # ids are not categories
    _, other, _ = fz.describe("cancel_reservation", {"reservation_id": "R3"}, "ann")
    assert other["owner"] == "another user"


def test_a_separating_feature_becomes_a_prohibition() -> None:
    bad = [_inst("unexpected", {"its cabin": "basic_economy", "its insurance": "no"}, tid="b1")]
    good = [_inst("expected", {"its cabin": "economy", "its insurance": "no"}),
            _inst("expected", {"its cabin": "business", "its insurance": "yes"})]
    (s,) = prohibitions(bad, good)
    assert s.hint == ("Only change the flights of a reservation when its cabin is business or economy; "
                      "never when it is basic economy.")
    assert s.trace_ids == ("b1",)
    assert prohibitions([], good) == [] and prohibitions(bad, []) == []


def test_counts_take_the_loosest_bound_the_window_supports() -> None:
    bad = [_inst("unexpected", {}, {"passengers": 6})]
    good = [_inst("expected", {}, {"passengers": n}) for n in (2, 3, 1)]
    (s,) = prohibitions(bad, good)
    assert "at most 5" in s.hint and "never more than 5 passengers" in s.hint
    assert prohibitions(bad, good[:2]) == []  # two expected writes are too few to suggest a bound


def test_no_single_feature_separates_then_a_disjunction_covers_the_expected_ones() -> None:
    bad = [_inst("unexpected", {"its cabin": "economy", "its insurance": "no"})]
    good = [_inst("expected", {"its cabin": "business", "its insurance": "no"}),
            _inst("expected", {"its cabin": "economy", "its insurance": "yes"})]
    (s,) = prohibitions(bad, good)
    assert "when its cabin is business, or its insurance is yes" in s.hint


def test_refused_writes_the_agent_should_have_made_become_a_permission() -> None:
    refused = [_inst("refused", {"its cabin": "basic_economy"}, tid="r")]
    done = [_inst("expected", {"its cabin": "economy"})]
    (s,) = permissions(refused, done)
    assert s.hint.startswith("Changing the flights of a reservation is allowed even when its cabin is basic economy")
    assert permissions([], done) == []


def test_near_copies_pool_their_traces_and_gerunds_read_right() -> None:
    a = Suggestion(hint="Collect all the items into one list first when exchanging items.", because="x",
                   trace_ids=("1",))
    b = Suggestion(hint="Collect all the new items into one list first when exchanging items.", because="y",
                   trace_ids=("2", "3"))
    c = Suggestion(hint="Ask the user which payment method pays.", because="z", trace_ids=("4",))
    merged = _merge([a, b, c])
    assert [m.trace_ids for m in merged] == [("2", "3", "1"), ("4",)]
    assert gerund("cancel an order") == "cancelling an order" and gerund("book a flight") == "booking a flight"


def test_wrong_amounts_per_list_item_and_tool_errors_from_episodes() -> None:
    ev = Evidence(calls=(), actions=(ActionDiff(kind="different", name="send_certificate",
                                                args={"user_id": "ann", "amount": 100}, expected={"amount": 300},
                                                fields=(("amount", 100, 300),), index=3),), db=(), missing_outputs=())
    db = {**DB, "users": {**DB["users"], "ann": {"membership": "gold", "saved": [1, 2, 3]}}}
    ep = Episode(trace_id="t1", user_id="ann", expected=[("send_certificate", {"user_id": "ann", "amount": 300})],
                 evidence=ev)
    hints = [s.hint for s in induce([ep], db, {"amount": "certificate amount"})]
    assert any("100 per saved (300 for 3)" in h for h in hints), hints
    assert induce([], DB, {}) == []


def test_every_suggestion_in_a_degraded_world_is_the_judges_own_words() -> None:
    """On a real generated world with a rule deleted, an induced suggestion states it; none copies a rule."""
    import tempfile
    from pathlib import Path

    from diffprompt.integrations.tau import build_tau, record_traffic
    from diffprompt.integrations.tau.scenario import Scenario
    from diffprompt.store.memory import MemoryStore
    from tau_envs.judge import TauJudge
    from tau_envs.rules import ALL_RULES, rule_by_id
    from tau_envs.sim.matching import statement_score

    sc = Scenario(name="t-basic", domain="airline", delete=("airline.basic_no_change",), world_tasks=40)
    setup = build_tau(home=Path(tempfile.mkdtemp()), scenario=sc)
    dom = setup.domain("test")
    env = setup.replay(dom)
    store = MemoryStore()
    v0 = store.create_slot("airline", setup.seed_prompt(dom))
    record_traffic(store, v0, env, env.all_cases(), concurrency=2)
    sugs = TauJudge(dom).observe(store.window("airline"))
    rule = rule_by_id("airline.basic_no_change")
    assert max(statement_score(rule, s.hint) for s in sugs) >= 0.8
    catalogue = [r.text.lower().rstrip(".") for rules in ALL_RULES.values() for r in rules]
    assert not any(c in s.hint.lower() for s in sugs for c in catalogue)


def test_a_separating_move_of_the_write_beats_a_separating_record_category() -> None:
    """Bag removals vs additions: the write's own move explains them; the cabin split is a coincidence."""
    from tau_envs.induce import _separators

    def inst(move: str, cabin: str) -> Instance:
        return Instance(source="x", tool="update_reservation_baggages", did="change the checked bags of a reservation",
                        trace_id="t", feats={"its cabin": cabin, "total baggages moved": move}, numbers={})

    bad = [inst("removed", "basic economy"), inst("removed", "basic economy")]
    good = [inst("added", "business"), inst("added", "business"), inst("added", "business")]
    assert [k for k, _, _ in _separators(bad, good)] == ["total baggages moved", "its cabin"]
    hints = [s.hint for s in prohibitions(bad, good)]
    assert hints[0] == ("Only change the checked bags of a reservation when total baggages moved is added; "
                        "never when it is removed.")


def test_the_age_of_a_time_stamped_record_against_the_tools_clock() -> None:
    from tau_envs.induce import age

    db = {"reservations": {
        "N": {"reservation_id": "N", "user_id": "ann", "created_at": "2024-05-15T01:00:00"},
        "W": {"reservation_id": "W", "user_id": "ann", "created_at": "2024-05-10T15:00:00"},
        "O": {"reservation_id": "O", "user_id": "ann", "created_at": "2024-04-01T00:00:00"},
    }, "users": {"ann": {}}}
    fz = Featurizer(db, "2024-05-15T15:00:00")
    ages = {r: fz.describe("cancel_reservation", {"reservation_id": r}, "ann")[1]["it was created {}"] for r in "NWO"}
    assert ages == {"N": "less than 24 hours ago", "W": "1 to 7 days ago", "O": "more than 7 days ago"}
    assert "it was created {}" not in Featurizer(db).describe("cancel_reservation", {"reservation_id": "N"}, "ann")[1]
    now = fz.now
    assert now is not None and age("2024-05-16T00:00:00", now) is None and age("soon", now) is None

    bad = [_inst("unexpected", {"it was created {}": "1 to 7 days ago", "its cabin": "economy"}),
           _inst("unexpected", {"it was created {}": "more than 7 days ago", "its cabin": "economy"})]
    good = [_inst("expected", {"it was created {}": "less than 24 hours ago", "its cabin": "economy"}),
            _inst("expected", {"it was created {}": "1 to 7 days ago", "its cabin": "business"})]
    (s,) = prohibitions(bad, good)  # no single feature separates; the disjunction reads as English
    assert "when it was created less than 24 hours ago, or its cabin is business;" in s.hint
    (p,) = prohibitions(bad[:1], good[:1])
    assert p.hint.startswith("Only change the flights of a reservation when it was created less than 24 hours ago; "
                             "never when it was created 1 to 7 days ago.")


def test_a_kind_used_more_often_than_any_expected_write_uses_it_is_bounded() -> None:
    from tau_envs.induce import kinds

    pay = lambda *ids: [{"payment_id": i, "amount": 10} for i in ids]  # noqa: E731
    assert kinds(pay("certificate_1", "gift_card_2", "gift_card_3")) == {"certificate": 1, "gift card": 2}
    assert kinds([{"amount": 1}, "x"]) == {} and kinds("certificate_1") == {}
    wrong = pay("certificate_1", "certificate_2")
    right = pay("certificate_1", "credit_card_3")
    ev = Evidence(calls=(), actions=(ActionDiff(kind="different", name="book_reservation",
                                                args={"user_id": "ann", "payment_methods": wrong},
                                                expected={"user_id": "ann", "payment_methods": right},
                                                fields=(("payment_methods", wrong, right),), index=2),),
                  db=(), missing_outputs=())
    eps = [Episode(trace_id="t1", user_id="ann", expected=[("book_reservation", {"payment_methods": right})],
                   evidence=ev),
           Episode(trace_id="t2", user_id="ann", evidence=Evidence(calls=(), actions=(), db=(), missing_outputs=()),
                   expected=[("book_reservation", {"payment_methods": pay("gift_card_4", "gift_card_5")})])]
    hints = [s.hint for s in induce(eps, DB, {"payment_methods": "payments"})]
    assert hints == ["When booking a new reservation, the payments may hold at most 1 certificate; "
                     "never more than 1 certificate."]


def test_a_write_on_a_user_is_described_by_the_record_the_conversation_looked_up() -> None:
    fz = Featurizer(DB)
    looked = [{"reservation_id": "R3", "cabin": "business"}, {"reservation_id": "R1"}]  # most recent first
    _, feats, _ = fz.describe("send_certificate", {"user_id": "bob", "amount": 100}, "bob", looked)
    assert feats["the reservation's cabin"] == "business" and feats["the reservation's insurance"] == "yes"
    assert feats["its membership"] == "regular"
    _, own, _ = fz.describe("cancel_reservation", {"reservation_id": "R1"}, "ann", looked)
    assert not any(k.startswith("the reservation's") for k in own)  # a write that names its record
    bad = [_inst("unexpected", {"its membership": "regular", "the reservation's cabin": "economy"})]
    good = [_inst("expected", {"its membership": "gold", "the reservation's cabin": "business"})]
    hints = [s.hint for s in prohibitions(bad, good)]
    assert "its membership is gold" in hints[0] and "the reservation's cabin is business" in hints[1]


def test_a_write_other_than_the_one_the_user_asked_for_counts_against_the_one_asked_for() -> None:
    from tau_envs.induce import asked_instead

    assert asked_instead("I'd like to return item 1 from order #W2.", "cancel_pending_order") == (
        "return_delivered_order_items")
    assert asked_instead("Please cancel order #W2, I don't need it.", "return_delivered_order_items") == (
        "cancel_pending_order")
    assert asked_instead("Please cancel order #W2.", "cancel_pending_order") == ""  # what was asked
    assert asked_instead("Cancel or return order #W2.", "modify_pending_order_items") == ""  # two verbs
    assert asked_instead("Please change the address of #W2.", "cancel_pending_order") == ""  # "change": two tools
    assert asked_instead("I'd like to return it.", "send_certificate") == ""  # another kind of record

    db = {"orders": {o: {"order_id": o, "user_id": "ann", "status": st} for o, st in
                     (("P", "pending"), ("D1", "delivered"), ("D2", "delivered"), ("Q", "processed"))},
          "users": {"ann": {}}}
    none = Evidence(calls=(), actions=(), db=(), missing_outputs=())
    wrong = Evidence(calls=(), actions=(ActionDiff(kind="unexpected", name="cancel_pending_order",
                                                   args={"order_id": "P", "reason": "no longer needed"}, index=2),),
                     db=(), missing_outputs=())
    eps = [Episode(trace_id="bad", user_id="ann", expected=[], evidence=wrong,
                   request="Hi, I'd like to return item 1 from order #P."),
           *(Episode(trace_id=o, user_id="ann", expected=[("return_delivered_order_items", {"order_id": o})],
                     evidence=none, request=f"I'd like to return item 1 from order #{o}.") for o in ("D1", "D2")),
           Episode(trace_id="c", user_id="ann", expected=[("cancel_pending_order", {"order_id": "Q"})], evidence=none)]
    hints = [s.hint for s in induce(eps, db, {})]
    assert ("Only return items of an order for a refund when its status is delivered; never when it is pending."
            in hints), hints


def test_the_ownership_instruction_names_the_tools_that_found_the_users_id() -> None:
    from tau_envs.evidence import Call

    found = Call(index=1, name="find_user_id_by_email", args={"email": "a@x"}, observation="ann")
    other = Call(index=3, name="get_order_details", args={"order_id": "R3"}, observation="{}")
    ev = Evidence(calls=(found, other), db=(), missing_outputs=(),
                  actions=(ActionDiff(kind="unexpected", name="cancel_reservation", args={"reservation_id": "R3"},
                                      index=4),))
    eps = [Episode(trace_id="t", user_id="ann", expected=[("cancel_reservation", {"reservation_id": "R1"})],
                   evidence=ev)]
    (hint,) = [s.hint for s in induce(eps, DB, {}) if "belongs" in s.hint]
    assert "identified by their verified user id (found with find user id by email);" in hint


def test_the_tool_schemas_allowed_values_are_listed_for_a_wrong_value() -> None:
    from tau_envs.evidence import Call
    from tau_envs.induce import schema_enums

    info = [{"type": "function", "function": {"name": "cancel_pending_order", "parameters": {"properties": {
        "order_id": {"type": "string"},
        "reason": {"type": "string", "enum": ["no longer needed", "ordered by mistake"]},
    }}}}, {"name": "plain", "parameters": {"properties": {"mode": {"enum": ["a", "b"]}, "n": {"enum": [1, 2]}}}}]
    enums = schema_enums(info)
    assert enums == {"cancel_pending_order": {"reason": {"no longer needed", "ordered by mistake"}},
                     "plain": {"mode": {"a", "b"}}}
    refused = Call(index=2, name="cancel_pending_order", args={"order_id": "P", "reason": "mistake"},
                   observation="Error: invalid reason")
    ev = Evidence(calls=(refused,), db=(), missing_outputs=(),
                  actions=(ActionDiff(kind="missing", name="cancel_pending_order",
                                      args={"order_id": "P", "reason": "no longer needed"}),))
    ep = Episode(trace_id="t", user_id="ann", evidence=ev,
                 expected=[("cancel_pending_order", {"order_id": "P", "reason": "no longer needed"})])
    with_schema = [s.hint for s in induce([ep], DB, {"reason": "cancellation reason"}, enums=enums)]
    assert ("When cancelling an order, the cancellation reason must be one of: no longer needed or ordered by "
            "mistake; ask the user which applies.") in with_schema
    window_only = [s.hint for s in induce([ep], DB, {"reason": "cancellation reason"})]
    assert any("must be one of: no longer needed;" in h for h in window_only)


def test_two_mistakes_of_one_kind_are_explained_one_by_one() -> None:
    """Unexpected cancels of another user's reservation and of old ones: no feature explains both."""
    old = "it was created {}"
    bad = [_inst("unexpected", {"owner": "another user", old: "1 to 7 days ago", "its cabin": "economy"}, tid="o1"),
           _inst("unexpected", {"owner": "the user", old: "more than 7 days ago", "its cabin": "economy"}, tid="a1"),
           _inst("unexpected", {"owner": "the user", old: "1 to 7 days ago", "its cabin": "basic_economy"}, tid="a2")]
    good = [_inst("expected", {"owner": "the user", old: "less than 24 hours ago", "its cabin": "economy"}),
            _inst("expected", {"owner": "the user", old: "1 to 7 days ago", "its cabin": "business"})]
    hints = {s.hint: s.trace_ids for s in prohibitions(bad, good)}
    owner = next(h for h in hints if "belongs to the user you are helping" in h)
    assert hints[owner] == ("o1",)
    rest = next(h for h in hints if "less than 24 hours ago" in h)
    assert "its cabin is business" in rest and hints[rest] == ("a1", "a2")
    lone = [_inst("unexpected", {"its cabin": "basic_economy"}), _inst("unexpected", {"its cabin": "economy"})]
    assert not any("basic economy" in s.hint for s in prohibitions(lone, good))  # one write's odd value is chance
