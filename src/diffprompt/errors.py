"""The error hierarchy. Messages name the fix, not just the symptom.

Per-item failures (one replay episode, one rejected candidate) are data, not exceptions; these are
for systemic failures: bad configuration, an unreachable store, unknown ids, a model that cannot load.
"""

from __future__ import annotations


class DiffpromptError(Exception):
    """Base class of every error diffprompt raises on purpose."""


class ConfigError(DiffpromptError):
    """Invalid settings or arguments; the message says which value and what is allowed."""


class StoreError(DiffpromptError):
    """The database is unreachable, locked past its timeout, or out of date."""


class NotFoundError(StoreError):
    """An unknown slot, version, trace, thread or run id."""


class ConflictError(StoreError):
    """An operation that contradicts the stored state (e.g. a rollback to another slot's version)."""


class ValidationError(DiffpromptError):
    """Input that fails validation (a reward outside [0, 1], a malformed import record)."""


class ModelError(DiffpromptError):
    """A model (DLM, target LLM, judge) could not be loaded or returned unusable output."""


class EnvError(DiffpromptError):
    """A replay / τ environment is misconfigured (unknown domain, missing data files)."""


class BudgetExceeded(DiffpromptError):
    """A run hit one of its budgets (calls, tokens, dollars, wall time); carries which one."""

    def __init__(self, budget: str, limit: float, used: float) -> None:
        super().__init__(f"budget '{budget}' exhausted: used {used:g} of {limit:g}")
        self.budget = budget
        self.limit = limit
        self.used = used
