"""Generator throughput: airline and retail worlds at 1k / 10k / 100k users; writes its section of bench/RESULTS.md."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import _results

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tau_envs.generate import timed_generate
from tau_envs.types import DOMAINS

SIZES = (1_000, 10_000, 100_000)


def main() -> None:
    rows = []
    for domain in DOMAINS:
        for n in SIZES:
            with tempfile.TemporaryDirectory() as d:
                secs = timed_generate(domain, seed=0, n_users=n, n_tasks=50, out_dir=Path(d))
                mb = sum(p.stat().st_size for p in Path(d).iterdir()) / 1e6
            rows.append(f"| {domain} | {n:,} | {secs:.1f} | {n / secs:,.0f} | {mb:.0f} |")
            print(rows[-1], flush=True)
    section = (
        "## tau_world (generated worlds)\n\n"
        "`python bench/tau_world.py` — seeded generation incl. 50+50+10 tasks with gold checked by the real "
        "tools, written to disk (2-core shared machine, "
        f"1-min load average {os.getloadavg()[0]:.1f} at the end).\n\n"
        "| domain | users | seconds | users/s | MB written |\n|---|---:|---:|---:|---:|\n"
        + "\n".join(rows)
        + "\n"
    )
    _results.write_section("## tau_world (generated worlds)", section)


if __name__ == "__main__":
    main()
