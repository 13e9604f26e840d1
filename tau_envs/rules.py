"""The policy rules of our generated worlds: one rule = one sentence (one bullet) of the policy.

Each :class:`Rule` carries its policy sentence and the *concepts* that a paraphrase of it must
mention (each concept is a group of synonyms given as lower-case word stems or short phrases; a stem
matches any word that starts with it when it has 4+ letters, else the exact word). The simulated
target model (:mod:`tau_envs.sim`) follows a rule only when some span of its system prompt covers
enough of the rule's concepts (see :mod:`tau_envs.sim.matching`).

The rule ids are stable and written to ``rules.json`` of every generated world; tasks name the rules
they exercise in ``intent["rules"]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffprompt.errors import EnvError
from tau_envs.types import DomainName

NEG = ("cannot", "not", "never", "no", "non", "prohibit", "forbid", "unable", "ineligible", "disallow", "nor")
LIMIT = ("at most", "maximum", "max", "more than", "up to", "limit", "only", "single", "exceed", "cap", "greater than")
ONLY = ("only", "unless", "if", "eligib", "provided", "solely", "exclusively", "except")


@dataclass(frozen=True, kw_only=True, slots=True)
class Rule:
    """One policy rule: its sentence, the concepts a statement of it must cover, and its family."""

    id: str
    domain: DomainName
    family: str
    text: str
    concepts: tuple[tuple[str, ...], ...]

    @property
    def keywords(self) -> tuple[str, ...]:
        """The first (canonical) term of every concept."""
        return tuple(c[0] for c in self.concepts)

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (as written in ``rules.json``)."""
        return {
            "id": self.id,
            "domain": self.domain,
            "family": self.family,
            "text": self.text,
            "concepts": [list(c) for c in self.concepts],
        }

    @staticmethod
    def from_json(obj: dict[str, Any]) -> Rule:
        """Inverse of :meth:`to_json`."""
        return Rule(
            id=str(obj["id"]),
            domain=obj["domain"],
            family=str(obj["family"]),
            text=str(obj["text"]),
            concepts=tuple(tuple(str(t) for t in c) for c in obj["concepts"]),
        )


def _r(id: str, domain: DomainName, family: str, text: str, *concepts: Iterable[str]) -> Rule:
    return Rule(id=id, domain=domain, family=family, text=text, concepts=tuple(tuple(c) for c in concepts))


