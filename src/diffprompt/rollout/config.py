"""Settings of the guarded rollout: the live canary test (``RolloutConfig``) and the drift trigger.

They sit next to the offline gate's settings (``OptimizeConfig.rollout``, the ``[optimize.rollout]``
TOML table); both are frozen, validated at construction and JSON round-trip through ``as_dict`` /
``from_dict`` (unknown keys are errors).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from diffprompt.errors import ConfigError

GuardMetric = Literal["error_rate", "latency_ms", "tokens", "cost_usd"]
GUARD_METRICS: tuple[GuardMetric, ...] = ("error_rate", "latency_ms", "tokens", "cost_usd")


@dataclass(frozen=True, kw_only=True, slots=True)
class Guardrail:
    """A one-sided check on one metric of the canary against the incumbent.

    The canary's mean ``metric`` must not exceed the incumbent's by more than ``tolerance``
    (absolute for ``error_rate``, a relative fraction for the others).
    """

    metric: GuardMetric
    tolerance: float

    def __post_init__(self) -> None:
        if self.metric not in GUARD_METRICS:
            raise ConfigError(f"guardrail metric must be one of {', '.join(GUARD_METRICS)}, got {self.metric!r}")
        if not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise ConfigError(f"guardrail {self.metric}: tolerance must be >= 0, got {self.tolerance!r}")

    @property
    def relative(self) -> bool:
        return self.metric != "error_rate"


def _default_guardrails() -> tuple[Guardrail, ...]:
    return (
        Guardrail(metric="error_rate", tolerance=0.05),
        Guardrail(metric="latency_ms", tolerance=0.25),
        Guardrail(metric="tokens", tolerance=0.25),
        Guardrail(metric="cost_usd", tolerance=0.25),
    )


def _check_alpha(name: str, v: float) -> None:
    if not (isinstance(v, int | float) and 0.0 < v < 0.5):
        raise ConfigError(f"rollout {name} must be in (0, 0.5), got {v!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class RolloutConfig:
    """The live canary test.

    ``alpha``: the chance that an A/A canary is promoted or rolled back by the reward test, at any
    number of looks. ``alpha_guard``: per guardrail, the chance of a false breach when the arms are
    equal (far less with a positive tolerance). ``tune_threads``: the per-arm sample size at which
    the confidence sequences are tightest (a tuning choice; validity holds for any value).
    ``min_threads``: scored threads per arm before any decision. ``max_threads`` (canary threads) or
    ``max_hours`` end an undecided canary, keeping the incumbent. ``min_gain``: the promote bar on the
    reward difference (0: any significant win).
    """

    alpha: float = 0.05
    alpha_guard: float = 0.01
    tune_threads: int = 500
    min_threads: int = 20
    max_threads: int = 10_000
    max_hours: float = 24.0 * 14
    min_gain: float = 0.0
    guardrails: tuple[Guardrail, ...] = field(default_factory=_default_guardrails)
    actor: str = "rollout-monitor"

    def __post_init__(self) -> None:
        _check_alpha("alpha", self.alpha)
        _check_alpha("alpha_guard", self.alpha_guard)
        for name in ("tune_threads", "min_threads", "max_threads"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ConfigError(f"rollout {name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.max_threads < self.min_threads:
            raise ConfigError("rollout max_threads must be >= min_threads")
        if not self.max_hours > 0:
            raise ConfigError(f"rollout max_hours must be > 0, got {self.max_hours!r}")
        if not 0.0 <= self.min_gain < 1.0:
            raise ConfigError(f"rollout min_gain must be in [0, 1), got {self.min_gain!r}")
        metrics = [g.metric for g in self.guardrails]
        if len(set(metrics)) != len(metrics):
            raise ConfigError(f"rollout guardrails name a metric twice: {metrics}")
        if not self.actor.strip():
            raise ConfigError("rollout actor must not be empty")

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["guardrails"] = [asdict(g) for g in self.guardrails]
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RolloutConfig:
        kw = _known(cls, data, "rollout")
        if "guardrails" in kw:
            kw["guardrails"] = tuple(
                g if isinstance(g, Guardrail) else Guardrail(**_known(Guardrail, dict(g), "guardrail"))
                for g in kw["guardrails"]
            )
        return cls(**kw)


@dataclass(frozen=True, kw_only=True, slots=True)
class DriftConfig:
    """The drift trigger on the active version's live success.

    The first ``baseline_threads`` scored threads of the active version set its earlier level (a
    one-sided ``1 − alpha_baseline`` lower confidence bound on their mean, so a lucky baseline does
    not cause alarms). Later threads feed a CUSUM e-detector betting on a drop of ``drop``; it alarms when it
    reaches ``arl`` — the guaranteed average number of threads between false alarms. A change of the
    target model (``Trace.metadata["model"]``) between consecutive threads also triggers.
    """

    baseline_threads: int = 300
    alpha_baseline: float = 0.05
    drop: float = 0.1
    arl: float = 20_000.0
    on_model_change: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.baseline_threads, int) or self.baseline_threads < 10:
            raise ConfigError(f"drift baseline_threads must be an integer >= 10, got {self.baseline_threads!r}")
        _check_alpha("drift alpha_baseline", self.alpha_baseline)
        if not 0.0 < self.drop < 1.0:
            raise ConfigError(f"drift drop must be in (0, 1), got {self.drop!r}")
        if not self.arl > 1.0:
            raise ConfigError(f"drift arl must be > 1 (threads between false alarms), got {self.arl!r}")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftConfig:
        return cls(**_known(cls, data, "drift"))


def _known(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    known = {f.name for f in fields(cls)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown {what} settings {sorted(unknown)}; known: {sorted(known)}")
    return dict(data)
