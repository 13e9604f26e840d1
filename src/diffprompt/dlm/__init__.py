"""Diffusion language model: the pure sampler, backends (Dream, LLaDA, A2D, built-in), layout, editor.

Nothing loads at import, not even torch: the names below resolve lazily from their modules, so
``import diffprompt.dlm.layout`` (or ``diffprompt --help``) stays torch-free. Use ``load_dlm(spec)``
or ``load_builtin()`` explicitly.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from diffprompt.dlm.backends import DIFFUSION_MARKER, HFDiffusionLM, load_dlm, random_dlm
    from diffprompt.dlm.base import DiffusionLM, DLTokenizer
    from diffprompt.dlm.sampler import ALGS, Alg, InfillResult, LogitsFn, infill, num_transfer_tokens

_WHERE = {
    **dict.fromkeys(("DIFFUSION_MARKER", "HFDiffusionLM", "load_dlm", "random_dlm"), "backends"),
    **dict.fromkeys(("DiffusionLM", "DLTokenizer"), "base"),
    **dict.fromkeys(("ALGS", "Alg", "InfillResult", "LogitsFn", "infill", "num_transfer_tokens"), "sampler"),
}

__all__ = [
    "ALGS",
    "DIFFUSION_MARKER",
    "Alg",
    "DLTokenizer",
    "DiffusionLM",
    "HFDiffusionLM",
    "InfillResult",
    "LogitsFn",
    "infill",
    "load_dlm",
    "num_transfer_tokens",
    "random_dlm",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # resolve once
    return value
