"""A minimal τ episode loop for these tests: scripted user → SimulatedPolicy → env.step → reward."""

from __future__ import annotations

import json
from typing import Any

from tau_envs.domain import Domain
from tau_envs.sim import SimulatedPolicy
from tau_envs.types import MAX_STEPS, STOP_TOKEN, TRANSFER_TOOL, Action, Task
from tau_envs.users import ScriptedUser


def run_episode(
    dom: Domain, task: Task, system: str, *, seed: int, model: SimulatedPolicy | None = None
) -> tuple[float, list[dict[str, Any]]]:
    """Play one episode; return (reward, messages)."""
    model = model or SimulatedPolicy(seed=seed)
    env = dom.make_env(task)
    user = ScriptedUser()
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": system},
        {"role": "user", "content": user.reset(task, seed=seed)},
    ]
    texts: list[str] = []
    for _ in range(MAX_STEPS):
        msg = model.respond(messages, dom.tools_info)
        messages.append(msg)
        if msg.get("tool_calls"):
            call = msg["tool_calls"][0]
            fn = call["function"]
            res = env.step(Action(name=fn["name"], kwargs=json.loads(fn["arguments"])))
            messages.append(
                {"role": "tool", "tool_call_id": call["id"], "name": fn["name"], "content": res.observation}
            )
            if fn["name"] == TRANSFER_TOOL:
                break
            continue
        texts.append(msg["content"])
        reply = user.step(msg["content"])
        messages.append({"role": "user", "content": reply})
        if STOP_TOKEN in reply:
            break
    return env.reward(texts).reward, messages
