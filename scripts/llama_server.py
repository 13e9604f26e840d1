"""llama-cpp-python's OpenAI-compatible server with its tool-calling handler's token limit honoured.

``python scripts/llama_server.py ARGS`` takes the arguments of ``python -m llama_cpp.server``.

Why: llama-cpp-python 0.3.x's ``chatml-function-calling`` handler (the one that offers ``tools`` to the
model) passes ``max_tokens=None`` to every completion it makes once a request carries tools — the
"does it call a tool?" step, the arguments of each call under their JSON-schema grammar and the
follow-up — so a request's ``max_tokens`` is ignored and a small model that keeps emitting
whitespace inside the grammar generates until the context is full (minutes at 8k context), while the
server, which serves one request at a time, answers nobody else. This launcher re-registers the
handler so that each of its completions is capped at the request's ``max_tokens`` (or
``DIFFPROMPT_LLM_MAX_TOKENS``, default 512, when a request sends none). A capped tool call whose
arguments are cut short reaches the client as malformed tool-call JSON, which the project's OpenAI
path counts as a garbage reply with its reason. Servers that honour ``max_tokens`` (vLLM, Ollama,
OpenAI, llama.cpp's own ``llama-server``) need none of this.

It also makes the RAM prompt cache (``--cache true --cache_size BYTES``) count what it holds: the
stock ``LlamaRAMCache`` counts only each entry's KV state, while every entry also keeps a copy of the
logits buffer (n_batch x vocabulary floats, ~100 MB for SmolLM2), so a "2 GiB" cache of short
prompts grew the server past 16 GB of RAM. Here an entry costs its KV state plus those arrays.
"""

from __future__ import annotations

import os
from typing import Any

from llama_cpp import llama_cache, llama_chat_format

_NAME = "chatml-function-calling"
_DEFAULT_CAP = int(os.environ.get("DIFFPROMPT_LLM_MAX_TOKENS", "512"))


class _CappedLlama:
    """A ``Llama`` whose ``create_completion`` never generates more than ``cap`` tokens."""

    def __init__(self, llama: Any, cap: int) -> None:
        self._llama = llama
        self._cap = cap

    def __getattr__(self, name: str) -> Any:
        return getattr(self._llama, name)

    def create_completion(self, *args: Any, **kwargs: Any) -> Any:
        asked = kwargs.get("max_tokens")
        kwargs["max_tokens"] = self._cap if asked is None or asked <= 0 else min(asked, self._cap)
        return self._llama.create_completion(*args, **kwargs)


def _entry_bytes(state: Any) -> int:
    extra = sum(int(getattr(getattr(state, name, None), "nbytes", 0)) for name in ("scores", "input_ids"))
    return int(state.llama_state_size) + extra


def _install() -> None:
    llama_cache.LlamaRAMCache.cache_size = property(  # type: ignore[assignment]
        lambda self: sum(_entry_bytes(s) for s in self.cache_state.values())
    )
    original = llama_chat_format.get_chat_completion_handler(_NAME)

    def capped(*, llama: Any, max_tokens: int | None = None, **kwargs: Any) -> Any:
        cap = max_tokens if max_tokens is not None and max_tokens > 0 else _DEFAULT_CAP
        return original(llama=_CappedLlama(llama, cap), max_tokens=max_tokens, **kwargs)

    llama_chat_format.LlamaChatCompletionHandlerRegistry().register_chat_completion_handler(
        _NAME, capped, overwrite=True
    )


if __name__ == "__main__":
    _install()
    from llama_cpp.server.__main__ import main

    main()
