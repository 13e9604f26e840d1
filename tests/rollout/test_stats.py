"""The pure statistics core: confidence sequences, the decision rule, the drift detector."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffprompt.errors import ConfigError
from diffprompt.rollout.config import DriftConfig, Guardrail, RolloutConfig
from diffprompt.rollout.drift import bet, cusum_log, detect, first_model_change
from diffprompt.rollout.stats import (
    ArmData,
    arm_bounds,
    cumulative_path,
    decide_codes,
    evaluate,
    metric_test,
    rho_ratio,
    unit_radius,
)

CFG = RolloutConfig()
GUARDS = tuple((g.metric, g.tolerance, g.relative) for g in CFG.guardrails)
unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
alphas = st.floats(min_value=1e-4, max_value=0.3)


def _eval(c: ArmData, i: ArmData, **kw):  # type: ignore[no-untyped-def]
    args = {
        "alpha": 0.05,
        "alpha_guard": 0.01,
        "tune_n": 500,
        "min_threads": 20,
        "max_threads": 10_000,
        "max_hours": 100.0,
        "min_gain": 0.0,
        "guardrails": GUARDS,
        "elapsed_hours": 1.0,
    }
    args.update(kw)
    return evaluate(c, i, **args)


def _arm(rewards: list[float], *, latency: float = 100.0) -> ArmData:
    n = len(rewards)
    return ArmData(
        rewards=tuple(rewards),
        errors=(0.0,) * n,
        latency_ms=(latency,) * n,
        tokens=(10.0,) * n,
        cost_usd=(0.0,) * n,
    )


@given(alphas)
def test_rho_ratio_is_the_boundary_minimiser(alpha: float) -> None:
    r = rho_ratio(alpha)

    def width(ratio: float) -> float:
        return (1 + ratio) * math.log((1 + ratio) / (ratio * alpha * alpha))

    assert width(r) <= width(r * 1.05) + 1e-12 and width(r) <= width(r / 1.05) + 1e-12


@given(alphas, st.integers(min_value=1, max_value=5000), st.integers(min_value=1, max_value=100_000))
def test_radius_shrinks_with_more_threads_and_with_larger_alpha(alpha: float, tune: int, n: int) -> None:
    r = float(unit_radius(n, alpha, tune))
    assert 0 < r < math.inf
    assert float(unit_radius(n + 1, alpha, tune)) <= r
    assert float(unit_radius(n, min(alpha * 1.5, 0.49), tune)) <= r
    assert math.isinf(float(unit_radius(0, alpha, tune)))


@given(st.lists(unit, min_size=0, max_size=200), alphas)
def test_bounded_interval_contains_the_mean_and_stays_in_unit_range(xs: list[float], alpha: float) -> None:
    mean, lo, hi = arm_bounds(len(xs), sum(xs), None, alpha=alpha, tune_n=100)
    if not xs:
        assert np.isnan(mean) and lo == -np.inf and hi == np.inf
        return
    assert 0.0 <= lo <= mean + 1e-12 and mean - 1e-12 <= hi <= 1.0


@given(st.lists(st.floats(min_value=0, max_value=1e5), min_size=2, max_size=100))
def test_unbounded_interval_is_centred_on_the_mean(xs: list[float]) -> None:
    a = np.asarray(xs)
    mean, lo, hi = arm_bounds(len(a), a.sum(), (a * a).sum(), alpha=0.05, tune_n=100)
    assert mean == pytest.approx(a.mean()) and lo <= mean <= hi
    assert hi - mean == pytest.approx(mean - lo, rel=1e-9, abs=1e-6)


@given(st.lists(unit, min_size=1, max_size=80), st.lists(unit, min_size=1, max_size=80))
def test_swapping_arms_negates_the_reward_difference(c: list[float], i: list[float]) -> None:
    a = metric_test("reward", tuple(c), tuple(i), alpha=0.05, tune_n=100)
    b = metric_test("reward", tuple(i), tuple(c), alpha=0.05, tune_n=100)
    assert a.estimate == pytest.approx(-b.estimate, abs=1e-6)  # type: ignore[operator]
    assert a.lo == pytest.approx(-b.hi, abs=1e-6) and a.hi == pytest.approx(-b.lo, abs=1e-6)  # type: ignore[operator]
    assert a.lo <= a.estimate <= a.hi  # type: ignore[operator]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.booleans(), min_size=0, max_size=150),
    st.lists(st.booleans(), min_size=0, max_size=150),
    st.floats(min_value=0, max_value=200),
    st.integers(min_value=1, max_value=40),
)
def test_decision_agrees_with_its_statistics(c: list[bool], i: list[bool], hours: float, min_n: int) -> None:
    d = _eval(_arm([float(x) for x in c]), _arm([float(x) for x in i]), elapsed_hours=hours, min_threads=min_n)
    r = d.stats.reward
    ready = r.canary.n >= min_n and r.incumbent.n >= min_n
    if d.kind == "promote":
        assert ready and r.lo is not None and r.lo > 0
    elif d.kind == "rollback":
        assert ready and r.hi is not None and r.hi < 0  # no guardrail can breach: same values per arm
    elif d.kind == "expire":
        assert hours >= 100.0
    else:
        assert hours < 100.0 and (not ready or (r.lo or -1) <= 0 <= (r.hi if r.hi is not None else 1))
    assert d.reasons and d.stats.threads_canary == len(c)


@settings(max_examples=30, deadline=None)
@given(st.lists(unit, min_size=20, max_size=120), st.randoms(use_true_random=False))
def test_decision_ignores_arrival_order_within_an_arm(xs: list[float], rnd) -> None:  # type: ignore[no-untyped-def]
    inc = [0.5] * 60
    shuffled = list(xs)
    rnd.shuffle(shuffled)
    a, b = _eval(_arm(xs), _arm(inc)), _eval(_arm(shuffled), _arm(inc))
    assert a.kind == b.kind and a.stats.reward.lo == pytest.approx(b.stats.reward.lo, abs=1e-6)


def test_guardrail_breach_rolls_back_even_a_winner() -> None:
    win = _eval(_arm([1.0] * 200), _arm([0.0] * 200))
    assert win.kind == "promote"
    slow = _eval(_arm([1.0] * 200, latency=400.0), _arm([0.0] * 200, latency=100.0))
    assert slow.kind == "rollback" and any("latency_ms breached" in r for r in slow.reasons)
    errs = ArmData(
        rewards=(1.0,) * 200, errors=(1.0,) * 200, latency_ms=(1.0,) * 200, tokens=(0.0,) * 200, cost_usd=(0.0,) * 200
    )
    assert _eval(errs, _arm([0.0] * 200)).kind == "rollback"
    # within tolerance: no breach
    ok = _eval(_arm([1.0] * 200, latency=110.0), _arm([0.0] * 200, latency=100.0))
    assert ok.kind == "promote" and not any(g.breach for g in ok.stats.guardrails)


def test_nothing_is_decided_before_min_threads_and_expiry_keeps_the_incumbent() -> None:
    early = _eval(_arm([1.0] * 10), _arm([0.0] * 10))
    assert early.kind == "wait" and "waiting for 20" in early.reasons[0]
    assert _eval(_arm([0.5] * 30), _arm([0.5] * 30), max_threads=30).kind == "expire"
    assert _eval(_arm([0.5] * 30), _arm([0.5] * 30), elapsed_hours=101.0).kind == "expire"


def test_vectorised_codes_equal_the_scalar_decision() -> None:
    rng = np.random.default_rng(3)
    arm = rng.random(600) < 0.5
    x = (rng.random(600) < np.where(arm, 0.75, 0.45)).astype(float)
    n_c, n_i = np.cumsum(arm), np.cumsum(~arm)
    _, lc, hc = arm_bounds(n_c, np.cumsum(x * arm), None, alpha=0.025, tune_n=500)
    _, li, hi = arm_bounds(n_i, np.cumsum(x * ~arm), None, alpha=0.025, tune_n=500)
    codes = decide_codes(
        ready=(n_c >= 20) & (n_i >= 20),
        reward_lo=lc - hi,
        reward_hi=hc - li,
        breach=np.zeros(600, bool),
        expired=np.zeros(600, bool),
        min_gain=0.0,
    )
    for t in (30, 150, 320, 599):
        c = [float(v) for v, a in zip(x[: t + 1], arm[: t + 1], strict=True) if a]
        i = [float(v) for v, a in zip(x[: t + 1], arm[: t + 1], strict=True) if not a]
        d = _eval(_arm(c), _arm(i), guardrails=())
        assert d.kind == ("wait", "promote", "rollback", "expire")[codes[t]]
        assert d.stats.reward.lo == pytest.approx(lc[t] - hi[t], abs=1e-5)


def test_confidence_sequence_covers_at_every_look() -> None:
    """Over whole paths of 4,000 looks, the interval ever misses the true rate in at most alpha."""
    rng = np.random.default_rng(7)
    for p in (0.1, 0.5, 0.8):
        x = (rng.random((400, 4000)) < p).astype(float)
        n = np.arange(1, 4001)
        _, lo, hi = arm_bounds(n, np.cumsum(x, axis=1), None, alpha=0.05, tune_n=500)
        missed = ((lo > p) | (hi < p)).any(axis=1).mean()
        assert missed <= 0.05


def test_cumulative_path_follows_both_arms() -> None:
    events = [(k % 3 == 0, float(k % 2)) for k in range(300)]
    path = cumulative_path(events, alpha=0.05, tune_n=100, points=10)
    assert len(path) == 10 and path[-1]["t"] == 300
    assert path[-1]["canary"]["n"] + path[-1]["incumbent"]["n"] == 300
    assert all(p["canary"]["lo"] <= p["canary"]["mean"] <= p["canary"]["hi"] for p in path if p["canary"]["n"])
    widths = [p["incumbent"]["hi"] - p["incumbent"]["lo"] for p in path[1:]]
    assert widths == sorted(widths, reverse=True)
    assert cumulative_path([], alpha=0.05, tune_n=100) == []


# ----------------------------------------------------------------------------------- drift
@given(st.floats(min_value=0.0, max_value=1.0), st.floats(min_value=0.01, max_value=0.9))
def test_bet_keeps_every_factor_at_least_one_half(level: float, drop: float) -> None:
    lam = bet(level, drop)
    assert lam >= 0
    for x in (0.0, 1.0):
        assert 1 + lam * (level - x) >= 0.5 - 1e-9


@given(st.lists(unit, min_size=1, max_size=60), st.floats(min_value=0.05, max_value=0.95))
def test_cusum_matches_its_recursion(xs: list[float], level: float) -> None:
    lam = bet(level, 0.1)
    got = cusum_log(xs, level, lam)
    c, want = 0.0, []
    for x in xs:
        c = max(c, 0.0) + math.log1p(lam * (level - x))
        want.append(c)
    assert np.allclose(got, want)
    assert np.allclose(cusum_log([xs, xs], [level, level], [lam, lam])[1], want)


def test_detect_drop_and_model_change() -> None:
    rng = np.random.default_rng(1)
    base = list((rng.random(300) < 0.8).astype(float))
    same = list((rng.random(3000) < 0.8).astype(float))
    worse = list((rng.random(3000) < 0.5).astype(float))
    kw = {"baseline_threads": 300, "alpha_baseline": 0.05, "drop": 0.1, "arl": 20_000.0, "tune_n": 500}
    assert not detect(base + same, **kw).drifted
    d = detect(base + worse, **kw)
    assert d.drifted and d.alarm_at is not None and d.alarm_at < 300 and "dropped" in d.reason
    assert not detect(base[:100], **kw).drifted  # baseline not complete yet
    m = detect(base, models=["gpt-a", None, "gpt-a", "gpt-b"], **kw)
    assert m.drifted and (m.model_before, m.model_after) == ("gpt-a", "gpt-b")
    assert first_model_change([None, "x", "x"]) is None


# ----------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    "kw",
    [
        {"alpha": 0.0},
        {"alpha": 0.6},
        {"min_threads": 0},
        {"max_threads": 5, "min_threads": 10},
        {"max_hours": 0},
        {"min_gain": -0.1},
        {"actor": " "},
        {"guardrails": (Guardrail(metric="tokens", tolerance=0.1), Guardrail(metric="tokens", tolerance=0.2))},
    ],
)
def test_rollout_config_rejects_bad_values(kw: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError):
        RolloutConfig(**kw)


def test_configs_round_trip_and_reject_unknown_keys() -> None:
    cfg = RolloutConfig(alpha=0.01, guardrails=(Guardrail(metric="error_rate", tolerance=0.1),))
    assert RolloutConfig.from_dict(cfg.as_dict()) == cfg
    assert DriftConfig.from_dict(DriftConfig(drop=0.2).as_dict()) == DriftConfig(drop=0.2)
    with pytest.raises(ConfigError, match="alpah"):
        RolloutConfig.from_dict({"alpah": 0.1})
    with pytest.raises(ConfigError):
        Guardrail(metric="speed", tolerance=0.1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        DriftConfig(arl=1.0)
