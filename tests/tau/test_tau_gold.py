"""Fidelity against the official data: gold hashes and every gold step's exact observation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tau_envs.domain import Domain
from tau_envs.gold import load_hashes, replay_gold
from tau_envs.hashing import db_hash

AIRLINE_UNTOUCHED = "4587e6b48ad2b2c4f3e1fecb40aabec7bb2286513273b8f8cec3f5865222f290"
RETAIL_UNTOUCHED = "5a4b2cb59f4d12dea7e4adff24a7f8fada510ead49372ea4a729a82bbb5f49b5"


def _check_replay_file(domain: Domain, replay_path: Path, hashes_path: Path) -> tuple[int, int]:
    replay = json.loads(replay_path.read_text())
    hashes = load_hashes(hashes_path)
    assert hashes, hashes_path
    assert set(hashes) == {int(k) for k in replay["tasks"]}
    n_steps = 0
    for key, record in replay["tasks"].items():
        task = domain.task(int(key))
        assert task.user_id == record["user_id"]
        result = replay_gold(domain, task, expected=hashes[int(key)])
        assert len(result.steps) == len(record["steps"])
        for ours, gold in zip(result.steps, record["steps"], strict=True):
            assert ours.name == gold["name"]
            assert ours.observation == gold["observation"], (key, gold["name"])
            assert ours.is_error == gold["is_error"], (key, gold["name"])
            n_steps += 1
        assert result.hash == record["gold_hash"] == hashes[int(key)], key
        if int(key) < 3:  # the reward's own path (transfer excluded, cached) gives the same hash
            assert domain.gold_hash(task) == result.hash
    return len(hashes), n_steps


def test_untouched_db_hashes(airline: Domain, retail_dev: Domain) -> None:
    assert db_hash(airline.fresh_db()) == AIRLINE_UNTOUCHED
    assert db_hash(retail_dev.fresh_db()) == RETAIL_UNTOUCHED


def test_airline_gold_open(airline: Domain, tau_data: Path) -> None:
    d = tau_data / "airline"
    tasks, steps = _check_replay_file(airline, d / "gold_replay_test_open.json", d / "gold_hashes_test_open.json")
    assert (tasks, steps) == (25, 50)


def test_retail_gold_dev(retail_dev: Domain, tau_data: Path) -> None:
    d = tau_data / "retail"
    tasks, steps = _check_replay_file(retail_dev, d / "gold_replay_dev.json", d / "gold_hashes_dev.json")
    assert (tasks, steps) == (20, 25)


@pytest.mark.slow
def test_retail_gold_train(retail_train: Domain, tau_data: Path) -> None:
    d = tau_data / "retail"
    tasks, steps = _check_replay_file(retail_train, d / "gold_replay_train.json", d / "gold_hashes_train.json")
    assert (tasks, steps) == (500, 768)

