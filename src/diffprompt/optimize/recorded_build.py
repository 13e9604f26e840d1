"""``--env recorded`` from specs: the target, the pairwise judge, the blamer and the toolkit.

Registered in ``optimize.build.ENV_PLUGINS`` as ``recorded``; ``service.run_request`` calls
``build_bundle`` with the request's model specs. The judge and the blamer share one judge model and
send nothing unredacted (``llm.RedactingClient``); the recorded cases are redacted once, so the
target never sees the recorded PII either.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diffprompt.errors import ConfigError


@dataclass(frozen=True, kw_only=True, slots=True)
class RecordedBundle:
    """What a round needs from ``--env recorded``."""

    env: Any
    blamer: Any
    seed_prompt: str = ""


def model_name(spec: str) -> str:
    """``"openai:NAME"`` or ``"NAME"`` → ``NAME`` (the judge / editor flags accept both)."""
    provider, sep, name = spec.partition(":")
    return name if sep and provider == "openai" else spec


def load_toolkit(spec: str) -> dict[str, Callable[..., Any]]:
    """``module:attr`` naming a list of LangChain tools or plain callables → ``{name: callable}``."""
    module, sep, attr = spec.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"--tools {spec!r}: use module:attr (a list of LangChain tools or callables)")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"--tools {spec!r}: cannot load it ({type(exc).__name__}: {exc})") from None
    items = obj() if callable(obj) and not isinstance(obj, list | tuple) and not hasattr(obj, "invoke") else obj
    if not isinstance(items, list | tuple):
        items = [items]
    out: dict[str, Callable[..., Any]] = {}
    for t in items:
        if hasattr(t, "invoke") and hasattr(t, "name"):
            out[str(t.name)] = lambda _t=t, **kw: _t.invoke(kw)
        elif callable(t):
            out[t.__name__] = t
        else:
            raise ConfigError(f"--tools {spec!r}: {t!r} is neither a LangChain tool nor a callable")
    return out


def toolkit_schemas(spec: str) -> list[dict[str, Any]]:
    """OpenAI tool schemas of a ``module:attr`` toolkit (empty when it holds only plain callables)."""
    from langchain_core.utils.function_calling import convert_to_openai_tool

    module, _, attr = spec.partition(":")
    obj = getattr(importlib.import_module(module), attr)
    items = obj if isinstance(obj, list | tuple) else [obj]
    return [convert_to_openai_tool(t) for t in items]


def build_bundle(
    spec: str,
    *,
    model: str = "sim",
    base_url: str | None = None,
    api_key: str | None = None,
    meter: Any = None,
    judge: str | None = None,
    protected: Sequence[str] = (),
    tools: str | None = None,
    max_steps: int | None = None,
    model_settings: Mapping[str, Any] | None = None,
    **_: Any,
) -> RecordedBundle:
    """``RecordedReplay`` against ``model`` (``openai:NAME``) judged by ``judge``; raises ``ConfigError``."""
    from diffprompt.llm import ChatClient, ModelSettings, RedactingClient, parse_model_spec
    from diffprompt.optimize.attribution import JudgeBlamer
    from diffprompt.optimize.judge_pairwise import PairwiseJudge
    from diffprompt.optimize.replay_counterfactual import OpenAIToolChat
    from diffprompt.optimize.replay_recorded import RecordedReplay
    from diffprompt.redact import default_redactor

    if spec != "recorded":
        raise ConfigError(f"unknown --env {spec!r}: the recorded-traffic env is spelled 'recorded'")
    settings = ModelSettings.from_dict(model_settings)
    chat: Any
    if model.startswith("gguf:"):  # in-process real target (transformers), no server
        from diffprompt.gguf_model import load_gguf_chat

        chat = load_gguf_chat(model[5:], max_tokens=settings.max_tokens, meter=meter)
    else:
        ms = parse_model_spec(model)
        if ms.provider != "openai":
            raise ConfigError(
                "--env recorded replays your conversations against your agent's model: pass --model openai:NAME "
                "(OpenAI, vLLM, Ollama, llama.cpp's server; --base-url for a local one) or gguf:PATH (in-process)"
            )
        chat = OpenAIToolChat(ms.name, base_url=base_url, api_key=api_key, meter=meter, settings=settings)
    if not judge or judge == "oracle":
        raise ConfigError(
            "--env recorded scores replays with an LLM judge: pass --judge openai:NAME (it may be the same "
            "model as --model)"
        )
    redactor = default_redactor()
    judge_client = RedactingClient(
        ChatClient(model_name(judge), base_url=base_url, api_key=api_key, meter=meter, settings=settings), redactor
    )
    live = load_toolkit(tools) if tools else None
    schemas = toolkit_schemas(tools) if tools else []
    env = RecordedReplay(
        chat,
        PairwiseJudge(judge_client, max_tokens=min(settings.max_tokens, 256)),
        tools=schemas,
        live_tools=live,
        max_steps=max_steps or 8,
        redactor=redactor,
    )
    return RecordedBundle(env=env, blamer=JudgeBlamer(judge_client, protected=protected, structured=True))
