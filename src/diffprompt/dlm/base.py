"""The seam every loaded diffusion LM satisfies (HF backends and the built-in model alike)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class DLTokenizer(Protocol):
    """The tokenizer surface the layout needs (HF ``PreTrainedTokenizerBase`` satisfies it)."""

    def encode(self, text: str, add_special_tokens: bool = ...) -> list[int]: ...

    def decode(self, ids: list[int], skip_special_tokens: bool = ...) -> str: ...


@runtime_checkable
class DiffusionLM(Protocol):
    """A loaded masked-diffusion LM.

    ``logits(input_ids, attention_mask)`` returns ``(B, L, V)`` float logits **aligned**: position i
    predicts token i (Dream's one-position shift already applied). Attention is bidirectional.
    ``attention_mask`` is ``(B, L)`` with 1 for real tokens, 0 for (left) padding.
    """

    name: str
    mask_id: int
    pad_id: int
    eos_id: int
    tokenizer: DLTokenizer
    device: torch.device
    max_length: int

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor: ...
