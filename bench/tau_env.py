"""τ environment core: load, fresh DB, DB hash, tool steps, gold replay throughput.

Baselines in the same process: ``copy.deepcopy`` for the fresh DB and ``sha256(str(canon(db)))``
(the reference hash) for ``db_hash``. Needs the official data (``../shared/taubench`` or
``DIFFPROMPT_TAU_DATA``). Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import copy
import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _results

from tau_envs.domain import load_domain
from tau_envs.gold import check_gold, load_hashes
from tau_envs.hashing import canon, db_hash

HEADING = "## tau_env"
DATA = Path(os.environ.get("DIFFPROMPT_TAU_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "taubench"))


def per_call(fn: Callable[[], object], n: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main() -> None:
    if not (DATA / "airline" / "tasks_test.json").is_file():
        sys.exit(f"official τ-bench data not found at {DATA} (set DIFFPROMPT_TAU_DATA)")
    lines = [
        "`python bench/tau_env.py` — per-call costs of the episode hot path (official DBs; "
        "ratios vs a same-process baseline).",
        "",
        "| domain | load_domain s | fresh_db ms | deepcopy ms | ratio | db_hash ms (1 record changed) | "
        "reference hash ms | ratio | gold replay tasks/s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    cases = (("airline", "test", "gold_hashes_test_open.json"), ("retail", "dev", "gold_hashes_dev.json"))
    for name, split, hashes in cases:
        t = time.perf_counter()
        domain = load_domain(name, DATA, split=split)
        load_s = time.perf_counter() - t
        fresh = per_call(domain.fresh_db, 10)
        base = domain.fresh_db()
        deep = per_call(lambda base=base: copy.deepcopy(base), 3)  # type: ignore[misc]
        db = domain.fresh_db()
        db_hash(db)
        next(iter(db["users"].values()))["email"] = "changed@example.com"
        ours = per_call(lambda db=db: db_hash(db), 10)  # type: ignore[misc]
        ref = per_call(lambda db=db: hashlib.sha256(str(canon(db)).encode()).hexdigest(), 3)  # type: ignore[misc]
        expected = load_hashes(DATA / name / hashes)
        t = time.perf_counter()
        report = check_gold(domain, expected)
        gold_s = time.perf_counter() - t
        assert report.ok, f"{name}: matched {report.matched}/{report.compared}"
        lines.append(
            f"| {name} | {load_s:.2f} | {fresh * 1e3:.1f} | {deep * 1e3:.1f} | {deep / fresh:.1f}x | "
            f"{ours * 1e3:.1f} | {ref * 1e3:.1f} | {ref / ours:.1f}x | {len(report.results) / gold_s:.1f} |"
        )
    load = os.getloadavg()[0]
    lines += ["", f"Shared 2-core machine, 1-min load average {load:.1f} at the end (lower bounds)."]
    write_section(lines)
    print("\n".join(lines))


def write_section(lines: list[str]) -> None:
    _results.write_section(HEADING, lines)


if __name__ == "__main__":
    main()
