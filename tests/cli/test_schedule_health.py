"""`diffprompt schedule health`: the Docker HEALTHCHECK command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _run(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {"DIFFPROMPT_HOME": str(home), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "diffprompt.cli", *args], capture_output=True, text=True,
                          timeout=120, env=env)


def test_health_ok_on_a_reachable_db(tmp_path: Path) -> None:
    proc = _run("schedule", "health", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == {"db": "ok", "slots": 0, "jobs": 0}


def test_health_fails_with_a_clear_line_when_the_db_is_down(tmp_path: Path) -> None:
    proc = _run("--db", "postgresql+psycopg://u:p@127.0.0.1:9/none", "schedule", "health", home=tmp_path)
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "server is running" in proc.stderr
    assert "u:p@" not in proc.stderr  # the password is never printed
