"""Weak-span attribution: which spans of the incumbent prompt do the window's failures point at?

Three signals, each a small seam, combined into one ranked list with the evidence kept:

(a) **blame** — a ``Blamer`` reads one failing trace and the numbered spans and names responsible
    spans with a reason. ``JudgeBlamer`` asks any ``CompletionClient`` (an OpenAI-compatible judge)
    through the ``optimize_judge_blame.j2`` template; ``ExplainBlamer`` maps an offline explanation
    (e.g. the simulated target model's ``explain_failure``) to spans by text similarity.
(b) **feedback similarity** — TF-IDF cosine between the failing traces' feedback text and each span.
(c) **likelihood** — a ``SpanLikelihood`` (the DLM's span NELBO) under failing vs succeeding traces:
    a span that is much less likely given failures than given successes is suspicious.

A blame may say the responsible rule is **missing** (deleted from the prompt): it then points at the
closest editable span of the same section with ``insert=True``, and the round inserts a new span
after it instead of overwriting it. Protected spans are never returned; headings are not candidates.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from diffprompt.types import PromptVersion, Span, TraceWithFeedback

BlameKind = Literal["wrong", "missing"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Blame:
    """One blamed span from one failing trace."""

    span_id: str
    reason: str
    kind: BlameKind = "wrong"
    weight: float = 1.0
    trace_id: str = ""
    hint: str = ""  # text the span should state (e.g. the violated rule), when the blamer knows it


@dataclass(frozen=True, kw_only=True, slots=True)
class SpanScore:
    """A span's combined weakness score with its per-signal components and evidence."""

    span_id: str
    score: float
    components: Mapping[str, float] = field(default_factory=dict)
    evidence: tuple[Mapping[str, Any], ...] = ()
    insert: bool = False  # failures point at missing content next to this span

    def as_dict(self) -> dict[str, Any]:
        return {"span_id": self.span_id, "score": self.score, "components": dict(self.components),
                "evidence": [dict(e) for e in self.evidence], "insert": self.insert}


class Blamer(Protocol):
    """Names the spans responsible for one failing trace (empty list when it cannot tell).

    A blamer may also define ``observe(window)``: ``attribute`` calls it first with the traces the
    round may read (failing and passing, never the held-out ones), so that it can learn from the
    whole window (``tau_envs.judge.TauJudge`` induces instructions there).
    """

    def blame(self, prompt: PromptVersion, trace: TraceWithFeedback) -> list[Blame]: ...


class SpanLikelihood(Protocol):
    """Mean per-token NELBO of each span of ``prompt`` conditioned on ``traces`` (lower = likelier)."""

    def __call__(
        self, prompt: PromptVersion, span_ids: Sequence[str], traces: Sequence[TraceWithFeedback]
    ) -> Mapping[str, float]: ...


# ----------------------------------------------------------------------------------------- TF-IDF
_WORD = re.compile(r"[a-z0-9]+")
_STOP_WORDS = (
    "a an and are as at be by for from has have if in into is it its of on or that the their then this to "
    "was were will with you your we our can may must should do does not no"
)
_STOP = frozenset(_STOP_WORDS.split())


def _terms(text: str) -> list[str]:
    # a crude stem (first 6 letters) makes "modify"/"modification" and "cancel"/"cancellation" meet
    return [w[:6] for w in _WORD.findall(text.lower()) if w not in _STOP]


def _anagram_terms(text: str) -> list[str]:
    # first letter + sorted rest: invariant to letters scrambled inside words (a garbled sentence)
    return [w[0] + "".join(sorted(w[1:])) for w in _WORD.findall(text.lower()) if w not in _STOP]


