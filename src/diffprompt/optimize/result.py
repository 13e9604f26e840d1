"""The round's outputs: progress events for the UI layer and the final ``RoundResult``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from diffprompt.optimize.record import RunRecord
from diffprompt.types import GateDecision


@dataclass(frozen=True, kw_only=True, slots=True)
class RoundEvent:
    """A progress event for the CLI / UI layer."""

    # window: the window's counts | attribution: {"ranking": [SpanScore dicts]} | masked: {"iteration",
    # "span_ids", "masked_prompt"} | candidates: {"iteration", "n", "valid", "invalid": {status: count},
    # "candidates": [CandidateRecord JSON]} | screen: {"iteration", "parent", "candidates": [scores]} |
    # replay: {"means": {label: mean} with labels incumbent / candidate / candidate 2 ..., "paired":
    # per-episode record} | decision: {"kind", "reasons", "stats"} | done: {"status", "decision"}
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class RoundResult:
    """The outcome of a round; ``record`` is the typed record saved with ``store.save_run``."""

    run_id: str
    slot: str
    status: str
    decision: GateDecision
    incumbent_id: str
    promoted_version_id: str | None
    candidate_version_text: str | None
    incumbent_score: float | None
    candidate_score: float | None
    p_value: float | None
    record: RunRecord

    def summary(self) -> dict[str, Any]:
        """The one-line JSON the CLI prints with ``--json``."""
        return {
            "run_id": self.run_id,
            "slot": self.slot,
            "status": self.status,
            "decision": self.decision.kind,
            "incumbent_score": self.incumbent_score,
            "candidate_score": self.candidate_score,
            "p_value": self.p_value,
            "promoted_version": self.promoted_version_id,
            "reasons": list(self.decision.reasons),
            "target_calls": self.record.cost.target_calls if self.record.cost is not None else None,
        }
