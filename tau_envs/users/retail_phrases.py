"""Retail phrasing of the scripted user (first messages and answers), kept apart from the airline's.

The retail intents (``tau_envs.generate.retail_tasks``) carry identity facts (``email``, names,
``zip``, ``auth``), the ``order_id`` and per kind: ``reason_words`` (cancel), ``item_ids`` +
``refund_request`` (return), ``items`` (exchange / modify: ``item_id``, ``new_item_id`` and the
``request_item_id`` asked first), ``address``, ``payment_request``, and the gold
``payment_method_id`` the user settles on. The user first asks for what it wants (``request_*``) and
falls back to the gold choice when the agent explains the policy and asks again.

``answer`` keeps a small per-episode ``state`` (owned by the :class:`ScriptedUser`): how many of the
items to swap it has mentioned, so a multi-item request comes one item at a time unless the agent
asks for every item.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, MutableMapping
from typing import Any

SWAPS = ("exchange_items", "modify_items")


def _verb(intent: Mapping[str, Any]) -> str:
    return "exchange" if intent["kind"] == "exchange_items" else "change"


def _pair(intent: Mapping[str, Any], x: Mapping[str, Any], *, asked: bool) -> str:
    new = x["request_item_id"] if asked else x["new_item_id"]
    return f"item {x['item_id']} ({x['name']}) for item {new}"


def identity(intent: Mapping[str, Any]) -> str:
    """How the user identifies themself (email, or name and zip code, as the intent says)."""
    if intent.get("auth") == "name_zip":
        return f"My name is {intent['first_name']} {intent['last_name']} and my zip code is {intent['zip']}."
    return f"My email is {intent['email']}."


def first_message(intent: Mapping[str, Any], rng: random.Random, hi: str) -> str:
    """The opening message of a retail intent."""
    i, kind, oid = intent, intent["kind"], intent.get("order_id", "")
    if kind == "cancel_order":
        if i.get("other_owner"):
            text = f"{hi} I want to cancel order {oid}, which my friend {i['other_owner']} placed, because "
        else:
            text = rng.choice((f"{hi} I want to cancel my order {oid} because ",
                               f"{hi} please cancel order {oid}, because "))
        text += f"{i['reason_words']}."
    elif kind == "return_items":
        items = " and ".join(f"item {x}" for x in i["item_ids"])
        text = f"{hi} I'd like to return {items} from order {oid}, with the refund to {i['refund_request']}."
    elif kind in SWAPS:
        first = i["items"][0]
        text = (
            f"{hi} I'd like to {_verb(i)} {_pair(i, first, asked=True)} in order {oid}; please use "
            f"{i['payment_method_id']} for any price difference."
        )
    elif kind == "modify_address":
        a = i["address"]
        line = ", ".join(a[k] for k in ("address1", "address2", "city", "state", "country", "zip"))
        text = f"{hi} please change the shipping address of order {oid} to {line}."
    elif kind == "modify_payment":
        text = f"{hi} I'd like to pay for order {oid} with {i['payment_request']} instead."
    else:
        text = f"{hi} I need help with my order {oid}."
    if rng.random() < 0.5:
        text += " " + identity(i)
    return text


def _untold(intent: Mapping[str, Any], state: MutableMapping[str, Any]) -> list[Mapping[str, Any]]:
    return list(intent["items"][state.setdefault("told", 1):])


def answer(intent: Mapping[str, Any], low: str, state: MutableMapping[str, Any] | None = None) -> str:
    """Facts a retail user gives for the agent's question ('' when it asks for none of them)."""
    i, kind = intent, intent.get("kind", "")
    state = {} if state is None else state
    parts: list[str] = []
    if "email" in low or "zip code" in low:
        parts.append(identity(i))
    if ("order id" in low or "order number" in low) and i.get("order_id"):
        parts.append(f"It's {i['order_id']}.")
    if kind == "cancel_order" and re.search(r"\breason|\bwhy\b", low):
        parts.append(f"Because {i['reason_words']}.")
    if kind == "return_items" and re.search(r"which items?\b", low):
        parts.append("Items " + " and ".join(i["item_ids"]) + ".")
    if kind in SWAPS:
        if "same product" in low:
            first = i["items"][0]
            parts.append(f"Then I'd like to {_verb(i)} {_pair(i, first, asked=False)} instead.")
        elif re.search(r"other items|all the items|every item", low):
            rest = _untold(i, state)
            state["told"] = len(i["items"])
            parts.append(
                f"Yes, also {_verb(i)} " + " and ".join(_pair(i, x, asked=False) for x in rest) + "."
                if rest
                else "No, that's all the items."
            )
        elif re.search(r"which items?\b", low):
            told = i["items"][: state.setdefault("told", 1)]
            parts.append(f"I want to {_verb(i)} " + " and ".join(_pair(i, x, asked=True) for x in told) + ".")
    if i.get("payment_method_id") and re.search(
        r"payment method|gift card|credit card|paypal|refund|price difference", low
    ):
        parts.append(f"Please use {i['payment_method_id']}.")
    if not parts and kind in SWAPS and "anything else" in low:
        rest = _untold(i, state)
        if rest:
            state["told"] = state["told"] + 1
            parts.append(f"Also, I'd like to {_verb(i)} {_pair(i, rest[0], asked=False)} in the same order.")
    return " ".join(parts)
