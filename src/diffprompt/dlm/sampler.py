"""The masked-diffusion infilling sampler: a pure function over tensors and a logits function.

``infill(logits_fn, ids, mask, ...)`` fills the positions where ``mask`` is true, a few per step, and
never touches anything else. One step is one call of ``logits_fn`` over the rows that still have masks.

Per step and per row: predict a token at every still-masked position (argmax at ``temperature=0``,
else a sample from the tempered, top-p-truncated distribution), score each prediction with a
confidence (``alg``), and commit the most confident ones. How many a row commits is its own schedule:
``ceil(remaining / steps_left)``, so every row finishes within ``steps`` whatever its mask count, and
rows with different counts batch exactly as they would run alone (for a row-independent
``logits_fn``). With ``threshold`` a row also commits every prediction whose confidence reaches it,
which finishes in fewer forwards. Steps where no row has anything left to commit cost nothing.

All randomness comes from the ``generator`` argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from diffprompt.errors import ConfigError

Alg = Literal["maxprob", "margin", "entropy", "random"]
ALGS: tuple[str, ...] = get_args(Alg)

_NUCLEUS_PREFIX = 256  # candidates examined before falling back to a full vocabulary sort

LogitsFn = Callable[[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
"""``logits_fn(ids (B, L) long, attention_mask (B, L) | None) -> (B, L, V)`` aligned logits.

