"""``TauJudge``: the honest offline judge of τ episodes — the default offline blamer.

It sees what a real judge of a τ episode would see, and nothing more:

- the recorded conversation (user and agent texts, tool calls and their results),
- the reward and the user's own feedback text (``comment`` feedback),
- the environment's evidence (:mod:`tau_envs.evidence`): which writes differ from the expected
  ones, with their arguments, the database difference, the required outputs never said,
- the tool schemas' vocabulary (tool and argument names, turned into plain words below).

It never reads the policy (``domain.policy``), the rule catalogue (:mod:`tau_envs.rules`,
``domain.rules``), the simulated model's blame notes (``explain_failure``) or the seed prompt's
history. From the evidence it writes one critique per differing write (what the agent did, what was
expected, what the conversation shows around it, the facts of the record it touched) and points at
the prompt's spans only by text similarity to that critique (TF-IDF, the attribution machinery):
a span that reads like a letter-scrambled statement of the critique, or is close to it, is blamed as
``wrong``; otherwise the closest span is blamed with ``missing`` (insert the missing instruction next
to it). It does not know the rules, so its ``Blame.hint`` is never a rule's sentence: it is the
judge's own suggested instruction, when it has one — the confirmation finding's, and those induced
from the whole readable window by ``observe`` (:mod:`tau_envs.induce`: features of the records that
separate unexpected writes from expected ones, refused from done, wrong arguments, tool errors). A
hinted blame inserts next to its closest span unless the hint restates a garbled span.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diffprompt.optimize.attribution import Blame, closest_span, editable_spans, restates, tfidf_similarity
from diffprompt.types import PromptVersion, TraceWithFeedback
from tau_envs.evidence import ActionDiff, Call, DbChange, Evidence, field_diffs, observed, tau_evidence, user_texts
from tau_envs.induce import Episode, Suggestion, induce, schema_enums

# The tools' vocabulary in plain words: (what the agent did, what no such change means).
_DID: Mapping[str, tuple[str, str]] = {
    "cancel_reservation": ("cancelled reservation {reservation_id}", "no cancellation"),
    "book_reservation": ("booked a new reservation", "no booking"),
    "update_reservation_flights": (
        "changed the flights or cabin of reservation {reservation_id}",
        "no flight or cabin change",
    ),
    "update_reservation_baggages": ("changed the checked bags of reservation {reservation_id}", "no baggage change"),
    "update_reservation_passengers": ("changed the passengers of reservation {reservation_id}", "no passenger change"),
    "send_certificate": ("sent a travel certificate of {amount} dollars as compensation", "no certificate"),
    "cancel_pending_order": ("cancelled order {order_id}", "no cancellation"),
    "return_delivered_order_items": ("returned items of order {order_id}", "no return"),
    "exchange_delivered_order_items": ("exchanged items of order {order_id}", "no exchange"),
    "modify_pending_order_items": ("modified the items of order {order_id}", "no item change"),
    "modify_pending_order_address": ("changed the shipping address of order {order_id}", "no address change"),
    "modify_pending_order_payment": ("changed the payment method of order {order_id}", "no payment change"),
    "modify_user_address": ("changed the user's address", "no address change"),
}
_FIELD: Mapping[str, str] = {
    "nonfree_baggages": "paid checked bags",
    "total_baggages": "checked bags in total",
    "payment_id": "payment method",
    "payment_method_id": "payment method",
    "payment_methods": "payments",
    "cabin": "cabin",
    "flights": "flights",
    "passengers": "passengers",
    "amount": "certificate amount",
    "reason": "cancellation reason",
    "item_ids": "items",
    "new_item_ids": "new items",
    "insurance": "travel insurance",
    "user_id": "user",
}
_ID_ARGS = ("reservation_id", "order_id", "user_id")
_ASK = re.compile(r"\b(confirm|proceed|go ahead|shall i|should i|do you want me to)\b|\(yes/no\)", re.I)
_YES = re.compile(r"\b(yes|yeah|yep|sure|correct|go ahead|please do|confirm(ed)?|proceed)\b", re.I)
_NO = re.compile(r"^\s*no\b|\b(don'?t|do not|changed my mind|never mind)\b", re.I)
_WORD = re.compile(r"[a-z]{4,}")
_REFUSED = re.compile(r"\b(sorry|cannot|can't|unable|not (possible|allowed|eligible))\b", re.I)


def _words(name: str) -> str:
    return name.replace("_", " ")


def _short(value: Any, limit: int = 160) -> str:
    if isinstance(value, str):
        text = value.replace("_", " ") if re.fullmatch(r"[a-z_]+", value) else value
    else:
        text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _did(diff: ActionDiff, db: Sequence[DbChange] = ()) -> tuple[str, str]:
    did, none = _DID.get(diff.name, (f"called {diff.name}", f"no {_words(diff.name)}"))
    if diff.name == "update_reservation_flights" and db:  # say which of the two it changed
        touched = {p for c in db for p in c.path[2:3]}
        what = [w for w in ("flights", "cabin") if w in touched]
        if len(what) == 1:
            did, none = f"changed the {what[0]} of reservation {{reservation_id}}", f"no {what[0]} change"
    args = {k: _short(v) for k, v in diff.args.items()}
    try:
        return did.format(**args), none
    except (KeyError, IndexError):
        return re.sub(r"\s*\{\w+\}", "", did), none


def _field_text(name: str, actual: Any, expected: Any) -> str:
    what = _FIELD.get(name, _words(name))
    text = f"{what}: {_short(actual)} where {_short(expected)} was expected"
    if isinstance(actual, int | float) and isinstance(expected, int | float) and not isinstance(actual, bool):
        gap = actual - expected
        text += f" ({abs(gap):g} {'more' if gap > 0 else 'fewer'})"
        if name.startswith("nonfree") and gap > 0:
            text += f"; {gap:g} of them should have been free of charge"
    return text


def _facts(evidence: Evidence, diff: ActionDiff) -> str:
    """Scalar facts of the record the write touched, as the agent's own lookups returned them."""
    ids = {str(diff.args.get(k)) for k in _ID_ARGS if diff.args.get(k)}
    for call in reversed(evidence.calls):
        if (diff.index >= 0 and call.index >= diff.index) or not ids & {str(v) for v in call.args.values()}:
            continue
        obj = observed(call)
        if obj is not None:
            pairs = [
                f"{_words(k)} {_short(v, 40)}"
                for k, v in obj.items()
                if isinstance(v, str | int | float) and k not in ("name", "email", "dob") and not k.endswith("_id")
            ]
            if pairs:
                return f"The record the agent looked up shows: {', '.join(pairs[:8])}."
    return ""


