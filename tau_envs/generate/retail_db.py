"""Seeded retail databases in the official schema: products (with variant items), users, orders.

Everything is drawn from one ``random.Random`` in a fixed order, so the same seed gives the same
database. The product catalogue has a fixed size (our own product types and options); users and
orders grow linearly with ``n_users`` (about 2 orders per user), with no per-record search.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field
from typing import Any

from tau_envs.generate.common import make_address, unique_number, unique_user_id

# (product name, ((option, values), ...), base price in dollars) — our own catalogue
CATALOGUE: tuple[tuple[str, tuple[tuple[str, tuple[str, ...]], ...], int], ...] = (
    ("T-Shirt", (("color", ("black", "white", "blue", "red")), ("size", ("S", "M", "L", "XL"))), 30),
    ("Running Shoes", (("size", ("8", "9", "10", "11")), ("color", ("black", "grey", "white"))), 110),
    ("Desk Lamp", (("color", ("black", "white", "silver")), ("bulb", ("LED", "halogen"))), 60),
    ("Water Bottle", (("capacity", ("500ml", "750ml", "1000ml")), ("material", ("steel", "glass"))), 25),
    ("Backpack", (("color", ("black", "green", "navy")), ("size", ("small", "medium", "large"))), 80),
    ("Headphones", (("type", ("over-ear", "on-ear", "in-ear")), ("color", ("black", "white"))), 150),
    ("Coffee Maker", (("capacity", ("4 cups", "8 cups", "12 cups")), ("color", ("black", "red"))), 120),
    ("Yoga Mat", (("thickness", ("4mm", "6mm", "8mm")), ("color", ("purple", "blue", "green"))), 35),
    ("Wall Clock", (("diameter", ("10 inch", "12 inch", "14 inch")), ("style", ("modern", "classic"))), 45),
    ("Sunglasses", (("frame", ("metal", "plastic")), ("lens", ("polarized", "standard", "mirrored"))), 90),
    ("Bluetooth Speaker", (("color", ("black", "blue", "red")), ("battery", ("10h", "20h"))), 70),
    ("Jigsaw Puzzle", (("pieces", ("500", "1000", "1500")), ("theme", ("animals", "art", "landscape"))), 20),
    ("Notebook", (("pages", ("100", "200")), ("cover", ("hard", "soft")), ("ruling", ("lined", "dotted"))), 12),
    ("Electric Kettle", (("capacity", ("1L", "1.5L", "2L")), ("material", ("plastic", "steel", "glass"))), 55),
    ("Office Chair", (("material", ("mesh", "leather", "fabric")), ("color", ("black", "grey"))), 240),
    ("Smart Watch", (("color", ("black", "silver", "gold")), ("band", ("silicone", "leather", "metal"))), 280),
    ("Hiking Boots", (("size", ("8", "9", "10", "11")), ("waterproof", ("yes", "no"))), 160),
    ("Tablet", (("storage", ("64GB", "128GB", "256GB")), ("color", ("black", "silver"))), 420),
    ("Garden Hose", (("length", ("25ft", "50ft", "100ft")), ("material", ("rubber", "vinyl"))), 40),
    ("Board Game", (("players", ("2-4", "2-6")), ("edition", ("standard", "deluxe"))), 50),
)
STATUSES = ("pending", "pending", "pending", "delivered", "delivered", "delivered", "processed", "cancelled")
CARD_BRANDS = ("visa", "mastercard", "amex")


@dataclass
class RetailDB:
    """The database being built plus indexes the task builder uses."""

    products: dict[str, Any] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    orders: dict[str, Any] = field(default_factory=dict)
    taken_numbers: set[int] = field(default_factory=set)  # 10-digit product / item ids
    taken_payments: set[int] = field(default_factory=set)
    taken_orders: set[int] = field(default_factory=set)
    taken_users: set[str] = field(default_factory=set)
    taken_emails: set[str] = field(default_factory=set)
    name_zip: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def as_data(self) -> dict[str, Any]:
        """``{"orders", "products", "users"}`` as the tools expect."""
        return {"orders": self.orders, "products": self.products, "users": self.users}


def _ten_digits(rng: random.Random, db: RetailDB) -> str:
    return str(unique_number(rng, db.taken_numbers, 1_000_000_000, 9_999_999_999))


def build_products(rng: random.Random, db: RetailDB) -> None:
    """Every catalogue product with 4-9 variant items (most available) and prices around its base."""
    for name, options, base in CATALOGUE:
        pid = _ten_digits(rng, db)
        combos = list(itertools.product(*(values for _, values in options)))
        chosen = rng.sample(combos, min(len(combos), rng.randint(4, 9)))
        variants: dict[str, Any] = {}
        for k, combo in enumerate(chosen):
            iid = _ten_digits(rng, db)
            variants[iid] = {
                "item_id": iid,
                "options": {opt: val for (opt, _), val in zip(options, combo, strict=True)},
                "available": k < 3 or rng.random() < 0.8,  # at least three available variants
                "price": round(base * rng.uniform(0.85, 1.2), 2),
            }
        db.products[pid] = {"name": name, "product_id": pid, "variants": variants}


def _payment_id(rng: random.Random, db: RetailDB, kind: str) -> str:
    return f"{kind}_{unique_number(rng, db.taken_payments)}"


def add_card(rng: random.Random, db: RetailDB, user: dict[str, Any]) -> str:
    """Add a credit card to ``user``; return its id."""
    pid = _payment_id(rng, db, "credit_card")
    user["payment_methods"][pid] = {
        "source": "credit_card",
        "brand": CARD_BRANDS[rng.randrange(len(CARD_BRANDS))],
        "last_four": f"{rng.randint(0, 9999):04d}",
        "id": pid,
    }
    return pid


def add_paypal(rng: random.Random, db: RetailDB, user: dict[str, Any]) -> str:
    """Add a PayPal account to ``user``; return its id."""
    pid = _payment_id(rng, db, "paypal")
    user["payment_methods"][pid] = {"source": "paypal", "id": pid}
    return pid


def add_gift_card(rng: random.Random, db: RetailDB, user: dict[str, Any], balance: int) -> str:
    """Add a gift card with ``balance`` (whole dollars, as in the official data); return its id."""
    pid = _payment_id(rng, db, "gift_card")
    user["payment_methods"][pid] = {"source": "gift_card", "balance": balance, "id": pid}
    return pid


def build_user(rng: random.Random, db: RetailDB) -> str:
    """One user with 1-3 payment methods (credit card, PayPal, gift card); return the user id."""
    uid, first, last = unique_user_id(rng, db.taken_users)
    while True:
        email = f"{first.lower()}.{last.lower()}{rng.randint(1000, 9999)}@example.com"
        if email not in db.taken_emails:
            db.taken_emails.add(email)
            break
    address = make_address(rng)
    user: dict[str, Any] = {
        "name": {"first_name": first, "last_name": last},
        "address": address,
        "email": email,
        "payment_methods": {},
        "orders": [],
    }
    adders = [lambda: add_card(rng, db, user), lambda: add_paypal(rng, db, user)]
    adders[rng.randrange(2)]()
    if rng.random() < 0.5:
        adders[rng.randrange(2)]()
    if rng.random() < 0.5:
        add_gift_card(rng, db, user, rng.randint(10, 300))
    db.users[uid] = user
    key = (first.lower(), last.lower(), address["zip"])
    db.name_zip[key] = db.name_zip.get(key, 0) + 1
    return uid


def new_order_id(rng: random.Random, db: RetailDB) -> str:
    """A fresh ``#W`` + 7 digits order id."""
    return f"#W{unique_number(rng, db.taken_orders)}"


