"""Seeded airline databases in the official schema: flights, users, reservations.

Everything is drawn from one ``random.Random`` in a fixed order, so the same seed gives the same
database. Cost is linear in ``n_users`` (about 2 reservations per user; flights grow with users up
to a cap), with no per-record search.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from tau_envs.airline.tools import AIRPORTS, CERTIFICATE_NUMBERS, NEW_RESERVATION_IDS
from tau_envs.generate.common import dob, make_address, unique_number, unique_user_id

CABINS = ("basic_economy", "economy", "business")
MEMBERSHIPS = ("regular", "silver", "gold")
FREE_BAGS = {  # membership -> cabin -> free checked bags per passenger (our policy's table)
    "regular": {"basic_economy": 0, "economy": 1, "business": 2},
    "silver": {"basic_economy": 1, "economy": 2, "business": 3},
    "gold": {"basic_economy": 2, "economy": 3, "business": 3},
}
TODAY = 15  # 2024-05-15 15:00 EST, the tools' "now"
DAYS = range(1, 31)
_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
_DIGITS = "0123456789"


def day(d: int) -> str:
    """``2024-05-<d>`` zero padded."""
    return f"2024-05-{d:02d}"


@dataclass
class AirlineDB:
    """The database being built plus indexes the task builder uses."""

    flights: dict[str, Any] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    reservations: dict[str, Any] = field(default_factory=dict)
    routes: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    taken_numbers: set[int] = field(default_factory=set)
    taken_users: set[str] = field(default_factory=set)

    def as_data(self) -> dict[str, Any]:
        """``{"flights", "reservations", "users"}`` as the tools expect."""
        return {"flights": self.flights, "reservations": self.reservations, "users": self.users}


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}:00"


def _flight_dates(rng: random.Random, dep: int, arr: int, base: dict[str, int]) -> dict[str, Any]:
    dates: dict[str, Any] = {}
    for d in DAYS:
        key = day(d)
        if d < TODAY or (d == TODAY and arr < 15 * 60):
            if rng.random() < 0.05:
                dates[key] = {"status": "cancelled"}
            else:
                jitter = rng.randint(-20, 40)
                dates[key] = {
                    "status": "landed",
                    "actual_departure_time_est": f"{key}T{_hhmm(max(0, dep + jitter))}",
                    "actual_arrival_time_est": f"{key}T{_hhmm(min(23 * 60 + 59, arr + jitter))}",
                }
        elif d == TODAY:
            if dep < 15 * 60:
                dates[key] = {"status": "flying", "actual_departure_time_est": f"{key}T{_hhmm(dep)}"}
            else:
                dates[key] = {"status": "on time" if rng.random() < 0.8 else "delayed"}
        else:
            dates[key] = {
                "status": "available",
                "available_seats": {c: rng.randint(6, 20) for c in CABINS},
                "prices": {c: int(base[c] * rng.uniform(0.8, 1.25)) for c in CABINS},
            }
    return dates


def build_flights(rng: random.Random, db: AirlineDB, n_flights: int) -> None:
    """Flights ``HAT001..`` on random routes, scheduled every day of May 2024."""
    codes = [c for c, _ in AIRPORTS]
    for i in range(n_flights):
        o, d = rng.sample(codes, 2)
        dep = rng.randrange(5 * 60, 20 * 60, 5)
        arr = dep + rng.randrange(60, 240, 5)
        base = {
            "basic_economy": rng.randint(50, 100),
            "economy": rng.randint(100, 200),
            "business": rng.randint(250, 500),
        }
        number = f"HAT{i + 1:03d}"
        db.flights[number] = {
            "flight_number": number,
            "origin": o,
            "destination": d,
            "scheduled_departure_time_est": _hhmm(dep),
            "scheduled_arrival_time_est": _hhmm(arr),
            "dates": _flight_dates(rng, dep, arr, base),
        }
        db.routes.setdefault((o, d), []).append(number)


def _payment_id(rng: random.Random, db: AirlineDB, kind: str) -> str:
    reserved = set(CERTIFICATE_NUMBERS)
    while True:
        n = unique_number(rng, db.taken_numbers)
        if n not in reserved:
            return f"{kind}_{n}"


def add_card(rng: random.Random, db: AirlineDB, user: dict[str, Any]) -> str:
    """Add a credit card to ``user``; return its id."""
    pid = _payment_id(rng, db, "credit_card")
    user["payment_methods"][pid] = {
        "source": "credit_card",
        "brand": rng.choice(("visa", "mastercard")),
        "last_four": f"{rng.randint(0, 9999):04d}",
        "id": pid,
    }
    return pid


def add_gift_card(rng: random.Random, db: AirlineDB, user: dict[str, Any], amount: int) -> str:
    """Add a gift card with ``amount``; return its id."""
    pid = _payment_id(rng, db, "gift_card")
    user["payment_methods"][pid] = {"source": "gift_card", "amount": amount, "id": pid}
    return pid


def add_certificate(rng: random.Random, db: AirlineDB, user: dict[str, Any], amount: int) -> str:
    """Add a travel certificate with ``amount``; return its id."""
    pid = _payment_id(rng, db, "certificate")
    user["payment_methods"][pid] = {"source": "certificate", "amount": amount, "id": pid}
    return pid


def build_user(rng: random.Random, db: AirlineDB) -> dict[str, Any]:
    """One user with 1-2 credit cards, maybe gift cards / certificates, saved passengers."""
    uid, first, last = unique_user_id(rng, db.taken_users)
    user: dict[str, Any] = {
        "name": {"first_name": first, "last_name": last},
        "address": make_address(rng),
        "email": f"{first.lower()}.{last.lower()}{rng.randint(1000, 9999)}@example.com",
        "dob": dob(rng),
        "payment_methods": {},
        "saved_passengers": [],
        "membership": MEMBERSHIPS[rng.randrange(3)],
        "reservations": [],
    }
    for _ in range(rng.randint(1, 2)):
        add_card(rng, db, user)
    if rng.random() < 0.5:
        add_gift_card(rng, db, user, rng.randint(20, 300))
    if rng.random() < 0.3:
        add_certificate(rng, db, user, rng.choice((50, 100, 150, 250)))
    for _ in range(rng.randint(0, 2)):
        _, pf, pl = unique_user_id(rng, set())
        user["saved_passengers"].append({"first_name": pf, "last_name": pl, "dob": dob(rng)})
    db.users[uid] = user
    return user


def new_reservation_id(rng: random.Random, db: AirlineDB) -> str:
    """A fresh 6-character id with at least one digit, never one of the tools' new-booking ids."""
    while True:
        chars = [rng.choice(_ALNUM) for _ in range(5)] + [rng.choice(_DIGITS)]
        rng.shuffle(chars)
        rid = "".join(chars)
        if rid not in db.reservations and rid not in NEW_RESERVATION_IDS:
            return rid


