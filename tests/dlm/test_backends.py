"""Tiny random checkpoints in Dream / LLaDA / A2D Hub layouts: load, bidirectionality, shift, padding.

The reference forward is an independent plain-torch transformer (RMSNorm, RoPE, GQA attention with a
padding mask, SwiGLU) over the checkpoint's own tensors, so a wrong rename, config translation,
causal mask or shift shows up as a logit mismatch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from diffprompt.dlm import infill, load_dlm
from diffprompt.dlm.backends import HFDiffusionLM, detect_family
from diffprompt.dlm.base import DiffusionLM
from diffprompt.errors import ModelError

V, H, LAYERS, HEADS, KV, FF = 96, 64, 2, 4, 2, 128
MASK, PAD = 95, 94


def _std_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import (
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    root = tmp_path_factory.mktemp("dlm_ckpts")
    torch.manual_seed(0)
    common = dict(
        vocab_size=V,
        hidden_size=H,
        intermediate_size=FF,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    out: dict[str, Path] = {}

    # Dream: Qwen2 weights under their own names, config with model_type "Dream"
    dream = root / "dream"
    Qwen2ForCausalLM(Qwen2Config(**common, rms_norm_eps=1e-6, rope_theta=10000.0)).save_pretrained(dream)
    cfg = json.loads((dream / "config.json").read_text())
    cfg.update(
        model_type="Dream",
        architectures=["DreamModel"],
        mask_token_id=MASK,
        pad_token_id=PAD,
        eos_token_id=PAD,
        bos_token_id=PAD,
    )
    (dream / "config.json").write_text(json.dumps(cfg))
    out["dream"] = dream

    # LLaDA: Llama weights renamed to OLMo names, sharded in two files, OLMo-style config
    llada = root / "llada"
    llada.mkdir()
    src = _std_weights(LlamaForCausalLM(LlamaConfig(**common, rms_norm_eps=1e-5)))
    renamed = {_to_llada_name(k): v for k, v in src.items()}
    keys = sorted(renamed)
    shards = {
        "model-00001-of-00002.safetensors": keys[: len(keys) // 2],
        "model-00002-of-00002.safetensors": keys[len(keys) // 2 :],
    }
    for fname, ks in shards.items():
        save_file({k: renamed[k] for k in ks}, str(llada / fname), metadata={"format": "pt"})
    index = {"metadata": {}, "weight_map": {k: f for f, ks in shards.items() for k in ks}}
    (llada / "model.safetensors.index.json").write_text(json.dumps(index))
    (llada / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llada",
                "architectures": ["LLaDAModelLM"],
                "d_model": H,
                "n_layers": LAYERS,
                "n_heads": HEADS,
                "n_kv_heads": KV,
                "mlp_hidden_size": FF,
                "mlp_ratio": 2,
                "vocab_size": V,
                "embedding_size": V,
                "rope_theta": 500000.0,
                "rms_norm_eps": 1e-5,
                "include_bias": False,
                "include_qkv_bias": False,
                "weight_tying": False,
                "block_type": "llama",
                "activation_type": "silu",
                "layer_norm_type": "rms",
                "rope": True,
                "alibi": False,
                "max_sequence_length": 256,
                "mask_token_id": MASK,
                "eos_token_id": PAD,
                "pad_token_id": PAD,
            }
        )
    )
    out["llada"] = llada

    # A2D: a plain Qwen3 checkpoint marked as masked diffusion, with a tokenizer (pad from tokenizer)
    a2d = root / "a2d"
    Qwen3ForCausalLM(Qwen3Config(**common, head_dim=H // HEADS)).save_pretrained(a2d)
    cfg = json.loads((a2d / "config.json").read_text())
    cfg.pop("pad_token_id", None)
    cfg.update(diffusion={"mask_token_id": MASK}, eos_token_id=PAD)
    (a2d / "config.json").write_text(json.dumps(cfg))
    _save_tokenizer(a2d)
    out["a2d"] = a2d
    return out


def _to_llada_name(k: str) -> str:
    top = {
        "model.embed_tokens.weight": "model.transformer.wte.weight",
        "model.norm.weight": "model.transformer.ln_f.weight",
        "lm_head.weight": "model.transformer.ff_out.weight",
    }
    if k in top:
        return top[k]
    parts = k.split(".")  # model.layers.N.<sub>.<name>.weight
    n, rest = parts[2], ".".join(parts[3:])
    sub = {
        "self_attn.q_proj": "q_proj",
        "self_attn.k_proj": "k_proj",
        "self_attn.v_proj": "v_proj",
        "self_attn.o_proj": "attn_out",
        "mlp.gate_proj": "ff_proj",
        "mlp.up_proj": "up_proj",
        "mlp.down_proj": "ff_out",
        "input_layernorm": "attn_norm",
        "post_attention_layernorm": "ff_norm",
    }
    for a, b in sub.items():
        if rest.startswith(a + "."):
            return f"model.transformer.blocks.{n}.{b}{rest[len(a) :]}"
    raise AssertionError(k)


def _save_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(V - 2)} | {"<pad>": PAD, "<mask>": MASK}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", mask_token="<mask>", eos_token="<pad>"
    ).save_pretrained(path)


# ---------------------------------------------------------------- independent reference forward


def _rms(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def _rope(x: torch.Tensor, pos: torch.Tensor, theta: float) -> torch.Tensor:
    d = x.shape[-1]
    inv = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)
    ang = pos[:, None, :, None].double() * inv  # (B, 1, L, d/2)
    cos, sin = torch.cos(ang).float(), torch.sin(ang).float()
    x1, x2 = x[..., : d // 2], x[..., d // 2 :]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def reference_logits(
    w: dict[str, torch.Tensor],
    ids: torch.Tensor,
    am: torch.Tensor,
    *,
    theta: float,
    eps: float,
    qk_norm: bool = False,
) -> torch.Tensor:
    """Bidirectional pre-norm transformer; positions count real tokens only (left padding)."""
    b, n = ids.shape
    d = H // HEADS
    pos = (am.cumsum(-1) - 1).clamp_min(0)
    bias = torch.zeros(b, 1, 1, n).masked_fill(am[:, None, None, :] == 0, -math.inf)
    x = w["model.embed_tokens.weight"][ids]

    def lin(name: str, t: torch.Tensor) -> torch.Tensor:
        y = t @ w[name + ".weight"].T
        return y + w[name + ".bias"] if name + ".bias" in w else y

    for i in range(LAYERS):
        p = f"model.layers.{i}."
        h = _rms(x, w[p + "input_layernorm.weight"], eps)
        q = lin(p + "self_attn.q_proj", h).view(b, n, HEADS, d).transpose(1, 2)
        k = lin(p + "self_attn.k_proj", h).view(b, n, KV, d).transpose(1, 2)
        v = lin(p + "self_attn.v_proj", h).view(b, n, KV, d).transpose(1, 2)
        if qk_norm:
            q, k = (
                _rms(q, w[p + "self_attn.q_norm.weight"], eps),
                _rms(k, w[p + "self_attn.k_norm.weight"], eps),
            )
        q, k = _rope(q, pos, theta), _rope(k, pos, theta)
        k, v = k.repeat_interleave(HEADS // KV, 1), v.repeat_interleave(HEADS // KV, 1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d) + bias, dim=-1) @ v
        x = x + lin(p + "self_attn.o_proj", att.transpose(1, 2).reshape(b, n, H))
        h = _rms(x, w[p + "post_attention_layernorm.weight"], eps)
        x = x + lin(
            p + "mlp.down_proj",
            torch.nn.functional.silu(lin(p + "mlp.gate_proj", h)) * lin(p + "mlp.up_proj", h),
        )
    return lin("lm_head", _rms(x, w["model.norm.weight"], eps))


def _checkpoint_weights(path: Path, family: str) -> dict[str, torch.Tensor]:
    raw: dict[str, torch.Tensor] = {}
    for f in sorted(path.glob("*.safetensors")):
        raw |= load_file(str(f))
    if family != "llada":
        return raw
    inverse = {_to_llada_name(k): k for k in _std_names()}
    return {inverse[k]: v for k, v in raw.items()}  # manual, table-driven un-renaming


def _std_names() -> list[str]:
    names = ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]
    for i in range(LAYERS):
        for s in (
            "self_attn.q_proj",
            "self_attn.k_proj",
            "self_attn.v_proj",
            "self_attn.o_proj",
            "mlp.gate_proj",
            "mlp.up_proj",
            "mlp.down_proj",
            "input_layernorm",
            "post_attention_layernorm",
        ):
            names.append(f"model.layers.{i}.{s}.weight")
    return names


REF = {
    "dream": dict(theta=10000.0, eps=1e-6),
    "llada": dict(theta=500000.0, eps=1e-5),
    "a2d": dict(theta=10000.0, eps=1e-6, qk_norm=True),
}

# ---------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def models(ckpts: dict[str, Path]) -> dict[str, HFDiffusionLM]:
    return {fam: load_dlm(path) for fam, path in ckpts.items()}


@pytest.mark.parametrize("family", ["dream", "llada", "a2d"])
def test_loads_with_family_ids_and_protocol(models, family):
    m = models[family]
    assert isinstance(m, DiffusionLM)
    assert m.family == family and m.mask_id == MASK and m.eos_id == PAD and m.pad_id == PAD
    assert m.device == torch.device("cpu") and m.max_length == 256
    assert m.spec.shift_logits == (family == "dream")


@pytest.mark.parametrize("family", ["dream", "llada", "a2d"])
def test_matches_independent_reference_with_and_without_left_padding(models, ckpts, family):
    w = _checkpoint_weights(ckpts[family], family)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V - 2, (2, 12), generator=g)
    ids[0, 4] = MASK
    am = torch.ones_like(ids)
    ref = reference_logits(w, ids, am, **REF[family])
    if family == "dream":
        ref = torch.cat([ref[:, :1], ref[:, :-1]], dim=1)
    got = models[family].logits(ids)
    assert (got - ref).abs().max().item() < 1e-4
    # left-pad row 1 by 3: the real tokens' logits are unchanged
    padded = torch.cat([torch.full((2, 3), PAD), ids], dim=1)
    pam = torch.cat([torch.zeros(2, 3, dtype=torch.long), am], dim=1)
    pam[0, :3] = 1  # row 0: 3 real extra tokens in front instead
    got_p = models[family].logits(padded, pam)
    assert (got_p[1, 3:] - got[1]).abs().max().item() < 1e-4
    ref_p = reference_logits(w, padded, pam, **REF[family])
    if family == "dream":
        ref_p = torch.cat([ref_p[:, :1], ref_p[:, :-1]], dim=1)
    assert (got_p[0] - ref_p[0]).abs().max().item() < 1e-4


@pytest.mark.parametrize("family", ["dream", "llada", "a2d"])
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_bidirectional_late_token_changes_early_logits(ckpts, family, attn):
    m = load_dlm(ckpts[family], attn_implementation=attn)
    ids = torch.randint(0, V - 2, (1, 10), generator=torch.Generator().manual_seed(2))
    other = ids.clone()
    other[0, -1] = (ids[0, -1] + 7) % (V - 2)
    for am in (None, torch.ones_like(ids)):
        a, b = m.logits(ids, am), m.logits(other, am)
        assert (a[0, 0] - b[0, 0]).abs().max().item() > 1e-5  # position 0 sees the last token


def test_shift_only_for_dream(ckpts):
    from transformers import Qwen2ForCausalLM

    m = load_dlm(ckpts["dream"])
    raw = Qwen2ForCausalLM.from_pretrained(ckpts["dream"], config=m.spec.config)
    raw.config.is_causal = False
    ids = torch.randint(0, V - 2, (1, 8), generator=torch.Generator().manual_seed(3))
    unshifted = raw(input_ids=ids).logits
    got = m.logits(ids)
    assert torch.allclose(got[:, 1:], unshifted[:, :-1], atol=1e-5)
    assert torch.allclose(got[:, 0], unshifted[:, 0], atol=1e-5)


def test_llada_bf16_uses_fp32_rope(ckpts):
    from diffprompt.dlm.hf_llada import _Fp32RopeAttention

    m = load_dlm(ckpts["llada"], dtype=torch.bfloat16)
    assert any(isinstance(mod, _Fp32RopeAttention) for mod in m.model.modules())
    assert all(b.dtype == torch.float32 for n, b in m.model.named_buffers() if n.endswith("inv_freq"))
    ids = torch.randint(0, V - 2, (1, 12), generator=torch.Generator().manual_seed(4))
    ref = reference_logits(
        _checkpoint_weights(ckpts["llada"], "llada"), ids, torch.ones_like(ids), **REF["llada"]
    )
    assert (m.logits(ids).float() - ref).abs().max().item() < 0.1  # bf16 weights, close to fp32


@pytest.mark.parametrize("family", ["dream", "llada", "a2d"])
def test_sampler_end_to_end(models, family):
    m = models[family]
    ids = torch.randint(0, V - 2, (2, 16), generator=torch.Generator().manual_seed(5))
    am = torch.ones_like(ids)
    ids[1, :4], am[1, :4] = PAD, 0  # left padding in row 1
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[0, 6:12] = True
    mask[1, 8:10] = True
    ids[mask] = m.mask_id
    res = infill(
        m, ids, mask, steps=4, attention_mask=am, temperature=0.7, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(res.ids[~mask], ids[~mask]) and not bool((res.ids == m.mask_id).any())
    assert res.forwards == 4


def test_tokenizer_loaded_when_present(models):
    assert models["a2d"].tokenizer.encode("w1 w2", add_special_tokens=False) == [1, 2]
    with pytest.raises(ModelError, match="tokenizer"):
        models["dream"].tokenizer.encode("hello")


def test_errors(tmp_path, ckpts):
    with pytest.raises(ModelError, match=r"config\.json"):
        load_dlm(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ModelError, match="unknown DLM family"):
        load_dlm(tmp_path)
    (tmp_path / "config.json").write_text((ckpts["dream"] / "config.json").read_text())
    with pytest.raises(ModelError, match="safetensors"):
        load_dlm(tmp_path)
    with pytest.raises(ModelError, match="not a directory"):
        load_dlm(tmp_path / "nope" / "deeper")
    # a LLaDA shard missing: weights missing is an error, never a silent random init
    broken = tmp_path / "llada_broken"
    broken.mkdir()
    for f in ckpts["llada"].iterdir():
        if f.name != "model-00002-of-00002.safetensors":
            (broken / f.name).write_bytes(f.read_bytes())
    index = json.loads((broken / "model.safetensors.index.json").read_text())
    index["weight_map"] = {k: v for k, v in index["weight_map"].items() if "00001" in v}
    (broken / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(ModelError, match="missing"):
        load_dlm(broken)


def test_detect_family_marker_and_unknown():
    spec = detect_family(
        {
            "model_type": "qwen3",
            "hidden_size": 64,
            "num_attention_heads": 4,
            "diffusion": {"mask_token_id": 7, "shift_logits": True},
        }
    )
    assert spec.family == "a2d" and spec.mask_id == 7 and spec.shift_logits and spec.config.is_causal is False
    with pytest.raises(ModelError, match="unknown DLM family"):
        detect_family({"model_type": "qwen3"})  # unmarked causal LM
    with pytest.raises(ModelError, match="trust_remote_code"):
        detect_family({"model_type": "llada", "d_model": 8, "n_layers": 1, "n_heads": 1, "alibi": True})
