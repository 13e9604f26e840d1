"""The paper's single-turn table on a local target: seed prompt vs optimized prompt, per task and editor.

For SST-2, SST-5, MRPC and SNLI (``../shared/datasets/<task>/dev.jsonl``): the task kind's default
seed prompt is served on ``--window`` examples of the dev set's window part and recorded (traces +
reward feedback, as ``diffprompt eval --record`` does); each editor then runs one round (a dry run
on a copy of that window: screening on held-out-part examples, the paired gate on ``--holdout``
others). Both the seed and the version the gate would serve are then scored on ``--report`` further
held-out-part examples that neither the editor nor the gate saw. The target is whatever
OpenAI-compatible server ``--base-url`` names (the real-model tier: SmolLM2-135M-Instruct via
llama.cpp) or the offline lexical ``sim``.

``python bench/experiments_paper.py --model openai:NAME --base-url http://127.0.0.1:8080/v1``
writes the "paper tasks" section of bench/RESULTS.md (``--section`` to name another).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import _results

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src")]

from diffprompt.experiments.harness import run_arm  # noqa: E402
from diffprompt.experiments.sweeps import prepare  # noqa: E402
from diffprompt.llm import CallMeter  # noqa: E402
from diffprompt.optimize import build  # noqa: E402
from diffprompt.optimize.config import OptimizeConfig  # noqa: E402
from diffprompt.optimize.evaluate import evaluate  # noqa: E402
from diffprompt.store.memory import MemoryStore  # noqa: E402

PAPER = {"sst2": (0.93, 0.97), "sst5": (0.55, 0.67), "mrpc": (0.61, 0.69), "snli": (0.88, 0.93)}
NAMES = {"sst2": "SST-2", "sst5": "SST-5", "mrpc": "MRPC", "snli": "SNLI"}


def score(env, text: str, cases, concurrency: int):
    v = MemoryStore().create_slot("report", text)
    rep, _ = evaluate(env, v, cases, concurrency=concurrency)
    return rep


def _why(reasons: list[str]) -> str:
    """The decision's first reason, then what became of each candidate (their statuses, not texts)."""
    if not reasons:
        return ""
    rest = [r.split(":", 1)[0] for r in reasons[1:]]
    out = reasons[0] + (" (" + "; ".join(rest) + ")" if rest else "")
    return out.replace("|", "/")[:160]


def _f(v: float | None) -> str:  # None when every episode errored (no parsed answers to score)
    return "—" if v is None else f"{v:.3f}"


