"""One optimization round: collect → split → attribute → edit search → gate → promote.

``run_round`` orchestrates the seams (store, replay environment, editor, blamer) and the round's
strategies (``optimize.strategies``) and nothing else: no printing (events go to a callback), no
model loading. Everything it decides is written to the typed run record (``optimize.record``,
kept by ``optimize.runlog.RunLog``) — first as ``running`` (so a run that dies can be found and
marked abandoned), then with its final status. The active prompt only moves in the last step,
through the store's atomic ``promote``/``set_canary``, and only if the incumbent is still active.

Held out means held out: the gate's replay cases are split off first, and no trace of a held-out
replay key reaches the blamer or the editor (``prepare.CaseSplit.readable``); the record's
``cases`` lists what each part read and what was held out.

Statuses: ``promoted``, ``canary``, ``rejected``, ``insufficient_data``, ``dry_run`` (a promotion
that was not applied), ``budget_exhausted`` (a budget stopped the round; nothing promoted).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from diffprompt.editing import Editor
from diffprompt.errors import BudgetExceeded, ConflictError
from diffprompt.optimize.attribution import Blamer, SpanLikelihood, SpanScore, attribute, split_window
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.gate import decide
from diffprompt.optimize.prepare import span_changes, split_cases, stable_order
from diffprompt.optimize.record import AttributionRow, FinalistRecord, SpanChangeRecord, StopRecord, decode, to_json
from diffprompt.optimize.replay import Case, ReplayEnvironment, run_paired
from diffprompt.optimize.result import RoundEvent, RoundResult
from diffprompt.optimize.runlog import Meter, RoundDeps, RoundSpec, RunLog, no_events, rejected_edits, replay_record
from diffprompt.optimize.search import EditSearch
from diffprompt.optimize.strategies import candidate_label
from diffprompt.optimize.validate import ScreenedCandidate
from diffprompt.spans import render_diff, segment
from diffprompt.store.base import Store
from diffprompt.types import GateDecision, PromptVersion, TraceWithFeedback, new_id, utcnow

__all__ = ["RoundDeps", "RoundSpec", "run_round", "run_with"]


@dataclass(frozen=True, kw_only=True, slots=True)
class _Outcome:
    """The gate's finalist: its text and the held-out means of incumbent and candidate."""

    text: str
    incumbent: float
    candidate: float


