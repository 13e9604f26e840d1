"""The shipped built-in model: loads offline, fills held-out policy sentences well above unigram."""

from __future__ import annotations

import math
import random

import pytest
import torch

from diffprompt.dlm.base import DiffusionLM
from diffprompt.dlm.layout import build_layout, span_pieces
from diffprompt.dlm.likelihood import prompt_span_nelbo, span_nelbo
from diffprompt.dlm.model import BUILTIN_DIR, load_builtin
from diffprompt.dlm.sampler import infill
from training.dlm.corpus import generate_documents

from .conftest import make_prompt, make_trace

HELDOUT_SEED = 1_000_003  # the held-out stream of the shipped run (seed 0), see corpus.split_corpus


@pytest.fixture(scope="module")
def builtin():
    torch.set_num_threads(1)
    return load_builtin()


def _heldout(n: int):
    docs = generate_documents(n, HELDOUT_SEED)
    return [make_prompt(d, vid=f"h{i}") for i, d in enumerate(docs)]


def _content(span) -> str:
    return span.text[2:] if span.kind == "bullet" else span.text


def test_loads_offline_and_is_small(builtin):
    assert isinstance(builtin, DiffusionLM)
    total = sum(p.stat().st_size for p in BUILTIN_DIR.iterdir() if p.is_file())
    assert total < 20 * 2**20
    assert builtin.max_length >= 512
    ids = builtin.tokenizer.encode("Before cancelling a reservation, obtain an explicit yes.")
    assert builtin.tokenizer.decode(ids) == "Before cancelling a reservation, obtain an explicit yes."


def _batch(builtin, layouts):
    width = max(len(r) for r in layouts)
    ids = torch.full((len(layouts), width), builtin.pad_id)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    attn = torch.zeros_like(ids)
    for b, lay in enumerate(layouts):
        off = width - len(lay)
        ids[b, off:] = torch.tensor(lay.ids)
        attn[b, off:] = 1
        for q in lay.mask_positions:
            mask[b, off + q] = True
    return ids, mask, attn


@pytest.fixture(scope="module")
def unigram(builtin):
    from training.dlm.train import unigram_logprobs

    return unigram_logprobs(builtin.tokenizer, generate_documents(300, 0))


def test_fills_heldout_tokens_well_above_unigram(builtin, unigram):
    """50% of the tokens of held-out policy documents masked, filled by the sampler (64 steps)."""
    gen = torch.Generator().manual_seed(0)
    rows = []
    for p in _heldout(8):
        ids = [builtin.tokenizer.bos_id, *builtin.tokenizer.encode(p.text)][:256]
        rows.append(torch.tensor(ids))
    width = max(len(r) for r in rows)
    x = torch.full((len(rows), width), builtin.pad_id)
    attn = torch.zeros_like(x)
    for b, r in enumerate(rows):
        x[b, width - len(r) :] = r
        attn[b, width - len(r) :] = 1
    mask = (torch.rand(x.shape, generator=gen) < 0.5) & attn.bool()
    mask[:, -1] |= True
    res = infill(
        builtin.logits, x, mask, steps=64, temperature=0.0, attention_mask=attn, mask_id=builtin.mask_id, generator=gen
    )
    assert bool((res.ids[~mask] == x[~mask]).all())
    acc = float((res.ids[mask] == x[mask]).float().mean())
    uni_acc = float((x[mask] == int(unigram.argmax())).float().mean())
    # the shipped model never saw these domains' documents (nor airline/retail at all): 0.26 vs 0.08 measured
    assert acc > uni_acc + 0.12 and acc > 2.5 * uni_acc, (acc, uni_acc)


def test_whole_heldout_sentences_far_more_likely_than_unigram(builtin, unigram):
    """A whole sentence/bullet of held-out prompts: per-token NELBO given the rest of the prompt,
    against the unigram cross-entropy of the same tokens."""
    rng = random.Random(0)
    gen = torch.Generator().manual_seed(0)
    model, uni = [], []
    for p in _heldout(16):
        s = rng.choice([s for s in p.spans if s.kind in ("bullet", "sentence")])
        model.append(prompt_span_nelbo(builtin, p, s.id, [], samples=8, generator=gen))
        toks = span_pieces(builtin.tokenizer, s)[2]
        uni.append(float(-unigram[toks].mean()))
    m, u = sum(model) / len(model), sum(uni) / len(uni)
    assert m < u - 0.8, (m, u)  # measured 4.35 vs 5.59 nats/token for the shipped model


def test_true_span_is_less_surprising_than_random(builtin):
    gen = torch.Generator().manual_seed(0)
    rng = random.Random(1)
    wins, true_l, rand_l = 0, [], []
    for p in _heldout(10):
        s = rng.choice([s for s in p.spans if s.kind in ("bullet", "sentence")])
        lay = build_layout(builtin, p, [s.id], [], factor=1.0)
        a, b = lay.runs[s.id]
        ids = list(lay.ids)
        ids[a:b] = span_pieces(builtin.tokenizer, s)[2]
        t = span_nelbo(builtin, ids, range(a, b), samples=8, generator=gen, per_token=True)
        ids[a:b] = [rng.randrange(6, builtin.tokenizer.vocab_size) for _ in range(b - a)]
        r = span_nelbo(builtin, ids, range(a, b), samples=8, generator=gen, per_token=True)
        assert math.isfinite(t) and math.isfinite(r)
        wins += t < r
        true_l.append(t)
        rand_l.append(r)
    assert wins >= 9
    assert sum(true_l) / len(true_l) + 3.0 < sum(rand_l) / len(rand_l)


def test_trace_conditioning_runs_end_to_end(builtin):
    from diffprompt.dlm.editor import DLMEditor

    p = make_prompt()
    tr = [make_trace(1, reward=0.0, comment="The agent cancelled without asking me to confirm.")]
    sid = next(s.id for s in p.spans if "Before cancelling" in s.text)
    ed = DLMEditor(builtin, steps=16, temperature=0.5)
    from diffprompt.editing import EditRequest

    cands = ed.propose(EditRequest(prompt=p, span_ids=(sid,), traces=tuple(tr), n=3, seed=0))
    assert cands and all(c.changed_span_ids == (sid,) for c in cands)
    assert all(c.text.startswith("# Airline agent policy") for c in cands)
