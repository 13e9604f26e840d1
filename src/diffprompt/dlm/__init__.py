"""Diffusion language model: the pure sampler, backends (Dream, LLaDA, A2D, built-in), layout, editor.

Nothing loads at import; use ``load_dlm(spec)`` or ``load_builtin()`` explicitly.
"""

from diffprompt.dlm.backends import DIFFUSION_MARKER, HFDiffusionLM, load_dlm, random_dlm
from diffprompt.dlm.base import DiffusionLM, DLTokenizer
from diffprompt.dlm.sampler import ALGS, Alg, InfillResult, LogitsFn, infill, num_transfer_tokens

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
