from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffprompt.dlm.layout import build_layout, decode_candidate, render_trace
from diffprompt.dlm.redact import redact
from diffprompt.errors import ModelError, ValidationError
from diffprompt.spans import replace_spans
from training.dlm.corpus import DOMAINS, rule

from .conftest import make_prompt, make_trace


def _fill(dlm, layout, texts: dict[str, str], pad_eos: bool = True) -> list[int]:
    """Write ``texts`` into the mask runs (truncated / EOS-padded to the run length)."""
    ids = list(layout.ids)
    for sid, (s, e) in layout.runs.items():
        text = " " + texts[sid] if layout.prefixes.get(sid) else texts[sid]  # the space goes with the content
        new = dlm.tokenizer.encode(text)[: e - s]
        ids[s:e] = new + [dlm.eos_id] * (e - s - len(new))
    return ids


def _content(span) -> str:
    return span.text[2:] if span.kind == "bullet" else span.text


def test_identity_round_trip(tiny_dlm, prompt, traces):
    ids = [s.id for s in prompt.spans if s.kind in ("bullet", "sentence")][:3]
    lay = build_layout(tiny_dlm, prompt, ids, traces, factor=1.0)
    by_id = {s.id: s for s in prompt.spans}
    text, changed = decode_candidate(tiny_dlm, prompt, lay, _fill(tiny_dlm, lay, {i: _content(by_id[i]) for i in ids}))
    assert text == prompt.text
    assert changed == ()


def test_only_chosen_spans_change(tiny_dlm, prompt, traces):
    bullets = [s for s in prompt.spans if s.kind == "bullet"]
    target = bullets[1]
    lay = build_layout(tiny_dlm, prompt, [target.id], traces, factor=1.5)
    new = "Always confirm the details and obtain an explicit yes."
    text, changed = decode_candidate(tiny_dlm, prompt, lay, _fill(tiny_dlm, lay, {target.id: new}))
    assert changed == (target.id,)
    assert text == replace_spans(prompt.text, prompt.spans, {target.id: "- " + new})
    for s in prompt.spans:
        if s.id != target.id:
            assert s.text in text


def test_eos_inside_span_is_stripped_and_all_eos_deletes(tiny_dlm, prompt, traces):
    sent = [s for s in prompt.spans if s.kind == "sentence"][-1]
    lay = build_layout(tiny_dlm, prompt, [sent.id], traces, factor=1.0)
    s, e = lay.runs[sent.id]
    ids = list(lay.ids)
    words = tiny_dlm.tokenizer.encode("Be polite.")
    ids[s:e] = [tiny_dlm.eos_id, *words, tiny_dlm.eos_id, tiny_dlm.pad_id][: e - s] + [tiny_dlm.eos_id] * max(
        0, e - s - len(words) - 3
    )
    text, changed = decode_candidate(tiny_dlm, prompt, lay, ids)
    assert "Be polite." in text and changed == (sent.id,)
    ids[s:e] = [tiny_dlm.eos_id] * (e - s)
    text, changed = decode_candidate(tiny_dlm, prompt, lay, ids)
    assert sent.text not in text and changed == (sent.id,)
    assert text == replace_spans(prompt.text, prompt.spans, {sent.id: ""})


def test_masks_never_merge_with_neighbours(tiny_dlm, prompt, traces):
    ids = [s.id for s in prompt.spans if s.kind != "heading"]
    lay = build_layout(tiny_dlm, prompt, ids, traces, factor=1.0)
    assert sum(e - s for s, e in lay.runs.values()) == sum(1 for i in lay.ids if i == tiny_dlm.mask_id)
    for s, e in lay.runs.values():
        assert all(lay.ids[p] == tiny_dlm.mask_id for p in range(s, e))
        assert lay.ids[s - 1] != tiny_dlm.mask_id and lay.ids[e] != tiny_dlm.mask_id
    # visible tokens of the prompt section decode to the prompt with span contents removed
    runs = sorted(lay.runs.values())
    vis, pos = [], lay.prompt_start
    for s, e in runs:
        vis.append(tiny_dlm.tokenizer.decode(list(lay.ids[pos:s])))
        pos = e
    vis.append(tiny_dlm.tokenizer.decode(list(lay.ids[pos:])))
    by_id = {s.id: s for s in prompt.spans}
    assert "".join(vis) == replace_spans(
        prompt.text, prompt.spans, {i: ("-" if by_id[i].kind == "bullet" else "") + "\x00" for i in ids}
    ).replace("\x00", "")


def test_factor_scales_run_length(tiny_dlm, prompt, traces):
    sid = next(s.id for s in prompt.spans if s.kind == "bullet")
    lens = [lambda lay: lay.runs[sid][1] - lay.runs[sid][0]]
    n = {f: lens[0](build_layout(tiny_dlm, prompt, [sid], traces, factor=f)) for f in (0.75, 1.0, 1.5)}
    assert n[0.75] < n[1.0] < n[1.5]
    assert n[1.5] == round(n[1.0] * 1.5)


