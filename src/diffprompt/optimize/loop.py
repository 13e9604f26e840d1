"""One optimization round: collect → attribute → mask → denoise → screen → replay → gate → promote.

``run_round`` orchestrates the seams (store, replay environment, editor, blamer) and nothing else:
no printing (events go to a callback), no model loading. Everything it decides is written to the run
record with ``store.save_run`` — first as ``running`` (so a run that dies can be found and marked
abandoned), then with its final status. The active prompt only moves in the last step, through the
store's atomic ``promote``/``set_canary``, and only if the incumbent is still active.

Statuses: ``promoted``, ``canary``, ``rejected``, ``insufficient_data``, ``dry_run`` (a promotion
that was not applied), ``budget_exhausted`` (a budget stopped the round; nothing promoted).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from diffprompt.errors import BudgetExceeded
from diffprompt.optimize import history
from diffprompt.optimize.attribution import Blamer, SpanLikelihood, SpanScore, attribute, split_window
from diffprompt.optimize.budget import BudgetTracker
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.editors import EditContext
from diffprompt.optimize.gate import decide
from diffprompt.optimize.prepare import (
    ScreenedCandidate,
    augment_traces,
    choose_spans,
    feedback_history,
    insert_placeholders,
    span_changes,
    split_cases,
    validate_candidate,
)
from diffprompt.optimize.replay import Case, ReplayEnvironment, run_paired
from diffprompt.optimize.result import RoundEvent, RoundResult
from diffprompt.spans import mask_text, render_diff, segment
from diffprompt.store.base import Store
from diffprompt.types import GateDecision, PromptVersion, TraceWithFeedback, new_id, utcnow


def _nothing(_: RoundEvent) -> None:
    return None


class _Round:
    """State of one round; methods are its stages (kept small and in pipeline order)."""

    def __init__(
        self,
        store: Store,
        slot: str,
        env: ReplayEnvironment,
        editor: Any,
        config: OptimizeConfig,
        seed: int,
        clock: Callable[[], datetime],
        events: Callable[[RoundEvent], None],
        blamer: Blamer | None,
        likelihood: SpanLikelihood | None,
        dry_run: bool,
        meter: Any,
        run_id: str | None,
        actor: str,
    ) -> None:
        self.store, self.slot, self.env, self.editor, self.cfg = store, slot, env, editor, config
        self.seed, self.clock, self.emit = seed, clock, events
        self.blamer, self.likelihood, self.dry_run, self.meter, self.actor = (
            blamer,
            likelihood,
            dry_run,
            meter,
            actor,
        )
        self.rng = random.Random(seed)
        self.run_id = run_id or new_id("run_")
        self.tracker = BudgetTracker(config.budget)
        self.timings: dict[str, float] = {}
        self.record: dict[str, Any] = {}
        self.screened: list[ScreenedCandidate] = []

    # -- bookkeeping ----------------------------------------------------------------------------
    def _time(self, stage: str, t0: float) -> None:
        self.timings[stage] = round(self.timings.get(stage, 0.0) + time.perf_counter() - t0, 4)

    def _save(self, status: str) -> None:
        cost = self.tracker.snapshot()
        if self.meter is not None and hasattr(self.meter, "snapshot"):
            snap = self.meter.snapshot()
            cost["meter"] = {k: getattr(snap, k) for k in ("calls", "input_tokens", "output_tokens", "cost_usd")}
        self.record.update(status=status, updated_at=self.clock().isoformat(), timings=dict(self.timings), cost=cost)
        self.store.save_run(self.run_id, self.slot, self.record, status=status)

    def _finish(
        self,
        status: str,
        decision: GateDecision,
        incumbent: PromptVersion,
        *,
        promoted: str | None = None,
        cand_text: str | None = None,
        inc_score: float | None = None,
        cand_score: float | None = None,
    ) -> RoundResult:
        self.record["decision"] = {
            "kind": decision.kind,
            "stats": dict(decision.stats),
            "reasons": list(decision.reasons),
        }
        self.record["promoted_version"] = promoted
        self._remember_rejected(gate_rejected=status == "rejected")
        self.record["ended_at"] = self.clock().isoformat()
        self._save(status)
        self.emit(RoundEvent(kind="done", data={"status": status, "decision": decision.kind}))
        p = decision.stats.get("p_value")
        return RoundResult(
            run_id=self.run_id,
            slot=self.slot,
            status=status,
            decision=decision,
            incumbent_id=incumbent.id,
            promoted_version_id=promoted,
            candidate_version_text=cand_text,
            incumbent_score=inc_score,
            candidate_score=cand_score,
            p_value=float(p) if isinstance(p, int | float) else None,
            record=dict(self.record),
        )

    def _insufficient(self, incumbent: PromptVersion, reason: str, **stats: Any) -> RoundResult:
        return self._finish(
            "insufficient_data", GateDecision(kind="insufficient_data", stats=stats, reasons=(reason,)), incumbent
        )

    # -- stages ---------------------------------------------------------------------------------
    def collect(self) -> tuple[PromptVersion, list[TraceWithFeedback], tuple[str, ...]]:
        state = self.store.slot_state(self.slot)  # NotFoundError for an unknown slot
        incumbent = self.store.get_version(state.active_version_id)
        since = self.clock() - timedelta(hours=self.cfg.window_since_hours) if self.cfg.window_since_hours else None
        window = self.store.window(self.slot, since=since, limit=self.cfg.window_limit)
        return incumbent, window, tuple(state.protected_span_ids)

    def run(self) -> RoundResult:
        t0 = time.perf_counter()
        incumbent, window, protected = self.collect()
        self._time("collect", t0)
        fails, wins = split_window(window, self.cfg.attribution.fail_below)
        editor_name = str(getattr(self.editor, "name", type(self.editor).__name__))
        self.record.update(
            run_id=self.run_id,
            slot=self.slot,
            started_at=self.clock().isoformat(),
            seed=self.seed,
            config=self.cfg.as_dict(),
            config_hash=self.cfg.hash,
            editor=editor_name,
            env=str(getattr(self.env, "name", type(self.env).__name__)),
            dry_run=self.dry_run,
            actor=self.actor,
            incumbent={"id": incumbent.id, "text": incumbent.text},
            window={
                "key": history.window_key(self.slot, incumbent.id, window),
                "n": len(window),
                "failures": len(fails),
                "successes": len(wins),
                "trace_ids": [t.trace.id for t in window][:500],
            },
        )
        self._save("running")
        self.emit(RoundEvent(kind="window", data=dict(self.record["window"])))
        if not window:
            return self._insufficient(
                incumbent, f"the window of slot '{self.slot}' has no traces; record traffic first", n=0
            )
        if len(fails) < max(1, self.cfg.min_failures):
            return self._insufficient(
                incumbent,
                f"{len(fails)} failing traces in the window (need {max(1, self.cfg.min_failures)}); nothing to fix",
                n=len(window),
            )
        try:
            return self._optimize(incumbent, window, fails, protected)
        except BudgetExceeded as exc:
            self.record["stopped"] = {"budget": exc.budget, "limit": exc.limit, "used": exc.used}
            d = GateDecision(kind="reject", stats={"budget": exc.budget}, reasons=(f"stopped: {exc}",))
            return self._finish("budget_exhausted", d, incumbent)

    def _optimize(
        self,
        incumbent: PromptVersion,
        window: list[TraceWithFeedback],
        fails: list[TraceWithFeedback],
        protected: tuple[str, ...],
    ) -> RoundResult:
        cfg = self.cfg
        self.tracker.check()
        own = [t for t in window if t.trace.version_id == incumbent.id] or window
        t0 = time.perf_counter()
        ranking = attribute(
            incumbent,
            own,
            blamer=self.blamer,
            likelihood=self.likelihood,
            protected=protected,
            config=cfg.attribution,
        )
        self._time("attribute", t0)
        self.record["attribution"] = [s.as_dict() for s in ranking[:20]]
        self.emit(RoundEvent(kind="attribution", data={"ranking": self.record["attribution"][:10]}))
        screen, holdout = split_cases(self.env.cases(window), window, cfg, self.rng)
        self.record["cases"] = {"screen": [c.id for c in screen], "holdout": [c.id for c in holdout]}
        if len(holdout) * cfg.trials < cfg.gate.min_cases:
            return self._insufficient(
                incumbent,
                f"only {len(holdout)} held-out replay cases (x{cfg.trials} trials); "
                f"the gate needs {cfg.gate.min_cases}",
                n=len(holdout) * cfg.trials,
            )
        if not ranking and not getattr(self.editor, "whole_prompt", False):
            return self._insufficient(
                incumbent, "attribution found no editable span that failures point at", n=len(fails)
            )
        finalists, screened = self._edit_and_screen(incumbent, ranking, fails, protected, screen)
        if not finalists:
            d = GateDecision(
                kind="reject",
                stats={"candidates": len(screened)},
                reasons=("no valid candidate survived screening", *self._screen_reasons(screened)),
            )
            return self._finish("rejected", d, incumbent)
        return self._gate_and_promote(incumbent, finalists, screened, holdout)

    def _edit_and_screen(
        self,
        incumbent: PromptVersion,
        ranking: list[SpanScore],
        fails: list[TraceWithFeedback],
        protected: tuple[str, ...],
        screen: list[Case],
    ) -> tuple[list[ScreenedCandidate], list[ScreenedCandidate]]:
        cfg = self.cfg
        rejected = history.rejected_edits(self.store, self.slot)
        best, worst = history.best_worst(self.store, self.slot)
        fb_history = feedback_history(fails, ranking, cfg.history_k)
        hints = tuple(dict.fromkeys(e["hint"] for s in ranking for e in s.evidence if e.get("hint")))
        prot_texts = tuple(s.text for s in incumbent.spans if s.id in set(protected))
        parent, parent_score = incumbent, None
        edited: set[str] = set()
        screened: list[ScreenedCandidate] = []
        accepted: list[ScreenedCandidate] = []
        self.record["iterations"] = []
        for it in range(cfg.iterations):
            budget = max(1, round(cfg.edit_budget * cfg.edit_decay**it))
            chosen = choose_spans(ranking, parent, budget, cfg.span_dropout, self.rng, exclude=edited)
            if not chosen and not getattr(self.editor, "whole_prompt", False):
                break
            edited.update(s.span_id for s in chosen)
            base, mask_ids, placeholders = insert_placeholders(parent, chosen)
            if getattr(self.editor, "whole_prompt", False):
                base, mask_ids, placeholders = parent, [s.span_id for s in chosen], {}
            ctx = EditContext(
                feedback=fb_history,
                hints=hints,
                rejected=rejected,
                best=best,
                worst=worst,
                insert_span_ids=tuple(placeholders),
                protected_texts=prot_texts,
                max_chars=int(len(incumbent.text) * (1 + (cfg.gate.max_length_growth or 1.0))),
            )
            traces = augment_traces(fails[: cfg.traces_k], ranking)
            masked = mask_text(base.text, base.spans, mask_ids)
            self.emit(RoundEvent(kind="masked", data={"iteration": it, "span_ids": mask_ids, "masked_prompt": masked}))
            t0 = time.perf_counter()
            self.tracker.check()
            seed = self.seed * 1000 + it * 100
            if getattr(self.editor, "takes_context", False):
                cands = self.editor.propose(base, mask_ids, traces, cfg.n_candidates, seed, context=ctx)
            else:
                cands = self.editor.propose(base, mask_ids, traces, cfg.n_candidates, seed)
            self._time("edit", t0)
            batch: list[ScreenedCandidate] = []
            for c in cands:
                batch.append(
                    validate_candidate(
                        c,
                        incumbent=incumbent,
                        parent=parent,
                        base=base,
                        placeholders=placeholders,
                        protected=protected,
                        rejected=rejected,
                        config=cfg,
                        seen=[*screened, *batch],
                    )
                )
            self.emit(
                RoundEvent(
                    kind="candidates",
                    data={
                        "iteration": it,
                        "n": len(batch),
                        "valid": sum(b.valid for b in batch),
                        "candidates": [b.as_record(incumbent) for b in batch],
                    },
                )
            )
            valid = [b for b in batch if b.valid]
            if valid:
                parent_score, batch = self._screen(parent, parent_score, valid, batch, screen, it)
            screened.extend(batch)
            self.record["iterations"].append(
                {
                    "iteration": it,
                    "edit_budget": budget,
                    "masked_span_ids": mask_ids,
                    "inserted": list(placeholders.values()),
                    "masked_prompt": masked,
                }
            )
            acc = sorted((b for b in batch if b.accepted), key=lambda b: -(b.screen_score or 0.0))
            if acc:
                accepted.extend(acc)
                top = acc[0]
                parent = _as_version(incumbent, top.candidate.text)
                parent_score = top.screen_score
        self.record["candidates"] = [b.as_record(incumbent) for b in screened]
        self.screened = screened
        uniq: dict[str, ScreenedCandidate] = {}
        for b in sorted(accepted, key=lambda b: -(b.screen_score or 0.0)):
            uniq.setdefault(b.candidate.text, b)
        return list(uniq.values())[: cfg.finalists], screened

    def _screen(
        self,
        parent: PromptVersion,
        parent_score: float | None,
        valid: list[ScreenedCandidate],
        batch: list[ScreenedCandidate],
        screen: list[Case],
        it: int,
    ) -> tuple[float | None, list[ScreenedCandidate]]:
        cfg = self.cfg
        t0 = time.perf_counter()
        prompts = {f"cand{i}": b.candidate.text for i, b in enumerate(valid)}
        prompts["parent"] = parent.text
        res = run_paired(
            self.env,
            screen,
            prompts,
            trials=1,
            seed=self.seed + 17 + it,
            concurrency=cfg.replay_concurrency,
            tracker=self.tracker,
        )
        self._time("screen", t0)
        pscore = res.mean("parent")
        temp = cfg.anneal_t0 * cfg.anneal_decay**it
        scored: dict[int, ScreenedCandidate] = {}
        for i, b in enumerate(valid):
            growth = max(0.0, len(b.candidate.text) / max(1, len(parent.text)) - 1.0)
            score = res.mean(f"cand{i}") - cfg.length_penalty * growth
            delta = score - pscore
            ok = delta > 0 or (temp > 0 and delta > -1 and self.rng.random() < math.exp(delta / temp) and delta != 0)
            scored[id(b)] = replace(b, screen_score=score, accepted=ok, status="screened" if ok else "screen_lost")
        self.emit(
            RoundEvent(
                kind="screen",
                data={
                    "iteration": it,
                    "parent": pscore,
                    "candidates": [s.screen_score for s in scored.values()],
                },
            )
        )
        self.record.setdefault("screens", []).append(res.as_record())
        return pscore, [scored.get(id(b), b) for b in batch]

    def _gate_and_promote(
        self,
        incumbent: PromptVersion,
        finalists: list[ScreenedCandidate],
        screened: list[ScreenedCandidate],
        holdout: list[Case],
    ) -> RoundResult:
        cfg = self.cfg
        t0 = time.perf_counter()
        prompts = {"incumbent": incumbent.text} | {f"final{i}": f.candidate.text for i, f in enumerate(finalists)}
        res = run_paired(
            self.env,
            holdout,
            prompts,
            trials=cfg.trials,
            seed=self.seed + 7919,
            concurrency=cfg.replay_concurrency,
            tracker=self.tracker,
        )
        self._time("replay", t0)
        self.record["replay"] = res.as_record()
        self.emit(
            RoundEvent(
                kind="replay", data={"means": {k: res.mean(k) for k in prompts}, "paired": self.record["replay"]}
            )
        )
        gate_cfg = replace(cfg.gate, alpha=cfg.gate.alpha / len(finalists))  # Bonferroni over finalists
        best: tuple[int, GateDecision] | None = None
        decisions = []
        for i, f in enumerate(finalists):
            d = decide(
                res.rewards("incumbent"),
                res.rewards(f"final{i}"),
                gate_cfg,
                slices=res.slices(),
                lengths=(len(incumbent.text), len(f.candidate.text)),
                costs=(res.mean_cost("incumbent"), res.mean_cost(f"final{i}")),
            )
            decisions.append(d)
            if d.promoted and (best is None or res.mean(f"final{i}") > res.mean(f"final{best[0]}")):
                best = (i, d)
        i, d = best if best is not None else (0, decisions[0])
        win = finalists[i]
        inc_score, cand_score = res.mean("incumbent"), res.mean(f"final{i}")
        self.record["scores"] = {incumbent.id: inc_score}
        self.record["finalist"] = {
            "index": i,
            "text": win.candidate.text,
            "diff": render_diff(incumbent.spans, segment(win.candidate.text)),
            "changed_span_ids": list(win.candidate.changed_span_ids),
            "span_changes": span_changes(incumbent.spans, segment(win.candidate.text)),
        }
        self.emit(
            RoundEvent(kind="decision", data={"kind": d.kind, "reasons": list(d.reasons), "stats": dict(d.stats)})
        )
        if not d.promoted:
            return self._finish(
                d.kind if d.kind == "insufficient_data" else "rejected",
                d,
                incumbent,
                cand_text=win.candidate.text,
                inc_score=inc_score,
                cand_score=cand_score,
            )
        if self.dry_run:
            return self._finish(
                "dry_run",
                d,
                incumbent,
                cand_text=win.candidate.text,
                inc_score=inc_score,
                cand_score=cand_score,
            )
        return self._promote(incumbent, win, d, inc_score, cand_score)

    def _promote(
        self,
        incumbent: PromptVersion,
        win: ScreenedCandidate,
        d: GateDecision,
        inc_score: float,
        cand_score: float,
    ) -> RoundResult:
        state = self.store.slot_state(self.slot)
        if state.active_version_id != incumbent.id:
            d = GateDecision(
                kind="reject",
                stats=dict(d.stats),
                reasons=(
                    f"the active version changed during the run ({incumbent.id} -> "
                    f"{state.active_version_id}); not promoting over it",
                ),
            )
            return self._finish(
                "rejected",
                d,
                incumbent,
                cand_text=win.candidate.text,
                inc_score=inc_score,
                cand_score=cand_score,
            )
        note = f"gain {d.stats.get('mean_gain', 0):+.3f}, p={d.stats.get('p_value', 1):.4g}"
        v = self.store.add_version(
            self.slot,
            win.candidate.text,
            parent_id=incumbent.id,
            origin=f"optimizer:{self.run_id}",
            note=note,
        )
        self.record["scores"][v.id] = cand_score
        reason = f"optimizer run {self.run_id}: {d.reasons[0]}"
        if self.cfg.promote_mode == "canary":
            self.store.set_canary(self.slot, v.id, self.cfg.canary_share, actor=self.actor, reason=reason)
            status = "canary"
        else:
            self.store.promote(self.slot, v.id, actor=self.actor, reason=reason)
            status = "promoted"
        return self._finish(
            status,
            d,
            incumbent,
            promoted=v.id,
            cand_text=win.candidate.text,
            inc_score=inc_score,
            cand_score=cand_score,
        )

    def _remember_rejected(self, gate_rejected: bool) -> None:
        """Per-span memory of texts that lost in screening, or at the gate (not in dry runs/budget stops)."""
        mem: dict[str, list[str]] = {}
        for b in self.screened:
            lost = b.status == "screen_lost" or (gate_rejected and b.status == "screened")
            for sid, text in b.new_texts.items() if lost else ():
                bucket = mem.setdefault(sid, [])
                if text not in bucket:
                    bucket.append(text)
        self.record["rejected_edits"] = mem

    @staticmethod
    def _screen_reasons(screened: Sequence[ScreenedCandidate]) -> list[str]:
        return sorted({f"candidate {b.status}: {b.reason}" if b.reason else f"candidate {b.status}" for b in screened})[
            :6
        ]


def _as_version(incumbent: PromptVersion, text: str) -> PromptVersion:
    """An unsaved version object for an intermediate parent (same id lineage as the incumbent)."""
    return replace(incumbent, text=text, spans=segment(text))


def run_round(
    store: Store,
    slot: str,
    *,
    env: ReplayEnvironment,
    editor: Any,
    config: OptimizeConfig | None = None,
    seed: int = 0,
    clock: Callable[[], datetime] = utcnow,
    events: Callable[[RoundEvent], None] | None = None,
    blamer: Blamer | None = None,
    likelihood: SpanLikelihood | None = None,
    meter: Any = None,
    dry_run: bool = False,
    run_id: str | None = None,
    actor: str = "optimizer",
) -> RoundResult:
    """Run one optimization round for ``slot`` and record it; see the module docstring.

    Raises ``NotFoundError`` for an unknown slot (before anything is written); every other outcome —
    empty window, no valid candidate, a rejected gate, an exhausted budget — is a ``RoundResult``.
    ``meter`` (a ``diffprompt.llm.CallMeter``) is snapshotted into the record when given.
    """
    r = _Round(
        store,
        slot,
        env,
        editor,
        config or OptimizeConfig(),
        seed,
        clock,
        events or _nothing,
        blamer,
        likelihood,
        dry_run,
        meter,
        run_id,
        actor,
    )
    return r.run()
