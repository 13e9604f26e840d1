"""Drift of the active version's live success: a CUSUM e-detector, and target-model changes. Pure.

The earlier level ``m`` is a one-sided lower confidence bound on the baseline's mean, so a lucky
baseline does not make later, equally good traffic look like a drop. After the baseline every
scored thread ``x`` in [0, 1] multiplies a bet against "the mean is still >= m":

    L_t = 1 + λ·(m − x_t),   λ = δ / (m·(1 − m))  (the log-optimal bet against mean m − δ),

clipped so that ``L_t >= 1/2``. Under no drop ``E[L_t] <= 1``. The CUSUM e-detector
``M_t = max(M_{t−1}, 1)·L_t`` alarms at ``M_t >= arl``; since it never exceeds the Shiryaev–Roberts
statistic, whose ``R_t − t`` is a supermartingale, the average run length to a false alarm is at
least ``arl`` threads (Shin, Ramdas & Rinaldo 2022, "E-detectors"). Its log recursion is
``C_t = max(C_{t−1}, 0) + log L_t``, so a drop is detected about ``log(arl) / KL`` threads after it
starts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray


def bet(level: float, drop: float) -> float:
    """The bet ``λ`` against "mean >= level" for a drop of ``drop`` (0 when no drop is possible)."""
    if level <= 0.0:
        return 0.0
    m = min(level, 1.0 - 1e-9)
    return min(drop / (m * (1.0 - m)), 0.5 / (1.0 - m))


def baseline_level(values: Sequence[float], *, alpha: float, tune_n: int) -> float:
    """The earlier level: a one-sided (1 − alpha) lower confidence bound on the baseline's mean.

    The baseline is one sample of a fixed size, looked at once, so a fixed-n bound (normal
    approximation, ``mean − z·sd/√n``) is the right tool here, and tighter than a sequence. An
    unlucky baseline (probability alpha) sets the level slightly too high; the detector's bet still
    loses on average until the level exceeds the true mean by about ``λ·var/2``.
    """
    del tune_n  # kept for a uniform signature with the sequences
    a = np.asarray(values, dtype=np.float64)
    if a.size < 2:
        return 0.0
    z = NormalDist().inv_cdf(1.0 - alpha)
    return float(max(a.mean() - z * a.std(ddof=1) / math.sqrt(a.size), 0.0))


def cusum_log(x: ArrayLike, level: ArrayLike, lam: ArrayLike) -> NDArray[np.float64]:
    """The log detector ``C_t`` after each observation; ``x`` is (T,) or (R, T), one row per run."""
    xs = np.atleast_2d(np.asarray(x, dtype=np.float64))
    m = np.asarray(level, dtype=np.float64).reshape(-1, 1) if np.ndim(level) else float(level)  # type: ignore[arg-type]
    lm = np.asarray(lam, dtype=np.float64).reshape(-1, 1) if np.ndim(lam) else float(lam)  # type: ignore[arg-type]
    logl = np.log1p(lm * (m - xs))
    out = np.empty_like(logl)
    c = np.zeros(xs.shape[0])
    for t in range(xs.shape[1]):
        c = np.maximum(c, 0.0) + logl[:, t]
        out[:, t] = c
    return out if np.ndim(x) > 1 else out[0]


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftResult:
    """Whether the active version drifted, why, and the numbers behind it."""

    drifted: bool
    reason: str
    baseline_n: int
    baseline_mean: float | None
    level: float | None
    after_n: int
    after_mean: float | None
    detector: float  # the current detector value M_t (alarm at >= arl)
    peak: float
    alarm_at: int | None  # index into the post-baseline threads of the first alarm
    arl: float
    alarms: tuple[int, ...] = ()  # every alarm, the detector restarting after each
    model_change_at: int | None = None  # index into the threads of the latest model change
    model_before: str | None = None
    model_after: str | None = None

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def first_model_change(models: Sequence[str | None]) -> tuple[int, str, str] | None:
    """(index, before, after) of the first change between consecutive known models, or None."""
    changes = model_changes(models)
    return changes[0] if changes else None


def model_changes(models: Sequence[str | None]) -> list[tuple[int, str, str]]:
    """Every (index, before, after) where a known model differs from the previous known one."""
    out: list[tuple[int, str, str]] = []
    prev: str | None = None
    for i, m in enumerate(models):
        if m is None:
            continue
        if prev is not None and m != prev:
            out.append((i, prev, m))
        prev = m
    return out


def alarm_indices(x: Sequence[float], level: float, lam: float, arl: float) -> list[int]:
    """Every alarm of the detector over ``x``, restarting it (``C = 0``) after each alarm."""
    out, c, top = [], 0.0, math.log(arl)
    for t, v in enumerate(x):
        c = max(c, 0.0) + math.log1p(lam * (level - v))
        if c >= top:
            out.append(t)
            c = 0.0
    return out


def detect(
    rewards: Sequence[float],
    *,
    baseline_threads: int,
    alpha_baseline: float,
    drop: float,
    arl: float,
    tune_n: int,
    models: Sequence[str | None] = (),
) -> DriftResult:
    """Drift over one version's scored threads in arrival order (and their recorded models)."""
    changes = model_changes(models)
    change = changes[-1] if changes else None
    base, after = list(rewards[:baseline_threads]), list(rewards[baseline_threads:])
    bmean = sum(base) / len(base) if base else None
    amean = sum(after) / len(after) if after else None
    common: dict[str, Any] = {
        "baseline_n": len(base),
        "baseline_mean": None if bmean is None else round(bmean, 6),
        "after_n": len(after),
        "after_mean": None if amean is None else round(amean, 6),
        "arl": arl,
    }
    if change is not None:
        return DriftResult(
            drifted=True,
            reason=f"target model changed from {change[1]!r} to {change[2]!r}",
            level=None,
            detector=0.0,
            peak=0.0,
            alarm_at=None,
            model_before=change[1],
            model_after=change[2],
            model_change_at=change[0],
            **common,
        )
    if len(base) < baseline_threads:
        return DriftResult(
            drifted=False,
            reason=f"baseline has {len(base)} of {baseline_threads} scored threads",
            level=None,
            detector=0.0,
            peak=0.0,
            alarm_at=None,
            **common,
        )
    level = baseline_level(base, alpha=alpha_baseline, tune_n=tune_n)
    lam = bet(level, drop)
    path = cusum_log(after, level, lam) if after else np.zeros(0)
    hits = np.nonzero(path >= math.log(arl))[0]
    alarm = int(hits[0]) if hits.size else None
    alarms = tuple(alarm_indices(after, level, lam, arl)) if alarm is not None else ()
    cur = float(math.exp(max(path[-1], 0.0))) if path.size else 1.0
    peak = float(math.exp(max(float(path.max()), 0.0))) if path.size else 1.0
    if alarm is not None:
        reason = (
            f"live success dropped below its earlier level: baseline {bmean:.3f} (level {level:.3f}) "
            f"over {len(base)} threads, since then {amean:.3f} over {len(after)}; detector reached "
            f"{arl:g} after {alarm + 1} threads"
        )
    else:
        reason = f"no drift: detector {cur:.3g} (peak {peak:.3g}) below {arl:g}"
    return DriftResult(
        drifted=alarm is not None,
        reason=reason,
        level=round(level, 6),
        detector=round(cur, 6),
        peak=round(peak, 6),
        alarm_at=alarm,
        alarms=alarms,
        **common,
    )
