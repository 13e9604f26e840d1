"""``diffprompt tau check-gold``: per-task hashes, comparison, ``matched N/M`` and the exit code."""

from __future__ import annotations

import json
from pathlib import Path

from tau_core_world import TINY_TASKS, tiny_airline_db, write_world
from typer.testing import CliRunner

from diffprompt.cli.tau import app
from diffprompt.errors import EnvError
from tau_envs.domain import load_domain

runner = CliRunner()


def _run(*args: str):  # type: ignore[no-untyped-def]
    return runner.invoke(app, ["check-gold", *args])


def test_official_airline_open_hashes(tau_data: Path) -> None:
    hashes = tau_data / "airline" / "gold_hashes_test_open.json"
    result = _run("--domain", "airline", "--data-dir", str(tau_data), "--split", "test", "--hashes", str(hashes))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[-1] == "matched 25/25"
    assert len([line for line in lines if line.startswith("task ")]) == 50
    assert lines[0].startswith("task 0 a825bc534ee4abad2f0f36d5d162989dcbae16dd509bd675feb7e9ffc86a1001")
    assert lines[0].endswith(" ok")


def test_compare_counts_only_listed_tasks(tmp_path: Path) -> None:
    root = write_world(tmp_path / "airline", tiny_airline_db(), TINY_TASKS)
    domain = load_domain("airline", root)
    good = {0: domain.gold_hash(domain.tasks[0])}
    (tmp_path / "good.json").write_text(json.dumps(good))
    result = _run("--domain", "airline", "--data-dir", str(tmp_path), "--hashes", str(tmp_path / "good.json"))
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1] == "matched 1/1"

    (tmp_path / "bad.json").write_text(json.dumps({**good, "1": "0" * 64, "5": "f" * 64}))
    result = _run("--domain", "airline", "--data-dir", str(root), "--hashes", str(tmp_path / "bad.json"))
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines[-1] == "matched 1/3"
    assert any("MISMATCH expected " + "0" * 64 in line for line in lines)
    assert any(line.startswith("task 5 MISSING") for line in lines)


def test_without_hashes_prints_every_task(tmp_path: Path) -> None:
    root = write_world(tmp_path / "airline", tiny_airline_db(), TINY_TASKS)
    result = _run("--domain", "airline", "--data-dir", str(root))
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split()[1] for line in lines[:-1]] == ["0", "1"]
    assert lines[-1] == "replayed 2 tasks of airline/test"


def test_bad_input_raises_env_error(tmp_path: Path) -> None:
    result = _run("--domain", "banking", "--data-dir", str(tmp_path))
    assert isinstance(result.exception, EnvError)
    (tmp_path / "h.json").write_text("[1, 2]")
    root = write_world(tmp_path / "airline", tiny_airline_db(), TINY_TASKS)
    result = _run("--domain", "airline", "--data-dir", str(root), "--hashes", str(tmp_path / "h.json"))
    assert isinstance(result.exception, EnvError) and "must map task indices" in str(result.exception)


def test_official_retail_dev(tau_data: Path) -> None:
    """(The 500 train hashes are checked by the slow test in test_tau_gold.py.)"""
    hashes = tau_data / "retail" / "gold_hashes_dev.json"
    retail = str(tau_data / "retail")
    result = _run("--domain", "retail", "--data-dir", retail, "--split", "dev", "--hashes", str(hashes))
    assert result.exit_code == 0, result.output[-500:]
    assert result.output.strip().splitlines()[-1] == "matched 20/20"
