"""``dataset:PATH`` — a single-turn labelled dataset as a ``ReplayEnvironment``.

One episode = one example: the system prompt under optimization, one user message rendered from the
task kind's template (``dataset_user_<kind>.j2``, or a user's own jinja file), one call to the target
``CompletionClient`` at temperature 0 with the episode seed, the reply parsed to a label
(``datasets.labels``); reward 1 when it is the gold label, else 0. An unparseable reply is reward 0
with ``unparsed`` in the trace metadata (a counted outcome, not an error); a failed model call
raises ``ModelError`` and the driver records it as an errored episode.

Cases: the gate's cases are the ``holdout`` part of the seeded split (``Dataset.part_of``), minus
any example a window trace names, so they are disjoint from everything the blamer and editor read;
``--record`` (``evaluate.record_episodes``) only ever stores ``window``-part episodes.

Spec: ``dataset:PATH[?key=value&...]`` with keys ``labels`` (comma-separated label set), ``kind``
(a ``TaskKind``), ``template`` (a jinja file for the user message, with ``text`` / ``text_a`` /
``text_b`` / ``labels``), ``holdout`` (share of examples held out, default 0.5), ``split_seed``
(default 0) and ``max_tokens`` (reply budget, default 24).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jinja2

from diffprompt.datasets.data import Dataset, DatasetError, Example, Part, TaskKind
from diffprompt.datasets.labels import parse_label
from diffprompt.errors import ConfigError
from diffprompt.optimize.attribution import Blame
from diffprompt.optimize.replay import Case
from diffprompt.templating import environment, render
from diffprompt.types import PromptVersion, ReplayResult, Trace, TraceWithFeedback, new_id, utcnow

PREFIX = "dataset"


@dataclass(frozen=True, kw_only=True, slots=True)
class DatasetSpec:
    """A parsed ``dataset:`` env spec (see the module docstring)."""

    path: Path
    labels: tuple[str, ...] | None = None
    kind: TaskKind | None = None
    template: Path | None = None
    holdout: float = 0.5
    split_seed: int = 0
    max_tokens: int = 24


def parse_dataset_spec(spec: str) -> DatasetSpec:
    """Parse ``dataset:PATH[?labels=a,b&kind=K&template=F&holdout=S&split_seed=N&max_tokens=N]``."""
    kind, _, rest = spec.partition(":")
    if kind != PREFIX or not rest.strip():
        raise ConfigError(f"bad --env {spec!r}: use dataset:PATH.jsonl[?labels=a,b&kind=...]")
    path, _, query = rest.partition("?")
    opts = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=False)) if query else {}
    known = {"labels", "kind", "template", "holdout", "split_seed", "max_tokens"}
    if set(opts) - known:
        raise ConfigError(f"unknown dataset env options {sorted(set(opts) - known)}; known: {sorted(known)}")
    try:
        holdout = float(opts.get("holdout", 0.5))
        split_seed = int(opts.get("split_seed", 0))
        max_tokens = int(opts.get("max_tokens", 24))
    except ValueError as exc:
        raise ConfigError(f"bad dataset env option in {spec!r}: {exc}") from None
    if not 0.0 < holdout < 1.0:
        raise ConfigError(f"dataset env holdout must be in (0, 1), got {holdout}")
    if max_tokens < 1:
        raise ConfigError(f"dataset env max_tokens must be >= 1, got {max_tokens}")
    labels = tuple(lb.strip() for lb in opts["labels"].split(",")) if opts.get("labels") else None
    return DatasetSpec(
        path=Path(path).expanduser(),
        labels=labels,
        kind=opts.get("kind") or None,  # type: ignore[arg-type]  # validated by load_dataset
        template=Path(opts["template"]).expanduser() if opts.get("template") else None,
        holdout=holdout,
        split_seed=split_seed,
        max_tokens=max_tokens,
    )


def default_seed_prompt(data: Dataset) -> str:
    """The default system prompt of the dataset's task kind (``dataset_seed_<kind>.j2``)."""
    return render(f"dataset_seed_{data.kind}.j2", labels=list(data.labels)).strip() + "\n"


