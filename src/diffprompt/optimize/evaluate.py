"""Score one prompt version on a replay environment without optimizing; record episodes as a window.

``evaluate`` replays ``cases`` with one version (the paired driver with a single prompt: same seeds
as every other run with this seed) and summarises it as an ``EvalReport``; for dataset episodes it
adds accuracy, macro-F1 and the count of unparseable replies. ``record_episodes`` stores episodes as
traces of the version with their ``reward`` feedback (source ``env``) and, for wrong dataset
answers, a comment saying what was expected, in two all-or-nothing batches (traces, then feedback).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from diffprompt.optimize.replay import Case, PairedReplay, ReplayEnvironment, run_paired
from diffprompt.types import Feedback, PromptVersion, ReplayResult


@dataclass(frozen=True, kw_only=True, slots=True)
class EvalReport:
    """One version's score on an env: ``score`` is the mean reward (= accuracy for datasets)."""

    env: str
    slot: str
    version_id: str
    n: int
    score: float
    errors: int
    unparsed: int
    model_calls: int
    tokens: int
    cost_usd: float
    seconds: float
    seed: int
    accuracy: float | None = None
    macro_f1: float | None = None
    recorded: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(env: ReplayEnvironment, version: PromptVersion, res: PairedReplay) -> EvalReport:
    """The ``EvalReport`` of ``version`` in a paired replay."""
    from diffprompt.datasets.metrics import accuracy, macro_f1

    rs = res.results[version.id]
    mds = [r.trace.metadata if r.trace is not None else {} for r in rs]
    is_dataset = any("gold" in md for md in mds)
    acc = f1 = None
    unparsed = sum(1 for r, md in zip(rs, mds, strict=True) if md.get("unparsed") and not r.error)
    if is_dataset:
        data = getattr(env, "data", None)
        labels = list(getattr(data, "labels", ()))
        gold = [str(md.get("gold", "")) for md in mds]
        pred = [md.get("predicted") if not r.error else None for r, md in zip(rs, mds, strict=True)]
        gold = [g or "" for g in gold]
        acc, f1 = accuracy(gold, pred), macro_f1(gold, pred, labels or sorted(set(gold)))
    u = res.usage(version.id)
    return EvalReport(
        env=str(getattr(env, "name", type(env).__name__)),
        slot=version.slot,
        version_id=version.id,
        n=len(rs),
        score=res.mean(version.id),
        errors=res.errors(version.id),
        unparsed=unparsed,
        model_calls=res.model_calls(version.id),
        tokens=u.total_tokens,
        cost_usd=u.cost_usd,
        seconds=round(res.seconds, 3),
        seed=res.seed,
        accuracy=acc,
        macro_f1=f1,
    )


def evaluate(
    env: ReplayEnvironment,
    version: PromptVersion,
    cases: Sequence[Case],
    *,
    seed: int = 0,
    trials: int = 1,
    concurrency: int = 4,
) -> tuple[EvalReport, PairedReplay]:
    """Replay ``cases`` with ``version``; deterministic for a deterministic env and target."""
    res = run_paired(env, cases, {version.id: version.text}, trials=trials, seed=seed, concurrency=concurrency)
    return summarise(env, version, res), res


def _comment(r: ReplayResult, labels: Sequence[str]) -> str:
    from diffprompt.datasets.env import feedback_comment

    if r.trace is None or "gold" not in r.trace.metadata or r.reward >= 1.0:
        return ""
    return feedback_comment(r.trace, labels)


def record_episodes(store: Any, version: PromptVersion, env: ReplayEnvironment, results: Sequence[ReplayResult]) -> int:
    """Store ``results`` (with traces) as the slot's traces + reward feedback; returns how many."""
    labels = list(getattr(getattr(env, "data", None), "labels", ()))
    traces, feedback = [], []
    for r in results:
        if r.trace is None:
            continue
        tr = replace(r.trace, slot=version.slot, version_id=version.id, error=r.error or r.trace.error)
        traces.append(tr)
        feedback.append(Feedback(trace_id=tr.id, kind="reward", value=float(r.reward), source="env"))
        note = _comment(r, labels)
        if note:
            feedback.append(Feedback(trace_id=tr.id, kind="comment", value=None, text=note, source="env"))
    if traces:
        store.add_traces(traces)
        store.add_feedback(feedback)
    return len(traces)
