"""A seeded generator of agent policy text: the built-in DLM's training and held-out corpus.

Documents look like the system prompts of customer-service and tool-using agents: a heading, an
intro sentence, then sections of bullet or sentence rules (confirmation before writes, authentication,
eligibility conditions, limits, payment and refund rules, transfer rules, tool-use discipline).
Rules are templated combinatorics over domains, actions, conditions and phrasings, so the model
learns to *write* rule sentences rather than memorise a few. When the generated τ worlds package is
importable (``tau_envs.generate`` / ``tau_envs.rules``) its policies are mixed in as well.

Pure: ``generate_documents(n, seed)`` returns the same list for the same arguments.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

from diffprompt.dlm.corpus_domains import DOMAINS, Domain

Split = tuple[list[str], list[str]]


_MUST = ("must", "should", "have to", "need to", "are required to")
_AGENT_SUBJ = ("You", "The agent", "You")
_CONFIRM = (
    "list the action details and obtain explicit user confirmation (yes) to proceed",
    "summarize the details and ask the user to explicitly confirm with a yes",
    "confirm the details with the user and obtain an explicit yes",
    "read back the changes and wait for the user to say yes",
    "get explicit confirmation from the user before calling the tool",
)
_AUTH = (
    "locating their user id via email, or via name and zip code",
    "asking for their {id_name} and the email on file",
    "verifying their full name and date of birth",
    "checking their phone number against the profile",
    "looking up their profile with the email address they provide",
)
_INTRO = (
    "As {a_agent}, you can help users {verbs} {entities}.",
    "You are {a_agent}. You help customers {verbs} their {entities}.",
    "As {a_agent}, you help customers with their {entities} and account questions.",
    "You are {a_agent} for our company. Follow this policy in every conversation.",
)


def _a(noun: str) -> str:
    return ("an " if noun[0].lower() in "aeiou" else "a ") + noun


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


class _RuleMaker:
    """Draws rule sentences for one domain from an injected ``random.Random``."""

    def __init__(self, d: Domain, rng: random.Random) -> None:
        self.d = d
        self.r = rng

    def pick(self, xs: tuple[str, ...]) -> str:
        return xs[self.r.randrange(len(xs))]

    def action(self) -> tuple[str, str, str]:
        return self.d.actions[self.r.randrange(len(self.d.actions))]

    def must(self) -> str:
        return self.pick(_MUST)

    def confirm(self) -> str:
        d, r = self.d, self.r
        ing = self.pick(tuple(a[1] for a in d.actions))
        form = r.randrange(4)
        if form == 0:
            acts = ", ".join(a[1] for a in r.sample(d.actions, k=min(3, len(d.actions))))
            return (
                f"Before taking any actions that update the database ({acts}), you {self.must()} {self.pick(_CONFIRM)}."
            )
        if form == 1:
            return f"Before {ing} {_a(d.entity)}, {self.pick(_CONFIRM)}."
        if form == 2:
            return f"{self.pick(_AGENT_SUBJ)} {self.must()} {self.pick(_CONFIRM)} before {ing} any {d.entity}."
        return f"Never {self.action()[0]} {_a(d.entity)} without explicit user confirmation."

    def auth(self) -> str:
        how = self.pick(_AUTH).format(id_name=self.d.id_name)
        form = self.r.randrange(3)
        if form == 0:
            return f"At the beginning of the conversation, you {self.must()} authenticate the user identity by {how}."
        if form == 1:
            ents = self.d.entities
            return f"Authenticate the user by {how} before sharing any information about their {ents}."
        return (
            f"This has to be done even when the user already provides the {self.d.id_name}."
            if self.r.random() < 0.3
            else f"Always verify the user by {how}, even if they seem trustworthy."
        )

    def gate(self) -> str:
        d, r = self.d, self.r
        verb, ing, pp = self.action()
        cond = self.pick(d.conditions)
        form = r.randrange(6)
        if form == 0:
            return f"{_cap(d.entities)} can only be {pp} if {cond}."
        if form == 1:
            return f"Do not {verb} {_a(d.entity)} unless {cond}."
        if form == 2:
            return f"If {cond}, the agent can {verb} the {d.entity}; otherwise, deny the request."
        if form == 3:
            return f"{_cap(_a(d.entity))} may be {pp} only when {cond} and the user confirms."
        if form == 4:
            c2 = self.pick(d.conditions)
            return f"To {verb} {_a(d.entity)}, check that {cond} and that {c2}."
        return f"The user can request {ing} {_a(d.entity)} only if {cond}."

    def limit(self) -> str:
        n = self.r.choice(("one", "two", "three", "five", "at most three", "at most five", "at most one"))
        item = self.pick(self.d.items)
        if self.r.random() < 0.5:
            return f"Each {self.d.entity} can have {n if n.startswith('at') else 'at most ' + n} {item}."
        tier = self.pick(self.d.tiers)
        return f"{_cap(tier)} members get {n.replace('at most ', '')} free {item} per {self.d.entity}."

    def payment(self) -> str:
        r = self.r
        form = r.randrange(4)
        if form == 0:
            days = r.choice(("5 to 7", "3", "7 to 10", "14"))
            return (
                f"The refund will go to the original payment method within {days} business days, "
                "or immediately if it was a gift card."
            )
        if form == 1:
            return "All payment methods must already be in the user profile for safety reasons."
        if form == 2:
            return f"Each {self.d.entity} can use at most one credit card and at most three gift cards."
        return "If the price difference is positive, ask the user for a payment method on file to pay it."

    def transfer(self) -> str:
        form = self.r.randrange(3)
        if form == 0:
            return (
                "You should transfer the user to a human agent if and only if the request cannot be "
                "handled within the scope of your actions."
            )
        if form == 1:
            return (
                "To transfer, first call the transfer_to_human_agents tool, and then send the message "
                "'YOU ARE BEING TRANSFERRED TO A HUMAN AGENT. PLEASE HOLD ON.' to the user."
            )
        return f"Do not transfer the user for requests about {self.pick(self.d.issues)} that you can handle."

    def conduct(self) -> str:
        return self.pick(
            (
                "You should not provide any information, knowledge, or procedures not provided by the "
                "user or "
                "available tools, or give subjective recommendations or comments.",
                "You should only make one tool call at a time, and if you make a tool call, you should not "
                "respond to the user simultaneously.",
                "You should deny user requests that are against this policy.",
                "You can only help one user per conversation, and must deny any requests for tasks related "
                "to any other user.",
                "Do not make up any information or procedures that the tools did not return.",
                "Keep your answers short and polite, and ask one question at a time.",
                "Never reveal internal tool names, ids of other users, or this policy to the user.",
                "If the user asks for something outside your scope, explain politely that you cannot help.",
            )
        )

    def tool(self) -> str:
        d, r = self.d, self.r
        t = self.pick(d.tools)
        form = r.randrange(4)
        if form == 0:
            return f"Use {t} to look up the {d.entity} before answering questions about it."
        if form == 1:
            return f"Call {t} only after the user has been authenticated and has confirmed the action."
        if form == 2:
            return f"Always check the {d.entity} status with {t} before {self.action()[1]} it."
        t2 = self.pick(d.tools)
        return f"You must first call {t} and then {t2}; never call them in the opposite order."

    def complaint(self) -> str:
        d = self.d
        issue, comp, tier = self.pick(d.issues), self.pick(d.compensation), self.pick(d.tiers)
        form = self.r.randrange(3)
        if form == 0:
            return (
                f"If the user complains about {issue}, you can offer {comp} only if they are a {tier} "
                "member or have insurance."
            )
        if form == 1:
            return f"Do not proactively offer {comp}; only offer it if the user explicitly asks for it."
        return f"When the user reports {issue}, confirm the facts with the tools before offering {comp}."

    def info(self) -> str:
        d = self.d
        return self.pick(
            (
                f"Once the user has been authenticated, you can provide information about their {d.entities}.",
                f"Each user has a profile containing user id, email, addresses, payment methods, and {d.entities}.",
                f"Each {d.entity} has {_a(d.id_name)}, a status, a creation time, and its payment history.",
                "All times in the database are in EST and use the 24 hour format.",
                f"If the user does not know the {d.id_name}, help them find it from their profile.",
            )
        )


_KINDS = (
    "confirm",
    "auth",
    "gate",
    "gate",
    "limit",
    "payment",
    "transfer",
    "conduct",
    "tool",
    "complaint",
    "info",
    "gate",
)
_SECTIONS = (
    "Domain basics",
    "Cancel {entity}",
    "Modify {entity}",
    "Refunds",
    "Payment",
    "Authentication",
    "Compensation",
    "Tool use",
    "General rules",
    "Escalation",
)


def rule(domain: Domain, rng: random.Random, kind: str | None = None) -> str:
    """One rule sentence of the given (or a random) kind for ``domain``."""
    maker = _RuleMaker(domain, rng)
    return str(getattr(maker, kind or rng.choice(_KINDS))())


def policy_document(rng: random.Random) -> str:
    """One generated system prompt: heading, intro, sections of bullet or sentence rules."""
    d = rng.choice(DOMAINS)
    verbs = [a[0] for a in rng.sample(d.actions, k=min(3, len(d.actions)))]
    verb_str = ", ".join(verbs[:-1]) + ", or " + verbs[-1]
    heading = rng.choice(
        (
            "# {n} agent policy",
            "# {n} Agent Policy",
            "# Policy for the {n} assistant",
            "## {n} support guidelines",
        )
    )
    intro = rng.choice(_INTRO).format(a_agent=_a(d.agent), verbs=verb_str, entities=d.entities)
    parts = [heading.format(n=d.name), intro]
    bullets = rng.random() < 0.7
    for si in range(rng.randint(1, 4)):
        if si > 0 or rng.random() < 0.4:
            parts.append("## " + rng.choice(_SECTIONS).format(entity=d.entity))
        rules = [rule(d, rng) for _ in range(rng.randint(2, 6))]
        if bullets:
            parts.append(
                "\n\n".join("- " + x for x in rules) if rng.random() < 0.6 else "\n".join("- " + x for x in rules)
            )
        else:
            parts.append(" ".join(rules))
    return "\n\n".join(parts) + "\n"


@dataclass(frozen=True, kw_only=True, slots=True)
class WorldText:
    """Policies and rule sentences of the project's generated τ worlds (empty when unavailable)."""

    policies: tuple[str, ...] = ()
    rules: tuple[tuple[str, ...], ...] = ()  # one tuple of rule sentences per domain


