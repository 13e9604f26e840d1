"""End to end, offline: ``diffprompt tau run`` on a generated world, recorded in the store, through
the real OpenAI client against the local simulated-model server; fail-fast on bad endpoints."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from diffprompt.store import open_store
from tau_envs.serve import start_server

WORLD = ["--world-seed", "3", "--world-users", "30", "--world-tasks", "4"]


@pytest.fixture(scope="module")
def app():  # type: ignore[no-untyped-def]
    from diffprompt import cli

    cli._register()
    return cli.app


def _last_json(output: str) -> Any:
    return json.loads(output.strip().splitlines()[-1])


def test_tau_run_through_sim_server_records_traces_and_rewards(
    app,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    db = f"sqlite:///{home / 'e2e.db'}"
    monkeypatch.setenv("OPENAI_API_KEY", "local-any")
    with start_server("airline") as server:
        res = CliRunner().invoke(
            app,
            [
                "--db",
                db,
                "tau",
                "run",
                "--domain",
                "airline",
                *WORLD,
                "--split",
                "test",
                "--tasks",
                "0-3",
                "--trials",
                "2",
                "--concurrency",
                "4",
                "--model",
                "openai:sim",
                "--base-url",
                server.base_url,
                "--user",
                "scripted",
                "--slot",
                "air",
                "--json",
            ],
        )
        assert res.exit_code == 0, (res.output, res.exception)
        requests = server.requests
    out = _last_json(res.stdout)
    assert out["episodes"] == 8 and out["tasks"] == 4 and out["errors"] == 0
    assert set(out["pass_hat_k"]) == {"1", "2"}
    assert out["model_calls"] == requests > 8
    assert out["feedback_recorded"] == 8
    # the full generated policy is followed by the simulated model: most episodes succeed
    assert out["pass_hat_k"]["1"] >= 0.5
    store = open_store(db)
    try:
        window = store.window("air")
        assert len(window) == 8
        keys = sorted({t.trace.replay_key for t in window})
        assert keys == [f"tau:airline:test:{i}" for i in range(4)]
        assert all(t.reward is not None for t in window)
        assert sum(t.reward or 0 for t in window) == pytest.approx(out["mean_reward"] * 8)
        tr = window[0].trace
        assert tr.messages[0]["role"] == "system" and tr.version_id == out["version_id"]
        assert tr.model_calls >= 1
        # seeded world is cached under the home dir and reused
        assert next((home / "worlds").glob("airline-seed3-u30-t4*/tasks_test.json"), None) is not None
    finally:
        store.close()


def test_tau_run_no_record_prints_table(app, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", "local-any")
    with start_server("airline") as server:
        res = CliRunner().invoke(
            app,
            [
                "tau",
                "run",
                "--domain",
                "airline",
                *WORLD,
                "--tasks",
                "1",
                "--model",
                "openai:sim",
                "--base-url",
                server.base_url,
                "--no-record",
            ],
        )
    assert res.exit_code == 0, (res.output, res.exception)
    assert "pass^1" in res.stdout and not (home / "diffprompt.db").exists()


def _cli(*args: str, env_extra: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
    env.update({"DIFFPROMPT_HOME": str(home), **env_extra})
    return subprocess.run(
        [sys.executable, "-c", "from diffprompt.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_fail_fast_without_key_or_with_unreachable_url(home: Path) -> None:
    r = _cli("tau", "run", "--domain", "airline", "--model", "openai:gpt-4o-mini", env_extra={}, home=home)
    assert r.returncode == 1
    assert "error:" in r.stderr and "OPENAI_API_KEY" in r.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _cli(
        "tau",
        "run",
        "--domain",
        "airline",
        "--model",
        "openai:gpt-4o-mini",
        env_extra={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": f"http://127.0.0.1:{port}/v1"},
        home=home,
    )
    assert r.returncode == 1 and "cannot reach" in r.stderr
    assert not (home / "worlds").exists()  # failed before any work started


def test_bad_inputs_are_clear_errors(app, home: Path) -> None:  # type: ignore[no-untyped-def]
    from diffprompt.errors import ConfigError, EnvError

    runner = CliRunner()
    r = runner.invoke(app, ["tau", "run", "--domain", "airline", "--user", "robot"])
    assert isinstance(r.exception, ConfigError) and "scripted" in str(r.exception)
    r = runner.invoke(app, ["tau", "run", "--domain", "mars", "--no-record"])
    assert isinstance(r.exception, (ConfigError, EnvError)) and "mars" in str(r.exception)
    r = runner.invoke(app, ["tau", "run", "--domain", "airline", *WORLD, "--tasks", "0-99", "--no-record"])
    assert isinstance(r.exception, ConfigError) and "0-99" in str(r.exception)


def test_parse_task_range() -> None:
    from diffprompt.cli.tau_run import parse_task_range

    assert parse_task_range("all", 3) == [0, 1, 2]
    assert parse_task_range("0-2,5", 6) == [0, 1, 2, 5]
    assert parse_task_range("1:3", 6) == [1, 2]
    assert parse_task_range("4,4,1", 6) == [4, 1]


def test_tau_run_with_in_process_sim_model(app, home: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tau_envs.sim.chat_model", reason="SimulatedChatModel not available")
    db = f"sqlite:///{home / 'sim.db'}"
    res = CliRunner().invoke(
        app,
        [
            "--db",
            db,
            "tau",
            "run",
            "--domain",
            "airline",
            *WORLD,
            "--tasks",
            "0-3",
            "--trials",
            "2",
            "--concurrency",
            "2",
            "--model",
            "sim",
            "--user",
            "scripted",
            "--json",
        ],
    )
    assert res.exit_code == 0, (res.output, res.exception)
    out = _last_json(res.stdout)
    assert out["episodes"] == 8 and out["errors"] == 0 and out["feedback_recorded"] == 8
    assert out["pass_hat_k"]["1"] >= 0.5


def test_tau_run_with_llm_user_over_http(app, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Real-mode wiring offline: target model and LLM user both behind OpenAI-compatible servers."""
    seen: list[Any] = []

    def user_bot(messages: Any, tools: Any, seed: int | None) -> dict[str, Any]:
        seen.append((messages[0]["content"], seed))
        turns = sum(m["role"] == "assistant" for m in messages)
        return {
            "role": "assistant",
            "content": "I need help with my reservation." if turns == 0 else "###STOP###",
        }

    monkeypatch.setenv("OPENAI_API_KEY", "local-any")
    with start_server("airline") as target, start_server(responder=user_bot, model="userbot") as users:
        res = CliRunner().invoke(
            app,
            [
                "tau",
                "run",
                "--domain",
                "airline",
                *WORLD,
                "--tasks",
                "0-1",
                "--model",
                "openai:sim",
                "--base-url",
                target.base_url,
                "--user",
                "llm:userbot",
                "--user-base-url",
                users.base_url,
                "--no-record",
                "--json",
            ],
        )
    assert res.exit_code == 0, (res.output, res.exception)
    out = _last_json(res.stdout)
    assert out["episodes"] == 2 and out["errors"] == 0 and out["stop_reasons"] == {"stop": 2}
    assert out["model_calls"] >= 2 + 4  # agent turns + user turns, metered together
    assert all("Your situation and goal" in system for system, _ in seen)
    assert len({seed for _, seed in seen}) == 2  # one seed per episode, sent with every user request


