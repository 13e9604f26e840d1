"""τ-env replay: the ``ReplayEnvironment`` over τ tasks.

``TauReplay`` re-runs the task named by a trace's replay key (``tau:<domain>:<split>:<index>``) on a
fresh database with a user simulator, through the τ runner (``tau_envs.runner.run_episode``), with
the candidate system prompt served verbatim.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from diffprompt.errors import EnvError
from diffprompt.optimize.replay import Case
from diffprompt.types import ReplayResult, Trace, TraceWithFeedback, new_id, utcnow


def parse_replay_key(key: str) -> tuple[str, str, int] | None:
    """``tau:<domain>:<split>:<index>`` → (domain, split, index); None for other keys."""
    parts = key.split(":")
    if len(parts) != 4 or parts[0] != "tau" or not parts[3].isdigit():
        return None
    return parts[1], parts[2], int(parts[3])


class TauReplay:
    """Replay τ tasks with a target model and a user simulator; one fresh DB per episode.

    ``model_factory(seed)`` builds the LangChain chat model (``TauSetup.model_factory``: the simulated
    model for ``sim``, ``ChatOpenAI`` for ``openai:NAME``); with ``share_agent`` one compiled agent
    (built from seed 0) serves every episode. ``user_factory(task, seed)`` builds a fresh user per
    episode. Model calls are counted as the assistant turns of the episode; tokens come from the
    model's usage metadata.
    """

    def __init__(
        self,
        domain: Any,
        *,
        model_factory: Callable[[int], Any],
        user_factory: Callable[[Any, int], Any],
        share_agent: bool = True,
        max_steps: int = 30,
    ) -> None:
        self.domain = domain
        self.model_factory = model_factory
        self.user_factory = user_factory
        self.share_agent = share_agent
        self.max_steps = max_steps
        self.name = f"tau:{domain.name}:{domain.split}"
        self._agent: Any = None
        self._lock = threading.Lock()

    def cases(self, traces: Sequence[TraceWithFeedback]) -> list[Case]:
        """One case per distinct replay key of this domain and split, in task order.

        The result does not depend on the order the traces arrived in (concurrent live traffic
        records them in completion order): per key, the trace with the lowest reward stands for the
        case (a failure is what the round must see), ties broken by thread id.
        """
        best: dict[str, TraceWithFeedback] = {}
        index: dict[str, int] = {}
        for t in traces:
            key = t.trace.replay_key
            parsed = parse_replay_key(key) if key else None
            if parsed is None or key is None:
                continue
            dom, split, idx = parsed
            if dom != self.domain.name or split != self.domain.split or not 0 <= idx < len(self.domain.tasks):
                continue
            cur = best.get(key)
            if cur is None or _rank(t) < _rank(cur):
                best[key], index[key] = t, idx
        out = []
        for key in sorted(best, key=lambda k: index[k]):
            task = self.domain.task(index[key])
            out.append(Case(id=key, replay_key=key, slice=task.family or "", trace_id=best[key].trace.id,
                            data={"index": index[key]}))
        return out

    def all_cases(self) -> list[Case]:
        """Every task of the split as a case (for benchmarks and held-out sets beyond the window)."""
        from tau_envs.runner import replay_key

        return [
            Case(
                id=replay_key(self.domain.name, self.domain.split, t.index),
                replay_key=replay_key(self.domain.name, self.domain.split, t.index),
                slice=t.family or "",
                data={"index": t.index},
            )
            for t in self.domain.tasks
        ]

    def _shared_agent(self) -> Any:
        with self._lock:
            if self._agent is None:
                from tau_envs.agent import build_tau_agent

                self._agent = build_tau_agent(self.domain.tools_info, self.model_factory(0))
            return self._agent

    def run(self, case: Case, system_prompt: str, *, seed: int, trial: int) -> ReplayResult:
        from tau_envs.runner import run_episode

        idx = case.data.get("index")
        if not isinstance(idx, int):
            parsed = parse_replay_key(case.replay_key or case.id)
            if parsed is None:
                raise EnvError(f"case {case.id!r} has no τ replay key (tau:<domain>:<split>:<index>)")
            idx = parsed[2]
        task = self.domain.task(idx)
        t0 = time.perf_counter()
        agent = self._shared_agent() if self.share_agent else None
        model = None if agent is not None else self.model_factory(seed)
        res = run_episode(
            self.domain,
            task,
            model=model,
            agent=agent,
            user=self.user_factory(task, seed),
            system_prompt=system_prompt,
            seed=seed,
            trial=trial,
            max_steps=self.max_steps,
            replay_key=case.replay_key,
        )
        calls = sum(1 for m in res.messages if m.get("role") == "assistant")
        now = utcnow()
        trace = Trace(
            id=new_id("tr_"),
            slot="",
            version_id=None,
            thread_id=res.thread_id or new_id("th_"),
            messages=tuple(res.messages),
            started_at=now,
            ended_at=now,
            latency_ms=res.seconds * 1000,
            usage=res.usage,
            model_calls=calls,
            tool_calls=sum(len(m.get("tool_calls") or ()) for m in res.messages),
            replay_key=case.replay_key,
            error=res.error,
            metadata={"task_index": idx, "trial": trial, "seed": seed, "family": task.family or "",
                      "user_comments": list(res.comments)},
        )
        return ReplayResult(
            case_id=case.id,
            version_id="",
            trial=trial,
            reward=float(res.reward),
            error=res.error,
            usage=res.usage,
            model_calls=calls,
            trace=trace,
            seconds=time.perf_counter() - t0,
            slice=task.family or "",
        )


def _rank(t: TraceWithFeedback) -> tuple[float, str, str]:
    """Order of the traces of one case: lowest reward first (unscored last), then thread and trace id."""
    reward = t.reward
    return (2.0 if reward is None else float(reward), t.trace.thread_id or "", t.trace.id)
