"""Loading domains: the official layout, generated-world layout, and clear errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tau_core_world import TINY_TASKS, tiny_airline_db, write_world

from diffprompt.errors import EnvError
from tau_envs import load_domain as lazy_load_domain
from tau_envs.domain import load_domain
from tau_envs.types import STOP_TOKEN, Action


def test_official_domains_load(airline, retail_dev, tau_data: Path) -> None:  # type: ignore[no-untyped-def]
    assert airline.name == "airline" and len(airline.tasks) == 50 and airline.split == "test"
    assert airline.policy.startswith("# Airline Agent Policy")
    assert len(airline.tools_info) == 14 and airline.rules == []
    assert retail_dev.data_dir == tau_data / "retail" and len(retail_dev.tasks) == 20
    db = airline.fresh_db()
    assert list(db) == ["flights", "reservations", "users"]
    assert isinstance(db["reservations"]["4WQ150"]["payment_history"][0]["amount"], int)
    assert any(isinstance(o["items"][0]["price"], float) for o in retail_dev.fresh_db()["orders"].values())
    assert lazy_load_domain("retail", tau_data / "retail", split="dev").tasks == retail_dev.tasks
    task = airline.task(2)
    assert task.index == 2 and task.outputs == ("23553",) and task.intent is None and task.family == ""


def test_fresh_db_is_independent(tiny_airline) -> None:  # type: ignore[no-untyped-def]
    a, b = tiny_airline.fresh_db(), tiny_airline.fresh_db()
    a["users"]["ann_lee_1"]["payment_methods"]["gift_card_1"]["amount"] = 0
    assert b["users"]["ann_lee_1"]["payment_methods"]["gift_card_1"]["amount"] == 60
    assert tiny_airline.fresh_db() == b


def test_generated_world_layout(tiny_airline) -> None:  # type: ignore[no-untyped-def]
    assert tiny_airline.rules == [{"id": "r1"}]
    first = tiny_airline.tasks[0]
    assert first.intent == {"kind": "cancel", "reservation_id": "RES001"} and first.family == "cancel"
    env = tiny_airline.make_env(first)
    assert env.reward([]).reward == 0.0
    env.step(Action(name="cancel_reservation", kwargs={"reservation_id": "RES001"}))
    info = env.reward(["done"])
    assert info.reward == 1.0 and info.db_hash == info.gold_hash and info.outputs_ok


def test_reward_requires_outputs(tiny_airline) -> None:  # type: ignore[no-untyped-def]
    task = tiny_airline.tasks[1]  # no DB change; output "4.0"
    env = tiny_airline.make_env(task)
    assert env.reward(["The answer is 4"]).reward == 0.0
    info = env.reward(["It is 4.0, sir", STOP_TOKEN])
    assert info.reward == 1.0 and info.outputs == {"4.0": True}
    env.step(Action(name="cancel_reservation", kwargs={"reservation_id": "RES001"}))
    wrong_db = env.reward(["4.0"])
    assert wrong_db.reward == 0.0 and wrong_db.outputs_ok and wrong_db.db_hash != wrong_db.gold_hash


def test_outputs_ignore_case_and_commas(airline) -> None:  # type: ignore[no-untyped-def]
    task = airline.task(2)  # output "23553"; gold changes the DB, so compare outputs only
    env = airline.make_env(task)
    assert env.reward(["You save $23,553 in total"]).outputs_ok
    assert not env.reward(["You save $23.553"]).outputs_ok


def test_gold_errors_are_noops(tiny_airline) -> None:  # type: ignore[no-untyped-def]
    base = tiny_airline.tasks[0]
    failing = (Action(name="cancel_reservation", kwargs={"reservation_id": "NOPE"}), *base.actions)
    task = type(base)(index=9, user_id="ann_lee_1", instruction="x", actions=failing)
    assert tiny_airline.gold_hash(task) == tiny_airline.gold_hash(base)


def test_unknown_domain_and_split(tau_data: Path) -> None:
    with pytest.raises(EnvError, match=r"unknown τ domain 'banking'.*airline, retail"):
        load_domain("banking", tau_data)
    with pytest.raises(EnvError, match=r"unknown split 'validation'.*test, train, dev"):
        load_domain("retail", tau_data, split="validation")
    with pytest.raises(EnvError, match=r"missing tasks_train\.json \(splits present: test\)"):
        load_domain("airline", tau_data, split="train")


def test_missing_files_are_named(tmp_path: Path) -> None:
    root = write_world(tmp_path / "airline", tiny_airline_db(), TINY_TASKS)
    (root / "reservations.json").unlink()
    (root / "wiki.md").unlink()
    with pytest.raises(EnvError, match=r"missing reservations\.json, wiki\.md"):
        load_domain("airline", tmp_path)
    with pytest.raises(EnvError, match="no retail data"):
        load_domain("retail", tmp_path / "nowhere")
    with pytest.raises(EnvError, match=r"missing users_old\.json"):
        write_world(tmp_path / "b", tiny_airline_db(), TINY_TASKS)
        load_domain("airline", tmp_path / "b", users_file="users_old.json")


@pytest.mark.parametrize(
    ("tasks", "pattern"),
    [
        ({"not": "a list"}, "must hold a JSON list of tasks"),
        ([TINY_TASKS[0], {"user_id": "u", "instruction": "i"}], "task 1 in .* lacks 'actions'"),
        ([TINY_TASKS[0], TINY_TASKS[1], {**TINY_TASKS[1], "actions": [{"kwargs": {}}]}], "task 2 .*action 0"),
        ([{**TINY_TASKS[1], "outputs": [4]}], "task 0 .*'outputs' must be a list of strings"),
        ([{**TINY_TASKS[1], "intent": "cancel"}], "task 0 .*'intent' must be an object"),
    ],
)
def test_malformed_task_file(tmp_path: Path, tasks: object, pattern: str) -> None:
    root = write_world(tmp_path / "airline", tiny_airline_db(), [])
    (root / "tasks_test.json").write_text(json.dumps(tasks))
    with pytest.raises(EnvError, match=pattern):
        load_domain("airline", root)


def test_invalid_json_is_named(tmp_path: Path) -> None:
    root = write_world(tmp_path / "airline", tiny_airline_db(), TINY_TASKS)
    (root / "tasks_test.json").write_text("[{")
    with pytest.raises(EnvError, match=r"tasks_test\.json is not valid JSON"):
        load_domain("airline", root)


def test_task_index_out_of_range(tiny_airline) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EnvError, match="no task 7"):
        tiny_airline.task(7)


def test_custom_db_gold_replays_on_its_initial_state(tiny_airline) -> None:  # type: ignore[no-untyped-def]
    db = tiny_airline.fresh_db()
    db["users"]["bo_kim_2"]["membership"] = "silver"
    task = tiny_airline.tasks[0]
    env = tiny_airline.make_env(task, db=db)
    env.step(Action(name="cancel_reservation", kwargs={"reservation_id": "RES001"}))
    info = env.reward([])
    assert info.reward == 1.0 and info.gold_hash != tiny_airline.gold_hash(task)


@pytest.mark.parametrize("name", ["airline", "retail"])
def test_generated_world_loads_and_gold_replays_cleanly(tmp_path: Path, name: str) -> None:
    from tau_envs.generate import generate_world
    from tau_envs.gold import check_gold

    out = generate_world(name, seed=3, n_users=12, n_tasks=4, out_dir=tmp_path / name)  # type: ignore[arg-type]
    assert not (out / "few_shot.jsonl").exists()
    domain = load_domain(name, out, split="train")
    assert domain.rules and domain.tasks and all(t.intent is not None for t in domain.tasks)
    report = check_gold(domain)
    assert all(not step.is_error for r in report.results for step in r.steps if step.name != "think")
    assert all(r.hash == domain.gold_hash(domain.tasks[r.index]) for r in report.results)
