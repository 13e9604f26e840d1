"""Middleware overhead and recorder throughput.

    python bench/middleware.py [--conversations 100] [--rounds 5] [--traces 20000] [--no-write]

1. Overhead per model call: the support agent with a no-latency scripted model, unwrapped vs wrapped
   with PromptAdaptationMiddleware (default and ``end_node=False``; SQLite store + recorder) vs a
   no-op middleware with the same hooks, same process. Runs are paired: each round runs every
   conversation through every variant back to back in a shuffled order, and the added latency of a
   run is (variant - unwrapped) / model calls; we report p50/p99/mean of those differences, the
   calling thread's CPU-time difference, and the time inside the middleware's own hooks.
2. Recorder sustained throughput: submit N realistic traces and time until ``flush`` returns, into
   SQLite and into PostgreSQL (``DIFFPROMPT_TEST_PG_URL``, else a private cluster if one can be
   started, else skipped).

Writes its table under "## Middleware" in bench/RESULTS.md (replacing only that section).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _results

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from langchain.agents.middleware import AgentMiddleware  # noqa: E402

from agents.support_agent import SEED_PROMPT, build_agent, requests, scripted_model  # noqa: E402
from diffprompt.middleware import FinalAnswerPromptAdaptationMiddleware, PromptAdaptationMiddleware  # noqa: E402
from diffprompt.store import open_store  # noqa: E402
from diffprompt.store.recorder import Recorder  # noqa: E402
from diffprompt.types import Trace, Usage, new_id  # noqa: E402


class NoopMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """The hooks PromptAdaptationMiddleware registers (model/tool wrappers + after_agent), doing nothing."""

    def after_agent(self, state, runtime):  # type: ignore[no-untyped-def]
        return None

    def wrap_model_call(self, request, handler):  # type: ignore[no-untyped-def]
        return handler(request)

    def wrap_tool_call(self, request, handler):  # type: ignore[no-untyped-def]
        return handler(request)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def instrument(mw: PromptAdaptationMiddleware, acc: list[float]) -> None:
    """Accumulate the time spent inside the middleware's own hooks (the model/tool handlers excluded)."""
    orig_model, orig_tool, orig_end = mw.wrap_model_call, mw.wrap_tool_call, mw._end

    def wrap(orig):  # type: ignore[no-untyped-def]
        def hook(request, handler):  # type: ignore[no-untyped-def]
            inner = [0.0]

            def timed_handler(r):  # type: ignore[no-untyped-def]
                t = time.perf_counter()
                try:
                    return handler(r)
                finally:
                    inner[0] += time.perf_counter() - t

            t = time.perf_counter()
            try:
                return orig(request, timed_handler)
            finally:
                acc[0] += time.perf_counter() - t - inner[0]

        return hook

    def end(state):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return orig_end(state)
        finally:
            acc[0] += time.perf_counter() - t

    mw.wrap_model_call, mw.wrap_tool_call, mw._end = wrap(orig_model), wrap(orig_tool), end  # type: ignore[method-assign]


