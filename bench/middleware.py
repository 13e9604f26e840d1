"""Middleware overhead and recorder throughput.

    python bench/middleware.py [--conversations 300] [--traces 20000] [--no-write]

1. Overhead per model call: the support agent with a no-latency scripted model, unwrapped vs wrapped
   with PromptAdaptationMiddleware (SQLite store + recorder), same process, runs interleaved A/B.
   Per run we take wall time / model calls; the added latency is wrapped minus unwrapped at p50/p99.
2. Recorder sustained throughput: submit N realistic traces and time until ``flush`` returns, into
   SQLite and into PostgreSQL (``DIFFPROMPT_TEST_PG_URL``, else a private cluster if one can be
   started, else skipped).

Writes its table under "## Middleware" in bench/RESULTS.md (replacing only that section).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from langchain.agents.middleware import AgentMiddleware  # noqa: E402

from agents.support_agent import SEED_PROMPT, build_agent, requests, scripted_model  # noqa: E402
from diffprompt.middleware import PromptAdaptationMiddleware  # noqa: E402
from diffprompt.store import open_store  # noqa: E402
from diffprompt.store.recorder import Recorder  # noqa: E402
from diffprompt.types import Trace, Usage, new_id  # noqa: E402


class NoopMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """Same four hooks as PromptAdaptationMiddleware, doing nothing: LangChain/LangGraph's own cost."""

    def before_agent(self, state, runtime):  # type: ignore[no-untyped-def]
        return None

    def after_agent(self, state, runtime):  # type: ignore[no-untyped-def]
        return None

    def wrap_model_call(self, request, handler):  # type: ignore[no-untyped-def]
        return handler(request)

    def wrap_tool_call(self, request, handler):  # type: ignore[no-untyped-def]
        return handler(request)


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def overhead(n: int, db_url: str) -> dict[str, float]:
    store = open_store(db_url)
    store.create_slot("support", SEED_PROMPT)
    recorder = Recorder(store)
    mw = PromptAdaptationMiddleware("support", store, recorder=recorder)
    hook_s = [0.0]

    def timed(f):  # type: ignore[no-untyped-def]
        def g(*a, **k):  # type: ignore[no-untyped-def]
            t = time.perf_counter()
            try:
                return f(*a, **k)
            finally:
                hook_s[0] += time.perf_counter() - t

        return g

    for name in ("_begin", "_end", "_prepare", "_after_model", "_tool_rec", "_after_tool"):
        setattr(mw, name, timed(getattr(mw, name)))
    plain = build_agent(scripted_model())
    wrapped = build_agent(scripted_model(), [mw])
    noop = build_agent(scripted_model(), [NoopMiddleware()])  # the framework's cost of the same hooks
    texts = requests(n)
    base: list[float] = []
    wrap: list[float] = []
    frame: list[float] = []
    n_calls = 0
    for i, text in enumerate([*texts[:30], *texts]):  # the first 30 warm up
        inp = {"messages": [{"role": "user", "content": text}]}
        order = (plain, wrapped, noop) if i % 2 else (noop, wrapped, plain)
        for agent in order:
            cfg = {"configurable": {"thread_id": f"b-{i}-{id(agent)}"}}
            t0 = time.perf_counter()
            out = agent.invoke(inp, cfg)
            dt = (time.perf_counter() - t0) * 1000
            calls = sum(1 for m in out["messages"] if m.type == "ai")
            if i >= 30:
                (wrap if agent is wrapped else base if agent is plain else frame).append(dt / calls)
                if agent is wrapped:
                    n_calls += calls
        if i == 29:
            hook_s[0] = 0.0
    recorder.close(30)
    store.close()
    return {
        "base_p50": pct(base, 0.5),
        "base_p99": pct(base, 0.99),
        "wrap_p50": pct(wrap, 0.5),
        "wrap_p99": pct(wrap, 0.99),
        "add_p50": pct(wrap, 0.5) - pct(base, 0.5),
        "add_p99": pct(wrap, 0.99) - pct(base, 0.99),
        "mean_add": statistics.fmean(wrap) - statistics.fmean(base),
        "hooks_per_call": hook_s[0] * 1000 / max(1, n_calls),
        "noop_add_p50": pct(frame, 0.5) - pct(base, 0.5),
    }


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
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    head = "## Middleware"
    start = text.find(head)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        nxt = text.find("\n## ", start + len(head))
        text = text[:start] + body + (text[nxt + 1 :] if nxt >= 0 else "")
    path.write_text(text if text.endswith("\n") else text + "\n")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--conversations", type=int, default=300)
    ap.add_argument("--traces", type=int, default=20000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        o = overhead(args.conversations, f"sqlite:///{d}/overhead.db")
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
    lines = [
        "## Middleware",
        "",
        f"`python bench/middleware.py` — {datetime.now(UTC):%Y-%m-%d}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPU(s), load average {os.getloadavg()[0]:.1f} at the end of the run. "
        f"Support agent ({args.conversations} conversations, "
        "2-4 model calls each), no-latency scripted model, SQLite store + recorder, same process, A/B "
        "interleaved. Per-call time = run wall time / model calls.",
        "",
        "| metric | value | goal | met |",
        "|---|---|---|---|",
        f"| per model call, unwrapped p50 / p99 | {o['base_p50']:.3f} / {o['base_p99']:.3f} ms | | |",
        f"| per model call, wrapped p50 / p99 | {o['wrap_p50']:.3f} / {o['wrap_p99']:.3f} ms | | |",
        f"| added latency p50 | {o['add_p50']:.3f} ms | <= 0.5 ms | {ok(o['add_p50'] <= 0.5)} |",
        f"| added latency p99 | {o['add_p99']:.3f} ms | <= 2 ms | {ok(o['add_p99'] <= 2.0)} |",
        f"| added latency mean | {o['mean_add']:.3f} ms | | |",
        f"| added latency p50 relative to the unwrapped call | {100 * o['add_p50'] / o['base_p50']:.1f} % | | |",
        f"| added p50 of a no-op middleware with the same 4 hooks (framework cost) | {o['noop_add_p50']:.3f} ms "
        "| | |",
        f"| diffprompt's own hook time per model call (mean, inside the hooks) | {o['hooks_per_call']:.3f} ms "
        f"| <= 0.5 ms | {ok(o['hooks_per_call'] <= 0.5)} |",
        f"| recorder → SQLite ({args.traces} traces, batch 512) | {sqlite_tps:,.0f} traces/s | >= 2,000/s "
        f"| {ok(sqlite_tps >= 2000)} |",
        (
            f"| recorder → PostgreSQL ({pg_note}) | {pg_tps:,.0f} traces/s | | |"
            if pg_tps is not None
            else f"| recorder → PostgreSQL | skipped: {pg_note} | | |"
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
