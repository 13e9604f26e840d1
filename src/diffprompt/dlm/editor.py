"""The DLM editor: masked weak spans → N candidate prompts in one batched sampler call.

``DLMEditor`` implements the ``Editor`` seam (``diffprompt.editing``) for one typed ``EditRequest``:
it lays out one row per candidate (factor and trace sample vary by row), left-pads the rows into one
batch, runs ``diffprompt.dlm.sampler.infill`` once, and decodes each row back into a prompt whose
unmasked spans are byte-identical. A memory of rejected texts per span id (``remember_rejected`` or
``request.rejected``) keeps a failed text from being proposed again: rows that reproduce one are
resampled once with a fresh seed, then dropped. The torch-free test stand-in is
``diffprompt.editing.FakeEditor``.

Draft rows (``draft_share``, ``draft_remask``; ``diffprompt.dlm.drafts``): when the request carries
hints (``request.hints``, the text the blamer says the prompt should state), the first
``ceil(n * draft_share)`` rows start from a draft instead of masks: the hints that fit the slots are
written in, one forward of the DLM scores them, the least-agreed ``draft_remask`` fraction of each
draft (whole words, ``draft_unit``) is masked again and denoised in the same batched sampler call as
the plain rows. With hints, new text comes only from them: a row no hint fits (every hint is stated
already, or the share left it plain) rewrites the in-place spans and leaves insertion slots empty —
unguided insertions of the 1.1 M-parameter built-in model were word salad ("Each not have
confirmation.") that rode along on a promoted finalist. With an oracle
blamer's hints (``--judge oracle``) a draft row largely pastes the answer, so such a round stays a
labelled ceiling; with the honest judge the hints are its own wording induced from the evidence.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from diffprompt.dlm.base import DiffusionLM
from diffprompt.dlm.drafts import Remasked, draft_assignments, keep_preferred, remask_rows
from diffprompt.dlm.layout import Layout, build_layout, decode_candidate, decode_fills
from diffprompt.editing import EditorCapabilities, EditRequest
from diffprompt.errors import ConfigError
from diffprompt.spans import normalize_text
from diffprompt.types import Candidate, PromptVersion, TraceWithFeedback


@dataclass(frozen=True, kw_only=True, slots=True)
class DLMEditorConfig:
    """Sampling and layout settings of a ``DLMEditor`` (hashed into every candidate's ``config_hash``)."""

    steps: int = 64
    factors: tuple[float, ...] = (0.75, 1.0, 1.5)
    alg: str = "maxprob"
    temperature: float = 0.6
    top_p: float = 0.95
    alg_temp: float = 0.0
    threshold: float | None = None
    k_traces: int = 3
    trace_tokens: int = 160
    resample_rounds: int = 1
    repeat_penalty: float = 2.0  # logit penalty on repeating an already-written neighbouring token
    insert_min: int = 48  # mask-run floor (tokens) of an insertion slot: a new rule may outgrow its anchor
    draft_remask: tuple[float, ...] = (0.2, 0.4)  # share of a draft's tokens masked again, per draft row
    draft_share: float = 1.0  # share of the rows that start from the hints when there are any; 0: never
    draft_explore: float = 0.3  # chance (seeded) that a later draft row takes a slot's second-best hint
    draft_unit: str = "word"  # re-mask whole words ("word") or single tokens ("token") of a draft
    draft_accept: str = "better"  # "better": a re-masked draft word changes only to a likelier one; "any"

    def hash(self, model_name: str) -> str:
        blob = json.dumps({"model": model_name, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(kw_only=True)
class _Row:
    layout: Layout
    factor: float
    trace_ids: tuple[str, ...]
    draft: Mapping[str, str]
    remask: float
    units: Sequence[Remasked] = ()


def distinct_lines(lines: Sequence[str], k: int, *, max_overlap: float = 0.5) -> list[str]:
    """Up to ``k`` of ``lines`` in order, about different findings first.

    A line whose words overlap a kept line's by more than ``max_overlap`` (Jaccard) is skipped, so the
    same finding about another action or record does not crowd out the others; skipped lines fill up
    what is left.
    """

    def words(t: str) -> set[str]:
        return set(re.findall(r"[a-z0-9]+", t.lower()))

    kept: list[tuple[str, set[str]]] = []
    skipped: list[str] = []
    for line in lines:
        w = words(line)
        if any(len(w & o) / max(1, len(w | o)) > max_overlap for _, o in kept):
            skipped.append(line)
        else:
            kept.append((line, w))
    return [*(line for line, _ in kept), *skipped][:k]


class DLMEditor:
    """``Editor`` backed by a ``DiffusionLM`` and the masked-diffusion sampler."""

    name = "dlm"
    capabilities = EditorCapabilities()

    def __init__(self, dlm: DiffusionLM, *, rejected: Mapping[str, Sequence[str]] | None = None, **config: Any) -> None:
        for key in ("factors", "draft_remask"):  # JSON run configs give lists
            if key in config:
                config[key] = tuple(float(f) for f in config[key])
        try:
            self.config = DLMEditorConfig(**config)
        except TypeError as exc:
            raise ConfigError(f"unknown DLMEditor option: {exc}; see DLMEditorConfig for the fields") from None
        cfg = self.config
        if not cfg.factors or min(cfg.factors) <= 0:
            raise ConfigError("DLMEditor factors must be a non-empty tuple of positive numbers")
        if not cfg.draft_remask or not all(0 <= f <= 1 for f in cfg.draft_remask):
            raise ConfigError("DLMEditor draft_remask must be a non-empty tuple of fractions in [0, 1]")
        if not 0 <= cfg.draft_share <= 1:
            raise ConfigError(f"DLMEditor draft_share must be in [0, 1] (0 disables draft rows), got {cfg.draft_share}")
        if not 0 <= cfg.draft_explore <= 1:
            raise ConfigError(f"DLMEditor draft_explore must be a probability in [0, 1], got {cfg.draft_explore}")
        if cfg.draft_accept not in ("better", "any"):
            raise ConfigError(f"DLMEditor draft_accept must be 'better' or 'any', got {cfg.draft_accept!r}")
        if cfg.draft_unit not in ("word", "token"):
            raise ConfigError(f"DLMEditor draft_unit must be 'word' or 'token', got {cfg.draft_unit!r}")
        self.dlm = dlm
        self._rejected: dict[str, set[str]] = {k: {normalize_text(t) for t in v} for k, v in (rejected or {}).items()}
        self.config_hash = self.config.hash(dlm.name)
        self.last_forwards = 0  # forwards of the latest sampler call (for benchmarks and run records)

    def remember_rejected(self, span_id: str, text: str) -> None:
        """Never propose ``text`` (normalised) for ``span_id`` again."""
        self._rejected.setdefault(span_id, set()).add(normalize_text(text))

    def _rows(
        self,
        prompt: PromptVersion,
        span_ids: Sequence[str],
        traces: Sequence[TraceWithFeedback],
        n: int,
        rng: random.Random,
        feedback: Sequence[str],
        inserts: Sequence[str] = (),
        drafts: Sequence[Mapping[str, str]] = (),
    ) -> list[_Row]:
        cfg = self.config
        min_runs = {sid: cfg.insert_min for sid in inserts if sid in span_ids}
        rows = []
        for i in range(n):
            pool = list(traces)
            # failing traces first, a different sample per row (the first row sees the first k)
            pool.sort(key=lambda t: t.reward if t.reward is not None else 0.0)
            if i > 0 and len(pool) > cfg.k_traces:
                pool = rng.sample(pool, len(pool))
            chosen = pool[: cfg.k_traces]
            factor = cfg.factors[i % len(cfg.factors)]
            draft = drafts[i] if i < len(drafts) else {}
            if draft:  # a draft row changes only what it drafts: other in-place spans stay, other new slots stay empty
                row_ids = [sid for sid in span_ids if sid in draft or sid in inserts]
            elif drafts:  # the request has hints, none for this row (all stated already): new text only from hints
                row_ids = [sid for sid in span_ids if sid not in inserts]
            else:
                row_ids = list(span_ids)
            if not row_ids:
                continue
            lay = build_layout(
                self.dlm,
                prompt,
                row_ids,
                chosen,
                factor=factor,
                k_traces=cfg.k_traces,
                trace_tokens=cfg.trace_tokens,
                feedback=feedback,
                min_runs=min_runs,
                drafts=draft,
            )
            remask = cfg.draft_remask[i % len(cfg.draft_remask)] if draft else 0.0
            rows.append(
                _Row(layout=lay, factor=factor, trace_ids=tuple(t.trace.id for t in chosen), draft=draft, remask=remask)
            )
        drafted = [r for r in rows if r.draft]
        scored = remask_rows(self.dlm, [r.layout for r in drafted], [r.remask for r in drafted], unit=cfg.draft_unit)
        for r, (lay, units) in zip(drafted, scored, strict=True):
            r.layout, r.units = lay, units  # the scoring forward: counted into the first sampler call's forwards
        return rows

    def _sample(self, rows: Sequence[_Row], seed: int, extra_forwards: int = 0) -> list[list[int]]:
        from diffprompt.dlm.sampler import infill

        cfg = self.config
        width = max(len(r.layout) for r in rows)
        ids = torch.full((len(rows), width), self.dlm.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.bool)
        attn = torch.zeros((len(rows), width), dtype=torch.long)
        for b, r in enumerate(rows):
            off = width - len(r.layout)  # left padding
            ids[b, off:] = torch.tensor(r.layout.ids)
            attn[b, off:] = 1
            for p in r.layout.mask_positions:
                mask[b, off + p] = True
        dev = self.dlm.device
        gen = torch.Generator(device=dev).manual_seed(seed)
        res = infill(
            self._logits_fn(),
            ids.to(dev),
            mask.to(dev),
            steps=cfg.steps,
            alg=cfg.alg,  # type: ignore[arg-type]
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            alg_temp=cfg.alg_temp,
            threshold=cfg.threshold,
            attention_mask=attn.to(dev) if bool((attn == 0).any()) else None,
            generator=gen,
            mask_id=self.dlm.mask_id,
            forbid_ids=(self.dlm.pad_id,) if self.dlm.pad_id != self.dlm.eos_id else (),
        )
        out = res.ids.cpu()
        self.last_forwards = res.forwards + extra_forwards
        return [out[b, width - len(r.layout) :].tolist() for b, r in enumerate(rows)]

    def _logits_fn(self) -> Any:
        """The DLM's logits, with an adjacent-repetition penalty at masked positions.

        Small models predict each position from nearly the same context, so neighbouring masks tend
        to repeat a word ("the the"); lowering the logit of a token already written right next to a
        masked position removes most of that without touching any unmasked token.
        """
        pen, mask_id = self.config.repeat_penalty, self.dlm.mask_id

        def fn(x: torch.Tensor, am: torch.Tensor | None) -> torch.Tensor:
            z = self.dlm.logits(x, am)  # (B, L, V)
            if pen <= 0:
                return z
            z = z.clone()
            masked = x == mask_id
            for nb in (torch.roll(x, 1, dims=1), torch.roll(x, -1, dims=1)):  # left / right neighbour
                ok = masked & (nb != mask_id)  # wrap-around at the row ends only penalises one token
                idx = torch.nonzero(ok)  # (N, 2)
                if idx.numel():
                    z[idx[:, 0], idx[:, 1], nb[idx[:, 0], idx[:, 1]]] -= pen
            return z

        return fn

    def propose(self, request: EditRequest) -> list[Candidate]:
        """Up to ``request.n`` candidates rewriting ``request.span_ids`` (one ``infill`` call per round).

        Conditioning: ``request.traces`` (failing first, a different sample per row), four
        ``request.feedback`` lines about different findings (``distinct_lines``), insertion slots
        (``request.insert_span_ids``) get a longer mask run;
        ``request.rejected`` and the editor's own memory are never proposed again.

        With ``request.hints`` the first ``ceil(n * draft_share)`` rows are draft rows (module
        docstring): their slots start from the hints that fit them and only the least-agreed
        ``draft_remask`` fraction of each draft is resampled; their metadata records ``"draft"``
        (``{span_id: hint}``) and ``"remask"``. An oracle blamer's hints are the answer (a labelled
        ceiling); the honest judge's are its own induced wording.
        """
        prompt, span_ids, n, seed = request.prompt, list(request.span_ids), request.n, request.seed
        if not span_ids:
            return []
        rejected = {k: set(v) for k, v in self._rejected.items()}
        for k, v in request.rejected.items():
            rejected.setdefault(k, set()).update(normalize_text(t) for t in v)
        feedback = distinct_lines(request.feedback, 4)
        rng = random.Random(seed)
        share = self.config.draft_share
        drafts = draft_assignments(
            request, math.ceil(n * share) if share > 0 else 0, seed=seed, explore=self.config.draft_explore
        )
        rows = self._rows(prompt, span_ids, request.traces, n, rng, feedback, request.insert_span_ids, drafts)
        seen = {prompt.text}
        out: list[Candidate] = []
        pending = list(range(len(rows)))
        for rnd in range(self.config.resample_rounds + 1):
            if not pending or len(out) >= n:
                break
            scored = 1 if rnd == 0 and any(r.draft for r in rows) else 0  # the draft rows' scoring forward
            filled = self._sample([rows[i] for i in pending], seed + 7919 * rnd, scored)
            retry = []
            for i, ids in zip(pending, filled, strict=True):
                row = rows[i]
                kept = keep_preferred(ids, row.units) if self.config.draft_accept == "better" else 0
                for sid, (a, b) in row.layout.runs.items() if row.draft else ():
                    if sid not in row.draft:  # an insertion slot no hint fits: no new text there
                        ids[a:b] = [self.dlm.eos_id] * (b - a)
                fills = decode_fills(self.dlm, row.layout, ids)
                bad = [sid for sid, t in fills.items() if t and normalize_text(t) in rejected.get(sid, set())]
                if bad:
                    # keep the original text of a span whose fill was rejected before; retry the row
                    retry.append(i)
                    continue
                text, changed = decode_candidate(self.dlm, prompt, row.layout, ids)
                if text in seen:
                    retry.append(i)
                    continue
                seen.add(text)
                drafted = {"draft": dict(row.draft), "remask": row.remask, "draft_kept": kept} if row.draft else {}
                out.append(
                    Candidate(
                        text=text,
                        parent_id=prompt.id,
                        masked_span_ids=tuple(span_ids),
                        editor=self.name,
                        seed=seed,
                        config_hash=self.config_hash,
                        changed_span_ids=changed,
                        metadata={
                            "factor": row.factor,
                            "row": i,
                            "round": rnd,
                            "traces": list(row.trace_ids),
                            "model": self.dlm.name,
                            "forwards": self.last_forwards,
                            "fills": fills,
                            **drafted,
                        },
                    )
                )
            pending = retry
        return out[:n]
