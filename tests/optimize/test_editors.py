from __future__ import annotations

import pytest

from diffprompt.editing import EditRequest
from diffprompt.errors import ConfigError
from diffprompt.optimize.build import build_editor
from diffprompt.optimize.editors import ARInfillEditor, LLMCritic, LLMFiller, LLMWriter, RewriteEditor
from diffprompt.optimize.oracle import OracleEditor, OracleRewriteEditor
from diffprompt.spans import segment
from tests.optimize.helpers import PROMPT, FakeClient, twf, version

HINT = "Basic economy flights cannot be modified or changed after booking."


def _id(v, needle):
    return next(s.id for s in v.spans if needle in s.text)


def _req(v, span_ids, traces, n, seed, **kw):
    return EditRequest(prompt=v, span_ids=tuple(span_ids), traces=tuple(traces), n=n, seed=seed, **kw)


def test_ar_infill_with_llm_fills_same_masks():
    v = version()
    target = _id(v, "Basic economy")
    client = FakeClient(['{"fills": {"1": "Never modify basic economy flights."}}'])
    ed = ARInfillEditor(LLMFiller(client))
    cands = ed.propose(_req(v, [target], [twf(1, 0.0, "changed my flight")], 2, 7))
    assert len(client.requests) == 2 and len(cands) == 1  # the same answer twice is one candidate
    c = cands[0]
    assert "- Never modify basic economy flights." in c.text
    assert c.masked_span_ids == (target,) and c.changed_span_ids == (target,)
    assert c.text.replace("- Never modify basic economy flights.", "") == PROMPT.replace(
        "- Basic economy flights cannot be modified.", ""
    )
    sent = client.requests[0][0]["content"]
    assert "[MASK_1]" in sent and "changed my flight" in sent and "Basic economy" not in sent


def test_ar_infill_garbage_reply_keeps_prompt():
    v = version()
    ed = ARInfillEditor(LLMFiller(FakeClient(["I cannot help"])))
    (c,) = ed.propose(_req(v, [_id(v, "Refunds")], [], 1, 0))
    assert c.text == v.text and c.changed_span_ids == ()


def test_hint_filler_uses_hints_and_respects_rejected_memory():
    v = version()
    target = _id(v, "Basic economy")
    ed = OracleEditor(explore=0.0)
    (c,) = ed.propose(_req(v, [target], [], 1, 0, hints=(HINT,)))
    assert HINT in c.text and c.editor == "oracle"
    (c2,) = ed.propose(_req(v, [target], [], 1, 0, hints=(HINT,), rejected={target: (f"- {HINT}",)}))
    assert HINT not in c2.text


def test_hint_filler_skips_already_stated_hints():
    v = version()
    ed = OracleEditor(explore=0.0)
    hints = ("Refunds go to the original payment method.",)
    (c,) = ed.propose(_req(v, [_id(v, "Basic economy")], [], 1, 0, hints=hints))
    assert c.text == v.text


def test_rewrite_offline_replaces_garbled_and_inserts_missing():
    text = PROMPT.replace("Basic economy flights cannot be modified.", "Flights economy basic modified cannot be.")
    v = version(text)
    ed = OracleRewriteEditor(dropout=0.0)
    (c,) = ed.propose(_req(v, [], [twf(1, 0.0)], 1, 3, hints=(HINT, "Extra checked bags cost 50 dollars each.")))
    assert HINT in c.text and "Flights economy basic" not in c.text
    assert "Extra checked bags cost 50 dollars each." in c.text
    texts = [s.text for s in segment(c.text)]
    assert (
        texts.index("- Extra checked bags cost 50 dollars each.")
        == texts.index("- Each passenger may check at most two bags.") + 1
    )
    assert c.editor == "oracle-rewrite" and c.changed_span_ids


