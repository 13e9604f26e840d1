"""Simulated canaries and drifts with known rates: the evidence behind the rollout's error rates.

Pure and seeded (numpy ``Generator``): every simulated thread goes through the same functions the
monitor uses (``stats.arm_bounds``, ``stats.decide_codes``, ``drift.cusum_log``), evaluated after
every thread. Used by ``tests/rollout`` (fewer runs) and ``bench/rollout.py`` (1,000 runs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from diffprompt.rollout.config import DriftConfig, RolloutConfig
from diffprompt.rollout.drift import baseline_level, bet, cusum_log
from diffprompt.rollout.stats import EXPIRE, PROMOTE, ROLLBACK, WAIT, arm_bounds, decide_codes, unit_radius


@dataclass(frozen=True, kw_only=True, slots=True)
class CanaryScenario:
    """Live traffic with known rates.

    Bernoulli rewards per arm, Bernoulli errors, log-normal latency (the same per arm unless
    given), a hashed ``share`` of threads on the canary.
    """

    incumbent: float
    canary: float
    share: float = 0.5
    error_rate: float = 0.02
    canary_error_rate: float | None = None
    latency_ms: float = 800.0
    canary_latency_ms: float | None = None
    latency_sigma: float = 0.5


@dataclass(frozen=True, kw_only=True, slots=True)
class CanaryOutcome:
    runs: int
    promoted: int
    rolled_back: int
    expired: int
    waiting: int
    median_threads: float | None  # total threads (both arms) at the decision, over decided runs
    median_canary_threads: float | None
    p90_threads: float | None

    def rate(self, kind: str) -> float:
        return {"promote": self.promoted, "rollback": self.rolled_back, "expire": self.expired, "wait": self.waiting}[
            kind
        ] / self.runs


def simulate_canaries(
    scenario: CanaryScenario, cfg: RolloutConfig, *, runs: int, seed: int, chunk: int = 50
) -> CanaryOutcome:
    """``runs`` independent canaries, each watched after every thread until decided or expired."""
    rng = np.random.default_rng(seed)
    horizon = int(np.ceil(cfg.max_threads / scenario.share * 1.15)) + 50
    guards = {g.metric: g for g in cfg.guardrails}
    codes, at, at_c = [], [], []
    done = 0
    while done < runs:
        r = min(chunk, runs - done)
        done += r
        c, t, tc = _chunk(rng, scenario, cfg, guards, r, horizon)
        codes.append(c)
        at.append(t)
        at_c.append(tc)
    code, t_all, tc_all = np.concatenate(codes), np.concatenate(at), np.concatenate(at_c)
    decided = (code == PROMOTE) | (code == ROLLBACK)

    def med(v: np.ndarray, q: float = 50) -> float | None:
        return float(np.percentile(v, q)) if v.size else None

    return CanaryOutcome(
        runs=runs,
        promoted=int((code == PROMOTE).sum()),
        rolled_back=int((code == ROLLBACK).sum()),
        expired=int((code == EXPIRE).sum()),
        waiting=int((code == WAIT).sum()),
        median_threads=med(t_all[decided]),
        median_canary_threads=med(tc_all[decided]),
        p90_threads=med(t_all[decided], 90),
    )


BLOCK = 4096  # threads simulated at a time (memory: runs x BLOCK per array)


def _chunk(
    rng: np.random.Generator, sc: CanaryScenario, cfg: RolloutConfig, guards: dict, r: int, horizon: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Watch ``r`` canaries in blocks of threads, carrying each arm's sums; stop once all decided."""
    tab = unit_radius(np.arange(horizon + 1), cfg.alpha / 2, cfg.tune_threads)
    tab_g = unit_radius(np.arange(horizon + 1), cfg.alpha_guard / 2, cfg.tune_threads)
    code = np.full(r, WAIT, dtype=np.int64)
    at, at_c = np.full(r, horizon), np.zeros(r, dtype=np.int64)
    carry: dict[str, np.ndarray] = {}
    t0 = 0
    while t0 < horizon and (code == WAIT).any():
        b = min(BLOCK, horizon - t0)
        block, n_c = _block(rng, sc, cfg, guards, r, b, carry, tab, tab_g)
        stop = (block != WAIT) & (code == WAIT)[:, None]
        rows = np.nonzero(stop.any(axis=1))[0]
        first = stop.argmax(axis=1)[rows]
        code[rows], at[rows], at_c[rows] = block[rows, first], t0 + first + 1, n_c[rows, first]
        t0 += b
    return code, at, at_c


def _cum(carry: dict[str, np.ndarray], key: str, x: np.ndarray) -> np.ndarray:
    """Running sums across blocks: this block's cumulative sums plus the previous blocks' total."""
    out = np.cumsum(x, axis=1) + carry.get(key, np.zeros((x.shape[0], 1)))
    carry[key] = out[:, -1:]
    return out


