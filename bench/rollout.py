"""Guarded rollout by simulation: 1,000 canaries per scenario with live rewards from known rates.

Every simulated thread is evaluated by the monitor's own decision code (``diffprompt.rollout``:
normal-mixture confidence sequences per arm, guardrails, ``decide_codes``) with the default
``RolloutConfig``; the drift trigger's CUSUM e-detector with the default ``DriftConfig``.
Rewards are Bernoulli; errors 2 % per thread in both arms; latency log-normal (median 800 ms).

    python bench/rollout.py [--runs 1000] [--no-write]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import _results

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from diffprompt.rollout.config import DriftConfig, RolloutConfig
from diffprompt.rollout.simulate import CanaryScenario, simulate_canaries, simulate_drift

HEADING = "## rollout (guarded canary + drift trigger, simulated)"

CANARIES = [
    # (label, scenario, what must hold)
    ("A/A 0.70 vs 0.70, share 50%", CanaryScenario(incumbent=0.7, canary=0.7, share=0.5), "wrong <= alpha"),
    ("A/A 0.70 vs 0.70, share 10%", CanaryScenario(incumbent=0.7, canary=0.7, share=0.1), "wrong <= alpha"),
    (
        "10 points worse 0.60 vs 0.70, share 50%",
        CanaryScenario(incumbent=0.7, canary=0.6, share=0.5),
        "rollback >= 95%",
    ),
    (
        "10 points worse 0.60 vs 0.70, share 10%",
        CanaryScenario(incumbent=0.7, canary=0.6, share=0.1),
        "rollback >= 95%",
    ),
    (
        "10 points better 0.80 vs 0.70, share 50%",
        CanaryScenario(incumbent=0.7, canary=0.8, share=0.5),
        "promote >= 80%",
    ),
    (
        "10 points better 0.80 vs 0.70, share 10%",
        CanaryScenario(incumbent=0.7, canary=0.8, share=0.1),
        "promote >= 80%",
    ),
    (
        "same reward, latency +50% (guardrail +25%)",
        CanaryScenario(incumbent=0.7, canary=0.7, share=0.5, canary_latency_ms=1200.0),
        "rollback >= 95%",
    ),
]


def _holds(rule: str, promote: float, rollback: float, alpha: float) -> bool:
    if rule == "wrong <= alpha":
        return promote + rollback <= alpha
    if rule == "rollback >= 95%":
        return rollback >= 0.95
    return promote >= 0.80


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cfg, dcfg = RolloutConfig(), DriftConfig()
    rows = []
    t_all = time.perf_counter()
    for i, (label, sc, rule) in enumerate(CANARIES):
        t0 = time.perf_counter()
        o = simulate_canaries(sc, cfg, runs=args.runs, seed=1000 + i)
        p, rb = o.rate("promote"), o.rate("rollback")
        ok = _holds(rule, p, rb, cfg.alpha)
        med = "—" if o.median_threads is None else f"{o.median_threads:.0f} ({o.median_canary_threads:.0f} on canary)"
        p90 = "—" if o.p90_threads is None else f"{o.p90_threads:.0f}"
        rows.append(
            f"| {label} | {p:.1%} | {rb:.1%} | {o.rate('expire'):.1%} | {med} | {p90} | {rule}: "
            f"{'**holds**' if ok else '**FAILS**'} |"
        )
        print(rows[-1], f"({time.perf_counter() - t0:.1f}s)", flush=True)
    drift_rows = []
    calm = simulate_drift(dcfg, rate=0.8, after=None, change_at=0, traces=10_000, runs=args.runs, seed=2000)
    drift_rows.append(
        f"| no change (0.80 throughout), 10,000 threads per run | {calm.false_alarms} of {calm.runs} runs | "
        f"{calm.false_alarms_per_10k:.3f} | — | — |"
    )
    for j, after in enumerate((0.7, 0.6, 0.5)):
        d = simulate_drift(dcfg, rate=0.8, after=after, change_at=2000, traces=8000, runs=args.runs, seed=2001 + j)
        med = "—" if d.median_delay is None else f"{d.median_delay:.0f}"
        p90 = "—" if d.p90_delay is None else f"{d.p90_delay:.0f}"
        drift_rows.append(
            f"| drop 0.80 → {after:.2f} at thread 2,000 (6,000 watched after) | {d.false_alarms} before the drop | "
            f"{d.false_alarms_per_10k:.3f} | {d.detected / d.runs:.1%} | {med} (p90 {p90}) |"
        )
    for r in drift_rows:
        print(r, flush=True)
    total = time.perf_counter() - t_all
    body = [
        f"`python bench/rollout.py` — {args.runs} simulated canaries per scenario, each evaluated after every "
        "thread by the monitor's own code (`diffprompt.rollout.stats`: per-arm normal-mixture confidence "
        "sequences, exact for [0, 1] rewards and error flags, asymptotic for latency; guardrails; the decision "
        f"rule). Default `RolloutConfig`: alpha {cfg.alpha}, alpha_guard {cfg.alpha_guard} per guardrail, "
        f"tuned for {cfg.tune_threads} threads per arm, min {cfg.min_threads} scored threads per arm, an "
        f"undecided canary ends after {cfg.max_threads:,} canary threads. Errors 2% per thread and log-normal "
        f"latency (median 800 ms) in both arms unless stated. Seeded; {total:.0f} s on a shared 2-core CPU.",
        "",
        "| scenario | promoted | rolled back | ended undecided | median threads to the decision | p90 | bound |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"Drift trigger (default `DriftConfig`: baseline {dcfg.baseline_threads} scored threads, level = lower "
        f"end of their {1 - dcfg.alpha_baseline:.0%} interval, CUSUM e-detector betting on a {dcfg.drop:.0%} "
        f"drop, alarm at {dcfg.arl:,.0f} = the guaranteed average run length between false alarms), "
        f"{args.runs} runs each:",
        "",
        "| scenario | false alarms | false alarms per 10,000 threads | detected | median delay (threads) |",
        "|---|---|---|---|---|",
        *drift_rows,
        "",
        "Reading: the A/A rows are the error rate of the whole canary test (reward test plus every guardrail) "
        "at unlimited looks; the bound is alpha. The confidence sequences are conservative (a union bound "
        "over the two arms, and sub-Gaussian scale 1/2 for rewards), so the real A/A rate is far below alpha "
        "and a decision takes more threads than a fixed-horizon test would — the price of looking after "
        "every thread. A 10% canary share needs about as many canary threads as a 50% share but five times "
        "as many threads in all.",
    ]
    if not args.no_write:
        _results.write_section(HEADING, body)


if __name__ == "__main__":
    main()