def test_pii_redacted_in_layout(tiny_dlm, prompt):
    pii = ["jane.roe@example.com", "+1 (555) 123-4567", "4111 1111 1111 1111", "742 Evergreen Terrace"]
    tr = make_trace(
        9,
        reward=0.0,
        user=f"I am {pii[0]}, phone {pii[1]}, card {pii[2]}, I live at {pii[3]}.",
        comment=f"Email me at {pii[0]}",
    )
    text = render_trace(tr, 1)
    lay = build_layout(tiny_dlm, prompt, [prompt.spans[2].id], [tr], factor=1.0)
    decoded = tiny_dlm.tokenizer.decode(list(lay.ids))
    for p in pii:
        assert p not in text and p not in decoded
    for tag in ("[EMAIL]", "[PHONE]", "[CARD]", "[ADDRESS]"):
        assert tag in text
    assert "cancel_reservation" in text  # agent actions are shown


def test_redact_keeps_ordinary_ids():
    s = "reservation ABC123 on 2024-05-15 for 1200 dollars, user mia_li_3668, flight HAT170"
    assert redact(s) == s


def test_truncation_drops_traces_never_prompt(tiny_dlm, prompt):
    long = [make_trace(i, reward=0.0, comment="too slow " * 200) for i in range(5)]
    sid = prompt.spans[3].id
    full = build_layout(tiny_dlm, prompt, [sid], [], factor=1.0)
    lay = build_layout(tiny_dlm, prompt, [sid], long, factor=1.0, k_traces=5, trace_tokens=400)
    assert len(lay) <= tiny_dlm.max_length
    assert lay.ids[lay.prompt_start :] == full.ids[full.prompt_start :]
    assert lay.traces_used >= 1


def test_prompt_too_long_raises(tiny_dlm):
    p = make_prompt("Rule number one is to be kind to everyone. " * 200)
    with pytest.raises(ModelError, match="max_length"):
        build_layout(tiny_dlm, p, [p.spans[0].id], [], factor=1.0)


def test_unknown_span_raises(tiny_dlm, prompt):
    with pytest.raises(ValidationError):
        build_layout(tiny_dlm, prompt, ["sp_nope"], [])


def _random_prompt(seed: int) -> str:
    rng = random.Random(seed)
    d = rng.choice(DOMAINS)
    lines = ["# Policy", ""]
    for _ in range(rng.randint(2, 6)):
        lines.append(("- " if rng.random() < 0.5 else "") + rule(d, rng))
        lines.append("" if rng.random() < 0.5 else "  ")
    return "\n".join(lines)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    seed=st.integers(0, 10_000),
    pick=st.integers(0, 2**16),
    factor=st.sampled_from([0.5, 0.75, 1.0, 1.5]),
    new=st.text(alphabet="abcdefghij klmnop.,", min_size=1, max_size=40),
)
def test_round_trip_property(tiny_dlm, seed, pick, factor, new):
    p = make_prompt(_random_prompt(seed))
    rng = random.Random(pick)
    chosen = [s.id for s in p.spans if s.kind != "heading" and rng.random() < 0.5] or [p.spans[-1].id]
    lay = build_layout(tiny_dlm, p, chosen, [make_trace(1, reward=0.0)], factor=factor)
    filled = _fill(tiny_dlm, lay, dict.fromkeys(chosen, new))
    text, changed = decode_candidate(tiny_dlm, p, lay, filled)
    assert set(changed) <= set(chosen)
    untouched = [s for s in p.spans if s.id not in chosen]
    for s in untouched:
        assert s.text in text
    # everything outside the chosen spans is byte-identical: re-apply the decoded fills to the original
    from diffprompt.dlm.layout import decode_fills

    fills = decode_fills(tiny_dlm, lay, filled)
    by_id = {s.id: s for s in p.spans}
    expected = replace_spans(p.text, p.spans, {k: v for k, v in fills.items() if v != by_id[k].text})
    assert text == expected


def test_hf_tokenizer_round_trip(tiny_dlm, small_tok, prompt, traces):
    from transformers import PreTrainedTokenizerFast

    hf = PreTrainedTokenizerFast(
        tokenizer_object=small_tok._tok, pad_token="[PAD]", mask_token="[MASK]", eos_token="[EOS]"
    )

    class HFWrapped:
        name = "hf-tiny"
        tokenizer = hf
        mask_id = hf.mask_token_id
        pad_id = hf.pad_token_id
        eos_id = hf.eos_token_id
        device = tiny_dlm.device
        max_length = 512

        def logits(self, ids, attention_mask=None):
            return tiny_dlm.logits(ids, attention_mask)

    dlm = HFWrapped()
    ids = [s.id for s in prompt.spans if s.kind == "bullet"]
    lay = build_layout(dlm, prompt, ids, traces, factor=1.0)
    by_id = {s.id: s for s in prompt.spans}
    text, changed = decode_candidate(dlm, prompt, lay, _fill(dlm, lay, {i: by_id[i].text[2:] for i in ids}))
    assert text == prompt.text and changed == ()


def test_fill_running_into_a_new_heading_is_cut(tiny_dlm, prompt, traces):
    sent = [s for s in prompt.spans if s.kind == "sentence"][-1]
    lay = build_layout(tiny_dlm, prompt, [sent.id], traces, factor=1.5)
    text, changed = decode_candidate(tiny_dlm, prompt, lay, _fill(tiny_dlm, lay, {sent.id: "Be polite. ## Refunds"}))
    assert changed == (sent.id,)
    assert text == replace_spans(prompt.text, prompt.spans, {sent.id: "Be polite."})
