"""Offline replay: run prompts on the same cases and seeds, paired, under a concurrency limit.

The seam is ``ReplayEnvironment``: ``cases(traces)`` turns a window of recorded traces into replay
cases, ``run(case, system_prompt, seed=, trial=)`` plays one episode with the given system prompt and
returns a ``ReplayResult`` (reward in [0, 1], the model calls and tokens it spent). Implementations:

* ``TauReplay`` (``diffprompt.integrations.tau.replay``): re-runs the τ task named by the replay key with a user
  simulator on a fresh database;
* ``RecordedReplay`` (``optimize.replay_recorded``, ``--env recorded``): for agents without a
  simulator, replays each recorded conversation from its prefix with each prompt; a blind pairwise
  judge scores candidate vs reference per case (win / loss / tie);
* ``FakeReplay`` (here): a deterministic environment for tests and examples.

``run_paired`` is the only driver: every prompt sees the same cases, trials and seeds; an episode that
raises becomes reward 0 with its error (data, not a crash); ``BudgetExceeded`` stops the whole replay.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

from diffprompt.errors import BudgetExceeded, ConfigError
from diffprompt.optimize.budget import BudgetTracker
from diffprompt.optimize.gate import fold_trials
from diffprompt.optimize.seeds import case_seed  # re-exported: replay.case_seed
from diffprompt.types import ReplayResult, TraceWithFeedback, Usage


@dataclass(frozen=True, kw_only=True, slots=True)
class Case:
    """One replayable case: usually one recorded episode (or the task it names)."""

    id: str
    replay_key: str | None = None
    slice: str = ""
    trace_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class ReplayEnvironment(Protocol):
    """Where candidate prompts are tried offline against the frozen target model.

    ``run`` must be thread-safe and deterministic given ``(case, system_prompt, seed, trial)`` up to
    the target model's own determinism. It may raise for a broken episode (the driver turns that into
    reward 0 + error) and must let ``BudgetExceeded`` propagate.
    """

    name: str

    def cases(self, traces: Sequence[TraceWithFeedback]) -> list[Case]: ...

    def run(self, case: Case, system_prompt: str, *, seed: int, trial: int) -> ReplayResult: ...


@dataclass(frozen=True, kw_only=True, slots=True)
class PairedReplay:
    """Results of a paired replay, in (case, trial) order for every version."""

    cases: tuple[Case, ...]
    trials: int
    seed: int
    results: Mapping[str, tuple[ReplayResult, ...]]
    seconds: float

    def rewards(self, version_id: str) -> list[float]:
        return [r.reward for r in self.results[version_id]]

    def slices(self) -> list[str]:
        return [c.slice for c in self.cases for _ in range(self.trials)]

    def case_rewards(self, version_id: str) -> list[float]:
        """One reward per case: the mean over its trials (the unit the gate tests)."""
        return fold_trials(self.rewards(version_id), self.trials)

    def case_slices(self) -> list[str]:
        return [c.slice for c in self.cases]

    def mean(self, version_id: str) -> float:
        rs = self.rewards(version_id)
        return sum(rs) / len(rs) if rs else 0.0

    def pass_hat_1(self, version_id: str) -> float:
        """Mean over cases of the share of successful trials (pass^1, reward 1 = success)."""
        return self.mean(version_id)

    def usage(self, version_id: str) -> Usage:
        total = Usage()
        for r in self.results[version_id]:
            total = total + r.usage
        return total

    def model_calls(self, version_id: str | None = None) -> int:
        ids = [version_id] if version_id else list(self.results)
        return sum(r.model_calls for v in ids for r in self.results[v])

    def mean_cost(self, version_id: str) -> float:
        rs = self.results[version_id]
        return self.usage(version_id).cost_usd / len(rs) if rs else 0.0

    def errors(self, version_id: str) -> int:
        return sum(1 for r in self.results[version_id] if r.error)

    def as_record(self) -> dict[str, Any]:
        """JSON-able summary (per-episode rewards and errors, no traces) for the run record."""
        return {
            "cases": [{"id": c.id, "replay_key": c.replay_key, "slice": c.slice} for c in self.cases],
            "trials": self.trials,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "versions": {
                v: {
                    "mean": self.mean(v),
                    "errors": self.errors(v),
                    "model_calls": self.model_calls(v),
                    "tokens": self.usage(v).total_tokens,
                    "cost_usd": self.usage(v).cost_usd,
                    "episodes": [
                        {"case": r.case_id, "trial": r.trial, "reward": r.reward, "error": r.error,
                         "calls": r.model_calls}
                        for r in rs
                    ],
                }
                for v, rs in self.results.items()
            },
        }


def _one(
    env: ReplayEnvironment, case: Case, version_id: str, text: str, seed: int, trial: int,
    tracker: BudgetTracker | None, stop: threading.Event,
) -> ReplayResult:
    if stop.is_set():
        raise BudgetExceeded("stopped", 0, 0)
    if tracker is not None:
        tracker.check()
    t0 = time.perf_counter()
    try:
        res = env.run(case, text, seed=seed, trial=trial)
    except BudgetExceeded:
        raise
    except Exception as exc:  # per-episode failures are data
        res = ReplayResult(case_id=case.id, version_id=version_id, trial=trial, reward=0.0,
                           error=f"{type(exc).__name__}: {exc}")
    res = replace(res, case_id=case.id, version_id=version_id, trial=trial, slice=case.slice,
                  reward=min(1.0, max(0.0, float(res.reward))),
                  seconds=res.seconds or time.perf_counter() - t0)
    if tracker is not None:
        tracker.add(calls=res.model_calls, usage=res.usage)
    return res


def run_paired(
    env: ReplayEnvironment,
    cases: Sequence[Case],
    prompts: Mapping[str, str],
    *,
    trials: int = 1,
    seed: int = 0,
    concurrency: int = 4,
    tracker: BudgetTracker | None = None,
    reference: str | None = None,
) -> PairedReplay:
    """Replay every prompt (``{version_id: text}``) on every case × trial with identical seeds.

    For a pairwise-judged environment (``judge_pairwise.PairwiseEnvironment``, e.g. ``--env
    recorded``) every other prompt's episodes are then judged against ``reference``'s (default: the
    ``parent`` or ``incumbent`` prompt, else the first), and the verdicts become the rewards.

    Runs up to ``concurrency`` episodes at once (threads). Raises ``BudgetExceeded`` when the
    tracker's budget runs out (the partial results are discarded: a gate must not see unequal sets).
    """
    if trials < 1:
        raise ConfigError(f"replay trials must be >= 1, got {trials}")
    if concurrency < 1:
        raise ConfigError(f"replay concurrency must be >= 1, got {concurrency}")
    t0 = time.perf_counter()
    stop = threading.Event()
    jobs = [(c, t, v) for c in cases for t in range(trials) for v in prompts]
    out: dict[tuple[str, int, str], ReplayResult] = {}
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="replay") as pool:
        futs = {
            pool.submit(_one, env, c, v, prompts[v], case_seed(seed, c.id, t), t, tracker, stop): (c.id, t, v)
            for c, t, v in jobs
        }
        done, pending = wait(futs, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            stop.set()
            for f in pending:
                f.cancel()
            exc = failed[0].exception()
            real = [f.exception() for f in failed if getattr(f.exception(), "budget", "") != "stopped"]
            raise (real[0] if real else exc)  # type: ignore[misc]
        for f, key in futs.items():
            out[key] = f.result()
    results = {v: tuple(out[(c.id, t, v)] for c in cases for t in range(trials)) for v in prompts}
    from diffprompt.optimize.judge_pairwise import PairwiseEnvironment, judge_paired

    if isinstance(env, PairwiseEnvironment) and len(prompts) > 1:
        ref = reference or next((k for k in ("parent", "incumbent") if k in prompts), next(iter(prompts)))
        results = judge_paired(
            env, cases, trials, results, reference=ref, seed=seed, concurrency=concurrency, tracker=tracker
        )
    return PairedReplay(cases=tuple(cases), trials=trials, seed=seed, results=results,
                        seconds=time.perf_counter() - t0)


class FakeReplay:
    """A deterministic replay environment for tests: a case passes when the prompt states its rule.

    ``rules`` maps a replay key to a phrase; an episode's reward is 1 when the phrase occurs in the
    system prompt (case-insensitive), else 0; with ``noise`` > 0 the outcome flips with that
    probability (seeded by the episode seed). Each episode counts ``calls_per_episode`` model calls.
    """

    name = "fake"

    def __init__(
        self, rules: Mapping[str, str], *, noise: float = 0.0, calls_per_episode: int = 1,
        slices: Mapping[str, str] | None = None, fail_keys: Sequence[str] = (),
    ) -> None:
        self.rules = dict(rules)
        self.noise = noise
        self.calls_per_episode = calls_per_episode
        self.slice_of = dict(slices or {})
        self.fail_keys = set(fail_keys)

    def cases(self, traces: Sequence[TraceWithFeedback]) -> list[Case]:
        seen: dict[str, Case] = {}
        for t in traces:
            key = t.trace.replay_key
            if key and key in self.rules and key not in seen:
                label = self.slice_of.get(key, "")
                seen[key] = Case(id=key, replay_key=key, slice=label, trace_id=t.trace.id)
        return list(seen.values())

    def run(self, case: Case, system_prompt: str, *, seed: int, trial: int) -> ReplayResult:
        import random

        if case.id in self.fail_keys:
            raise RuntimeError(f"episode for {case.id} crashed")
        ok = self.rules[case.id].lower() in system_prompt.lower()
        if self.noise and random.Random(seed).random() < self.noise:
            ok = not ok
        toks = len(system_prompt) // 4
        return ReplayResult(
            case_id=case.id, version_id="", trial=trial, reward=1.0 if ok else 0.0,
            usage=Usage(input_tokens=toks * self.calls_per_episode, output_tokens=10 * self.calls_per_episode,
                        cost_usd=1e-6 * toks * self.calls_per_episode),
            model_calls=self.calls_per_episode,
        )
