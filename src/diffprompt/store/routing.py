"""Which prompt version a new thread is served: pure, deterministic canary routing."""

from __future__ import annotations

import hashlib

from diffprompt.types import SlotState


def bucket(thread_id: str) -> float:
    """A thread's position in [0, 1): the first 8 bytes of sha256(thread_id), scaled."""
    digest = hashlib.sha256(thread_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def pick_version(state: SlotState, thread_id: str) -> str:
    """The version id to pin for ``thread_id``.

    The canary for a hashed ``canary_share`` of threads, else the active version. Deterministic:
    the same thread always lands in the same bucket.
    """
    if state.canary_version_id and state.canary_share > 0 and bucket(thread_id) < state.canary_share:
        return state.canary_version_id
    return state.active_version_id
