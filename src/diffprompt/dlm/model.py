"""The built-in masked-diffusion model: a small bidirectional transformer (pure torch) and its loader.

``MDTransformer`` maps token ids to logits over the vocabulary with full (non-causal) attention,
RoPE positions, pre-norm blocks and a tied output head; no time conditioning (as in MDLM/LLaDA, the
mask tokens themselves tell the model what is missing). ``BuiltinDLM`` wraps it into the
``DiffusionLM`` seam; ``load_builtin()`` loads the weights shipped in ``diffprompt/dlm/builtin``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from diffprompt.dlm.tokenizer import BuiltinTokenizer
from diffprompt.errors import ModelError

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True, kw_only=True, slots=True)
class MDConfig:
    """Shape of the built-in model."""

    vocab_size: int
    d_model: int = 256
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 768
    max_length: int = 512
    rope_theta: float = 10000.0
    dropout: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> MDConfig:
        return cls(**json.loads(text))


def _rope(seq_len: int, dim: int, theta: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    inv = 1.0 / (theta ** (torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim))
    t = torch.arange(seq_len, device=device, dtype=torch.float32)
    freqs = torch.outer(t, inv)  # (L, dim/2)
    return freqs.cos(), freqs.sin()


def _apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x: (B, H, L, Dh); rotate pairs (x1, x2) of the two halves
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class _Block(nn.Module):
    def __init__(self, cfg: MDConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.norm1 = nn.LayerNorm(cfg.d_model)
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model, bias=False)
        self.proj = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.norm2 = nn.LayerNorm(cfg.d_model)
        self.up = nn.Linear(cfg.d_model, 2 * cfg.d_ff, bias=False)  # SwiGLU: gate and value
        self.down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(
        self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, bias: torch.Tensor | None
    ) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (
            self.qkv(self.norm1(x)).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        )
        q, k = _apply_rope(q, cos, sin), _apply_rope(k, cos, sin)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # bidirectional: no causal mask
        x = x + self.drop(self.proj(a.transpose(1, 2).reshape(b, n, d)))
        g, u = self.up(self.norm2(x)).chunk(2, dim=-1)
        return x + self.drop(self.down(F.silu(g) * u))


class MDTransformer(nn.Module):
    """Bidirectional transformer: ``(B, L)`` ids (+ optional ``(B, L)`` key mask) → ``(B, L, V)`` logits."""

    def __init__(self, cfg: MDConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.blocks = nn.ModuleList(_Block(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.d_model)
        self.apply(self._init)
        for blk in self.blocks:  # scaled residual init (GPT-2 style)
            assert isinstance(blk, _Block)
            nn.init.normal_(blk.proj.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))
            nn.init.normal_(blk.down.weight, std=0.02 / math.sqrt(2 * cfg.n_layers))

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear | nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        n = ids.shape[1]
        if n > self.cfg.max_length:
            raise ModelError(
                f"sequence of {n} tokens exceeds max_length {self.cfg.max_length}; truncate the input"
            )
        x = self.embed(ids)
        cos, sin = _rope(n, self.cfg.d_model // self.cfg.n_heads, self.cfg.rope_theta, ids.device)
        bias = None
        if attention_mask is not None:
            keep = attention_mask.bool()[:, None, None, :]  # (B, 1, 1, L): keys that may be attended
            bias = torch.zeros(keep.shape, dtype=x.dtype, device=x.device).masked_fill(~keep, float("-inf"))
        for blk in self.blocks:
            x = blk(x, cos, sin, bias)
        return self.norm(x) @ self.embed.weight.T  # tied head


class BuiltinDLM:
    """The built-in model behind the ``DiffusionLM`` seam.

    ``logits`` never proposes [PAD], [MASK], [BOS], [SEP] or [UNK] (their logits are ``-inf``);
    [EOS] stays allowed so a span can shrink. Runs under ``torch.inference_mode``.
    """

    def __init__(self, model: MDTransformer, tokenizer: BuiltinTokenizer, *, name: str = "builtin") -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.mask_id = tokenizer.mask_id
        self.pad_id = tokenizer.pad_id
        self.eos_id = tokenizer.eos_id
        self.max_length = model.cfg.max_length
        self.device = next(model.parameters()).device
        banned = [tokenizer.pad_id, tokenizer.mask_id, tokenizer.bos_id, tokenizer.sep_id, tokenizer.unk_id]
        self._banned = torch.tensor(banned, dtype=torch.long, device=self.device)

    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        with torch.inference_mode():
            out = self.model(
                input_ids.to(self.device), None if attention_mask is None else attention_mask.to(self.device)
            )
            out[..., self._banned] = float("-inf")
        return out


def save_model(model: MDTransformer, tokenizer: BuiltinTokenizer, out_dir: str | Path) -> None:
    """Write ``config.json``, ``model.safetensors`` (float16: a small package) and ``tokenizer.json``."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(model.cfg.to_json() + "\n")
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out / WEIGHTS_FILE))
    tokenizer.save(out / TOKENIZER_FILE)


def load_builtin(device: str | torch.device = "cpu", *, path: str | Path | None = None) -> BuiltinDLM:
    """Load the built-in model shipped with the package (or a directory written by ``dlm train``).

    No download. Weights are stored in float16 and run in float32. Raises ``ModelError`` when files
    are missing.
    """
    from safetensors.torch import load_file

    d = Path(path) if path is not None else BUILTIN_DIR
    missing = [f for f in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE) if not (d / f).is_file()]
    if missing:
        raise ModelError(f"built-in DLM files {missing} missing in {d}; run `diffprompt dlm train --out {d}`")
    cfg = MDConfig.from_json((d / CONFIG_FILE).read_text())
    tok = BuiltinTokenizer.load(d / TOKENIZER_FILE)
    model = MDTransformer(cfg)
    state = {k: v.float() for k, v in load_file(str(d / WEIGHTS_FILE)).items()}
    model.load_state_dict(state)
    model.to(torch.device(device))
    return BuiltinDLM(model, tok, name=f"builtin:{d.name}")