Rows must be processed independently: the sampler forwards only the rows that still have masks.
"""


@dataclass(frozen=True, kw_only=True)
class InfillResult:
    """The filled ids and what it cost.

    ``ids`` is ``(B, L)`` with every masked position filled (never with the mask id); ``forwards`` is
    the number of ``logits_fn`` calls; ``commit_step`` is ``(B, L)`` long: the 0-based forward at which
    each position was committed, ``-1`` for positions that were never masked.
    """

    ids: torch.Tensor
    forwards: int
    commit_step: torch.Tensor

    @property
    def steps_used(self) -> int:
        """Alias of ``forwards`` (one forward per step that committed something)."""
        return self.forwards


def num_transfer_tokens(mask_counts: torch.Tensor, steps: int) -> torch.Tensor:
    """The fixed per-row schedule: ``(B, steps)`` long counts summing to ``mask_counts``.

    Row ``r`` commits ``n_r // steps`` per step plus one extra in its first ``n_r % steps`` steps
    (the linear schedule of LLaDA); equivalently ``ceil(remaining / steps_left)`` at every step, which
    is what :func:`infill` uses. Trailing zeros are steps that row skips.
    """
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    counts = mask_counts.reshape(-1, 1).long()
    base = counts // steps
    extra = (torch.arange(steps, device=counts.device).unsqueeze(0) < (counts % steps)).long()
    return base + extra


def infill(
    logits_fn: LogitsFn,
    ids: torch.Tensor,
    mask: torch.Tensor,
    *,
    steps: int = 64,
    alg: Alg = "maxprob",
    temperature: float = 0.0,
    top_p: float = 1.0,
    alg_temp: float = 0.0,
    threshold: float | None = None,
    attention_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    mask_id: int | None = None,
    forbid_ids: Sequence[int] = (),
) -> InfillResult:
    """Fill ``ids[mask]`` by masked-diffusion denoising in at most ``steps`` forwards.

    Args:
        logits_fn: aligned logits of the current sequence (see :data:`LogitsFn`).
        ids: ``(B, L)`` long token ids; the values at masked positions are replaced by ``mask_id``.
        mask: ``(B, L)`` bool, true where tokens are to be generated. Must not cover padding.
        steps: the step budget; each row spreads its own masks evenly over it.
        alg: confidence used to pick which predictions to commit: ``maxprob`` (probability of the
            predicted token), ``margin`` (top-1 minus top-2 probability), ``entropy`` (negative
            entropy of the position's distribution) or ``random`` (uniform, from ``generator``).
        temperature: token sampling temperature; 0 takes the argmax.
        top_p: nucleus truncation of the token distribution when sampling (``temperature > 0``);
            confidences are computed from the untruncated tempered distribution.
        alg_temp: when > 0, which positions to commit is sampled without replacement from
            ``softmax(confidence / alg_temp)`` (Gumbel-top-k) instead of taking the top-k.
        threshold: parallel decoding: also commit every prediction with ``confidence >= threshold``
            (in the units of ``alg``). The schedule quota still applies, so the budget holds.
        attention_mask: ``(B, L)`` 1 for real tokens, 0 for (left) padding; passed to ``logits_fn``.
        generator: the source of all randomness; required when ``temperature > 0``, ``alg="random"``
            or ``alg_temp > 0``. Its device must match ``ids``.
        mask_id: the mask token id. When ``None`` it is read from ``ids`` at the masked positions
            (they must all hold the same id).
        forbid_ids: token ids never written (the mask id is always forbidden), e.g. padding.

    Returns:
        :class:`InfillResult`. Unmasked positions are byte-identical to ``ids``.

    Raises:
        ConfigError: bad arguments (shapes, unknown ``alg``, missing generator, ``steps < 1``).

    """
    _validate(ids, mask, attention_mask, steps=steps, alg=alg, temperature=temperature, top_p=top_p,
              alg_temp=alg_temp, generator=generator)
    mask = mask.bool()
    x = ids.clone()
    commit_step = torch.full_like(ids, -1)
    if not bool(mask.any()):
        return InfillResult(ids=x, forwards=0, commit_step=commit_step)
    if mask_id is None:
        mask_id = _infer_mask_id(ids, mask)
    x[mask] = mask_id
    forbidden = torch.tensor(sorted({mask_id, *forbid_ids}), device=ids.device, dtype=torch.long)

    remaining = mask.clone()  # (B, L) positions still to fill
    forwards = 0
    for step in range(steps):
        left = remaining.sum(dim=1)  # (B,)
        rows = torch.nonzero(left > 0).squeeze(1)
        if rows.numel() == 0:
            break  # every later step would commit nothing: spend no forward on it
        all_rows = rows.numel() == x.shape[0]
        xr = x if all_rows else x[rows]
        am = None if attention_mask is None else (attention_mask if all_rows else attention_mask[rows])
        logits = logits_fn(xr, am)  # (b, L, V)
        forwards += 1
        rem = remaining if all_rows else remaining[rows]  # (b, L)
        quota = torch.div(left[rows] + (steps - step) - 1, steps - step, rounding_mode="floor")  # ceil
        # only the still-masked rows of the logits matter: (N, V), moved to ids' device if elsewhere
        picked = logits[rem.to(logits.device)].to(ids.device)
        tokens, conf = _predict(picked, forbidden, alg=alg, temperature=temperature, top_p=top_p,
                                generator=generator)  # (N,), (N,)
        commit = _choose(rem, conf, quota, alg_temp=alg_temp, threshold=threshold, generator=generator)
        new_x = xr.clone()
        new_x[rem] = torch.where(commit[rem], tokens, xr[rem])
        x[rows] = new_x
        cs = commit_step[rows]
        cs[commit] = forwards - 1
        commit_step[rows] = cs
        remaining[rows] = rem & ~commit
    return InfillResult(ids=x, forwards=forwards, commit_step=commit_step)


def _predict(
    logits: torch.Tensor,
    forbidden: torch.Tensor,
    *,
    alg: str,
    temperature: float,
    top_p: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token and confidence for each of ``N`` masked positions from ``(N, V)`` logits."""
    z = logits.float()
    z[:, forbidden[forbidden < z.shape[1]]] = -math.inf
    if temperature > 0:
        z = z / temperature
    probs = torch.softmax(z, dim=-1)  # (N, V); confidences come from the untruncated distribution
    if temperature > 0:
        tokens = _sample(probs, top_p, generator)
    else:
        tokens = torch.argmax(probs, dim=-1)
    if alg == "maxprob":
        conf = probs.gather(1, tokens.unsqueeze(1)).squeeze(1)
    elif alg == "margin":
        top2 = probs.topk(2, dim=-1).values
        conf = top2[:, 0] - top2[:, 1]
    elif alg == "entropy":
        conf = (probs * torch.log(probs.clamp_min(1e-30))).sum(dim=-1)  # -H, higher = more certain
    else:
        conf = torch.rand(probs.shape[0], device=probs.device, generator=generator)
    return tokens, conf


def _sample(probs: torch.Tensor, top_p: float, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of ``(N, V)`` probabilities, from the top-p nucleus when ``top_p < 1``.

    Sampling is an exponential race (``argmax p / Exp(1)``, i.e. Gumbel-max), which needs no
    renormalisation. The nucleus is searched in a top-k prefix first and falls back to a full sort
    only when some row's prefix holds less than ``top_p`` of the mass (a flat distribution).
    """
    if top_p >= 1.0:
        return torch.argmax(probs / _exp1(probs, generator), dim=-1)
    k = min(probs.shape[1], _NUCLEUS_PREFIX)
    vals, idx = probs.topk(k, dim=-1)  # (N, k), descending
    if k < probs.shape[1] and not bool((vals.sum(dim=-1) >= top_p).all()):
        vals, idx = torch.sort(probs, dim=-1, descending=True)
    keep = (vals.cumsum(dim=-1) - vals) < top_p  # the mass before this token is still short of top_p
    weights = vals * keep
    j = torch.argmax(weights / _exp1(weights, generator), dim=-1, keepdim=True)
    return idx.gather(1, j).squeeze(1)


def _exp1(like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Exp(1) noise shaped like ``like``: ``-log U`` (several times faster than ``exponential_`` on CPU)."""
    u = torch.rand(like.shape, device=like.device, generator=generator)
    return -torch.log(u.clamp_min_(torch.finfo(u.dtype).tiny))


def _choose(
    rem: torch.Tensor,
    conf: torch.Tensor,
    quota: torch.Tensor,
    *,
    alg_temp: float,
    threshold: float | None,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """``(b, L)`` bool: which still-masked positions each row commits this step."""
    score = torch.full(rem.shape, -math.inf, device=rem.device)
    score[rem] = conf.float()
    rank_key = score
    if alg_temp > 0:
        # Gumbel-top-k: the top-k of score/τ + Gumbel noise is a draw without replacement
        u = torch.rand(rem.shape, device=rem.device, generator=generator).clamp_(1e-20, 1.0)
        rank_key = torch.where(rem, score / alg_temp - torch.log(-torch.log(u)), score)
    order = torch.argsort(rank_key, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order).scatter_(1, order, torch.arange(rem.shape[1], device=rem.device)
                                             .expand_as(order))
    commit = (ranks < quota.unsqueeze(1)) & rem
    if threshold is not None:
        commit |= rem & (score >= threshold)
    return commit


def _infer_mask_id(ids: torch.Tensor, mask: torch.Tensor) -> int:
    vals = torch.unique(ids[mask])
    if vals.numel() != 1:
        raise ConfigError(
            "masked positions hold different ids; pass mask_id=<the model's mask token id> to infill()"
        )
    return int(vals.item())


def _validate(
    ids: torch.Tensor,
    mask: torch.Tensor,
    attention_mask: torch.Tensor | None,
    *,
    steps: int,
    alg: str,
    temperature: float,
    top_p: float,
    alg_temp: float,
    generator: torch.Generator | None,
) -> None:
    if ids.dim() != 2 or ids.dtype != torch.long:
        raise ConfigError(f"ids must be a (B, L) long tensor, got {tuple(ids.shape)} {ids.dtype}")
    if mask.shape != ids.shape:
        raise ConfigError(f"mask shape {tuple(mask.shape)} must equal ids shape {tuple(ids.shape)}")
    if attention_mask is not None:
        if attention_mask.shape != ids.shape:
            raise ConfigError(f"attention_mask shape {tuple(attention_mask.shape)} must equal ids shape")
        if bool((mask.bool() & (attention_mask == 0)).any()):
            raise ConfigError("mask covers padding positions (attention_mask == 0); mask only real slots")
    if steps < 1:
        raise ConfigError(f"steps must be >= 1, got {steps}")
    if alg not in ALGS:
        raise ConfigError(f"unknown alg {alg!r}; choose one of {', '.join(ALGS)}")
    if temperature < 0 or alg_temp < 0:
        raise ConfigError("temperature and alg_temp must be >= 0")
    if not 0.0 < top_p <= 1.0:
        raise ConfigError(f"top_p must be in (0, 1], got {top_p}")
    needs_rng = temperature > 0 or alg == "random" or alg_temp > 0
    if needs_rng and generator is None:
        raise ConfigError(
            "this sampling setting is random: pass generator=torch.Generator(device).manual_seed(seed)"
        )
