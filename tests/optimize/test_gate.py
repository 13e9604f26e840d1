from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from diffprompt.errors import ConfigError, ValidationError
from diffprompt.optimize.gate import GateConfig, decide, fold_trials, sign_test_p

binary = st.lists(st.sampled_from([0.0, 1.0]), min_size=0, max_size=60)


def test_sign_test_exact_values():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(5, 0) == pytest.approx(1 / 32)
    assert sign_test_p(3, 3) == pytest.approx(42 / 64)


def test_aa_false_promotion_rate_at_most_alpha():
    rng = random.Random(1234)
    cfg = GateConfig(alpha=0.05)
    promoted = 0
    runs = 1000
    for _ in range(runs):
        prob = rng.uniform(0.2, 0.8)
        inc = [float(rng.random() < prob) for _ in range(100)]
        cand = [float(rng.random() < prob) for _ in range(100)]
        promoted += decide(inc, cand, cfg).promoted
    # binomial sd at 0.05 over 1000 runs is ~0.007; allow 3 sd of sampling tolerance
    assert promoted / runs <= 0.05 + 0.021


def test_plus_twenty_points_on_100_cases_is_promoted():
    rng = random.Random(7)
    inc = [float(rng.random() < 0.5) for _ in range(100)]
    cand = list(inc)
    flips = [i for i, v in enumerate(inc) if v == 0.0][:20]
    for i in flips:
        cand[i] = 1.0
    d = decide(inc, cand)
    assert d.kind == "promote", d.reasons
    assert d.stats["wins"] == 20 and d.stats["losses"] == 0
    assert d.stats["p_value"] < 1e-5


def test_clearly_better_with_noise_promoted_mostly():
    rng = random.Random(3)
    hits = 0
    for _ in range(50):
        inc = [float(rng.random() < 0.4) for _ in range(100)]
        cand = [float(rng.random() < 0.6) for _ in range(100)]
        hits += decide(inc, cand).promoted
    assert hits >= 35


@settings(max_examples=200, deadline=None)
@given(data=st.data(), inc=binary)
def test_strictly_worse_never_promoted(data, inc):
    # candidate <= incumbent everywhere (at least as bad on every case)
    cand = [data.draw(st.sampled_from([0.0, v])) for v in inc]
    d = decide(inc, cand, GateConfig(min_cases=1))
    assert not d.promoted


@settings(max_examples=100, deadline=None)
@given(
    inc=st.lists(st.floats(0, 1, allow_nan=False), min_size=5, max_size=40),
    data=st.data(),
)
def test_continuous_worse_never_promoted(inc, data):
    cand = [v - data.draw(st.floats(0, v, allow_nan=False)) for v in inc]
    assert not decide(inc, cand).promoted


@settings(max_examples=100, deadline=None)
@given(inc=binary, data=st.data())
def test_swap_symmetry_and_determinism(inc, data):
    cand = [data.draw(st.sampled_from([0.0, 1.0])) for _ in inc]
    a = decide(inc, cand, GateConfig(min_cases=1))
    b = decide(inc, cand, GateConfig(min_cases=1))
    assert a == b
    if a.promoted:
        assert not decide(cand, inc, GateConfig(min_cases=1)).promoted


def test_insufficient_data_for_empty_and_small():
    assert decide([], []).kind == "insufficient_data"
    d = decide([0, 1], [1, 1])
    assert d.kind == "insufficient_data" and "at least 5" in d.reasons[0]


def test_unpaired_and_nonfinite_rejected():
    with pytest.raises(ValidationError):
        decide([0, 1, 1], [1, 1])
    with pytest.raises(ValidationError):
        decide([0.5] * 5, [float("nan")] * 5)
    with pytest.raises(ConfigError):
        GateConfig(alpha=1.5)


def test_min_gain_blocks_small_gains():
    inc = [0.0] * 100
    cand = [1.0] * 10 + [0.0] * 90
    assert decide(inc, cand).promoted
    d = decide(inc, cand, GateConfig(min_gain=0.2))
    assert d.kind == "reject" and any("mean gain" in r for r in d.reasons)


def test_guarded_slice_regression_rejects():
    inc = [0.0] * 40 + [1.0] * 10
    cand = [1.0] * 40 + [0.0] * 10
    slices = ["book"] * 40 + ["cancel"] * 10
    assert decide(inc, cand, slices=slices).promoted
    d = decide(inc, cand, GateConfig(slice_bounds={"cancel": 0.1}), slices=slices)
    assert d.kind == "reject"
    assert any("cancel" in r for r in d.reasons)
    assert d.stats["slices"]["cancel"]["mean_gain"] == -1.0


