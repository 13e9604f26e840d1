"""A τ-bench tool-calling agent built with ``create_agent`` and wrapped with diffprompt's middleware.

Run it offline (no API key, no network)::

    python agents/tau_agent.py                       # 5 airline tasks of a generated world, sim model
    python agents/tau_agent.py --domain retail -n 10
    python agents/tau_agent.py --model openai:gpt-4o-mini --tau-data ../shared/taubench   # real mode

What it shows, in ~60 lines of glue:

1. ``build_agent``: ``create_agent(model, tools, middleware=[PromptAdaptationMiddleware, τ rules])``.
   The tools are the domain's ``tools_info`` schemas verbatim; ``TauEpisodeMiddleware`` executes the
   FIRST tool call of each model turn on the episode's ``ToolEnv`` (the rest are dropped), lets the
   user simulator answer plain replies, and ends the episode on ``###STOP###``, a transfer to a
   human agent, or 30 agent steps — the official τ-bench semantics. diffprompt's middleware serves
   the slot's pinned prompt and records each episode as one trace with replay key
   ``tau:<domain>:<split>:<task>``.
2. ``run_one``: one episode through ``tau_envs.runner.run_episode`` (failures become reward 0 with
   the error recorded), then the env's reward recorded as ``reward`` feedback on the trace.

Copy ``build_agent`` into your code and swap the model for yours.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from langchain.agents import create_agent

from diffprompt.middleware import PromptAdaptationMiddleware, record_feedback
from diffprompt.store.recorder import Recorder
from tau_envs.agent import Episode, TauEpisodeMiddleware, tools_from_info
from tau_envs.runner import EpisodeResult, episode_seed, replay_key, run_episode


def build_agent(domain: Any, model: Any, *, store: Any = None, slot: str = "", recorder: Any = None) -> Any:
    """The τ agent for ``domain``: one compiled graph that serves any number of concurrent episodes.

    With a ``store``, diffprompt's middleware is outermost: it injects the slot's pinned prompt into
    every model call and records the episode (as the τ middleware shaped it) as one trace.
    """
    middleware: list[Any] = []
    if store is not None:
        middleware.append(PromptAdaptationMiddleware(slot, store, recorder=recorder or Recorder(store)))
    middleware.append(TauEpisodeMiddleware())
    return create_agent(
        model,
        tools_from_info(domain.tools_info),
        middleware=middleware,
        context_schema=Episode,
        name=f"tau_{domain.name}",
    )


def run_one(
    agent: Any,
    domain: Any,
    task_index: int,
    *,
    user: Any,
    store: Any = None,
    recorder: Any = None,
    trial: int = 0,
    seed: int = 0,
    system_prompt: str | None = None,
) -> EpisodeResult:
    """Run one episode; with a store, record the env's reward as feedback on its trace."""
    task = domain.task(task_index)
    s = episode_seed(seed, task_index, trial)
    result = run_episode(
        domain,
        task,
        model=None,
        agent=agent,
        user=user,
        seed=s,
        trial=trial,
        system_prompt=None if store is not None else (system_prompt or domain.policy),
        replay_key=replay_key(domain.name, domain.split, task_index),
        thread_id=f"tau-example-{domain.name}-{task_index}-{trial}-{s}",
    )
    if store is not None and result.trace_id:
        record_feedback(
            store,
            trace_id=result.trace_id,
            kind="reward",
            value=result.reward,
            source="env",
            recorder=recorder,
        )
    return result


def main(argv: list[str] | None = None) -> int:
    from diffprompt.cli.tau_run import ensure_slot
    from diffprompt.integrations.tau import build_tau
    from diffprompt.settings import Settings
    from diffprompt.store import open_store

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domain", default="airline", choices=["airline", "retail"])
    ap.add_argument("--model", default="sim", help="sim | openai:NAME")
    ap.add_argument("--user", default="scripted", help="scripted | llm:NAME")
    ap.add_argument("--tau-data", type=Path, default=None)
    ap.add_argument("-n", type=int, default=5, help="number of tasks")
    args = ap.parse_args(argv)

    settings = Settings()
    setup = build_tau(
        args.domain,
        home=settings.home,
        data_dir=args.tau_data,
        model=args.model,
        user=args.user,
        base_url=settings.openai_base_url,
        api_key=settings.openai_api_key,
    )
    setup.check_endpoints()
    domain = setup.domain("test")
    store = open_store(settings.resolved_db_url)
    slot = f"tau-{args.domain}-example"
    ensure_slot(store, slot, domain.policy)
    recorder = Recorder(store)
    agent = build_agent(domain, setup.model_factory(0), store=store, slot=slot, recorder=recorder)
    users = setup.user_factory
    try:
        for i in range(min(args.n, len(domain.tasks))):
            r = run_one(agent, domain, i, user=users(domain.task(i), i), store=store, recorder=recorder)
            print(
                f"task {i}: reward {r.reward:.0f}  steps {r.steps:2d}  "
                f"{r.stop_reason or r.error}  trace {r.trace_id}"
            )
    finally:
        recorder.close()
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
