"""The paper's experiments as one call each: RQ3 (diffusion steps) and RQ4 (editors at equal budget).

``harness`` prepares a window once (seed prompt served on the dataset's window part, recorded) and
runs isolated dry-run rounds on copies of it; ``sweeps`` holds the two experiments; ``render``
writes their markdown table and SVG plot. The CLI (``diffprompt experiment steps|editors``) is thin.
"""