AIRLINE_RULES: tuple[Rule, ...] = (
    _r(
        "airline.verify_owner",
        "airline",
        "auth",
        "Obtain the user id first, and act only on reservations that belong to that user.",
        ("user id", "identity", "identif", "account", "authenticat", "verif"),
        ("reservation", "booking"),
        ("belong", "own", "owner", "owned", "their own", "that user", "same user", "match"),
    ),
    _r(
        "airline.confirm",
        "airline",
        "confirm",
        "Before any action that updates the database, list the action details and obtain explicit "
        "user confirmation (yes) to proceed.",
        ("confirm", "consent", "approv", "agree", "permission"),
        ("explicit", "yes", "clear", "affirmative"),
        ("before", "prior", "first", "until"),
        ("updat", "write", "action", "chang", "modif", "book", "cancel", "database"),
    ),
    _r(
        "airline.max_passengers",
        "airline",
        "book",
        "Each reservation can have at most five passengers.",
        LIMIT,
        ("five", "5"),
        ("passenger", "traveler", "traveller", "people", "person"),
    ),
    _r(
        "airline.one_certificate",
        "airline",
        "payment",
        "A reservation can be paid with at most one travel certificate, at most one credit card and "
        "at most three gift cards.",
        ("certificate", "voucher"),
        ("one", "1", "single"),
        LIMIT,
        ("pay", "reservation", "booking"),
    ),
    _r(
        "airline.free_bags",
        "airline",
        "baggage",
        "Free checked bags per passenger: regular members get 0 in basic economy, 1 in economy and 2 "
        "in business; silver members get 1, 2 and 3; gold members get 2, 3 and 3; each extra bag "
        "costs 50 dollars.",
        ("free", "complimentary", "included", "no charge", "allowance"),
        ("bag", "baggage", "luggage", "suitcase"),
        ("regular", "silver", "gold", "member", "tier", "status"),
        ("50", "fifty", "extra", "additional"),
    ),
    _r(
        "airline.basic_no_change",
        "airline",
        "modify",
        "Basic economy reservations cannot be changed to different flights.",
        ("basic economy", "basic"),
        NEG,
        ("chang", "modif", "alter", "rebook", "switch", "move", "amend"),
        ("flight", "itinerar", "date", "reservation", "booking"),
    ),
    _r(
        "airline.cabin_change_ok",
        "airline",
        "modify",
        "Cabin changes are allowed for every reservation, including basic economy, as long as the "
        "flights stay the same.",
        ("cabin", "class", "upgrad"),
        ("allow", "permit", "can", "may", "possible", "eligib", "fine"),
        ("basic economy", "basic"),
        ("every", "all", "any", "includ", "even", "also"),
    ),
    _r(
        "airline.ask_payment",
        "airline",
        "payment",
        "For any flight or cabin change, ask the user which gift card or credit card from their "
        "profile should pay or receive the price difference.",
        ("ask", "request", "collect", "which", "choose", "select", "confirm"),
        ("gift card", "credit card", "card", "payment method"),
        ("differen", "fare", "price", "cost", "refund"),
        ("chang", "modif", "upgrad", "cabin", "flight"),
    ),
    _r(
        "airline.cancel_eligibility",
        "airline",
        "cancel",
        "A reservation can be cancelled only if it was booked within the last 24 hours, the cabin "
        "is business, or the user has travel insurance and cancels for health or weather reasons.",
        ("cancel", "refund"),
        ("24", "twenty-four", "one day", "a day"),
        ("business",),
        ("insurance", "insured"),
        ONLY,
    ),
    _r(
        "airline.no_remove_bags",
        "airline",
        "baggage",
        "Checked bags can be added to a reservation but never removed.",
        ("bag", "baggage", "luggage", "suitcase"),
        ("add", "added", "adding", "increas", "more", "extra"),
        ("remov", "reduc", "decreas", "delet", "fewer", "drop", "take off", "take away", "subtract"),
        NEG,
    ),
    _r(
        "airline.comp_eligibility",
        "airline",
        "compensation",
        "Offer a certificate as compensation only to silver or gold members, users with travel "
        "insurance or business travellers, and only when the user asks for compensation.",
        ("certificate", "compensat", "voucher", "gesture", "goodwill"),
        ("silver", "gold", "member", "regular", "status"),
        ("insurance", "insured"),
        ("business",),
        ONLY + NEG,
    ),
    _r(
        "airline.comp_amount",
        "airline",
        "compensation",
        "The compensation certificate is worth 100 dollars per passenger on the reservation.",
        ("certificate", "compensat", "voucher", "gesture"),
        ("100", "hundred"),
        ("per", "each", "times", "every", "multipl"),
        ("passenger", "traveler", "traveller", "person", "people"),
    ),
)


