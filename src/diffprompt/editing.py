"""The editor seam: one typed request in, candidate prompts out. Importable without torch.

Every editor — the DLM editor (``diffprompt.dlm.editor``), the language-model baselines
(``optimize.editors``: ``ARInfillEditor``, ``RewriteEditor``), the labelled ceilings
(``optimize.oracle``) and ``FakeEditor`` here — implements ``Editor``: a ``name``, declared
``capabilities`` and one method, ``propose(request) -> list[Candidate]``. The round builds one frozen
``EditRequest`` per iteration and never probes an editor for anything the request or its
capabilities do not say.

Contract (checked for every editor by ``tests/optimize/test_editor_conformance.py``):

* the same request gives the same candidates (seeded: ``request.seed``);
* at most ``request.n`` candidates, each with ``parent_id == request.prompt.id`` and
  ``editor == name``;
* a candidate changes only the spans in ``request.span_ids`` (insertion slots included), unless the
  editor declares ``whole_prompt``, in which case it may rewrite anything but protected texts;
* an editor may return fewer candidates (duplicates, no-op rewrites, rejected texts dropped) and
  never raises for a model that returned garbage: that is an unchanged or missing candidate, which
  the round counts.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from diffprompt.errors import ValidationError
from diffprompt.spans import replace_spans, split_marker
from diffprompt.types import Candidate, PromptVersion, TraceWithFeedback


@dataclass(frozen=True, kw_only=True, slots=True)
class EditorCapabilities:
    """What an editor does with a request, declared once on its class.

    ``whole_prompt``: it rewrites the whole prompt (TextGrad style); the round hands it the parent
    without masks or insertion slots. ``reads_traces``: it conditions on ``request.traces`` (the run
    record then lists them as read by the editor). ``oracle``: it writes ``request.hints`` verbatim,
    so it is only an upper bound for benchmarks, never a baseline.
    """

    whole_prompt: bool = False
    reads_traces: bool = True
    oracle: bool = False


@dataclass(frozen=True, kw_only=True, slots=True)
class EditRequest:
    """Everything an editor may use for one batch of candidates.

    ``prompt`` is the version to edit: the incumbent, or the round's current parent, with
    insertion-slot copies already in place. ``span_ids`` are the spans to rewrite (in prompt order);
    ``insert_span_ids`` are those of them that are insertion slots (a new span to write next to its
    anchor). ``traces`` are failing traces with all their feedback (rewards, ratings, user comments,
    judge critiques). ``feedback`` is the round's recent feedback history (newest first), ``hints`` the
    texts the blamer says the prompt should state (exact only under an oracle judge), ``rejected`` the
    per-span memory of texts that lost before, ``best``/``worst`` earlier versions with their replayed
    score, ``protected_texts`` texts that must survive a whole-prompt rewrite, ``max_chars`` a length cap.
    """

    prompt: PromptVersion
    span_ids: tuple[str, ...] = ()
    insert_span_ids: tuple[str, ...] = ()
    traces: tuple[TraceWithFeedback, ...] = ()
    feedback: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    rejected: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    best: tuple[str, float] | None = None
    worst: tuple[str, float] | None = None
    protected_texts: tuple[str, ...] = ()
    max_chars: int | None = None
    n: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValidationError(f"an edit request needs n >= 1 candidates, got {self.n}")
        known = {s.id for s in self.prompt.spans}
        unknown = [i for i in self.span_ids if i not in known]
        if unknown:
            raise ValidationError(f"edit request names spans {unknown} that the prompt does not have")
        stray = [i for i in self.insert_span_ids if i not in self.span_ids]
        if stray:
            raise ValidationError(f"insertion slots {stray} must also be among the request's span_ids")

    def rejected_for(self, span_id: str) -> tuple[str, ...]:
        """Texts already rejected for ``span_id`` (empty when none)."""
        return tuple(self.rejected.get(span_id, ()))


class Editor(Protocol):
    """The editor seam. Implementations declare ``name`` and ``capabilities`` on the class."""

    @property
    def name(self) -> str: ...

    @property
    def capabilities(self) -> EditorCapabilities: ...

    def propose(self, request: EditRequest) -> list[Candidate]:
        """Up to ``request.n`` distinct candidates for ``request.prompt``; see the module contract."""
        ...


@dataclass(kw_only=True)
class FakeEditor:
    """Deterministic ``Editor`` for tests and examples: fills each span with a text picked by seed.

    Each masked span keeps its list marker and gets one of ``texts`` (chosen with
    ``random.Random(seed * 1_000_003 + i)`` for candidate ``i``). ``calls`` records
    ``(span_ids, n, seed)`` of every request.
    """

    texts: tuple[str, ...] = ("Always confirm the action details with the user and obtain an explicit yes.",)
    calls: list[tuple[tuple[str, ...], int, int]] = field(default_factory=list)
    name = "fake"
    capabilities = EditorCapabilities(reads_traces=False)

    def propose(self, request: EditRequest) -> list[Candidate]:
        prompt, span_ids = request.prompt, request.span_ids
        self.calls.append((span_ids, request.n, request.seed))
        out: list[Candidate] = []
        seen = {prompt.text}
        by_id = {s.id: s for s in prompt.spans}
        for i in range(request.n):
            rng = random.Random(request.seed * 1_000_003 + i)
            repl = {sid: split_marker(by_id[sid].text)[0] + rng.choice(self.texts) for sid in span_ids}
            text = replace_spans(prompt.text, prompt.spans, repl)
            if text in seen:
                continue
            seen.add(text)
            out.append(
                Candidate(
                    text=text,
                    parent_id=prompt.id,
                    masked_span_ids=span_ids,
                    editor=self.name,
                    seed=request.seed,
                    config_hash="fake",
                    changed_span_ids=tuple(sid for sid in span_ids if repl[sid] != by_id[sid].text),
                )
            )
        return out


def only_masked_changed(request: EditRequest, text: str) -> bool:
    """Whether ``text`` equals ``request.prompt`` outside the requested spans (whitespace-insensitive).

    The check behind the seam's "changes only the masked spans" contract: the prompt's text between
    masked spans must appear, in order, around whatever the editor wrote in their place.
    """
    prompt = request.prompt
    chosen = sorted((s for s in prompt.spans if s.id in set(request.span_ids)), key=lambda s: s.start)
    pieces, pos = [], 0
    for s in chosen:
        pieces.append(prompt.text[pos : s.start])
        pos = s.end
    pieces.append(prompt.text[pos:])

    def fixed(piece: str) -> str:
        return r"\s*".join(re.escape(w) for w in piece.split())

    pattern = r"\s*" + r"(?:.*?)".join(fixed(p) for p in pieces) + r"\s*"
    return re.fullmatch(pattern, text, re.DOTALL) is not None
