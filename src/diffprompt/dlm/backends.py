"""Load Dream, LLaDA and A2D checkpoints onto transformers' native classes: ``load_dlm(spec)``.

Family detection reads ``config.json`` once, here, and resolves everything the forward needs
(class, config, key renames, logit shift, special ids); the loaded :class:`HFDiffusionLM` then runs
one code path for all families.

Families:

- ``model_type: "Dream"`` -> ``Qwen2ForCausalLM`` (same weight names), bidirectional, logits shifted
  right by one (Dream's position i-1 predicts token i).
- ``model_type: "llada"`` -> ``LlamaForCausalLM`` with renamed weights (:mod:`.hf_llada`), no shift,
  RoPE in float32.
- A2D: a plain ``qwen3`` / ``qwen2`` / ``llama`` / ``mistral`` config (any model type transformers knows
  as a causal LM) **marked as masked diffusion** by the key::

      "diffusion": {"mask_token_id": <int>, "shift_logits": false}

  (``shift_logits`` defaults to false; set true for models trained Dream-style.) Attention is made
  bidirectional, as A2D conversion trains it.

Special ids come from ``config.json`` first, then the tokenizer, then :data:`SPECIAL_IDS`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import torch

from diffprompt.dlm.base import DLTokenizer
from diffprompt.errors import ModelError

Family = Literal["dream", "llada", "a2d"]
DIFFUSION_MARKER = "diffusion"


@dataclass(frozen=True, kw_only=True)
class SpecialIds:
    """A family's special token ids, used when neither config.json nor the tokenizer names them."""

    mask: int | None
    pad: int | None
    eos: int | None


SPECIAL_IDS: dict[Family, SpecialIds] = {
    "dream": SpecialIds(mask=151666, pad=151643, eos=151643),
    "llada": SpecialIds(mask=126336, pad=126081, eos=126081),
    "a2d": SpecialIds(mask=None, pad=None, eos=None),
}

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken"]


@dataclass(frozen=True, kw_only=True)
class FamilySpec:
    """What a ``config.json`` resolved to: how to build and drive the native model."""

    family: Family
    shift_logits: bool
    config: Any  # a transformers PretrainedConfig with is_causal=False
    model_class: Any
    key_mapping: dict[str, str] | None = None
    fp32_rope: bool = False
    mask_id: int | None = None
    pad_id: int | None = None
    eos_id: int | None = None
    max_length: int = 4096
    extra: dict[str, Any] = field(default_factory=dict)


def _first_id(value: Any) -> int | None:
    if isinstance(value, list):
        value = value[0] if value else None
    return int(value) if isinstance(value, int) else None


