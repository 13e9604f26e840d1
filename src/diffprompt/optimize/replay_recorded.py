"""``--env recorded``: counterfactual replay of a slot's own recorded conversations, judged pairwise.

For agents without a user simulator. Each case is one recorded conversation. ``run`` replays it with a
prompt from the shared prefix against the target (``replay_counterfactual.replay_conversation``:
tool results from the recording when name and arguments match, a live toolkit optional); the
round's replay driver then hands each (reference, challenger) pair of replays of the same case and
seed to ``judge_pair`` — a blind, order-swapped pairwise LLM judge (``judge_pairwise``) that sees the
recorded outcome, the user's later messages and the feedback (ratings, comments, rewards) — and the
win / loss / tie per case goes to the paired gate.

Privacy: with a ``redactor`` (the default in ``build``) each case is redacted once when it is built,
so neither the target, nor the judge, nor any editor receives the recorded PII; the recorded tool
calls are redacted the same way, so replayed calls still match them.

Cases carry their trace id, so the round's split keeps held-out conversations away from the blamer
and the editor (``prepare.CaseSplit.readable``). ``stats()`` counts outcomes (garbage replies by
kind, judge calls, unparseable answers, tool-call matches) for the run record.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from diffprompt.optimize.judge_pairwise import PairJudgement, PairwiseJudge
from diffprompt.optimize.replay import Case
from diffprompt.optimize.replay_counterfactual import (
    GARBAGE,
    ToolChat,
    infer_tool_schemas,
    prefix_and_users,
    replay_conversation,
)
from diffprompt.optimize.templates import transcript
from diffprompt.types import ReplayResult, Trace, TraceWithFeedback, utcnow


def feedback_lines(t: TraceWithFeedback) -> list[str]:
    """The feedback people and environments gave on a trace, as short lines (rating, comment, reward)."""
    out = []
    for f in t.feedback:
        label = {"reward": "environment reward", "rating": "user rating", "judge": "judge score"}.get(f.kind, f.kind)
        if f.value is not None:
            out.append(f"{label}: {f.value:g}" + (f" — {f.text}" if f.text else ""))
        elif f.text:
            out.append(f"{'user comment' if f.kind == 'comment' else label}: {f.text}")
    return out


class RecordedReplay:
    """``ReplayEnvironment`` + ``PairwiseEnvironment`` over recorded conversations (module docstring)."""

    name = "recorded"

    def __init__(
        self,
        chat: ToolChat,
        judge: PairwiseJudge,
        *,
        tools: Sequence[Mapping[str, Any]] = (),
        live_tools: Mapping[str, Callable[..., Any]] | None = None,
        max_steps: int = 8,
        max_user_turns: int = 1,
        redactor: Any = None,
        max_chars: int = 3000,
    ) -> None:
        self.chat = chat
        self.judge = judge
        self.tools = [dict(t) for t in tools]
        self.live_tools = dict(live_tools or {})
        self.max_steps = max_steps
        self.max_user_turns = max_user_turns
        self.redactor = redactor
        self.max_chars = max_chars
        self._schemas: list[dict[str, Any]] = list(self.tools)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    # -- cases ----------------------------------------------------------------------------------
    def cases(self, traces: Sequence[TraceWithFeedback]) -> list[Case]:
        out = []
        for t in traces:
            msgs = [dict(m) for m in t.trace.messages]
            if self.redactor is not None:
                msgs = self.redactor.redact_messages(msgs)
            prefix, later = prefix_and_users(msgs)
            if not prefix:
                continue
            fb = feedback_lines(t)
            if self.redactor is not None:
                fb = [self.redactor.redact(x) for x in fb]
            outcome = t.reward
            out.append(
                Case(
                    id=t.trace.id,
                    replay_key=t.trace.replay_key,
                    trace_id=t.trace.id,
                    slice=str(t.trace.metadata.get("slice", "")),
                    data={
                        "messages": msgs,
                        "outcome": outcome,
                        "feedback": fb,
                        "later": [str(m.get("content") or "") for m in later],
                        "error": t.trace.error,
                    },
                )
            )
        if not self.tools:
            names = {str(t.get("function", {}).get("name")) for t in self._schemas}
            inferred = infer_tool_schemas([c.data["messages"] for c in out])
            with self._lock:
                self._schemas.extend(s for s in inferred if s["function"]["name"] not in names)
        return out

    # -- one replay -----------------------------------------------------------------------------
    def run(self, case: Case, system_prompt: str, *, seed: int, trial: int) -> ReplayResult:
        r = replay_conversation(
            self.chat,
            system_prompt,
            case.data["messages"],
            tools=self._schemas,
            seed=seed,
            max_steps=self.max_steps,
            max_user_turns=self.max_user_turns,
            live_tools=self.live_tools,
        )
        with self._lock:
            self._counts[f"outcome:{r.outcome}"] += 1
            self._counts["target_calls"] += r.model_calls
            self._counts["tool_matches"] += r.tool_matches
            self._counts["tool_misses"] += r.tool_misses
            self._counts["truncated_replies"] += r.truncated
        now = utcnow()
        trace = Trace(
            id=f"replay:{case.id}:{trial}",
            slot="",
            version_id=None,
            thread_id=case.id,
            messages=r.turns,
            started_at=now,
            ended_at=now,
            usage=r.usage,
            model_calls=r.model_calls,
            metadata={"outcome": r.outcome, "reason": r.reason, "tool_matches": r.tool_matches},
        )
        return ReplayResult(
            case_id=case.id,
            version_id="",
            trial=trial,
            reward=0.0,  # set by the pairwise judgement
            error=f"{r.outcome}: {r.reason}" if r.outcome in GARBAGE or r.outcome == "max_steps" else None,
            trace=trace,
            usage=r.usage,
            model_calls=r.model_calls,
        )

    # -- pairwise judgement ---------------------------------------------------------------------
    def judge_pair(
        self, case: Case, reference: ReplayResult, challenger: ReplayResult, *, seed: int
    ) -> PairJudgement:
        ref_bad, ch_bad = _garbage(reference), _garbage(challenger)
        if ref_bad or ch_bad:
            with self._lock:
                self._counts["judged_without_model"] += 1
            if ref_bad and ch_bad:
                return PairJudgement(verdict="tie", reason=f"both replays failed ({ref_bad}; {ch_bad})")
            if ch_bad:
                return PairJudgement(verdict="loss", reason=f"the challenger's replay failed: {ch_bad}")
            return PairJudgement(verdict="win", reason=f"the reference's replay failed: {ref_bad}")
        prefix, _ = prefix_and_users(case.data["messages"])
        outcome = case.data.get("outcome")
        context = {
            "prefix": transcript(prefix, max_chars=self.max_chars),
            "outcome": "unknown" if outcome is None else f"reward {outcome:g} (1 = the task was solved)",
            "later": case.data.get("later", [])[:4],
            "feedback": case.data.get("feedback", []),
        }
        ref_text = transcript(reference.trace.messages if reference.trace else (), max_chars=self.max_chars)
        ch_text = transcript(challenger.trace.messages if challenger.trace else (), max_chars=self.max_chars)
        j = self.judge.compare(context, ref_text, ch_text, seed=seed)
        with self._lock:
            self._counts["judge_calls"] += j.judge_calls
            self._counts["judge_unparseable"] += j.unparseable
            self._counts[f"verdict:{j.verdict}"] += 1
        return j

    def stats(self) -> dict[str, int]:
        """Counts so far: outcomes by kind, target and judge calls, unparseable answers, tool matches."""
        with self._lock:
            return dict(sorted(self._counts.items()))


def _garbage(r: ReplayResult) -> str:
    """Why a replay is unusable as a reply ('' when it is a reply)."""
    if r.trace is None:
        return r.error or "the replay raised"
    outcome = str(r.trace.metadata.get("outcome", ""))
    return f"{outcome}: {r.trace.metadata.get('reason', '')}" if outcome in GARBAGE else ""

