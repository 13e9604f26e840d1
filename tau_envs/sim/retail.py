"""The simulated retail agent: authentication, order lookup, rule checks, one write.

Every rule check is guarded by ``ctx.follows(rule_id)``; when the rule is not stated the agent takes
the naive branch and records why with ``ctx.blame`` (so :func:`tau_envs.sim.explain_failure` can name
the missing rule). Naive branches, each of which leaves the database wrong where the rule matters:

- ``retail.authenticate``: no identity check; the order's own ``user_id`` is trusted.
- ``retail.one_user``: acts on an order of another user.
- ``retail.confirm``: writes without asking for a yes.
- ``retail.pending_only`` / ``retail.delivered_only``: does not check the status and picks the tool that
  works for the order's status (cancel a delivered order → return every item; return a pending order →
  cancel it; modify a delivered order → exchange; exchange a pending order → modify).
- ``retail.cancel_reason``: passes the user's own words as the cancellation reason.
- ``retail.same_product``: exchanges/modifies to whatever item the user names (other product types too).
- ``retail.collect_all_items``: submits the exchange/modification with the first item it hears of.
- ``retail.refund_method``: refunds to whichever method the user names.
- ``retail.gift_card_balance``: switches payment to a gift card without checking its balance.

The gift-card balance is checked for payment changes (where the amount, the order total, is known
without product lookups); for item swaps the tools' own check applies.
"""

from __future__ import annotations

import re
from typing import Any

from tau_envs.sim.agent_base import Ctx, SimMove, opening
from tau_envs.sim.conversation import EMAIL, ITEM_ID, ORDER_ID, PAYMENT_ID

WRITES = (
    "cancel_pending_order",
    "exchange_delivered_order_items",
    "modify_pending_order_address",
    "modify_pending_order_items",
    "modify_pending_order_payment",
    "modify_user_address",
    "return_delivered_order_items",
)
C = "retail.confirm"
AUTH_Q = (
    "To verify your identity, could you please provide your email address, or your first name, last name "
    "and zip code?"
)
COLLECT_MARK = "please list them all now"
NAME_ZIP = re.compile(r"name is ([A-Z][a-z]+) ([A-Z][a-z]+)\b.*?zip(?: code)? is (\d{5})\b", re.S)
PAIR = re.compile(
    r"(\d{10})\b[^\d\n]{0,40}?\b(?:for|to|into|with)\s+(?:the\s+)?(?:new\s+)?(?:item\s+)?(?:id\s+)?(\d{10})\b"
)
ADDRESS = re.compile(
    r"(\d+ [A-Za-z .]+?), ((?:Suite|Apt|Unit) \d+), ([A-Za-z .]+?), ([A-Z]{2}), ([A-Za-z ]+?), (\d{5})\b"
)
REASONS = (
    ("ordered by mistake", re.compile(r"mistake|accident|wrong (item|order)|by error", re.I)),
    ("no longer needed", re.compile(r"no longer|(do not|don'?t|won'?t) (need|use)|not needed|anymore", re.I)),
)


def classify(text: str) -> str:
    """The request kind from the user's words."""
    t = text.lower()
    if "cancel" in t:
        return "cancel"
    if re.search(r"\breturn", t):
        return "return"
    if "exchange" in t:
        return "exchange"
    if "address" in t:
        return "modify_address"
    if re.search(r"\b(change|modify|swap|replace)\b.*\bitem", t):
        return "modify_items"
    if re.search(r"\bpay(ment)?\b|\bpay for\b", t):
        return "modify_payment"
    return "unknown"


def _raw(ctx: Ctx, name: str, **args: Any) -> tuple[SimMove | None, str]:
    """Like ``ctx.lookup`` for tools that answer a bare string (the find-user tools)."""
    done = ctx.conv.called(name, **args)
    if done is None:
        return ctx.call(name, **args), ""
    if not done.ok:
        return ctx.say(
            "I could not find a matching user. Could you check your email, or your name and zip code?"
        ), ""
    return None, done.observation


def _authenticate(ctx: Ctx) -> tuple[SimMove | None, str]:
    email = ctx.conv.last(EMAIL)
    if email:
        return _raw(ctx, "find_user_id_by_email", email=email)
    found = NAME_ZIP.findall(ctx.conv.user_text)
    if found:
        first, last, zip_ = found[-1]
        return _raw(ctx, "find_user_id_by_name_zip", first_name=first, last_name=last, zip=zip_)
    return ctx.say(AUTH_Q), ""


def _status_ok(ctx: Ctx, order: dict[str, Any], need: str, action: str) -> SimMove | None:
    """Refuse when the order is not ``need`` and the status rule is stated; None to go on."""
    rule = "retail.pending_only" if need == "pending" else "retail.delivered_only"
    if order["status"] == need:
        return None
    if ctx.follows(rule):
        return ctx.refuse(
            f"only {need} orders can be {action}, and order {order['order_id']} is {order['status']}"
        )
    ctx.blame(rule, f"did not check that order {order['order_id']} ({order['status']}) is {need}")
    return None


