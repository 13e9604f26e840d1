"""A scripted tool-calling chat model for offline examples, tests and benchmarks.

``ScriptedChatModel`` is a real LangChain ``BaseChatModel``: it supports ``bind_tools`` (so
``create_agent`` accepts it), sync and async generation, and reports ``usage_metadata``. Its
behaviour comes from a *policy*: a plain function from (system prompt, messages, bound tool names)
to the next ``AIMessage`` — a tool call or the final answer. Policies are deterministic functions of
the conversation, so a thousand concurrent conversations replay exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

Policy = Callable[[str, Sequence[BaseMessage], Sequence[str]], AIMessage]
"""(system prompt text, conversation without the system message, bound tool names) -> reply."""


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


def _message_text(m: BaseMessage) -> str:
    return m.content if isinstance(m.content, str) else str(m.content)


class ScriptedChatModel(BaseChatModel):
    """A chat model driven by a ``policy`` function; optional fixed ``latency_s`` per call."""

    policy: Policy
    latency_s: float = 0.0
    tool_names: tuple[str, ...] = ()

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Remember the tool names (the policy may use them); ``tool_choice`` etc. are accepted."""
        names = tuple(convert_to_openai_tool(t)["function"]["name"] for t in tools)
        return self.model_copy(update={"tool_names": names})

    def _reply(self, messages: list[BaseMessage]) -> ChatResult:
        system = "\n".join(_message_text(m) for m in messages if isinstance(m, SystemMessage))
        convo = [m for m in messages if not isinstance(m, SystemMessage)]
        msg = self.policy(system, convo, self.tool_names)
        n_in = sum(_approx_tokens(_message_text(m)) for m in messages)
        n_out = _approx_tokens(_message_text(msg) + "".join(str(c["args"]) for c in msg.tool_calls))
        msg = msg.model_copy(
            update={
                "usage_metadata": {"input_tokens": n_in, "output_tokens": n_out, "total_tokens": n_in + n_out}
            }
        )
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            time.sleep(self.latency_s)
        return self._reply(messages)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self._reply(messages)


def echo_policy(system: str, messages: Sequence[BaseMessage], tools: Sequence[str]) -> AIMessage:
    """The simplest policy: answer immediately, quoting the system prompt's first line."""
    first = system.splitlines()[0] if system else ""
    return AIMessage(content=f"[{first}] ok")
