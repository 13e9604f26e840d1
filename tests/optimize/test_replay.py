from __future__ import annotations

import threading
import time

import pytest

from diffprompt.errors import BudgetExceeded, ConfigError
from diffprompt.optimize.budget import BudgetTracker, RunBudget
from diffprompt.optimize.replay import Case, FakeReplay, case_seed, run_paired
from diffprompt.types import ReplayResult


class Recorder:
    name = "rec"

    def __init__(self, sleep: float = 0.0) -> None:
        self.seen: list[tuple[str, str, int, int]] = []
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.sleep = sleep

    def cases(self, traces):
        return []

    def run(self, case, system_prompt, *, seed, trial):
        with self.lock:
            self.seen.append((case.id, system_prompt, seed, trial))
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(self.sleep)
        with self.lock:
            self.active -= 1
        return ReplayResult(
            case_id=case.id, version_id="", trial=trial, reward=float(len(system_prompt) > 3), model_calls=2
        )


def test_same_cases_and_seeds_for_every_prompt():
    env = Recorder()
    cases = [Case(id=f"c{i}", slice="a" if i % 2 else "b") for i in range(5)]
    res = run_paired(env, cases, {"v1": "abc", "v2": "abcdef"}, trials=3, seed=9, concurrency=4)
    by_prompt: dict[str, set] = {}
    for cid, text, seed, trial in env.seen:
        by_prompt.setdefault(text, set()).add((cid, seed, trial))
        assert seed == case_seed(9, cid, trial)
    assert by_prompt["abc"] == by_prompt["abcdef"] and len(by_prompt["abc"]) == 15
    assert res.rewards("v1") == [0.0] * 15 and res.rewards("v2") == [1.0] * 15
    assert [r.case_id for r in res.results["v1"]] == [r.case_id for r in res.results["v2"]]
    assert res.slices()[:3] == ["b", "b", "b"]
    assert res.case_rewards("v2") == [1.0] * 5 and res.case_slices() == ["b", "a", "b", "a", "b"]
    assert res.model_calls() == 60
    assert res.as_record()["versions"]["v2"]["mean"] == 1.0


def test_concurrency_limit_respected():
    env = Recorder(sleep=0.02)
    cases = [Case(id=f"c{i}") for i in range(12)]
    run_paired(env, cases, {"a": "x", "b": "y"}, concurrency=3)
    assert env.peak <= 3
    assert env.peak >= 2


def test_episode_failure_is_data():
    env = FakeReplay({"k1": "refund", "k2": "refund"}, fail_keys=["k2"])
    res = run_paired(env, [Case(id="k1"), Case(id="k2")], {"v": "Always refund."})
    r1, r2 = res.results["v"]
    assert r1.reward == 1.0 and r1.error is None
    assert r2.reward == 0.0 and "crashed" in (r2.error or "")
    assert res.errors("v") == 1


def test_budget_stops_replay_cleanly():
    env = FakeReplay({f"k{i}": "x" for i in range(50)}, calls_per_episode=3)
    cases = [Case(id=f"k{i}") for i in range(50)]
    tracker = BudgetTracker(RunBudget(max_calls=20))
    with pytest.raises(BudgetExceeded) as ei:
        run_paired(env, cases, {"a": "x", "b": "y"}, tracker=tracker, concurrency=2)
    assert ei.value.budget == "target_calls"
    assert tracker.calls < 20 + 3 * 2 + 3
    zero = BudgetTracker(RunBudget(max_calls=0))
    with pytest.raises(BudgetExceeded):
        run_paired(env, cases[:1], {"a": "x"}, tracker=zero)
    with pytest.raises(ConfigError):
        run_paired(env, cases, {"a": "x"}, trials=0)


def test_fake_noise_is_paired_and_seeded():
    env = FakeReplay({f"k{i}": "rule" for i in range(40)}, noise=0.3)
    cases = [Case(id=f"k{i}") for i in range(40)]
    a = run_paired(env, cases, {"good": "the rule", "bad": "nothing"}, seed=1)
    b = run_paired(env, cases, {"good": "the rule", "bad": "nothing"}, seed=1)
    assert a.rewards("good") == b.rewards("good")
    # common random numbers: each episode is flipped for both prompts or neither
    assert all(g != x for g, x in zip(a.rewards("good"), a.rewards("bad"), strict=True))
