"""Episode seeds shared by the replay and the pairwise judge (a leaf module: it imports nothing of ours)."""

from __future__ import annotations

import hashlib


def case_seed(seed: int, case_id: str, trial: int) -> int:
    """The episode seed for ``(case, trial)``: identical for every prompt, stable across processes."""
    digest = hashlib.sha256(f"{seed}:{case_id}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
