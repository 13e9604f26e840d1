"""Retail tasks: each builder adds its scenario (a fresh order) to the database and returns the task.

A task's gold actions are computed by running the real tools (:data:`tau_envs.retail.tools.TOOLS`)
on a private copy of the records involved, and every gold step is checked to succeed. The ``intent``
is the structured form the scripted user acts from (identity facts, order, items, payment methods,
what it asks first and what it falls back to); its ``rules`` lists the policy rules whose absence
makes a naive agent fail the task.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from typing import Any

from tau_envs.generate.common import make_address, run_gold
from tau_envs.generate.retail_db import (
    RetailDB,
    add_card,
    add_gift_card,
    add_paypal,
    make_order,
    random_items,
)
from tau_envs.retail.tools import TOOLS
from tau_envs.types import Action

Built = tuple[dict[str, Any], str, list[Action], str]  # intent, instruction, gold, family
REASON_WORDS = {
    "no longer needed": ("I don't need it anymore", "my plans changed and I won't use it"),
    "ordered by mistake": ("I ordered it by mistake", "I placed it by accident"),
}


def _identity(rng: random.Random, db: RetailDB, uid: str) -> dict[str, Any]:
    """The facts a user authenticates with; name + zip only when it identifies them uniquely."""
    u = db.users[uid]
    first, last, zip_ = u["name"]["first_name"], u["name"]["last_name"], u["address"]["zip"]
    unique = db.name_zip.get((first.lower(), last.lower(), zip_), 0) == 1
    auth = "name_zip" if unique and rng.random() < 0.5 else "email"
    return {"email": u["email"], "first_name": first, "last_name": last, "zip": zip_, "auth": auth}


def _who(ident: dict[str, Any]) -> str:
    return (
        f"You are {ident['first_name']} {ident['last_name']}; your email is {ident['email']} and your zip "
        f"code is {ident['zip']}."
    )


def _non_gift(rng: random.Random, db: RetailDB, uid: str, exclude: tuple[str, ...] = ()) -> str:
    """A credit card or PayPal id of the user not in ``exclude`` (one is added when needed)."""
    user = db.users[uid]
    ids = [p for p, m in user["payment_methods"].items() if m["source"] != "gift_card" and p not in exclude]
    if ids:
        return ids[rng.randrange(len(ids))]
    return add_card(rng, db, user) if rng.random() < 0.5 else add_paypal(rng, db, user)


def _gift_cards(db: RetailDB, uid: str) -> list[str]:
    return [p for p, m in db.users[uid]["payment_methods"].items() if m["source"] == "gift_card"]


def _gold(db: RetailDB, uids: list[str], oids: list[str], actions: list[Action], where: str) -> list[Action]:
    mini = {
        "orders": {o: copy.deepcopy(db.orders[o]) for o in oids},
        "products": db.products,  # read-only for the tools
        "users": {u: copy.deepcopy(db.users[u]) for u in uids},
    }
    run_gold(TOOLS.invoke, mini, actions, where=where)
    return actions


def _order(rng: random.Random, db: RetailDB, uid: str, status: str, n: int, pay: str) -> dict[str, Any]:
    return make_order(rng, db, uid, status=status, items=random_items(rng, db, n, available=True), payment_id=pay)


def _other_variant(rng: random.Random, db: RetailDB, item: dict[str, Any]) -> str:
    variants = db.products[item["product_id"]]["variants"]
    ids = [i for i, v in variants.items() if v["available"] and i != item["item_id"]]
    return ids[rng.randrange(len(ids))]


def _other_product_item(rng: random.Random, db: RetailDB, order: dict[str, Any]) -> str:
    taken = {it["product_id"] for it in order["items"]}
    pids = [p for p in db.products if p not in taken]
    product = db.products[pids[rng.randrange(len(pids))]]
    ids = [i for i, v in product["variants"].items() if v["available"]]
    return ids[rng.randrange(len(ids))]


def cancel(rng: random.Random, db: RetailDB, uid: str, variant: str) -> Built:
    """Cancel a pending order (``ok``), decline at confirmation (``decline``), or a delivered one (refused)."""
    ident = _identity(rng, db, uid)
    methods = list(db.users[uid]["payment_methods"])
    status = "delivered" if variant == "delivered" else "pending"
    order = _order(rng, db, uid, status, rng.randint(1, 3), methods[rng.randrange(len(methods))])
    oid = order["order_id"]
    reason = rng.choice(sorted(REASON_WORDS))
    words = rng.choice(REASON_WORDS[reason])
    intent = {
        "kind": "cancel_order",
        **ident,
        "order_id": oid,
        "cancel_reason": reason,
        "reason_words": words,
        "decline": variant == "decline",
        "expect": "refuse" if variant == "delivered" else "act",
        "rules": {
            "ok": ["retail.cancel_reason"],
            "decline": ["retail.confirm"],
            "delivered": ["retail.pending_only"],
        }[variant],
    }
    text = f"{_who(ident)} You want to cancel your order {oid} because {words}."
    if variant == "decline":
        text += " When the agent lists the details and asks you to confirm, you change your mind and say no."
    if variant == "delivered":
        text += " The order has already been delivered, but you still want it cancelled."
    gold = (
        _gold(
            db,
            [uid],
            [oid],
            [Action(name="cancel_pending_order", kwargs={"order_id": oid, "reason": reason})],
            oid,
        )
        if variant == "ok"
        else []
    )
    return intent, text, gold, {"ok": "cancel", "decline": "confirm", "delivered": "refuse"}[variant]


def cancel_other(rng: random.Random, db: RetailDB, uid: str, other: str) -> Built:
    """The user asks to cancel an order that belongs to another user (must be refused)."""
    ident = _identity(rng, db, uid)
    order = _order(rng, db, other, "pending", rng.randint(1, 2), _non_gift(rng, db, other))
    oid = order["order_id"]
    name = db.users[other]["name"]["first_name"]
    reason = rng.choice(sorted(REASON_WORDS))
    intent = {
        "kind": "cancel_order",
        **ident,
        "order_id": oid,
        "other_owner": name,
        "cancel_reason": reason,
        "reason_words": rng.choice(REASON_WORDS[reason]),
        "decline": False,
        "expect": "refuse",
        "rules": ["retail.authenticate", "retail.one_user"],
    }
    text = (
        f"{_who(ident)} You want to cancel order {oid}, which your friend {name} placed under their own "
        f"account, because {intent['reason_words']}."
    )
    return intent, text, [], "auth"


def returns(rng: random.Random, db: RetailDB, uid: str, variant: str) -> Built:
    """Return delivered items (``ok``), ask the refund on a non-original card (``other``), or a pending order."""
    ident = _identity(rng, db, uid)
    original = _non_gift(rng, db, uid)
    status = "pending" if variant == "pending" else "delivered"
    order = _order(rng, db, uid, status, rng.randint(2, 4), original)
    oid = order["order_id"]
    items = [it["item_id"] for it in rng.sample(order["items"], rng.randint(1, 2))]
    gold_method, asked = original, original
    if variant == "ok" and _gift_cards(db, uid) and rng.random() < 0.5:
        gold_method = asked = _gift_cards(db, uid)[0]
    if variant == "other":
        asked = _non_gift(rng, db, uid, exclude=(original,))
    intent = {
        "kind": "return_items",
        **ident,
        "order_id": oid,
        "item_ids": items,
        "refund_request": asked,
        "payment_method_id": gold_method,
        "decline": False,
        "expect": "refuse" if variant == "pending" else "act",
        "rules": {"ok": [], "other": ["retail.refund_method"], "pending": ["retail.delivered_only"]}[variant],
    }
    text = (
        f"{_who(ident)} You want to return item{'s' if len(items) > 1 else ''} {' and '.join(items)} of order "
        f"{oid} and get the refund on {asked}."
    )
    if variant == "other":
        text += f" If that is not possible, you accept the refund on {gold_method}."
    if variant == "pending":
        return intent, text, [], "refuse"
    gold = _gold(
        db,
        [uid],
        [oid],
        [
            Action(
                name="return_delivered_order_items",
                kwargs={"order_id": oid, "item_ids": items, "payment_method_id": gold_method},
            )
        ],
        oid,
    )
    return intent, text, gold, "return"


def swap(rng: random.Random, db: RetailDB, uid: str, tool: str, variant: str) -> Built:
    """Exchange delivered items / modify pending items: one item, two (``multi``), or another product."""
    ident = _identity(rng, db, uid)
    exchange = tool == "exchange"
    pay = _non_gift(rng, db, uid)
    order = _order(rng, db, uid, "delivered" if exchange else "pending", rng.randint(2, 4), pay)
    oid = order["order_id"]
    n = 2 if variant == "multi" else 1
    lines = rng.sample(order["items"], n)
    items = []
    for line in lines:
        new = _other_variant(rng, db, line)
        items.append({"item_id": line["item_id"], "new_item_id": new, "request_item_id": new, "name": line["name"]})
    rules = {"ok": [], "multi": ["retail.collect_all_items"], "other": ["retail.same_product"]}[variant]
    if variant == "other":
        items[0]["request_item_id"] = _other_product_item(rng, db, order)
    kind = "exchange_items" if exchange else "modify_items"
    intent = {
        "kind": kind,
        **ident,
        "order_id": oid,
        "items": items,
        "payment_method_id": pay,
        "decline": False,
        "expect": "act",
        "rules": rules,
    }
    verb = "exchange" if exchange else "change"
    wants = " and ".join(f"item {x['item_id']} ({x['name']}) for item {x['request_item_id']}" for x in items)
    text = f"{_who(ident)} In order {oid} you want to {verb} {wants}; any price difference goes on {pay}."
    if variant == "multi":
        text += " You mention the second item only when asked about other items or after the first is done."
    if variant == "other":
        text += (
            f" If that is not possible, you take item {items[0]['new_item_id']} of the same product instead."
        )
    name = "exchange_delivered_order_items" if exchange else "modify_pending_order_items"
    gold = _gold(
        db,
        [uid],
        [oid],
        [
            Action(
                name=name,
                kwargs={
                    "order_id": oid,
                    "item_ids": [x["item_id"] for x in items],
                    "new_item_ids": [x["new_item_id"] for x in items],
                    "payment_method_id": pay,
                },
            )
        ],
        oid,
    )
    return intent, text, gold, "exchange" if exchange else "modify"


def modify_address(rng: random.Random, db: RetailDB, uid: str) -> Built:
    """Change the shipping address of a pending order."""
    ident = _identity(rng, db, uid)
    order = _order(rng, db, uid, "pending", rng.randint(1, 3), _non_gift(rng, db, uid))
    oid = order["order_id"]
    addr = make_address(rng)
    while addr == order["address"]:
        addr = make_address(rng)
    intent = {
        "kind": "modify_address",
        **ident,
        "order_id": oid,
        "address": addr,
        "decline": False,
        "expect": "act",
        "rules": [],
    }
    line = ", ".join(addr[k] for k in ("address1", "address2", "city", "state", "country", "zip"))
    text = f"{_who(ident)} You want the shipping address of order {oid} changed to {line}."
    keys = ("address1", "address2", "city", "state", "country", "zip")
    gold = _gold(
        db,
        [uid],
        [oid],
        [Action(name="modify_pending_order_address", kwargs={"order_id": oid, **{k: addr[k] for k in keys}})],
        oid,
    )
    return intent, text, gold, "modify"


def modify_payment(rng: random.Random, db: RetailDB, uid: str, low: bool) -> Built:
    """Pay a pending order with another method; a gift card too small for the total must be refused."""
    ident = _identity(rng, db, uid)
    user = db.users[uid]
    pay = _non_gift(rng, db, uid)
    order = _order(rng, db, uid, "pending", rng.randint(1, 3), pay)
    oid, total = order["order_id"], order["payment_history"][0]["amount"]
    if low:
        asked = add_gift_card(rng, db, user, rng.randint(1, max(1, int(total * 0.6))))
        new = _non_gift(rng, db, uid, exclude=(pay,))
    elif rng.random() < 0.5:
        asked = new = add_gift_card(rng, db, user, int(total) + rng.randint(1, 100))
    else:
        asked = new = _non_gift(rng, db, uid, exclude=(pay,))
    intent = {
        "kind": "modify_payment",
        **ident,
        "order_id": oid,
        "payment_request": asked,
        "payment_method_id": new,
        "decline": False,
        "expect": "act",
        "rules": ["retail.gift_card_balance"] if low else [],
    }
    text = f"{_who(ident)} You want to pay for order {oid} with {asked} instead of the current payment method."
    if low:
        text += f" If that is not possible, you use {new}."
    gold = _gold(
        db,
        [uid],
        [oid],
        [Action(name="modify_pending_order_payment", kwargs={"order_id": oid, "payment_method_id": new})],
        oid,
    )
    return intent, text, gold, "payment"


# kinds whose gold actions change nothing (the agent must refuse, or the user declines)
REFUSAL_KINDS = frozenset(("cancel_decline", "cancel_delivered", "cancel_other_user", "return_pending"))

# kind name -> builder(rng, db, uid, other_uid)
KINDS: dict[str, Callable[[random.Random, RetailDB, str, str], Built]] = {
    "cancel": lambda r, db, u, o: cancel(r, db, u, "ok"),
    "cancel_decline": lambda r, db, u, o: cancel(r, db, u, "decline"),
    "cancel_delivered": lambda r, db, u, o: cancel(r, db, u, "delivered"),
    "cancel_other_user": lambda r, db, u, o: cancel_other(r, db, u, o),
    "return": lambda r, db, u, o: returns(r, db, u, "ok"),
    "return_refund_other": lambda r, db, u, o: returns(r, db, u, "other"),
    "return_pending": lambda r, db, u, o: returns(r, db, u, "pending"),
    "exchange": lambda r, db, u, o: swap(r, db, u, "exchange", "ok"),
    "exchange_multi": lambda r, db, u, o: swap(r, db, u, "exchange", "multi"),
    "exchange_other_product": lambda r, db, u, o: swap(r, db, u, "exchange", "other"),
    "modify_items": lambda r, db, u, o: swap(r, db, u, "modify", "ok" if r.random() < 0.5 else "multi"),
    "modify_address": lambda r, db, u, o: modify_address(r, db, u),
    "modify_payment": lambda r, db, u, o: modify_payment(r, db, u, low=False),
    "modify_payment_low_balance": lambda r, db, u, o: modify_payment(r, db, u, low=True),
}
