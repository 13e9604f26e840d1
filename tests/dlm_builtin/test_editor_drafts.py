"""Draft rows of the DLM editor: hints written into the slots, the least-agreed tokens re-masked."""

from __future__ import annotations

import pytest
import torch

import diffprompt.dlm.editor as editor_mod
import diffprompt.dlm.sampler as sampler
from diffprompt.dlm.drafts import draft_assignments, lowest_agreement, remask_count, remask_rows, word_groups
from diffprompt.dlm.editor import DLMEditor
from diffprompt.dlm.layout import build_layout, remask
from diffprompt.editing import EditRequest
from diffprompt.errors import ConfigError, ValidationError

from .conftest import PROMPT, make_prompt

HINT = "Offer a travel voucher when a flight is delayed by more than three hours."
SCRAMBLED = "- Ofefr a tarvel vuocher wehn a fligth is dleayed by mroe tahn trhee huors."
OTHER = "Tell the user the baggage allowance before adding checked bags to a reservation."


def _with_slot(text: str = PROMPT):
    """The test prompt with an insertion slot: a copy of the last bullet right after it."""
    line = "- Basic economy flights cannot be modified.\n"
    prompt = make_prompt(text.replace(line, line + line))
    bullets = [s for s in prompt.spans if s.kind == "bullet"]
    return prompt, bullets[-1].id, bullets


def _req(prompt, span_ids, *, inserts=(), hints=(), n=2, seed=0, traces=(), **kw):
    return EditRequest(
        prompt=prompt,
        span_ids=tuple(span_ids),
        insert_span_ids=tuple(inserts),
        hints=tuple(hints),
        traces=tuple(traces),
        n=n,
        seed=seed,
        **kw,
    )


def _summary(cands):
    return [(c.text, c.metadata, c.changed_span_ids) for c in cands]


def test_no_hints_is_the_plain_editor(tiny_dlm, prompt, traces):
    span_ids = [s.id for s in prompt.spans if s.kind == "bullet"][:2]
    plain = DLMEditor(tiny_dlm, steps=8, temperature=1.0, draft_share=0.0)
    drafty = DLMEditor(tiny_dlm, steps=8, temperature=1.0, draft_share=1.0)
    req = _req(prompt, span_ids, n=3, seed=11, traces=traces)
    a, b = plain.propose(req), drafty.propose(req)
    assert a and _summary(a) == _summary(b)
    assert all("draft" not in c.metadata and "remask" not in c.metadata for c in b)
    # hints with draft_share=0 are ignored: the same candidates as without hints
    hinted = _req(prompt, span_ids, n=3, seed=11, traces=traces, hints=(HINT,))
    assert _summary(plain.propose(hinted)) == _summary(a)
    assert plain.config_hash != drafty.config_hash


def test_remask_count_and_lowest_agreement_unit():
    assert [remask_count(10, 0.2), remask_count(10, 0.4), remask_count(3, 0.2), remask_count(5, 0.0)] == [2, 4, 1, 0]
    assert remask_count(4, 1.0) == 4 and remask_count(0, 0.5) == 0
    vocab = 5
    ids = [0, 1, 2, 3, 4, 0, 1]
    own_logit = [9.0, 0.5, 3.0, -2.0, 1.0, 4.0, 0.0]  # the logit of each position's own token
    logits = torch.zeros((len(ids), vocab))
    for p, (t, z) in enumerate(zip(ids, own_logit, strict=True)):
        logits[p, t] = z
    positions = [1, 2, 3, 4, 5, 6]  # position 0 is not a draft token (its low score must not count)
    logits[0, 0] = -9.0
    assert lowest_agreement(logits, ids, positions, 0.34) == [3, 6]  # floor(0.34*6)=2 lowest: -2.0, 0.0
    assert lowest_agreement(logits, ids, positions, 0.5) == [1, 3, 6]
    assert lowest_agreement(logits, ids, positions, 0.01) == [3]  # at least one
    assert lowest_agreement(logits, ids, positions, 0.0) == []
    # a token the model finds likely through its competitors' mass: probability, not the raw logit
    crowded = logits.clone()
    crowded[4] = torch.tensor([5.0, 5.0, 5.0, 5.0, 1.0])  # own token 4 at p ~ 0.005
    assert lowest_agreement(crowded, ids, positions, 0.01) == [4]
    # whole groups (indices into positions), scored by their least-agreed token, within the count
    groups = [[0, 1], [2, 3], [4], [5]]  # positions (1, 2), (3, 4), (5,), (6,)
    assert lowest_agreement(logits, ids, positions, 0.34, groups) == [3, 4]  # -2.0 is in (3, 4)
    assert lowest_agreement(logits, ids, positions, 0.5, groups) == [3, 4, 6]  # (1, 2) would make 4 > 3
    assert lowest_agreement(logits, ids, positions, 0.01, groups) == [3, 4]  # the first group is whole


