"""Optimizer benchmark, offline: one round per editor (dlm, ar, rewrite) at default settings, and
replay throughput at concurrency 1/8/32 against the local HTTP simulated model.

Setup: the one default scenario (``diffprompt.integrations.tau.DEFAULT_SCENARIO``, the demo's too): a
generated τ airline world, its policy degraded (rules deleted and garbled), built with ``build_tau``;
the simulated target model in-process for the rounds and over the OpenAI-compatible HTTP server on
127.0.0.1 for the throughput rows, scripted users.
The degraded seed serves every test task once (recorded as traces with reward feedback); each editor
then runs one round on a copy of that window. Held-out pass^1 of the seed and of the promoted version
is measured on the *train* split (tasks the round never saw).

``python bench/optimize.py [--quick]`` writes the "optimize" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import _results

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "src")]

from diffprompt.integrations.tau import DEFAULT_SCENARIO, build_tau, record_traffic  # noqa: E402
from diffprompt.optimize.build import build_blamer, build_editor  # noqa: E402
from diffprompt.optimize.config import OptimizeConfig  # noqa: E402
from diffprompt.optimize.loop import run_round  # noqa: E402
from diffprompt.optimize.replay import run_paired  # noqa: E402
from diffprompt.store.memory import MemoryStore  # noqa: E402
from tau_envs.serve import start_server  # noqa: E402

HEADING = "## optimize"


def _f(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None else format(x, spec)


def load_dlm():
    try:
        from diffprompt.dlm.model import load_builtin

        return load_builtin(), ""
    except Exception as exc:  # weights not trained yet, etc.
        return None, f"{type(exc).__name__}: {exc}"


def write_section(lines: list[str]) -> None:
    _results.write_section(HEADING, lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller world and fewer throughput episodes")
    ap.add_argument("--editors", default="dlm,oracle,oracle-rewrite")  # ar/rewrite need --editor-model
    args = ap.parse_args()
    scenario = DEFAULT_SCENARIO.with_world(tasks=40) if args.quick else DEFAULT_SCENARIO
    n_tasks = scenario.world_tasks
    home = Path(tempfile.mkdtemp(prefix="bench-opt-"))
    setup = build_tau(home=home, scenario=scenario)
    dom, train = setup.domain("test"), setup.domain("train")
    degraded = setup.seed_prompt(dom)
    srv = start_server("airline")
    http_env = build_tau(home=home, scenario=scenario, model="openai:sim", base_url=srv.base_url,
                         api_key="x").replay(dom)
    env = setup.replay(dom)
    train_env = setup.replay(train)
    lines: list[str] = []

    # ---- replay throughput ------------------------------------------------------------------
    n_thr = 16 if args.quick else 32
    cases = http_env.all_cases()[:n_thr]
    thr = []
    for conc in (1, 8, 32):
        t0 = time.perf_counter()
        r = run_paired(http_env, cases, {"seed": degraded}, concurrency=conc, seed=1)
        dt = time.perf_counter() - t0
        thr.append((conc, len(cases), dt, len(cases) / dt, r.model_calls() / dt, r.errors("seed")))
        print(f"throughput c={conc}: {len(cases) / dt:.2f} episodes/s", flush=True)

    # ---- rounds -----------------------------------------------------------------------------
    seed_store = MemoryStore()
    v0 = seed_store.create_slot("airline", degraded)
    t0 = time.perf_counter()
    test_pass = record_traffic(seed_store, v0, env, env.all_cases(), concurrency=8)
    record_s = time.perf_counter() - t0
    train_cases = train_env.all_cases()
    seed_train = run_paired(train_env, train_cases, {"seed": degraded}, concurrency=8, seed=5).mean("seed")
    rows = []
    for kind in args.editors.split(","):
        dlm, why = (load_dlm() if kind == "dlm" else (None, ""))
        if kind == "dlm" and dlm is None:
            rows.append(f"| {kind} | skipped: {why[:80]} | | | | | | | |")
            continue
        store = MemoryStore()
        store.create_slot("airline", degraded)
        win = seed_store.window("airline")
        store.add_traces([w.trace for w in win])
        store.add_feedback([f for w in win for f in w.feedback])
        t0 = time.perf_counter()
        judge = "oracle" if kind.startswith("oracle") else None  # the oracle editor pastes the oracle judge's hints
        res = run_round(store, "airline", env=env, editor=build_editor(kind, dlm=dlm), config=OptimizeConfig(),
                        seed=0, blamer=build_blamer(dom, judge=judge))
        wall = time.perf_counter() - t0
        rec = store.get_run(res.run_id)
        active = store.active_version("airline")
        after = (run_paired(train_env, train_cases, {"v": active.text}, concurrency=8, seed=5).mean("v")
                 if res.promoted_version_id else seed_train)
        t = rec["timings"]
        rows.append(
            f"| {kind} (judge: {judge or 'evidence'}) | {res.status} | {_f(res.incumbent_score)} → "
            f"{_f(res.candidate_score)} | {_f(res.p_value, '.2g')} | {seed_train:.3f} → {after:.3f} | {wall:.1f} | "
            f"{rec['cost']['target_calls']} | "
            f"{t.get('edit', 0):.1f} / {t.get('screen', 0):.1f} / {t.get('replay', 0):.1f} | "
            f"{len(rec['finalist']['span_changes']) if rec.get('finalist') else 0} |"
        )
        print(rows[-1], flush=True)
    srv.close()
    load = os.getloadavg()[0]
    lines += [
        f"Offline, scenario `{scenario.name}` (`DEFAULT_SCENARIO`, the one `diffprompt demo` runs): "
        f"{scenario.describe()}; seed prompt = the world's policy so degraded; simulated target "
        "model in-process (`--model sim`, the offline default), scripted users; blame from the honest "
        "evidence judge (`tau_envs.judge.TauJudge`, the offline default), except for the `oracle` editor, a labelled "
        "ceiling that pastes the oracle judge's hints (`--judge oracle`). One round per editor at "
        "`OptimizeConfig()` defaults "
        "(4 candidates x 2 iterations, 8 screening cases, rest held out, 1 trial, replay concurrency 4).",
        "",
        f"Recorded window: {n_tasks} episodes of the seed, pass^1 {test_pass:.3f} (recording took {record_s:.1f} s).",
        "",
        "| editor | status | held-out (round) inc → cand | p | train split pass^1 seed → new | wall s | target calls "
        "| edit / screen / replay s | span changes |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Replay throughput against the local OpenAI-compatible HTTP simulated model (ChatOpenAI client, "
        f"`run_paired` over {len(cases)} episodes of the seed prompt per row; client and server thread share "
        "one process):",
        "",
        "| concurrency | episodes | seconds | episodes/s | model calls/s | vs c=1 | errors |",
        "|---|---|---|---|---|---|---|",
        *[f"| {c} | {n} | {dt:.1f} | {eps:.2f} | {cps:.1f} | {eps / thr[0][3]:.2f}x | {err} |"
          for c, n, dt, eps, cps, err in thr],
        "",
        f"Shared 2-core machine, 1-min load average {load:.1f} at the end. `python bench/optimize.py` reproduces it.",
    ]
    write_section(lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
