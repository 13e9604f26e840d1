"""Generated airline world: determinism, schema, gold replay, rule matching, and the key property."""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest

from diffprompt.errors import ConfigError
from tau_envs.domain import load_domain
from tau_envs.generate import degrade_policy, generate_world
from tau_envs.metrics import pass_hat_k
from tau_envs.rules import AIRLINE_RULES
from tau_envs.sim import SimulatedPolicy, explain_failure, rule_coverage, stated_rules
from tests.tau_world.loop import run_episode

DELETED = ["airline.confirm", "airline.cancel_eligibility", "airline.free_bags", "airline.basic_no_change",
           "airline.comp_eligibility"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world("airline", seed=7, n_users=60, n_tasks=28, out_dir=tmp_path_factory.mktemp("aw"))


def test_same_seed_same_bytes(world: Path, tmp_path: Path) -> None:
    again = generate_world("airline", seed=7, n_users=60, n_tasks=28, out_dir=tmp_path / "b")
    names = sorted(p.name for p in world.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    _, mismatch, errors = filecmp.cmpfiles(world, again, names, shallow=False)
    assert mismatch == [] and errors == []
    other = generate_world("airline", seed=8, n_users=60, n_tasks=28, out_dir=tmp_path / "c")
    assert (other / "users.json").read_bytes() != (world / "users.json").read_bytes()


def test_loads_and_gold_replays(world: Path) -> None:
    for split, n in (("test", 28), ("train", 28), ("dev", 5)):
        dom = load_domain("airline", world, split=split)
        assert len(dom.tasks) == n
        for task in dom.tasks:
            assert task.intent and task.family
            _, observations = dom.replay(task.actions)
            assert not any(o.startswith("Error") for o in observations), task.intent
    kinds = {t.intent["task_kind"] for t in load_domain("airline", world).tasks if t.intent}
    assert {"book", "cancel", "change_flight", "change_cabin", "add_bags", "update_passenger",
            "cancel_refuse", "book_too_many"} <= kinds


def test_small_and_bad_sizes(tmp_path: Path) -> None:
    d = generate_world("airline", seed=1, n_users=3, n_tasks=2, out_dir=tmp_path / "tiny")
    assert len(load_domain("airline", d).tasks) == 2
    with pytest.raises(ConfigError):
        generate_world("airline", seed=1, n_users=1, n_tasks=2, out_dir=tmp_path / "x")
    with pytest.raises(ConfigError):
        generate_world("railway", seed=1, n_users=5, n_tasks=2, out_dir=tmp_path / "y")  # type: ignore[arg-type]


def test_every_rule_stated_once_and_deletion_removes_it(world: Path) -> None:
    policy = (world / "wiki.md").read_text()
    assert stated_rules(policy, AIRLINE_RULES) == {r.id for r in AIRLINE_RULES}
    for rule in AIRLINE_RULES:
        for degraded in (degrade_policy(policy, AIRLINE_RULES, delete=[rule.id]),
                         degrade_policy(policy, AIRLINE_RULES, garble=[rule.id], seed=3)):
            assert stated_rules(degraded, AIRLINE_RULES) == {r.id for r in AIRLINE_RULES} - {rule.id}


PARAPHRASES = {
    "airline.basic_no_change": "Reservations booked in basic economy are not modifiable to other flights.",
    "airline.confirm": "Always get the customer's clear approval (a yes) before you make any change to a booking.",
    "airline.max_passengers": "No booking may include more than 5 travelers.",
    "airline.cancel_eligibility": "Refund a cancellation only when the booking is under 24 hours old, the cabin is "
                                  "business, or the traveller is insured for the reason given.",
    "airline.no_remove_bags": "Customers may add extra luggage, but bags can't be removed afterwards.",
    "airline.comp_amount": "Compensation vouchers are $100 for each passenger.",
    "airline.free_bags": "Bag allowance depends on tier: gold members get more free luggage; additional bags are $50.",
}
UNRELATED = [
    "The weather in Paris is lovely in the spring, and the museums are open late on Fridays.",
    "Be polite, concise and helpful. Use the tools to look up information before answering.",
    "Basic economy is our cheapest fare. Flights leave from many airports. Passengers love our service.",
]


@pytest.mark.parametrize("rule_id", sorted(PARAPHRASES))
def test_paraphrase_is_detected(rule_id: str) -> None:
    assert rule_id in stated_rules(PARAPHRASES[rule_id], AIRLINE_RULES)


def test_unrelated_text_and_other_domain_do_not_count(tau_data_or_none: Path | None) -> None:
    for text in UNRELATED:
        assert stated_rules(text, AIRLINE_RULES) == frozenset(), text
    retail_like = "Only pending orders can be cancelled. Refunds go to the original payment method or a gift card."
    assert max(rule_coverage(retail_like, AIRLINE_RULES).values()) < 0.8


@pytest.fixture
def tau_data_or_none() -> Path | None:
    return None


def _pass1(dom, policy: str, trials: int = 4) -> float:  # type: ignore[no-untyped-def]
    results = {t.index: [run_episode(dom, t, policy, seed=s)[0] == 1.0 for s in range(trials)] for t in dom.tasks}
    return pass_hat_k(results, 1)


def test_full_policy_beats_degraded_policy(world: Path) -> None:
    dom = load_domain("airline", world, split="test")
    full = dom.policy
    degraded = degrade_policy(full, AIRLINE_RULES, delete=DELETED)
    p_full, p_deg = _pass1(dom, full), _pass1(dom, degraded)
    print(f"pass^1 (4 trials, {len(dom.tasks)} tasks): full={p_full:.3f} degraded={p_deg:.3f}")
    assert p_full >= 0.9
    assert p_full - p_deg >= 0.25


def test_explain_failure_names_the_missing_rule(world: Path) -> None:
    dom = load_domain("airline", world, split="test")
    degraded = degrade_policy(dom.policy, AIRLINE_RULES, delete=["airline.cancel_eligibility"])
    task = next(t for t in dom.tasks if t.intent and t.intent["task_kind"] == "cancel_refuse")
    reward, messages = run_episode(dom, task, degraded, seed=0)
    assert reward == 0.0
    assert "airline.cancel_eligibility" in [r for r, _ in explain_failure(messages, dom.tools_info)]
    reward, messages = run_episode(dom, task, dom.policy, seed=0)
    assert reward == 1.0 and explain_failure(messages, dom.tools_info) == []


def test_policy_is_deterministic_and_error_rate_hurts(world: Path) -> None:
    dom = load_domain("airline", world, split="test")
    task = dom.tasks[0]
    a = run_episode(dom, task, dom.policy, seed=3)[1]
    b = run_episode(dom, task, dom.policy, seed=3)[1]
    assert a == b
    noisy = SimulatedPolicy(seed=1, error_rate=1.0)
    rewards = [run_episode(dom, t, dom.policy, seed=1, model=noisy)[0] for t in dom.tasks]
    assert sum(rewards) / len(rewards) < _pass1(dom, dom.policy, trials=1)
