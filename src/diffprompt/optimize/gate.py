"""The promotion gate: a paired statistical comparison of candidate vs incumbent. Pure functions.

Input is one reward per case for each prompt, **paired** (same cases, same seeds, same order). With
k trials per case, pass the per-case means and ``trials=k``: the trials of one case share its task
and are not independent, so the unit of the test is the case, never the (case, trial) pair.

* Binary rewards (every value is 0 or 1), or per-case means of k binary trials, use the exact
  one-sided sign test on the cases whose two rewards differ (for binary rewards this is McNemar's
  exact test): ``b`` = cases where the candidate does better, ``c`` = cases where the incumbent does,
  ``p = P(X >= b)`` for ``X ~ Binomial(b + c, 1/2)``. Under the null that the two prompts are
  exchangeable on every case the per-case difference is symmetric about zero, so the test is exact
  and its false-promotion rate never exceeds ``alpha``.
* Continuous rewards use a seeded paired bootstrap of the mean difference: the one-sided p-value is
  the share of null-centred bootstrap means at least as large as the observed mean gain, and the
  reported CI is the percentile interval of the (uncentred) bootstrap means.

A candidate is promoted only if the test clears ``alpha``, the mean gain is at least ``min_gain``, no
guarded slice regresses by more than its bound, and prompt length / episode cost grow within limits.
Every failed condition adds a human-readable reason; ``GateDecision.stats`` keeps the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from diffprompt.errors import ConfigError, ValidationError
from diffprompt.types import GateDecision

TestKind = Literal["auto", "sign", "bootstrap"]


@dataclass(frozen=True, kw_only=True, slots=True)
class GateConfig:
    """Gate settings.

    ``slice_bounds`` maps a slice label (or ``"*"`` for every slice) to the largest allowed drop of
    that slice's mean reward (e.g. ``{"cancel": 0.1}``). Growth limits are ratios:
    ``max_length_growth=0.5`` allows the candidate prompt to be up to 50% longer; ``None`` = no limit.
    """

    alpha: float = 0.05
    min_gain: float = 0.0
    test: TestKind = "auto"
    n_boot: int = 2000
    min_cases: int = 5
    max_length_growth: float | None = 0.5
    max_cost_growth: float | None = None
    slice_bounds: Mapping[str, float] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"gate alpha must be in (0, 1), got {self.alpha}")
        if self.test not in ("auto", "sign", "bootstrap"):
            raise ConfigError(f"gate test must be auto|sign|bootstrap, got {self.test!r}")
        if self.n_boot < 100:
            raise ConfigError(f"gate n_boot must be >= 100, got {self.n_boot}")
        if self.min_cases < 1:
            raise ConfigError(f"gate min_cases must be >= 1, got {self.min_cases}")
        for name in ("max_length_growth", "max_cost_growth"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ConfigError(f"gate {name} must be >= 0 or None, got {v}")
        for k, v in self.slice_bounds.items():
            if v < 0:
                raise ConfigError(f"gate slice bound for {k!r} must be >= 0, got {v}")

    def as_dict(self) -> dict[str, Any]:
        return {
            "alpha": self.alpha, "min_gain": self.min_gain, "test": self.test, "n_boot": self.n_boot,
            "min_cases": self.min_cases, "max_length_growth": self.max_length_growth,
            "max_cost_growth": self.max_cost_growth, "slice_bounds": dict(self.slice_bounds),
            "seed": self.seed,
        }


def sign_test_p(wins: int, losses: int) -> float:
    """Exact one-sided sign-test p-value ``P(X >= wins)``, ``X ~ Bin(wins + losses, 1/2)``."""
    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(wins, n + 1))
    return min(1.0, tail / 2.0**n)


def fewest_wins(alpha: float) -> int:
    """The fewest wins with no loss at which the one-sided sign test is below ``alpha``."""
    return max(1, math.ceil(math.log(alpha) / math.log(0.5) + 1e-12))


def _bootstrap(diffs: np.ndarray, n_boot: int, alpha: float, seed: int) -> tuple[float, tuple[float, float]]:
    """One-sided bootstrap p-value of mean(diffs) > 0 and the (alpha, 1-alpha) percentile CI."""
    rng = np.random.default_rng(seed)
    n = diffs.shape[0]
    idx = rng.integers(0, n, size=(n_boot, n))
    means = diffs[idx].mean(axis=1)  # (n_boot,)
    observed = float(diffs.mean())
    centred = means - observed  # the bootstrap distribution shifted to the null (mean 0)
    p = (1.0 + float(np.sum(centred >= observed - 1e-12))) / (n_boot + 1.0)
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return min(1.0, p), (float(lo), float(hi))


def fold_trials(values: Sequence[float], trials: int) -> list[float]:
    """Per-case means of rewards given in (case, trial) order, ``trials`` per case."""
    if trials < 1 or len(values) % trials:
        raise ValidationError(f"{len(values)} rewards do not split into cases of {trials} trials")
    return [sum(values[i : i + trials]) / trials for i in range(0, len(values), trials)]


def _shares_of_binary(arr: np.ndarray, trials: int) -> bool:
    """Every value is ``k / trials`` for an integer ``0 <= k <= trials`` (binary when ``trials`` = 1)."""
    scaled = arr * trials
    return bool(np.all((arr >= 0.0) & (arr <= 1.0) & (np.abs(scaled - np.round(scaled)) < 1e-9)))


def _as_array(name: str, values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(list(values), dtype=float)
    if arr.size and not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} rewards contain NaN/inf; pass finite per-case rewards")
    return arr


def _growth(pair: tuple[float, float] | None) -> float | None:
    if pair is None:
        return None
    old, new = float(pair[0]), float(pair[1])
    if old <= 0:
        return 0.0 if new <= 0 else math.inf
    return (new - old) / old


def _slice_checks(
    diffs: np.ndarray, slices: Sequence[str], bounds: Mapping[str, float]
) -> tuple[dict[str, dict[str, float]], list[str]]:
    per: dict[str, list[float]] = {}
    for label, d in zip(slices, diffs, strict=True):
        per.setdefault(str(label), []).append(float(d))
    stats: dict[str, dict[str, float]] = {}
    reasons: list[str] = []
    for label, ds in sorted(per.items()):
        mean = sum(ds) / len(ds)
        stats[label] = {"n": len(ds), "mean_gain": mean}
        bound = bounds.get(label, bounds.get("*"))
        if bound is not None and mean < -bound - 1e-12:
            reasons.append(
                f"guarded slice '{label}' regresses by {-mean:.3f} (> bound {bound:.3f}) over {len(ds)} cases"
            )
    return stats, reasons


def decide(
    incumbent: Sequence[float],
    candidate: Sequence[float],
    config: GateConfig | None = None,
    *,
    slices: Sequence[str] | None = None,
    lengths: tuple[float, float] | None = None,
    costs: tuple[float, float] | None = None,
    trials: int = 1,
) -> GateDecision:
    """Decide whether ``candidate`` beats ``incumbent`` on paired per-case rewards.

    ``trials``: each reward is a case's mean over that many binary trials (``fold_trials``), so
    ``auto`` still takes the sign test. ``slices`` labels each case (same length as the rewards) for
    the guarded-slice check;
    ``lengths`` and ``costs`` are ``(incumbent, candidate)`` pairs (prompt characters, mean cost per
    episode). Returns ``insufficient_data`` when there are fewer than ``config.min_cases`` pairs.
    Raises ``ValidationError`` for unpaired input (different lengths) or non-finite rewards.
    """
    cfg = config or GateConfig()
    inc = _as_array("incumbent", incumbent)
    cand = _as_array("candidate", candidate)
    if inc.shape != cand.shape:
        raise ValidationError(
            f"paired rewards needed: incumbent has {inc.size} values, candidate {cand.size}; "
            "replay both prompts on the same cases and seeds"
        )
    if slices is not None and len(slices) != inc.size:
        raise ValidationError(f"slices has {len(slices)} labels for {inc.size} paired cases")
    n = int(inc.size)
    stats: dict[str, Any] = {"n": n, "alpha": cfg.alpha, "min_gain": cfg.min_gain}
    if n < cfg.min_cases:
        return GateDecision(
            kind="insufficient_data",
            stats=stats | {"p_value": None, "mean_gain": None},
            reasons=(f"only {n} paired cases; the gate needs at least {cfg.min_cases}",),
        )
    diffs = cand - inc
    if trials < 1:
        raise ValidationError(f"trials must be >= 1, got {trials}")
    binary = _shares_of_binary(inc, trials) and _shares_of_binary(cand, trials)
    test = cfg.test if cfg.test != "auto" else ("sign" if binary else "bootstrap")
    if test == "sign" and not binary:
        raise ValidationError(
            "the sign test needs binary (0/1) rewards or per-case means of binary trials; "
            "use test='bootstrap' or 'auto'"
        )
    mean_gain = float(diffs.mean())
    stats |= {
        "test": test,
        "mean_gain": mean_gain,
        "incumbent_mean": float(inc.mean()),
        "candidate_mean": float(cand.mean()),
        "wins": int(np.sum(diffs > 0)),
        "losses": int(np.sum(diffs < 0)),
        "ties": int(np.sum(diffs == 0)),
    }
    if test == "sign":
        p = sign_test_p(stats["wins"], stats["losses"])
        stats["discordant"] = stats["wins"] + stats["losses"]
        ci: tuple[float, float] | None = None
    else:
        p, ci = _bootstrap(diffs, cfg.n_boot, cfg.alpha, cfg.seed)
        stats["ci"] = list(ci)
        stats["n_boot"] = cfg.n_boot
    stats["p_value"] = p
    reasons: list[str] = []
    if not p < cfg.alpha:
        reasons.append(f"not significant: p = {p:.4f} >= alpha = {cfg.alpha} ({_describe(stats)})")
    if mean_gain < cfg.min_gain or mean_gain <= 0:
        reasons.append(f"mean gain {mean_gain:+.3f} is below the required {max(cfg.min_gain, 0.0):+.3f}")
    if slices is not None:
        stats["slices"], slice_reasons = _slice_checks(diffs, slices, cfg.slice_bounds)
        reasons.extend(slice_reasons)
    lg, cg = _growth(lengths), _growth(costs)
    stats["length_growth"], stats["cost_growth"] = lg, cg
    if lg is not None and cfg.max_length_growth is not None and lg > cfg.max_length_growth + 1e-12:
        reasons.append(f"prompt grows by {lg:.0%} (> limit {cfg.max_length_growth:.0%})")
    if cg is not None and cfg.max_cost_growth is not None and cg > cfg.max_cost_growth + 1e-12:
        reasons.append(f"episode cost grows by {cg:.0%} (> limit {cfg.max_cost_growth:.0%})")
    if reasons:
        return GateDecision(kind="reject", stats=stats, reasons=tuple(reasons))
    return GateDecision(
        kind="promote",
        stats=stats,
        reasons=(f"significant gain {mean_gain:+.3f} (p = {p:.4f} < {cfg.alpha}; {_describe(stats)})",),
    )


def _describe(stats: Mapping[str, Any]) -> str:
    if stats.get("test") == "sign":
        w, lo, t, n = (int(stats[k]) for k in ("wins", "losses", "ties", "n"))
        return (f"{w} win{'s' * (w != 1)} / {lo} loss{'es' * (lo != 1)} / {t} tie{'s' * (t != 1)} "
                f"on {n} case{'s' * (n != 1)}")
    lo, hi = stats.get("ci", (float("nan"), float("nan")))
    return f"bootstrap CI [{lo:+.3f}, {hi:+.3f}] on {stats['n']} cases"
