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


@pytest.mark.parametrize("kind", ["dlm", "oracle", "oracle-rewrite"])  # ar/rewrite need a model (realmodel tier)
def test_round_improves_degraded_seed(world, kind):
    dom, degraded, env, seed_store, seed_pass = world
    assert seed_pass < 0.95  # the degraded policy really hurts
    store, v = _fresh(seed_store, degraded)
    editor = build_editor(kind, dlm=_dlm_or_skip() if kind == "dlm" else None)
    cfg = OptimizeConfig(replay_concurrency=8)
    res = run_round(store, "airline", env=env, editor=editor, config=cfg, seed=0, blamer=build_blamer(dom))
    rec = store.get_run(res.run_id)
    assert rec["attribution"], "the record shows the blamed spans"
    blamed = {a["span_id"] for a in rec["attribution"]}
    assert blamed <= {s.id for s in v.spans}
    assert res.status == "promoted", res.decision.reasons
    assert res.candidate_score > res.incumbent_score
    new = store.active_version("airline")
    changes = rec["finalist"]["span_changes"]
    assert changes, "the record shows which spans were rewritten or added"
    assert rec["finalist"]["diff"].count("+ [") >= 1
    assert new.text != degraded and len(segment(new.text)) >= len(v.spans)
