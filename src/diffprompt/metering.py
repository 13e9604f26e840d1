"""Call metering: thread-safe counts of model calls, tokens and dollars, with budgets.

``CallMeter`` is shared by every client of a run (target, judge, editor); ``MeterCallback`` meters a
LangChain chat model the same way. Re-exported by ``diffprompt.llm``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from diffprompt.errors import BudgetExceeded
from diffprompt.types import Usage

__all__ = ["DEFAULT_PRICES", "CallMeter", "MeterCallback", "MeterSnapshot"]

# USD per 1M tokens (input, output). Longest matching prefix wins ("gpt-4o-mini-2024-07-18" → gpt-4o-mini).
DEFAULT_PRICES: Mapping[str, tuple[float, float]] = {
    "sim": (0.0, 0.0),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3": (2.00, 8.00),
    "o3-mini": (1.10, 4.40),
    "o4-mini": (1.10, 4.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
}


@dataclass(frozen=True, kw_only=True, slots=True)
class MeterSnapshot:
    """Totals of a ``CallMeter`` at one moment."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    unpriced_calls: int  # calls to a model missing from the price table (counted at $0)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


class CallMeter:
    """Counts model calls, tokens and dollars; enforces optional budgets. Thread-safe.

    ``check()`` runs before a call and raises ``BudgetExceeded`` when any budget is already spent;
    ``record()`` adds one finished call and returns its ``Usage`` (with cost). A call that pushes a
    total past its budget is still recorded (it happened); the *next* ``check()`` raises.
    """

    def __init__(
        self,
        *,
        prices: Mapping[str, tuple[float, float]] | None = None,
        max_calls: int | None = None,
        max_tokens: int | None = None,
        max_cost_usd: float | None = None,
    ) -> None:
        self.prices: dict[str, tuple[float, float]] = dict(DEFAULT_PRICES)
        self.prices.update(prices or {})
        self.max_calls = max_calls
        self.max_tokens = max_tokens
        self.max_cost_usd = max_cost_usd
        self._lock = threading.Lock()
        self._calls = 0
        self._in = 0
        self._out = 0
        self._cost = 0.0
        self._unpriced = 0

    def price(self, model: str) -> tuple[float, float] | None:
        """USD per 1M (input, output) tokens for ``model`` by longest prefix, or None if unknown."""
        best = max((k for k in self.prices if model == k or model.startswith(k + "-")), key=len, default=None)
        return self.prices[best] if best is not None else None

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> float:
        p = self.price(model)
        return 0.0 if p is None else (input_tokens * p[0] + output_tokens * p[1]) / 1e6

    def check(self) -> None:
        """Raise ``BudgetExceeded`` if any budget is already exhausted."""
        with self._lock:
            if self.max_calls is not None and self._calls >= self.max_calls:
                raise BudgetExceeded("calls", self.max_calls, self._calls)
            if self.max_tokens is not None and self._in + self._out >= self.max_tokens:
                raise BudgetExceeded("tokens", self.max_tokens, self._in + self._out)
            if self.max_cost_usd is not None and self._cost >= self.max_cost_usd:
                raise BudgetExceeded("cost_usd", self.max_cost_usd, self._cost)

    def record(self, model: str, input_tokens: int, output_tokens: int) -> Usage:
        usd = self.cost(model, input_tokens, output_tokens)
        with self._lock:
            self._calls += 1
            self._in += input_tokens
            self._out += output_tokens
            self._cost += usd
            if self.price(model) is None:
                self._unpriced += 1
        return Usage(input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=usd)

    def snapshot(self) -> MeterSnapshot:
        with self._lock:
            return MeterSnapshot(
                calls=self._calls,
                input_tokens=self._in,
                output_tokens=self._out,
                cost_usd=self._cost,
                unpriced_calls=self._unpriced,
            )


class MeterCallback(BaseCallbackHandler):
    """LangChain callback that checks budgets before each chat-model call and records usage after it."""

    raise_error = True  # a BudgetExceeded from on_chat_model_start must abort the call

    def __init__(self, meter: CallMeter, model: str) -> None:
        super().__init__()
        self.meter = meter
        self.model = model

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.meter.check()

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        n_in = n_out = 0
        for gens in response.generations:
            for g in gens:
                um = getattr(getattr(g, "message", None), "usage_metadata", None) or {}
                n_in += int(um.get("input_tokens", 0))
                n_out += int(um.get("output_tokens", 0))
        self.meter.record(self.model, n_in, n_out)