def detect_family(raw: dict[str, Any]) -> FamilySpec:
    """Resolve a ``config.json`` dict to a :class:`FamilySpec` (no weights are read).

    Raises:
        ModelError: the model type is neither Dream, LLaDA nor a marked masked-diffusion config.

    """
    model_type = str(raw.get("model_type", ""))
    ids = {k: _first_id(raw.get(f"{k}_token_id")) for k in ("mask", "pad", "eos")}
    if model_type.lower() == "dream":
        from transformers import Qwen2Config, Qwen2ForCausalLM

        keep = {k: v for k, v in raw.items() if k not in ("model_type", "architectures", "auto_map")}
        dream_cfg = Qwen2Config(**keep)
        dream_cfg.is_causal = False
        return FamilySpec(family="dream", shift_logits=True, config=dream_cfg, model_class=Qwen2ForCausalLM,
                          max_length=int(raw.get("max_position_embeddings", 32768)),
                          mask_id=ids["mask"], pad_id=ids["pad"], eos_id=ids["eos"])
    if model_type.lower() == "llada":
        from transformers import LlamaForCausalLM

        from diffprompt.dlm.hf_llada import LLADA_KEY_MAPPING, llada_llama_config

        return FamilySpec(family="llada", shift_logits=False, config=llada_llama_config(raw),
                          model_class=LlamaForCausalLM, key_mapping=LLADA_KEY_MAPPING, fp32_rope=True,
                          max_length=int(raw.get("max_sequence_length", 4096)),
                          mask_id=ids["mask"], pad_id=ids["pad"], eos_id=ids["eos"])
    marker = raw.get(DIFFUSION_MARKER)
    if isinstance(marker, dict) and "mask_token_id" in marker:
        from transformers import AutoConfig, AutoModelForCausalLM

        keep = {k: v for k, v in raw.items() if k not in ("model_type", "architectures", "auto_map")}
        try:
            cfg = AutoConfig.for_model(model_type, **keep)
            model_class = AutoModelForCausalLM._model_mapping[type(cfg)]
        except (ValueError, KeyError) as exc:
            raise ModelError(
                f"config marked as masked diffusion has model_type {model_type!r}, which transformers "
                "has no causal-LM class for; use a qwen3/qwen2/llama-type config or trust_remote_code=True"
            ) from exc
        cfg.is_causal = False
        return FamilySpec(family="a2d", shift_logits=bool(marker.get("shift_logits", False)), config=cfg,
                          model_class=model_class, mask_id=int(marker["mask_token_id"]),
                          pad_id=ids["pad"], eos_id=ids["eos"],
                          max_length=int(raw.get("max_position_embeddings", 4096)))
    raise ModelError(
        f"unknown DLM family: config.json model_type is {model_type!r}. Supported: 'Dream', 'llada', or a "
        f"qwen3/qwen2/llama config marked with \"{DIFFUSION_MARKER}\": {{\"mask_token_id\": <id>}}"
    )


class _MissingTokenizer:
    """Stands in when a checkpoint ships no tokenizer files; any use says what to do."""

    def __init__(self, where: str) -> None:
        self.where = where

    def _fail(self) -> ModelError:
        return ModelError(f"{self.where} has no tokenizer files (tokenizer.json / tokenizer_config.json); "
                          "copy the model's tokenizer files into it")

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        raise self._fail()

    def decode(self, ids: list[int], skip_special_tokens: bool = False) -> str:
        raise self._fail()


class HFDiffusionLM:
    """A native transformers model driven as a bidirectional masked-diffusion LM (see ``DiffusionLM``).

    ``logits`` uses position ids ``cumsum(attention_mask) - 1`` (pads at 1) so left padding does not
    move the real tokens, and applies the family's logit shift so position i predicts token i.
    """

    def __init__(self, *, model: torch.nn.Module, spec: FamilySpec, tokenizer: DLTokenizer, name: str,
                 mask_id: int, pad_id: int, eos_id: int, native: bool = True) -> None:
        self.model: Any = model
        self.native = native
        self.spec = spec
        self.tokenizer = tokenizer
        self.name = name
        self.mask_id = mask_id
        self.pad_id = pad_id
        self.eos_id = eos_id
        self.max_length = spec.max_length
        self.family: Family = spec.family
        self.device = next(model.parameters()).device
        # Dream is a Qwen2ForCausalLM: a plain linear head, so the shift can move to the hidden states
        self._shift_hidden = native and spec.family == "dream"

    @torch.no_grad()
    def logits(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, L)`` ids (+ optional ``(B, L)`` 0/1 mask) -> ``(B, L, V)`` aligned logits."""
        input_ids = input_ids.to(self.device)
        position_ids = None
        if attention_mask is not None:
            attention_mask = attention_mask.to(self.device).long()
            if bool((attention_mask == 0).any()):
                position_ids = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 1)
            else:
                attention_mask = None  # no padding: let the kernels skip the mask
        pad = attention_mask if position_ids is not None else None
        if self._shift_hidden:
            # shift the (B, L, H) hidden states before the LM head: same logits as shifting (B, L, V),
            # without copying the vocabulary-sized tensor
            hidden = self.model.model(input_ids=input_ids, attention_mask=attention_mask,
                                      position_ids=position_ids, use_cache=False).last_hidden_state
            return self.model.lm_head(_shift_right(hidden, pad))
        if self.native:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=False)
        else:  # remote code: its own forward signature; pass only what every DLM accepts
            out = self.model(input_ids, attention_mask=attention_mask)
        logits = out.logits  # (B, L, V)
        return _shift_right(logits, pad) if self.spec.shift_logits else logits

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Alias of :meth:`logits`, so the model is itself a sampler ``logits_fn``."""
        return self.logits(input_ids, attention_mask)

    def __repr__(self) -> str:
        return f"HFDiffusionLM({self.name!r}, family={self.family}, device={self.device})"


