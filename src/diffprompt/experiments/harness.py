"""Experiment plumbing: one recorded window, isolated rounds on copies of it, per-arm measurements.

Every arm runs ``optimize.loop.run_round`` as a dry run on a fresh in-memory store holding the same
seed version and the same recorded window, so arms never see each other's run history (rejected-edit
memory) and the active prompt never moves. Same round seed → same screening and held-out cases for
every arm; ``held_out`` is the finalist's held-out mean (the incumbent's when no candidate survived),
``served`` what the gate would serve (the finalist only when it would be promoted).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from diffprompt.optimize.config import OptimizeConfig
from diffprompt.store.memory import MemoryStore
from diffprompt.types import Feedback, PromptVersion, Trace

SLOT = "experiment"


@dataclass(frozen=True, kw_only=True, slots=True)
class Window:
    """A recorded window: the seed text, its traces and feedback, and the baseline on it."""

    seed_text: str
    traces: tuple[Trace, ...]
    feedback: tuple[Feedback, ...]
    window_score: float


@dataclass(frozen=True, kw_only=True, slots=True)
class ArmResult:
    """One (arm, seed) round."""

    arm: str
    seed: int
    status: str
    incumbent: float | None
    held_out: float
    served: float
    target_calls: int
    editor_forwards: int
    editor_calls: int
    seconds: float
    edit_seconds: float
    candidates: int
    valid: int
    p_value: float | None
    text: str
    replayed: tuple[str, ...] = ()  # case ids the round screened or gated on
    reasons: tuple[str, ...] = ()  # the gate's (or the search's) stated reasons for the decision

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_window(env: Any, seed_text: str, cases: Sequence[Any], *, seed: int = 0, concurrency: int = 4) -> Window:
    """Serve ``seed_text`` on ``cases`` once and keep the episodes (traces + reward/comment feedback)."""
    from diffprompt.optimize.evaluate import evaluate, record_episodes

    store = MemoryStore()
    v = store.create_slot(SLOT, seed_text)
    report, res = evaluate(env, v, cases, seed=seed, concurrency=concurrency)
    errs = [r.error for r in res.results[v.id] if r.error]
    if errs and len(errs) == len(res.results[v.id]):  # an empty window would only ever be insufficient_data
        from diffprompt.errors import ModelError

        raise ModelError(f"every window episode failed ({len(errs)} of {len(errs)}); the first: {errs[0]}")
    record_episodes(store, v, env, res.results[v.id])
    traces = tuple(store.list_traces(SLOT))
    fb = tuple(store.feedback_for([t.id for t in traces]))
    return Window(seed_text=seed_text, traces=traces, feedback=fb, window_score=report.score)


def fresh_store(window: Window) -> tuple[MemoryStore, PromptVersion]:
    """A new store with the seed version active and the window's traces re-pointed at it."""
    store = MemoryStore()
    v = store.create_slot(SLOT, window.seed_text)
    store.add_traces([replace(t, version_id=v.id) for t in window.traces])
    store.add_feedback([replace(f, id=None) for f in window.feedback])
    return store, v


class CountingEditor:
    """Wraps an editor: counts DLM forwards (``last_forwards`` after each call) and editor seconds."""

    def __init__(self, inner: Any, meter: Any = None) -> None:
        self.inner, self.meter = inner, meter
        self.name = str(inner.name)
        self.capabilities = inner.capabilities  # declared by every Editor (diffprompt.editing)
        self.forwards = 0
        self.seconds = 0.0

    def propose(self, request: Any) -> Any:
        t0 = time.perf_counter()
        out = self.inner.propose(request)
        self.seconds += time.perf_counter() - t0
        self.forwards += int(getattr(self.inner, "last_forwards", 0) or 0)
        return out


