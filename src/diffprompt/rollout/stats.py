"""Always-valid confidence sequences for live metrics, and the canary decision: pure, no I/O.

Each arm's running mean gets a two-sided *normal-mixture confidence sequence* (Robbins; Howard,
Ramdas, McAuliffe & Sekhon 2021, eq. (3.7)): with ``S_n`` the centred sum of ``n`` observations of
standard deviation (or sub-Gaussian scale) ``sd``, mixing over the exponential supermartingales
``exp(λS_n − λ²·n·sd²/2)`` with ``λ ~ N(0, 1/ρ)`` and applying Ville's inequality gives

    P( exists n: |mean_n − μ| >= sd · sqrt((n + ρ)·log((n + ρ) / (ρ·α²))) / n ) <= α.

The guarantee holds at every n simultaneously, so the monitor may look after every new thread.
Rewards, ratings and error flags lie in [0, 1], hence are 1/2-sub-Gaussian: with ``sd = 1/2`` the
sequence is exact (non-asymptotic). Latency, tokens and cost are unbounded: they use the running
sample standard deviation, which makes the sequence *asymptotically* valid (Waudby-Smith et al.
2021, "Time-uniform central limit theory") — the same boundary with a plug-in scale.

``ρ`` (in units of observations) is tuned so that the boundary is tightest at ``tune_n``; any
``ρ > 0`` is valid. The difference of two arms is bounded by combining each arm's sequence at
level ``α/2`` (a union bound), so ``P(the difference's interval ever misses the truth) <= α``.

Every function works elementwise on numpy arrays too, so the simulation (``bench/rollout.py``)
evaluates exactly this code after every simulated thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

RolloutKind = Literal["wait", "promote", "rollback", "expire"]
KINDS: tuple[RolloutKind, ...] = ("wait", "promote", "rollback", "expire")
WAIT, PROMOTE, ROLLBACK, EXPIRE = 0, 1, 2, 3

Array = NDArray[np.float64]


@lru_cache(maxsize=64)
def rho_ratio(alpha: float) -> float:
    """The ``r = ρ/n`` that minimises the two-sided boundary at ``n``: root of log((1+r)/(rα²)) = 1/r."""
    lo, hi = 1e-8, 1e3  # g(r) = log((1+r)/(r α²)) − 1/r is increasing in r on (0, ∞) up to its root
    for _ in range(200):
        mid = math.sqrt(lo * hi)
        g = math.log((1 + mid) / (mid * alpha * alpha)) - 1 / mid
        lo, hi = (mid, hi) if g < 0 else (lo, mid)
    return math.sqrt(lo * hi)


def unit_radius(n: ArrayLike, alpha: float, tune_n: float) -> Array:
    """Half-width of the sequence for a mean of ``n`` observations of unit scale (inf at n = 0)."""
    nn = np.asarray(n, dtype=np.float64)
    rho = rho_ratio(alpha) * float(tune_n)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sqrt((nn + rho) * np.log((nn + rho) / (rho * alpha * alpha))) / nn
    return np.where(nn > 0, r, np.inf)


def arm_bounds(
    n: ArrayLike,
    total: ArrayLike,
    total_sq: ArrayLike | None,
    *,
    alpha: float,
    tune_n: float,
    table: Array | None = None,
) -> tuple[Array, Array, Array]:
    """(mean, lo, hi) of an arm from its count and sums.

    ``total_sq is None``: values lie in [0, 1] (exact sequence with scale 1/2, bounds clipped to
    [0, 1]); otherwise the scale is the running sample standard deviation (asymptotic sequence).
    ``table``: ``unit_radius(arange(N + 1), alpha, tune_n)`` precomputed, for integer counts <= N.
    """
    nn = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(nn > 0, np.asarray(total, dtype=np.float64) / nn, np.nan)
        if total_sq is None:
            sd: Array | float = 0.5
        else:
            var = np.asarray(total_sq, dtype=np.float64) / nn - mean * mean
            sd = np.sqrt(np.maximum(np.nan_to_num(var), 0.0))
    with np.errstate(invalid="ignore"):
        unit = table[np.asarray(n, dtype=np.int64)] if table is not None else unit_radius(nn, alpha, tune_n)
        rad = np.asarray(sd * unit, dtype=np.float64)
    rad = np.where(np.isnan(rad), np.inf, rad)  # n = 0 with a zero scale
    lo, hi = mean - rad, mean + rad
    if total_sq is None:
        lo, hi = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
    return mean, np.where(nn > 0, lo, -np.inf), np.where(nn > 0, hi, np.inf)


def decide_codes(
    *,
    ready: ArrayLike,
    reward_lo: ArrayLike,
    reward_hi: ArrayLike,
    breach: ArrayLike,
    expired: ArrayLike,
    min_gain: float,
) -> NDArray[np.int64]:
    """The decision at each look (``WAIT``/``PROMOTE``/``ROLLBACK``/``EXPIRE``).

    A guardrail breach rolls back even a winning canary; a significant win (the difference's lower
    bound above ``min_gain``) promotes; a significant loss (its upper bound below 0) rolls back;
    otherwise an expired canary ends with the incumbent kept, and a live one waits. Nothing is
    decided before both arms are ``ready`` (at least ``min_threads`` each); that only delays stops
    and so keeps the guarantee.
    """
    rd = np.asarray(ready, dtype=bool)
    code = np.full(rd.shape, WAIT, dtype=np.int64)
    code[rd & (np.asarray(reward_lo) > min_gain)] = PROMOTE
    code[rd & (np.asarray(reward_hi) < 0.0)] = ROLLBACK
    code[rd & np.asarray(breach, dtype=bool)] = ROLLBACK
    code[(code == WAIT) & np.asarray(expired, dtype=bool)] = EXPIRE
    return code


# ------------------------------------------------------------------------------- scalar values
@dataclass(frozen=True, kw_only=True, slots=True)
class Interval:
    """One arm's running mean and its always-valid interval."""

    n: int
    mean: float | None
    lo: float | None
    hi: float | None


