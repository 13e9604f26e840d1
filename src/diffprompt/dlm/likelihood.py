"""Monte-Carlo masked-diffusion NELBO of a span given its context.

For a sequence whose span tokens are known, the masked-diffusion bound is
``E_t[ (1/t) * sum_{i in span, masked at t} -log p(x_i | x_masked) ]`` with t ~ U(eps, 1) and each
span token masked independently with probability t (the rest of the sequence stays visible). Lower
means the span is less surprising in that context. Attribution compares it under failing versus
succeeding trace conditioning. ``samples`` draws are stratified over t and run as one batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from diffprompt.dlm.base import DiffusionLM
from diffprompt.dlm.layout import build_layout, span_pieces
from diffprompt.errors import ValidationError
from diffprompt.types import PromptVersion, TraceWithFeedback


def span_nelbo(
    dlm: DiffusionLM,
    layout_ids: Sequence[int] | torch.Tensor,
    span_positions: Sequence[int],
    *,
    samples: int = 16,
    generator: torch.Generator | None = None,
    eps: float = 1e-3,
    per_token: bool = False,
) -> float:
    """NELBO (nats) of the tokens at ``span_positions`` of ``layout_ids`` given all other tokens.

    ``layout_ids`` holds the true span tokens (not masks). Returns the total over the span, or the
    mean per span token with ``per_token``. Cost: one forward of batch ``samples``. Deterministic for
    a seeded ``generator``.
    """
    ids = torch.as_tensor(layout_ids, dtype=torch.long).flatten()
    pos = torch.as_tensor(list(span_positions), dtype=torch.long)
    if pos.numel() == 0:
        raise ValidationError("span_positions is empty; a span needs at least one token to score")
    if int(pos.min()) < 0 or int(pos.max()) >= ids.numel():
        raise ValidationError(f"span_positions out of range for a sequence of {ids.numel()} tokens")
    if samples < 1:
        raise ValidationError(f"samples must be >= 1, got {samples}")
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    u = torch.rand((), generator=gen)
    t = ((u + torch.arange(samples) / samples) % 1.0) * (1 - eps) + eps  # stratified, (S,)
    m = torch.rand((samples, pos.numel()), generator=gen) < t[:, None]  # (S, n)
    force = torch.randint(0, pos.numel(), (samples,), generator=gen)
    m[torch.arange(samples), force] |= ~m.any(dim=1)  # every draw masks at least one token
    batch = ids.unsqueeze(0).repeat(samples, 1)  # (S, L)
    cols = pos.unsqueeze(0).expand(samples, -1)
    batch.scatter_(
        1, cols, torch.where(m, torch.tensor(dlm.mask_id), ids[pos].unsqueeze(0).expand(samples, -1))
    )
    logits = dlm.logits(batch.to(dlm.device)).float().cpu()  # (S, L, V)
    lp = F.log_softmax(
        logits.gather(1, cols.unsqueeze(-1).expand(-1, -1, logits.shape[-1])), dim=-1
    )  # (S, n, V)
    nll = -lp.gather(2, ids[pos].expand(samples, -1).unsqueeze(-1)).squeeze(-1)  # (S, n)
    nll = torch.nan_to_num(nll, posinf=1e4)  # a banned true token scores as very surprising, not inf
    total = float(((nll * m).sum(dim=1) / t).mean())
    return total / pos.numel() if per_token else total


def prompt_span_nelbo(
    dlm: DiffusionLM,
    prompt: PromptVersion,
    span_id: str,
    traces: Sequence[TraceWithFeedback],
    *,
    samples: int = 16,
    generator: torch.Generator | None = None,
    k_traces: int = 3,
    per_token: bool = True,
) -> float:
    """``span_nelbo`` of one prompt span laid out after ``traces`` (the layout's conditioning)."""
    lay = build_layout(dlm, prompt, [span_id], traces, factor=1.0, k_traces=k_traces, min_mask=0)
    s, e = lay.runs[span_id]
    span = next(sp for sp in prompt.spans if sp.id == span_id)
    true = span_pieces(dlm.tokenizer, span)[2]
    if len(true) != e - s or not true:
        raise ValidationError(f"span {span_id} has no tokens to score")
    ids = list(lay.ids)
    ids[s:e] = true
    return span_nelbo(dlm, ids, range(s, e), samples=samples, generator=generator, per_token=per_token)