def _original(order: dict[str, Any]) -> str:
    return str(order["payment_history"][0]["payment_method_id"])


def _cancel(ctx: Ctx, order: dict[str, Any]) -> SimMove:
    oid = order["order_id"]
    stop = _status_ok(ctx, order, "pending", "cancelled")
    if stop is not None:
        return stop
    if order["status"] == "delivered":  # naive: "get rid of the order" by returning everything
        items = [it["item_id"] for it in order["items"]]
        return ctx.write(
            C,
            f"return every item of order {oid} with a refund to {_original(order)}",
            "return_delivered_order_items",
            {"order_id": oid, "item_ids": items, "payment_method_id": _original(order)},
        )
    text = ctx.conv.user_text
    m = re.search(r"(?:because|reason is:?)\s+([^.\n]+)", text, re.I)
    if ctx.follows("retail.cancel_reason"):
        reason = next((r for r, pat in REASONS if pat.search(text)), None)
        if reason is None:
            return ctx.say(
                "What is the reason for the cancellation: no longer needed, or ordered by mistake?"
            )
    else:
        if m is None:
            return ctx.say("Why would you like to cancel the order? What is the reason?")
        reason = m.group(1).strip()
        ctx.blame("retail.cancel_reason", f"passed the user's own words {reason!r} as the cancel reason")
    return ctx.write(
        C,
        f"cancel order {oid} (reason: {reason})",
        "cancel_pending_order",
        {"order_id": oid, "reason": reason},
    )


def _items_named(ctx: Ctx, order: dict[str, Any]) -> list[str]:
    ids = {it["item_id"] for it in order["items"]}
    return [i for i in dict.fromkeys(ITEM_ID.findall(ctx.conv.user_text)) if i in ids]


def _return(ctx: Ctx, order: dict[str, Any], user: dict[str, Any]) -> SimMove:
    oid = order["order_id"]
    stop = _status_ok(ctx, order, "delivered", "returned")
    if stop is not None:
        return stop
    if order["status"] == "pending":  # naive: a return of an undelivered order = cancel it
        return ctx.write(
            C,
            f"cancel order {oid} (reason: no longer needed)",
            "cancel_pending_order",
            {"order_id": oid, "reason": "no longer needed"},
        )
    items = _items_named(ctx, order)
    if not items:
        return ctx.say("Which items of the order would you like to return? Please give me their item ids.")
    method = ctx.conv.last(PAYMENT_ID)
    original = _original(order)
    if method is None:
        return ctx.say(
            f"Which payment method should receive the refund: the original payment method ({original}) or a "
            "gift card?"
        )
    wallet = user.get("payment_methods", {})
    allowed = method == original or (method in wallet and wallet[method]["source"] == "gift_card")
    if not allowed:
        if ctx.follows("retail.refund_method"):
            return ctx.say(
                f"The refund must go either to the original payment method ({original}) or to an existing "
                "gift card. Which one would you like?"
            )
        ctx.blame("retail.refund_method", f"refunded to {method}, neither the original method nor a gift card")
    return ctx.write(
        C,
        f"return items {', '.join(items)} of order {oid} with a refund to {method}",
        "return_delivered_order_items",
        {"order_id": oid, "item_ids": items, "payment_method_id": method},
    )


def _pairs(ctx: Ctx, order: dict[str, Any]) -> dict[str, str]:
    """Map old item id -> new item id, in order of first mention; a later pair for an item wins."""
    ids = {it["item_id"] for it in order["items"]}
    out: dict[str, str] = {}
    for text in ctx.conv.users:
        for old, new in PAIR.findall(text):
            if old in ids and new != old:
                out[old] = new
    return out


def _swap(ctx: Ctx, order: dict[str, Any], exchange: bool) -> SimMove:
    oid = order["order_id"]
    need, action = ("delivered", "exchanged") if exchange else ("pending", "modified")
    stop = _status_ok(ctx, order, need, action)
    if stop is not None:
        return stop
    if order["status"] in ("pending", "delivered"):  # naive: the tool that works for the status
        exchange = order["status"] == "delivered"
    verb = "exchange" if exchange else "modify"
    pairs = _pairs(ctx, order)
    if not pairs:
        return ctx.say(f"Which item would you like to {verb}, and which new item id would you like instead?")
    if ctx.follows("retail.same_product"):
        for it in order["items"]:
            if it["item_id"] not in pairs:
                continue
            stop, product = ctx.lookup("get_product_details", product_id=it["product_id"])
            if stop is not None:
                return stop
            variant = product.get("variants", {}).get(pairs[it["item_id"]])
            if variant is None or not variant.get("available"):
                return ctx.say(
                    f"An item can only be exchanged for another available option of the same product "
                    f"({it['name']}), and {pairs[it['item_id']]} is not one. Which {it['name']} option "
                    "would you like instead?"
                )
    else:
        ctx.blame("retail.same_product", f"did not check that the new items of {oid} are of the same product")
    if ctx.follows("retail.collect_all_items"):
        if not any(COLLECT_MARK in a for a in ctx.conv.assistants):
            noun = "exchange" if exchange else "modification"
            return ctx.say(
                f"Are there any other items you want to {verb} in this order? I can submit the {noun} only "
                f"once, so {COLLECT_MARK}."
            )
    else:
        ctx.blame("retail.collect_all_items", f"submitted the {verb} of {oid} without collecting every item")
    method = ctx.conv.last(PAYMENT_ID)
    if method is None:
        return ctx.say("Which payment method should pay or receive the price difference?")
    olds, news = list(pairs), list(pairs.values())
    return ctx.write(
        C,
        f"{verb} items {', '.join(olds)} of order {oid} for {', '.join(news)}, price difference with {method}",
        "exchange_delivered_order_items" if exchange else "modify_pending_order_items",
        {"order_id": oid, "item_ids": olds, "new_item_ids": news, "payment_method_id": method},
    )


