"""The round's bookkeeping: its dependencies, and the run record as it grows.

``RoundDeps`` (frozen) is what a round works with — the seams and the strategies; ``RoundSpec`` is
what it is asked to do. ``RunLog`` holds the typed ``RunRecord`` of one round, the stage timings and
the budget tracker, and writes the record to the store (``running`` first, the final status last).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from diffprompt.editing import Editor
from diffprompt.optimize import history
from diffprompt.optimize.attribution import Blamer, SpanLikelihood
from diffprompt.optimize.budget import BudgetTracker
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.prepare import CaseSplit
from diffprompt.optimize.record import CaseUse, CostRecord, ReplayRecord, RunRecord, VersionRef, WindowInfo, decode
from diffprompt.optimize.replay import PairedReplay, ReplayEnvironment
from diffprompt.optimize.result import RoundEvent
from diffprompt.optimize.strategies import Acceptance, FinalistChooser, Screener, SpanSelector
from diffprompt.optimize.validate import ScreenedCandidate
from diffprompt.store.base import Store
from diffprompt.types import PromptVersion, TraceWithFeedback, utcnow

if TYPE_CHECKING:
    from diffprompt.llm import MeterSnapshot


class Meter(Protocol):
    """Anything that counts model calls (``diffprompt.llm.CallMeter``)."""

    def snapshot(self) -> MeterSnapshot: ...


def no_events(_: RoundEvent) -> None:
    """The default event sink: drop every event."""
    return None


@dataclass(frozen=True, kw_only=True, slots=True)
class RoundDeps:
    """What a round works with: the seams and the strategies (``None`` = the config's default)."""

    store: Store
    env: ReplayEnvironment
    editor: Editor
    blamer: Blamer | None = None
    likelihood: SpanLikelihood | None = None
    selector: SpanSelector | None = None
    acceptance: Acceptance | None = None
    screener: Screener | None = None
    finalists: FinalistChooser | None = None
    clock: Callable[[], datetime] = utcnow
    events: Callable[[RoundEvent], None] = no_events
    meter: Meter | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class RoundSpec:
    """What one round is asked to do."""

    slot: str
    config: OptimizeConfig
    seed: int = 0
    dry_run: bool = False
    run_id: str = ""
    actor: str = "optimizer"


class RunLog:
    """The run record of one round as it grows, its stage timings and its budget tracker."""

    def __init__(self, deps: RoundDeps, spec: RoundSpec, run_id: str) -> None:
        self.deps, self.spec = deps, spec
        self.record = RunRecord(run_id=run_id, slot=spec.slot)
        self.tracker = BudgetTracker(spec.config.budget)
        self.timings: dict[str, float] = {}

    @property
    def run_id(self) -> str:
        return self.record.run_id

    def update(self, **fields: Any) -> None:
        """Set record fields (the record is frozen; this replaces it)."""
        self.record = replace(self.record, **fields)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Add the block's wall time to ``timings[stage]``."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - t0, 4)

    def now(self) -> str:
        return self.deps.clock().isoformat()

    def start(self, incumbent: PromptVersion, window: Sequence[TraceWithFeedback], failures: int) -> WindowInfo:
        """Record what the round starts from and save it as ``running``."""
        spec, editor = self.spec, self.deps.editor
        info = WindowInfo(
            key=history.window_key(spec.slot, incumbent.id, window),
            n=len(window),
            failures=failures,
            successes=sum(1 for t in window if t.reward is not None) - failures,
            trace_ids=tuple(t.trace.id for t in window)[:500],
        )
        self.update(
            started_at=self.now(),
            seed=spec.seed,
            config=spec.config.as_dict(),
            config_hash=spec.config.hash,
            editor=editor.name,
            editor_capabilities=dataclasses.asdict(editor.capabilities),
            env=self.deps.env.name,
            dry_run=spec.dry_run,
            actor=spec.actor,
            incumbent=VersionRef(id=incumbent.id, text=incumbent.text),
            window=info,
        )
        self.save("running")
        return info

    def cases(
        self,
        split: CaseSplit,
        *,
        blamer_read: Sequence[TraceWithFeedback] | None = None,
        editor_read: Sequence[TraceWithFeedback] = (),
    ) -> None:
        """Record the case split and what the blamer / the editor read (calls add up)."""
        prev = self.record.cases or CaseUse()
        blamer_ids = prev.blamer_trace_ids if blamer_read is None else tuple(t.trace.id for t in blamer_read)
        editor_ids = tuple(t.trace.id for t in editor_read) or prev.editor_trace_ids
        keys = {k for t in (*(blamer_read or ()), *editor_read) if (k := t.trace.replay_key)}
        self.update(
            cases=CaseUse(
                screen=tuple(c.id for c in split.screen),
                holdout=tuple(c.id for c in split.holdout),
                blamer_trace_ids=blamer_ids,
                editor_trace_ids=editor_ids,
                read_replay_keys=tuple(sorted({*prev.read_replay_keys, *keys})),
                holdout_replay_keys=tuple(sorted({c.replay_key or c.id for c in split.holdout})),
            )
        )

    def add_screen(self, replay: PairedReplay) -> None:
        self.update(screens=(*self.record.screens, replay_record(replay)))

    def save(self, status: str) -> None:
        """Write the record with ``status``, the timings and the costs so far."""
        snap = self.deps.meter.snapshot() if self.deps.meter is not None else None
        meter = None
        if snap is not None:
            meter = {k: float(getattr(snap, k)) for k in ("calls", "input_tokens", "output_tokens", "cost_usd")}
        cost = CostRecord(**self.tracker.snapshot(), meter=meter)
        self.update(status=status, updated_at=self.now(), timings=dict(self.timings), cost=cost)
        self.deps.store.save_run(self.run_id, self.spec.slot, self.record.to_json(), status=status)


def replay_record(res: PairedReplay) -> ReplayRecord:
    """A paired replay as its typed record part."""
    return decode(ReplayRecord, res.as_record())


def rejected_edits(screened: Sequence[ScreenedCandidate], *, gate_rejected: bool) -> Mapping[str, tuple[str, ...]]:
    """Per-span texts that lost in screening, or at the gate (not in dry runs or budget stops)."""
    mem: dict[str, list[str]] = {}
    for b in screened:
        lost = b.status == "screen_lost" or (gate_rejected and b.status == "screened")
        for sid, text in b.new_texts.items() if lost else ():
            bucket = mem.setdefault(sid, [])
            if text not in bucket:
                bucket.append(text)
    return {k: tuple(v) for k, v in mem.items()}