def leg(db: AirlineDB, number: str, d: int, cabin: str) -> dict[str, Any]:
    """A reservation leg priced from the flight's day (landed days get a nominal price)."""
    f = db.flights[number]
    info = f["dates"][day(d)]
    price = (
        info["prices"][cabin]
        if "prices" in info
        else {"basic_economy": 70, "economy": 150, "business": 380}[cabin]
    )
    return {
        "origin": f["origin"],
        "destination": f["destination"],
        "flight_number": number,
        "date": day(d),
        "price": price,
    }


def make_reservation(
    rng: random.Random,
    db: AirlineDB,
    uid: str,
    *,
    cabin: str,
    legs: list[dict[str, Any]],
    passengers: list[dict[str, Any]],
    payment_id: str,
    created_at: str,
    insurance: str,
    total_baggages: int = 0,
    nonfree_baggages: int = 0,
) -> dict[str, Any]:
    """Insert a reservation for ``uid`` and return it."""
    rid = new_reservation_id(rng, db)
    n = len(passengers)
    amount = sum(x["price"] for x in legs) * n + (30 * n if insurance == "yes" else 0) + 50 * nonfree_baggages
    round_trip = len(legs) == 2 and legs[0]["origin"] == legs[1]["destination"]
    res = {
        "reservation_id": rid,
        "user_id": uid,
        "origin": legs[0]["origin"],
        "destination": legs[-1]["destination"] if not round_trip else legs[0]["destination"],
        "flight_type": "round_trip" if round_trip else "one_way",
        "cabin": cabin,
        "flights": legs,
        "passengers": passengers,
        "payment_history": [{"payment_id": payment_id, "amount": amount}],
        "created_at": created_at,
        "total_baggages": total_baggages,
        "nonfree_baggages": nonfree_baggages,
        "insurance": insurance,
    }
    db.reservations[rid] = res
    db.users[uid]["reservations"].append(rid)
    return res


def random_created_at(rng: random.Random, *, recent: bool = False) -> str:
    """A booking time before now (within the last 24 h when ``recent``)."""
    if recent:
        hours_ago = rng.randint(1, 20)
        t = 15 * 60 + 14 * 24 * 60 - hours_ago * 60  # minutes since 2024-05-01 00:00
    else:
        t = rng.randint(0, 13 * 24 * 60)
    d, m = divmod(t, 24 * 60)
    return f"2024-05-{d + 1:02d}T{m // 60:02d}:{m % 60:02d}:{rng.randint(0, 59):02d}"


def self_passenger(user: dict[str, Any]) -> dict[str, Any]:
    """The user as a passenger."""
    return {
        "first_name": user["name"]["first_name"],
        "last_name": user["name"]["last_name"],
        "dob": user["dob"],
    }


def background_reservations(rng: random.Random, db: AirlineDB, uid: str, count: int) -> None:
    """``count`` ordinary reservations for a user (past or future, one way or round trip)."""
    user = db.users[uid]
    numbers = list(db.flights)
    cards = list(user["payment_methods"])
    for _ in range(count):
        number = numbers[rng.randrange(len(numbers))]
        f = db.flights[number]
        d = rng.randint(2, 27)
        cabin = CABINS[rng.randrange(3)]
        legs = [leg(db, number, d, cabin)]
        back = db.routes.get((f["destination"], f["origin"]))
        if back and rng.random() < 0.4:
            legs.append(leg(db, back[rng.randrange(len(back))], d + rng.randint(1, 3), cabin))
        pax = [self_passenger(user), *user["saved_passengers"][: rng.randint(0, 2)]]
        make_reservation(
            rng,
            db,
            uid,
            cabin=cabin,
            legs=legs,
            passengers=pax,
            payment_id=cards[rng.randrange(len(cards))],
            created_at=random_created_at(rng),
            insurance="yes" if rng.random() < 0.3 else "no",
            total_baggages=rng.randint(0, 2),
        )


def build_airline_db(rng: random.Random, n_users: int) -> AirlineDB:
    """Flights, then users each with 0-3 background reservations."""
    db = AirlineDB()
    build_flights(rng, db, max(40, min(1000, 40 + n_users // 4)))
    for _ in range(n_users):
        build_user(rng, db)
    for uid in list(db.users):
        background_reservations(rng, db, uid, rng.randint(0, 3))
    return db
