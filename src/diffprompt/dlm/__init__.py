"""Diffusion language model: the pure sampler, backends (Dream, LLaDA, A2D, built-in), layout, editor.

Nothing loads at import; use ``load_dlm(spec)`` or ``load_builtin()`` explicitly.
"""
