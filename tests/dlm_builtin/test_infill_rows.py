"""Span-infill training rows (degraded corpus policies, optimizer-style slots, honest feedback) and the run floor."""

from __future__ import annotations

import random

import pytest
import torch

from diffprompt.dlm.layout import build_layout
from diffprompt.dlm.model import MDConfig, MDTransformer
from tau_envs.rules import rules_for
from training.dlm.corpus import draw_policy
from training.dlm.infill_rows import infill_row, world_infill_row
from training.dlm.train import infill_loss

from .conftest import make_prompt


def _runs(row):
    runs: list[list[tuple[int, int]]] = []
    for p, t in row.targets:
        if runs and p == runs[-1][-1][0] + 1:
            runs[-1].append((p, t))
        else:
            runs.append([(p, t)])
    return runs


def _corpus_rule_texts(seed: int, n: int = 400) -> set[str]:
    rng = random.Random(seed)
    return {r.text for _ in range(n) for r in draw_policy(rng, bullets=True).rules}


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_world_rows_target_rule_sentences_and_carry_no_feedback(tiny_dlm, domain):
    tok = tiny_dlm.tokenizer
    texts = {r.text for r in rules_for(domain)}
    rng = random.Random(3)
    rows = [r for r in (world_infill_row(tok, rng, domain=domain, bos_id=tok.bos_id, mask_id=tok.mask_id,
                                         eos_id=tok.eos_id) for _ in range(12)) if r is not None]
    assert rows
    for row in rows:
        assert "Feedback:" not in tok.decode(list(row.ids))
        decoded = [tok.decode([t for _, t in run if t != tok.eos_id]).strip() for run in _runs(row)]
        assert any(any(r.startswith(d) for r in texts) for d in decoded if d)


def test_rows_mask_only_slots_and_feedback_never_quotes_the_target(tiny_dlm):
    tok = tiny_dlm.tokenizer
    rng = random.Random(3)
    rows = [r for r in (infill_row(tok, rng, bos_id=tok.bos_id, mask_id=tok.mask_id,
                                   eos_id=tok.eos_id, traces=True) for _ in range(16)) if r is not None]
    assert len(rows) >= 8
    with_feedback = 0
    for row in rows:
        text = tok.decode(list(row.ids))
        with_feedback += "Feedback:" in text
        for run in _runs(row):
            target = tok.decode([t for _, t in run if t != tok.eos_id]).strip()
            head = text.split("#", 1)[0]  # instruction + feedback + traces come before the policy heading
            if len(target) > 30:
                assert target not in head, "the feedback must describe the failure, not quote the rule"
    assert with_feedback >= len(rows) // 2
    for row in rows:
        assert len(row.ids) <= 1024
        pos = [p for p, _ in row.targets]
        assert sorted(pos) == [i for i, t in enumerate(row.ids) if t == tok.mask_id]
        assert all(t != tok.mask_id for _, t in row.targets)
        # every slot's target (EOS stripped) is a prefix of a corpus rule sentence
        decoded = [tok.decode([t for _, t in run if t != tok.eos_id]).strip() for run in _runs(row)]
        assert all(d for d in decoded)


def test_rows_are_seeded(tiny_dlm):
    tok = tiny_dlm.tokenizer
    kw = {"bos_id": tok.bos_id, "mask_id": tok.mask_id, "eos_id": tok.eos_id, "traces": True}
    a = [infill_row(tok, random.Random(9), **kw) for _ in range(3)]
    b = [infill_row(tok, random.Random(9), **kw) for _ in range(3)]
    assert a == b


def test_infill_loss_is_finite_and_backprops(tiny_dlm):
    tok = tiny_dlm.tokenizer
    rng = random.Random(0)
    rows = []
    while len(rows) < 2:
        r = infill_row(tok, rng, bos_id=tok.bos_id, mask_id=tok.mask_id, eos_id=tok.eos_id,
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
