"""Classification metrics over (gold, predicted-or-None) pairs: accuracy and macro-F1.

An unparseable reply (``None``) is wrong: it counts against recall of its gold label and is no
label's prediction. Macro-F1 averages per-label F1 over the label set (a label with neither support
nor predictions is left out of the average; F1 is 0 when precision + recall is 0).
"""

from __future__ import annotations

from collections.abc import Sequence


def accuracy(gold: Sequence[str], pred: Sequence[str | None]) -> float:
    """Share of exact matches (0.0 for no examples)."""
    if len(gold) != len(pred):
        raise ValueError("gold and pred differ in length")
    return sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold) if gold else 0.0


def macro_f1(gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]) -> float:
    """Unweighted mean of per-label F1 (see the module docstring)."""
    if len(gold) != len(pred):
        raise ValueError("gold and pred differ in length")
    scores = []
    for lb in labels:
        tp = sum(g == lb and p == lb for g, p in zip(gold, pred, strict=True))
        n_pred = sum(p == lb for p in pred)
        n_gold = sum(g == lb for g in gold)
        if n_pred == 0 and n_gold == 0:
            continue
        prec = tp / n_pred if n_pred else 0.0
        rec = tp / n_gold if n_gold else 0.0
        scores.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(scores) / len(scores) if scores else 0.0
