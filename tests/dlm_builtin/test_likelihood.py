from __future__ import annotations

import math

import pytest
import torch

from diffprompt.dlm.likelihood import prompt_span_nelbo, span_nelbo
from diffprompt.errors import ValidationError


def test_span_nelbo_finite_and_seeded(tiny_dlm, prompt, traces):
    sid = next(s.id for s in prompt.spans if s.kind == "bullet")
    a = prompt_span_nelbo(tiny_dlm, prompt, sid, traces, samples=4, generator=torch.Generator().manual_seed(1))
    b = prompt_span_nelbo(tiny_dlm, prompt, sid, traces, samples=4, generator=torch.Generator().manual_seed(1))
    assert a == b and math.isfinite(a) and a > 0


def test_span_nelbo_matches_exact_single_token(tiny_dlm):
    # one span token: every draw masks it, so the estimate is E[1/t] * nll; with per_token the weight
    # is the stratified mean of 1/t, and the nll is the model's exact -log p of the true token.
    ids = torch.tensor(tiny_dlm.tokenizer.encode("Always confirm the details with the user."))
    pos = [3]
    x = ids.clone()
    x[3] = tiny_dlm.mask_id
    lp = torch.log_softmax(tiny_dlm.logits(x[None])[0, 3], -1)[ids[3]]
    gen = torch.Generator().manual_seed(0)
    got = span_nelbo(tiny_dlm, ids, pos, samples=4, generator=gen)
    gen = torch.Generator().manual_seed(0)
    u = torch.rand((), generator=gen)
    t = ((u + torch.arange(4) / 4) % 1.0) * (1 - 1e-3) + 1e-3
    assert got == pytest.approx(float(-lp * (1 / t).mean()), rel=1e-4)


def test_span_nelbo_validates(tiny_dlm):
    with pytest.raises(ValidationError):
        span_nelbo(tiny_dlm, [7, 8, 9], [], samples=2)
    with pytest.raises(ValidationError):
        span_nelbo(tiny_dlm, [7, 8, 9], [5], samples=2)
