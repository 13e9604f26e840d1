"""Small builders shared by the optimizer tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from diffprompt.spans import content_hash, segment
from diffprompt.types import Feedback, PromptVersion, Trace, TraceWithFeedback

T0 = datetime(2026, 1, 1, tzinfo=UTC)

PROMPT = """# Airline agent policy
You help customers of the airline.
- Basic economy flights cannot be modified.
- Always confirm with the user before booking.
- Refunds go to the original payment method.

# Baggage
- Each passenger may check at most two bags.
"""


def version(text: str = PROMPT, vid: str = "v0", slot: str = "s") -> PromptVersion:
    return PromptVersion(
        id=vid,
        slot=slot,
        text=text,
        spans=segment(text),
        parent_id=None,
        created_at=T0,
        origin="seed",
        content_hash=content_hash(text),
    )


def twf(
    i: int, reward: float, comment: str = "", key: str | None = None, vid: str = "v0"
) -> TraceWithFeedback:
    tr = Trace(
        id=f"t{i}",
        slot="s",
        version_id=vid,
        thread_id=f"th{i}",
        messages=({"role": "user", "content": f"request {i}"}, {"role": "assistant", "content": "ok"}),
        started_at=T0,
        ended_at=T0,
        replay_key=key or f"k{i}",
    )
    fb = [Feedback(trace_id=tr.id, kind="reward", value=reward, source="env")]
    if comment:
        fb.append(Feedback(trace_id=tr.id, kind="comment", value=None, text=comment, source="user"))
    return TraceWithFeedback(trace=tr, feedback=tuple(fb))


@dataclass
class Reply:
    text: str


class FakeClient:
    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []

    def complete(self, messages, *, temperature=0.0, max_tokens=None):
        self.requests.append(messages)
        return Reply(self.replies[(len(self.requests) - 1) % len(self.replies)])