def order_item(product: dict[str, Any], item_id: str) -> dict[str, Any]:
    """An order line for a variant, in the official key order."""
    v = product["variants"][item_id]
    return {
        "name": product["name"],
        "product_id": product["product_id"],
        "item_id": item_id,
        "price": v["price"],
        "options": dict(v["options"]),
    }


def random_items(rng: random.Random, db: RetailDB, n: int, *, available: bool = False) -> list[dict[str, Any]]:
    """``n`` lines of distinct products (variants available when ``available``)."""
    pids = rng.sample(list(db.products), n)
    items = []
    for pid in pids:
        product = db.products[pid]
        ids = [i for i, v in product["variants"].items() if v["available"] or not available]
        items.append(order_item(product, ids[rng.randrange(len(ids))]))
    return items


def make_order(
    rng: random.Random,
    db: RetailDB,
    uid: str,
    *,
    status: str,
    items: list[dict[str, Any]],
    payment_id: str,
) -> dict[str, Any]:
    """Insert an order for ``uid`` (shipped to the user's address) and return it."""
    oid = new_order_id(rng, db)
    total = round(sum(it["price"] for it in items), 2)
    history = [{"transaction_type": "payment", "amount": total, "payment_method_id": payment_id}]
    if status == "cancelled":
        history.append({"transaction_type": "refund", "amount": total, "payment_method_id": payment_id})
    fulfillments = (
        []
        if status == "pending"
        else [
            {
                "tracking_id": [str(rng.randint(100_000_000_000, 999_999_999_999))],
                "item_ids": [it["item_id"] for it in items],
            }
        ]
    )
    order = {
        "order_id": oid,
        "user_id": uid,
        "address": dict(db.users[uid]["address"]),
        "items": items,
        "fulfillments": fulfillments,
        "status": status,
        "payment_history": history,
    }
    db.orders[oid] = order
    db.users[uid]["orders"].append(oid)
    return order


def background_orders(rng: random.Random, db: RetailDB, uid: str, count: int) -> None:
    """``count`` ordinary orders for a user, in any status, paid with one of their methods."""
    methods = list(db.users[uid]["payment_methods"])
    for _ in range(count):
        make_order(
            rng,
            db,
            uid,
            status=STATUSES[rng.randrange(len(STATUSES))],
            items=random_items(rng, db, rng.randint(1, 4)),
            payment_id=methods[rng.randrange(len(methods))],
        )


def build_retail_db(rng: random.Random, n_users: int) -> RetailDB:
    """Products, then users, then 0-4 background orders per user."""
    db = RetailDB()
    build_products(rng, db)
    for _ in range(n_users):
        build_user(rng, db)
    for uid in list(db.users):
        background_orders(rng, db, uid, rng.randint(0, 4))
    return db
