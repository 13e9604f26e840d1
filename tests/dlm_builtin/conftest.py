from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
import torch

from diffprompt.dlm.model import BuiltinDLM, MDConfig, MDTransformer
from diffprompt.dlm.tokenizer import BuiltinTokenizer, train_tokenizer
from diffprompt.spans import segment
from diffprompt.types import Feedback, PromptVersion, Trace, TraceWithFeedback
from training.dlm.corpus import generate_documents

T0 = datetime(2024, 5, 15, tzinfo=UTC)

PROMPT = """# Airline agent policy

You are an airline agent. You help users book, modify, or cancel reservations.

- At the beginning of the conversation, authenticate the user by their user id and email.
- Before cancelling a reservation, confirm the details with the user and obtain an explicit yes.
- Basic economy flights cannot be modified.

## Refunds

Refunds go to the original payment method. Transfer the user to a human agent only if you cannot help.
"""


def make_prompt(text: str = PROMPT, vid: str = "v1") -> PromptVersion:
    return PromptVersion(
        id=vid, slot="support", text=text, spans=segment(text), parent_id=None, created_at=T0, origin="seed"
    )


def make_trace(
    i: int, *, reward: float, comment: str = "", user: str = "", extra: Sequence[dict] = ()
) -> TraceWithFeedback:
    msgs = (
        {"role": "system", "content": "policy"},
        {"role": "user", "content": user or f"Hi, please cancel my reservation ABC{i:03d}."},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {
                        "name": "cancel_reservation",
                        "arguments": f'{{"reservation_id": "ABC{i:03d}"}}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"status": "cancelled"}'},
        {"role": "assistant", "content": "Your reservation is cancelled."},
        *extra,
    )
    tr = Trace(
        id=f"tr_{i}",
        slot="support",
        version_id="v1",
        thread_id=f"th_{i}",
        messages=msgs,
        started_at=T0,
        ended_at=T0,
    )
    fb = [Feedback(trace_id=tr.id, kind="reward", value=reward)]
    if comment:
        fb.append(Feedback(trace_id=tr.id, kind="comment", value=None, text=comment))
    return TraceWithFeedback(trace=tr, feedback=tuple(fb))


@pytest.fixture(scope="session")
def small_tok() -> BuiltinTokenizer:
    return train_tokenizer(generate_documents(300, 5), vocab_size=1024)


@pytest.fixture(scope="session")
def tiny_dlm(small_tok: BuiltinTokenizer) -> BuiltinDLM:
    torch.manual_seed(0)
    cfg = MDConfig(vocab_size=small_tok.vocab_size, d_model=32, n_layers=1, n_heads=2, d_ff=64, max_length=512)
    return BuiltinDLM(MDTransformer(cfg), small_tok, name="tiny")


@pytest.fixture
def prompt() -> PromptVersion:
    return make_prompt()


@pytest.fixture
def traces() -> list[TraceWithFeedback]:
    return [
        make_trace(1, reward=0.0, comment="The agent cancelled without asking me to confirm."),
        make_trace(2, reward=1.0),
        make_trace(3, reward=0.0, comment="It never checked my identity."),
    ]