class _Round:
    """One round; ``run`` is the pipeline, the methods below it its stages in order."""

    def __init__(self, deps: RoundDeps, spec: RoundSpec) -> None:
        self.deps, self.spec, self.cfg, self.slot = deps, spec, spec.config, spec.slot
        self.store, self.emit = deps.store, deps.events
        self.rng = random.Random(spec.seed)
        self.log = RunLog(deps, spec, spec.run_id or new_id("run_"))
        self.search = EditSearch(deps, spec.config, spec.seed, self.rng, self.log)

    def run(self) -> RoundResult:
        with self.log.timed("collect"):
            incumbent, window, protected = self.collect()
        fails, _ = split_window(window, self.cfg.attribution.fail_below)
        info = self.log.start(incumbent, window, len(fails))
        self.emit(RoundEvent(kind="window", data=to_json(info)))
        if not window:
            reason = f"the window of slot '{self.slot}' has no traces; record traffic first"
            return self.insufficient(incumbent, reason, n=0)
        need = max(1, self.cfg.min_failures)
        if len(fails) < need:
            reason = f"{len(fails)} failing traces in the window (need {need}); nothing to fix"
            return self.insufficient(incumbent, reason, n=len(window))
        try:
            return self.optimize(incumbent, window, protected)
        except BudgetExceeded as exc:
            self.log.update(stopped=StopRecord(budget=exc.budget, limit=exc.limit, used=exc.used))
            d = GateDecision(kind="reject", stats={"budget": exc.budget}, reasons=(f"stopped: {exc}",))
            return self.finish("budget_exhausted", d, incumbent)

    def optimize(
        self, incumbent: PromptVersion, window: list[TraceWithFeedback], protected: tuple[str, ...]
    ) -> RoundResult:
        """Split the cases, attribute on what may be read, search for edits, gate the finalists."""
        cfg = self.cfg
        self.log.tracker.check()
        split = split_cases(self.deps.env.cases(window), window, cfg, self.rng)
        readable = split.readable(window)
        own = [t for t in readable if t.trace.version_id == incumbent.id] or readable
        fails, _ = split_window(own, cfg.attribution.fail_below)
        ranking = self.attribute(incumbent, own, protected)
        self.log.cases(split, blamer_read=own)
        if len(split.holdout) < cfg.gate.min_cases:
            reason = f"only {len(split.holdout)} held-out replay cases; the gate needs {cfg.gate.min_cases}"
            return self.insufficient(incumbent, reason, n=len(split.holdout))
        if not fails:
            reason = "no failing trace is left to learn from once the gate's cases are held out"
            return self.insufficient(incumbent, reason, n=0)
        if not ranking and not self.deps.editor.capabilities.whole_prompt:
            reason = "attribution found no editable span that failures point at"
            bad = getattr(self.deps.blamer, "unparseable", None)  # JudgeBlamer keeps its garbage replies
            if bad:
                reason += f" ({len(bad)} blame judge replies unparseable, e.g. {bad[0][:120]!r})"
            return self.insufficient(incumbent, reason, n=len(fails))
        finalists = self.search.run(incumbent, ranking, fails, protected, split)
        if not finalists:
            reasons = ("no valid candidate survived screening", *self.screen_reasons())
            d = GateDecision(kind="reject", stats={"candidates": len(self.search.screened)}, reasons=reasons)
            return self.finish("rejected", d, incumbent)
        return self.gate(incumbent, finalists, list(split.holdout))

    # -- stages ---------------------------------------------------------------------------------
    def collect(self) -> tuple[PromptVersion, list[TraceWithFeedback], tuple[str, ...]]:
        """The active version, the window of recorded traces (``stable_order``), the protected span ids."""
        state = self.store.slot_state(self.slot)  # NotFoundError for an unknown slot
        incumbent = self.store.get_version(state.active_version_id)
        hours = self.cfg.window_since_hours
        since = self.deps.clock() - timedelta(hours=hours) if hours else None
        window = stable_order(self.store.window(self.slot, since=since, limit=self.cfg.window_limit))
        return incumbent, window, tuple(state.protected_span_ids)

    def attribute(
        self, incumbent: PromptVersion, own: list[TraceWithFeedback], protected: tuple[str, ...]
    ) -> list[SpanScore]:
        """Rank the incumbent's spans by how the readable failures point at them."""
        with self.log.timed("attribute"):
            ranking = attribute(
                incumbent,
                own,
                blamer=self.deps.blamer,
                likelihood=self.deps.likelihood,
                protected=protected,
                config=self.cfg.attribution,
            )
        rows = tuple(decode(AttributionRow, s.as_dict()) for s in ranking[:20])
        self.log.update(attribution=rows)
        self.emit(RoundEvent(kind="attribution", data={"ranking": to_json(rows[:10])}))
        return ranking

    def gate(self, incumbent: PromptVersion, finalists: list[ScreenedCandidate], holdout: list[Case]) -> RoundResult:
        """Replay incumbent and finalists on the held-out cases, paired; the gate decides; promote."""
        cfg = self.cfg
        labels = [candidate_label(i, len(finalists)) for i in range(len(finalists))]
        prompts = {"incumbent": incumbent.text} | {
            lab: f.candidate.text for lab, f in zip(labels, finalists, strict=True)
        }
        with self.log.timed("replay"):
            res = run_paired(
                self.deps.env,
                holdout,
                prompts,
                trials=cfg.trials,
                seed=self.spec.seed + 7919,
                concurrency=cfg.replay_concurrency,
                tracker=self.log.tracker,
            )
        self.log.update(replay=replay_record(res))
        self.emit(
            RoundEvent(kind="replay", data={"means": {k: res.mean(k) for k in prompts}, "paired": res.as_record()})
        )
        gate_cfg = replace(cfg.gate, alpha=cfg.gate.alpha / len(finalists))  # Bonferroni over finalists
        decisions = [
            decide(
                res.case_rewards("incumbent"),
                res.case_rewards(lab),
                gate_cfg,
                slices=res.case_slices(),
                trials=cfg.trials,
                lengths=(len(incumbent.text), len(f.candidate.text)),
                costs=(res.mean_cost("incumbent"), res.mean_cost(lab)),
            )
            for lab, f in zip(labels, finalists, strict=True)
        ]
        promoted = [i for i, d in enumerate(decisions) if d.promoted]
        i = max(promoted, key=lambda k: (res.mean(labels[k]), -k)) if promoted else 0
        win, d = finalists[i], decisions[i]
        new_spans = segment(win.candidate.text)
        self.log.update(
            scores={incumbent.id: res.mean("incumbent")},
            finalist=FinalistRecord(
                index=i,
                label=labels[i],
                text=win.candidate.text,
                diff=render_diff(incumbent.spans, new_spans),
                changed_span_ids=tuple(win.candidate.changed_span_ids),
                span_changes=tuple(SpanChangeRecord(**c) for c in span_changes(incumbent.spans, new_spans)),
            ),
        )
        self.emit(
            RoundEvent(kind="decision", data={"kind": d.kind, "reasons": list(d.reasons), "stats": dict(d.stats)})
        )
        outcome = _Outcome(text=win.candidate.text, incumbent=res.mean("incumbent"), candidate=res.mean(labels[i]))
        if not d.promoted:
            status = "insufficient_data" if d.kind == "insufficient_data" else "rejected"
            return self.finish(status, d, incumbent, outcome=outcome)
        if self.spec.dry_run:
            return self.finish("dry_run", d, incumbent, outcome=outcome)
        return self.promote(incumbent, win, d, outcome)

    def promote(
        self, incumbent: PromptVersion, win: ScreenedCandidate, d: GateDecision, outcome: _Outcome
    ) -> RoundResult:
        """Add the winner as a new version and move the active pointer (or the canary) to it."""
        state = self.store.slot_state(self.slot)
        if state.active_version_id != incumbent.id:
            reason = (
                f"the active version changed during the run ({incumbent.id} -> {state.active_version_id}); "
                "not promoting over it"
            )
            d = GateDecision(kind="reject", stats=dict(d.stats), reasons=(reason,))
            return self.finish("rejected", d, incumbent, outcome=outcome)
        run_id = self.log.run_id
        note = f"gain {d.stats.get('mean_gain', 0):+.3f}, p={d.stats.get('p_value', 1):.4g}"
        v = self.store.add_version(
            self.slot, win.candidate.text, parent_id=incumbent.id, origin=f"optimizer:{run_id}", note=note
        )
        self.log.update(scores={**self.log.record.scores, v.id: outcome.candidate})
        reason = f"optimizer run {run_id}: {d.reasons[0]}"
        try:  # compare-and-set: the move happens only if the incumbent is still active (atomic in the store)
            if self.cfg.promote_mode == "canary":
                self.store.set_canary(
                    self.slot,
                    v.id,
                    self.cfg.canary_share,
                    actor=self.spec.actor,
                    reason=reason,
                    expected_active=incumbent.id,
                )
                status = "canary"
            else:
                self.store.promote(self.slot, v.id, actor=self.spec.actor, reason=reason, expected_active=incumbent.id)
                status = "promoted"
        except ConflictError as exc:
            d = GateDecision(kind="reject", stats=dict(d.stats), reasons=(f"not promoting: {exc}",))
            return self.finish("rejected", d, incumbent, outcome=outcome)
        return self.finish(status, d, incumbent, promoted=v.id, outcome=outcome)

    def finish(
        self,
        status: str,
        decision: GateDecision,
        incumbent: PromptVersion,
        *,
        promoted: str | None = None,
        outcome: _Outcome | None = None,
    ) -> RoundResult:
        """Record the outcome (and the rejected edits to remember), save it, and return the result."""
        self.log.update(
            decision=decision,
            promoted_version=promoted,
            ended_at=self.log.now(),
            rejected_edits=rejected_edits(self.search.screened, gate_rejected=status == "rejected"),
        )
        self.log.save(status)
        self.emit(RoundEvent(kind="done", data={"status": status, "decision": decision.kind}))
        p = decision.stats.get("p_value")
        return RoundResult(
            run_id=self.log.run_id,
            slot=self.slot,
            status=status,
            decision=decision,
            incumbent_id=incumbent.id,
            promoted_version_id=promoted,
            candidate_version_text=outcome.text if outcome else None,
            incumbent_score=outcome.incumbent if outcome else None,
            candidate_score=outcome.candidate if outcome else None,
            p_value=float(p) if isinstance(p, int | float) else None,
            record=self.log.record,
        )

    def insufficient(self, incumbent: PromptVersion, reason: str, **stats: Any) -> RoundResult:
        d = GateDecision(kind="insufficient_data", stats=stats, reasons=(reason,))
        return self.finish("insufficient_data", d, incumbent)

    def screen_reasons(self) -> list[str]:
        """Why candidates fell out, one line per distinct (status, reason), at most six."""
        lines = {
            f"candidate {b.status}: {b.reason}" if b.reason else f"candidate {b.status}" for b in self.search.screened
        }
        return sorted(lines)[:6]


