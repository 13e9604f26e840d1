from __future__ import annotations

from pathlib import Path

import pytest

from diffprompt.settings import Settings


def test_defaults_under_home(home: Path) -> None:
    s = Settings()
    assert s.home == home
    assert s.resolved_db_url == f"sqlite:///{home / 'diffprompt.db'}"
    assert s.resolved_spool_dir == home / "spool"
    assert s.offline


def test_env_and_toml_precedence(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('db_url = "sqlite:///from-toml.db"\nprompt_refresh_s = 5.0\n')
    monkeypatch.setenv("DIFFPROMPT_CONFIG", str(cfg))
    assert Settings().db_url == "sqlite:///from-toml.db"
    assert Settings().prompt_refresh_s == 5.0
    monkeypatch.setenv("DIFFPROMPT_DB_URL", "sqlite:///from-env.db")
    assert Settings().db_url == "sqlite:///from-env.db"
    assert Settings(db_url="sqlite:///explicit.db").db_url == "sqlite:///explicit.db"


def test_invalid_values_rejected(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFPROMPT_RECORDER_BATCH_SIZE", "0")
    with pytest.raises(ValueError, match="recorder_batch_size"):
        Settings()


def test_api_key_switches_off_offline(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert not Settings().offline
