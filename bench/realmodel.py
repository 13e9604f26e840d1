"""Real-model benchmark on the local SmolLM2 server (llama.cpp, ``scripts/realmodel_server.sh``).

Measures, against ``--url`` (default ``$DIFFPROMPT_TEST_LLM_URL``):

* the server's throughput: prompt tokens/s (a ~1,500-token prompt, one output token) and generation
  tokens/s (a short prompt, ``--gen-tokens`` output tokens), from the server's own usage counts;
* one ``--env recorded`` round per traffic source — the support agent's offline traffic and, with
  ``--airline FILE``, the 200 historical gpt-4o airline runs imported as a slot — with SmolLM2 as
  target, pairwise judge, blamer and rewrite editor: the decision, seconds per counterfactual case,
  target / judge / editor calls and tokens, and what the same round would cost at gpt-4o-mini prices.

``python bench/realmodel.py [--airline ../shared/taubench/airline/historical_gpt-4o-airline.json]``
writes the "realmodel" section of bench/RESULTS.md.
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

from diffprompt.llm import CallMeter, ChatClient, ModelSettings, RedactingClient  # noqa: E402
from diffprompt.optimize.attribution import JudgeBlamer  # noqa: E402
from diffprompt.optimize.build import build_editor  # noqa: E402
from diffprompt.optimize.config import OptimizeConfig  # noqa: E402
from diffprompt.optimize.judge_pairwise import PairwiseJudge  # noqa: E402
from diffprompt.optimize.loop import run_round  # noqa: E402
from diffprompt.optimize.replay_counterfactual import OpenAIToolChat  # noqa: E402
from diffprompt.optimize.replay_recorded import RecordedReplay  # noqa: E402
from diffprompt.redact import default_redactor  # noqa: E402
from diffprompt.store import open_store  # noqa: E402

HEADING = "## realmodel"
MINI = "gpt-4o-mini"


def throughput(url: str, model: str, gen_tokens: int) -> tuple[float, float, int]:
    """(prompt tokens/s, generation tokens/s, prompt tokens) measured on the server."""
    import openai

    client = openai.OpenAI(base_url=url, api_key="local", timeout=600)
    filler = " ".join(f"Rule {i}: customers may ask about order {1000 + i} and its delivery status." for i in range(90))
    t0 = time.perf_counter()
    r = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": filler + f" [{time.time()}]"}], max_tokens=1
    )
    pp_s = time.perf_counter() - t0
    n_prompt = r.usage.prompt_tokens if r.usage else 0
    t0 = time.perf_counter()
    r = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": f"Write a long story about a parcel. ({time.time()})"}],
        max_tokens=gen_tokens,
        temperature=0.0,
    )
    gen_s = time.perf_counter() - t0
    n_gen = r.usage.completion_tokens if r.usage else 0
    return n_prompt / pp_s, n_gen / gen_s, n_prompt


def round_on(db: str, slot: str, url: str, model: str, args: argparse.Namespace) -> dict[str, object]:
    """One recorded round with separate meters for target, judge+blamer and editor."""
    settings = ModelSettings(max_tokens=args.max_tokens, timeout_s=600)
    target_m, judge_m, editor_m = CallMeter(), CallMeter(), CallMeter()
    judge = RedactingClient(ChatClient(model, base_url=url, api_key="local", meter=judge_m, settings=settings))
    env = RecordedReplay(
        OpenAIToolChat(model, base_url=url, api_key="local", meter=target_m, settings=settings),
        PairwiseJudge(judge, max_tokens=min(args.max_tokens, 96)),
        max_steps=args.max_steps,
        redactor=default_redactor(),
    )
    editor = build_editor(
        "rewrite", model=model, base_url=url, api_key="local", meter=editor_m,
        model_settings={"max_tokens": max(args.max_tokens, 256), "timeout_s": 600},
    )
    cfg = OptimizeConfig.from_dict(
        {
            "n_candidates": 1,
            "iterations": 1,
            "screen_cases": args.screen,
            "holdout_cases": args.holdout,
            "replay_concurrency": 1,
            "attribution": {"max_blame_traces": args.blame},
        }
    )
    store = open_store(db)
    t0 = time.perf_counter()
    try:
        res = run_round(store, slot, env=env, editor=editor, config=cfg, blamer=JudgeBlamer(judge))
    finally:
        store.close()
    wall = time.perf_counter() - t0
    stats = env.stats()
    replays = sum(v for k, v in stats.items() if k.startswith("outcome:"))
    t, j, e = target_m.snapshot(), judge_m.snapshot(), editor_m.snapshot()
    cost = sum(CallMeter().cost(MINI, s.input_tokens, s.output_tokens) for s in (t, j, e))
    return {
        "status": res.status,
        "reason": res.decision.reasons[0] if res.decision.reasons else "",
        "wall_s": wall,
        "replays": replays,
        "s_per_case": (res.record.timings.get("screen", 0.0) + res.record.timings.get("replay", 0.0))
        / max(1, sum(v for k, v in stats.items() if k.startswith("verdict:")) + stats.get("judged_without_model", 0)),
        "target": t,
        "judge": j,
        "editor": e,
        "cost_mini": cost,
        "stats": stats,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default=os.environ.get("DIFFPROMPT_TEST_LLM_URL", "http://127.0.0.1:8089/v1"))
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--airline", type=Path, default=None, help="historical τ airline runs (tau-historical JSON)")
    ap.add_argument("--support", type=int, default=40, help="support-agent conversations (offline traffic)")
    ap.add_argument("--holdout", type=int, default=6)
    ap.add_argument("--screen", type=int, default=2)
    ap.add_argument("--blame", type=int, default=2, help="failing traces the judge blames")
    ap.add_argument("--max-steps", type=int, default=3)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--throughput-only", action="store_true", help="measure the server only (no rounds)")
    args = ap.parse_args()

    pp, gen, n_prompt = throughput(args.url, args.model, args.gen_tokens)
    print(f"server: prompt {pp:.0f} tok/s ({n_prompt} tokens), generation {gen:.1f} tok/s", flush=True)
    rows: list[tuple[str, dict[str, object]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        if args.throughput_only:
            args.airline, args.support = None, 0
        os.environ["DIFFPROMPT_HOME"] = tmp
        from agents import support_agent

        db = f"sqlite:///{tmp}/support.db"
        if args.support:
            support_agent.main(["-n", str(args.support), "--db", db])
            name = f"support agent ({args.support} conversations)"
            rows.append((name, round_on(db, "support", args.url, args.model, args)))
            print(rows[-1], flush=True)
        if args.airline:
            from diffprompt.store.importers import import_tau_historical

            adb = f"sqlite:///{tmp}/airline.db"
            store = open_store(adb)
            try:
                import_tau_historical(store, args.airline, slot="airline")
            finally:
                store.close()
            rows.append(("historical gpt-4o airline runs (200)", round_on(adb, "airline", args.url, args.model, args)))
            print(rows[-1], flush=True)

    lines = [
        f"SmolLM2-135M-Instruct (Q4_1 GGUF) behind llama-cpp-python's server, `--n_threads 2`, on a shared 2-core "
        f"machine; model `{args.model}` at {args.url}. One `--env recorded` round per row: SmolLM2 as target, "
        f"pairwise judge (both orders), blamer and rewrite editor; {args.holdout} held-out cases, "
        f"{args.screen} screening cases, 1 candidate, max_tokens {args.max_tokens}, max_steps {args.max_steps}.",
        "",
        f"Server: prompt processing **{pp:.0f} tokens/s** ({n_prompt}-token prompt), "
        f"generation **{gen:.1f} tokens/s** ({args.gen_tokens} tokens); machine load average "
        f"{os.getloadavg()[0]:.1f} while measuring.",
        "",
        "| traffic | decision | wall s | replays | s per case (2 replays + 2 judge calls) "
        "| target calls / tokens | judge+blamer calls / tokens "
        "| editor calls / tokens | unparseable judge answers | garbage replays | cost at gpt-4o-mini |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows:
        st = r["stats"]
        assert isinstance(st, dict)
        garbage = sum(v for k, v in st.items() if k.startswith("outcome:") and not k.endswith((":ok", ":max_steps")))
        t, j, e = r["target"], r["judge"], r["editor"]
        lines.append(
            f"| {name} | {r['status']} | {r['wall_s']:.0f} | {r['replays']} | {r['s_per_case']:.1f} "
            f"| {t.calls} / {t.total_tokens} | {j.calls} / {j.total_tokens} | {e.calls} / {e.total_tokens} "  # type: ignore[attr-defined]
            f"| {st.get('judge_unparseable', 0)} of {st.get('judge_calls', 0)} | {garbage} | ${r['cost_mini']:.4f} |"
        )
    if rows:
        lines += ["", "Decision reasons: " + "; ".join(f"{n}: {r['reason']}" for n, r in rows)]
    else:
        lines += ["", "(`--throughput-only`: no round was run.)"]
    _results.write_section(HEADING, lines)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
