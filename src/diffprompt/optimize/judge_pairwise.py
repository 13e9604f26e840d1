"""A blind pairwise LLM judge: which of two replayed replies is better, in both orders.

``PairwiseJudge.compare`` shows the judge the shared conversation prefix, what happened in the
recording (outcome, the user's later messages, ratings and comments) and the two replies as "A" and
"B" — never which prompt produced which. The first order is drawn from the seed; the judge is then
asked again with the order swapped, and only a preference that survives the swap counts:

* both say candidate → ``win``; both say incumbent → ``loss``; anything else → ``tie``.

Answers are requested as structured output (``response_format`` with a JSON schema, so llama.cpp,
vLLM and OpenAI constrain decoding) and parsed strictly: one JSON object whose ``winner`` is "A",
"B" or "tie". An unparseable answer counts as a tie for that order, and its raw text is kept in the
``PairJudgement`` (never a crash, never a silent win). A reply that is garbage (empty, malformed tool
call, context overflow, failed call) loses to one that is not, without asking the judge.

``judge_paired`` applies the judge to a ``PairedReplay``'s raw results (``replay.run_paired`` calls it
for environments that are ``PairwiseEnvironment``) and encodes the outcomes as rewards for the
existing paired gate: with one challenger, win → (reference 0, challenger 1), loss → (1, 0),
tie → (0, 0), so the gate's exact sign test runs on wins vs losses; with several challengers (the
screening minibatch) the reference scores 0.5 and each challenger 1 / 0.5 / 0.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from diffprompt.errors import ModelError
from diffprompt.optimize.templates import render
from diffprompt.types import ReplayResult, Usage

Verdict = Literal["win", "loss", "tie"]
SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {"winner": {"type": "string", "enum": ["A", "B", "tie"]}, "reason": {"type": "string"}},
    "required": ["winner", "reason"],
    "additionalProperties": False,
}


@dataclass(frozen=True, kw_only=True, slots=True)
class PairJudgement:
    """The judged outcome of one (case, trial) for the challenger against the reference."""

    verdict: Verdict
    reason: str
    votes: tuple[str, ...] = ()  # per order: "challenger" | "reference" | "tie" | "unparseable"
    raw: tuple[str, ...] = ()  # the judge's raw answers (kept for unparseable ones)
    unparseable: int = 0
    judge_calls: int = 0
    usage: Usage = field(default_factory=Usage)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "votes": list(self.votes),
            "unparseable": self.unparseable,
            "judge_calls": self.judge_calls,
            "raw": [r[:500] for r in self.raw],
        }


def parse_verdict(text: str) -> tuple[str, str] | None:
    """``(winner, reason)`` from a strict JSON answer; None when it is not exactly that.

    Accepts the bare object, optionally inside one Markdown code fence; nothing is searched for
    inside free text.
    """
    s = text.strip()
    if s.startswith("```"):
        s = s.strip("`").strip()
        if s.lower().startswith("json"):
            s = s[4:].strip()
    try:
        obj = json.loads(s)
    except json.JSONDecodeError:
        return None
    if not isinstance(obj, dict):
        return None
    winner = obj.get("winner")
    if not isinstance(winner, str) or winner.strip() not in ("A", "B", "tie"):
        return None
    reason = obj.get("reason")
    return winner.strip(), reason if isinstance(reason, str) else ""


class PairwiseJudge:
    """Blind, order-swapped pairwise comparison through a ``StructuredClient`` (see module docstring)."""

    def __init__(self, client: Any, *, max_tokens: int = 128, max_chars: int = 3000) -> None:
        self.client = client
        self.max_tokens = max_tokens
        self.max_chars = max_chars

    def compare(
        self, context: Mapping[str, Any], reference: str, challenger: str, *, seed: int
    ) -> PairJudgement:
        """Judge ``challenger`` vs ``reference`` (reply transcripts) given ``context``.

        ``context`` holds ``prefix`` (transcript), ``outcome`` (text), ``later`` and ``feedback``
        (lists of strings).
        """
        first_is_challenger = random.Random(seed).random() < 0.5
        votes: list[str] = []
        raws: list[str] = []
        reasons: list[str] = []
        usage, bad = Usage(), 0
        for challenger_is_a in (first_is_challenger, not first_is_challenger):
            a, b = (challenger, reference) if challenger_is_a else (reference, challenger)
            text = render(
                "optimize_pairwise_judge.j2",
                prefix=context.get("prefix", ""),
                outcome=context.get("outcome", "unknown"),
                later=list(context.get("later", ())),
                feedback=list(context.get("feedback", ())),
                reply_a=a[: self.max_chars] or "(no reply)",
                reply_b=b[: self.max_chars] or "(no reply)",
            )
            try:
                reply = self.client.complete_json(
                    [{"role": "user", "content": text}], SCHEMA, name="verdict", max_tokens=self.max_tokens
                )
            except ModelError as exc:  # a failed judge call is an unusable answer, recorded as such
                raws.append(f"judge call failed: {exc}")
                bad += 1
                votes.append("unparseable")
                continue
            usage = usage + reply.usage
            raws.append(reply.text)
            parsed = parse_verdict(reply.text)
            if parsed is None:
                bad += 1
                votes.append("unparseable")
                continue
            winner, why = parsed
            reasons.append(why)
            if winner == "tie":
                votes.append("tie")
            else:
                votes.append("challenger" if (winner == "A") == challenger_is_a else "reference")
        verdict: Verdict = "tie"
        if votes == ["challenger", "challenger"]:
            verdict = "win"
        elif votes == ["reference", "reference"]:
            verdict = "loss"
        if bad:
            raw = raws[votes.index("unparseable")][:160]
            reason = f"{bad} of 2 judge answers unparseable (counted as tie): {raw!r}"
        elif verdict == "tie" and len(set(votes)) > 1:
            reason = f"the judge's preference flipped with the order ({votes[0]} / {votes[1]}): position bias, tie"
        else:
            reason = "; ".join(r for r in reasons if r)[:300]
        return PairJudgement(
            verdict=verdict,
            reason=reason,
            votes=tuple(votes),
            raw=tuple(raws),
            unparseable=bad,
            judge_calls=2,
            usage=usage,
        )


@runtime_checkable
class PairwiseEnvironment(Protocol):
    """A replay environment whose episodes are scored by comparing two prompts' replays of a case."""

    name: str

    def judge_pair(
        self, case: Any, reference: ReplayResult, challenger: ReplayResult, *, seed: int
    ) -> PairJudgement: ...


