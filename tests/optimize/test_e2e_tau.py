"""End to end, offline: generated τ airline world, degraded seed policy, simulated target model
(traffic over the local OpenAI-compatible HTTP server, rounds in-process), scripted users; one round
per editor."""

from __future__ import annotations

import pytest

from diffprompt.integrations.tau import DEFAULT_SCENARIO, TauReplay, degraded_world, record_traffic, target_model
from diffprompt.optimize.build import build_blamer, build_editor
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.loop import run_round
from diffprompt.spans import segment
from diffprompt.store.memory import MemoryStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from diffprompt.llm import make_chat_model
    from tau_envs.serve import start_server
    from tau_envs.users.scripted import ScriptedUser

    small = DEFAULT_SCENARIO.with_world(users=120, tasks=48)
    dom, degraded = degraded_world(tmp_path_factory.mktemp("world"), scenario=small)
    srv = start_server("airline")  # the HTTP path for the seed traffic, in-process for the rounds
    http_env = TauReplay(
        dom,
        model_factory=lambda s: make_chat_model("openai:sim", base_url=srv.base_url, api_key="x", seed=s),
        user_factory=lambda t, s: ScriptedUser(),
    )
    env = TauReplay(
        dom,
        model_factory=lambda s: target_model("sim", domain="airline", seed=s),
        user_factory=lambda t, s: ScriptedUser(),
    )
    seed_store = MemoryStore()
    v = seed_store.create_slot("airline", degraded)
    seed_pass = record_traffic(seed_store, v, http_env, http_env.all_cases(), concurrency=8)
    yield dom, degraded, env, seed_store, seed_pass
    srv.close()


def _fresh(seed_store, degraded):
    store = MemoryStore()
    v = store.create_slot("airline", degraded)
    win = seed_store.window("airline")
    store.add_traces([w.trace for w in win])
    store.add_feedback([f for w in win for f in w.feedback])
    return store, v


def _dlm_or_skip():
    from diffprompt.errors import ModelError

    try:
        from diffprompt.dlm.model import load_builtin

        return load_builtin()
    except (ModelError, ImportError) as exc:
        pytest.skip(f"built-in DLM not available: {exc}")


def _round(world, kind: str, judge: str | None):
    dom, degraded, env, seed_store, seed_pass = world
    assert seed_pass < 0.95  # the degraded policy really hurts
    store, v = _fresh(seed_store, degraded)
    editor = build_editor(kind, dlm=_dlm_or_skip() if kind == "dlm" else None)
    cfg = OptimizeConfig(replay_concurrency=8)
    res = run_round(store, "airline", env=env, editor=editor, config=cfg, seed=0, blamer=build_blamer(dom, judge=judge))
    rec = store.get_run(res.run_id)
    assert rec["attribution"], "the record shows the blamed spans"
    assert {a["span_id"] for a in rec["attribution"]} <= {s.id for s in v.spans}
    cases = rec["cases"]
    assert cases["holdout_replay_keys"], "the gate replayed held-out cases"
    assert not set(cases["read_replay_keys"]) & set(cases["holdout_replay_keys"]), "held out means held out"
    return store, v, res, rec, degraded


# The oracle *infill* editor used to overwrite the ask-payment bullet here while restoring rules (5 wins /
# 6 losses, rejected); it now writes a hint over a span masked in place only when the hint restates it.
@pytest.mark.parametrize("kind", ["oracle-rewrite", "oracle"])
def test_oracle_ceiling_promotes(world, kind):
    """The labelled upper bound: the simulated model's own explanation + the hint rewriter restore rules."""
    store, v, res, rec, degraded = _round(world, kind, judge="oracle")
    assert res.status == "promoted", res.decision.reasons
    assert res.candidate_score > res.incumbent_score
    new = store.active_version("airline")
    assert rec["finalist"]["span_changes"], "the record shows which spans were rewritten or added"
    assert rec["finalist"]["diff"].count("+ [") >= 1
    assert new.text != degraded and len(segment(new.text)) >= len(v.spans)


@pytest.mark.parametrize("kind", ["dlm", "oracle"])
def test_honest_round_never_promotes_a_worse_prompt(world, kind):
    """The honest judge (no rule book): the round decides on held-out cases and never promotes a loser.

    Measured with the shipped built-in DLM (trained without airline/retail text): it rejects here.
    """
    from diffprompt.spans import normalize_text
    from tau_envs.rules import rules_for

    store, v, res, _rec, degraded = _round(world, kind, judge=None)
    assert res.status in {"promoted", "rejected"}, res.decision.reasons
    assert res.decision.reasons
    if res.status == "promoted":
        assert res.candidate_score > res.incumbent_score
        new = normalize_text(store.active_version("airline").text)
        missing = [r for r in rules_for("airline") if normalize_text(r.text) not in normalize_text(degraded)]
        assert not [r.id for r in missing if normalize_text(r.text) in new], "no deleted rule word for word"
    else:
        assert store.active_version("airline").id == v.id
