"""The τ tool-calling agent as a LangChain v1 ``create_agent`` graph with official episode semantics.

One agent invocation is one whole τ episode, so a wrapping middleware (diffprompt's
``PromptAdaptationMiddleware``) sees exactly one run per episode and records one trace. The episode
rules live in ``TauEpisodeMiddleware`` and act on a per-invocation ``Episode`` passed as the run's
context (``agent.invoke(..., context=episode)``):

- every model call is one agent step; before a call, the episode ends if it is done or
  ``max_steps`` (30) calls have been made (reward 0 unless done);
- only the FIRST tool call of a model turn is kept (the rest are dropped before anyone sees them);
- tool calls execute on the episode's ``ToolEnv`` (unknown tools and bad arguments become the
  official ``Unknown action``/``Error: ...`` observations, never exceptions);
  ``transfer_to_human_agents`` ends the episode;
- a model turn without a tool call is a reply to the customer: the user simulator answers, and a
  reply containing ``###STOP###`` ends the episode; otherwise the loop returns to the model.

The compiled graph is independent of the episode (tools only carry the schemas), so one agent serves
many concurrent episodes. Middleware order: extra middleware (e.g. diffprompt's) is outermost, so it
records the truncated model turns and the env's tool results.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from langchain.agents import create_agent
from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse, hook_config
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool

from diffprompt.errors import ModelError
from tau_envs.types import MAX_STEPS, STOP_TOKEN, TRANSFER_TOOL, Action, StepResult, UserSimulator

StopReason = Literal["", "stop", "transfer", "max_steps"]


class EpisodeEnv(Protocol):
    """What the agent needs from a τ environment (``tau_envs.env.ToolEnv`` implements it)."""

    def step(self, action: Action) -> StepResult:
        """Execute one tool call; never raises for a bad call."""
        ...


@dataclass(kw_only=True, eq=False)
class Episode:
    """Mutable state of one running episode, passed as the agent run's ``context``.

    ``system_prompt``: set it to serve a fixed prompt; leave None when an outer middleware (diffprompt)
    sets the system message. ``system_prompt_used`` is what the last model call actually received.
    """

    env: EpisodeEnv
    user: UserSimulator
    system_prompt: str | None = None
    max_steps: int = MAX_STEPS
    steps: int = 0
    done: bool = False
    stop_reason: StopReason = ""
    agent_texts: list[str] = field(default_factory=list)
    dropped_tool_calls: int = 0
    system_prompt_used: str | None = None
    tool_call_ids: set[str] = field(default_factory=set)


def message_text(msg: BaseMessage) -> str:
    """The text of a message whose content may be a string or a list of content blocks."""
    content = msg.content
    if isinstance(content, str):
        return content
    parts = []
    for block in content:
        if isinstance(block, str):
            parts.append(block)
        elif isinstance(block, Mapping) and block.get("type") == "text":
            parts.append(str(block.get("text", "")))
    return "".join(parts)


def _first_tool_call_only(msg: AIMessage, seen_ids: set[str]) -> tuple[AIMessage, int]:
    calls = list(msg.tool_calls)
    if not calls:
        return msg, 0
    first = dict(calls[0])
    call_id = str(first.get("id") or "")
    if not call_id or call_id in seen_ids:
        # a model that reuses call ids (or omits them) would confuse the loop's call/result matching
        call_id = f"{call_id or 'call'}_{len(seen_ids)}"
        first["id"] = call_id
    seen_ids.add(call_id)
    if len(calls) == 1 and call_id == calls[0].get("id"):
        return msg, 0
    kwargs = dict(msg.additional_kwargs)
    kwargs.pop("tool_calls", None)  # the provider-format copy is rebuilt from tool_calls when sent
    return msg.model_copy(update={"tool_calls": [first], "additional_kwargs": kwargs}), len(calls) - 1


def _episode(runtime: Any) -> Episode:
    ctx = getattr(runtime, "context", None)
    if not isinstance(ctx, Episode):
        raise ModelError("the τ agent must be invoked with context=Episode(...) (see tau_envs.agent)")
    return ctx


class TauEpisodeMiddleware(AgentMiddleware):  # type: ignore[type-arg]
    """Official τ-bench episode semantics inside a ``create_agent`` loop (see the module docstring)."""

    @hook_config(can_jump_to=["end"])
    def before_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        ep = _episode(runtime)
        if ep.done:
            return {"jump_to": "end"}
        if ep.steps >= ep.max_steps:
            ep.stop_reason = "max_steps"
            return {"jump_to": "end"}
        return None

    def wrap_model_call(self, request: ModelRequest, handler: Any) -> ModelResponse:
        ep = _episode(request.runtime)
        if ep.system_prompt is not None:
            request = request.override(system_message=SystemMessage(content=ep.system_prompt))
        ep.system_prompt_used = request.system_prompt
        ep.steps += 1
        response: ModelResponse = handler(request)
        out: list[BaseMessage] = []
        for msg in response.result:
            if isinstance(msg, AIMessage):
                if not msg.tool_calls and msg.invalid_tool_calls:
                    bad = msg.invalid_tool_calls[0]
                    raise ModelError(
                        f"model returned an unparseable tool call {bad.get('name')!r}: "
                        f"{bad.get('error') or bad.get('args')}"
                    )
                msg, dropped = _first_tool_call_only(msg, ep.tool_call_ids)
                ep.dropped_tool_calls += dropped
            out.append(msg)
        return ModelResponse(result=out, structured_response=response.structured_response)

    @hook_config(can_jump_to=["model", "end"])
    def after_model(self, state: Any, runtime: Any) -> dict[str, Any] | None:
        ep = _episode(runtime)
        last = state["messages"][-1]
        if not isinstance(last, AIMessage) or last.tool_calls:
            return None  # a tool call: the tools node runs it
        text = message_text(last)
        ep.agent_texts.append(text)
        reply = ep.user.step(text)
        update: dict[str, Any] = {"messages": [HumanMessage(content=reply)]}
        if STOP_TOKEN in reply:
            ep.done, ep.stop_reason = True, "stop"
            update["jump_to"] = "end"
        else:
            update["jump_to"] = "model"
        return update

    def wrap_tool_call(self, request: Any, handler: Any) -> ToolMessage:
        ep = _episode(request.runtime)
        call = request.tool_call
        args = call.get("args")
        result = ep.env.step(Action(name=call["name"], kwargs=args if isinstance(args, dict) else {}))
        if result.done:
            ep.done = True
            ep.stop_reason = "transfer" if call["name"] == TRANSFER_TOOL else ep.stop_reason or "transfer"
        return ToolMessage(content=result.observation, tool_call_id=call["id"], name=call["name"])


def _not_direct(**_: Any) -> str:
    raise ModelError("τ tools execute on the episode's ToolEnv through TauEpisodeMiddleware")


def tools_from_info(tools_info: Sequence[Mapping[str, Any]]) -> list[BaseTool]:
    """LangChain tools carrying the domain's OpenAI schemas verbatim.

    ``convert_to_openai_tool`` of each equals its ``tools_info`` entry. They are executed by
    ``TauEpisodeMiddleware`` on the episode's env, not directly.
    """
    tools: list[BaseTool] = []
    for info in tools_info:
        fn = info["function"]
        tools.append(
            StructuredTool(
                name=fn["name"],
                description=fn.get("description", ""),
                args_schema=dict(fn.get("parameters") or {"type": "object", "properties": {}}),
                func=_not_direct,
            )
        )
    return tools


def build_tau_agent(
    tools_info: Sequence[Mapping[str, Any]],
    model: Any,
    *,
    middleware: Sequence[AgentMiddleware] = (),  # type: ignore[type-arg]
    name: str = "tau_agent",
) -> Any:
    """Compile the τ agent: ``create_agent`` with the domain's tools and middleware.

    ``middleware`` is outermost, then ``TauEpisodeMiddleware``. Invoke with ``run_agent_episode``
    (or ``agent.invoke(..., context=Episode(...))``).
    """
    return create_agent(
        model,
        tools_from_info(tools_info),
        middleware=[*middleware, TauEpisodeMiddleware()],
        context_schema=Episode,
        name=name,
    )


def run_agent_episode(
    agent: Any,
    episode: Episode,
    first_message: str,
    *,
    thread_id: str,
    replay_key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one whole episode from the user's first message; return the agent's final state.

    ``state["messages"]`` is the conversation; with diffprompt's middleware, ``diffprompt_trace_id``
    names the recorded trace. ``replay_key``/``metadata`` go to the middleware through the run config
    (``configurable.diffprompt_replay_key`` / ``diffprompt_metadata``). Exceptions from the model or a
    middleware propagate (the runner turns them into reward-0 results).
    """
    configurable: dict[str, Any] = {"thread_id": thread_id, "diffprompt_metadata": dict(metadata or {})}
    if replay_key is not None:
        configurable["diffprompt_replay_key"] = replay_key
    config: dict[str, Any] = {
        "configurable": configurable,
        # each agent step is a handful of graph supersteps (hooks, model, tools)
        "recursion_limit": 40 * (episode.max_steps + 2),
        "metadata": dict(metadata or {}),
    }
    state = agent.invoke({"messages": [HumanMessage(content=first_message)]}, config=config, context=episode)
    return dict(state)