def _asked(messages: Sequence[Mapping[str, Any]], diff: ActionDiff, calls: Sequence[Call]) -> str:
    """Did the agent ask for (and get) the user's go-ahead right before this write?

    ``"yes"`` (asked, the user agreed), ``"no"`` (the user declined, or said no, before the write),
    ``"never"`` (no question about going ahead since the previous write), ``""`` (no write turn).
    """
    if diff.index < 0:
        return ""
    prev_writes = [c.index for c in calls if c.index < diff.index and c.name in _DID]
    start = max(prev_writes, default=0)
    turns = [(str(m.get("role")), str(m.get("content") or "")) for m in messages[start : diff.index]]
    users = [t for r, t in turns if r == "user"]
    if users and _NO.search(users[-1]):
        return "no"
    for k, (role, text) in enumerate(turns):
        if role == "assistant" and _ASK.search(text):
            reply = next((t for r, t in turns[k + 1 :] if r == "user"), "")
            if _YES.search(reply) and not _NO.search(reply):
                return "yes"
    return "never"


def _db_text(changes: Sequence[DbChange], limit: int = 3) -> str:
    if not changes:
        return ""
    parts = [
        f"{'.'.join(c.path)} is {_short(c.actual, 80)} (expected {_short(c.expected, 80)})" for c in changes[:limit]
    ]
    return "Database difference: " + "; ".join(parts) + "."


def _last_agent_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "assistant" and m.get("content"):
            return str(m["content"])
    return ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Finding:
    """One critique sentence of a failing episode and the words used to find its span."""

    text: str
    query: str
    hint: str = ""  # an instruction the finding suggests, in the judge's words ("" when none)