def test_policy_file_seeds_the_slot_and_conflicts_are_clear(app, home: Path) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("tau_envs.sim.chat_model", reason="SimulatedChatModel not available")
    from diffprompt.errors import ConfigError

    db = f"sqlite:///{home / 'pf.db'}"
    pf = home.parent / "policy.md"
    pf.write_text("# Airline policy\n\n- Be kind.\n")
    args = [
        "--db",
        db,
        "tau",
        "run",
        "--domain",
        "airline",
        *WORLD,
        "--tasks",
        "0",
        "--model",
        "sim",
        "--slot",
        "custom",
        "--policy-file",
        str(pf),
        "--json",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, (res.output, res.exception)
    store = open_store(db)
    try:
        assert store.active_version("custom").text == pf.read_text()
        assert store.window("custom")[0].trace.messages[0]["content"] == pf.read_text()
    finally:
        store.close()
    pf.write_text("# Airline policy\n\n- Be brief.\n")
    res = CliRunner().invoke(app, args)
    assert isinstance(res.exception, ConfigError) and "custom" in str(res.exception)


def test_sim_serve_command_serves_the_openai_api(home: Path) -> None:
    import os
    import signal
    import time

    import openai

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DIFFPROMPT_HOME": str(home)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from diffprompt.cli import main; main()",
            "sim",
            "serve",
            "--domain",
            "airline",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="any", max_retries=0)
        deadline = time.monotonic() + 60
        while True:
            try:
                assert [m.id for m in client.models.list().data] == ["sim"]
                break
            except openai.APIConnectionError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.3)
        r = client.chat.completions.create(model="sim", messages=[{"role": "user", "content": "hello"}])
        assert r.choices[0].message.content or r.choices[0].message.tool_calls
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    assert "serving simulated model" in out and "stopped after 1 requests" in out