def _block(
    rng: np.random.Generator,
    sc: CanaryScenario,
    cfg: RolloutConfig,
    guards: dict,
    r: int,
    b: int,
    carry: dict[str, np.ndarray],
    tab: np.ndarray,
    tab_g: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    arm = rng.random((r, b)) < sc.share  # True: canary
    reward = (rng.random((r, b)) < np.where(arm, sc.canary, sc.incumbent)).astype(np.float64)
    n_c, n_i = _cum(carry, "n_c", arm.astype(np.float64)), _cum(carry, "n_i", (~arm).astype(np.float64))
    a, tn = cfg.alpha / 2, cfg.tune_threads
    _, lc, hc = arm_bounds(n_c, _cum(carry, "r_c", reward * arm), None, alpha=a, tune_n=tn, table=tab)
    _, li, hi = arm_bounds(n_i, _cum(carry, "r_i", reward * ~arm), None, alpha=a, tune_n=tn, table=tab)
    breach = np.zeros((r, b), dtype=bool)
    ag = cfg.alpha_guard / 2
    if "error_rate" in guards:
        e_c = sc.error_rate if sc.canary_error_rate is None else sc.canary_error_rate
        err = (rng.random((r, b)) < np.where(arm, e_c, sc.error_rate)).astype(np.float64)
        _, elc, _ = arm_bounds(n_c, _cum(carry, "e_c", err * arm), None, alpha=ag, tune_n=tn, table=tab_g)
        _, _, ehi = arm_bounds(n_i, _cum(carry, "e_i", err * ~arm), None, alpha=ag, tune_n=tn, table=tab_g)
        breach |= elc - ehi - guards["error_rate"].tolerance > 0
    if "latency_ms" in guards:
        med_c = sc.latency_ms if sc.canary_latency_ms is None else sc.canary_latency_ms
        lat = np.exp(np.log(np.where(arm, med_c, sc.latency_ms)) + sc.latency_sigma * rng.standard_normal((r, b)))
        s_c, q_c = _cum(carry, "l_c", lat * arm), _cum(carry, "q_c", lat * lat * arm)
        s_i, q_i = _cum(carry, "l_i", lat * ~arm), _cum(carry, "q_i", lat * lat * ~arm)
        _, llc, _ = arm_bounds(n_c, s_c, q_c, alpha=ag, tune_n=tn, table=tab_g)
        _, _, lhi = arm_bounds(n_i, s_i, q_i, alpha=ag, tune_n=tn, table=tab_g)
        breach |= llc - (1 + guards["latency_ms"].tolerance) * lhi > 0
    ready = (n_c >= cfg.min_threads) & (n_i >= cfg.min_threads)
    code = decide_codes(
        ready=ready,
        reward_lo=lc - hi,
        reward_hi=hc - li,
        breach=breach & ready,
        expired=n_c >= cfg.max_threads,
        min_gain=cfg.min_gain,
    )
    return code, n_c.astype(np.int64)


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftOutcome:
    runs: int
    traces_per_run: int
    false_alarms: int  # runs with an alarm before the change (or at all, without a change)
    false_alarms_per_10k: float
    detected: int
    median_delay: float | None  # threads after the change until the alarm, over detected runs
    p90_delay: float | None


def simulate_drift(
    cfg: DriftConfig,
    *,
    rate: float,
    after: float | None,
    change_at: int,
    traces: int,
    runs: int,
    seed: int,
    tune_n: int = 500,
) -> DriftOutcome:
    """Drift runs with a known change.

    A baseline of ``cfg.baseline_threads`` threads at ``rate``, then ``traces`` watched threads
    whose rate becomes ``after`` from thread ``change_at`` on (``after=None``: no change).
    """
    rng = np.random.default_rng(seed)
    base = (rng.random((runs, cfg.baseline_threads)) < rate).astype(np.float64)
    p = np.full(traces, rate)
    if after is not None:
        p[change_at:] = after
    x = (rng.random((runs, traces)) < p).astype(np.float64)
    levels = np.array([baseline_level(b, alpha=cfg.alpha_baseline, tune_n=tune_n) for b in base])
    lams = np.array([bet(m, cfg.drop) for m in levels])
    path = cusum_log(x, levels, lams)
    alarm = path >= np.log(cfg.arl)
    has = alarm.any(axis=1)
    first = np.where(has, alarm.argmax(axis=1), traces)
    cut = change_at if after is not None else traces
    false = has & (first < cut)
    watched = np.minimum(first + 1, cut).sum()  # pre-change threads watched, over all runs
    det = has & (first >= cut) if after is not None else np.zeros(runs, dtype=bool)
    delays = (first[det] - cut + 1).astype(np.float64)
    return DriftOutcome(
        runs=runs,
        traces_per_run=traces,
        false_alarms=int(false.sum()),
        false_alarms_per_10k=float(false.sum() / max(watched, 1) * 10_000),
        detected=int(det.sum()),
        median_delay=float(np.median(delays)) if delays.size else None,
        p90_delay=float(np.percentile(delays, 90)) if delays.size else None,
    )