def critique(
    evidence: Evidence, messages: Sequence[Mapping[str, Any]], comments: Sequence[str] = ()
) -> list[Finding]:
    """The judge's findings for one episode, written from its evidence (empty when it is clean).

    One finding per differing write; one more when a write the user had not agreed to went ahead
    without the agent asking for the go-ahead; one when required outputs were never said.
    """
    out: list[Finding] = []
    said = "; ".join(f"{c!r}" for c in comments[:2])
    quote = f" The user said: {said}." if said else ""
    unasked: list[str] = []
    for diff in evidence.actions:
        did, none = _did(diff, evidence.db)
        asked = _asked(messages, diff, evidence.calls)
        facts = _facts(evidence, diff)
        if diff.kind == "unexpected":
            main = f"The agent {did}, but the expected outcome has {none}: it should not have done this."
        elif diff.kind == "different":
            fields = "; ".join(_field_text(k, a, e) for k, a, e in diff.fields[:4])
            main = f"The agent {did} with the wrong details: {fields}."
        else:
            last = _last_agent_text(messages)
            how = "It refused the request" if _REFUSED.search(last) else "It ended without doing it"
            main = (
                f"The user's request was not carried out: the agent should have {did}"
                f" ({_words(diff.name)} with {_short(dict(diff.args), 200)})."
            )
            tried = [c for c in evidence.calls if c.name == diff.name and c.observation.startswith("Error")]
            if tried:
                fields = "; ".join(_field_text(k, a, e) for k, a, e in field_diffs(tried[-1].args, diff.args)[:3])
                main += f" It tried with {fields} and the tool answered {_short(tried[-1].observation, 160)!r}."
            main += f" {how}: {_short(last, 160)!r}."
        note = ""
        if asked == "no":
            note = "The user had said no to it before the agent went ahead."
        elif asked == "never":
            note = "The agent did not ask the user to confirm before making this change."
            unasked.append(did)
        text = " ".join(p for p in (main, note, facts, quote) if p)
        out.append(Finding(text=text, query=f"{main} {facts}{quote}".strip()))
    if unasked:
        what = "; ".join(dict.fromkeys(unasked))
        text = (
            f"The agent made changes without first telling the user what it would do and asking them to "
            f"confirm (yes) before going ahead: it {what}.{quote}"
        )
        ask = "Before any change, list what you will do and ask the user to confirm (yes) first."
        out.append(Finding(text=text, query=f"{ask}{quote}", hint=ask))
    if evidence.missing_outputs:
        need = ", ".join(repr(o) for o in evidence.missing_outputs)
        out.append(Finding(text=f"The agent never told the user {need}, which the answer required.{quote}",
                           query=f"tell the user {need}"))
    if out and evidence.db:
        out[0] = Finding(text=f"{out[0].text} {_db_text(evidence.db)}", query=out[0].query)
    return out


def _anagram(word: str) -> str:
    return word[0] + "".join(sorted(word[1:]))


def garbled_spans(texts: Sequence[str], known: str = "") -> set[int]:
    """Indices of texts most of whose words are letter-scrambled copies of words seen elsewhere.

    A word is scrambled when some other word of the prompt (or of ``known``) has the same first letter
    and letters but another spelling — text a reader cannot take at face value.
    """
    out = set()
    for i, text in enumerate(texts):
        words = _WORD.findall(text.lower())
        if len(words) < 3:
            continue
        other = set(_WORD.findall((" ".join(t for j, t in enumerate(texts) if j != i) + " " + known).lower()))
        by_key: dict[str, set[str]] = {}
        for w in other:
            by_key.setdefault(_anagram(w), set()).add(w)
        odd = sum(1 for w in words if w not in other and by_key.get(_anagram(w), set()) - {w})
        if odd >= 0.4 * len(words):
            out.add(i)
    return out


