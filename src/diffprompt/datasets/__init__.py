"""Single-turn labelled datasets as replay environments (the paper's SST-2, SST-5, MRPC, SNLI tasks).

``data`` loads and validates JSONL (``text`` or ``text_a``/``text_b`` + string ``label``) and infers the
task kind; ``labels`` parses a model reply to a label; ``metrics`` scores predictions (accuracy,
macro-F1); ``env`` is the ``dataset:PATH`` replay environment with its offline blamer and the
simulated lexical target; ``evaluate`` scores one prompt version without optimizing. Nothing here
runs at import.
"""