def test_word_groups_follow_the_decoded_words(tiny_dlm):
    tok = tiny_dlm.tokenizer
    ids = tok.encode(" Confirm the reservation, then cancel it.", add_special_tokens=False)
    groups = word_groups(tok, ids)
    words = [tok.decode([ids[i] for i in g]).strip() for g in groups]
    assert words == ["Confirm", "the", "reservation", ",", "then", "cancel", "it", "."]
    assert [i for g in groups for i in g] == list(range(len(ids)))


def test_layout_drafts_fixed_and_remask(tiny_dlm):
    prompt, slot, bullets = _with_slot()
    tok = tiny_dlm.tokenizer
    lay = build_layout(tiny_dlm, prompt, [bullets[0].id, slot], [], drafts={slot: "- " + HINT})
    s, e = lay.runs[slot]
    draft = tok.encode(" " + HINT, add_special_tokens=False)  # the marker's space goes with the content
    assert list(lay.ids[s:e]) == draft and lay.fixed == frozenset(range(s, e))
    assert lay.prefixes[slot] == "- "
    s0, e0 = lay.runs[bullets[0].id]
    assert lay.mask_positions == list(range(s0, e0))  # only the plain slot is sampled
    again = remask(lay, [s + 1, s + 3], tiny_dlm.mask_id)
    assert again.ids[s + 1] == again.ids[s + 3] == tiny_dlm.mask_id and again.ids[s] == lay.ids[s]
    assert again.mask_positions == [*range(s0, e0), s + 1, s + 3]
    with pytest.raises(ValidationError):
        remask(lay, [s0], tiny_dlm.mask_id)  # a plain mask position is no draft token
    with pytest.raises(ValidationError):
        build_layout(tiny_dlm, prompt, [slot], [], drafts={bullets[0].id: HINT})  # not masked


