"""Optimizer benchmark, offline: one round per editor (dlm, ar, rewrite) at default settings, and
replay throughput at concurrency 1/8/32 against the local HTTP simulated model.

Setup: a generated τ airline world (seed 0), its policy degraded (rules deleted and garbled), the
simulated target model served over the OpenAI-compatible HTTP server on 127.0.0.1, scripted users.
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

from diffprompt.llm import make_chat_model  # noqa: E402
from diffprompt.optimize.build import build_blamer, build_editor  # noqa: E402
from diffprompt.optimize.config import OptimizeConfig  # noqa: E402
from diffprompt.optimize.loop import run_round  # noqa: E402
from diffprompt.optimize.replay import run_paired  # noqa: E402
from diffprompt.optimize.replay_tau import TauReplay  # noqa: E402
from diffprompt.optimize.scenario import DEFAULT_DELETE, DEFAULT_GARBLE, degraded_world, record_traffic  # noqa: E402
from diffprompt.store.memory import MemoryStore  # noqa: E402
from tau_envs.serve import start_server  # noqa: E402
from tau_envs.users.scripted import ScriptedUser  # noqa: E402

HEADING = "## optimize"


def make_env(dom, base_url: str | None) -> TauReplay:
    """Over the local HTTP server when ``base_url`` is given, else the in-process simulated model."""
    if base_url is None:
        return TauReplay(dom, model_factory=lambda s: make_chat_model("sim", domain=dom.name, seed=s),
                         user_factory=lambda t, s: ScriptedUser())
    return TauReplay(
        dom,
        model_factory=lambda s: make_chat_model("openai:sim", base_url=base_url, api_key="x", seed=s),
        user_factory=lambda t, s: ScriptedUser(),
    )


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
    ap.add_argument("--editors", default="dlm,ar,rewrite")
    args = ap.parse_args()
    n_tasks = 40 if args.quick else 60
    tmp = Path(tempfile.mkdtemp(prefix="bench-opt-"))
    dom, degraded = degraded_world(tmp / "world", n_users=200, n_tasks=n_tasks)
    train, _ = degraded_world(tmp / "world", n_users=200, n_tasks=n_tasks, split="train")
    srv = start_server("airline")
    http_env = make_env(dom, srv.base_url)
    env = make_env(dom, None)
    train_env = make_env(train, None)
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
        res = run_round(store, "airline", env=env, editor=build_editor(kind, dlm=dlm), config=OptimizeConfig(),
                        seed=0, blamer=build_blamer(dom))
        wall = time.perf_counter() - t0
        rec = store.get_run(res.run_id)
        active = store.active_version("airline")
        after = (run_paired(train_env, train_cases, {"v": active.text}, concurrency=8, seed=5).mean("v")
                 if res.promoted_version_id else seed_train)
        t = rec["timings"]
        rows.append(
            f"| {kind} | {res.status} | {res.incumbent_score:.3f} → {res.candidate_score:.3f} | "
            f"{res.p_value:.2g} | {seed_train:.3f} → {after:.3f} | {wall:.1f} | {rec['cost']['target_calls']} | "
            f"{t.get('edit', 0):.1f} / {t.get('screen', 0):.1f} / {t.get('replay', 0):.1f} | "
            f"{len(rec['finalist']['span_changes']) if rec.get('finalist') else 0} |"
        )
        print(rows[-1], flush=True)
    srv.close()
    load = os.getloadavg()[0]
    lines += [
        f"Offline, generated τ airline world (seed 0, 200 users, {n_tasks} test tasks); seed prompt = the world's "
        f"policy with {', '.join(DEFAULT_DELETE)} deleted and {', '.join(DEFAULT_GARBLE)} garbled; simulated target "
        "model in-process (`--model sim`, the offline default), scripted users; blame from the "
        "simulated model's `explain_failure` (offline judge). AR and rewrite run their offline hint-based "
        "strategies (no LLM). One round per editor at `OptimizeConfig()` defaults "
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