def test_rewrite_with_llm_uses_templates():
    v = version()
    critic = FakeClient(["- state the basic economy rule clearly"])
    writer = FakeClient(["```\nNew prompt text.\n```"])
    ed = RewriteEditor(LLMCritic(critic), LLMWriter(writer))
    (c,) = ed.propose(_req(v, [], [twf(1, 0.0, "bad")], 1, 0, best=(PROMPT, 0.5)))
    assert c.text == "New prompt text."
    assert "bad" in critic.requests[0][0]["content"]
    assert "Best earlier version" in writer.requests[0][0]["content"]


def test_rewrite_of_a_prompt_too_long_for_the_writer_edits_only_the_weak_spans():
    v = version()
    sid = _id(v, "Basic economy")
    critic = FakeClient(["- the agent changed a basic economy flight"])
    writer = FakeClient(["Never change the flights of a basic economy reservation."])
    ed = RewriteEditor(LLMCritic(critic), LLMWriter(writer, max_output_tokens=16))  # PROMPT is ~60 tokens
    (c,) = ed.propose(_req(v, [sid], [twf(1, 0.0, "bad")], 1, 0))
    assert c.metadata["mode"] == "spans" and c.masked_span_ids == (sid,)
    assert "Never change the flights of a basic economy reservation." in c.text
    assert "Refunds go to the original payment method." in c.text  # the rest is kept word for word
    assert "Basic economy flights cannot be modified." not in c.text
    assert "The instruction to rewrite" in writer.requests[0][0]["content"]
    # a writer with room for the whole prompt still rewrites it whole
    whole = RewriteEditor(LLMCritic(critic), LLMWriter(FakeClient(["New prompt text."]), max_output_tokens=4096))
    (w,) = whole.propose(_req(v, [sid], [twf(1, 0.0, "bad")], 1, 0))
    assert w.text == "New prompt text."


def test_rewrite_offline_replaces_scrambled_copy():
    text = PROMPT.replace(
        "Always confirm with the user before booking.", "Alayws cfinorm wtih the user bofree bonkoig."
    )
    v = version(text)
    hints = ("Always confirm with the user before booking.",)
    (c,) = OracleRewriteEditor(dropout=0.0).propose(_req(v, [], [twf(1, 0.0)], 1, 0, hints=hints))
    assert "Alayws" not in c.text and "- Always confirm with the user before booking." in c.text


@pytest.mark.parametrize("kind", ["ar", "rewrite"])
def test_lm_baselines_need_a_model(kind):
    with pytest.raises(ConfigError, match="needs a model: pass --editor-model"):
        build_editor(kind)


def test_build_editor_kinds():
    assert isinstance(build_editor("ar", model="m"), ARInfillEditor)
    assert isinstance(build_editor("rewrite", model="m"), RewriteEditor)
    assert build_editor("oracle").capabilities.oracle and build_editor("oracle-rewrite").capabilities.whole_prompt
    with pytest.raises(ConfigError, match="unknown editor"):
        build_editor("hints")


def test_edit_request_rejects_unknown_spans_and_stray_slots():
    from diffprompt.errors import ValidationError

    v = version()
    with pytest.raises(ValidationError, match="does not have"):
        EditRequest(prompt=v, span_ids=("sp_nope",))
    sid = _id(v, "Refunds")
    with pytest.raises(ValidationError, match="insertion slots"):
        EditRequest(prompt=v, span_ids=(sid,), insert_span_ids=(_id(v, "Basic"),))
    with pytest.raises(ValidationError, match="n >= 1"):
        EditRequest(prompt=v, n=0)


def test_llm_editors_unescape_html_entities():
    v = version()
    sid = _id(v, "Basic economy")
    filler = FakeClient(['{"fills": {"1": "Don&#39;t change a basic economy flight &amp; its seats."}}'])
    (c,) = ARInfillEditor(LLMFiller(filler)).propose(_req(v, [sid], [twf(1, 0.0, "bad")], 1, 0))
    assert "Don't change a basic economy flight & its seats." in c.text and "&#39;" not in c.text
