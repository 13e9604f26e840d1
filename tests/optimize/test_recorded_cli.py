"""The README loop offline: support-agent traffic → ``optimize --env recorded`` → a decision, exit 0.

The models are a local OpenAI-compatible stub (``tests.privacy.test_outgoing_requests.Stub``); one
judge answers garbage, and the round still completes with the unparseable answers as counted ties.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from agents import support_agent
from diffprompt.store import open_store
from tests.privacy.test_outgoing_requests import Stub


@pytest.fixture(scope="module")
def app():
    from diffprompt import cli

    cli._register()
    return cli.app


@pytest.fixture
def traffic(tmp_path, monkeypatch):
    monkeypatch.setenv("DIFFPROMPT_HOME", str(tmp_path))
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    db = f"sqlite:///{tmp_path / 'd.db'}"
    assert support_agent.main(["-n", "40", "--db", db]) == 0
    return db


def _optimize(app, db, url, *extra):
    args = ["--db", db, "optimize", "--slot", "support", "--env", "recorded", "--model", "openai:m",
            "--judge", "openai:m", "--editor", "rewrite", "--editor-model", "m", "--base-url", url,
            "--holdout", "12", "--candidates", "1", "--model-settings", '{"max_tokens": 48}', "--json", *extra]
    return CliRunner().invoke(app, args)


def test_recorded_round_from_support_traffic_decides(app, traffic):
    stub = Stub(judge_reply='{"winner": "A", "reason": "A asks first"}')  # position-biased judge
    try:
        res = _optimize(app, traffic, stub.url)
    finally:
        stub.httpd.shutdown()
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["status"] in ("rejected", "promoted"), out
    store = open_store(traffic)
    rec = store.get_run(out["run_id"])
    store.close()
    assert rec["cost"]["target_calls"] > 0 and rec["screens"]  # target calls recorded
    # a judge that always says "A" is cancelled by the order swap: every case is a tie, nothing wins
    cand = rec["screens"][0]["versions"]["candidate"]
    assert cand["mean"] == 0.5 or cand["mean"] == 0.0
    assert out["status"] == "rejected"


def test_garbage_judge_round_completes_with_counted_ties(app, traffic):
    stub = Stub(judge_reply="Both replies are lovely!!! 10/10")
    try:
        res = _optimize(app, traffic, stub.url)
    finally:
        stub.httpd.shutdown()
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["status"] == "rejected"
    store = open_store(traffic)
    rec = store.get_run(out["run_id"])
    store.close()
    eps = [e for sc in rec["screens"] for v, d in sc["versions"].items() if v != "parent" for e in d["episodes"]]
    assert eps and all("unparseable (counted as tie)" in (e["error"] or "") for e in eps)
    assert all("Both replies are lovely" in e["error"] for e in eps)  # the raw answer is kept
