"""What a rule's absence looks like from outside: failing conversations, user complaints, judge critiques.

The built-in DLM is taught the optimizer's task — *from failures to the missing rule* — on the
corpus domains only (telecom, banking, hotel, ...; never the τ worlds it is evaluated on). For a
drawn rule (``RuleDraw``: kind + facts) this module writes what an honest judge and an annoyed user
would say after an agent broke it, without quoting the rule: the judge names the action that went
wrong and the evidence, the user complains in their own words. Phrasings are seeded and varied.

Pure: every function takes an injected ``random.Random``.
"""

from __future__ import annotations

import random

from training.dlm.corpus import RuleDraw
from training.dlm.corpus_domains import Domain


def _p(rng: random.Random, *xs: str) -> str:
    return xs[rng.randrange(len(xs))]


def judge_critique(d: Domain, r: RuleDraw, rng: random.Random) -> str:
    """One judge-style sentence about the failure the missing rule caused (evidence, not the rule)."""
    f = r.facts
    ent, verb, pp = d.entity, f.get("verb", "change"), f.get("pp", "changed")
    tool = f.get("tool", d.tools[0])
    if r.kind == "confirm":
        return _p(
            rng,
            f"The agent {pp} the {ent} without asking the user to confirm the details first.",
            f"The agent called a write tool to {verb} the {ent} before the user said yes.",
            f"No explicit confirmation was requested before the {ent} was {pp}.",
        )
    if r.kind == "auth":
        return _p(
            rng,
            f"The agent shared {ent} details before verifying who the user was.",
            "The agent never authenticated the user but acted on the account anyway.",
            f"The user's identity was not checked ({f.get('how', 'no verification')}) before the action.",
        )
    if r.kind == "gate":
        cond = f.get("cond", "the condition holds")
        return _p(
            rng,
            f"The agent {pp} the {ent} although it was not the case that {cond}.",
            f"The {ent} should not have been {pp}: {cond} was false, yet the agent went ahead.",
            f"The agent did not check whether {cond} before it tried to {verb} the {ent}.",
        )
    if r.kind == "limit":
        item, n = f.get("item", "items"), f.get("n", "one")
        return _p(
            rng,
            f"The agent allowed more {item} on the {ent} than the limit of {n}.",
            f"The agent gave the user extra {item}; only {n} were allowed.",
            f"The number of {item} was wrong: the agent ignored the {n}-per-{ent} limit.",
        )
    if r.kind == "payment":
        return _p(
            rng,
            "The agent used a payment method that was not saved in the customer's profile.",
            "The refund went to the wrong payment method.",
            "The agent charged the customer without asking which saved payment method to use.",
        )
    if r.kind == "transfer":
        issue = f.get("issue", "the issue")
        return _p(
            rng,
            f"The agent handed the user to a human for {issue} although it could resolve it with its tools.",
            "The agent escalated to a human without calling the escalation tool first.",
            "The agent transferred the conversation too early instead of using the available tools.",
        )
    if r.kind == "complaint":
        comp, issue = f.get("comp", "compensation"), f.get("issue", "a problem")
        return _p(
            rng,
            f"The agent offered {comp} for {issue} to a user who was not eligible for it.",
            f"The agent proactively offered {comp} although the user never asked for it.",
            f"The agent gave {comp} without checking the facts of {issue} with the tools.",
        )
    if r.kind == "tool":
        return _p(
            rng,
            f"The agent answered about the {ent} without calling {tool} to look it up first.",
            f"The agent called the tools in the wrong order around {tool}.",
            f"The agent acted before checking the {ent} status with {tool}.",
        )
    return _p(
        rng,
        "The agent made up information that no tool returned.",
        "The agent's reply did not follow the expected conduct.",
        "The agent answered outside what the tools and the user had provided.",
    )


def user_complaint(d: Domain, r: RuleDraw, rng: random.Random) -> str:
    """What the user says after the failure, in their own words."""
    f = r.facts
    ent, verb, pp = d.entity, f.get("verb", "change"), f.get("pp", "changed")
    if r.kind == "confirm":
        return _p(
            rng,
            f"Wait, I never said yes! Why did you {verb} my {ent} without asking me?",
            f"You {pp} it before I could even confirm. That is not okay.",
            f"I did not agree to have my {ent} {pp}.",
        )
    if r.kind == "auth":
        return _p(rng, "You didn't even check who I am.", f"Anyone could have asked about my {ent} like that.")
    if r.kind == "gate":
        return _p(
            rng,
            f"I was told my {ent} could not be {pp} in my situation, but you did it anyway.",
            f"Why was my {ent} {pp}? That should not have been possible.",
            f"I expected you to tell me whether I'm allowed to {verb} it first.",
        )
    if r.kind == "limit":
        item = f.get("item", "items")
        return _p(rng, f"Now I'm being charged for the extra {item}?", f"You said I could have those {item}.")
    if r.kind == "payment":
        return _p(rng, "That is not the card I wanted to use!", "Where did my refund go?")
    if r.kind == "transfer":
        return _p(rng, "Why am I talking to someone else now? You could have done this.", "I've been on hold forever.")
    if r.kind == "complaint":
        comp = f.get("comp", "compensation")
        return _p(rng, f"I didn't ask for {comp}.", f"So I get {comp} but my friend didn't? Strange.")
    if r.kind == "tool":
        return _p(rng, f"That's not what my {ent} says.", "You didn't even look it up.")
    return _p(rng, "That doesn't sound right.", "Where did you get that from?")


def failure_turns(d: Domain, r: RuleDraw, rng: random.Random) -> list[dict[str, str]]:
    """A short failing conversation (User / Agent turns) that shows the failure happening."""
    f = r.facts
    verb = f.get("verb", d.actions[0][0])
    ident = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(6))
    tools = [t for t in d.tools if verb in t] or list(d.tools)
    tool = rng.choice(tools)
    turns = [
        {"role": "User", "text": _p(rng, f"Hi, I'd like to {verb} my {d.entity} {ident}.",
                                    f"Can you {verb} {d.entity} {ident} for me?",
                                    f"I need help with my {d.entity}, the {d.id_name} is {ident}.")},
        {"role": "Agent", "text": f'calls {tool}({{"{d.id_name.replace(" ", "_")}": "{ident}"}})'},
        {"role": "Agent", "text": _p(rng, f"Done, your {d.entity} has been {f.get('pp', 'updated')}.",
                                     "I have processed your request.", "All set.")},
    ]
    return turns[: rng.randint(2, 3)]