def test_draft_row_keeps_the_hint_and_remasks_the_least_agreed(tiny_dlm, traces, monkeypatch):
    prompt, slot, bullets = _with_slot()
    scored = []
    real_remask_rows = editor_mod.remask_rows

    def spy_remask(dlm, layouts, fractions, **kw):
        assert kw == {"unit": "token"}
        out = real_remask_rows(dlm, layouts, fractions, **kw)
        scored.append((list(layouts), list(fractions), out))
        return out

    calls = []
    real_infill = sampler.infill

    def spy_infill(logits_fn, ids, mask, **kw):
        res = real_infill(logits_fn, ids, mask, **kw)
        calls.append((ids.clone(), mask.clone(), res.ids.clone()))
        return res

    monkeypatch.setattr(editor_mod, "remask_rows", spy_remask)
    monkeypatch.setattr(sampler, "infill", spy_infill)
    ed = DLMEditor(
        tiny_dlm, steps=8, temperature=1.0, draft_share=0.5, draft_remask=[0.2], draft_unit="token", resample_rounds=0
    )
    req = _req(prompt, [bullets[0].id, slot], inserts=[slot], hints=(HINT,), n=2, seed=4, traces=traces)
    cands = ed.propose(req)
    assert len(scored) == 1 and len(calls) == 1  # one scoring forward, then one batched sampler call
    (before,), fractions, ((after, units),) = scored[0]
    assert sorted(p for u in units for p in u.positions) == sorted(set(range(*before.runs[slot])) - after.fixed)
    assert fractions == [0.2]
    s, e = before.runs[slot]
    draft = tiny_dlm.tokenizer.encode(" " + HINT, add_special_tokens=False)
    assert list(before.ids[s:e]) == draft
    # the re-masked positions are exactly the lowest-probability draft tokens of one forward
    logits = tiny_dlm.logits(torch.tensor([before.ids]))[0]
    picked = lowest_agreement(logits, before.ids, list(range(s, e)), 0.2)
    assert len(picked) == remask_count(len(draft), 0.2) >= 1
    assert sorted(set(range(s, e)) - after.fixed) == picked
    own = torch.log_softmax(logits.float(), dim=-1)[torch.arange(s, e), torch.tensor(draft)]
    rest = [float(own[p - s]) for p in range(s, e) if p not in picked]
    assert max(float(own[p - s]) for p in picked) <= min(rest)  # independently: the least agreed
    # the sampler filled only those positions of the draft (row 0 is the draft row)
    ids_in, mask_in, ids_out = calls[0]
    off = ids_in.shape[1] - len(after)
    run_mask = mask_in[0, off + s : off + e].nonzero().flatten().add(s).tolist()
    assert run_mask == picked
    kept = sum(int(ids_out[0, off + p]) == draft[p - s] for p in range(s, e))
    assert kept >= (1 - 0.2) * len(draft)
    # metadata: the draft row records its hint and fraction, the plain row records none
    by_row = {c.metadata["row"]: c for c in cands}
    assert by_row[0].metadata["draft"] == {slot: HINT} and by_row[0].metadata["remask"] == 0.2
    assert by_row[0].metadata["fills"][slot].startswith("- ")
    assert by_row[0].metadata["forwards"] == ed.last_forwards
    if 1 in by_row:
        assert "draft" not in by_row[1].metadata and "remask" not in by_row[1].metadata


def test_word_unit_remasks_whole_words(tiny_dlm):
    prompt, slot, _ = _with_slot()
    lay = build_layout(tiny_dlm, prompt, [slot], [], drafts={slot: HINT})
    s, e = lay.runs[slot]
    ((after, _units),) = remask_rows(tiny_dlm, [lay], [0.4], unit="word")
    picked = sorted(set(range(s, e)) - after.fixed)
    groups = [[s + i for i in g] for g in word_groups(tiny_dlm.tokenizer, list(lay.ids[s:e]))]
    assert picked and all(set(g) <= set(picked) or not set(g) & set(picked) for g in groups)  # no half word
    assert len(picked) <= max(remask_count(e - s, 0.4), max(len(g) for g in groups))
    logits = tiny_dlm.logits(torch.tensor([lay.ids]))[0]
    own = torch.log_softmax(logits.float(), dim=-1)[torch.arange(s, e), torch.tensor(lay.ids[s:e])]
    worst = min(range(s, e), key=lambda p: float(own[p - s]))
    assert worst in picked  # the least-agreed token's word always goes
    assert all(after.ids[p] == tiny_dlm.mask_id for p in picked)


def test_in_place_span_gets_only_a_hint_that_restates_it(tiny_dlm):
    prompt = make_prompt()
    target = [s for s in prompt.spans if s.kind == "bullet"][-1]  # "- Basic economy flights ..."
    req = _req(prompt, [target.id], hints=(HINT,), n=2)
    assert draft_assignments(req, 2, seed=0) == [{}, {}]
    ed = DLMEditor(tiny_dlm, steps=4, temperature=1.0, draft_share=1.0)
    assert all("draft" not in c.metadata for c in ed.propose(req))

    garbled = make_prompt(PROMPT.replace("- Basic economy flights cannot be modified.", SCRAMBLED))
    target = next(s for s in garbled.spans if s.text == SCRAMBLED)
    req = _req(garbled, [target.id], hints=(OTHER, HINT), n=2)
    assert draft_assignments(req, 2, seed=0) == [{target.id: HINT}, {target.id: HINT}]
    cands = ed.propose(req)
    assert cands and all(c.metadata["draft"] == {target.id: HINT} for c in cands)
    # ... unless it was rejected for that span before
    rejected = _req(garbled, [target.id], hints=(HINT,), rejected={target.id: ("- " + HINT,)})
    assert draft_assignments(rejected, 1, seed=0) == [{}]


