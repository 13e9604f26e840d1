"""Small fakes for the τ runner tests: a scripted tool-calling chat model and a scripted user."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, PrivateAttr

from tau_envs.types import STOP_TOKEN, Task


def call(name: str, **args: Any) -> dict[str, Any]:
    return {"name": name, "args": args}


def ai(text: str = "", *calls: dict[str, Any]) -> AIMessage:
    return AIMessage(
        content=text,
        tool_calls=[
            {"name": c["name"], "args": c["args"], "id": f"call_{i}_{c['name']}", "type": "tool_call"}
            for i, c in enumerate(calls)
        ],
        usage_metadata={"input_tokens": 10, "output_tokens": 2, "total_tokens": 12},
    )


class ScriptedModel(BaseChatModel):
    """Answers with ``policy(messages)``; records every request and the tools it was bound to."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    policy: Callable[[list[BaseMessage]], AIMessage]
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _requests: list[list[BaseMessage]] = PrivateAttr(default_factory=list)
    _tools: list[Any] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self._tools = list(tools)
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        with self._lock:
            self._requests.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.policy(list(messages)).model_copy(deep=True))])

    @property
    def requests(self) -> list[list[BaseMessage]]:
        return self._requests


def script(turns: Sequence[AIMessage]) -> Callable[[list[BaseMessage]], AIMessage]:
    """A policy that plays ``turns`` by the number of AI messages already in the conversation."""

    def policy(messages: list[BaseMessage]) -> AIMessage:
        n = sum(isinstance(m, AIMessage) for m in messages)
        return turns[min(n, len(turns) - 1)]

    return policy


class ListUser:
    """User simulator fake: first message, then ``replies`` in order (repeating the last)."""

    def __init__(self, first: str = "hi, I need help", replies: Sequence[str] = (STOP_TOKEN,)) -> None:
        self.first = first
        self.replies = list(replies)
        self.seen: list[str] = []
        self.seed: int | None = None

    def reset(self, task: Task, *, seed: int) -> str:
        self.seed = seed
        return self.first

    def step(self, agent_message: str) -> str:
        self.seen.append(agent_message)
        return self.replies[min(len(self.seen) - 1, len(self.replies) - 1)]