def tfidf_similarity(
    queries: Sequence[str], docs: Sequence[str], *, anagram: bool = False
) -> list[list[float]]:
    """Cosine similarity of TF-IDF vectors: ``out[q][d]``, IDF over ``docs`` + ``queries``.

    With ``anagram`` the terms are letter bags, so a sentence whose words were scrambled still
    matches its original.
    """
    terms = _anagram_terms if anagram else _terms
    bags = [Counter(terms(t)) for t in (*docs, *queries)]
    df: Counter[str] = Counter()
    for b in bags:
        df.update(b.keys())
    n = len(bags)

    def vec(b: Counter[str]) -> dict[str, float]:
        v = {t: (1 + math.log(c)) * (math.log((1 + n) / (1 + df[t])) + 1.0) for t, c in b.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {t: x / norm for t, x in v.items()}

    dvecs = [vec(b) for b in bags[: len(docs)]]
    qvecs = [vec(b) for b in bags[len(docs):]]
    return [[sum(x * d.get(t, 0.0) for t, x in q.items()) for d in dvecs] for q in qvecs]


def editable_spans(prompt: PromptVersion, protected: Sequence[str] = ()) -> list[Span]:
    """Spans that may be blamed and masked: not protected, not headings."""
    prot = set(protected)
    return [s for s in prompt.spans if s.id not in prot and s.kind != "heading"]


def restates(hint: str, text: str, *, at: float = 0.45) -> bool:
    """Whether ``hint`` is a version of ``text`` (a correction of it, not another rule).

    TF-IDF cosine >= ``at``, or ``text`` is a letter-scrambled copy of it (letter-bag cosine >= 0.6
    and at least 0.3 above the word cosine).
    """
    plain = tfidf_similarity([hint], [text])[0][0]
    if plain >= at:
        return True
    return tfidf_similarity([hint], [text], anagram=True)[0][0] >= max(0.6, plain + 0.3)


def closest_span(text: str, spans: Sequence[Span], *, anagram: bool = False) -> tuple[Span | None, float]:
    """The span most similar to ``text`` (TF-IDF cosine) and the similarity."""
    if not spans or not text.strip():
        return None, 0.0
    sims = tfidf_similarity([text], [s.text for s in spans], anagram=anagram)[0]
    i = max(range(len(spans)), key=lambda k: (sims[k], -k))
    return spans[i], sims[i]


# ----------------------------------------------------------------------------------------- blamers
@dataclass(frozen=True, kw_only=True, slots=True)
class Explanation:
    """An offline explanation of a failure: what the prompt got wrong or lacked, in words."""

    text: str  # the rule / instruction that was not followed
    reason: str
    kind: BlameKind = "missing"
    stated_in: str = ""  # the prompt text that (badly) states it, when known


class ExplainBlamer:
    """Blame from an explainer (e.g. ``SimulatedPolicy.explain_failure``) mapped onto spans.

    ``explain(trace, prompt)`` returns ``Explanation`` objects. A ``wrong`` explanation (garbled or
    contradicted rule) blames the span that states it (``stated_in``), else the span whose letters
    match it (a garbled copy), else the most similar span. A ``missing`` one blames the most similar
    editable span — the best neighbour of the same topic — with ``kind="missing"`` so the round
    inserts the rule next to it rather than overwriting it. A ``missing`` explanation whose rule
    turns out to be present in scrambled form (letter-bag cosine >= ``garbled_at`` while the plain
    word cosine is much lower) becomes ``wrong``.
    """

    def __init__(
        self,
        explain: Callable[[TraceWithFeedback, PromptVersion], Sequence[Explanation]],
        *,
        protected: Sequence[str] = (),
        garbled_at: float = 0.6,
    ) -> None:
        self._explain = explain
        self._protected = tuple(protected)
        self.garbled_at = garbled_at

    def blame(self, prompt: PromptVersion, trace: TraceWithFeedback) -> list[Blame]:
        spans = editable_spans(prompt, self._protected)
        out: list[Blame] = []
        for ex in self._explain(trace, prompt):
            kind = ex.kind
            target: Span | None = None
            if ex.stated_in:
                target = next((s for s in spans if s.text.strip() == ex.stated_in.strip()), None)
            if target is None:
                garbled, sim = closest_span(ex.text, spans, anagram=True)
                # scrambled words match as letter bags but not as words
                plain = tfidf_similarity([ex.text], [garbled.text])[0][0] if garbled is not None else 1.0
                if garbled is not None and sim >= self.garbled_at and sim - plain >= 0.3:
                    target, kind = garbled, "wrong"
            if target is None:
                target, _ = closest_span(ex.stated_in or ex.text, spans)
            if target is None:
                continue
            out.append(Blame(span_id=target.id, reason=ex.reason, kind=kind, trace_id=trace.trace.id,
                             hint=ex.text))
        return out


class JudgeBlamer:
    """LLM-judge blame through any ``CompletionClient`` (``diffprompt.llm``) and a template.

    The judge sees the failing conversation, its feedback and the numbered spans, and answers JSON
    ``{"blame": [{"span": <number>, "reason": "...", "missing": true|false}]}``. Unparseable output
    or out-of-range numbers yield no blame for that trace (counted in ``failures``), never an error.
    """

    def __init__(
        self, client: Any, *, protected: Sequence[str] = (), max_chars: int = 6000, structured: bool = False
    ) -> None:
        self.client = client
        self._protected = tuple(protected)
        self.max_chars = max_chars
        self.structured = structured  # the client is a StructuredClient: ask for BLAME_SCHEMA output
        self.failures = 0
        self.unparseable: list[str] = []  # the raw replies that yielded no blame (first 300 chars each)

    def blame(self, prompt: PromptVersion, trace: TraceWithFeedback) -> list[Blame]:
        from diffprompt.optimize.templates import render, transcript

        spans = editable_spans(prompt, self._protected)
        text = render(
            "optimize_judge_blame.j2",
            spans=[{"n": i + 1, "text": s.text} for i, s in enumerate(spans)],
            transcript=transcript(trace.trace.messages, max_chars=self.max_chars),
            feedback=[f"{f.kind}={f.value} {f.text}".strip() for f in trace.feedback],
        )
        msgs = [{"role": "user", "content": text}]
        if self.structured:
            reply = self.client.complete_json(msgs, BLAME_SCHEMA, name="blame", temperature=0.0).text
        else:
            reply = self.client.complete(msgs, temperature=0.0).text
        items = parse_blame_json(reply)
        if items is None:
            self.failures += 1
            self.unparseable.append(str(reply)[:300])
            return []
        out = []
        for item in items:
            try:
                n = int(item.get("span", 0))
            except (TypeError, ValueError):
                continue
            if 1 <= n <= len(spans):
                out.append(Blame(span_id=spans[n - 1].id, reason=str(item.get("reason", ""))[:500],
                                 kind="missing" if item.get("missing") else "wrong", trace_id=trace.trace.id,
                                 hint=str(item.get("rule", ""))[:500]))
        return out


BLAME_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {
        "blame": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "span": {"type": "integer"},
                    "reason": {"type": "string"},
                    "missing": {"type": "boolean"},
                    "rule": {"type": "string"},
                },
                "required": ["span", "reason", "missing"],
            },
        }
    },
    "required": ["blame"],
}


