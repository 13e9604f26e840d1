"""τ-bench integration: ``build_tau`` (the one τ factory), named scenarios, ``TauReplay``, the oracle judge.

Light at import: names resolve lazily from their modules (``factory`` for the set-up, ``scenario``
for ``DEFAULT_SCENARIO``, ``replay`` for the replay environment, ``oracle`` for the labelled
upper-bound judge), and ``tau_envs`` loads only inside the functions that need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffprompt.integrations.tau.factory import (
        TauSetup,
        UserSpec,
        build_tau,
        make_user_factory,
        parse_user_spec,
        target_model,
        tau_blamer,
    )
    from diffprompt.integrations.tau.replay import TauReplay
    from diffprompt.integrations.tau.scenario import (
        DEFAULT_SCENARIO,
        RETAIL_SCENARIO,
        SCENARIOS,
        Scenario,
        default_scenario,
        degraded_world,
        get_scenario,
        record_traffic,
    )

_WHERE = {
    **dict.fromkeys(
        ("TauSetup", "UserSpec", "build_tau", "make_user_factory", "parse_user_spec", "target_model", "tau_blamer"),
        "factory",
    ),
    "TauReplay": "replay",
    **dict.fromkeys(
        ("DEFAULT_SCENARIO", "RETAIL_SCENARIO", "SCENARIOS", "Scenario", "default_scenario", "degraded_world",
         "get_scenario", "record_traffic"),
        "scenario",
    ),
}
__all__ = [
    "DEFAULT_SCENARIO",
    "RETAIL_SCENARIO",
    "SCENARIOS",
    "Scenario",
    "TauReplay",
    "TauSetup",
    "UserSpec",
    "build_tau",
    "default_scenario",
    "degraded_world",
    "get_scenario",
    "make_user_factory",
    "parse_user_spec",
    "record_traffic",
    "target_model",
    "tau_blamer",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