@dataclass(frozen=True, kw_only=True, slots=True)
class ArmData:
    """One arm's live observations, oldest first (built from traces by the monitor).

    ``rewards`` holds only scored threads (reward, else judge, else rating, in [0, 1]); the
    guardrail series hold every thread.
    """

    rewards: tuple[float, ...] = ()
    errors: tuple[float, ...] = ()
    latency_ms: tuple[float, ...] = ()
    tokens: tuple[float, ...] = ()
    cost_usd: tuple[float, ...] = ()

    @property
    def threads(self) -> int:
        return len(self.errors)

    def series(self, metric: str) -> tuple[float, ...]:
        return {
            "reward": self.rewards,
            "error_rate": self.errors,
            "latency_ms": self.latency_ms,
            "tokens": self.tokens,
            "cost_usd": self.cost_usd,
        }[metric]


@dataclass(frozen=True, kw_only=True, slots=True)
class MetricTest:
    """Canary vs incumbent on one metric: each arm's interval and the difference's bounds.

    For the reward the difference is ``canary − incumbent``; for a guardrail it is the excess
    ``canary − incumbent − tolerance`` (absolute) or ``canary − (1 + tolerance)·incumbent``
    (relative), and ``breach`` means its lower bound is above 0.
    """

    metric: str
    canary: Interval
    incumbent: Interval
    estimate: float | None
    lo: float | None
    hi: float | None
    alpha: float
    tolerance: float = 0.0
    relative: bool = False
    breach: bool = False
    bounded: bool = True


@dataclass(frozen=True, kw_only=True, slots=True)
class CanaryStats:
    reward: MetricTest
    guardrails: tuple[MetricTest, ...]
    threads_canary: int
    threads_incumbent: int
    elapsed_hours: float


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutDecision:
    """The monitor's verdict on a canary, with its statistics and human-readable reasons."""

    kind: RolloutKind
    reasons: tuple[str, ...]
    stats: CanaryStats

    def as_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"kind": self.kind, "reasons": list(self.reasons), "stats": asdict(self.stats)}