def _shift_right(t: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
    """``(B, L, ...)``: position i takes i-1's values; each row's first real position keeps its own."""
    shifted = torch.cat([t[:, :1], t[:, :-1]], dim=1)
    if attention_mask is not None:  # left padding: the first real token has no predecessor either
        rows = torch.arange(t.shape[0], device=t.device)
        first = attention_mask.argmax(dim=1)
        shifted[rows, first] = t[rows, first]
    return shifted


def _resolve_dir(spec: str | Path) -> Path:
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    if path.exists() or not re.fullmatch(r"[\w.-]+/[\w.-]+", str(spec)):
        raise ModelError(f"DLM checkpoint {spec!s} is not a directory (nor a Hub id like 'org/name')")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(spec), allow_patterns=_HUB_PATTERNS))
    except Exception as exc:  # offline, unknown repo, auth: all mean "cannot fetch"
        raise ModelError(f"could not download {spec} from the Hub ({type(exc).__name__}: {exc}); "
                         "download it on a connected machine and pass the local directory") from exc


def _load_tokenizer(path: Path, trust_remote_code: bool) -> DLTokenizer:
    if not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        return _MissingTokenizer(str(path))
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        tok: Any = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
        return cast(DLTokenizer, tok)
    except Exception as exc:
        # Dream names a remote tokenizer class; its tokenizer.json alone is a complete fast tokenizer
        if (path / "tokenizer.json").is_file():
            fast: Any = PreTrainedTokenizerFast(tokenizer_file=str(path / "tokenizer.json"))
            return cast(DLTokenizer, fast)
        raise ModelError(f"could not load the tokenizer in {path}: {exc}") from exc


def _tokenizer_id(tok: Any, attr: str) -> int | None:
    value = getattr(tok, attr, None)
    return value if isinstance(value, int) else None


def _pick_ids(spec: FamilySpec, tok: Any, where: str) -> tuple[int, int, int]:
    """(mask, pad, eos): config.json, then the tokenizer, then the family table; pad falls back to eos."""
    table = SPECIAL_IDS[spec.family]

    def pick(own: int | None, attr: str, default: int | None) -> int | None:
        if own is not None:
            return own
        from_tok = _tokenizer_id(tok, attr)
        return from_tok if from_tok is not None else default

    mask = pick(spec.mask_id, "mask_token_id", table.mask)
    eos = pick(spec.eos_id, "eos_token_id", table.eos)
    pad = pick(spec.pad_id, "pad_token_id", eos if eos is not None else table.pad)
    if mask is None or eos is None or pad is None:
        raise ModelError(f"{where}: cannot determine mask/eos/pad token ids; add mask_token_id and "
                         "eos_token_id to config.json")
    return mask, pad, eos