def parse_blame_json(reply: str) -> list[dict[str, Any]] | None:
    """The ``blame`` list from a judge reply (first JSON object in the text), or None."""
    m = re.search(r"\{.*\}", reply, re.DOTALL)
    if not m:
        return None
    try:
        obj = json.loads(m.group(0))
    except json.JSONDecodeError:
        return None
    items = obj.get("blame") if isinstance(obj, dict) else None
    if not isinstance(items, list):
        return None
    return [i for i in items if isinstance(i, dict)]


# ----------------------------------------------------------------------------------------- combine
@dataclass(frozen=True, kw_only=True, slots=True)
class AttributionConfig:
    """Weights of the three signals and the success threshold on trace rewards."""

    w_blame: float = 0.6
    w_similarity: float = 0.25
    w_likelihood: float = 0.15
    fail_below: float = 1.0  # a trace with reward < fail_below is a failure
    max_blame_traces: int = 32


def split_window(
    window: Sequence[TraceWithFeedback], fail_below: float = 1.0
) -> tuple[list[TraceWithFeedback], list[TraceWithFeedback]]:
    """(failures, successes) among the traces that have a score; unscored traces are ignored."""
    fails = [t for t in window if t.reward is not None and t.reward < fail_below]
    wins = [t for t in window if t.reward is not None and t.reward >= fail_below]
    return fails, wins


def _normalise(d: Mapping[str, float]) -> dict[str, float]:
    top = max((v for v in d.values() if v > 0), default=0.0)
    return {k: (max(v, 0.0) / top if top > 0 else 0.0) for k, v in d.items()}


def _conversation_text(t: TraceWithFeedback, max_chars: int = 4000) -> str:
    parts = []
    for m in t.trace.messages:
        if m.get("role") in ("user", "assistant"):
            parts.append(str(m.get("content") or ""))
            for call in m.get("tool_calls") or ():
                fn = call.get("function", call) if isinstance(call, Mapping) else {}
                parts.append(str(fn.get("name", "")).replace("_", " "))
    return " ".join(parts)[:max_chars]


def transcript_contrast(
    fails: Sequence[TraceWithFeedback], wins: Sequence[TraceWithFeedback], spans: Sequence[str], *, top: int = 8
) -> dict[int, float]:
    """Spans that read like the failing conversations more than the succeeding ones: ``{index: score}``.

    The weakest signal, used only when there is no judge blame, comment or likelihood (e.g. traces
    with a reward and nothing else): mean TF-IDF similarity of each span to the failing
    conversations' user/assistant text and tool names, minus the mean over succeeding ones; the
    ``top`` positive spans are kept.
    """
    if not spans or not fails:
        return {}

    def mean_sim(traces: Sequence[TraceWithFeedback]) -> list[float]:
        if not traces:
            return [0.0] * len(spans)
        rows = tfidf_similarity([_conversation_text(t) for t in traces], spans)
        return [sum(col) / len(rows) for col in zip(*rows, strict=True)]

    f, w = mean_sim(fails), mean_sim(wins)
    scored = sorted(((f[i] - w[i], i) for i in range(len(spans))), reverse=True)
    return {i: round(v, 6) for v, i in scored[:top] if v > 0}


