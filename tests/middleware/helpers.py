"""Test doubles shared by the middleware tests."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from diffprompt.errors import StoreError
from diffprompt.store.memory import MemoryStore
from diffprompt.types import Trace, Usage, new_id


class FlakyStore(MemoryStore):
    """A MemoryStore whose trace writes (and optionally slot reads) fail while ``down`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.down = threading.Event()
        self.reads_down = threading.Event()
        self.add_calls = 0

    def add_traces(self, traces: Sequence[Trace]) -> int:
        self.add_calls += 1
        if self.down.is_set():
            raise StoreError("database is down (test double)")
        return super().add_traces(traces)

    def slot_state(self, slot: str):  # type: ignore[no-untyped-def]
        if self.reads_down.is_set():
            raise StoreError("database is down (test double)")
        return super().slot_state(slot)

    def get_version(self, version_id: str):  # type: ignore[no-untyped-def]
        if self.reads_down.is_set():
            raise StoreError("database is down (test double)")
        return super().get_version(version_id)


def make_trace(i: int = 0, *, slot: str = "support", **kw: object) -> Trace:
    t0 = datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=i)
    base: dict[str, object] = dict(
        id=new_id("tr_"),
        slot=slot,
        version_id="pv_x",
        thread_id=f"th-{i}",
        messages=({"role": "user", "content": f"hello {i}"}, {"role": "assistant", "content": "hi"}),
        started_at=t0,
        ended_at=t0 + timedelta(milliseconds=5),
        latency_ms=5.0,
        usage=Usage(input_tokens=10, output_tokens=3),
        model_calls=1,
    )
    base.update(kw)
    return Trace(**base)  # type: ignore[arg-type]
