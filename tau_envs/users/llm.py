"""``LLMUser``: a customer simulated by a chat model (any ``CompletionClient``, e.g. ``ChatClient``).

Behaviour of τ-bench's ``llm`` user strategy: the task instruction goes into a system prompt
(``templates/tau_user.j2``, our wording) asking for one line per turn, only facts from the
instruction, and ``###STOP###`` once the goal is met. Roles are mirrored for the user model: the
agent's messages are its ``user`` turns, its own lines are ``assistant`` turns. The conversation opens
with a fixed agent greeting so that the model writes the customer's first line.

Seeding: ``reset(task, seed=...)`` records the seed; when the client has ``with_seed`` (``ChatClient``)
each episode uses a sibling client that sends that seed with every request (providers that honour
``seed`` then reproduce the episode).
"""

from __future__ import annotations

from diffprompt.errors import ModelError
from diffprompt.llm import CompletionClient
from diffprompt.templating import render
from diffprompt.types import Usage
from tau_envs.types import STOP_TOKEN, Task

GREETING = "Hi! How can I help you today?"


def user_system_prompt(instruction: str) -> str:
    """The user simulator's system prompt for a task instruction."""
    return render("tau_user.j2", instruction=instruction, stop_token=STOP_TOKEN).rstrip("\n")


class LLMUser:
    """A ``UserSimulator`` driven by a chat model. One instance per episode (not thread-safe)."""

    def __init__(
        self, client: CompletionClient, *, temperature: float = 1.0, max_tokens: int | None = 256
    ) -> None:
        self.client = client
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.messages: list[dict[str, str]] = []
        self.usage = Usage()
        self.seed: int | None = None
        self._episode_client: CompletionClient = client

    def reset(self, task: Task, *, seed: int) -> str:
        self.seed = seed
        with_seed = getattr(self.client, "with_seed", None)
        self._episode_client = with_seed(seed) if callable(with_seed) else self.client
        self.usage = Usage()
        self.messages = [
            {"role": "system", "content": user_system_prompt(task.instruction)},
            {"role": "user", "content": GREETING},
        ]
        return self._generate()

    def step(self, agent_message: str) -> str:
        if not self.messages:
            raise ModelError("LLMUser.step called before reset()")
        self.messages.append({"role": "user", "content": agent_message})
        return self._generate()

    def _generate(self) -> str:
        out = self._episode_client.complete(
            self.messages, temperature=self.temperature, max_tokens=self.max_tokens
        )
        self.usage = self.usage + out.usage
        text = out.text.strip()
        if STOP_TOKEN in text:
            text = STOP_TOKEN if not text.replace(STOP_TOKEN, "").strip() else text
        self.messages.append({"role": "assistant", "content": text})
        return text