_REWARDS_ONE: Mapping[Verdict, tuple[float, float]] = {"win": (0.0, 1.0), "loss": (1.0, 0.0), "tie": (0.0, 0.0)}
_REWARDS_MANY: Mapping[Verdict, float] = {"win": 1.0, "loss": 0.0, "tie": 0.5}


def judge_paired(
    env: PairwiseEnvironment,
    cases: Sequence[Any],
    trials: int,
    results: Mapping[str, tuple[ReplayResult, ...]],
    *,
    reference: str,
    seed: int,
    concurrency: int = 4,
    tracker: Any = None,
) -> dict[str, tuple[ReplayResult, ...]]:
    """Judge every challenger against ``reference`` per (case, trial); rewards as in the module docstring.

    Each challenger's ``ReplayResult`` gets its reward, the judge's usage, and — for ties from
    unparseable answers — an ``error`` naming the reason; the judgement itself goes to the result's
    trace metadata (``judgement``) when the result has a trace.
    """
    from diffprompt.optimize.seeds import case_seed

    challengers = [v for v in results if v != reference]
    ref = list(results[reference])
    jobs = [(v, i) for v in challengers for i in range(len(ref))]
    lock = threading.Lock()

    def one(job: tuple[str, int]) -> tuple[str, int, PairJudgement]:
        v, i = job
        case = cases[i // trials]
        j = env.judge_pair(case, ref[i], results[v][i], seed=case_seed(seed + 31, case.id, i % trials))
        if tracker is not None:
            with lock:
                tracker.add(usage=j.usage)
        return v, i, j

    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="judge") as pool:
        judged = list(pool.map(one, jobs))
    out: dict[str, list[ReplayResult]] = {v: list(rs) for v, rs in results.items()}
    single = len(challengers) == 1
    ref_rewards = [0.5] * len(ref)
    for v, i, j in judged:
        r = out[v][i]
        if single:
            ref_rewards[i], reward = _REWARDS_ONE[j.verdict]
        else:
            reward = _REWARDS_MANY[j.verdict]
        err = r.error
        if j.unparseable:
            err = f"judge: {j.reason}" + (f"; {err}" if err else "")
        trace = r.trace
        if trace is not None:
            trace = replace(trace, metadata={**dict(trace.metadata), "judgement": j.as_dict()})
        out[v][i] = replace(r, reward=reward, error=err, usage=r.usage + j.usage, trace=trace)
    out[reference] = [replace(r, reward=ref_rewards[i]) for i, r in enumerate(out[reference])]
    return {v: tuple(rs) for v, rs in out.items()}
