"""The do-nothing baseline: a chat model that never calls a tool, and its pass^1 on a domain.

Every pass^1 a benchmark reports should stand beside this number: a task whose expected outcome
leaves the database unchanged (a refusal task) is passed by an agent that does nothing, so a score
means something only above it. ``DoNothingModel(mode="refuse")`` politely declines every request;
``mode="agree"`` claims every request is done; neither reads the tools nor changes the database.
``do_nothing_pass1`` runs the domain's tasks with it and the given user simulators and returns the
larger pass^1 of the two modes (the stronger do-nothing agent), with both in ``DoNothingScore``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from tau_envs.types import Task, UserSimulator

Mode = Literal["refuse", "agree"]
_SAY: dict[str, tuple[str, ...]] = {
    "refuse": ("I'm sorry, but I can't help with that.", "Sorry, I am not able to do that for you."),
    "agree": ("All done: your request has been completed successfully.", "Your request has been handled."),
}


class DoNothingModel(BaseChatModel):
    """A chat model that answers every turn with a fixed reply and never calls a tool."""

    mode: Mode = "refuse"

    @property
    def _llm_type(self) -> str:
        return "do-nothing"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        """Accepts the tools and ignores them."""
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        turn = sum(1 for m in messages if isinstance(m, AIMessage))
        options = _SAY[self.mode]
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=options[turn % len(options)]))])


@dataclass(frozen=True, kw_only=True, slots=True)
class DoNothingScore:
    """pass^1 of the do-nothing agent per mode, the larger of the two, and the share of refusal tasks."""

    refuse: float
    agree: float
    no_write_share: float

    @property
    def pass1(self) -> float:
        return max(self.refuse, self.agree)


def no_write_share(domain: Any, tasks: Sequence[Task] | None = None) -> float:
    """Share of tasks whose expected actions leave the database unchanged (gold hash = initial hash)."""
    from tau_envs.hashing import db_hash

    pool = list(domain.tasks if tasks is None else tasks)
    if not pool:
        return 0.0
    start = db_hash(domain.fresh_db())
    return sum(domain.gold_hash(t) == start for t in pool) / len(pool)


def do_nothing_pass1(
    domain: Any,
    *,
    user_factory: Callable[[Task, int], UserSimulator],
    tasks: Sequence[Task] | None = None,
    trials: int = 1,
    seed: int = 0,
    concurrency: int = 4,
) -> DoNothingScore:
    """pass^1 of the do-nothing agent on ``tasks`` (default: every task of the domain's split)."""
    from tau_envs.runner import run_tau

    pool = list(domain.tasks if tasks is None else tasks)
    scores: dict[Mode, float] = {}
    modes: tuple[Mode, ...] = ("refuse", "agree")
    for mode in modes:
        model = DoNothingModel(mode=mode)

        def factory(_seed: int, m: DoNothingModel = model) -> DoNothingModel:
            return m

        summary = run_tau(
            domain, pool, trials=trials, concurrency=concurrency, seed=seed, system_prompt="",
            model_factory=factory, user_factory=user_factory,
        )
        scores[mode] = float(summary.pass_hat_k.get(1, 0.0))
    return DoNothingScore(refuse=scores["refuse"], agree=scores["agree"], no_write_share=no_write_share(domain, pool))
