"""Run τ episodes: one (``run_episode``) or many concurrently (``run_tau``) with pass^k.

Episodes go through the ``create_agent`` τ agent (``tau_envs.agent``), so any extra middleware — the
diffprompt ``PromptAdaptationMiddleware`` in particular — sees one run per episode. Semantics are the
official τ-bench ones (see ``tau_envs.agent``). Failures are data: an exception from the model, the
user simulator or a middleware ends *that* episode with reward 0 and the error recorded; the run goes
on. Seeds are deterministic per (base seed, task index, trial), whatever the concurrency.

Display belongs to the caller: ``run_tau`` reports each finished episode through ``on_result``.
"""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, convert_to_openai_messages

from diffprompt.types import Usage
from tau_envs.agent import Episode, StopReason, build_tau_agent, run_agent_episode
from tau_envs.metrics import pass_hat_ks
from tau_envs.types import MAX_STEPS, STOP_TOKEN, FeedbackUser, RewardInfo, Task, UserSimulator

ModelFactory = Callable[[int], Any]  # episode seed -> LangChain chat model
UserFactory = Callable[[Task, int], UserSimulator]  # (task, episode seed) -> fresh user simulator
PromptProvider = Callable[[Task, int], str]  # (task, trial) -> system prompt
MiddlewareFactory = Callable[[], Sequence[Any]]  # -> extra (outer) AgentMiddleware for one agent


@dataclass(frozen=True, kw_only=True, slots=True)
class EpisodeResult:
    """One finished episode. ``reward`` is 0.0 when ``error`` is set or the step limit was hit."""

    task_index: int
    trial: int
    reward: float
    messages: tuple[Mapping[str, Any], ...]
    error: str | None
    steps: int
    usage: Usage = field(default_factory=Usage)
    reward_info: RewardInfo | None = None
    stop_reason: StopReason = ""
    seed: int = 0
    thread_id: str = ""
    seconds: float = 0.0
    dropped_tool_calls: int = 0
    family: str = ""
    trace_id: str | None = None  # the recorded trace (when diffprompt's middleware wraps the agent)
    comments: tuple[str, ...] = ()  # the user's own words about the episode (a ``FeedbackUser``'s complaints)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunSummary:
    """All episodes of a run (ordered by task, then trial) and pass^1..k over them."""

    results: tuple[EpisodeResult, ...]
    pass_hat_k: Mapping[int, float]
    seconds: float = 0.0

    @property
    def mean_reward(self) -> float:
        return sum(r.reward for r in self.results) / len(self.results) if self.results else 0.0

    @property
    def errors(self) -> int:
        return sum(r.error is not None for r in self.results)

    @property
    def usage(self) -> Usage:
        total = Usage()
        for r in self.results:
            total = total + r.usage
        return total