def _f(x: Any) -> float | None:
    v = float(np.asarray(x).reshape(-1)[0])
    return round(v, 6) if math.isfinite(v) else None


def _interval(values: tuple[float, ...], *, bounded: bool, alpha: float, tune_n: float) -> Interval:
    a = np.asarray(values, dtype=np.float64)
    sq = None if bounded else float((a * a).sum())
    mean, lo, hi = arm_bounds(len(a), float(a.sum()), sq, alpha=alpha, tune_n=tune_n)
    return Interval(n=len(a), mean=_f(mean) if len(a) else None, lo=_f(lo), hi=_f(hi))


def metric_test(
    metric: str,
    canary: tuple[float, ...],
    incumbent: tuple[float, ...],
    *,
    alpha: float,
    tune_n: float,
    tolerance: float = 0.0,
    relative: bool = False,
    guard: bool = False,
) -> MetricTest:
    """Compare two arms on one metric (each arm's sequence at ``alpha/2``)."""
    bounded = metric in ("reward", "error_rate")
    c = _interval(canary, bounded=bounded, alpha=alpha / 2, tune_n=tune_n)
    i = _interval(incumbent, bounded=bounded, alpha=alpha / 2, tune_n=tune_n)
    if c.mean is None or i.mean is None:
        return MetricTest(
            metric=metric,
            canary=c,
            incumbent=i,
            estimate=None,
            lo=None,
            hi=None,
            alpha=alpha,
            tolerance=tolerance,
            relative=relative,
            bounded=bounded,
        )
    k = 1.0 + tolerance if relative else 1.0
    off = 0.0 if relative or not guard else tolerance
    c_lo, c_hi = _nz(c.lo, -math.inf), _nz(c.hi, math.inf)
    i_lo, i_hi = _nz(i.lo, -math.inf), _nz(i.hi, math.inf)
    est = c.mean - k * i.mean - off
    lo, hi = c_lo - k * i_hi - off, c_hi - k * i_lo - off
    return MetricTest(
        metric=metric,
        canary=c,
        incumbent=i,
        estimate=round(est, 6),
        lo=round(lo, 6) if math.isfinite(lo) else None,
        hi=round(hi, 6) if math.isfinite(hi) else None,
        alpha=alpha,
        tolerance=tolerance,
        relative=relative,
        breach=guard and math.isfinite(lo) and lo > 0.0,
        bounded=bounded,
    )


def _nz(v: float | None, default: float) -> float:
    return default if v is None else v


def evaluate(
    canary: ArmData,
    incumbent: ArmData,
    *,
    alpha: float,
    alpha_guard: float,
    tune_n: int,
    min_threads: int,
    max_threads: int,
    max_hours: float,
    min_gain: float,
    guardrails: tuple[tuple[str, float, bool], ...],
    elapsed_hours: float,
) -> RolloutDecision:
    """The decision now, from both arms' observations so far (see ``decide_codes``).

    ``guardrails``: (metric, tolerance, relative) triples. ``max_threads`` counts canary threads.
    """
    reward = metric_test("reward", canary.rewards, incumbent.rewards, alpha=alpha, tune_n=tune_n)
    guards = tuple(
        metric_test(
            m,
            canary.series(m),
            incumbent.series(m),
            alpha=alpha_guard,
            tune_n=tune_n,
            tolerance=tol,
            relative=rel,
            guard=True,
        )
        for m, tol, rel in guardrails
    )
    ready = reward.canary.n >= min_threads and reward.incumbent.n >= min_threads
    guard_ready = canary.threads >= min_threads and incumbent.threads >= min_threads
    breached = [g for g in guards if g.breach and guard_ready]
    expired = canary.threads >= max_threads or elapsed_hours >= max_hours
    code = int(
        decide_codes(
            ready=[ready or bool(breached)],
            reward_lo=[_nz(reward.lo, -math.inf) if ready else -math.inf],
            reward_hi=[_nz(reward.hi, math.inf) if ready else math.inf],
            breach=[bool(breached)],
            expired=[expired],
            min_gain=min_gain,
        )[0]
    )
    stats = CanaryStats(
        reward=reward,
        guardrails=guards,
        threads_canary=canary.threads,
        threads_incumbent=incumbent.threads,
        elapsed_hours=round(elapsed_hours, 4),
    )
    return RolloutDecision(
        kind=KINDS[code], reasons=_reasons(KINDS[code], stats, breached, ready, min_threads), stats=stats
    )