def run_round(
    store: Store,
    slot: str,
    *,
    env: ReplayEnvironment,
    editor: Editor,
    config: OptimizeConfig | None = None,
    seed: int = 0,
    clock: Callable[[], datetime] = utcnow,
    events: Callable[[RoundEvent], None] | None = None,
    blamer: Blamer | None = None,
    likelihood: SpanLikelihood | None = None,
    meter: Meter | None = None,
    dry_run: bool = False,
    run_id: str | None = None,
    actor: str = "optimizer",
) -> RoundResult:
    """Run one optimization round for ``slot`` and record it; see the module docstring.

    Raises ``NotFoundError`` for an unknown slot (before anything is written); every other outcome —
    empty window, no valid candidate, a rejected gate, an exhausted budget — is a ``RoundResult``.
    ``meter`` (a ``diffprompt.llm.CallMeter``) is snapshotted into the record when given. For other
    strategies than the config's defaults, build ``RoundDeps`` and call ``run_with``.
    """
    deps = RoundDeps(
        store=store,
        env=env,
        editor=editor,
        blamer=blamer,
        likelihood=likelihood,
        clock=clock,
        events=events or no_events,
        meter=meter,
    )
    cfg = config or OptimizeConfig()
    return run_with(
        deps, RoundSpec(slot=slot, config=cfg, seed=seed, dry_run=dry_run, run_id=run_id or "", actor=actor)
    )


def run_with(deps: RoundDeps, spec: RoundSpec) -> RoundResult:
    """``run_round`` with explicit dependencies (custom span selection, acceptance, screening, finalists)."""
    return _Round(deps, spec).run()
