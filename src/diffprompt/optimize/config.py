"""``OptimizeConfig``: every knob of an optimization round, validated, JSON-able and hashed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from diffprompt.errors import ConfigError
from diffprompt.optimize.attribution import AttributionConfig
from diffprompt.optimize.budget import RunBudget
from diffprompt.optimize.gate import GateConfig
from diffprompt.rollout.config import DriftConfig, RolloutConfig

PromoteMode = Literal["promote", "canary"]


@dataclass(frozen=True, kw_only=True, slots=True)
class OptimizeConfig:
    """Settings of one round. ``hash`` identifies them in run records (same config → same hash)."""

    window_limit: int = 400
    window_since_hours: float | None = None
    min_failures: int = 1
    # edit: DLPO-style controls
    n_candidates: int = 4
    iterations: int = 2
    edit_budget: int = 3  # spans masked per iteration
    edit_decay: float = 0.6  # budget multiplier per further iteration
    span_dropout: float = 0.15  # chance to drop a ranked span (never the top one)
    anneal_t0: float = 0.05  # annealed acceptance temperature on the screening score
    anneal_decay: float = 0.5
    length_penalty: float = 0.1  # screening score -= penalty * relative length growth
    history_k: int = 8  # recent feedback lines in the conditioning
    traces_k: int = 6  # failing traces handed to the editor
    # replay
    screen_cases: int = 16  # the minibatch: up to half of it readable failures, the rest successes
    holdout_cases: int = 60
    read_share: float = 0.5  # share of failing replay keys the blamer/editor read; the rest are held out
    success_read_share: float = 0.5  # share of passing replay keys they read (at least the screen's)
    trials: int = 1
    finalists: int = 1
    replay_concurrency: int = 4
    # promotion
    promote_mode: PromoteMode = "promote"
    canary_share: float = 0.1
    gate: GateConfig = field(default_factory=GateConfig)
    budget: RunBudget = field(default_factory=RunBudget)
    attribution: AttributionConfig = field(default_factory=AttributionConfig)
    rollout: RolloutConfig = field(default_factory=RolloutConfig)  # the live canary test
    drift: DriftConfig = field(default_factory=DriftConfig)  # the --on-drift trigger

    def __post_init__(self) -> None:
        positive = (
            "window_limit",
            "n_candidates",
            "iterations",
            "edit_budget",
            "screen_cases",
            "holdout_cases",
            "trials",
            "finalists",
            "replay_concurrency",
            "traces_k",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"optimize {name} must be >= 1, got {getattr(self, name)}")
        for name in ("span_dropout", "edit_decay", "anneal_decay", "read_share", "success_read_share"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"optimize {name} must be in [0, 1], got {v}")
        if self.min_failures < 0 or self.length_penalty < 0 or self.anneal_t0 < 0:
            raise ConfigError("optimize min_failures, length_penalty and anneal_t0 must be >= 0")
        if self.promote_mode not in ("promote", "canary"):
            raise ConfigError(f"optimize promote_mode must be promote|canary, got {self.promote_mode!r}")
        if not 0.0 < self.canary_share < 1.0:
            raise ConfigError(f"optimize canary_share must be in (0, 1), got {self.canary_share}")

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = (
                v.as_dict() if hasattr(v, "as_dict") else (asdict(v) if f.name == "attribution" else v)
            )
        return out

    @property
    def hash(self) -> str:
        blob = json.dumps(self.as_dict(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> OptimizeConfig:
        """Build from a (partial) dict, e.g. a TOML table or a stored record; unknown keys are errors."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown optimize settings {sorted(unknown)}; known: {sorted(known)}")
        kw = dict(data)
        if isinstance(kw.get("gate"), dict):
            kw["gate"] = GateConfig(**kw["gate"])
        if isinstance(kw.get("budget"), dict):
            kw["budget"] = RunBudget(**kw["budget"])
        if isinstance(kw.get("attribution"), dict):
            kw["attribution"] = AttributionConfig(**kw["attribution"])
        if isinstance(kw.get("rollout"), dict):
            kw["rollout"] = RolloutConfig.from_dict(kw["rollout"])
        if isinstance(kw.get("drift"), dict):
            kw["drift"] = DriftConfig.from_dict(kw["drift"])
        try:
            return cls(**kw)
        except TypeError as exc:
            raise ConfigError(f"bad optimize settings: {exc}") from None