def load_dlm(spec: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype | None = None,
             trust_remote_code: bool = False, attn_implementation: str | None = None) -> HFDiffusionLM:
    """Load a masked-diffusion LM checkpoint as a :class:`~diffprompt.dlm.base.DiffusionLM`.

    Args:
        spec: a local directory laid out as on the Hub (``config.json``, ``model.safetensors`` or
            sharded safetensors with ``model.safetensors.index.json``, tokenizer files when present),
            or a Hub id (``org/name``), downloaded only when the machine can.
        device: where the weights go.
        dtype: weight dtype; default float32 on CPU, bfloat16 on CUDA. Weights are loaded directly in
            this dtype (``from_pretrained(dtype=...)``), which keeps RoPE buffers in float32.
        trust_remote_code: load the checkpoint's own modelling code (``AutoModel``) instead of the
            native classes. Off by default: that code does not run on transformers 5.
        attn_implementation: ``"sdpa"`` (default) or ``"eager"``.

    Raises:
        ModelError: no ``config.json``, unknown family, missing weights, or a failed load.

    """
    path = _resolve_dir(spec)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise ModelError(f"{path} has no config.json; point load_dlm at a checkpoint directory laid out "
                         "as on the Hugging Face Hub")
    raw = json.loads(cfg_file.read_text())
    fam = detect_family(raw)
    if not any((path / f).is_file() for f in _WEIGHT_FILES) and not any(path.glob("*.safetensors")):
        raise ModelError(f"{path} has no safetensors weights (model.safetensors or a sharded index); "
                         "convert .bin weights to safetensors or copy the weight files")
    dev = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
    tok = _load_tokenizer(path, trust_remote_code)
    mask_id, pad_id, eos_id = _pick_ids(fam, tok, str(path))
    try:
        if trust_remote_code:
            from transformers import AutoModel

            model = AutoModel.from_pretrained(str(path), trust_remote_code=True, dtype=dtype)
        else:
            kwargs: dict[str, Any] = {"config": fam.config, "dtype": dtype,
                                      "attn_implementation": attn_implementation or "sdpa"}
            if fam.key_mapping is not None:
                kwargs["key_mapping"] = fam.key_mapping
            model, info = fam.model_class.from_pretrained(str(path), output_loading_info=True, **kwargs)
            missing = [k for k in info.get("missing_keys", ()) if not k.endswith("inv_freq")]
            if missing:
                raise ModelError(f"weights missing from the checkpoint: {', '.join(sorted(missing)[:5])}"
                                 f"{' ...' if len(missing) > 5 else ''}")
    except ModelError as exc:
        raise ModelError(f"could not load {path} as {fam.family}: {exc}") from exc
    except Exception as exc:
        raise ModelError(f"could not load {path} as {fam.family}: {type(exc).__name__}: {exc}") from exc
    model.to(dev).eval()
    if not trust_remote_code:
        _make_bidirectional(model)
        if fam.fp32_rope:
            from diffprompt.dlm.hf_llada import use_fp32_rope

            use_fp32_rope(model)
    return HFDiffusionLM(model=model, spec=fam, tokenizer=tok, name=str(spec), mask_id=mask_id,
                         pad_id=pad_id, eos_id=eos_id, native=not trust_remote_code)


def _make_bidirectional(model: torch.nn.Module) -> None:
    # config.is_causal=False drives the mask builders; the module flag drives sdpa's is_causal when
    # no mask is passed (no padding), so both must say non-causal.
    cfg = getattr(model, "config", None)
    if cfg is not None:
        cfg.is_causal = False
    for module in model.modules():
        if hasattr(module, "is_causal"):
            setattr(module, "is_causal", False)  # noqa: B010


def random_dlm(raw_config: dict[str, Any], *, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32, seed: int = 0, name: str = "random") -> HFDiffusionLM:
    """A randomly initialised model of a family's shape, driven exactly as :func:`load_dlm` drives it.

    ``raw_config`` is a ``config.json`` dict (Dream, LLaDA or marked A2D). For benchmarks and tests;
    no tokenizer (using it raises ``ModelError``). Weights are created directly on ``device`` in ``dtype``.
    """
    fam = detect_family(raw_config)
    torch.manual_seed(seed)
    with torch.device(device):
        model = fam.model_class._from_config(fam.config, dtype=dtype, attn_implementation="sdpa")
    model.eval()
    _make_bidirectional(model)
    if fam.fp32_rope:
        from diffprompt.dlm.hf_llada import use_fp32_rope

        use_fp32_rope(model)
    mask_id, pad_id, eos_id = _pick_ids(fam, None, name)
    return HFDiffusionLM(model=model, spec=fam, tokenizer=_MissingTokenizer(name), name=name,
                         mask_id=mask_id, pad_id=pad_id, eos_id=eos_id)

