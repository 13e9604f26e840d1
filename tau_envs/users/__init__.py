"""User simulators: the scripted user (structured intents) and the LLM user (OpenAI SDK)."""

from __future__ import annotations

from tau_envs.users.scripted import ScriptedUser

__all__ = ["ScriptedUser"]
