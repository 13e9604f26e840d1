"""The 16 retail tools over ``{"orders", "products", "users"}``, with the official semantics.

Orders move ``pending -> cancelled | pending (item modified)`` and ``delivered -> return requested |
exchange requested``; gift-card balances change immediately (rounded to cents), other refunds are
recorded in the order's payment history only.
"""

from __future__ import annotations

import copy
from typing import Any

from tau_envs.common_tools import SHARED_TOOLS
from tau_envs.toolkit import JsonDict, Registry, ToolFailure

CANCEL_REASONS = ("no longer needed", "ordered by mistake")

reg = Registry("retail")
for _shared in SHARED_TOOLS:
    reg.add(_shared)


def _order(data: JsonDict, order_id: str) -> JsonDict:
    if order_id not in data["orders"]:
        raise ToolFailure("order not found")
    return data["orders"][order_id]  # type: ignore[no-any-return]


def _pending(data: JsonDict, order_id: str) -> JsonDict:
    order = _order(data, order_id)
    if order["status"] != "pending":
        raise ToolFailure("non-pending order cannot be modified")
    return order


def _wallet(data: JsonDict, order: JsonDict) -> JsonDict:
    return data["users"][order["user_id"]]["payment_methods"]  # type: ignore[no-any-return]


def _method(data: JsonDict, order: JsonDict, payment_method_id: str) -> JsonDict:
    wallet = _wallet(data, order)
    if payment_method_id not in wallet:
        raise ToolFailure("payment method not found")
    return wallet[payment_method_id]  # type: ignore[no-any-return]


def _check_items_present(order: JsonDict, item_ids: list[str], message: str | None = None) -> None:
    present = [item["item_id"] for item in order["items"]]
    for item_id in item_ids:
        if item_ids.count(item_id) > present.count(item_id):
            raise ToolFailure(message or f"{item_id} not found")


def _price_difference(data: JsonDict, order: JsonDict, item_ids: list[str], new_item_ids: list[str]) -> Any:
    """Sum of (new variant price - old item price); checks each new variant exists and is available."""
    if len(item_ids) != len(new_item_ids):
        raise ToolFailure("the number of items to be exchanged should match")
    diff = 0
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        item = next(it for it in order["items"] if it["item_id"] == item_id)
        variants = data["products"][item["product_id"]]["variants"]
        if not (new_item_id in variants and variants[new_item_id]["available"]):
            raise ToolFailure(f"new item {new_item_id} not found or available")
        diff += variants[new_item_id]["price"] - item["price"]
    return diff


def _add_balance(method: JsonDict, delta: Any) -> None:
    method["balance"] += delta
    method["balance"] = round(method["balance"], 2)


@reg.tool
def cancel_pending_order(data: JsonDict, order_id: str, reason: str) -> Any:
    """Cancel a pending order; every payment is refunded (gift cards immediately)."""
    order = _order(data, order_id)
    if order["status"] != "pending":
        raise ToolFailure("non-pending order cannot be cancelled")
    if reason not in CANCEL_REASONS:
        raise ToolFailure("invalid reason")
    refunds = []
    for payment in order["payment_history"]:
        pid = payment["payment_method_id"]
        refunds.append({"transaction_type": "refund", "amount": payment["amount"], "payment_method_id": pid})
        if "gift_card" in pid:
            _add_balance(_wallet(data, order)[pid], payment["amount"])
    order["status"] = "cancelled"
    order["cancel_reason"] = reason
    order["payment_history"].extend(refunds)
    return order


