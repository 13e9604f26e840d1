"""τ-bench-compatible airline and retail environments: official data or generated worlds.

Public API (nothing loads at import): ``tau_envs.load_domain``, ``tau_envs.types``, ``tau_envs.generate``,
``tau_envs.sim`` (simulated target model, scripted and LLM users), ``tau_envs.runner``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_domain"]


def load_domain(*args: Any, **kwargs: Any) -> Any:
    """Load a domain from a directory in the official layout (see ``tau_envs.domain.load_domain``)."""
    from tau_envs.domain import load_domain as _load

    return _load(*args, **kwargs)
