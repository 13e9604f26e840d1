"""Our policy texts (``wiki.md``) for generated worlds, and ``degrade_policy`` for the demo's seed.

The policy is written by us: a short intro, then sections whose bullets are the rules of
:mod:`tau_envs.rules`, one rule per bullet, plus a few domain bullets that state no rule.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

from diffprompt.errors import ConfigError
from tau_envs.rules import Rule, rules_for
from tau_envs.types import DomainName

_INTRO = {
    "airline": (
        "# Airline agent policy\n\n"
        "The current time is 2024-05-15 15:00:00 EST.\n\n"
        "You are a customer service agent of an airline. You help users book, modify or cancel their "
        "flight reservations using the tools. Make one tool call at a time, and do not reply to the user "
        "in the same turn as a tool call.\n\n"
        "## Domain\n\n"
        "- A user profile holds the user id, email, address, date of birth, payment methods, membership "
        "tier and reservation ids.\n"
        "- A reservation holds its id, trip type, flights, passengers, payments, creation time, bags and "
        "travel insurance.\n"
    ),
    "retail": (
        "# Retail agent policy\n\n"
        "You are a customer service agent of an online store. You help users cancel or modify pending "
        "orders, return or exchange delivered orders, and answer questions about their orders and "
        "products. Make one tool call at a time, and do not reply to the user in the same turn as a tool "
        "call.\n\n"
        "## Domain\n\n"
        "- An order moves through the statuses pending, processed, delivered and cancelled.\n"
        "- Each product has variant items with their own item ids and prices.\n"
    ),
}

_SECTIONS: dict[DomainName, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "airline": (
        ("General rules", ("airline.verify_owner", "airline.confirm")),
        ("Booking", ("airline.max_passengers", "airline.one_certificate", "airline.free_bags")),
        (
            "Changing a reservation",
            (
                "airline.basic_no_change",
                "airline.cabin_change_ok",
                "airline.ask_payment",
                "airline.no_remove_bags",
            ),
        ),
        ("Cancellation", ("airline.cancel_eligibility",)),
        ("Compensation", ("airline.comp_eligibility", "airline.comp_amount")),
    ),
    "retail": (
        ("General rules", ("retail.authenticate", "retail.one_user", "retail.confirm")),
        ("Order status", ("retail.pending_only", "retail.delivered_only", "retail.cancel_reason")),
        (
            "Items and payment",
            (
                "retail.same_product",
                "retail.collect_all_items",
                "retail.refund_method",
                "retail.gift_card_balance",
            ),
        ),
    ),
}


def policy_text(domain: DomainName, rules: Sequence[Rule] | None = None) -> str:
    """The full policy of a generated world (every rule stated once, as a bullet)."""
    by_id = {r.id: r for r in (rules if rules is not None else rules_for(domain))}
    parts = [_INTRO[domain]]
    for title, ids in _SECTIONS[domain]:
        bullets = [f"- {by_id[i].text}" for i in ids if i in by_id]
        if bullets:
            parts.append(f"\n## {title}\n\n" + "\n".join(bullets) + "\n")
    return "".join(parts)


_WORD = re.compile(r"[A-Za-z]{4,}")


def _garble_word(rng: random.Random, word: str) -> str:
    letters = list(word[1:])
    for _ in range(4):
        rng.shuffle(letters)
        if "".join(letters) != word[1:]:
            break
    return word[0] + "".join(letters)


def degrade_policy(
    policy_text: str,
    rules: Sequence[Rule],
    *,
    delete: Sequence[str] = (),
    n: int = 0,
    garble: Sequence[str] = (),
    seed: int = 0,
) -> str:
    """Delete or garble rule sentences of a policy (the demo's degraded seed prompt).

    ``delete``: rule ids whose sentence is removed (its bullet line goes entirely); ``n``: in addition,
    delete ``n`` more rules drawn with ``seed``; ``garble``: rule ids whose sentence stays but with the
    letters of every word of 4+ letters scrambled (first letter kept), so it no longer states the rule.
    Raises ``ConfigError`` for an unknown id or a rule whose sentence is not in the text.
    """
    rng = random.Random(seed)
    by_id = {r.id: r for r in rules}
    for rid in (*delete, *garble):
        if rid not in by_id:
            raise ConfigError(f"unknown rule id {rid!r}; known: {', '.join(by_id)}")
        if by_id[rid].text not in policy_text:
            raise ConfigError(
                f"rule {rid!r} is not stated verbatim in the policy; pass the world's own wiki.md"
            )
    chosen = list(dict.fromkeys(delete))
    rest = sorted(r.id for r in rules if r.id not in chosen and r.id not in garble and r.text in policy_text)
    if n > len(rest):
        raise ConfigError(f"cannot delete {n} more rules: only {len(rest)} remain")
    chosen += rng.sample(rest, n)
    out = policy_text
    for rid in chosen:
        text = by_id[rid].text
        out = re.sub(r"(?m)^[ \t]*[-*+][ \t]+" + re.escape(text) + r"[ \t]*\n?", "", out)
        out = out.replace(text, "")
    for rid in garble:
        text = by_id[rid].text
        out = out.replace(text, _WORD.sub(lambda m: _garble_word(rng, m.group(0)), text))
    return out
