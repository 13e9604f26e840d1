"""Property tests of the pure infill sampler against a mock, row-independent logits function."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from diffprompt.dlm.sampler import ALGS, infill, num_transfer_tokens
from diffprompt.errors import ConfigError

V = 40
MASK = V - 1  # the mock's mask token id (a real vocab entry, as in Dream / LLaDA)


class MockLM:
    """Deterministic logits that depend on every token of the row (bidirectional) and on position."""

    def __init__(self, seed: int = 0, sharpness: float = 1.0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.emb = torch.randn(V, 16, generator=g)
        self.pos = torch.randn(256, 16, generator=g)
        self.out = torch.randn(16, V, generator=g) * sharpness
        self.calls = 0
        self.rows_seen: list[int] = []

    def __call__(self, ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        self.calls += 1
        self.rows_seen.append(ids.shape[0])
        h = self.emb[ids] + self.pos[: ids.shape[1]]  # (B, L, 16)
        if attention_mask is not None:
            h = h * attention_mask.unsqueeze(-1)
        ctx = h.mean(dim=1, keepdim=True)  # global context: each row alone
        return torch.tanh(h + ctx) @ self.out  # (B, L, V)


@st.composite
def problems(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    b = draw(st.integers(1, 4))
    length = draw(st.integers(1, 24))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, V - 1, (b, length), generator=g)
    mask = torch.rand(b, length, generator=g) < draw(st.floats(0.0, 1.0))
    ids[mask] = MASK
    return ids, mask


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


SETTINGS = [
    {},
    {"alg": "margin"},
    {"alg": "entropy"},
    {"alg": "random", "generator": None},
    {"temperature": 0.8, "top_p": 0.9, "generator": None},
    {"alg_temp": 0.5, "generator": None},
    {"threshold": 0.2},
]


@settings(max_examples=30, deadline=None)
@given(
    problem=problems(),
    steps=st.integers(1, 12),
    which=st.integers(0, len(SETTINGS) - 1),
    seed=st.integers(0, 1000),
)
def test_only_masks_change_all_filled_budget_respected(problem, steps, which, seed):
    ids, mask = problem
    kw = dict(SETTINGS[which])
    if "generator" in kw:
        kw["generator"] = gen(seed)
    lm = MockLM()
    res = infill(lm, ids, mask, steps=steps, **kw)
    assert torch.equal(res.ids[~mask], ids[~mask])  # unmasked tokens never change
    assert not bool((res.ids == MASK).any())  # every mask filled, never with the mask id
    assert res.forwards == lm.calls <= steps
    assert res.forwards == (0 if not mask.any() else res.forwards)
    assert bool((res.commit_step[mask] >= 0).all()) and bool((res.commit_step[~mask] == -1).all())
    assert bool((res.commit_step < max(res.forwards, 1)).all())


@settings(max_examples=20, deadline=None)
@given(problem=problems(), steps=st.integers(1, 10))
def test_per_row_schedule_is_exact_without_threshold(problem, steps):
    """Each row commits exactly its num_transfer_tokens share per step."""
    ids, mask = problem
    res = infill(MockLM(), ids, mask, steps=steps)
    sched = num_transfer_tokens(mask.sum(1), steps)  # (B, steps)
    for r in range(ids.shape[0]):
        per_step = torch.bincount(res.commit_step[r][mask[r]], minlength=steps)[:steps]
        assert torch.equal(per_step, sched[r])
    assert res.forwards == min(steps, int(mask.sum(1).max()))  # empty trailing steps skipped


@settings(max_examples=20, deadline=None)
@given(problem=problems(), steps=st.integers(1, 10), alg=st.sampled_from(["maxprob", "margin", "entropy"]))
def test_batched_rows_equal_rows_alone(problem, steps, alg):
    ids, mask = problem
    lm = MockLM(seed=3)
    batched = infill(lm, ids, mask, steps=steps, alg=alg).ids
    for r in range(ids.shape[0]):
        alone = infill(lm, ids[r : r + 1], mask[r : r + 1], steps=steps, alg=alg).ids
        assert torch.equal(batched[r : r + 1], alone)


def test_rows_without_masks_are_not_forwarded():
    ids = torch.randint(0, V - 1, (3, 10), generator=gen(0))
    mask = torch.zeros(3, 10, dtype=torch.bool)
    mask[0, :8] = True
    mask[2, 3] = True
    ids[mask] = MASK
    lm = MockLM()
    res = infill(lm, ids, mask, steps=8)
    assert res.forwards == 8
    assert lm.rows_seen == [2] + [1] * 7  # row 1 never, row 2 only in its single step


def test_no_masks_costs_nothing():
    ids = torch.randint(0, V - 1, (2, 5), generator=gen(0))
    lm = MockLM()
    res = infill(lm, ids, torch.zeros(2, 5, dtype=torch.bool), steps=4)
    assert res.forwards == 0 and lm.calls == 0 and torch.equal(res.ids, ids)


@settings(max_examples=20, deadline=None)
@given(problem=problems(), seed=st.integers(0, 10_000))
def test_same_seed_same_output(problem, seed):
    ids, mask = problem
    kw = {"temperature": 1.0, "top_p": 0.95, "alg_temp": 0.3, "steps": 5}
    a = infill(MockLM(), ids, mask, generator=gen(seed), **kw)
    b = infill(MockLM(), ids, mask, generator=gen(seed), **kw)
    assert torch.equal(a.ids, b.ids) and torch.equal(a.commit_step, b.commit_step)


def test_different_seeds_differ_at_temperature():
    ids = torch.full((1, 48), MASK)
    mask = torch.ones(1, 48, dtype=torch.bool)
    outs = {
        tuple(infill(MockLM(), ids, mask, steps=8, temperature=1.0, generator=gen(s)).ids[0].tolist()) for s in range(4)
    }
    assert len(outs) > 1


@settings(max_examples=20, deadline=None)
@given(problem=problems(), steps=st.integers(1, 8))
def test_temperature_zero_is_deterministic_and_greedy_without_generator(problem, steps):
    ids, mask = problem
    a = infill(MockLM(), ids, mask, steps=steps)
    b = infill(MockLM(), ids, mask, steps=steps, generator=gen(123))  # generator unused at T=0
    assert torch.equal(a.ids, b.ids)


def test_single_step_is_argmax_of_one_forward():
    ids = torch.randint(0, V - 1, (2, 12), generator=gen(1))
    mask = torch.rand(2, 12, generator=gen(2)) < 0.5
    ids[mask] = MASK
    lm = MockLM()
    logits = lm(ids, None)
    logits[..., MASK] = -float("inf")
    res = infill(lm, ids, mask, steps=1)
    assert torch.equal(res.ids[mask], logits.argmax(-1)[mask])


def test_threshold_uses_fewer_forwards_and_keeps_budget():
    ids = torch.full((4, 64), MASK)
    ids[:, :8] = torch.arange(8)
    mask = ids == MASK
    lm_plain, lm_thr = MockLM(sharpness=6.0), MockLM(sharpness=6.0)
    plain = infill(lm_plain, ids, mask, steps=32)
    fast = infill(lm_thr, ids, mask, steps=32, threshold=0.9)
    assert plain.forwards == 32
    assert 1 <= fast.forwards < plain.forwards
    assert not bool((fast.ids == MASK).any())
    # threshold 1.01 is never reached: the schedule alone applies, as without threshold
    assert torch.equal(infill(MockLM(sharpness=6.0), ids, mask, steps=32, threshold=1.01).ids, plain.ids)


def test_top_p_restricts_samples_to_the_nucleus():
    ids = torch.full((1, 12), MASK)
    mask = torch.ones(1, 12, dtype=torch.bool)
    lm = MockLM(sharpness=3.0)
    greedy = infill(lm, ids, mask, steps=12).ids  # steps = masks: one token per step
    for s in range(3):
        res = infill(lm, ids, mask, steps=12, temperature=1.0, top_p=1e-6, generator=gen(s))
        assert torch.equal(res.ids, greedy)  # a tiny nucleus is just the argmax


def test_mask_id_inferred_or_given_and_forbid_ids():
    ids = torch.randint(0, V - 1, (1, 10), generator=gen(0))
    mask = torch.zeros(1, 10, dtype=torch.bool)
    mask[0, 2:6] = True
    res_given = infill(MockLM(), ids, mask, steps=4, mask_id=MASK)  # ids at mask not yet MASK
    ids2 = ids.clone()
    ids2[mask] = MASK
    assert torch.equal(res_given.ids, infill(MockLM(), ids2, mask, steps=4).ids)
    banned = list(range(0, V - 2))  # only V-2 is allowed (V-1 is the mask)
    res = infill(MockLM(), ids2, mask, steps=2, forbid_ids=banned)
    assert bool((res.ids[mask] == V - 2).all())
    mixed = ids.clone()
    mixed[0, 2], mixed[0, 3] = 1, 2
    with pytest.raises(ConfigError, match="mask_id"):
        infill(MockLM(), mixed, mask, steps=2)


def test_attention_mask_passed_and_padding_never_masked():
    ids = torch.tensor([[0, 0, 5, MASK, 7], [3, 4, 5, MASK, MASK]])
    am = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    mask = ids == MASK
    seen = []

    def fn(x, a):
        seen.append(a.clone())
        return MockLM()(x, a)

    infill(fn, ids, mask, steps=2, attention_mask=am)
    assert torch.equal(seen[0], am)
    bad = mask.clone()
    bad[0, 0] = True
    with pytest.raises(ConfigError, match="padding"):
        infill(fn, ids, bad, steps=2, attention_mask=am)


@pytest.mark.parametrize("kw", [{"alg": "random"}, {"temperature": 0.5}, {"alg_temp": 1.0}])
def test_randomness_requires_an_explicit_generator(kw):
    ids = torch.full((1, 4), MASK)
    with pytest.raises(ConfigError, match="generator"):
        infill(MockLM(), ids, ids == MASK, **kw)


@pytest.mark.parametrize("kw", [{"steps": 0}, {"alg": "nope"}, {"top_p": 0.0}, {"temperature": -1.0}])
def test_bad_arguments(kw):
    ids = torch.full((1, 4), MASK)
    with pytest.raises(ConfigError):
        infill(MockLM(), ids, ids == MASK, **kw)


def test_algs_constant_matches_literal():
    assert set(ALGS) == {"maxprob", "margin", "entropy", "random"}


def test_num_transfer_tokens():
    got = num_transfer_tokens(torch.tensor([10, 2, 0, 4]), 4)
    assert got.tolist() == [[3, 3, 2, 2], [1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 1, 1]]


def _reference_nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """(N, V) bool: the smallest top set whose mass reaches top_p, by a plain full sort."""
    out = torch.zeros_like(probs, dtype=torch.bool)
    for r in range(probs.shape[0]):
        order = torch.argsort(probs[r], descending=True, stable=True)
        total = 0.0
        for t in order.tolist():
            out[r, t] = True
            total += float(probs[r, t])
            if total >= top_p:
                break
    return out


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    top_p=st.floats(0.05, 0.99),
    scale=st.sampled_from([0.1, 1.0, 8.0]),
    vocab=st.sampled_from([5, 300, 700]),
)
def test_top_p_samples_stay_in_the_nucleus(seed, top_p, scale, vocab):
    """Both paths (top-k prefix for peaked rows, full sort for flat ones) sample inside the nucleus."""
    from diffprompt.dlm.sampler import _sample

    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(6, vocab, generator=g) * scale, dim=-1)
    nucleus = _reference_nucleus(probs, top_p)
    for _ in range(5):
        tok = _sample(probs, top_p, g)
        assert bool(nucleus[torch.arange(6), tok].all())


def test_sampling_matches_the_distribution():
    from diffprompt.dlm.sampler import _sample

    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).expand(20_000, 4)
    g = gen(7)
    freq = torch.bincount(_sample(probs, 1.0, g), minlength=4).float() / 20_000
    assert torch.allclose(freq, probs[0], atol=0.015)
    freq = torch.bincount(_sample(probs, 0.7, g), minlength=4).float() / 20_000  # nucleus {0, 1}
    assert torch.allclose(freq, torch.tensor([0.625, 0.375, 0.0, 0.0]), atol=0.015)
