"""`diffprompt demo --editor ar|rewrite` takes its model from --editor-model, and fails fast without one."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from diffprompt.cli import _register, app
from diffprompt.demo import DemoConfig, run_demo
from diffprompt.errors import ConfigError


def test_lm_editor_without_model_is_a_config_error(tmp_path: Path) -> None:
    for kind in ("ar", "rewrite"):
        with pytest.raises(ConfigError, match="--editor-model"):
            DemoConfig(home=tmp_path, editor=kind)
    with pytest.raises(ConfigError, match="unknown editor 'nope'"):
        DemoConfig(home=tmp_path, editor="nope")
    assert DemoConfig(home=tmp_path, editor="ar", editor_model="smol").editor_model == "smol"
    assert not any(tmp_path.iterdir())


def test_unreachable_editor_model_fails_before_any_traffic(tmp_path: Path) -> None:
    home = tmp_path / "h"
    cfg = DemoConfig(home=home, editor="rewrite", editor_model="openai:smol", api_key="sk-x",
                     base_url="http://127.0.0.1:9/v1", world_users=60, world_tasks=12, live_trials=1)
    with pytest.raises(ConfigError, match=re.escape("127.0.0.1:9")):
        run_demo(cfg)
    assert not (home / "demo").exists()


def test_cli_passes_editor_model_to_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[DemoConfig] = []

    def fake_run_demo(cfg: DemoConfig, *, emit: Any = None) -> Any:
        seen.append(cfg)
        raise ConfigError("stop here")

    monkeypatch.setattr("diffprompt.demo.run_demo", fake_run_demo)
    _register()
    out = CliRunner().invoke(app, ["--home", str(tmp_path), "demo", "--editor", "ar", "--editor-model", "smol"])
    assert isinstance(out.exception, ConfigError) and str(out.exception) == "stop here"
    assert [(c.editor, c.editor_model) for c in seen] == [("ar", "smol")]


def test_cli_lm_editor_without_model_exits_with_one_clear_line(tmp_path: Path) -> None:
    env = {"DIFFPROMPT_HOME": str(tmp_path / "h"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-m", "diffprompt.cli", "demo", "--editor", "ar"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "--editor-model" in lines[0], proc.stderr
    assert not (tmp_path / "h" / "demo").exists()