def test_stated_hints_are_skipped_and_rows_explore(tiny_dlm):
    prompt, slot, bullets = _with_slot()
    stated = bullets[1].text[2:]  # the confirmation bullet, visible in the prompt
    assert draft_assignments(_req(prompt, [slot], inserts=[slot], hints=(stated,)), 2, seed=0) == [{}, {}]
    req = _req(prompt, [slot], inserts=[slot], hints=(HINT, OTHER))
    greedy = draft_assignments(req, 3, seed=0, explore=0.0)
    assert len({tuple(a.items()) for a in greedy}) == 1
    explored = draft_assignments(req, 3, seed=0, explore=1.0)
    assert explored[0] == greedy[0] and explored[1] != explored[0]  # later rows try the other hint
    assert draft_assignments(req, 2, seed=0) == draft_assignments(req, 2, seed=0)  # seeded


def test_bad_draft_config_raises(tiny_dlm):
    for bad in ({"draft_remask": ()}, {"draft_remask": (0.2, 1.5)}, {"draft_remask": [-0.1]},
                {"draft_share": -0.1}, {"draft_share": 1.5}, {"draft_explore": 2.0}, {"draft_unit": "char"}):
        with pytest.raises(ConfigError, match="DLMEditor draft_"):
            DLMEditor(tiny_dlm, **bad)
    ed = DLMEditor(tiny_dlm, draft_remask=[0.1, 0.3])  # JSON lists become tuples
    assert ed.config.draft_remask == (0.1, 0.3)
    assert ed.config_hash != DLMEditor(tiny_dlm).config_hash


def test_keep_preferred_puts_back_a_draft_word_the_model_does_not_prefer():
    from diffprompt.dlm.drafts import Remasked, keep_preferred

    lp = torch.log_softmax(torch.tensor([[0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]]), dim=-1)
    unit = Remasked(positions=(1, 2), draft_ids=(1, 2), logprobs=lp)  # the draft is the model's favourite
    ids = [9, 3, 3, 9]
    assert keep_preferred(ids, [unit]) == 1 and ids == [9, 1, 2, 9]
    better = Remasked(positions=(1, 2), draft_ids=(0, 0), logprobs=lp)  # the sample beats the draft
    ids = [9, 1, 2, 9]
    assert keep_preferred(ids, [better]) == 0 and ids == [9, 1, 2, 9]
    assert keep_preferred(ids, []) == 0


def test_hints_all_stated_leave_insertion_slots_empty(tiny_dlm):
    """A hinted request whose hints the prompt states already: rows rewrite in place, never insert."""
    stated = PROMPT.replace("- Basic economy flights cannot be modified.\n",
                            f"- Basic economy flights cannot be modified.\n- {HINT}\n")
    prompt, _, bullets = _with_slot(stated)
    slot = next(b.id for b in bullets if b.id.endswith("-1"))  # the copy after the basic-economy bullet
    in_place = bullets[0].id
    ed = DLMEditor(tiny_dlm, steps=8, temperature=1.0)
    req = _req(prompt, [in_place, slot], inserts=[slot], hints=(HINT,), n=3, seed=5)
    assert draft_assignments(req, 3, seed=5) == [{}, {}, {}]  # nothing left to draft
    cands = ed.propose(req)
    assert cands  # the in-place span is still rewritten
    for c in cands:
        assert "draft" not in c.metadata
        assert slot not in c.metadata["fills"] or not c.metadata["fills"][slot].strip()
        # the slot keeps the anchor's copy unchanged (the round removes an unchanged copy again)
        assert c.text.count("Basic economy flights cannot be modified.") == 2 and slot not in c.changed_span_ids
        assert bullets[0].text not in c.text  # ... and the in-place span was rewritten
    # an insert-only request then has no row at all
    assert ed.propose(_req(prompt, [slot], inserts=[slot], hints=(HINT,), n=2, seed=5)) == []