RETAIL_RULES: tuple[Rule, ...] = (
    _r(
        "retail.authenticate",
        "retail",
        "auth",
        "Authenticate the user by finding their user id from their email, or from their name and "
        "zip code, before helping with anything.",
        ("authenticat", "identif", "verif", "locate", "find", "look up"),
        ("email", "e-mail"),
        ("zip", "postal", "postcode"),
        ("name",),
    ),
    _r(
        "retail.one_user",
        "retail",
        "auth",
        "Help only the authenticated user, and refuse any request about an order that belongs to another user.",
        ("authenticat", "verif", "identif", "same user", "one user", "single user"),
        ("another", "other", "different", "someone else", "third"),
        ("order", "request", "account"),
        (*NEG, "refus", "deny", "decline", "only"),
    ),
    _r(
        "retail.confirm",
        "retail",
        "confirm",
        "Before cancelling, modifying, returning or exchanging, list the action details and obtain "
        "explicit user confirmation (yes) to proceed.",
        ("confirm", "consent", "approv", "agree", "permission"),
        ("explicit", "yes", "clear", "affirmative"),
        ("before", "prior", "first", "until"),
        ("cancel", "modif", "return", "exchang", "updat", "action", "chang"),
    ),
    _r(
        "retail.pending_only",
        "retail",
        "cancel",
        "Only pending orders can be cancelled or modified.",
        ("pending",),
        ("only", "unless", "just", "solely", "must", "not", "cannot"),
        ("cancel", "modif", "chang", "edit", "alter"),
        ("order",),
    ),
    _r(
        "retail.cancel_reason",
        "retail",
        "cancel",
        "The cancellation reason must be either 'no longer needed' or 'ordered by mistake'.",
        ("reason", "why", "because"),
        ("no longer needed", "longer need", "not needed"),
        ("mistake", "by error", "accident"),
        ("cancel",),
    ),
    _r(
        "retail.delivered_only",
        "retail",
        "return",
        "Only delivered orders can be returned or exchanged.",
        ("deliver", "received", "arrived"),
        ("only", "unless", "just", "solely", "must", "not", "cannot"),
        ("return", "exchang", "swap", "send back"),
        ("order",),
    ),
    _r(
        "retail.refund_method",
        "retail",
        "payment",
        "A refund must go either to the original payment method or to an existing gift card.",
        ("refund", "reimburs", "money back"),
        ("original", "same", "initial", "paid with", "used to pay"),
        ("gift card",),
        ("must", "either", "only", "or"),
    ),
    _r(
        "retail.same_product",
        "retail",
        "exchange",
        "An item can only be exchanged or modified to another available option of the same product, "
        "never to a different product type.",
        ("same", "identical", "different"),
        ("product", "type", "kind"),
        ("option", "variant", "size", "color", "colour", "version", "item"),
        ("exchang", "modif", "swap", "chang", "replac"),
    ),
    _r(
        "retail.collect_all_items",
        "retail",
        "modify",
        "The exchange and modify-items tools can be called only once per order, so collect every item "
        "to change into one list before calling them.",
        ("once", "one time", "single", "one call"),
        ("all", "every", "each", "complete", "whole"),
        ("item",),
        ("list", "collect", "gather", "together", "before"),
    ),
    _r(
        "retail.gift_card_balance",
        "retail",
        "payment",
        "A gift card used to pay must have enough balance to cover the amount.",
        ("gift card",),
        ("balance", "fund", "credit", "remaining"),
        ("enough", "sufficient", "cover", "at least", "insufficient"),
    ),
)

ALL_RULES: dict[DomainName, tuple[Rule, ...]] = {"airline": AIRLINE_RULES, "retail": RETAIL_RULES}


def rules_for(domain: DomainName) -> tuple[Rule, ...]:
    """The catalogue of rules of a domain's generated world."""
    if domain not in ALL_RULES:
        raise EnvError(f"unknown domain {domain!r}; expected one of {sorted(ALL_RULES)}")
    return ALL_RULES[domain]


def rule_by_id(rule_id: str, rules: Sequence[Rule] | None = None) -> Rule:
    """Look a rule up by id (in ``rules``, default: every catalogue)."""
    pool = rules if rules is not None else [r for rs in ALL_RULES.values() for r in rs]
    for rule in pool:
        if rule.id == rule_id:
            return rule
    raise EnvError(f"unknown rule id {rule_id!r}; known: {', '.join(r.id for r in pool)}")


def load_rules(path: Path) -> tuple[Rule, ...]:
    """Read ``rules.json`` (a list of rule objects) written by the generator."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
        return tuple(Rule.from_json(o) for o in raw)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EnvError(f"cannot read rules from {path}: {exc}; regenerate the world") from exc
