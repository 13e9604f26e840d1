"""Import cost of the runtime: ``import diffprompt`` and ``diffprompt --help`` (``python -X importtime``).

Each is run ``--repeat`` times in a fresh interpreter; the total is the sum of the top-level
cumulative import times (``site`` excluded), the median over the runs is reported, together with
whether torch was imported. ``python bench/importtime.py`` writes the "importtime" section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

import _results

HEADING = "## importtime"
CASES = {
    "import diffprompt": "import diffprompt",
    "diffprompt --help": (
        "import sys\nsys.argv = ['diffprompt', '--help']\nfrom diffprompt.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    ),
}
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def measure(code: str) -> tuple[float, bool, int]:
    """(total ms of top-level imports, torch imported, modules imported) of ``code`` in a fresh process."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True,
                          check=True, timeout=300)
    total_us, torch, n = 0, False, 0
    for line in proc.stderr.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        n += 1
        name, depth = m.group(4), len(m.group(3))
        torch |= name == "torch" or name.startswith("torch.")
        if depth == 1 and name != "site":
            total_us += int(m.group(2))
    return total_us / 1000, torch, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rows = []
    for label, code in CASES.items():
        runs = [measure(code) for _ in range(args.repeat)]
        ms = statistics.median(r[0] for r in runs)
        rows.append(f"| `{label}` | {ms:.0f} | {runs[-1][2]} | {'yes' if any(r[1] for r in runs) else 'no'} |")
        print(rows[-1], flush=True)
    load = os.getloadavg()[0]
    write_section = _results.write_section
    write_section(HEADING, [
        f"`python -X importtime`, fresh interpreter, median of {args.repeat} runs; total = sum of the top-level "
        "cumulative import times (`site` excluded).",
        "",
        "| command | import ms | modules imported (incl. interpreter start-up) | torch imported |",
        "|---|---|---|---|",
        *rows,
        "",
        f"Shared 2-core machine, 1-min load average {load:.1f} at the end. `python bench/importtime.py` reproduces it.",
    ])


if __name__ == "__main__":
    main()
