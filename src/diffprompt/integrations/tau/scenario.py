"""Offline scenarios: a degraded generated τ world, traffic recorded into a slot (no middleware).

Used by the end-to-end test, ``bench/optimize.py`` and anyone who wants a realistic window quickly:
``degraded_world`` builds a generated world and its policy with rules deleted or garbled;
``record_traffic`` plays cases through a replay environment with a prompt version and stores each
episode as a trace with its ``reward`` feedback (source ``env``), like the middleware would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from diffprompt.optimize.replay import Case, ReplayEnvironment, run_paired
from diffprompt.types import Feedback, PromptVersion

DEFAULT_DELETE = ("airline.confirm", "airline.free_bags")
DEFAULT_GARBLE = ("airline.basic_no_change",)


def degraded_world(
    out_dir: Path,
    *,
    domain: str = "airline",
    seed: int = 0,
    n_users: int = 200,
    n_tasks: int = 60,
    delete: Sequence[str] = DEFAULT_DELETE,
    garble: Sequence[str] = DEFAULT_GARBLE,
    split: str = "test",
) -> tuple[Any, str]:
    """(loaded domain, degraded policy text) of a generated world written to ``out_dir`` (reused)."""
    from tau_envs.domain import load_domain
    from tau_envs.generate import generate_world
    from tau_envs.generate.policy import degrade_policy
    from tau_envs.rules import Rule

    if not (out_dir / f"tasks_{split}.json").is_file():
        generate_world(domain, seed=seed, n_users=n_users, n_tasks=n_tasks, out_dir=out_dir)  # type: ignore[arg-type]
    dom = load_domain(domain, out_dir, split=split)
    rules = [Rule.from_json(r) if isinstance(r, dict) else r for r in dom.rules]
    return dom, degrade_policy(dom.policy, rules, delete=delete, garble=garble, seed=seed)


def record_traffic(
    store: Any,
    version: PromptVersion,
    env: ReplayEnvironment,
    cases: Sequence[Case],
    *,
    seed: int = 0,
    concurrency: int = 8,
) -> float:
    """Serve ``cases`` with ``version`` and record traces + reward feedback; returns the mean reward."""
    res = run_paired(env, cases, {version.id: version.text}, seed=seed, concurrency=concurrency)
    traces, feedback = [], []
    for r in res.results[version.id]:
        if r.trace is None:
            continue
        tr = replace(r.trace, slot=version.slot, version_id=version.id)
        traces.append(tr)
        feedback.append(Feedback(trace_id=tr.id, kind="reward", value=float(r.reward), source="env"))
    store.add_traces(traces)
    store.add_feedback(feedback)
    return res.mean(version.id)