def table(rows: list[dict]) -> list[str]:
    """The markdown table of ``rows`` (as written to ``--json-out``)."""
    lines = [
        "| task | paper seed → Dream-7B | editor | gate decision (why) | 135M seed acc (F1) | 135M served acc (F1) "
        "| n | unparsed seed → served | round: target calls, editor LLM calls, s | task: target calls, wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pb, pd = PAPER[r["task"]]
        gate = f"{r['status']} (p={r['p']:.3g})" if r["p"] is not None else r["status"]
        lines.append(
            f"| {NAMES[r['task']]} | {pb:.2f} → {pd:.2f} | {r['editor']} | {gate}: {_why(r.get('reasons') or [])} "
            f"| {_f(r['baseline'])} ({_f(r['baseline_f1'])}) | {_f(r['optimized'])} ({_f(r['optimized_f1'])}) "
            f"| {r['report_n']} | {r['baseline_unparsed']} → {r['optimized_unparsed']} "
            f"| {r['round_target_calls']}, {r['editor_calls']}, {r['round_s']:.0f} "
            f"| {r.get('task_target_calls', '—')}, {r.get('task_s', 0):.0f} |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="sim")
    ap.add_argument("--base-url", default=os.environ.get("OPENAI_BASE_URL"))
    ap.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY", "local"))
    ap.add_argument("--editor-model", default=None, help="LLM for ar/rewrite (default: the target's name)")
    ap.add_argument("--tasks", default="sst2,sst5,mrpc,snli")
    ap.add_argument("--editors", default="dlm,ar,rewrite")
    ap.add_argument("--dlm", default="builtin")
    ap.add_argument("--window", type=int, default=48)
    ap.add_argument("--holdout", type=int, default=60)
    ap.add_argument("--screen", type=int, default=8)
    ap.add_argument("--report", type=int, default=120)
    ap.add_argument("--candidates", type=int, default=3)
    ap.add_argument("--iterations", type=int, default=2)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "datasets"))
    ap.add_argument("--section", default="## paper tasks (single-turn)")
    ap.add_argument("--json-out", default=None)
    ap.add_argument("--dry", action="store_true", help="print the section, do not write bench/RESULTS.md")
    ap.add_argument("--from-json", default=None, help="comma-separated --json-out files: print their table only")
    args = ap.parse_args()
    if args.from_json:
        print("\n".join(table([r for f in args.from_json.split(",") for r in json.loads(Path(f).read_text())])))
        return
    api_key = args.api_key if args.model != "sim" else None
    editor_model = args.editor_model or (args.model.partition(":")[2] if args.model != "sim" else None)
    dlm = None
    if "dlm" in args.editors.split(","):
        from diffprompt.dlm.model import load_builtin

        if args.dlm == "builtin":
            dlm = load_builtin()
        else:
            from diffprompt.dlm import backends

            dlm = backends.load_dlm(args.dlm)
    cfg = OptimizeConfig(holdout_cases=args.holdout, screen_cases=args.screen, n_candidates=args.candidates,
                         iterations=args.iterations, replay_concurrency=args.concurrency)
    rows, t_all = [], time.perf_counter()
    for task in args.tasks.split(","):
        spec = f"dataset:{Path(args.data) / task / 'dev.jsonl'}"
        meter = CallMeter()
        t0 = time.perf_counter()
        prep = prepare(spec, model=args.model, base_url=args.base_url, api_key=api_key, meter=meter,
                       window_cases=args.window, concurrency=args.concurrency)
        arms = []
        for kind in args.editors.split(","):
            emeter = CallMeter()
            editor = build.build_editor(kind, dlm=dlm, model=editor_model if kind != "dlm" else None,
                                        base_url=args.base_url, api_key=api_key, meter=emeter)
            arm = run_arm(kind, prep.window, env=prep.env, editor=editor, blamer=prep.blamer, config=cfg,
                          seed=args.seed, editor_meter=emeter)
            arms.append(arm)
        # report on held-out-part examples that no round screened or gated on (and never the window)
        used = {cid for arm in arms for cid in arm.replayed}
        window_keys = {t.replay_key for t in prep.window.traces}
        report_cases = [c for c in prep.env.all_cases("holdout") if c.id not in used | window_keys][: args.report]
        base = score(prep.env, prep.window.seed_text, report_cases, args.concurrency)
        for arm in arms:
            served_text = arm.text if arm.status == "dry_run" and arm.text else prep.window.seed_text
            opt = base if served_text == prep.window.seed_text else score(prep.env, served_text, report_cases,
                                                                          args.concurrency)
            rows.append({
                "task": task, "editor": arm.arm, "status": arm.status, "p": arm.p_value,
                "gate_seed": arm.incumbent, "gate_finalist": arm.held_out,
                "report_n": base.n, "baseline": base.accuracy, "baseline_f1": base.macro_f1,
                "baseline_unparsed": base.unparsed, "optimized": opt.accuracy, "optimized_f1": opt.macro_f1,
                "optimized_unparsed": opt.unparsed, "window_score": prep.window.window_score,
                "round_target_calls": arm.target_calls, "editor_calls": arm.editor_calls,
                "editor_forwards": arm.editor_forwards, "round_s": arm.seconds, "reasons": list(arm.reasons),
                "text": served_text,
            })
        task_s, task_calls = time.perf_counter() - t0, meter.snapshot().calls
        for r in rows[-len(arms):]:
            r.update(task_s=round(task_s, 1), task_target_calls=task_calls)
        print(f"{task}: {task_s:.0f}s, target calls {task_calls}", flush=True)
        for r in rows[-len(arms):]:
            print(json.dumps({k: v for k, v in r.items() if k != "text"}), flush=True)
        if args.json_out:  # after every task, so a stopped run keeps the tasks it finished
            Path(args.json_out).write_text(json.dumps(rows, indent=1))
    lines = [
        f"Target: `{args.model}`" + (f" at {args.base_url}" if args.base_url else " (offline lexical simulator)")
        + f"; editors {args.editors} (ar/rewrite LLM: `{editor_model or 'none'}`, "
        f"DLM: {args.dlm}). Per task: default seed prompt; window = {args.window} dev examples of the window "
        f"part (recorded); one round per editor (seed {args.seed}, {args.candidates} candidates x "
        f"{args.iterations} iterations, screening {args.screen}, paired gate on {args.holdout} held-out-part "
        f"examples); baseline and served prompt scored on up to {args.report} further held-out-part dev "
        "examples seen by neither the editor nor the gate. Accuracy (macro-F1); unparsed replies count as "
        f"wrong. Total {time.perf_counter() - t_all:.0f}s. The paper's numbers are GPT-4o-mini on the test "
        "split with Dream-7B as the editor: a different target, not comparable in level.",
        "",
        "",
        *table(rows),
    ]
    if not args.dry:
        _results.write_section(args.section, lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
