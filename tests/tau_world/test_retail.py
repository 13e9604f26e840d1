"""Generated retail world: determinism, schema, gold replay, rule matching, and the key property."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import pytest

from diffprompt.errors import ConfigError
from tau_envs.domain import Domain, load_domain
from tau_envs.generate import degrade_policy, generate_world
from tau_envs.metrics import pass_hat_k
from tau_envs.rules import RETAIL_RULES
from tau_envs.sim import SimulatedPolicy, explain_failure, rule_coverage, stated_rules
from tests.tau_world.loop import run_episode

DELETED = ["retail.confirm", "retail.pending_only", "retail.cancel_reason", "retail.same_product",
           "retail.refund_method", "retail.collect_all_items"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world("retail", seed=7, n_users=80, n_tasks=56, out_dir=tmp_path_factory.mktemp("rw"))


def test_same_seed_same_bytes(world: Path, tmp_path: Path) -> None:
    again = generate_world("retail", seed=7, n_users=80, n_tasks=56, out_dir=tmp_path / "b")
    names = sorted(p.name for p in world.iterdir())
    assert names == sorted(p.name for p in again.iterdir())
    _, mismatch, errors = filecmp.cmpfiles(world, again, names, shallow=False)
    assert mismatch == [] and errors == []
    other = generate_world("retail", seed=8, n_users=60, n_tasks=28, out_dir=tmp_path / "c")
    assert (other / "orders.json").read_bytes() != (world / "orders.json").read_bytes()


def test_official_schema(world: Path, tau_data: Path) -> None:
    """Same keys (and key order) as the official retail records, our own content."""
    def shape(path: Path) -> tuple[list[str], dict[str, list[str]]]:
        table = json.loads(path.read_text())
        rec = next(iter(table.values()))
        return list(rec), {k: list(v) for k, v in rec.items() if isinstance(v, dict) and k != "variants"}

    for name in ("users", "products"):
        assert shape(world / f"{name}.json")[0] == shape(tau_data / "retail" / f"{name}.json")[0], name
    ours = json.loads((world / "orders.json").read_text())
    official = json.loads((tau_data / "retail" / "orders.json").read_text())
    for status in ("pending", "delivered", "processed", "cancelled"):
        a = next(o for o in ours.values() if o["status"] == status)
        b = next(o for o in official.values() if o["status"] == status)
        assert list(a) == list(b) and list(a["items"][0]) == list(b["items"][0]), status
        assert [list(p) for p in a["payment_history"]] == [list(p) for p in b["payment_history"]]
        assert bool(a["fulfillments"]) == bool(b["fulfillments"])
    users = json.loads((world / "users.json").read_text())
    assert {o["user_id"] for o in ours.values()} <= set(users)
    assert all(oid in ours for u in users.values() for oid in u["orders"])
    products = json.loads((world / "products.json").read_text())
    official_ids = set(json.loads((tau_data / "retail" / "products.json").read_text()))
    assert not set(products) & official_ids


def test_loads_and_gold_replays(world: Path) -> None:
    for split, n in (("test", 56), ("train", 56), ("dev", 11)):
        dom = load_domain("retail", world, split=split)
        assert len(dom.tasks) == n
        for task in dom.tasks:
            assert task.intent and task.family
            _, observations = dom.replay(task.actions)
            assert not any(o.startswith("Error") for o in observations), task.intent
    tasks = load_domain("retail", world).tasks
    kinds = {t.intent["task_kind"] for t in tasks if t.intent}
    assert {"cancel", "return", "exchange", "modify_items", "modify_address", "modify_payment",
            "cancel_delivered", "return_pending", "exchange_other_product", "cancel_decline"} <= kinds
    writes = {a.name for t in tasks for a in t.actions}
    assert writes == {"cancel_pending_order", "return_delivered_order_items", "exchange_delivered_order_items",
                      "modify_pending_order_items", "modify_pending_order_address", "modify_pending_order_payment"}
    assert all(not t.actions for t in tasks if t.intent and t.intent["expect"] == "refuse")


def test_small_and_bad_sizes(tmp_path: Path) -> None:
    d = generate_world("retail", seed=1, n_users=2, n_tasks=2, out_dir=tmp_path / "tiny")
    dom = load_domain("retail", d)
    assert len(dom.tasks) == 2
    assert all(not any(o.startswith("Error") for o in dom.replay(t.actions)[1]) for t in dom.tasks)
    with pytest.raises(ConfigError):
        generate_world("retail", seed=1, n_users=1, n_tasks=2, out_dir=tmp_path / "x")


def test_every_rule_stated_once_and_deletion_removes_it(world: Path) -> None:
    policy = (world / "wiki.md").read_text()
    assert stated_rules(policy, RETAIL_RULES) == {r.id for r in RETAIL_RULES}
    for rule in RETAIL_RULES:
        for degraded in (degrade_policy(policy, RETAIL_RULES, delete=[rule.id]),
                         degrade_policy(policy, RETAIL_RULES, garble=[rule.id], seed=3)):
            assert stated_rules(degraded, RETAIL_RULES) == {r.id for r in RETAIL_RULES} - {rule.id}


PARAPHRASES = {
    "retail.authenticate": "First verify who the customer is: look up their user id with their e-mail address, "
                           "or with their full name plus postal code.",
    "retail.one_user": "Serve only the authenticated customer and decline requests concerning orders placed by "
                       "someone else.",
    "retail.confirm": "Get the customer's clear approval (a yes) before you cancel, modify, return or exchange "
                      "anything.",
    "retail.pending_only": "Orders can be cancelled or changed only while they are still pending.",
    "retail.delivered_only": "Returns and exchanges are possible only for orders that have been delivered.",
    "retail.cancel_reason": "When cancelling, the reason has to be 'no longer needed' or 'ordered by mistake'.",
    "retail.refund_method": "Refunds can only be sent to the payment method originally used, or to one of the "
                            "customer's gift cards.",
    "retail.same_product": "Exchanges and modifications must stay within the same product: a different option "
                           "such as size or color is fine, another type of product is not.",
    "retail.collect_all_items": "Since exchange and item modification can be submitted only once, gather all the "
                                "items in a single list first.",
    "retail.gift_card_balance": "Only accept a gift card if its remaining balance is sufficient to cover the charge.",
}
UNRELATED = [
    "The weather in Paris is lovely in the spring, and the museums are open late on Fridays.",
    "Be polite, concise and helpful. Use the tools to look up information before answering.",
    "Our store sells products in many colors. Orders ship quickly. Gift cards make great presents.",
]


@pytest.mark.parametrize("rule_id", sorted(PARAPHRASES))
def test_paraphrase_is_detected(rule_id: str) -> None:
    assert rule_id in stated_rules(PARAPHRASES[rule_id], RETAIL_RULES)


def test_unrelated_text_and_other_domain_do_not_count() -> None:
    for text in UNRELATED:
        assert stated_rules(text, RETAIL_RULES) == frozenset(), text
    airline_like = ("Basic economy reservations cannot be changed to different flights. "
                    "Each reservation can have at most five passengers.")
    assert max(rule_coverage(airline_like, RETAIL_RULES).values()) < 0.8


def _pass1(dom: Domain, policy: str, trials: int = 4) -> float:
    results = {t.index: [run_episode(dom, t, policy, seed=s)[0] == 1.0 for s in range(trials)] for t in dom.tasks}
    return pass_hat_k(results, 1)


def test_full_policy_beats_degraded_policy(world: Path) -> None:
    dom = load_domain("retail", world, split="test")
    full = dom.policy
    degraded = degrade_policy(full, RETAIL_RULES, delete=DELETED)
    p_full, p_deg = _pass1(dom, full), _pass1(dom, degraded)
    print(f"retail pass^1 (4 trials, {len(dom.tasks)} tasks): full={p_full:.3f} degraded={p_deg:.3f}")
    assert p_full >= 0.9
    assert p_full - p_deg >= 0.25


@pytest.mark.parametrize(
    ("kind", "rule_id"),
    [("cancel_delivered", "retail.pending_only"), ("return_refund_other", "retail.refund_method"),
     ("exchange_multi", "retail.collect_all_items"), ("cancel_other_user", "retail.one_user"),
     ("modify_payment_low_balance", "retail.gift_card_balance")],
)
def test_explain_failure_names_the_missing_rule(world: Path, kind: str, rule_id: str) -> None:
    dom = load_domain("retail", world, split="test")
    degraded = degrade_policy(dom.policy, RETAIL_RULES, delete=[rule_id])
    task = next(t for t in dom.tasks if t.intent and t.intent["task_kind"] == kind)
    reward, messages = run_episode(dom, task, degraded, seed=0)
    assert reward == 0.0
    assert rule_id in [r for r, _ in explain_failure(messages, dom.tools_info)]
    reward, messages = run_episode(dom, task, dom.policy, seed=0)
    assert reward == 1.0 and explain_failure(messages, dom.tools_info) == []


def test_policy_is_deterministic_and_error_rate_hurts(world: Path) -> None:
    dom = load_domain("retail", world, split="test")
    task = dom.tasks[0]
    a = run_episode(dom, task, dom.policy, seed=3)[1]
    b = run_episode(dom, task, dom.policy, seed=3)[1]
    assert a == b
    noisy = SimulatedPolicy(seed=1, error_rate=1.0)
    rewards = [run_episode(dom, t, dom.policy, seed=1, model=noisy)[0] for t in dom.tasks]
    assert sum(rewards) / len(rewards) < _pass1(dom, dom.policy, trials=1)
