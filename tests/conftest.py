"""Shared fixtures: network blocked by default, the official τ-bench data dir, a PostgreSQL URL."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TAU_DATA = Path(os.environ.get("DIFFPROMPT_TAU_DATA", REPO.parent / "shared" / "taubench"))


def _guarded_connect(orig):  # type: ignore[no-untyped-def]
    def connect(self, address):  # type: ignore[no-untyped-def]
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (
            host.startswith("127.") or host in ("localhost", "::1") or host.startswith("/")
        ):
            raise RuntimeError(f"network access to {address!r} is blocked in tests (loopback only)")
        return orig(self, address)

    return connect


@pytest.fixture(autouse=True, scope="session")
def _block_network() -> None:
    """Tests run offline: any non-loopback connection raises. Loopback servers are allowed."""
    socket.socket.connect = _guarded_connect(socket.socket.connect)  # type: ignore[method-assign]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tau_data() -> Path:
    """The official τ-bench data (``../shared/taubench``); skips with the reason when absent."""
    if not (TAU_DATA / "airline" / "tasks_test.json").is_file():
        pytest.skip(f"official τ-bench data not found at {TAU_DATA} (set DIFFPROMPT_TAU_DATA)")
    return TAU_DATA


@pytest.fixture(scope="session")
def pg_url() -> str:
    """A reachable PostgreSQL server URL (``DIFFPROMPT_TEST_PG_URL``), else skip with the reason."""
    url = os.environ.get("DIFFPROMPT_TEST_PG_URL", "postgresql+psycopg://diffprompt:diffprompt@127.0.0.1:5432/diffprompt")
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=2):
            pass
    except Exception as exc:  # any failure means "no server here"
        pytest.skip(f"no PostgreSQL at {url} ({type(exc).__name__}); .ci/run starts one, or set DIFFPROMPT_TEST_PG_URL")
    return url


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An isolated DIFFPROMPT_HOME for a test."""
    monkeypatch.setenv("DIFFPROMPT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("DIFFPROMPT_DB_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    return tmp_path / "home"
