"""The do-nothing baseline beside pass^1: a model that never calls a tool, on generated worlds.

For airline and retail (world seed 0, 200 users, 60 tasks per split), test and train splits: the
do-nothing agent's pass^1 (``tau_envs.baseline.do_nothing_pass1``, the better of "refuse everything"
and "claim everything is done"), the share of refusal tasks, and the simulated target's pass^1 with
the full policy and with the default scenario's degraded policy — so every pass^1 stands next to
the score of doing nothing. ``python bench/do_nothing.py`` writes the "do-nothing baseline" section
of bench/RESULTS.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import _results

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "src")]

from diffprompt.integrations.tau.scenario import DEFAULT_SCENARIO, RETAIL_SCENARIO  # noqa: E402
from tau_envs.baseline import do_nothing_pass1  # noqa: E402
from tau_envs.domain import load_domain  # noqa: E402
from tau_envs.generate import GENERATOR_VERSION, generate_world  # noqa: E402
from tau_envs.runner import run_tau  # noqa: E402
from tau_envs.sim.chat_model import SimulatedChatModel  # noqa: E402
from tau_envs.users.scripted import ScriptedUser  # noqa: E402

HEADING = "## do-nothing baseline"
# Measured with the generator and scripted user before GENERATOR_VERSION 2 (commit 5914097^, same
# seeds and sizes): half the airline tasks and 27-28% of the retail tasks expected no change.
BEFORE = {("airline", "test"): 0.500, ("airline", "train"): 0.517, ("retail", "test"): 0.267,
          ("retail", "train"): 0.283}


def _sim_pass1(dom, prompt: str) -> float:  # type: ignore[no-untyped-def]
    s = run_tau(dom, dom.tasks, trials=1, concurrency=4, system_prompt=prompt,
                model_factory=lambda seed: SimulatedChatModel(domain=dom.name, seed=seed),
                user_factory=lambda t, seed: ScriptedUser())
    return float(s.pass_hat_k[1])


def main() -> None:
    t0 = time.perf_counter()
    rows = []
    for name, scenario in (("airline", DEFAULT_SCENARIO), ("retail", RETAIL_SCENARIO)):
        out = generate_world(name, seed=0, n_users=200, n_tasks=60, out_dir=tempfile.mkdtemp())  # type: ignore[arg-type]
        for split in ("test", "train"):
            dom = load_domain(name, out, split=split)
            score = do_nothing_pass1(dom, user_factory=lambda t, s: ScriptedUser(), concurrency=4)
            full = _sim_pass1(dom, dom.policy)
            degraded = _sim_pass1(dom, scenario.degrade(dom.policy, dom.rules))
            rows.append(
                f"| {name} | {split} | {len(dom.tasks)} | {score.no_write_share:.3f} | "
                f"{BEFORE[(name, split)]:.3f} → **{score.pass1:.3f}** | {full:.3f} | {degraded:.3f} |"
            )
            print(rows[-1], flush=True)
    lines = [
        "A model that never calls a tool (`tau_envs.baseline.DoNothingModel`: it refuses everything, or "
        "claims everything is done; the better of the two is reported) on generated worlds (seed 0, 200 "
        f"users, 60 tasks per split, generator version {GENERATOR_VERSION}), scripted users. Under the "
        "official reward a task whose expected actions change nothing is passed by doing nothing, so the "
        "do-nothing pass^1 equals the share of such tasks. Generated splits now hold the official share "
        "(airline 20/50 = 0.40, retail 9/115 = 0.078 of the τ-bench test splits); the scripted user "
        "pushes back on a refusal (twice when its request should be granted, once otherwise) instead of "
        "ending at the first \"sorry\", which changes no do-nothing score (an untouched database stays "
        "untouched) but gives an agent that refused wrongly a second chance.",
        "",
        "| domain | split | tasks | refusal share | do-nothing pass^1 before → now | sim, full policy | "
        "sim, degraded (default scenario) |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Airline's do-nothing score stays at 0.40 — the official airline test split has the same share "
        "of tasks that expect no change, so it is a property of τ-bench's reward, not of the generator; "
        "read every airline pass^1 against it. Retail's is 0.083.",
        f"{time.perf_counter() - t0:.0f} s on the shared 2-core machine (1-min load {os.getloadavg()[0]:.1f}). "
        "`python bench/do_nothing.py` reproduces it.",
    ]
    _results.write_section(HEADING, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
