"""SmolLM2 as target, judge, editor, τ agent and LLM user — every garbage answer a counted outcome."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agents import support_agent
from diffprompt.llm import ChatClient, ModelSettings
from diffprompt.optimize.judge_pairwise import PairwiseJudge
from diffprompt.store import open_store
from tests.realmodel.conftest import MODEL

pytestmark = [pytest.mark.realmodel, pytest.mark.timeout(300)]  # a hung server call fails the test, not CI
SETTINGS = '{"max_tokens": 48, "timeout_s": 300}'


def _small_round(tmp_path):
    """A round sized for a 135M model on 2 cores: 2 blamed traces, 2 screening cases, 1 iteration."""
    p = tmp_path / "round.toml"
    p.write_text("[optimize]\niterations = 1\nscreen_cases = 2\nreplay_concurrency = 1\n"
                 "[optimize.attribution]\nmax_blame_traces = 2\n")
    return p


@pytest.fixture(scope="module")
def app():
    from diffprompt import cli

    cli._register()
    return cli.app


def test_structured_judge_answers_parse(real_env):
    client = ChatClient(MODEL, base_url=real_env, api_key="local", settings=ModelSettings(max_tokens=48))
    j = PairwiseJudge(client, max_tokens=48).compare(
        {"prefix": "USER: Where is my order A1000?", "outcome": "reward 0", "feedback": ["user comment: no answer"]},
        "I don't know.",
        "Your order A1000 has shipped and arrives Friday.",
        seed=1,
    )
    assert j.judge_calls == 2 and j.verdict in ("win", "loss", "tie")
    assert j.unparseable == 0, j.raw  # json_schema-constrained decoding: the answer parses


def test_support_agent_through_chat_openai(real_env, tmp_path):
    # SmolLM2 usually loops on tool calls until --max-steps (LangGraph's recursion limit): mw.wrap(agent)
    # records those runs as error traces before the GraphRecursionError reaches the example's handler
    db = f"sqlite:///{tmp_path / 's.db'}"
    assert support_agent.main(["--model", f"openai:{MODEL}", "--base-url", real_env, "-n", "2",
                               "--max-tokens", "48", "--max-steps", "2", "--db", db]) == 0
    store = open_store(db)
    try:
        traces = store.window("support", limit=10)
    finally:
        store.close()
    assert len(traces) == 2  # every conversation that started is recorded, whatever SmolLM2 did
    for t in traces:
        meta = t.trace.metadata
        assert meta["model"] == MODEL and meta["outcome"] in ("ok", "error")
        assert t.reward in (0.0, 1.0)  # scored; a broken conversation is a 0, never a 1 by default
        if meta["outcome"] == "error":  # garbage is a recorded outcome with its reason, never a success
            assert meta["error_reason"] in ("recursion_limit", "model_error", "tool_error", "exception")
            assert t.reward == 0.0 and t.trace.error and t.trace.error.split(":")[0] in (
                meta["error_reason"], "model call failed")
            assert any(f.kind == "rating" and f.value == 0.0 for f in t.feedback)  # the thumbs-down


@pytest.mark.timeout(900)  # a whole round on a 135M model: tens of server calls
def test_optimize_recorded_with_smollm2_as_target_judge_and_editor(app, real_env, tmp_path):
    db = f"sqlite:///{tmp_path / 'o.db'}"
    assert support_agent.main(["-n", "24", "--db", db]) == 0  # recorded traffic (offline scripted model)
    res = CliRunner().invoke(app, [
        "--db", db, "optimize", "--slot", "support", "--env", "recorded", "--model", f"openai:{MODEL}",
        "--judge", f"openai:{MODEL}", "--editor", "rewrite", "--editor-model", MODEL, "--base-url", real_env,
        "--holdout", "5", "--candidates", "4", "--max-steps", "2", "--model-settings", SETTINGS,
        "--config", str(_small_round(tmp_path)), "--json",
    ])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["status"] != "insufficient_data", out
    store = open_store(db)
    try:
        rec = store.get_run(out["run_id"])
    finally:
        store.close()
    assert rec["cost"]["target_calls"] > 0


@pytest.mark.timeout(900)  # a whole round on a 135M model: tens of server calls
def test_scheduler_runs_a_recorded_job(real_env, tmp_path):
    from diffprompt.scheduler import JobSpec, Worker, add_job, default_runner

    db = f"sqlite:///{tmp_path / 'j.db'}"
    assert support_agent.main(["-n", "24", "--db", db]) == 0
    store = open_store(db)
    try:
        request = {
            "env": "recorded", "model": f"openai:{MODEL}", "judge": f"openai:{MODEL}", "editor": "ar",
            "editor_model": MODEL, "max_steps": 2, "model_settings": json.loads(SETTINGS),
            "config": {"holdout_cases": 5, "n_candidates": 4, "iterations": 1, "screen_cases": 2,
                       "replay_concurrency": 1, "attribution": {"max_blame_traces": 2}},
        }
        job = JobSpec(id="nightly", slot="support", trigger="cron", cron="0 3 * * *", request=request)
        add_job(store, job)
        w = Worker(store, default_runner(home=tmp_path, api_key="local", base_url=real_env), owner="t")
        w._jobs = {"nightly": job}
        run_id = w.fire("nightly")
        assert run_id is not None
        rec = store.get_run(run_id)
        assert rec["status"] not in ("running", "insufficient_data"), rec.get("decision")
    finally:
        store.close()


@pytest.mark.timeout(900)  # a whole round on a 135M model: tens of server calls
def test_tau_episode_with_smollm2_as_agent_and_llm_user(real_env, tmp_path):
    from diffprompt.integrations.tau import build_tau

    setup = build_tau("airline", home=tmp_path, model=f"openai:{MODEL}", user=f"llm:{MODEL}", base_url=real_env,
                      api_key="local", max_steps=4, world_users=20, world_tasks=2)
    domain = setup.domain("test")
    out = setup.run(domain, [0], trials=1, concurrency=1, system_prompt=domain.policy)
    (res,) = out.results
    assert res.steps >= 1 and res.reward in (0.0, 1.0)
    assert res.messages  # the episode is recorded, whatever SmolLM2 did
    if res.error:  # garbage from the model is a recorded failure with its reason, never a success
        assert res.reward == 0.0