def _reasons(
    kind: RolloutKind, st: CanaryStats, breached: list[MetricTest], ready: bool, min_threads: int
) -> tuple[str, ...]:
    r = st.reward
    conf = f"always-valid {100 * (1 - r.alpha):.0f}%"
    if r.estimate is None:
        diff = "no scored threads in one arm yet"
    else:
        diff = (
            f"reward {r.canary.mean:.3f} vs {r.incumbent.mean:.3f}, difference {r.estimate:+.3f} "
            f"({_fmt(r.lo)} to {_fmt(r.hi)}, {conf}) over {r.canary.n} vs {r.incumbent.n} scored threads"
        )
    out = [diff]
    for g in breached:
        unit = f"+{100 * g.tolerance:.0f}%" if g.relative else f"+{g.tolerance:g}"
        out.append(
            f"guardrail {g.metric} breached: canary {g.canary.mean:g} vs incumbent "
            f"{g.incumbent.mean:g} (tolerance {unit}, excess lower bound {_fmt(g.lo)})"
        )
    if kind == "promote":
        out.insert(0, "canary wins significantly")
    elif kind == "rollback" and not breached:
        out.insert(0, "canary loses significantly")
    elif kind == "rollback":
        out.insert(0, "a guardrail is breached")
    elif kind == "expire":
        out.insert(0, "maximum duration reached undecided; the incumbent stays")
    elif not ready:
        out.insert(0, f"waiting for {min_threads} scored threads per arm")
    else:
        out.insert(0, "no significant difference yet")
    return tuple(out)


def _fmt(v: float | None) -> str:
    return "-inf" if v is None else f"{v:+.3f}"


def cumulative_path(
    events: list[tuple[bool, float]], *, alpha: float, tune_n: int, points: int = 40
) -> list[dict[str, Any]]:
    """Per-arm running means with their intervals over time, at up to ``points`` evenly spaced looks.

    ``events``: (is_canary, reward) in arrival order. Each arm's interval is at ``alpha/2`` (the
    ones the reward test combines).
    """
    if not events:
        return []
    is_c = np.asarray([e[0] for e in events], dtype=bool)
    x = np.asarray([e[1] for e in events], dtype=np.float64)
    n_c, n_i = np.cumsum(is_c), np.cumsum(~is_c)
    s_c, s_i = np.cumsum(np.where(is_c, x, 0.0)), np.cumsum(np.where(is_c, 0.0, x))
    mc, lc, hc = arm_bounds(n_c, s_c, None, alpha=alpha / 2, tune_n=tune_n)
    mi, li, hi = arm_bounds(n_i, s_i, None, alpha=alpha / 2, tune_n=tune_n)
    idx = sorted({round(float(k)) for k in np.linspace(0, len(events) - 1, min(points, len(events)))})
    return [
        {
            "t": k + 1,
            "canary": {"n": int(n_c[k]), "mean": _f(mc[k]), "lo": _f(lc[k]), "hi": _f(hc[k])},
            "incumbent": {"n": int(n_i[k]), "mean": _f(mi[k]), "lo": _f(li[k]), "hi": _f(hi[k])},
        }
        for k in idx
    ]
