"""The round with the real DLMEditor and span likelihood on a tiny untrained model (integration)."""

from __future__ import annotations

import pytest
import torch

from diffprompt.optimize.attribution import ExplainBlamer, Explanation, attribute
from diffprompt.optimize.build import DLMLikelihood
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.loop import run_round
from tests.optimize.helpers import twf, version
from tests.optimize.test_loop import CFG, RULE, _store, _world


@pytest.fixture(scope="module")
def tiny():
    from diffprompt.dlm.model import BuiltinDLM, MDConfig, MDTransformer
    from diffprompt.dlm.tokenizer import train_tokenizer
    from training.dlm.corpus import generate_documents

    tok = train_tokenizer(generate_documents(60, 5), vocab_size=400)
    torch.manual_seed(0)
    cfg = MDConfig(vocab_size=tok.vocab_size, d_model=32, n_layers=1, n_heads=2, d_ff=64, max_length=768)
    return BuiltinDLM(MDTransformer(cfg), tok, name="tiny")


def test_dlm_likelihood_scores_every_span(tiny):
    v = version()
    lik = DLMLikelihood(tiny, samples=2)
    ids = [s.id for s in v.spans if s.kind != "heading"]
    out = lik(v, ids, [twf(1, 0.0, "bags cost money")])
    assert set(out) == set(ids) and all(x > 0 for x in out.values())
    ranked = attribute(v, [twf(1, 0.0), twf(2, 1.0)], likelihood=lik)
    assert all("likelihood" in s.components for s in ranked)


def test_round_with_dlm_editor_records_candidates(tiny):
    from diffprompt.dlm.editor import DLMEditor

    env = _world()
    store, seed_v = _store(env)
    ed = DLMEditor(tiny, steps=8, factors=(1.0, 2.0))
    blamer = ExplainBlamer(lambda t, p: [Explanation(text=RULE, reason="bag fee missing", kind="missing")])
    cfg = OptimizeConfig.from_dict({**CFG.as_dict(), "iterations": 1})
    res = run_round(store, "s", env=env, editor=ed, config=cfg, blamer=blamer, seed=3)
    rec = store.get_run(res.run_id)
    assert rec["editor"] == "DLMEditor" or rec["editor"] == "dlm"
    assert rec["iterations"][0]["inserted"]  # an insertion slot was opened next to the bag rule
    assert rec["candidates"], "the DLM proposed candidates"
    assert all(c["editor"] == "dlm" for c in rec["candidates"])
    # an untrained model writes noise: never promoted, the active prompt is untouched
    assert res.status in ("rejected", "promoted")
    if res.status == "rejected":
        assert store.active_version("s").id == seed_v.id
