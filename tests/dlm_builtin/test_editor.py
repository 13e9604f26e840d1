from __future__ import annotations

import pytest

import diffprompt.dlm.sampler as sampler
from diffprompt.dlm.editor import DLMEditor
from diffprompt.editing import EditRequest, FakeEditor
from diffprompt.errors import ConfigError
from diffprompt.spans import replace_spans


def _targets(prompt):
    return [s.id for s in prompt.spans if s.kind == "bullet"][:2]


def _req(prompt, span_ids, traces, n, seed, **kw):
    return EditRequest(prompt=prompt, span_ids=tuple(span_ids), traces=tuple(traces), n=n, seed=seed, **kw)


def test_same_seed_same_candidates(tiny_dlm, prompt, traces):
    ed = DLMEditor(tiny_dlm, steps=8, temperature=1.0)
    a = ed.propose(_req(prompt, _targets(prompt), traces, 3, 11))
    b = ed.propose(_req(prompt, _targets(prompt), traces, 3, 11))
    assert [c.text for c in a] == [c.text for c in b]
    assert a and all(c.editor == "dlm" and c.seed == 11 and c.config_hash == ed.config_hash for c in a)
    c = ed.propose(_req(prompt, _targets(prompt), traces, 3, 12))
    assert [x.text for x in c] != [x.text for x in a]


def test_one_sampler_call_with_ragged_rows_and_only_masked_spans_change(tiny_dlm, prompt, traces, monkeypatch):
    calls = []
    real = sampler.infill

    def spy(logits_fn, ids, mask, **kw):
        calls.append(mask.sum(dim=1).tolist())
        return real(logits_fn, ids, mask, **kw)

    monkeypatch.setattr(sampler, "infill", spy)
    ed = DLMEditor(tiny_dlm, steps=8, temperature=1.0, factors=(0.75, 1.0, 1.5), resample_rounds=0)
    targets = _targets(prompt)
    cands = ed.propose(_req(prompt, targets, traces, 3, 3))
    assert len(calls) == 1
    assert len(calls[0]) == 3 and len(set(calls[0])) == 3  # one batch, rows with different mask counts
    assert [c.metadata["factor"] for c in cands] == [0.75, 1.0, 1.5][: len(cands)]
    for c in cands:
        assert c.masked_span_ids == tuple(targets)
        assert set(c.changed_span_ids) <= set(targets) and c.changed_span_ids
        fills = {k: v for k, v in c.metadata["fills"].items() if k in c.changed_span_ids}
        assert c.text == replace_spans(prompt.text, prompt.spans, fills)
        for s in prompt.spans:
            if s.id not in targets:
                assert s.text in c.text


def test_rejected_texts_are_not_proposed_again(tiny_dlm, prompt, traces):
    ed = DLMEditor(tiny_dlm, steps=8, temperature=0.0, factors=(1.0,))
    sid = _targets(prompt)[:1]
    first = ed.propose(_req(prompt, sid, traces, 1, 5))
    assert first
    ed.remember_rejected(sid[0], first[0].metadata["fills"][sid[0]])
    again = ed.propose(_req(prompt, sid, traces, 1, 5))  # greedy would reproduce it: must be dropped
    assert all(c.text != first[0].text for c in again)


def test_context_rejected_and_feedback(tiny_dlm, prompt, traces):
    ed = DLMEditor(tiny_dlm, steps=8, temperature=0.0, factors=(1.0,))
    sid = _targets(prompt)[:1]
    first = ed.propose(_req(prompt, sid, traces, 1, 5))
    rejected = {sid[0]: (first[0].metadata["fills"][sid[0]],)}
    again = ed.propose(_req(prompt, sid, traces, 1, 5, feedback=("confirm before cancelling",), rejected=rejected))
    assert all(c.text != first[0].text for c in again)


def test_bad_config_raises(tiny_dlm):
    with pytest.raises(ConfigError):
        DLMEditor(tiny_dlm, factors=())
    with pytest.raises(ConfigError):
        DLMEditor(tiny_dlm, nonsense=1)


def test_fake_editor_is_deterministic(prompt, traces):
    ed = FakeEditor(texts=("Rule A is stated.", "Rule B is stated.", "Rule C is stated."))
    t = _targets(prompt)
    a = ed.propose(_req(prompt, t, traces, 3, 1))
    assert [c.text for c in a] == [c.text for c in ed.propose(_req(prompt, t, traces, 3, 1))]
    for c in a:
        assert set(c.changed_span_ids) <= set(t)
        assert "- Rule" in c.text
