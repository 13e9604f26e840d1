"""``SimulatedChatModel``: the simulated target model as a LangChain chat model.

A thin adapter over :class:`tau_envs.sim.policy.SimulatedPolicy`: LangChain messages are converted to
the OpenAI chat format, the bound tools to OpenAI tool schemas, and the policy's next assistant
message comes back as an ``AIMessage`` with ``tool_calls`` and ``usage_metadata`` (token counts are
the same ``ceil(chars / 4)`` estimate the HTTP server reports). Works inside
``langchain.agents.create_agent``, sync and async.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from tau_envs.sim.policy import SimulatedPolicy
from tau_envs.tokens import completion_tokens, prompt_tokens


class SimulatedChatModel(BaseChatModel):
    """Deterministic, seeded tool-calling chat model whose rule-following depends on the system prompt."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    domain: str | None = None
    seed: int = 0
    error_rate: float = 0.0
    threshold: float | None = None
    tools: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "diffprompt-simulated"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"domain": self.domain, "seed": self.seed, "error_rate": self.error_rate}

    def _policy(self) -> SimulatedPolicy:
        kwargs: dict[str, Any] = {"seed": self.seed, "error_rate": self.error_rate, "domain": self.domain}
        if self.threshold is not None:
            kwargs["threshold"] = self.threshold
        return SimulatedPolicy(**kwargs)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """A copy of this model that sees ``tools`` (as OpenAI schemas) on every call."""
        schemas = [convert_to_openai_tool(t) for t in tools]
        return self.model_copy(update={"tools": schemas})

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        oa_messages = convert_to_openai_messages(messages)
        assert isinstance(oa_messages, list)  # a list in gives a list out
        reply = self._policy().respond(oa_messages, self.tools)
        tool_calls = [
            {
                "name": c["function"]["name"],
                "args": json.loads(c["function"]["arguments"] or "{}"),
                "id": c["id"],
                "type": "tool_call",
            }
            for c in reply.get("tool_calls") or ()
        ]
        in_tokens = prompt_tokens(oa_messages, self.tools)
        out_tokens = completion_tokens(reply)
        usage = UsageMetadata(input_tokens=in_tokens, output_tokens=out_tokens, total_tokens=in_tokens + out_tokens)
        msg = AIMessage(content=reply.get("content") or "", tool_calls=tool_calls, usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=msg)])
