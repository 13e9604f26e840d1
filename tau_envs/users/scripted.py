"""``ScriptedUser``: a deterministic customer driven by a generated task's structured ``intent``.

It states its request, answers the agent's questions with the facts it has (only those asked for),
says "yes" to a confirmation of its request (or "no" when the intent says it declines), and ends
the episode with ``###STOP###`` once its goal is met (the agent reports the request done, or that
nothing was changed after it declined) or the conversation stalls. A refusal does not end it at
once: the user pushes back (twice when the intent expects the request to be carried out, once when
it expects a refusal) and then stops.

It **complains like a user** when something goes wrong that a user can notice: the agent reports a
change the user never agreed to (or had declined), a change made without checking with the user
first, or a refusal of a request the user expected to be granted. The complaint is said in the
conversation, in the user's own words (seeded, varied per intent), and kept in ``feedback()`` so the
runner records it as ``comment`` feedback. Phrasing varies with the seed; the facts never do.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from diffprompt.errors import ConfigError
from tau_envs.types import STOP_TOKEN, Task

_REFUSAL = re.compile(
    r"\b(sorry|cannot|can't|can ?not|unable|not able|not allowed|not eligible|not possible)\b", re.I
)
_DONE = re.compile(
    r"\b(successfully|has been|have been|all done|is now|completed|no changes were made|will not)\b", re.I
)
_NOTHING = re.compile(r"\b(no changes were made|will not|not make)\b", re.I)
_MAX_STALLS = 3
_PUSHBACKS = {"act": 2, "refuse": 1}  # times the user pushes back on a refusal, by what the task expects
_GOALS = {
    "cancel": "cancel reservation {rid}",
    "change_cabin": "upgrade reservation {rid}",
    "change_flight": "move reservation {rid} to the new date",
    "add_bags": "add the checked bags to reservation {rid}",
    "remove_bags": "reduce the checked bags on reservation {rid}",
    "compensation": "get some compensation for what happened",
    "update_passenger": "change the passenger on reservation {rid}",
    "book": "book this trip",
    "cancel_order": "cancel order {rid}",
    "return_items": "return these items",
    "exchange_items": "exchange the items",
    "modify_items": "change the items of order {rid}",
    "modify_address": "change the shipping address of order {rid}",
    "modify_payment": "change how order {rid} is paid",
}


def _pick(rng: random.Random, *options: str) -> str:
    return options[rng.randrange(len(options))]


def _people(people: list[Mapping[str, str]]) -> str:
    return ", ".join(f"{p['first_name']} {p['last_name']} ({p['dob']})" for p in people)


class ScriptedUser:
    """A ``UserSimulator`` for tasks with an ``intent`` (generated worlds)."""

    def __init__(self) -> None:
        self._intent: Mapping[str, Any] = {}
        self._rng = random.Random(0)
        self._stalls = 0
        self._opening = ""
        self._retail: dict[str, Any] = {}  # per-episode state of the retail phrasing
        self._asked = self._agreed = False
        self._pushbacks = 0
        self._complaints: list[str] = []
        self.done = False

    # -- the protocol ------------------------------------------------------------------------------
    def reset(self, task: Task, *, seed: int) -> str:
        """Start an episode: the first message states the request."""
        if not task.intent or "kind" not in task.intent:
            raise ConfigError(
                f"task {task.index} has no structured intent; the scripted user needs a generated "
                "world (use the LLM user for official tasks)"
            )
        self._intent = task.intent
        self._rng = random.Random(f"{seed}:{task.index}")
        self._stalls = 0
        self._retail = {}
        self._asked = self._agreed = False
        self._pushbacks = 0
        self._complaints = []
        self.done = False
        self._opening = self._first()
        if self._rng.random() < 0.5 and "user_id" in self._intent:
            return f"{self._opening} My user id is {self._intent['user_id']}."
        return self._opening

    def step(self, agent_message: str) -> str:
        """Reply to the agent; the reply contains ``###STOP###`` when the episode should end."""
        if self.done:
            return STOP_TOKEN
        msg = agent_message or ""
        low = msg.lower()
        if "(yes/no)" in low or re.search(r"\b(do you confirm|shall i proceed|confirm .*\?)", low):
            self._asked = True
            if self._intent.get("decline"):
                return _pick(
                    self._rng,
                    "No, I changed my mind. Please don't do it.",
                    "No, actually don't go ahead with that.",
                )
            self._agreed = True
            return _pick(self._rng, "Yes, please go ahead.", "Yes, I confirm.", "Yes.")
        answer = self._answer(low)
        if answer:
            self._stalls = 0
            return answer
        if _DONE.search(msg):
            return self._after_done(msg)
        if _REFUSAL.search(msg) or "anything else" in low:
            return self._push_back()
        self._stalls += 1
        if self._stalls >= _MAX_STALLS:
            return self._stop()
        return self._opening

    def feedback(self) -> tuple[str, ...]:
        """What the user complained about in this episode (in their own words), oldest first."""
        return tuple(self._complaints)

    # -- noticing what went wrong --------------------------------------------------------------------
    def _goal(self) -> str:
        i = self._intent
        rid = i.get("reservation_id") or i.get("order_id", "")
        return _GOALS.get(str(i["kind"]), "get this sorted out").format(rid=rid)

    def _complain(self, text: str) -> str:
        self._complaints.append(text)
        return text

    def _after_done(self, msg: str) -> str:
        """The agent reports the request handled: the goal is met, unless the user never agreed."""
        if _NOTHING.search(msg):  # nothing was changed (after the user declined): that is what they wanted
            return self._stop()
        r = self._rng
        if self._intent.get("decline") and not self._agreed:
            text = _pick(
                r,
                "Wait, what? I never said yes to that. I didn't want you to go ahead without asking me.",
                "Hold on, you did that without asking me? I would have said no, I had changed my mind.",
                "I didn't confirm anything! I didn't want that done, you should have checked with me first.",
            )
            return self._stop(self._complain(text))
        if not self._asked and r.random() < 0.5:
            text = _pick(
                r,
                "You went ahead without checking the details with me first. Please ask me next time.",
                "I would have liked to confirm the details before you made the change.",
            )
            return self._stop(self._complain(text))
        return self._stop()

    def _push_back(self) -> str:
        """A refusal (or a wrap-up) while the goal is unmet: push back a bounded number of times."""
        r, goal = self._rng, self._goal()
        expect = "refuse" if self._intent.get("expect") == "refuse" else "act"
        if self._pushbacks < _PUSHBACKS[expect]:
            self._pushbacks += 1
            return _pick(
                r,
                f"That can't be right. I really need to {goal}. Could you check again?",
                f"Are you sure? I was hoping to {goal}. Please look at it once more.",
                f"I don't understand why you can't {goal}. Can you try again?",
            )
        if expect == "act":
            text = _pick(
                r,
                f"This is frustrating. I still couldn't {goal}, and I don't see why it was refused.",
                f"I'm not happy: you refused to {goal} and I think I was entitled to it.",
            )
            return self._stop(self._complain(text))
        return self._stop(_pick(r, "Okay, I understand.", "Fine, I see."))

    # -- phrasing ------------------------------------------------------------------------------------
    def _stop(self, said: str = "") -> str:
        self.done = True
        bye = _pick(self._rng, "Thanks, that's all.", "Okay, thank you.", "Alright, thanks for your help.")
        return f"{said or bye} {STOP_TOKEN}"

    def _first(self) -> str:
        i, r = self._intent, self._rng
        kind = i["kind"]
        rid = i.get("reservation_id") or i.get("order_id", "")
        cabin = str(i.get("cabin", "")).replace("_", " ")
        hi = _pick(r, "Hi,", "Hello,", "Hi there,")
        if kind == "cancel" and i.get("other_owner"):
            return f"{hi} I want to cancel reservation {rid} for my friend {i['other_owner']}."
        texts = {
            "cancel": _pick(
                r, f"{hi} I'd like to cancel my reservation {rid}.", f"{hi} please cancel reservation {rid}."
            ),
            "change_cabin": _pick(
                r,
                f"{hi} I want to upgrade reservation {rid} to {cabin}.",
                f"{hi} could you upgrade my reservation {rid} to {cabin} class?",
            ),
            "change_flight": f"{hi} I need to move reservation {rid} to flight {i.get('flight_number')} on "
            f"{i.get('date')}.",
            "add_bags": f"{hi} I'd like to add {i.get('bags')} checked bags to reservation {rid}.",
            "remove_bags": f"{hi} I want to reduce the checked bags on reservation {rid}"
            f" to {i.get('total_bags')}.",
            "compensation": _pick(
                r,
                f"{hi} the airline cancelled my flight on reservation {rid}. I want compensation for this.",
                f"{hi} my flight in reservation {rid} was cancelled and I expect compensation.",
            ),
            "update_passenger": f"{hi} on reservation {rid} I need to replace passenger {i.get('replace')}"
            " with "
            f"{_people([i['passenger']]) if i.get('passenger') else ''}.",
            "book": f"{hi} I'd like to book a one-way {cabin} trip from {i.get('origin')} to"
            f" {i.get('destination')} "
            f"on flight {i.get('flight_number')} on {i.get('date')} for {len(i.get('passengers', []))} "
            "passengers.",
        }
        if kind in texts:
            return texts[kind]
        from tau_envs.users.retail_phrases import first_message

        return first_message(i, r, hi)

    def _answer(self, low: str) -> str:
        """Give every fact the agent's message asks for ('' when it asks for none)."""
        i, parts = self._intent, []
        asks = "?" in low or re.search(r"\b(please (provide|tell|give)|i need|could you)\b", low)
        if not asks:
            return ""
        if "user id" in low and "user_id" in i:
            parts.append(f"My user id is {i['user_id']}.")
        if ("reservation id" in low or "reservation number" in low) and i.get("reservation_id"):
            parts.append(f"It's {i['reservation_id']}.")
        if "reason" in low and i.get("reason"):
            parts.append(f"The reason is {i['reason']}.")
        if i["kind"] == "book":
            if "passenger" in low:
                parts.append(f"The passengers are {_people(i['passengers'])}.")
            if "bag" in low:
                parts.append(f"{i['total_bags']} checked bags.")
            if "insurance" in low:
                parts.append(
                    "No insurance, thanks." if i.get("insurance") == "no" else "Yes, I want insurance."
                )
            if "payment" in low:
                parts.append(
                    f"Please use my travel certificates {', '.join(i['certificates'])} and put the rest "
                    f"on {i['payment_id']}."
                )
        elif re.search(r"payment|gift card|credit card|which card", low) and i.get("payment_id"):
            parts.append(f"Please use {i['payment_id']}.")
        if ("email" in low or "zip code" in low) and "email" not in i and i.get("auth") != "name_zip":
            # an airline user has no e-mail in the intent: answer with what they have (no KeyError)
            uid = i.get("user_id")
            parts.append(f"I'd rather not give my email; my user id is {uid}." if uid else "I'd rather not say.")
        if not parts:
            from tau_envs.users.retail_phrases import answer

            return answer(i, low, self._retail)
        return " ".join(parts)
