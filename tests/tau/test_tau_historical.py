"""The 200 recorded gpt-4o airline runs replay through our tools byte for byte, with their rewards."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from tau_envs.domain import Domain
from tau_envs.metrics import pass_hat_ks
from tau_envs.types import MAX_STEPS, STOP_TOKEN, Action


def _replay_run(domain: Domain, run: dict[str, Any]) -> tuple[float, int, list[str]]:
    """Re-execute the run's tool calls (first per assistant turn); return reward, #tool steps, mismatches."""
    task = domain.task(run["task_id"])
    recorded = run["info"]["task"]
    assert [{"name": a.name, "kwargs": dict(a.kwargs)} for a in task.actions] == recorded["actions"]
    assert list(task.outputs) == recorded["outputs"]
    env = domain.make_env(task)
    texts: list[str] = []
    last_obs: str | None = None
    mismatches: list[str] = []
    steps = 0
    for message in run["traj"]:
        if message["role"] == "assistant":
            if message.get("content"):
                texts.append(message["content"])
            calls = message.get("tool_calls") or []
            if calls:
                fn = calls[0]["function"]
                last_obs = env.step(Action(name=fn["name"], kwargs=json.loads(fn["arguments"]))).observation
                steps += 1
        elif message["role"] == "tool" and message["content"] != last_obs:
            mismatches.append(f"{message['name']}: {message['content'][:120]!r} != {str(last_obs)[:120]!r}")
    last = run["traj"][-1]
    ended = env.done or (last["role"] == "user" and STOP_TOKEN in (last.get("content") or ""))
    reward = env.reward(texts).reward if ended else 0.0  # an episode cut at MAX_STEPS scores 0
    return reward, steps, mismatches


@pytest.fixture(scope="module")
def runs(tau_data: Path) -> list[dict[str, Any]]:
    data = json.loads((tau_data / "airline" / "historical_gpt-4o-airline.json").read_text())
    assert len(data) == 200
    return data


def _check(domain: Domain, runs: list[dict[str, Any]]) -> tuple[dict[int, list[bool]], int]:
    successes: dict[int, list[bool]] = defaultdict(list)
    reward_mismatch: list[tuple[int, int]] = []
    observation_mismatch: list[str] = []
    n_observations = 0
    for run in runs:
        reward, steps, mismatches = _replay_run(domain, run)
        n_observations += steps
        observation_mismatch += [f"task {run['task_id']} trial {run['trial']}: {m}" for m in mismatches]
        if reward != run["reward"]:
            reward_mismatch.append((run["task_id"], run["trial"]))
        successes[run["task_id"]].append(reward == 1.0)
    assert observation_mismatch == []
    assert reward_mismatch == []
    return successes, n_observations


def test_historical_runs_first_tasks(airline_province: Domain, runs: list[dict[str, Any]]) -> None:
    """Fast subset: the 40 runs of tasks 0-9 (every observation and reward)."""
    subset = [run for run in runs if run["task_id"] < 10]
    successes, n_observations = _check(airline_province, subset)
    assert len(subset) == 40 and n_observations > 200
    assert sum(map(sum, successes.values())) == sum(run["reward"] == 1.0 for run in subset)


@pytest.mark.slow
def test_historical_gpt4o_runs_reproduce(airline_province: Domain, runs: list[dict[str, Any]]) -> None:
    """All 200 runs: 1164 observations byte for byte, 200/200 rewards, the published pass^1..4."""
    successes, n_observations = _check(airline_province, runs)
    assert n_observations == 1164
    assert len(successes) == 50 and all(len(v) == 4 for v in successes.values())
    got = {k: round(v, 3) for k, v in pass_hat_ks(successes, 4).items()}
    assert got == {1: 0.420, 2: 0.273, 3: 0.220, 4: 0.200}


def test_current_users_file_differs_from_history(airline: Domain, runs: list[dict[str, Any]]) -> None:
    """The address key changed after the runs: get_user_details no longer matches byte for byte."""
    run = runs[0]
    _, _, mismatches = _replay_run(airline, run)
    assert any(m.startswith("get_user_details") for m in mismatches)
    assert MAX_STEPS == 30