def user_template(data: Dataset, path: Path | None = None) -> jinja2.Template:
    """The user-message template: a user's jinja file, else ``dataset_user_<kind>.j2``."""
    if path is None:
        return environment().get_template(f"dataset_user_{data.kind}.j2")
    try:
        return environment().from_string(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the user-message template {path}: {exc.strerror or exc}") from None
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: bad jinja template: {exc.message}") from None


def replay_key(data: Dataset, ex: Example) -> str:
    """``dataset:<name>:<index>-<hash8>`` (case id and trace replay key)."""
    return f"{PREFIX}:{data.name}:{ex.id}"


class DatasetReplay:
    """Replay environment over a ``Dataset``; ``client_factory(seed)`` gives the target client.

    Thread-safe (no shared mutable state besides the clients, which are). Cost: one target call of
    at most ``max_tokens`` output tokens per episode.
    """

    def __init__(
        self,
        data: Dataset,
        *,
        client_factory: Callable[[int], Any],
        template: jinja2.Template | None = None,
        holdout: float = 0.5,
        split_seed: int = 0,
        max_tokens: int = 24,
    ) -> None:
        if not 0.0 < holdout < 1.0:
            raise ConfigError(f"dataset holdout share must be in (0, 1), got {holdout}")
        self.data = data
        self.client_factory = client_factory
        self.template = template or user_template(data)
        self.holdout, self.split_seed, self.max_tokens = holdout, split_seed, max_tokens
        self.name = f"{PREFIX}:{data.name}"
        self._by_key = {replay_key(data, ex): ex for ex in data.examples}

    # -- cases ----------------------------------------------------------------------------------
    def part(self, ex: Example) -> Part:
        return self.data.part_of(ex, holdout_share=self.holdout, split_seed=self.split_seed)

    def case(self, ex: Example, trace_id: str | None = None) -> Case:
        key = replay_key(self.data, ex)
        return Case(id=key, replay_key=key, slice=ex.label, trace_id=trace_id, data={"index": ex.index})

    def all_cases(self, part: Part | None = None, limit: int | None = None) -> list[Case]:
        """Examples in file order (optionally one part only, the first ``limit``) as cases."""
        exs = [ex for ex in self.data.examples if part is None or self.part(ex) == part]
        return [self.case(ex) for ex in exs[:limit]]

    def cases(self, traces: Sequence[TraceWithFeedback]) -> list[Case]:
        """The gate's cases: the held-out part minus every example a window trace names."""
        seen = {t.trace.replay_key for t in traces if t.trace.replay_key}
        return [c for c in self.all_cases("holdout") if c.id not in seen]

    def example(self, case: Case) -> Example:
        ex = self._by_key.get(case.replay_key or case.id)
        if ex is None:
            raise DatasetError(f"case {case.id!r} is not an example of {self.data.path}")
        return ex

    # -- one episode ----------------------------------------------------------------------------
    def messages(self, ex: Example, system_prompt: str) -> list[dict[str, str]]:
        values = {"text": ex.text_a, "text_a": ex.text_a, "text_b": ex.text_b or "", "labels": list(self.data.labels)}
        user = self.template.render(**values).strip()
        return [{"role": "system", "content": system_prompt}, {"role": "user", "content": user}]

    def run(self, case: Case, system_prompt: str, *, seed: int, trial: int) -> ReplayResult:
        ex = self.example(case)
        msgs = self.messages(ex, system_prompt)
        t0 = time.perf_counter()
        done = self.client_factory(seed).complete(msgs, temperature=0.0, max_tokens=self.max_tokens)
        seconds = time.perf_counter() - t0
        pred, rule = parse_label(done.text, self.data.labels)
        ok = pred == ex.label
        now = utcnow()
        trace = Trace(
            id=new_id("tr_"),
            slot="",
            version_id=None,
            thread_id=new_id("th_"),
            messages=(*msgs, {"role": "assistant", "content": done.text}),
            started_at=now,
            ended_at=now,
            latency_ms=seconds * 1000,
            usage=done.usage,
            model_calls=1,
            replay_key=case.replay_key,
            metadata={
                "dataset": self.data.name,
                "index": ex.index,
                "digest": ex.digest,
                "gold": ex.label,
                "predicted": pred,
                "parse": rule,
                "unparsed": pred is None,
                "trial": trial,
                "seed": seed,
            },
        )
        return ReplayResult(
            case_id=case.id,
            version_id="",
            trial=trial,
            reward=1.0 if ok else 0.0,
            usage=done.usage,
            model_calls=1,
            trace=trace,
            seconds=seconds,
            slice=ex.label,
        )


def feedback_comment(trace: Trace, labels: Sequence[str]) -> str:
    """The window's feedback text for a wrong episode (the example's own gold label, no other)."""
    md = trace.metadata
    reply = str(trace.messages[-1].get("content") or "").strip().replace("\n", " ")[:80]
    if md.get("unparsed"):
        return f"The reply {reply!r} did not name one of the labels ({', '.join(labels)}); expected {md.get('gold')!r}."
    return f"Answered {md.get('predicted')!r} but the correct label is {md.get('gold')!r}."


_FORMAT = re.compile(r"\b(?:answer|respond|reply|output|label)\w*\b|\bone word\b|\bone of\b", re.I)


class LabelBlamer:
    """Offline ``Blamer`` for dataset episodes, from the trace and its reward only.

    Format spans are those with an answer cue (answer, respond, reply, output, label, "one of",
    "one word"); when no span has one, those naming every label. An unparseable reply blames the
    format spans, or — when there are none — asks for a missing format rule after the last span; a
    wrong label blames the spans that describe the decision (every other editable span). The hint
    is the format sentence built from the label set, never an example's answer.
    """

    def __init__(self, labels: Sequence[str]) -> None:
        self.labels = tuple(labels)
        self.hint = f"Answer with exactly one of: {', '.join(self.labels)}."

    def _format_spans(self, spans: Sequence[Any]) -> list[Any]:
        cued = [s for s in spans if _FORMAT.search(s.text)]
        if cued:
            return cued
        low = [s.text.lower() for s in spans]
        return [s for s, t in zip(spans, low, strict=True) if all(lb.lower() in t for lb in self.labels)]

    def blame(self, prompt: PromptVersion, trace: TraceWithFeedback) -> list[Blame]:
        md = trace.trace.metadata
        spans = [s for s in prompt.spans if s.kind != "heading"]
        if not spans or "gold" not in md:
            return []
        fmt = self._format_spans(spans)
        tid = trace.trace.id
        if md.get("unparsed"):
            if not fmt:
                return [Blame(span_id=spans[-1].id, reason="the reply named no label", kind="missing",
                              trace_id=tid, hint=self.hint)]
            return [Blame(span_id=s.id, reason="the reply named no label", trace_id=tid, hint=self.hint) for s in fmt]
        task = [s for s in spans if s not in fmt] or spans
        why = f"predicted {md.get('predicted')!r} for an example labelled {md.get('gold')!r}"
        return [Blame(span_id=s.id, reason=why, weight=1.0 / len(task), trace_id=tid) for s in task]
