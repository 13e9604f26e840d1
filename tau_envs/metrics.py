"""pass^k: the chance that k i.i.d. trials of a task all succeed, averaged over tasks."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from math import comb

from diffprompt.errors import ValidationError


def pass_hat_k(successes: Mapping[Hashable, Sequence[bool]], k: int) -> float:
    """Mean over tasks of ``C(c, k) / C(n, k)`` (n trials, c successes of each task).

    Raises ``ValidationError`` when there are no tasks, ``k < 1``, or a task has fewer than k trials.
    """
    if k < 1:
        raise ValidationError(f"pass^k needs k >= 1, got {k}")
    if not successes:
        raise ValidationError("pass^k needs at least one task with trials")
    total = 0.0
    for key, trials in successes.items():
        n = len(trials)
        if n < k:
            raise ValidationError(f"task {key!r} has {n} trials, fewer than k={k}; add trials or lower k")
        total += comb(sum(bool(t) for t in trials), k) / comb(n, k)
    return total / len(successes)


def pass_hat_ks(successes: Mapping[Hashable, Sequence[bool]], max_k: int) -> dict[int, float]:
    """``{k: pass^k}`` for k = 1..max_k (max_k capped at the smallest number of trials of a task)."""
    if not successes:
        raise ValidationError("pass^k needs at least one task with trials")
    top = min(max_k, min(len(t) for t in successes.values()))
    return {k: pass_hat_k(successes, k) for k in range(1, top + 1)}
