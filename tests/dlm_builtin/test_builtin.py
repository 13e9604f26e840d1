"""The shipped built-in model: loads offline, fills held-out policy sentences well above unigram."""

from __future__ import annotations

import random

import pytest
import torch

from diffprompt.dlm.base import DiffusionLM
from diffprompt.dlm.corpus import generate_documents
from diffprompt.dlm.layout import build_layout
from diffprompt.dlm.likelihood import prompt_span_nelbo, span_nelbo
from diffprompt.dlm.model import BUILTIN_DIR, load_builtin
from diffprompt.dlm.sampler import infill
from diffprompt.spans import replace_spans

from .conftest import make_prompt, make_trace

HELDOUT_SEED = 1_000_003  # the held-out stream of the shipped run (seed 0), see corpus.split_corpus


@pytest.fixture(scope="module")
def builtin():
    torch.set_num_threads(1)
    return load_builtin()


def _heldout(n: int):
    docs = generate_documents(n, HELDOUT_SEED, include_worlds=False)
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


def test_fills_heldout_sentences_above_unigram(builtin):
    from diffprompt.dlm.train import unigram_logprobs

    uni_top = int(unigram_logprobs(builtin.tokenizer, generate_documents(300, 0, include_worlds=False)).argmax())
    rng = random.Random(0)
    rows, truths = [], []
    for p in _heldout(24):
        spans = [s for s in p.spans if s.kind in ("bullet", "sentence")]
        s = rng.choice(spans)
        lay = build_layout(builtin, p, [s.id], [], factor=1.0)
        rows.append(lay)
        truths.append(builtin.tokenizer.encode(_content(s)))
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), builtin.pad_id)
    mask = torch.zeros_like(ids, dtype=torch.bool)
    attn = torch.zeros_like(ids)
    for b, lay in enumerate(rows):
        off = width - len(lay)
        ids[b, off:] = torch.tensor(lay.ids)
        attn[b, off:] = 1
        for q in lay.mask_positions:
            mask[b, off + q] = True
    res = infill(
        builtin.logits,
        ids,
        mask,
        steps=64,
        temperature=0.0,
        attention_mask=attn,
        mask_id=builtin.mask_id,
        generator=torch.Generator().manual_seed(0),
    )
    correct = uni = n = 0
    for b, (lay, truth) in enumerate(zip(rows, truths, strict=True)):
        off = width - len(lay)
        ((s, e),) = lay.runs.values()
        got = res.ids[b, off + s : off + e].tolist()
        correct += sum(int(g == t) for g, t in zip(got, truth, strict=True))
        uni += sum(int(t == uni_top) for t in truth)
        n += len(truth)
    acc, uni_acc = correct / n, uni / n
    assert acc > uni_acc + 0.15, (acc, uni_acc)


def test_true_span_is_less_surprising_than_random(builtin):
    gen = torch.Generator().manual_seed(0)
    rng = random.Random(1)
    wins, true_l, rand_l = 0, [], []
    prompts = _heldout(10)
    for i, p in enumerate(prompts):
        spans = [s for s in p.spans if s.kind in ("bullet", "sentence")]
        s = rng.choice(spans)
        lay = build_layout(builtin, p, [s.id], [], factor=1.0)
        a, b = lay.runs[s.id]
        ids = list(lay.ids)
        ids[a:b] = builtin.tokenizer.encode(_content(s))
        t = span_nelbo(builtin, ids, range(a, b), samples=8, generator=gen, per_token=True)
        ids[a:b] = [rng.randrange(6, builtin.tokenizer.vocab_size) for _ in range(b - a)]
        r = span_nelbo(builtin, ids, range(a, b), samples=8, generator=gen, per_token=True)
        assert t == t and r == r and t < float("inf")  # finite
        wins += t < r
        true_l.append(t)
        # a fluent sentence from another document in the same place
        other = rng.choice([x for x in prompts[(i + 1) % len(prompts)].spans if x.kind == "sentence"] or spans)
        q = make_prompt(replace_spans(p.text, p.spans, {s.id: ("- " if s.kind == "bullet" else "") + _content(other)}))
        new_id = next(x.id for x in q.spans if _content(other) in x.text)
        rand_l.append(prompt_span_nelbo(builtin, q, new_id, [], samples=8, generator=gen))
    assert wins >= 9
    assert sum(true_l) / len(true_l) < sum(rand_l) / len(rand_l)


def test_trace_conditioning_runs_end_to_end(builtin):
    from diffprompt.dlm.editor import DLMEditor

    p = make_prompt()
    tr = [make_trace(1, reward=0.0, comment="The agent cancelled without asking me to confirm.")]
    sid = next(s.id for s in p.spans if "Before cancelling" in s.text)
    ed = DLMEditor(builtin, steps=16, temperature=0.5)
    cands = ed.propose(p, [sid], tr, 3, seed=0)
    assert cands and all(c.changed_span_ids == (sid,) for c in cands)
    assert all(c.text.startswith("# Airline agent policy") for c in cands)