def test_length_and_cost_growth_limits():
    inc, cand = [0.0] * 30, [1.0] * 30
    d = decide(inc, cand, GateConfig(max_length_growth=0.2), lengths=(1000, 1300))
    assert d.kind == "reject" and any("prompt grows" in r for r in d.reasons)
    d = decide(inc, cand, GateConfig(max_cost_growth=0.1), costs=(0.01, 0.02))
    assert d.kind == "reject" and any("cost grows" in r for r in d.reasons)
    assert decide(inc, cand, lengths=(1000, 1100), costs=(0.01, 0.02)).promoted


def test_bootstrap_seeded_and_ci():
    rng = random.Random(0)
    inc = [rng.random() * 0.5 for _ in range(60)]
    cand = [v + 0.2 + rng.uniform(-0.1, 0.1) for v in inc]
    a = decide(inc, cand, GateConfig(seed=5))
    assert a.kind == "promote" and a.stats["test"] == "bootstrap"
    lo, hi = a.stats["ci"]
    assert 0 < lo < a.stats["mean_gain"] < hi
    assert decide(inc, cand, GateConfig(seed=5)).stats == a.stats
    with pytest.raises(ValidationError):
        decide(inc, cand, GateConfig(test="sign"))


def test_continuous_aa_rate():
    rng = random.Random(99)
    promoted = 0
    for i in range(200):
        inc = [rng.random() for _ in range(40)]
        cand = [rng.random() for _ in range(40)]
        promoted += decide(inc, cand, GateConfig(n_boot=400, seed=i)).promoted
    assert promoted / 200 <= 0.05 + 0.05


def test_trials_of_one_case_count_once():
    # 3 cases, 2 trials each; the candidate wins both trials of every case. Flattened, that is 6
    # "independent" wins (p = 1/64); the trials share their task, so the evidence is 3 cases (p = 1/8).
    inc = [0.0] * 6
    cand = [1.0] * 6
    assert decide(inc, cand, GateConfig(min_cases=3)).promoted  # the flattened (wrong) unit
    folded = decide(fold_trials(inc, 2), fold_trials(cand, 2), GateConfig(min_cases=3), trials=2)
    assert folded.kind == "reject"
    assert folded.stats["test"] == "sign" and folded.stats["wins"] == 3
    assert folded.stats["p_value"] == pytest.approx(1 / 8)


def test_fold_trials_means_and_bad_shapes():
    assert fold_trials([1.0, 0.0, 1.0, 1.0], 2) == [0.5, 1.0]
    assert fold_trials([0.25], 1) == [0.25]
    with pytest.raises(ValidationError):
        fold_trials([1.0, 0.0, 1.0], 2)
    with pytest.raises(ValidationError):
        decide([0.5] * 6, [1.0] * 6, trials=0)


def test_per_case_shares_take_the_sign_test_and_other_values_the_bootstrap():
    inc = [0.0, 0.5, 0.5, 0.0, 0.0, 1.0]
    cand = [1.0, 1.0, 0.5, 0.5, 1.0, 1.0]
    assert decide(inc, cand, trials=2).stats["test"] == "sign"
    assert decide(inc, cand).stats["test"] == "bootstrap"  # 0.5 is not a binary reward
    assert decide([0.3] * 6, [0.9] * 6, trials=2).stats["test"] == "bootstrap"
    with pytest.raises(ValidationError):
        decide([0.3] * 6, [0.9] * 6, GateConfig(test="sign"), trials=2)


def test_aa_false_promotion_rate_with_correlated_trials_at_most_alpha():
    # each case has its own success probability (a hard or an easy task), 3 trials per case; the two
    # prompts are the same. Folded per case, the sign test keeps its level.
    rng = random.Random(99)
    cfg = GateConfig(alpha=0.05)
    runs, promoted = 600, 0
    for _ in range(runs):
        probs = [rng.choice((0.05, 0.5, 0.95)) for _ in range(40)]
        inc = [float(rng.random() < p) for p in probs for _ in range(3)]
        cand = [float(rng.random() < p) for p in probs for _ in range(3)]
        promoted += decide(fold_trials(inc, 3), fold_trials(cand, 3), cfg, trials=3).promoted
    assert promoted / runs <= 0.05 + 0.027  # 3 sd of sampling tolerance at 600 runs
