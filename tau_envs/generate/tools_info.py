"""Our own tool descriptions for generated worlds (``tools_info.json``).

The official tool names and parameters, so the exact tools run, with descriptions written by us.
"""

from __future__ import annotations

from typing import Any

from tau_envs.types import DomainName

_S = {"type": "string"}
_I = {"type": "integer"}
_NUM = {"type": "number"}
_LEG = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"flight_number": _S, "date": _S},
        "required": ["flight_number", "date"],
    },
}
_PAX = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"first_name": _S, "last_name": _S, "dob": _S},
        "required": ["first_name", "last_name", "dob"],
    },
}
_PAY = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"payment_id": _S, "amount": _NUM},
        "required": ["payment_id", "amount"],
    },
}
_IDS = {"type": "array", "items": _S}
_ADDR = ("address1", "address2", "city", "state", "country", "zip")

_COMMON: list[tuple[str, str, dict[str, Any]]] = [
    (
        "calculate",
        "Evaluate an arithmetic expression (numbers, + - * / and parentheses).",
        {"expression": _S},
    ),
    (
        "think",
        "Write down a private thought; nothing changes and nothing is shown to the user.",
        {"thought": _S},
    ),
    (
        "transfer_to_human_agents",
        "Hand the conversation to a human agent with a short summary of the issue; "
        "use only when the request is outside what the tools can do.",
        {"summary": _S},
    ),
]

_AIRLINE: list[tuple[str, str, dict[str, Any]]] = [
    (
        "book_reservation",
        "Create a reservation for a user; the payments must add up to the total price.",
        {
            "user_id": _S,
            "origin": _S,
            "destination": _S,
            "flight_type": {"type": "string", "enum": ["one_way", "round_trip"]},
            "cabin": {"type": "string", "enum": ["basic_economy", "economy", "business"]},
            "flights": _LEG,
            "passengers": _PAX,
            "payment_methods": _PAY,
            "total_baggages": _I,
            "nonfree_baggages": _I,
            "insurance": {"type": "string", "enum": ["yes", "no"]},
        },
    ),
    (
        "cancel_reservation",
        "Cancel a whole reservation; payments are refunded to their methods.",
        {"reservation_id": _S},
    ),
    ("get_reservation_details", "Look up a reservation by its id.", {"reservation_id": _S}),
    ("get_user_details", "Look up a user's profile, payment methods and reservation ids.", {"user_id": _S}),
    ("list_all_airports", "List the airport codes served and their cities.", {}),
    (
        "search_direct_flight",
        "Find direct flights between two airports on a date (YYYY-MM-DD).",
        {"origin": _S, "destination": _S, "date": _S},
    ),
    (
        "search_onestop_flight",
        "Find one-stop connections between two airports on a date (YYYY-MM-DD).",
        {"origin": _S, "destination": _S, "date": _S},
    ),
    (
        "send_certificate",
        "Give a user a travel certificate worth the amount.",
        {"user_id": _S, "amount": _NUM},
    ),
    (
        "update_reservation_baggages",
        "Set a reservation's checked bag counts; non-free bags are charged to the payment method.",
        {"reservation_id": _S, "total_baggages": _I, "nonfree_baggages": _I, "payment_id": _S},
    ),
    (
        "update_reservation_flights",
        "Replace all flights of a reservation (and set its cabin); the price difference "
        "is charged or refunded to the payment method.",
        {
            "reservation_id": _S,
            "cabin": {"type": "string", "enum": ["basic_economy", "economy", "business"]},
            "flights": _LEG,
            "payment_id": _S,
        },
    ),
    (
        "update_reservation_passengers",
        "Replace the passenger list of a reservation (same number of passengers).",
        {"reservation_id": _S, "passengers": _PAX},
    ),
]

_RETAIL: list[tuple[str, str, dict[str, Any]]] = [
    (
        "cancel_pending_order",
        "Cancel a pending order; the reason is 'no longer needed' or 'ordered by mistake'.",
        {"order_id": _S, "reason": {"type": "string", "enum": ["no longer needed", "ordered by mistake"]}},
    ),
    (
        "exchange_delivered_order_items",
        "Exchange items of a delivered order for other items; the price "
        "difference is settled with the payment method.",
        {"order_id": _S, "item_ids": _IDS, "new_item_ids": _IDS, "payment_method_id": _S},
    ),
    ("find_user_id_by_email", "Find a user id from an email address.", {"email": _S}),
    (
        "find_user_id_by_name_zip",
        "Find a user id from first name, last name and zip code.",
        {"first_name": _S, "last_name": _S, "zip": _S},
    ),
    ("get_order_details", "Look up an order by its id (ids start with '#').", {"order_id": _S}),
    ("get_product_details", "Look up a product and its variant items.", {"product_id": _S}),
    ("get_user_details", "Look up a user's profile, payment methods and orders.", {"user_id": _S}),
    ("list_all_product_types", "List every product name with its product id.", {}),
    (
        "modify_pending_order_address",
        "Change the shipping address of a pending order.",
        {"order_id": _S, **{k: _S for k in _ADDR}},
    ),
    (
        "modify_pending_order_items",
        "Change items of a pending order to other options of the same products; "
        "the price difference is settled with the payment method.",
        {"order_id": _S, "item_ids": _IDS, "new_item_ids": _IDS, "payment_method_id": _S},
    ),
    (
        "modify_pending_order_payment",
        "Pay a pending order with a different payment method.",
        {"order_id": _S, "payment_method_id": _S},
    ),
    ("modify_user_address", "Change a user's default address.", {"user_id": _S, **{k: _S for k in _ADDR}}),
    (
        "return_delivered_order_items",
        "Request the return of items of a delivered order; the refund goes to the payment method.",
        {"order_id": _S, "item_ids": _IDS, "payment_method_id": _S},
    ),
]


def tools_info(domain: DomainName) -> list[dict[str, Any]]:
    """OpenAI-format tool schemas for a generated world, sorted by name."""
    specs = (_AIRLINE if domain == "airline" else _RETAIL) + _COMMON
    out = []
    for name, desc, props in sorted(specs):
        out.append(
            {
                "type": "function",
                "function": {
                    "name": name,
                    "description": desc,
                    "parameters": {"type": "object", "properties": props, "required": list(props)},
                },
            }
        )
    return out
