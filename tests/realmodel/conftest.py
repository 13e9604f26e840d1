"""The real-model tier: SmolLM2-135M-Instruct behind llama.cpp's OpenAI-compatible server.

``.ci/run`` starts it (``scripts/realmodel_server.sh``) and exports ``DIFFPROMPT_TEST_LLM_URL``;
without a reachable server every test here skips, saying why. SmolLM2 on 2 shared cores is slow:
the tests use small token limits and few cases.
"""

from __future__ import annotations

import os

import httpx
import pytest

MODEL = os.environ.get("DIFFPROMPT_TEST_LLM_MODEL", "smollm2")


@pytest.fixture(scope="session")
def llm_url() -> str:
    url = os.environ.get("DIFFPROMPT_TEST_LLM_URL")
    if not url:
        pytest.skip("realmodel: DIFFPROMPT_TEST_LLM_URL is not set (start scripts/realmodel_server.sh)")
    try:
        httpx.get(f"{url.rstrip('/')}/models", timeout=30)
    except httpx.ReadTimeout:
        pass  # busy, not down
    except httpx.HTTPError as exc:
        pytest.skip(f"realmodel: no server at {url} ({type(exc).__name__}); start scripts/realmodel_server.sh")
    return url.rstrip("/")


@pytest.fixture
def real_env(llm_url, monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "local")
    monkeypatch.setenv("OPENAI_BASE_URL", llm_url)
    monkeypatch.setenv("DIFFPROMPT_HOME", str(tmp_path))
    return llm_url