def _modify_address(ctx: Ctx, order: dict[str, Any]) -> SimMove:
    stop = _status_ok(ctx, order, "pending", "modified")
    if stop is not None:
        return stop
    found = ADDRESS.findall(ctx.conv.user_text)
    if not found:
        return ctx.say(
            "What is the new shipping address (street, suite, city, state, country and zip code)?"
        )
    a1, a2, city, state, country, zip_ = found[-1]
    oid = order["order_id"]
    args = {"order_id": oid, "address1": a1, "address2": a2, "city": city, "state": state,
            "country": country, "zip": zip_}
    return ctx.write(
        C,
        f"ship order {oid} to {a1}, {a2}, {city}, {state}, {country}, {zip_}",
        "modify_pending_order_address",
        args,
    )


def _modify_payment(ctx: Ctx, order: dict[str, Any], user: dict[str, Any]) -> SimMove:
    stop = _status_ok(ctx, order, "pending", "modified")
    if stop is not None:
        return stop
    oid, current = order["order_id"], _original(order)
    named = [p for p in PAYMENT_ID.findall(ctx.conv.user_text) if p != current]
    if not named:
        return ctx.say("Which payment method from your profile would you like to pay with instead?")
    method = named[-1]
    wallet = user.get("payment_methods", {})
    if method not in wallet:
        return ctx.say(f"I don't see {method} in your profile. Which payment method would you like to use?")
    total = order["payment_history"][0]["amount"]
    if wallet[method]["source"] == "gift_card" and wallet[method]["balance"] < total:
        if ctx.follows("retail.gift_card_balance"):
            return ctx.say(
                f"Gift card {method} has a balance of {wallet[method]['balance']}, which does not cover the "
                f"order total of {total}. Which other payment method would you like to use?"
            )
        ctx.blame("retail.gift_card_balance", f"paid order {oid} with gift card {method} without checking its balance")
    return ctx.write(
        C,
        f"pay order {oid} with {method} instead of {current}",
        "modify_pending_order_payment",
        {"order_id": oid, "payment_method_id": method},
    )


def _order_and_user(ctx: Ctx) -> tuple[SimMove | None, Any, Any]:
    """Authenticate (when stated), look the order up, check ownership; (stop, order, user profile)."""
    conv = ctx.conv
    uid = ""
    user: Any = None
    if ctx.follows("retail.authenticate"):
        stop, uid = _authenticate(ctx)
        if stop is not None:
            return stop, None, None
        stop, user = ctx.lookup("get_user_details", user_id=uid)
        if stop is not None:
            return stop, None, None
    oid = conv.last(ORDER_ID)
    if oid is None:
        return ctx.say("Could you tell me the order id? It starts with #W."), None, None
    stop, order = ctx.lookup("get_order_details", order_id=oid)
    if stop is not None:
        return stop, None, None
    if not isinstance(order, dict):
        return ctx.say(f"I could not read the details of order {oid}. Could you check the order id?"), None, None
    if not uid:
        ctx.blame("retail.authenticate", f"acted on order {oid} without authenticating the user")
    elif order["user_id"] != uid:
        if ctx.follows("retail.one_user"):
            return ctx.refuse(
                "that order belongs to another user, and I can only help with your own orders"
            ), None, None
        ctx.blame("retail.one_user", f"acted on order {oid} of another user ({order['user_id']})")
    if user is None or order["user_id"] != uid:
        stop, user = ctx.lookup("get_user_details", user_id=order["user_id"])
        if stop is not None:
            return stop, None, None
    return None, order, user if isinstance(user, dict) else {}


MENU = (
    "I can help you cancel or modify a pending order, or return or exchange a delivered order. "
    "What would you like to do?"
)


def decide(ctx: Ctx) -> SimMove:
    """The next move of the simulated retail agent."""
    move = opening(ctx, WRITES, classify, MENU)
    if not isinstance(move, str):
        return move
    kind = move
    stop, order, user = _order_and_user(ctx)
    if stop is not None:
        return stop
    if kind == "cancel":
        return _cancel(ctx, order)
    if kind == "return":
        return _return(ctx, order, user)
    if kind in ("exchange", "modify_items"):
        return _swap(ctx, order, exchange=kind == "exchange")
    if kind == "modify_address":
        return _modify_address(ctx, order)
    return _modify_payment(ctx, order, user)
