"""Span-infill training rows (degraded world policies, optimizer-style slots) and the layout's run floor."""

from __future__ import annotations

import random

import pytest
import torch

from diffprompt.dlm.infill_rows import infill_row
from diffprompt.dlm.layout import build_layout
from diffprompt.dlm.model import MDConfig, MDTransformer
from diffprompt.dlm.train import infill_loss
from tau_envs.rules import rules_for

from .conftest import make_prompt


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_rows_mask_only_slots_and_target_rule_sentences(tiny_dlm, domain):
    tok = tiny_dlm.tokenizer
    texts = {r.text for r in rules_for(domain)}
    rng = random.Random(3)
    rows = [r for r in (infill_row(tok, rng, domain=domain, bos_id=tok.bos_id, mask_id=tok.mask_id,
                                   eos_id=tok.eos_id, traces=True) for _ in range(12)) if r is not None]
    assert rows
    for row in rows:
        assert len(row.ids) <= 1024
        pos = [p for p, _ in row.targets]
        assert sorted(pos) == [i for i, t in enumerate(row.ids) if t == tok.mask_id]
        assert all(t != tok.mask_id for _, t in row.targets)
        # every slot's target (EOS stripped) is a prefix of a rule sentence or of a policy bullet
        runs: list[list[int]] = []
        for p, t in row.targets:
            if runs and p == runs[-1][-1][0] + 1:
                runs[-1].append((p, t))
            else:
                runs.append([(p, t)])
        decoded = [tok.decode([t for _, t in run if t != tok.eos_id]).strip() for run in runs]
        assert any(any(r.startswith(d) for r in texts) for d in decoded if d)


def test_rows_are_seeded(tiny_dlm):
    tok = tiny_dlm.tokenizer
    kw = {"domain": "airline", "bos_id": tok.bos_id, "mask_id": tok.mask_id, "eos_id": tok.eos_id}
    a = [infill_row(tok, random.Random(9), **kw) for _ in range(3)]
    b = [infill_row(tok, random.Random(9), **kw) for _ in range(3)]
    assert a == b


def test_infill_loss_is_finite_and_backprops(tiny_dlm):
    tok = tiny_dlm.tokenizer
    rng = random.Random(0)
    rows = []
    while len(rows) < 2:
        r = infill_row(tok, rng, domain="airline", bos_id=tok.bos_id, mask_id=tok.mask_id, eos_id=tok.eos_id,
                       max_len=2048)
        if r is not None:
            rows.append(r)
    torch.manual_seed(0)
    model = MDTransformer(MDConfig(vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2, d_ff=64,
                                   max_length=2048)).train()
    loss = infill_loss(model, rows, pad_id=tok.pad_id, mask_id=tok.mask_id, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_min_runs_floor_an_insertion_slot(tiny_dlm):
    prompt = make_prompt()
    sid = next(s.id for s in prompt.spans if s.kind == "bullet")
    plain = build_layout(tiny_dlm, prompt, [sid], [], factor=1.0)
    floored = build_layout(tiny_dlm, prompt, [sid], [], factor=1.0, min_runs={sid: 60})
    s, e = plain.runs[sid]
    fs, fe = floored.runs[sid]
    assert e - s < 60 and fe - fs == 60
