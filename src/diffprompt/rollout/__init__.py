"""Guarded rollout: a canary proves itself on live traffic or is rolled back by itself.

* ``stats`` — pure: always-valid confidence sequences per arm, the canary decision
  (promote / rollback / wait / expire), cumulative paths for the report;
* ``drift`` — pure: the CUSUM e-detector on the active version's live success, model changes;
* ``config`` — ``RolloutConfig`` and ``DriftConfig`` (frozen, validated);
* ``monitor`` — I/O: reads the store, decides, acts through the registry, audits;
* ``jobs`` — the scheduler's watch job and drift trigger;
* ``simulate`` — seeded simulations with known rates (tests and ``bench/rollout.py``).

Importing this package loads only the config and the pure statistics (numpy).
"""

from __future__ import annotations

from diffprompt.rollout.config import DriftConfig, Guardrail, RolloutConfig
from diffprompt.rollout.stats import ArmData, RolloutDecision, evaluate

__all__ = ["ArmData", "DriftConfig", "Guardrail", "RolloutConfig", "RolloutDecision", "evaluate"]
