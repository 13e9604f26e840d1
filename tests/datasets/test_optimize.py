"""A round on a dataset env: the window from ``eval --record``, the gate on unseen examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffprompt.optimize.service import OptimizeRequest, run_request
from diffprompt.store.memory import MemoryStore


def _record(store: MemoryStore, env_spec: str, seed_text: str) -> None:
    from diffprompt.datasets.build import build_bundle
    from diffprompt.optimize.evaluate import evaluate, record_episodes

    b = build_bundle(env_spec)
    v = store.create_slot("s", seed_text)
    _, res = evaluate(b.env, v, b.env.all_cases("window"))
    record_episodes(store, v, b.env, res.results[v.id])


SEED = (
    "You read movie reviews written by critics for a film magazine.\n"
    "Decide how the critic felt about the film overall, weighing praise against complaints.\n"
)


@pytest.mark.parametrize("editor", ["oracle", "oracle-rewrite"])  # labelled ceilings: they paste the blamer's hint
def test_round_earns_the_answer_format_and_keeps_the_gate_unseen(sentiment_file: Path, tmp_path: Path,
                                                                 editor: str) -> None:
    env = f"dataset:{sentiment_file}"
    store = MemoryStore()
    _record(store, env, SEED)
    req = OptimizeRequest(slot="s", env=env, editor=editor, model="sim", config={"holdout_cases": 40})
    res = run_request(store, req, home=tmp_path)
    assert res.status == "promoted", (res.status, res.decision.reasons)
    assert res.candidate_score is not None and res.incumbent_score == 0.0 and res.candidate_score > 0.8
    new = store.active_version("s").text
    assert "negative, positive" in new  # the label-set format rule the blamer asked for
    window_keys = {t.trace.replay_key for t in store.window("s")}
    use = res.record.cases
    assert use is not None
    held = set(use.holdout) | set(use.screen)
    assert held and not held & window_keys
    assert set(use.holdout_replay_keys) and not set(use.holdout_replay_keys) & set(use.read_replay_keys)


def test_round_on_a_solved_window_has_nothing_to_fix(sentiment_file: Path, tmp_path: Path) -> None:
    from diffprompt.datasets.build import build_bundle

    env = f"dataset:{sentiment_file}"
    store = MemoryStore()
    _record(store, env, build_bundle(env).seed_prompt)
    res = run_request(store, OptimizeRequest(slot="s", env=env, editor="oracle"), home=tmp_path)
    assert res.status == "insufficient_data"  # the sim target solves every window example
    assert "nothing to fix" in res.decision.reasons[0]
    assert res.record.env.startswith("dataset:")


def test_scheduler_accepts_a_dataset_env(sentiment_file: Path) -> None:
    from diffprompt.jobs import check_request

    req = check_request("s", {"env": f"dataset:{sentiment_file}", "editor": "dlm", "model": "sim"})
    assert req.env == f"dataset:{sentiment_file}"
