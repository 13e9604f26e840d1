"""The round's edit search: mask → propose → validate → screen → accept, for a few iterations.

``EditSearch.run`` returns the finalists for the gate. Each iteration masks spans of the current
parent (the incumbent, then the best accepted candidate), asks the editor for candidates with one
``EditRequest``, validates them (``optimize.validate``), screens the valid ones against the parent
and lets the acceptance rule decide which replace it. Every candidate, valid or not, goes into the
run record with its status and reason.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from diffprompt.editing import EditRequest
from diffprompt.optimize import history
from diffprompt.optimize.attribution import SpanScore
from diffprompt.optimize.config import OptimizeConfig
from diffprompt.optimize.prepare import CaseSplit, augment_traces, feedback_history, insert_placeholders
from diffprompt.optimize.record import IterationRecord, to_json
from diffprompt.optimize.replay import Case
from diffprompt.optimize.result import RoundEvent
from diffprompt.optimize.runlog import RoundDeps, RunLog
from diffprompt.optimize.strategies import Annealed, BestUnique, ReplayScreener, TopSpans
from diffprompt.optimize.validate import ScreenedCandidate, validate_candidate
from diffprompt.spans import mask_text, segment
from diffprompt.types import PromptVersion, TraceWithFeedback


@dataclass(frozen=True, kw_only=True, slots=True)
class EditStep:
    """One iteration's edit: the version to edit, the spans to mask, the insertion slots."""

    iteration: int
    budget: int
    base: PromptVersion
    mask_ids: tuple[str, ...]
    placeholders: dict[str, str]  # insertion slot id -> anchor span id

    @property
    def masked_prompt(self) -> str:
        return mask_text(self.base.text, self.base.spans, self.mask_ids)