def overhead(n: int, rounds: int, db_url: str, seed: int = 0) -> dict[str, dict[str, float]]:
    """Per-call added latency of each variant against the unwrapped agent, paired run by run.

    Every round runs each conversation once through every variant, in a shuffled order, back to
    back; the added latency of a run is (variant - unwrapped) / model calls for the same
    conversation in the same round, so machine-load drifts cancel out.
    """
    store = open_store(db_url)
    store.create_slot("support", SEED_PROMPT)
    recorder = Recorder(store)
    exact = PromptAdaptationMiddleware("support", store, recorder=recorder)
    fast = FinalAnswerPromptAdaptationMiddleware("support", store, recorder=recorder)
    hook_s = {"wrapped": [0.0], "wrapped, end_node=False": [0.0]}
    instrument(exact, hook_s["wrapped"])
    instrument(fast, hook_s["wrapped, end_node=False"])
    agents = {
        "unwrapped": build_agent(scripted_model()),
        "wrapped": build_agent(scripted_model(), [exact]),
        "wrapped, end_node=False": build_agent(scripted_model(), [fast]),
        "no-op middleware, same hooks": build_agent(scripted_model(), [NoopMiddleware()]),
    }
    rng = random.Random(seed)
    texts = requests(n)
    wall: dict[str, list[float]] = {k: [] for k in agents}
    cpu: dict[str, list[float]] = {k: [] for k in agents}
    calls_total = 0
    for r in range(-1, rounds):  # round -1 warms up
        if r == 0:
            for acc in hook_s.values():
                acc[0] = 0.0
        for i, text in enumerate(texts):
            inp = {"messages": [{"role": "user", "content": text}]}
            names = list(agents)
            rng.shuffle(names)
            w: dict[str, float] = {}
            c: dict[str, float] = {}
            for name in names:
                cfg = {"configurable": {"thread_id": f"b-{r}-{i}-{name}"}}
                t0, c0 = time.perf_counter(), time.thread_time()
                out = agents[name].invoke(inp, cfg)
                dw, dc = time.perf_counter() - t0, time.thread_time() - c0
                calls = sum(1 for m in out["messages"] if m.type == "ai")
                w[name], c[name] = dw * 1000 / calls, dc * 1000 / calls
            if r >= 0:
                calls_total += calls
                for name in agents:
                    base = 0.0 if name == "unwrapped" else 1.0
                    wall[name].append(w[name] - base * w["unwrapped"])
                    cpu[name].append(c[name] - base * c["unwrapped"])
    assert recorder.flush(60)
    recorder.close(30)
    expected = (rounds + 1) * n * 2
    assert store.count_traces("support") == expected, (store.count_traces("support"), expected)
    store.close()
    out: dict[str, dict[str, float]] = {}
    for name in agents:
        out[name] = {
            "p50": pct(wall[name], 0.5),
            "p99": pct(wall[name], 0.99),
            "mean": statistics.fmean(wall[name]),
            "cpu_p50": pct(cpu[name], 0.5),
            "hooks": hook_s[name][0] * 1000 / calls_total if name in hook_s else float("nan"),
        }
    return out


def make_traces(n: int) -> list[Trace]:
    t0 = datetime.now(UTC)
    msgs = (
        {"role": "system", "content": SEED_PROMPT},
        {"role": "user", "content": "I want a refund for order #A1007, it arrived damaged."},
        {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "id": "c0", "function": {
            "name": "lookup_order", "arguments": '{"order_id": "A1007"}'}}]},
        {"role": "tool", "name": "lookup_order", "tool_call_id": "c0",
         "content": '{"order_id": "A1007", "status": "delivered", "amount": 151.17}'},
        {"role": "assistant", "content": "I refunded $151.17 on order A1007."},
    )
    return [
        Trace(
            id=new_id("tr_"), slot="support", version_id=None, thread_id=f"bench-{i}", messages=msgs,
            started_at=t0 + timedelta(microseconds=i), ended_at=t0 + timedelta(milliseconds=5, microseconds=i),
            latency_ms=5.0, usage=Usage(input_tokens=230, output_tokens=27), model_calls=2, tool_calls=1,
            metadata={"model_ms": [1.2, 0.9], "tools": [{"name": "lookup_order", "ms": 0.3, "status": "ok"}]},
        )
        for i in range(n)
    ]


def throughput(url: str, n: int) -> tuple[float, int]:
    store = open_store(url)
    store.create_slot("support", SEED_PROMPT)
    traces = make_traces(n)
    rec = Recorder(store, batch_size=512)
    before = store.count_traces("support")
    t0 = time.perf_counter()
    for tr in traces:
        rec.submit(tr)
    assert rec.flush(600), rec.stats()
    dt = time.perf_counter() - t0
    stats = rec.close()
    assert stats.dropped == 0 and store.count_traces("support") - before == n
    store.close()
    return n / dt, stats.spooled


