"""``diffprompt eval`` and ``diffprompt optimize --env dataset:PATH`` on the offline sim target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffprompt.store import open_store


@pytest.fixture
def invoke(home: Path):  # type: ignore[no-untyped-def]
    from diffprompt import cli

    cli._register()
    db = f"sqlite:///{home / 'cli.db'}"
    runner = CliRunner()

    def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        res = runner.invoke(cli.app, ["--db", db, *args])
        assert (res.exit_code == 0) == ok, (res.output, res.exception)
        return res

    run.db = db  # type: ignore[attr-defined]
    return run


def _json(res) -> dict:  # type: ignore[no-untyped-def]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_eval_json_is_deterministic_and_record_stores_only_the_window(invoke, sentiment_file: Path) -> None:
    env = f"dataset:{sentiment_file}"
    a = _json(invoke("eval", "--slot", "s", "--env", env, "--init", "--json"))
    b = _json(invoke("eval", "--slot", "s", "--env", env, "--json"))
    c = _json(invoke("eval", "--slot", "s", "--env", env, "--version", "seed", "--json"))
    assert c["version_id"] == a["version_id"] == b["version_id"]
    for key in ("score", "n", "errors", "unparsed", "model_calls", "tokens", "accuracy", "macro_f1"):
        assert key in a
    assert (a["score"], a["macro_f1"], a["tokens"]) == (b["score"], b["macro_f1"], b["tokens"])
    assert a["n"] == a["model_calls"] == 80 and a["recorded"] == 0
    rec = _json(invoke("eval", "--slot", "s", "--env", env, "--record", "--json"))
    store = open_store(invoke.db)
    try:
        traces = store.list_traces("s")
        assert len(traces) == rec["recorded"] and 0 < rec["recorded"] < 80
        window = store.window("s")
        assert all(t.reward is not None for t in window)
    finally:
        store.close()
    held = _json(invoke("eval", "--slot", "s", "--env", env, "--part", "holdout", "--json"))
    assert held["n"] == 80 - rec["recorded"]
    invoke("eval", "--slot", "s", "--env", env, "--part", "holdout", "--record", ok=False)


def test_eval_unknown_slot_without_init_fails(invoke, sentiment_file: Path) -> None:
    invoke("eval", "--slot", "nope", "--env", f"dataset:{sentiment_file}", ok=False)


@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        (['{"text": "fine", "label": "positive"}', '{"text": "oops"'], ":2: not valid JSON"),
        (['{"text": "fine", "label": "positive"}', '{"text": "no label"}'], ":2: missing field 'label'"),
        (['{"text": "fine", "label": "positive"}', '{"text": "x", "label": "meh"}'], ":2: label 'meh' is not in"),
        ([], "is empty"),
    ],
)
def test_bad_dataset_is_one_error_line_and_nothing_recorded(home: Path, tmp_path: Path, rows: list[str],
                                                            needle: str) -> None:
    p = tmp_path / "bad.jsonl"
    p.write_text("".join(r + "\n" for r in rows))
    db = f"sqlite:///{tmp_path / 'bad.db'}"
    env = f"dataset:{p}?labels=negative,positive"
    out = subprocess.run(
        [sys.executable, "-m", "diffprompt.cli", "--db", db, "eval", "--slot", "s", "--env", env, "--init", "--record"],
        capture_output=True, text=True, env={**os.environ, "DIFFPROMPT_HOME": str(home)}, timeout=300,
    )
    assert out.returncode != 0
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], out.stderr
    store = open_store(db)
    try:
        assert store.list_slots() == [] and store.count_traces() == 0
    finally:
        store.close()


def test_eval_scores_a_tau_env_too(invoke, tmp_path: Path) -> None:
    seed = tmp_path / "seed.md"
    seed.write_text("You are an airline customer service agent. Follow the airline's policy.\n")
    a = _json(invoke("eval", "--slot", "air", "--env", "tau:airline", "--init", "--seed-file", str(seed),
                     "--limit", "2", "--record", "--json"))
    assert a["n"] == 2 and a["recorded"] == 2 and a["model_calls"] >= 2 and a["accuracy"] is None
    b = _json(invoke("eval", "--slot", "air", "--env", "tau:airline", "--limit", "2", "--json"))
    assert b["score"] == a["score"]
    invoke("eval", "--slot", "air", "--env", "tau:airline", "--part", "window", ok=False)


def test_eval_record_without_part_scores_and_records_the_window_part_only(invoke, sentiment_file: Path) -> None:
    env = f"dataset:{sentiment_file}"
    rec = _json(invoke("eval", "--slot", "w", "--env", env, "--init", "--record", "--limit", "10", "--json"))
    assert rec["n"] == rec["model_calls"] == rec["recorded"] == 10  # every call paid for is a window trace
    allp = _json(invoke("eval", "--slot", "w", "--env", env, "--part", "all", "--record", "--limit", "10", "--json"))
    assert allp["n"] == 10 and allp["recorded"] < 10  # --part all still scores both parts, records the window's


def test_eval_takes_base_url_and_fails_fast_on_a_dead_endpoint(invoke, sentiment_file: Path) -> None:
    res = invoke("eval", "--slot", "u", "--env", f"dataset:{sentiment_file}", "--init", "--model", "openai:m",
                 "--base-url", "http://127.0.0.1:9/v1", ok=False)
    assert "127.0.0.1:9" in str(res.exception) or "127.0.0.1:9" in res.output