class EditSearch:
    """The edit iterations of one round (strategies from ``deps``, defaults from the config)."""

    def __init__(self, deps: RoundDeps, config: OptimizeConfig, seed: int, rng: random.Random, log: RunLog) -> None:
        self.deps, self.cfg, self.seed, self.rng, self.log = deps, config, seed, rng, log
        self.editor, self.emit = deps.editor, deps.events
        self.whole_prompt = deps.editor.capabilities.whole_prompt
        self.selector = deps.selector or TopSpans(dropout=config.span_dropout)
        self.acceptance = deps.acceptance or Annealed(t0=config.anneal_t0, decay=config.anneal_decay)
        self.screener = deps.screener or ReplayScreener(
            env=deps.env, seed=seed, concurrency=config.replay_concurrency, length_penalty=config.length_penalty
        )
        self.finalists = deps.finalists or BestUnique()
        self.screened: list[ScreenedCandidate] = []

    def run(
        self,
        incumbent: PromptVersion,
        ranking: list[SpanScore],
        fails: list[TraceWithFeedback],
        protected: tuple[str, ...],
        split: CaseSplit,
    ) -> list[ScreenedCandidate]:
        """Iterate, then choose the finalists among the accepted candidates (possibly none)."""
        template = self.request_template(incumbent, ranking, fails, protected)
        if self.editor.capabilities.reads_traces:
            self.log.cases(split, editor_read=template.traces)
        parent, edited = incumbent, set[str]()
        accepted: list[ScreenedCandidate] = []
        iterations: list[IterationRecord] = []
        for it in range(self.cfg.iterations):
            step = self.mask(parent, ranking, it, frozenset(edited))
            if step is None:
                break
            edited.update(step.mask_ids)
            batch = self.propose(template, step, incumbent, parent, protected)
            if any(b.valid for b in batch):
                batch = self.screen(parent, batch, list(split.screen), it)
            self.screened.extend(batch)
            iterations.append(
                IterationRecord(
                    iteration=it,
                    edit_budget=step.budget,
                    masked_span_ids=step.mask_ids,
                    inserted=tuple(step.placeholders.values()),
                    masked_prompt=step.masked_prompt,
                )
            )
            acc = sorted((b for b in batch if b.accepted), key=lambda b: -(b.screen_score or 0.0))
            if acc:
                accepted.extend(acc)
                parent = replace(incumbent, text=acc[0].candidate.text, spans=segment(acc[0].candidate.text))
        self.log.update(iterations=tuple(iterations), candidates=tuple(b.as_record(incumbent) for b in self.screened))
        return self.finalists.choose(accepted, self.cfg.finalists)

    def request_template(
        self,
        incumbent: PromptVersion,
        ranking: list[SpanScore],
        fails: list[TraceWithFeedback],
        protected: tuple[str, ...],
    ) -> EditRequest:
        """The parts of every iteration's ``EditRequest`` that do not change within the round."""
        cfg, store, slot = self.cfg, self.deps.store, self.log.spec.slot
        best, worst = history.best_worst(store, slot)
        growth = cfg.gate.max_length_growth
        return EditRequest(
            prompt=incumbent,
            traces=tuple(augment_traces(fails[: cfg.traces_k], ranking)),
            feedback=feedback_history(fails, ranking, cfg.history_k),
            hints=tuple(dict.fromkeys(e["hint"] for s in ranking for e in s.evidence if e.get("hint"))),
            rejected=history.rejected_edits(store, slot),
            best=best,
            worst=worst,
            protected_texts=tuple(s.text for s in incumbent.spans if s.id in set(protected)),
            max_chars=int(len(incumbent.text) * (1 + (growth or 1.0))),
            n=cfg.n_candidates,
        )

    def mask(self, parent: PromptVersion, ranking: list[SpanScore], it: int, edited: frozenset[str]) -> EditStep | None:
        """Choose this iteration's spans and open insertion slots (none for whole-prompt editors)."""
        budget = max(1, round(self.cfg.edit_budget * self.cfg.edit_decay**it))
        chosen = self.selector.select(ranking, parent, budget, self.rng, exclude=edited)
        if not chosen and not self.whole_prompt:
            return None
        if self.whole_prompt:
            base, mask_ids, placeholders = parent, [c.span_id for c in chosen], dict[str, str]()
        else:
            base, mask_ids, placeholders = insert_placeholders(parent, chosen)
        step = EditStep(iteration=it, budget=budget, base=base, mask_ids=tuple(mask_ids), placeholders=placeholders)
        data = {"iteration": it, "span_ids": list(mask_ids), "masked_prompt": step.masked_prompt}
        self.emit(RoundEvent(kind="masked", data=data))
        return step

    def propose(
        self,
        template: EditRequest,
        step: EditStep,
        incumbent: PromptVersion,
        parent: PromptVersion,
        protected: tuple[str, ...],
    ) -> list[ScreenedCandidate]:
        """Ask the editor for candidates and validate each before any replay."""
        request = replace(
            template,
            prompt=step.base,
            span_ids=step.mask_ids,
            insert_span_ids=tuple(step.placeholders),
            seed=self.seed * 1000 + step.iteration * 100,
        )
        with self.log.timed("edit"):
            self.log.tracker.check()
            cands = self.editor.propose(request)
        batch: list[ScreenedCandidate] = []
        for c in cands[: request.n]:
            batch.append(
                validate_candidate(
                    c,
                    incumbent=incumbent,
                    parent=parent,
                    base=step.base,
                    placeholders=step.placeholders,
                    protected=protected,
                    rejected=request.rejected,
                    config=self.cfg,
                    seen=[*self.screened, *batch],
                    iteration=step.iteration,
                )
            )
        invalid: dict[str, int] = {}
        for b in batch:
            if not b.valid:
                invalid[b.status] = invalid.get(b.status, 0) + 1
        data = {
            "iteration": step.iteration,
            "n": len(batch),
            "valid": sum(b.valid for b in batch),
            "invalid": invalid,
            "candidates": to_json([b.as_record(incumbent) for b in batch]),
        }
        self.emit(RoundEvent(kind="candidates", data=data))
        return batch

    def screen(
        self, parent: PromptVersion, batch: list[ScreenedCandidate], cases: list[Case], it: int
    ) -> list[ScreenedCandidate]:
        """Score the valid candidates against their parent; the acceptance rule marks the keepers."""
        valid = [b for b in batch if b.valid]
        with self.log.timed("screen"):
            texts = [b.candidate.text for b in valid]
            scores = self.screener.score(cases, parent.text, texts, iteration=it, tracker=self.log.tracker)
        scored: dict[int, ScreenedCandidate] = {}
        for b, score in zip(valid, scores.candidates, strict=True):
            ok = self.acceptance.accept(score - scores.parent, it, self.rng)
            scored[id(b)] = replace(b, screen_score=score, accepted=ok, status="screened" if ok else "screen_lost")
        data = {"iteration": it, "parent": scores.parent, "candidates": list(scores.candidates)}
        self.emit(RoundEvent(kind="screen", data=data))
        if scores.replay is not None:
            self.log.add_screen(scores.replay)
        return [scored.get(id(b), b) for b in batch]
