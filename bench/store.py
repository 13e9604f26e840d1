"""Store write throughput: ``add_traces`` batches of 1/64/256 realistic traces into SQLite and PostgreSQL.

Each trace is a 10-message tool-calling episode (~3 KB of JSON). Every batch is one transaction, as the
recorder writes them. PostgreSQL is measured when a server answers at DIFFPROMPT_BENCH_PG_URL (default
the CI server on 127.0.0.1:5432), in a fresh schema dropped afterwards. Also times the import of the
200-run τ-bench gpt-4o airline file when ../shared/taubench is present.

    python bench/store.py [--traces 3000] [--no-write]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import _results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from diffprompt.store import open_store
from diffprompt.store.importers import import_tau_historical
from diffprompt.types import Trace, Usage

HEADING = "## store"
PG_URL = os.environ.get(
    "DIFFPROMPT_BENCH_PG_URL", "postgresql+psycopg://diffprompt:diffprompt@127.0.0.1:5432/diffprompt"
)
TAU = (
    Path(__file__).resolve().parents[2] / "shared" / "taubench" / "airline" / "historical_gpt-4o-airline.json"
)


def make_trace(i: int, run: str) -> Trace:
    t0 = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(milliseconds=i)
    msgs: list[dict[str, object]] = [{"role": "user", "content": f"I need to change reservation {i:06d}."}]
    result = '{"flights": [{"flight_number": "HAT136", "date": "2024-05-20"}], ' * 4 + "}"
    for k in range(3):
        cid = f"call_{i}_{k}"
        fn = {"name": "get_reservation_details", "arguments": f'{{"reservation_id": "R{i}"}}'}
        call = {"id": cid, "type": "function", "function": fn}
        msgs.append({"role": "assistant", "content": None, "tool_calls": [call]})
        msgs.append({"role": "tool", "tool_call_id": cid, "name": fn["name"], "content": result})
    msgs.append({"role": "assistant", "content": "Your reservation has been updated. Anything else?"})
    msgs.append({"role": "user", "content": "No, thanks. ###STOP###"})
    msgs.append({"role": "assistant", "content": "Goodbye!"})
    return Trace(
        id=f"tr_{run}_{i}", slot="bench", version_id="pv_bench", thread_id=f"th_{run}_{i}",
        messages=tuple(msgs), started_at=t0, ended_at=t0 + timedelta(seconds=2), latency_ms=2000.0,
        usage=Usage(input_tokens=3000, output_tokens=200, cost_usd=0.01), model_calls=5, tool_calls=3,
        replay_key=f"tau:airline:test:{i % 50}", metadata={"bench": True, "i": i},
    )


def throughput(url: str, batch: int, n: int) -> float:
    store = open_store(url)
    run = uuid.uuid4().hex[:8]
    traces = [make_trace(i, run) for i in range(n)]
    store.add_traces([make_trace(-1, run)])  # warm the pool and statement cache
    before = store.count_traces("bench")
    t = time.perf_counter()
    for i in range(0, n, batch):
        store.add_traces(traces[i : i + batch])
    dt = time.perf_counter() - t
    assert store.count_traces("bench") == before + n
    store.close()
    return n / dt


def pg_schema() -> tuple[str, str] | None:
    try:
        import psycopg

        base = PG_URL.replace("postgresql+psycopg://", "postgresql://")
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, connect_timeout=2, autocommit=True) as c:
            c.execute(f'CREATE SCHEMA "{schema}"')
        return f"{PG_URL}?options=-csearch_path%3D{schema}", schema
    except Exception as exc:
        print(f"PostgreSQL not reachable at {PG_URL} ({type(exc).__name__}); skipping it")
        return None


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.replace("postgresql+psycopg://", "postgresql://"), autocommit=True) as c:
        c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--traces", type=int, default=3000, help="traces per (backend, batch) for batch >= 64")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    lines = [
        "`add_traces` throughput (one transaction per batch; ~3 KB tool-calling traces; "
        "2-core shared machine, SQLite file on local disk, PostgreSQL 15 on 127.0.0.1).",
        "",
        "| backend | batch | traces | traces/s |",
        "|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as d:
        backends: list[tuple[str, str, str | None]] = [("SQLite (WAL)", f"sqlite:///{d}/bench.db", None)]
        pg = pg_schema()
        if pg:
            backends.append(("PostgreSQL", pg[0], pg[1]))
        try:
            for name, url, _ in backends:
                for batch in (1, 64, 256):
                    n = min(args.traces, 500) if batch == 1 else args.traces
                    rate = throughput(url, batch, n)
                    print(f"{name:<14} batch={batch:<4} n={n:<5} {rate:9.0f} traces/s")
                    lines.append(f"| {name} | {batch} | {n} | {rate:,.0f} |")
            if TAU.is_file():
                for name, url, _ in backends:
                    store = open_store(url)
                    t = time.perf_counter()
                    rep = import_tau_historical(store, TAU, f"airline_{uuid.uuid4().hex[:6]}")
                    dt = time.perf_counter() - t
                    store.close()
                    print(f"import {name}: {rep.traces_added} traces in {dt:.2f}s")
                    lines.append(
                        f"| {name}: import gpt-4o airline file (traces + rewards) | - | "
                        f"{rep.traces_added} | {rep.traces_added / dt:,.0f} |"
                    )
        finally:
            for _, _, schema in backends:
                if schema:
                    drop_schema(schema)
    load = os.getloadavg()[0]
    lines.append("")
    lines.append(
        f"Measured with 1-min load average {load:.1f} on {os.cpu_count()} cores (other work running "
        "concurrently), so these are lower bounds; `python bench/store.py` reproduces them."
    )
    if not args.no_write:
        write_section(lines)


def write_section(lines: list[str]) -> None:
    _results.write_section(HEADING, lines)


if __name__ == "__main__":
    main()
