from __future__ import annotations

import hashlib

import pytest

from agents.support_agent import SEED_PROMPT
from diffprompt.store.recorder import Recorder

from .helpers import FlakyStore

V2_PROMPT = SEED_PROMPT + "- Always check the refund policy before issuing a refund.\n"


def tag(text: str) -> str:
    """The marker the scripted support model appends to its final answers: sha256(system)[:8]."""
    return f"[prompt {hashlib.sha256(text.encode()).hexdigest()[:8]}]"


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def store() -> FlakyStore:
    s = FlakyStore()
    s.create_slot("support", SEED_PROMPT)
    return s


@pytest.fixture
def recorder(store: FlakyStore):  # type: ignore[no-untyped-def]
    rec = Recorder(store, flush_interval_s=0.005, backoff_s=0.01, max_backoff_s=0.05)
    yield rec
    rec.close(timeout=2)
