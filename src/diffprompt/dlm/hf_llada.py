"""LLaDA on transformers' native ``LlamaForCausalLM``: config translation, weight renames, fp32 RoPE.

LLaDA checkpoints use OLMo-style config keys and weight names. The architecture is a Llama block
without causal masking, so the native class reproduces the original logits once the weights are
renamed (:data:`LLADA_KEY_MAPPING`) and attention is made bidirectional. The original computes RoPE
in float32 even when the weights are bf16; :func:`use_fp32_rope` does the same on a loaded model.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from transformers import LlamaConfig
from transformers.models.llama import modeling_llama

from diffprompt.errors import ModelError

# Anchored regexes (source -> target), applied by ``from_pretrained(key_mapping=...)``. The block-level
# ``ff_out`` must not be confused with the top-level ``model.transformer.ff_out`` (the LM head).
LLADA_KEY_MAPPING: dict[str, str] = {
    r"^model\.transformer\.wte\.": "model.embed_tokens.",
    r"^model\.transformer\.ln_f\.": "model.norm.",
    r"^model\.transformer\.ff_out\.": "lm_head.",
    r"^model\.transformer\.blocks\.(\d+)\.q_proj\.": r"model.layers.\1.self_attn.q_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.k_proj\.": r"model.layers.\1.self_attn.k_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.v_proj\.": r"model.layers.\1.self_attn.v_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_out\.": r"model.layers.\1.self_attn.o_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_proj\.": r"model.layers.\1.mlp.gate_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.up_proj\.": r"model.layers.\1.mlp.up_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_out\.": r"model.layers.\1.mlp.down_proj.",
    r"^model\.transformer\.blocks\.(\d+)\.attn_norm\.": r"model.layers.\1.input_layernorm.",
    r"^model\.transformer\.blocks\.(\d+)\.ff_norm\.": r"model.layers.\1.post_attention_layernorm.",
}

_REQUIRED = ("d_model", "n_layers", "n_heads")


def llada_llama_config(raw: dict[str, Any]) -> LlamaConfig:
    """Translate a LLaDA (OLMo-style) ``config.json`` dict into a bidirectional ``LlamaConfig``."""
    missing = [k for k in _REQUIRED if k not in raw]
    if missing:
        raise ModelError(f"LLaDA config.json lacks {', '.join(missing)}; is this a LLaDA checkpoint?")
    unsupported = {
        k: raw[k]
        for k, ok in (("alibi", False), ("include_bias", False), ("weight_tying", False), ("rope", True))
        if k in raw and bool(raw[k]) != ok
    }
    if raw.get("block_type", "llama") != "llama" or raw.get("activation_type", "silu") != "silu":
        unsupported |= {"block_type": raw.get("block_type"), "activation_type": raw.get("activation_type")}
    if raw.get("layer_norm_type", "rms") != "rms":
        unsupported["layer_norm_type"] = raw["layer_norm_type"]
    if unsupported:
        raise ModelError(
            f"LLaDA config variant not supported natively ({unsupported}); load with trust_remote_code=True"
        )
    d_model, n_heads = int(raw["d_model"]), int(raw["n_heads"])
    mlp = raw.get("mlp_hidden_size") or int(raw.get("mlp_ratio", 4) * d_model)
    cfg = LlamaConfig(
        vocab_size=int(raw.get("embedding_size") or raw["vocab_size"]),
        hidden_size=d_model,
        intermediate_size=int(mlp),
        num_hidden_layers=int(raw["n_layers"]),
        num_attention_heads=n_heads,
        num_key_value_heads=int(raw.get("n_kv_heads") or n_heads),
        hidden_act="silu",
        max_position_embeddings=int(raw.get("max_sequence_length", 4096)),
        rms_norm_eps=float(raw.get("rms_norm_eps", 1e-5)),
        rope_parameters={"rope_type": "default", "rope_theta": float(raw.get("rope_theta", 10000.0))},
        attention_bias=bool(raw.get("include_qkv_bias", False)),
        mlp_bias=False,
        tie_word_embeddings=False,
        pad_token_id=raw.get("pad_token_id"),
        eos_token_id=raw.get("eos_token_id"),
        bos_token_id=raw.get("bos_token_id"),
    )
    cfg.is_causal = False
    return cfg


class _Fp32Rotary(modeling_llama.LlamaRotaryEmbedding):
    """Returns cos/sin in float32 whatever the activation dtype (the original LLaDA behaviour)."""

    @torch.no_grad()
    def forward(self, x: torch.Tensor, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return super().forward(x.float(), position_ids)


class _Fp32RopeAttention(modeling_llama.LlamaAttention):
    """Llama attention that rotates q and k in float32 and casts back, as LLaDA's RotaryEmbedding does."""

    def forward(  # type: ignore[override]
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        past_key_values: Any = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden_shape = (*hidden_states.shape[:-1], -1, self.head_dim)
        q = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, H, L, D)
        k = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        v = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        cos, sin = position_embeddings
        q32, k32 = modeling_llama.apply_rotary_pos_emb(q.float(), k.float(), cos.float(), sin.float())
        q, k = q32.to(v.dtype), k32.to(v.dtype)
        attend: Callable[..., tuple[torch.Tensor, torch.Tensor | None]] = (
            modeling_llama.ALL_ATTENTION_FUNCTIONS.get_interface(
                self.config._attn_implementation, modeling_llama.eager_attention_forward
            )
        )
        out, weights = attend(self, q, k, v, attention_mask, dropout=0.0, scaling=self.scaling, **kwargs)
        out = out.reshape(*hidden_states.shape[:-1], -1).contiguous()
        return self.o_proj(out), weights


def use_fp32_rope(model: torch.nn.Module) -> None:
    """Make a loaded Llama model compute RoPE in float32 (a no-op in effect when it runs in float32).

    Swaps the class of the rotary module and of each attention module in place (this model only;
    nothing global is patched). Parameters and buffers are untouched.
    """
    for module in model.modules():
        if type(module) is modeling_llama.LlamaRotaryEmbedding:
            module.__class__ = _Fp32Rotary
        elif type(module) is modeling_llama.LlamaAttention:
            module.__class__ = _Fp32RopeAttention