def pg_url() -> tuple[str | None, object | None, str]:
    url = os.environ.get("DIFFPROMPT_TEST_PG_URL")
    if url:
        return url, None, "DIFFPROMPT_TEST_PG_URL"
    try:
        from tests.middleware.pgcluster import PgCluster

        why = PgCluster.unavailable()
        if why:
            return None, None, why
        cluster = PgCluster()
        cluster.init()
        return cluster.url, cluster, "private cluster (fsync=off)"
    except Exception as exc:
        return None, None, f"{type(exc).__name__}: {exc}"


def write_section(body: str) -> None:
    _results.write_section("## Middleware", body)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--traces", type=int, default=20000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        o = overhead(args.conversations, args.rounds, f"sqlite:///{d}/overhead.db")
        sqlite_tps, _ = throughput(f"sqlite:///{d}/tput.db", args.traces)
    url, cluster, pg_note = pg_url()
    pg_tps = None
    if url:
        try:
            pg_tps, _ = throughput(url, args.traces)
        finally:
            if cluster is not None:
                cluster.destroy()  # type: ignore[attr-defined]
    ok = lambda good: "yes" if good else "NO"  # noqa: E731
    base = o["unwrapped"]
    n_runs = args.conversations * args.rounds
    lines = [
        "## Middleware",
        "",
        f"`python bench/middleware.py` — {datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s) shared with other jobs, load average {os.getloadavg()[0]:.1f} at the end. "
        f"Support agent, {args.conversations} conversations x {args.rounds} rounds ({n_runs} paired runs "
        "per variant, 2-4 model calls each), no-latency scripted model, SQLite store + recorder, same "
        "process. Each round runs every conversation through every variant back to back in a shuffled "
        "order; added latency per model call = (variant run - unwrapped run of the same conversation "
        "and round) / model calls, so load drifts cancel. CPU = the calling thread's CPU time "
        "(`time.thread_time`, immune to being descheduled). Hook time = time inside the middleware's "
        "own hooks, model/tool handlers excluded.",
        "",
        f"Unwrapped agent: p50 {base['p50']:.3f} ms, p99 {base['p99']:.3f} ms wall per model call "
        f"(CPU p50 {base['cpu_p50']:.3f} ms).",
        "",
        "| variant | added p50 | added p99 | added mean | added CPU p50 | p50 ratio | own hooks / call "
        "| goal p50 <= 0.5 ms, p99 <= 2 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in ("wrapped", "wrapped, end_node=False", "no-op middleware, same hooks"):
        v = o[name]
        goal = ok(v["p50"] <= 0.5 and v["p99"] <= 2.0) if name.startswith("wrapped") else "(framework cost)"
        hooks = f"{v['hooks']:.3f} ms" if v["hooks"] == v["hooks"] else "—"
        lines.append(
            f"| {name} | {v['p50']:.3f} ms | {v['p99']:.3f} ms | {v['mean']:.3f} ms | {v['cpu_p50']:.3f} ms "
            f"| {(base['p50'] + v['p50']) / base['p50']:.2f}x | {hooks} | {goal} |"
        )
    lines += [
        "",
        "`wrapped` is the default (`end_node=True`: the trace is finished in an `after_agent` node, exact "
        "for any agent, also ones whose `after_model` hooks loop back to the model); "
        "`end_node=False` finishes it at the model's final answer, without that graph node.",
        "",
        "| recorder | throughput | goal | met |",
        "|---|---|---|---|",
        f"| → SQLite ({args.traces} traces, batch 512) | {sqlite_tps:,.0f} traces/s | >= 2,000/s "
        f"| {ok(sqlite_tps >= 2000)} |",
        (
            f"| → PostgreSQL ({pg_note}) | {pg_tps:,.0f} traces/s | | |"
            if pg_tps is not None
            else f"| → PostgreSQL | skipped: {pg_note} | | |"
        ),
        "",
    ]
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        write_section(body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