@reg.tool
def exchange_delivered_order_items(
    data: JsonDict, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> Any:
    """Request an exchange of delivered items for other variants of the same products."""
    order = _order(data, order_id)
    if order["status"] != "delivered":
        raise ToolFailure("non-delivered order cannot be exchanged")
    _check_items_present(order, item_ids)
    diff = round(_price_difference(data, order, item_ids, new_item_ids), 2)
    method = _method(data, order, payment_method_id)
    if method["source"] == "gift_card" and method["balance"] < diff:
        raise ToolFailure("insufficient gift card balance to pay for the price difference")
    order["status"] = "exchange requested"
    order["exchange_items"] = sorted(item_ids)
    order["exchange_new_items"] = sorted(new_item_ids)
    order["exchange_payment_method_id"] = payment_method_id
    order["exchange_price_difference"] = diff
    return order


@reg.tool
def find_user_id_by_email(data: JsonDict, email: str) -> Any:
    """The user id whose email matches (case-insensitive)."""
    for user_id, profile in data["users"].items():
        if profile["email"].lower() == email.lower():
            return user_id
    raise ToolFailure("user not found")


@reg.tool
def find_user_id_by_name_zip(data: JsonDict, first_name: str, last_name: str, zip: str) -> Any:
    """The user id matching first and last name (case-insensitive) and zip code."""
    for user_id, profile in data["users"].items():
        name = profile["name"]
        if (
            name["first_name"].lower() == first_name.lower()
            and name["last_name"].lower() == last_name.lower()
            and profile["address"]["zip"] == zip
        ):
            return user_id
    raise ToolFailure("user not found")


@reg.tool
def get_order_details(data: JsonDict, order_id: str) -> Any:
    """The order record."""
    return _order(data, order_id)


@reg.tool
def get_product_details(data: JsonDict, product_id: str) -> Any:
    """The product and all its variants."""
    if product_id not in data["products"]:
        raise ToolFailure("product not found")
    return data["products"][product_id]


@reg.tool
def get_user_details(data: JsonDict, user_id: str) -> Any:
    """The user's profile, payment methods and order ids."""
    if user_id not in data["users"]:
        raise ToolFailure("user not found")
    return data["users"][user_id]


@reg.tool
def list_all_product_types(data: JsonDict) -> Any:
    """Every product name and its product id, sorted by name."""
    by_name = {product["name"]: product["product_id"] for product in data["products"].values()}
    return dict(sorted(by_name.items()))


@reg.tool
def modify_pending_order_address(
    data: JsonDict,
    order_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> Any:
    """Change the shipping address of a pending order."""
    order = _pending(data, order_id)
    order["address"] = {
        "address1": address1,
        "address2": address2,
        "city": city,
        "state": state,
        "country": country,
        "zip": zip,
    }
    return order


@reg.tool
def modify_pending_order_items(
    data: JsonDict, order_id: str, item_ids: list[str], new_item_ids: list[str], payment_method_id: str
) -> Any:
    """Swap items of a pending order for other variants; the difference is charged or refunded."""
    order = _pending(data, order_id)
    _check_items_present(order, item_ids)
    diff = _price_difference(data, order, item_ids, new_item_ids)
    method = _method(data, order, payment_method_id)
    if method["source"] == "gift_card" and method["balance"] < diff:
        raise ToolFailure("insufficient gift card balance to pay for the new item")
    order["payment_history"].append(
        {
            "transaction_type": "payment" if diff > 0 else "refund",
            "amount": abs(diff),
            "payment_method_id": payment_method_id,
        }
    )
    if method["source"] == "gift_card":
        _add_balance(method, -diff)
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        item = next(it for it in order["items"] if it["item_id"] == item_id)
        variant = data["products"][item["product_id"]]["variants"][new_item_id]
        item["item_id"] = new_item_id
        item["price"] = variant["price"]
        item["options"] = copy.deepcopy(variant["options"])
    order["status"] = "pending (item modified)"
    return order


@reg.tool
def modify_pending_order_payment(data: JsonDict, order_id: str, payment_method_id: str) -> Any:
    """Pay a pending order with another method: a new payment and a refund of the old one."""
    order = _pending(data, order_id)
    method = _method(data, order, payment_method_id)
    history = order["payment_history"]
    if len(history) > 1 or history[0]["transaction_type"] != "payment":
        raise ToolFailure("there should be exactly one payment for a pending order")
    old_id = history[0]["payment_method_id"]
    if old_id == payment_method_id:
        raise ToolFailure("the new payment method should be different from the current one")
    amount = history[0]["amount"]
    if method["source"] == "gift_card" and method["balance"] < amount:
        raise ToolFailure("insufficient gift card balance to pay for the order")
    history.extend(
        [
            {"transaction_type": "payment", "amount": amount, "payment_method_id": payment_method_id},
            {"transaction_type": "refund", "amount": amount, "payment_method_id": old_id},
        ]
    )
    if method["source"] == "gift_card":
        _add_balance(method, -amount)
    if "gift_card" in old_id:
        _add_balance(_wallet(data, order)[old_id], amount)
    return order


@reg.tool
def modify_user_address(
    data: JsonDict,
    user_id: str,
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> Any:
    """Change the user's default address."""
    if user_id not in data["users"]:
        raise ToolFailure("user not found")
    user = data["users"][user_id]
    user["address"] = {
        "address1": address1,
        "address2": address2,
        "city": city,
        "state": state,
        "country": country,
        "zip": zip,
    }
    return user


@reg.tool
def return_delivered_order_items(
    data: JsonDict, order_id: str, item_ids: list[str], payment_method_id: str
) -> Any:
    """Request a return of delivered items, refunded to the original method or a gift card."""
    order = _order(data, order_id)
    if order["status"] != "delivered":
        raise ToolFailure("non-delivered order cannot be returned")
    _method(data, order, payment_method_id)
    original = order["payment_history"][0]["payment_method_id"]
    if "gift_card" not in payment_method_id and payment_method_id != original:
        raise ToolFailure("payment method should be either the original payment method or a gift card")
    _check_items_present(order, item_ids, "some item not found")
    order["status"] = "return requested"
    order["return_items"] = sorted(item_ids)
    order["return_payment_method_id"] = payment_method_id
    return order


TOOLS = reg.toolset()