def run_arm(
    arm: str,
    window: Window,
    *,
    env: Any,
    editor: Any,
    blamer: Any,
    config: OptimizeConfig,
    seed: int,
    editor_meter: Any = None,
    seed_cache: dict[tuple[str, ...], float] | None = None,
) -> ArmResult:
    """One isolated dry-run round of ``editor`` on a copy of ``window`` (see the module docstring).

    When the round stops before its gate, the seed prompt is scored on the round's held-out cases
    here (outside the round's budget; cached in ``seed_cache`` by case ids), so every arm has a score.
    """
    from diffprompt.optimize.loop import run_round

    store, _ = fresh_store(window)
    counting = CountingEditor(editor)
    calls0 = editor_meter.snapshot().calls if editor_meter is not None else 0
    t0 = time.perf_counter()
    res = run_round(store, SLOT, env=env, editor=counting, config=config, seed=seed, blamer=blamer, dry_run=True)
    seconds = time.perf_counter() - t0
    rec = res.record
    target_calls = rec.cost.target_calls if rec.cost is not None else 0
    inc = res.incumbent_score
    holdout = tuple(rec.cases.holdout) if rec.cases is not None else ()
    if inc is None and holdout:  # no gate ran (nothing survived screening): measure the seed on the same cases
        inc = _seed_score(env, store, holdout, seed + 7919, seed_cache if seed_cache is not None else {})
    held = res.candidate_score if res.candidate_score is not None else (inc if inc is not None else 0.0)
    served = held if res.status in ("dry_run", "promoted", "canary") else (inc if inc is not None else 0.0)
    cands = rec.candidates
    return ArmResult(
        arm=arm,
        seed=seed,
        status=res.status,
        incumbent=inc,
        held_out=float(held),
        served=float(served),
        target_calls=target_calls,
        editor_forwards=counting.forwards,
        editor_calls=(editor_meter.snapshot().calls - calls0) if editor_meter is not None else 0,
        seconds=round(seconds, 3),
        edit_seconds=round(counting.seconds, 3),
        candidates=len(cands),
        valid=sum(1 for c in cands if c.status not in ("invalid", "malformed", "unchanged", "duplicate", "repeat")),
        p_value=res.p_value,
        text=res.candidate_version_text or "",
        replayed=(rec.cases.screen + rec.cases.holdout) if rec.cases is not None else (),
        reasons=tuple(str(r) for r in res.decision.reasons),
    )


def _seed_score(env: Any, store: MemoryStore, ids: tuple[str, ...], seed: int,
                cache: dict[tuple[str, ...], float]) -> float:
    from diffprompt.optimize.replay import run_paired

    if ids not in cache:
        by_id = {c.id: c for c in env.cases(store.window(SLOT))}
        cases = [by_id[i] for i in ids if i in by_id]
        seed_v = store.active_version(SLOT)
        cache[ids] = run_paired(env, cases, {"seed": seed_v.text}, seed=seed).mean("seed")
    return cache[ids]


@dataclass(frozen=True, kw_only=True, slots=True)
class ArmSummary:
    """Mean and spread over seeds of one arm."""

    arm: str
    seeds: int
    incumbent: float
    held_out: float
    held_out_sd: float
    served: float
    promoted: int
    target_calls: float
    editor_forwards: float
    editor_calls: float
    seconds: float
    edit_seconds: float


def summarise(arm: str, rows: Sequence[ArmResult]) -> ArmSummary:
    def mean(f: Callable[[ArmResult], float]) -> float:
        return statistics.fmean(f(r) for r in rows) if rows else 0.0

    held = [r.held_out for r in rows]
    return ArmSummary(
        arm=arm,
        seeds=len(rows),
        incumbent=mean(lambda r: r.incumbent or 0.0),
        held_out=mean(lambda r: r.held_out),
        held_out_sd=statistics.stdev(held) if len(held) > 1 else 0.0,
        served=mean(lambda r: r.served),
        promoted=sum(r.status == "dry_run" for r in rows),
        target_calls=mean(lambda r: r.target_calls),
        editor_forwards=mean(lambda r: r.editor_forwards),
        editor_calls=mean(lambda r: r.editor_calls),
        seconds=mean(lambda r: r.seconds),
        edit_seconds=mean(lambda r: r.edit_seconds),
    )
