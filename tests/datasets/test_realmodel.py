"""The dataset env against the real-model tier (SmolLM2-135M-Instruct behind llama.cpp's server).

Skips with the reason when ``DIFFPROMPT_TEST_LLM_URL`` (default ``http://127.0.0.1:8089/v1``) does
not answer; the server is started by ``scripts/realmodel_server.sh`` (``.ci/run`` runs it).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from diffprompt.datasets.build import build_bundle
from diffprompt.llm import CallMeter
from diffprompt.optimize.evaluate import evaluate
from diffprompt.store.memory import MemoryStore

pytestmark = pytest.mark.realmodel
URL = os.environ.get("DIFFPROMPT_TEST_LLM_URL", "http://127.0.0.1:8089/v1")  # scripts/realmodel_server.sh


@pytest.fixture(scope="module")
def served_model() -> str:
    import httpx

    try:
        resp = httpx.get(f"{URL.rstrip('/')}/models", timeout=30)  # llama.cpp answers after queued completions
        ids = [m["id"] for m in resp.json().get("data", [])]
    except Exception as exc:  # any failure means "no server here"
        pytest.skip(f"no OpenAI-compatible LLM server at {URL} ({type(exc).__name__}); start the real-model tier")
    if not ids:
        pytest.skip(f"the server at {URL} lists no model")
    return str(ids[0])


def test_sst2_eval_is_deterministic_and_metered(served_model: str, shared_datasets: Path) -> None:
    meter = CallMeter()
    b = build_bundle(f"dataset:{shared_datasets / 'sst2' / 'dev.jsonl'}", model=f"openai:{served_model}",
                     base_url=URL, api_key="local", meter=meter)
    v = MemoryStore().create_slot("s", b.seed_prompt)
    cases = b.env.all_cases(limit=16)
    r1, res = evaluate(b.env, v, cases, concurrency=1)
    r2, _ = evaluate(b.env, v, cases, concurrency=1)
    assert r1.n == 16 and r1.model_calls == 16 and r1.errors == 0
    assert meter.snapshot().calls == 32 and r1.tokens > 0
    assert (r1.score, r1.unparsed) == (r2.score, r2.unparsed)
    replies = [str(r.trace.messages[-1]["content"]) for r in res.results[v.id] if r.trace is not None]
    assert len(replies) == 16 and any(reply.strip() for reply in replies)