def _contrast_fallback(
    fails: Sequence[TraceWithFeedback],
    wins: Sequence[TraceWithFeedback],
    spans: Sequence[Span],
    sim: dict[str, float],
    evidence: dict[str, list[dict[str, Any]]],
) -> None:
    """No judge blame, no comment, no likelihood: fall back to what the conversations are about."""
    for k, v in transcript_contrast(fails, wins, [s.text for s in spans]).items():
        sim[spans[k].id] = v
        evidence[spans[k].id].append({"source": "transcript_contrast", "score": round(v, 4)})


def _blame_signal(
    blamer: Blamer,
    prompt: PromptVersion,
    window: Sequence[TraceWithFeedback],
    fails: Sequence[TraceWithFeedback],
    blame: dict[str, float],
    missing: dict[str, float],
    evidence: dict[str, list[dict[str, Any]]],
) -> None:
    """Add the blamer's per-trace blames (after its ``observe`` of the window, when it has one)."""
    observe = getattr(blamer, "observe", None)  # a blamer that also learns from the whole window
    if callable(observe):
        try:
            observe(window)
        except Exception as exc:  # its window-level findings are lost, the per-trace ones stay
            evidence.setdefault("_errors", []).append({"trace_id": "", "error": f"observe: {exc}"})
    for t in fails:
        try:
            blames = blamer.blame(prompt, t)
        except Exception as exc:  # a broken judge call is per-item data
            evidence.setdefault("_errors", []).append({"trace_id": t.trace.id, "error": str(exc)})
            continue
        for b in blames:
            if b.span_id not in blame:
                continue
            blame[b.span_id] += b.weight
            if b.kind == "missing":
                missing[b.span_id] += b.weight
            evidence[b.span_id].append({"source": "blame", "trace_id": b.trace_id, "reason": b.reason,
                                        "kind": b.kind, "hint": b.hint})


def attribute(
    prompt: PromptVersion,
    window: Sequence[TraceWithFeedback],
    *,
    blamer: Blamer | None = None,
    likelihood: SpanLikelihood | None = None,
    protected: Sequence[str] = (),
    config: AttributionConfig | None = None,
) -> list[SpanScore]:
    """Rank the incumbent's editable spans by how the window's failures point at them (best first).

    Spans with a zero score are left out; an empty list means "no evidence". Never raises for
    per-trace problems (a blamer that fails on one trace just contributes nothing for it).
    """
    cfg = config or AttributionConfig()
    spans = editable_spans(prompt, protected)
    if not spans:
        return []
    ids = [s.id for s in spans]
    fails, wins = split_window(window, cfg.fail_below)
    evidence: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
    blame = dict.fromkeys(ids, 0.0)
    missing = dict.fromkeys(ids, 0.0)
    if blamer is not None:
        _blame_signal(blamer, prompt, window, fails[: cfg.max_blame_traces], blame, missing, evidence)
    sim = dict.fromkeys(ids, 0.0)
    texts = [" ".join(t.comments) for t in fails if t.comments]
    if texts:
        for row in tfidf_similarity(texts, [s.text for s in spans]):
            for i, v in zip(ids, row, strict=True):
                sim[i] += v / len(texts)
        for i in ids:
            if sim[i] > 0.05:
                evidence[i].append({"source": "similarity", "score": round(sim[i], 4)})
    lik = dict.fromkeys(ids, 0.0)
    if likelihood is not None and fails and wins:
        nf, ns = likelihood(prompt, ids, fails), likelihood(prompt, ids, wins)
        for i in ids:
            lik[i] = float(nf.get(i, 0.0)) - float(ns.get(i, 0.0))  # less likely under failures
            evidence[i].append({"source": "likelihood", "nelbo_fail": nf.get(i), "nelbo_success": ns.get(i)})
    if not any(v > 0 for v in (*blame.values(), *sim.values(), *lik.values())) and cfg.w_similarity > 0:
        _contrast_fallback(fails, wins, spans, sim, evidence)
    nb, nsim, nlik = _normalise(blame), _normalise(sim), _normalise(lik)
    out = []
    for i in ids:
        score = cfg.w_blame * nb[i] + cfg.w_similarity * nsim[i] + cfg.w_likelihood * nlik[i]
        if score <= 0:
            continue
        out.append(SpanScore(
            span_id=i, score=round(score, 6),
            components={"blame": blame[i], "similarity": sim[i], "likelihood": lik[i]},
            evidence=tuple(evidence[i]), insert=missing[i] > 0 and missing[i] >= blame[i] / 2,
        ))
    order = {i: k for k, i in enumerate(ids)}
    out.sort(key=lambda s: (-s.score, order[s.span_id]))
    return out