class TauJudge:
    """The honest offline judge as a ``Blamer`` (see the module docstring).

    ``domain`` is a loaded ``tau_envs.domain.Domain``; only its tasks (expected actions, outputs),
    tools and initial database are used. A trace whose replay key names no task of this domain and
    split gets no blame. ``wrong_at``: TF-IDF cosine between a critique and a span above which the
    span is blamed as ``wrong`` (rewrite it) rather than ``missing`` (insert next to it);
    ``garbled_at``: letter-bag cosine at which a scrambled span (:func:`garbled_spans`) that is
    the critique's best letter-bag match is blamed as ``wrong``.
    """

    def __init__(
        self,
        domain: Any,
        *,
        protected: Sequence[str] = (),
        wrong_at: float = 0.55,
        garbled_at: float = 0.15,
        max_suggestions: int = 4,
    ) -> None:
        self._domain = domain
        self._protected = tuple(protected)
        self.wrong_at = wrong_at
        self.garbled_at = garbled_at
        self.max_suggestions = max_suggestions
        self.suggestions: list[Suggestion] = []  # induced from the latest ``observe`` window
        self._suggested: dict[str, list[Suggestion]] = {}
        self._evidence: dict[str, Evidence] = {}  # per trace id, from the latest ``observe``

    def _task(self, trace: TraceWithFeedback) -> Any:
        key = trace.trace.replay_key or ""
        parts = key.split(":")
        dom = self._domain
        if len(parts) != 4 or parts[0] != "tau" or not parts[3].isdigit():
            return None
        if parts[1] != dom.name or parts[2] != dom.split or not 0 <= int(parts[3]) < len(dom.tasks):
            return None
        return dom.task(int(parts[3]))

    def observe(self, window: Sequence[TraceWithFeedback]) -> list[Suggestion]:
        """Induce instructions from the whole readable window (:mod:`tau_envs.induce`).

        Called by ``attribute`` before the per-trace ``blame`` calls with the traces the round may
        read (never the held-out ones); each failing trace a suggestion speaks for then gets it as a
        ``missing`` (or garbled ``wrong``) blame whose ``hint`` is the suggestion.
        """
        episodes = []
        self._evidence = {}
        for t in window:
            task = self._task(t)
            if task is None:
                continue
            messages = list(t.trace.messages)
            ev = self._evidence[t.trace.id] = tau_evidence(self._domain, task, messages)
            refused = bool(_REFUSED.search(_last_agent_text(messages))) and any(a.kind == "missing" for a in ev.actions)
            expected = [(a.name, dict(a.kwargs)) for a in task.actions if a.name in _DID]
            opening = next(iter(user_texts(messages)), "")
            episodes.append(Episode(trace_id=t.trace.id, user_id=str(task.user_id or ""), expected=expected,
                                    evidence=ev, refused=refused, request=opening))
        self.suggestions = (
            induce(episodes, self._domain.fresh_db(), _FIELD, self._domain.tools.clock,
                   schema_enums(self._domain.tools_info)) if episodes else []
        )
        self._suggested = {}
        for sug in self.suggestions:
            for tid in sug.trace_ids:
                self._suggested.setdefault(tid, []).append(sug)
        return self.suggestions

    def findings(self, trace: TraceWithFeedback) -> list[Finding]:
        """The critique of one trace ([] when its task is unknown or the episode matches)."""
        task = self._task(trace)
        if task is None:
            return []
        messages = list(trace.trace.messages)
        evidence = self._evidence.get(trace.trace.id)
        if evidence is None:  # not in the latest observed window
            evidence = tau_evidence(self._domain, task, messages)
        return critique(evidence, messages, trace.comments)

    def blame(self, prompt: PromptVersion, trace: TraceWithFeedback) -> list[Blame]:
        spans = editable_spans(prompt, self._protected)
        findings = self.findings(trace) if spans else []
        if not spans or (not findings and not self._suggested.get(trace.trace.id)):
            return []
        texts = [s.text for s in spans]
        garbled = garbled_spans(texts, " ".join(f.text for f in findings))
        hints = [f.hint for f in findings]
        for sug in self._suggested.get(trace.trace.id, ())[: self.max_suggestions]:
            findings.append(Finding(text=f"Across the window, {sug.because}. Suggested instruction: {sug.hint}",
                                    query=sug.hint))
            hints.append(sug.hint)
        out: list[Blame] = []
        for f, hint in zip(findings, hints, strict=True):
            target, kind = None, "missing"
            if garbled and hint:  # rewrite a garbled span only with a suggestion that restates it
                best = next((k for k in sorted(garbled) if restates(hint, texts[k])), None)
                if best is not None:
                    target, kind = spans[best], "wrong"
            elif garbled:
                sims = tfidf_similarity([f.query], texts, anagram=True)[0]
                best = max(range(len(spans)), key=lambda k: (sims[k], -k))
                if best in garbled and sims[best] >= self.garbled_at:
                    target, kind = spans[best], "wrong"
            if target is None:
                target, sim = closest_span(f.query, spans)
                if target is None:
                    continue
                # with a suggestion, a close span that is not garbled may be a correct rule: add next to it
                kind = "wrong" if sim >= self.wrong_at and not hint else "missing"
            out.append(Blame(span_id=target.id, reason=f.text, kind=kind, trace_id=trace.trace.id,  # type: ignore[arg-type]
                             hint=hint))
        return out
