"""The round's small decisions as strategy objects: one Protocol and a few implementations each.

* ``SpanSelector`` — which ranked spans to mask this iteration (``TopSpans``: DLPO span dropout;
  ``WeightedSpans``: sampled in proportion to blame);
* ``Acceptance`` — whether a screened candidate replaces the parent (``Greedy``; ``Annealed``:
  DLPO/TSA-style simulated annealing on the screening score);
* ``Screener`` — scores candidates against their parent before the gate (``ReplayScreener``: a
  paired replay minibatch with a length penalty);
* ``FinalistChooser`` — which accepted candidates go to the held-out gate (``BestUnique``).

Randomness is injected: every method that draws takes the round's ``random.Random``, so one seed
fixes the whole round. ``strategies_for(config)`` gives the defaults the round uses.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from diffprompt.optimize.attribution import SpanScore
from diffprompt.optimize.budget import BudgetTracker
from diffprompt.optimize.replay import Case, PairedReplay, ReplayEnvironment, run_paired
from diffprompt.optimize.validate import ScreenedCandidate
from diffprompt.types import PromptVersion


# ------------------------------------------------------------------------------------ span selection
class SpanSelector(Protocol):
    """Picks at most ``budget`` spans of ``ranking`` that are still in ``parent`` and not in ``exclude``."""

    def select(
        self,
        ranking: Sequence[SpanScore],
        parent: PromptVersion,
        budget: int,
        rng: random.Random,
        *,
        exclude: frozenset[str] = frozenset(),
    ) -> list[SpanScore]: ...


def _pool(ranking: Sequence[SpanScore], parent: PromptVersion, exclude: frozenset[str]) -> list[SpanScore]:
    present = {s.id for s in parent.spans}
    return [s for s in ranking if s.span_id in present and s.span_id not in exclude]


@dataclass(frozen=True, kw_only=True, slots=True)
class TopSpans:
    """The top ranked spans; each span but the first is skipped with probability ``dropout`` (DLPO)."""

    dropout: float = 0.0

    def select(
        self,
        ranking: Sequence[SpanScore],
        parent: PromptVersion,
        budget: int,
        rng: random.Random,
        *,
        exclude: frozenset[str] = frozenset(),
    ) -> list[SpanScore]:
        out: list[SpanScore] = []
        for s in _pool(ranking, parent, exclude):
            if len(out) >= budget:
                break
            if out and self.dropout > 0 and rng.random() < self.dropout:
                continue
            out.append(s)
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class WeightedSpans:
    """``budget`` spans drawn without replacement with probability proportional to their score."""

    def select(
        self,
        ranking: Sequence[SpanScore],
        parent: PromptVersion,
        budget: int,
        rng: random.Random,
        *,
        exclude: frozenset[str] = frozenset(),
    ) -> list[SpanScore]:
        pool = [s for s in _pool(ranking, parent, exclude) if s.score > 0]
        out: list[SpanScore] = []
        while pool and len(out) < budget:
            r = rng.random() * sum(s.score for s in pool)
            acc = 0.0
            for i, s in enumerate(pool):
                acc += s.score
                if r < acc or i == len(pool) - 1:
                    out.append(pool.pop(i))
                    break
        order = {s.span_id: k for k, s in enumerate(ranking)}
        return sorted(out, key=lambda s: order[s.span_id])


# ---------------------------------------------------------------------------------------- acceptance
class Acceptance(Protocol):
    """Whether a candidate whose screening score differs from its parent's by ``delta`` is accepted."""

    def accept(self, delta: float, iteration: int, rng: random.Random) -> bool: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class Greedy:
    """Accept strict improvements only (draws nothing)."""

    def accept(self, delta: float, iteration: int, rng: random.Random) -> bool:
        return delta > 0


@dataclass(frozen=True, kw_only=True, slots=True)
class Annealed:
    """Accept improvements; accept a loss with probability ``exp(delta / T)``, ``T = t0 * decay**iteration``.

    A tie (``delta == 0``) is never accepted: it would spend a gate replay on a prompt that did not
    screen better. With ``t0 == 0`` this is ``Greedy``.
    """

    t0: float = 0.05
    decay: float = 0.5

    def accept(self, delta: float, iteration: int, rng: random.Random) -> bool:
        if delta > 0:
            return True
        temp = self.t0 * self.decay**iteration
        return temp > 0 and delta > -1 and rng.random() < math.exp(delta / temp) and delta != 0


# ----------------------------------------------------------------------------------------- screening
@dataclass(frozen=True, kw_only=True, slots=True)
class ScreenScores:
    """Screening outcome: the parent's score, one score per candidate (same order) and the replay."""

    parent: float
    candidates: tuple[float, ...]
    replay: PairedReplay | None = None


class Screener(Protocol):
    """Scores candidate texts against their parent on the screening cases."""

    def score(
        self, cases: Sequence[Case], parent: str, candidates: Sequence[str], *, iteration: int, tracker: BudgetTracker
    ) -> ScreenScores: ...


def candidate_label(i: int, n: int) -> str:
    """The user-facing name of the ``i``-th of ``n`` candidates ("candidate", or "candidate 2")."""
    return "candidate" if n == 1 else f"candidate {i + 1}"


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplayScreener:
    """A paired replay minibatch (one trial); score = mean reward - ``length_penalty`` * growth."""

    env: ReplayEnvironment
    seed: int
    concurrency: int = 4
    length_penalty: float = 0.1

    def score(
        self, cases: Sequence[Case], parent: str, candidates: Sequence[str], *, iteration: int, tracker: BudgetTracker
    ) -> ScreenScores:
        labels = [candidate_label(i, len(candidates)) for i in range(len(candidates))]
        prompts = dict(zip(labels, candidates, strict=True)) | {"parent": parent}
        res = run_paired(
            self.env,
            cases,
            prompts,
            trials=1,
            seed=self.seed + 17 + iteration,
            concurrency=self.concurrency,
            tracker=tracker,
        )
        scores = []
        for label, text in zip(labels, candidates, strict=True):
            growth = max(0.0, len(text) / max(1, len(parent)) - 1.0)
            scores.append(res.mean(label) - self.length_penalty * growth)
        return ScreenScores(parent=res.mean("parent"), candidates=tuple(scores), replay=res)


# ---------------------------------------------------------------------------------- finalist choice
class FinalistChooser(Protocol):
    """Picks at most ``k`` of the accepted candidates for the held-out gate."""

    def choose(self, accepted: Sequence[ScreenedCandidate], k: int) -> list[ScreenedCandidate]: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class BestUnique:
    """The ``k`` best screening scores, one per distinct text (earlier wins a tie)."""

    def choose(self, accepted: Sequence[ScreenedCandidate], k: int) -> list[ScreenedCandidate]:
        uniq: dict[str, ScreenedCandidate] = {}
        for b in sorted(accepted, key=lambda b: -(b.screen_score or 0.0)):
            uniq.setdefault(b.candidate.text, b)
        return list(uniq.values())[:k]
