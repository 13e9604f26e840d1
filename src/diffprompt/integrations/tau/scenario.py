"""Named offline scenarios: a generated τ world and its policy degraded into a seed prompt.

A ``Scenario`` names the world (domain, seed, sizes) and the rules deleted or garbled from its policy.
``DEFAULT_SCENARIO`` is the one the demo, ``tau run``, ``optimize --env tau:...``, the scheduler and
``bench/optimize.py`` share (``bench/RESULTS.md`` reports it by name). ``record_traffic`` plays cases
through a replay environment with a prompt version and stores each episode as a trace with its
``reward`` feedback (source ``env``), like the middleware would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from diffprompt.errors import ConfigError
from diffprompt.types import Feedback, PromptVersion

if TYPE_CHECKING:
    from diffprompt.optimize.replay import Case, ReplayEnvironment

DomainName = Literal["airline", "retail"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Scenario:
    """A generated world plus the rules removed from its policy to make the degraded seed prompt.

    ``delete``: rule ids whose sentence is removed; ``garble``: rule ids whose sentence stays with its
    letters scrambled (so it no longer states the rule). ``degrade_seed`` fixes the scrambling, so a
    scenario always gives the same seed text.
    """

    name: str
    domain: DomainName
    delete: tuple[str, ...] = ()
    garble: tuple[str, ...] = ()
    world_seed: int = 0
    world_users: int = 200
    world_tasks: int = 60
    degrade_seed: int = 0

    def describe(self) -> str:
        """One line for terminals and RESULTS.md: ``name (domain): deleted a, b; garbled c``."""
        return (f"{self.name} ({self.domain} world seed {self.world_seed}, {self.world_users} users, "
                f"{self.world_tasks} tasks per split): deleted {', '.join(self.delete) or '-'}; "
                f"garbled {', '.join(self.garble) or '-'}")

    def degrade(self, policy: str, rules: Sequence[Any] | None = None) -> str:
        """``policy`` with this scenario's rules deleted and garbled (``ConfigError`` if one is not in it)."""
        if not (self.delete or self.garble):
            return policy
        from tau_envs.generate.policy import degrade_policy
        from tau_envs.rules import Rule, rules_for

        catalogue = [Rule.from_json(r) if isinstance(r, dict) else r for r in (rules or ())] or list(
            rules_for(self.domain)
        )
        return degrade_policy(policy, catalogue, delete=self.delete, garble=self.garble, seed=self.degrade_seed)

    def with_world(self, *, seed: int | None = None, users: int | None = None, tasks: int | None = None) -> Scenario:
        """The same degradation on another world size or seed (smaller worlds for tests)."""
        return replace(
            self,
            world_seed=self.world_seed if seed is None else seed,
            world_users=self.world_users if users is None else users,
            world_tasks=self.world_tasks if tasks is None else tasks,
        )


# The one default: two rules deleted, one garbled, on the 60-task generated airline world.
DEFAULT_SCENARIO = Scenario(
    name="airline-confirm-bags-basic",
    domain="airline",
    delete=("airline.confirm", "airline.free_bags"),
    garble=("airline.basic_no_change",),
)
RETAIL_SCENARIO = Scenario(
    name="retail-confirm-pending-refund",
    domain="retail",
    delete=("retail.confirm", "retail.pending_only"),
    garble=("retail.refund_method",),
)
SCENARIOS: Mapping[str, Scenario] = {s.name: s for s in (DEFAULT_SCENARIO, RETAIL_SCENARIO)}
_BY_DOMAIN: Mapping[str, Scenario] = {"airline": DEFAULT_SCENARIO, "retail": RETAIL_SCENARIO}


def default_scenario(domain: str = "airline") -> Scenario:
    """``DEFAULT_SCENARIO`` for airline, ``RETAIL_SCENARIO`` for retail."""
    try:
        return _BY_DOMAIN[domain]
    except KeyError:
        raise ConfigError(f"unknown domain {domain!r}: use airline or retail") from None


def get_scenario(name: str) -> Scenario:
    """A scenario by name (``ConfigError`` naming the known ones otherwise)."""
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ConfigError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}") from None


def degraded_world(
    out_dir: Path, *, scenario: Scenario = DEFAULT_SCENARIO, split: str = "test"
) -> tuple[Any, str]:
    """(loaded domain, degraded policy text) of ``scenario``'s world written to ``out_dir`` (reused)."""
    from tau_envs.domain import load_domain
    from tau_envs.generate import generate_world

    if not (out_dir / f"tasks_{split}.json").is_file():
        generate_world(scenario.domain, seed=scenario.world_seed, n_users=scenario.world_users,
                       n_tasks=scenario.world_tasks, out_dir=out_dir)
    dom = load_domain(scenario.domain, out_dir, split=split)
    return dom, scenario.degrade(dom.policy, dom.rules)


def record_traffic(
    store: Any,
    version: PromptVersion,
    env: ReplayEnvironment,
    cases: Sequence[Case],
    *,
    seed: int = 0,
    concurrency: int = 8,
) -> float:
    """Serve ``cases`` with ``version`` and record traces + reward feedback; returns the mean reward."""
    from diffprompt.optimize.replay import run_paired

    res = run_paired(env, cases, {version.id: version.text}, seed=seed, concurrency=concurrency)
    traces, feedback = [], []
    for r in res.results[version.id]:
        if r.trace is None:
            continue
        tr = replace(r.trace, slot=version.slot, version_id=version.id)
        traces.append(tr)
        feedback.append(Feedback(trace_id=tr.id, kind="reward", value=float(r.reward), source="env"))
        feedback.extend(  # the scripted user's complaints, as a real user's comments would arrive
            Feedback(trace_id=tr.id, kind="comment", value=None, text=str(c), source="user")
            for c in tr.metadata.get("user_comments", ())
        )
    store.add_traces(traces)
    store.add_feedback(feedback)
    return res.mean(version.id)
