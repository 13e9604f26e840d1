"""CLI: ``diffprompt optimize`` (bad slot, empty window, zero budget, --json) and ``runs list|show``."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from diffprompt.store import open_store
from diffprompt.types import Feedback, Trace
from tests.optimize.helpers import PROMPT, T0


@pytest.fixture(scope="module")
def app():
    from diffprompt import cli

    cli._register()
    return cli.app


@pytest.fixture(scope="module")
def server():
    from tau_envs.serve import start_server

    srv = start_server("airline")
    yield srv
    srv.close()


@pytest.fixture
def run(app, home, server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    db = f"sqlite:///{home / 'o.db'}"
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, ["--db", db, *args])

    invoke.db = db  # type: ignore[attr-defined]
    return invoke


WORLD = ["--model", "openai:sim", "--world-users", "20", "--world-tasks", "6"]


def _json(res):
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_unknown_slot_fails_cleanly(run):
    res = run("optimize", "--slot", "nope", "--editor", "oracle", "--json", *WORLD)
    assert res.exit_code != 0
    assert "unknown slot" in str(res.exception)


def test_lm_editor_without_model_is_a_config_error(run):
    store = open_store(run.db)
    store.create_slot("s", PROMPT)
    store.close()
    res = run("optimize", "--slot", "s", "--editor", "ar", "--json", *WORLD)
    assert res.exit_code != 0
    assert "needs a model: pass --editor-model" in (res.output + str(res.exception))
    assert _json(run("runs", "list", "--json")) == []  # nothing half-written


def test_empty_window_is_insufficient_data_and_runs_listed(run):
    store = open_store(run.db)
    store.create_slot("s", PROMPT)
    store.close()
    res = run("optimize", "--slot", "s", "--editor", "oracle", "--json", *WORLD)
    assert res.exit_code == 0, (res.output, res.exception)
    out = _json(res)
    assert out["decision"] == "insufficient_data" and out["promoted_version"] is None
    assert {"incumbent_score", "candidate_score", "p_value"} <= set(out)
    listed = _json(run("runs", "list", "--json"))
    assert listed[0]["run_id"] == out["run_id"] and listed[0]["status"] == "insufficient_data"
    shown = run("runs", "show", out["run_id"])
    assert shown.exit_code == 0 and "insufficient_data" in shown.stdout
    assert _json(run("runs", "show", out["run_id"], "--json"))["window"]["n"] == 0
    assert run("runs", "show", "run_missing").exit_code != 0


def test_zero_budget_stops_with_reason(run):
    store = open_store(run.db)
    v = store.create_slot("s", PROMPT)
    traces = [
        Trace(
            id=f"t{i}",
            slot="s",
            version_id=v.id,
            thread_id=f"th{i}",
            messages=({"role": "user", "content": "hi"},),
            started_at=T0,
            ended_at=T0,
            replay_key=f"tau:airline:test:{i % 6}",
        )
        for i in range(12)
    ]
    store.add_traces(traces)
    store.add_feedback([Feedback(trace_id=t.id, kind="reward", value=0.0, source="env") for t in traces])
    store.close()
    res = run("optimize", "--slot", "s", "--editor", "oracle-rewrite", "--max-calls", "0", "--json", *WORLD)
    assert res.exit_code == 0, (res.output, res.exception)
    out = _json(res)
    assert out["status"] == "budget_exhausted" and out["decision"] == "reject"
    assert "target_calls" in out["reasons"][0]
    store = open_store(run.db)
    assert store.active_version("s").id == v.id
    store.close()


def test_schedule_cli_roundtrip(run):
    store = open_store(run.db)
    store.create_slot("s", PROMPT)
    store.close()
    assert run("schedule", "add", "nightly", "--slot", "s", "--cron", "0 3 * * *").exit_code == 0
    assert run("schedule", "add", "bad", "--slot", "s").exit_code != 0
    jobs = _json(run("schedule", "list", "--json"))
    assert [j["id"] for j in jobs] == ["nightly"] and jobs[0]["request"]["editor"] == "dlm"
    assert run("schedule", "remove", "nightly").exit_code == 0
    assert _json(run("schedule", "list", "--json")) == []
    assert _json(run("runs", "list", "--json")) == []