def episode_seed(base_seed: int, task_index: int, trial: int) -> int:
    """A stable 31-bit seed for (base seed, task, trial), independent of scheduling."""
    digest = hashlib.sha256(f"{base_seed}:{task_index}:{trial}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def replay_key(domain: str, split: str, task_index: int) -> str:
    """The trace replay key of a τ task: ``tau:<domain>:<split>:<task index>``."""
    return f"tau:{domain}:{split}:{task_index}"


def to_openai_messages(
    system_prompt: str | None, messages: Sequence[BaseMessage]
) -> tuple[dict[str, Any], ...]:
    """The episode in OpenAI chat format, system prompt first (tool calls and tool results included)."""
    out: list[dict[str, Any]] = []
    if system_prompt is not None:
        out.append({"role": "system", "content": system_prompt})
    out.extend(convert_to_openai_messages(list(messages)))  # type: ignore[arg-type]
    return tuple(out)


def _usage(messages: Sequence[BaseMessage]) -> Usage:
    total = Usage()
    for m in messages:
        um = getattr(m, "usage_metadata", None) if isinstance(m, AIMessage) else None
        if um:
            total = total + Usage(
                input_tokens=int(um.get("input_tokens", 0)), output_tokens=int(um.get("output_tokens", 0))
            )
    return total


class _GuardedUser:
    """A user simulator whose failing ``step`` ends the episode (the error kept) instead of raising.

    An exception there happens outside any model or tool call, so nothing else would record the
    trace: the episode would vanish. Ending it with ``###STOP###`` lets the middleware record it.
    """

    def __init__(self, user: UserSimulator) -> None:
        self.user = user
        self.error: str | None = None

    def reset(self, task: Task, *, seed: int) -> str:
        return self.user.reset(task, seed=seed)

    def step(self, agent_message: str) -> str:
        try:
            return self.user.step(agent_message)
        except Exception as exc:  # the user simulator's bug is this episode's recorded failure
            self.error = f"user simulator failed: {type(exc).__name__}: {exc}"
            return STOP_TOKEN


def run_episode(
    domain: Any,
    task: Task,
    *,
    model: Any,
    user: UserSimulator,
    system_prompt: str | None,
    seed: int,
    middleware: Sequence[Any] | None = None,
    thread_id: str | None = None,
    trial: int = 0,
    agent: Any = None,
    max_steps: int = MAX_STEPS,
    replay_key: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> EpisodeResult:
    """Run one τ episode of ``task`` on a fresh DB of ``domain`` and score it.

    Never raises for a failing episode: the error is recorded and the reward is 0.

    ``system_prompt`` is served verbatim unless it is None (then an outer ``middleware`` such as
    diffprompt's sets it). ``agent`` reuses a graph compiled by ``build_tau_agent`` (then ``model`` and
    ``middleware`` are ignored). The user's first message comes from ``user.reset(task, seed=seed)``.
    """
    t0 = time.perf_counter()
    tid = thread_id or f"tau-{uuid.uuid4().hex}"
    env = domain.make_env(task)
    guarded = _GuardedUser(user)
    ep = Episode(env=env, user=guarded, system_prompt=system_prompt, max_steps=max_steps)
    messages: list[BaseMessage] = []
    error: str | None = None
    info: RewardInfo | None = None
    trace_id: str | None = None
    try:
        if agent is None:
            agent = build_tau_agent(domain.tools_info, model, middleware=list(middleware or ()))
        first = user.reset(task, seed=seed)
        state = run_agent_episode(agent, ep, first, thread_id=tid, replay_key=replay_key, metadata=metadata)
        messages = list(state.get("messages") or [])
        trace_id = state.get("diffprompt_trace_id")
        if ep.done and guarded.error is None:
            info = env.reward(ep.agent_texts)
        error = guarded.error
    except Exception as exc:  # per-episode failure is data (model/user/middleware errors alike)
        error = f"{type(exc).__name__}: {exc}"
    reward = info.reward if (info is not None and error is None) else 0.0
    comments = user.feedback() if isinstance(user, FeedbackUser) else ()
    return EpisodeResult(
        task_index=task.index,
        trial=trial,
        reward=reward,
        messages=to_openai_messages(ep.system_prompt_used or system_prompt, messages),
        error=error,
        steps=ep.steps,
        usage=_usage(messages),
        reward_info=info,
        stop_reason=ep.stop_reason,
        seed=seed,
        thread_id=tid,
        seconds=time.perf_counter() - t0,
        dropped_tool_calls=ep.dropped_tool_calls,
        family=task.family,
        trace_id=trace_id,
        comments=tuple(comments),
    )


def run_tau(
    domain: Any,
    tasks: Sequence[Task] | Sequence[int],
    *,
    trials: int,
    concurrency: int,
    model_factory: ModelFactory,
    user_factory: UserFactory,
    system_prompt: str | PromptProvider | None,
    middleware_factory: MiddlewareFactory | None = None,
    seed: int = 0,
    max_steps: int = MAX_STEPS,
    on_result: Callable[[EpisodeResult], None] | None = None,
    run_id: str | None = None,
    share_agent: bool = True,
) -> RunSummary:
    """Run ``trials`` episodes of each task on a thread pool of ``concurrency`` workers.

    ``model_factory(seed)`` builds the target model; with ``share_agent`` (default) it is called once
    with ``seed`` and one compiled agent serves every episode (models are stateless, episodes live in
    the run context); otherwise each episode gets its own model and agent built from its episode seed.
    ``user_factory(task, seed)`` builds a fresh user per episode. ``system_prompt`` is a string, a
    provider ``(task, trial) -> str``, or None when a middleware from ``middleware_factory`` serves it.
    ``on_result`` is called (from worker threads, serialised) as each episode finishes. Thread ids are
    ``tau-<run id>-<task>-<trial>``; the replay key goes into the run metadata.
    """
    if trials < 1 or concurrency < 1:
        from diffprompt.errors import ConfigError

        raise ConfigError(f"trials and concurrency must be >= 1 (got {trials}, {concurrency})")
    task_list = [domain.task(t) if isinstance(t, int) else t for t in tasks]
    rid = run_id or uuid.uuid4().hex[:12]
    t0 = time.perf_counter()
    shared = (
        build_tau_agent(
            domain.tools_info,
            model_factory(seed),
            middleware=list(middleware_factory() if middleware_factory else ()),
        )
        if share_agent
        else None
    )
    lock = threading.Lock()

    def one(task: Task, trial: int) -> EpisodeResult:
        s = episode_seed(seed, task.index, trial)
        prompt = system_prompt(task, trial) if callable(system_prompt) else system_prompt
        try:
            user = user_factory(task, s)
            agent = shared
            if agent is None:
                agent = build_tau_agent(
                    domain.tools_info,
                    model_factory(s),
                    middleware=list(middleware_factory() if middleware_factory else ()),
                )
        except Exception as exc:  # a factory failing for one episode is that episode's failure
            return EpisodeResult(
                task_index=task.index,
                trial=trial,
                reward=0.0,
                messages=(),
                error=f"{type(exc).__name__}: {exc}",
                steps=0,
                seed=s,
                family=task.family,
            )
        key = replay_key(domain.name, domain.split, task.index)
        res = run_episode(
            domain,
            task,
            model=None,
            user=user,
            system_prompt=prompt,
            seed=s,
            agent=agent,
            trial=trial,
            thread_id=f"tau-{rid}-{task.index}-{trial}",
            max_steps=max_steps,
            replay_key=key,
            metadata={
                "replay_key": key,
                "task_index": task.index,
                "trial": trial,
                "seed": s,
                "domain": domain.name,
                "split": domain.split,
            },
        )
        if on_result is not None:
            with lock:
                on_result(res)
        return res

    jobs = [(task, trial) for task in task_list for trial in range(trials)]
    results: list[EpisodeResult] = []
    if concurrency == 1:
        results = [one(task, trial) for task, trial in jobs]
    else:
        with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="tau-episode") as pool:
            futures = [pool.submit(one, task, trial) for task, trial in jobs]
            results = [f.result() for f in as_completed(futures)]
    results.sort(key=lambda r: (r.task_index, r.trial))
    successes: dict[Hashable, list[bool]] = {}
    for r in results:
        successes.setdefault(r.task_index, []).append(r.reward >= 1.0)
    return RunSummary(
        results=tuple(results),
        pass_hat_k=pass_hat_ks(successes, trials) if successes else {},
        seconds=time.perf_counter() - t0,
    )


def record_rewards(
    store: Any,
    results: Sequence[EpisodeResult],
    *,
    recorder: Any = None,
    slot: str | None = None,
    flush_timeout: float = 30.0,
) -> int:
    """Attach each recorded episode's reward as ``reward`` feedback (source ``env``) in one batch.

    The user's own complaints (``EpisodeResult.comments``) go in as ``comment`` feedback (source
    ``user``), as a real user's would.

    Flushes ``recorder`` first so every trace is in the store. A failed episode has no trace id in its
    result; with ``slot`` its thread's error trace (recorded by the middleware at close) is looked up
    and gets reward 0. Episodes with no trace at all are skipped. Returns how many were written.
    """
    from diffprompt.errors import NotFoundError
    from diffprompt.types import Feedback

    if recorder is not None:
        recorder.flush(flush_timeout)
    fb: list[Feedback] = []
    for r in results:
        trace_id = r.trace_id
        if trace_id is None and slot is not None and r.thread_id:
            try:
                trace_id = store.trace_for_thread(r.thread_id, slot).id
            except NotFoundError:
                trace_id = None
        if trace_id:
            fb.append(Feedback(trace_id=trace_id, kind="reward", value=float(r.reward), source="env"))
            fb.extend(Feedback(trace_id=trace_id, kind="comment", value=None, text=c, source="user")
                      for c in r.comments)
    return len(store.add_feedback(fb)) if fb else 0


def cached_world(domain: str, *, home: Path, seed: int, n_users: int, n_tasks: int) -> Path:
    """A generated world under ``<home>/worlds/``, generated once per (domain, seed, sizes).

    Generation writes into a temporary sibling directory and renames it into place, so concurrent or
    interrupted runs never see a half-written world.
    """
    from tau_envs.generate import GENERATOR_VERSION, generate_world

    final = Path(home) / "worlds" / f"{domain}-seed{seed}-u{n_users}-t{n_tasks}-g{GENERATOR_VERSION}"
    if (final / "tasks_test.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}"
    generate_world(domain, seed=seed, n_users=n_users, n_tasks=n_tasks, out_dir=tmp)  # type: ignore[arg-type]
    try:
        tmp.rename(final)
    except OSError:  # another process won the race; its world is identical (same seed and sizes)
        shutil.rmtree(tmp, ignore_errors=True)
    return final
