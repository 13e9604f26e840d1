"""The editor contract (``diffprompt.editing``), checked for every editor the project ships.

A new editor is one class with ``name``, ``capabilities`` and ``propose(request)``; add a factory to
``EDITORS`` below and it is held to the same contract: deterministic for a seed, at most ``n``
candidates, parent id and editor name set, only the requested spans (or insertion slots) changed
unless it declares ``whole_prompt``, nothing for a masking editor given no span.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from diffprompt.editing import EditorCapabilities, EditRequest, FakeEditor, only_masked_changed
from diffprompt.optimize.attribution import SpanScore
from diffprompt.optimize.editors import ARInfillEditor, LLMCritic, LLMFiller, LLMWriter, RewriteEditor
from diffprompt.optimize.oracle import OracleEditor, OracleRewriteEditor
from diffprompt.optimize.prepare import insert_placeholders
from tests.optimize.helpers import PROMPT, FakeClient, twf, version

RULE = "Extra checked bags cost 50 dollars each."
HINTS = (RULE, "Basic economy flights cannot be modified or changed after booking.")


class ScriptedFills(FakeClient):
    """An AR model that answers every mask with a rule (a pure function of the prompt it is shown)."""

    RULES = ("Never modify basic economy flights.", "Refund only to the original payment method.", RULE)

    def __init__(self):
        super().__init__([])

    def complete(self, messages, *, temperature=0.0, max_tokens=None):
        self.requests.append(messages)
        n = messages[0]["content"].count("[MASK_")
        fills = {str(i + 1): self.RULES[i % len(self.RULES)] for i in range(n)}
        return type("R", (), {"text": json.dumps({"fills": fills})})()


def _rewrite():
    critic = FakeClient(["- say what extra bags cost"])
    writer = FakeClient([PROMPT.rstrip() + f"\n- {RULE}\n"])
    return RewriteEditor(LLMCritic(critic), LLMWriter(writer))


def _rewrite_spans():
    # a writer whose reply limit (8 tokens) cannot hold the whole prompt: it rewrites the masked spans only
    critic = FakeClient(["- say what extra bags cost"])
    writer = FakeClient([RULE, "Basic economy flights can never be changed."])
    return RewriteEditor(LLMCritic(critic), LLMWriter(writer, max_output_tokens=8))


def _dlm():
    pytest.importorskip("torch")
    from diffprompt.dlm.editor import DLMEditor
    from diffprompt.dlm.model import load_builtin

    return DLMEditor(load_builtin(), steps=2, k_traces=1, trace_tokens=32, resample_rounds=0)  # CPU-cheap


EDITORS = {
    "dlm": _dlm,
    "ar": lambda: ARInfillEditor(LLMFiller(ScriptedFills())),
    "rewrite": _rewrite,
    "rewrite-spans": _rewrite_spans,
    "oracle": lambda: OracleEditor(explore=0.5),
    "oracle-rewrite": lambda: OracleRewriteEditor(dropout=0.5),
    "fake": lambda: FakeEditor(texts=("Rule A is stated.", "Rule B is stated.", "Rule C is stated.")),
}


@pytest.fixture(params=sorted(EDITORS), scope="module")
def editor(request):
    return EDITORS[request.param]()


def _request(n=3, seed=5, insert=False):
    v = version()
    bags = next(s for s in v.spans if "two bags" in s.text)
    basic = next(s for s in v.spans if "Basic economy" in s.text)
    chosen = [SpanScore(span_id=basic.id, score=1.0), SpanScore(span_id=bags.id, score=0.5, insert=insert)]
    base, mask_ids, slots = insert_placeholders(v, chosen)
    return EditRequest(
        prompt=base,
        span_ids=tuple(mask_ids),
        insert_span_ids=tuple(slots),
        traces=(twf(1, 0.0, "I was not told about the bag fee", key="bag1"), twf(2, 1.0, key="ok1")),
        feedback=("the agent did not charge for extra bags",),
        hints=HINTS,
        n=n,
        seed=seed,
    )


def test_capabilities_are_declared_on_the_class(editor):
    caps = type(editor).capabilities
    assert isinstance(caps, EditorCapabilities) and editor.capabilities is caps
    assert isinstance(editor.name, str) and editor.name


@pytest.mark.parametrize("insert", [False, True], ids=["rewrite-spans", "insertion-slot"])
def test_contract(editor, insert):
    req = _request(insert=insert)
    a = editor.propose(req)
    b = editor.propose(req)
    assert [c.text for c in a] == [c.text for c in b], "same request, same seed: same candidates"
    assert 0 < len(a) <= req.n
    for c in a:
        assert c.parent_id == req.prompt.id and c.editor == editor.name
        if not editor.capabilities.whole_prompt:
            assert only_masked_changed(req, c.text), c.text
            assert set(c.changed_span_ids) <= set(req.span_ids)
        for p in req.protected_texts:
            assert p in c.text


def test_respects_n(editor):
    assert len(editor.propose(_request(n=1))) <= 1
    assert len(editor.propose(_request(n=2, seed=9))) <= 2


def test_masking_editors_do_nothing_without_spans(editor):
    req = replace(_request(), span_ids=(), insert_span_ids=())
    out = editor.propose(req)
    if editor.capabilities.whole_prompt:
        assert all(c.parent_id == req.prompt.id for c in out)
    else:
        assert out == []


def test_the_contract_check_itself_catches_an_edit_outside_the_masks():
    req = _request()
    outside = req.prompt.text.replace("Refunds go to", "Refunds never go to")
    assert not only_masked_changed(req, outside)
    by = {s.id: s for s in req.prompt.spans}
    inside = req.prompt.text.replace(by[req.span_ids[0]].text, "- Something else entirely.")
    assert only_masked_changed(req, inside)