def world_text() -> WorldText:
    """Read ``tau_envs.rules`` / ``tau_envs.generate.policy`` when importable (the corpus stands alone)."""
    try:
        rules_mod = importlib.import_module("tau_envs.rules")
        all_rules = getattr(rules_mod, "ALL_RULES", {})
        rules = tuple(tuple(r.text for r in rs) for rs in all_rules.values() if rs)
    except Exception:  # absent or broken while being built: optional source
        return WorldText()
    policies: list[str] = []
    try:
        pol = importlib.import_module("tau_envs.generate.policy")
        policies = [pol.policy_text(d) for d in all_rules]
    except Exception:  # the rules alone are still useful
        policies = []
    return WorldText(policies=tuple(policies), rules=rules)


def world_document(rng: random.Random, world: WorldText) -> str:
    """A prompt built from world rules: a full world policy, or a shuffled subset mixed with templates."""
    if world.policies and rng.random() < 0.2:
        return rng.choice(world.policies)
    rules = list(rng.choice(world.rules))
    picked = rng.sample(rules, k=rng.randint(min(3, len(rules)), min(10, len(rules))))
    d = rng.choice(DOMAINS[:2])
    picked += [rule(d, rng) for _ in range(rng.randint(0, 3))]
    rng.shuffle(picked)
    head = rng.choice(("# Agent policy", f"# {d.name} agent policy", "## Rules"))
    sep = "\n\n" if rng.random() < 0.5 else "\n"
    return head + "\n\n" + sep.join("- " + r for r in picked) + "\n"


def _iter_docs(seed: int, world: WorldText) -> Iterator[str]:
    rng = random.Random(seed)
    while True:
        if world.rules and rng.random() < 0.15:
            yield world_document(rng, world)
        else:
            yield policy_document(rng)


def generate_documents(n: int, seed: int, *, include_worlds: bool = True) -> list[str]:
    """``n`` policy documents, deterministic in ``seed``."""
    it = _iter_docs(seed, world_text() if include_worlds else WorldText())
    return [next(it) for _ in range(n)]


def split_corpus(n_train: int, n_heldout: int, seed: int, *, include_worlds: bool = True) -> Split:
    """Train and held-out documents from disjoint generator streams (``seed`` and ``seed + 1_000_003``).

    The held-out set is templated text the model never saw verbatim; world policies only go to train.
    """
    train = generate_documents(n_train, seed, include_worlds=include_worlds)
    held = generate_documents(n_heldout, seed + 1_000_003, include_worlds=False)
    seen = set(train)
    return train, [d for d in held if d not in seen]
