"""Per-run budgets: target-model calls, tokens, dollars and wall time. Thread-safe accounting.

A ``RunBudget`` is the limits (``None`` = unlimited, ``0`` = nothing may be spent); a ``BudgetTracker``
adds up what replay episodes and editors report and raises ``BudgetExceeded`` (which names the budget)
when a limit is reached, so a round stops cleanly and records the reason.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from diffprompt.errors import BudgetExceeded, ConfigError
from diffprompt.types import Usage


@dataclass(frozen=True, kw_only=True, slots=True)
class RunBudget:
    """Limits for one optimizer run; ``None`` means unlimited."""

    max_calls: int | None = None
    max_tokens: int | None = None
    max_usd: float | None = None
    max_wall_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_calls", "max_tokens", "max_usd", "max_wall_s"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ConfigError(f"budget {name} must be >= 0 or None, got {v}")

    def as_dict(self) -> dict[str, Any]:
        return {"max_calls": self.max_calls, "max_tokens": self.max_tokens, "max_usd": self.max_usd,
                "max_wall_s": self.max_wall_s}


class BudgetTracker:
    """Accumulates spend against a ``RunBudget``; ``check()`` raises ``BudgetExceeded`` when over.

    ``clock`` is a monotonic seconds function (injected for tests). Spend is recorded after the fact
    (an episode's calls are known when it ends), so a run may overshoot by at most the episodes in flight.
    """

    def __init__(self, budget: RunBudget | None = None, *, clock: Callable[[], float] | None = None) -> None:
        import time

        self.budget = budget or RunBudget()
        self._clock = clock or time.monotonic
        self._start = self._clock()
        self._lock = threading.Lock()
        self.calls = 0
        self.usage = Usage()

    def add(self, *, calls: int = 0, usage: Usage | None = None) -> None:
        with self._lock:
            self.calls += calls
            if usage is not None:
                self.usage = self.usage + usage

    @property
    def elapsed_s(self) -> float:
        return self._clock() - self._start

    def check(self) -> None:
        """Raise ``BudgetExceeded`` if any limit is reached (a zero budget fails the first check)."""
        b = self.budget
        with self._lock:
            calls, tokens, usd = self.calls, self.usage.total_tokens, self.usage.cost_usd
        if b.max_calls is not None and calls >= b.max_calls:
            raise BudgetExceeded("target_calls", b.max_calls, calls)
        if b.max_tokens is not None and tokens >= b.max_tokens:
            raise BudgetExceeded("tokens", b.max_tokens, tokens)
        if b.max_usd is not None and usd >= b.max_usd:
            raise BudgetExceeded("usd", b.max_usd, usd)
        if b.max_wall_s is not None and self.elapsed_s >= b.max_wall_s:
            raise BudgetExceeded("wall_s", b.max_wall_s, round(self.elapsed_s, 3))

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"target_calls": self.calls, "input_tokens": self.usage.input_tokens,
                    "output_tokens": self.usage.output_tokens, "cost_usd": self.usage.cost_usd,
                    "wall_s": round(self.elapsed_s, 3)}
