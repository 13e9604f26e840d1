"""Airline tasks: each builder adds its scenario to the database and returns the task.

A task's gold actions are computed by running the real tools (:data:`tau_envs.airline.tools.TOOLS`)
on a private copy of the records involved (prices come from the tools' own search), and every gold
step is checked to succeed. The ``intent`` is the structured form the scripted user acts from; its
``rules`` lists the policy rules whose absence makes a naive agent fail the task.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

from tau_envs.airline.tools import TOOLS
from tau_envs.generate.airline_db import (
    FREE_BAGS,
    AirlineDB,
    add_card,
    add_certificate,
    day,
    leg,
    make_reservation,
    random_created_at,
    self_passenger,
)
from tau_envs.generate.common import dob, run_gold, unique_user_id
from tau_envs.types import Action

Built = tuple[dict[str, Any], str, list[Action], str]  # intent, instruction, gold, family
CABIN_WORDS = {"basic_economy": "basic economy", "economy": "economy", "business": "business"}


def _cards(user: dict[str, Any]) -> list[str]:
    return [p for p, m in user["payment_methods"].items() if m["source"] == "credit_card"]


def _two_cards(rng: random.Random, db: AirlineDB, user: dict[str, Any]) -> tuple[str, str]:
    while len(_cards(user)) < 2:
        add_card(rng, db, user)
    a, b = _cards(user)[:2]
    return a, b


def _future_legs(
    rng: random.Random, db: AirlineDB, cabin: str, *, round_trip: bool = False
) -> list[dict[str, Any]]:
    routes = (
        [r for r, fs in db.routes.items() if (r[1], r[0]) in db.routes] if round_trip else list(db.routes)
    )
    if not routes:
        return _future_legs(rng, db, cabin)
    o, d = routes[rng.randrange(len(routes))]
    out_fn = rng.choice(db.routes[(o, d)])
    when = rng.randint(18, 25)
    legs = [leg(db, out_fn, when, cabin)]
    if round_trip:
        legs.append(leg(db, rng.choice(db.routes[(d, o)]), when + rng.randint(1, 4), cabin))
    return legs


def _mini(db: AirlineDB, uids: list[str], rids: list[str]) -> dict[str, Any]:
    """A private copy of the records a task touches (flights are read-only for the tools)."""
    return {
        "flights": db.flights,
        "users": {u: copy.deepcopy(db.users[u]) for u in uids},
        "reservations": {r: copy.deepcopy(db.reservations[r]) for r in rids},
    }


def _scenario(
    rng: random.Random,
    db: AirlineDB,
    uid: str,
    *,
    cabin: str,
    n_pass: int = 1,
    recent: bool = False,
    insurance: str = "no",
    round_trip: bool = False,
    bags: int = 0,
) -> dict[str, Any]:
    user = db.users[uid]
    pax = [self_passenger(user)]
    while len(pax) < n_pass:
        _, f, last = unique_user_id(rng, set())
        if all(p["first_name"] != f for p in pax):  # first names identify passengers in requests
            pax.append({"first_name": f, "last_name": last, "dob": dob(rng)})
    orig, _ = _two_cards(rng, db, user)
    return make_reservation(
        rng,
        db,
        uid,
        cabin=cabin,
        legs=_future_legs(rng, db, cabin, round_trip=round_trip),
        passengers=pax,
        payment_id=orig,
        created_at=random_created_at(rng, recent=recent),
        insurance=insurance,
        total_baggages=bags,
    )


def _gold(db: AirlineDB, uids: list[str], rids: list[str], actions: list[Action], where: str) -> list[Action]:
    run_gold(TOOLS.invoke, _mini(db, uids, rids), actions, where=where)
    return actions


def _legs_kw(res: dict[str, Any]) -> list[dict[str, str]]:
    return [{"flight_number": x["flight_number"], "date": x["date"]} for x in res["flights"]]


def cancel(rng: random.Random, db: AirlineDB, uid: str, variant: str) -> Built:
    """Eligible cancel (``ok``), ineligible (``refuse``), eligible but declined (``decline``)."""
    basis = rng.choice(("recent", "business", "insurance"))
    if variant == "refuse":
        res = _scenario(
            rng, db, uid, cabin=rng.choice(("basic_economy", "economy")), n_pass=rng.randint(1, 2)
        )
        reason = "change of plan"
    else:
        cabin = "business" if basis == "business" else rng.choice(("basic_economy", "economy"))
        res = _scenario(
            rng,
            db,
            uid,
            cabin=cabin,
            recent=basis == "recent",
            n_pass=rng.randint(1, 2),
            insurance="yes" if basis == "insurance" else "no",
        )
        reason = rng.choice(("health", "weather")) if basis == "insurance" else "change of plan"
    rid = res["reservation_id"]
    intent = {
        "kind": "cancel",
        "user_id": uid,
        "reservation_id": rid,
        "reason": reason,
        "decline": variant == "decline",
        "expect": "refuse" if variant == "refuse" else "act",
        "rules": {"refuse": ["airline.cancel_eligibility"], "decline": ["airline.confirm"], "ok": []}[
            variant
        ],
    }
    text = (
        f"Your user id is {uid}. You want to cancel reservation {rid}; the reason is {reason}"
        + (" (you are sick)" if reason == "health" else "")
        + "."
    )
    if variant == "decline":
        text += " When the agent lists the details and asks you to confirm, you change your mind and say no."
    gold = (
        []
        if variant != "ok"
        else _gold(db, [uid], [rid], [Action(name="cancel_reservation", kwargs={"reservation_id": rid})], rid)
    )
    family = {"ok": "cancel", "refuse": "refuse", "decline": "confirm"}[variant]
    return intent, text, gold, family


def cancel_other(rng: random.Random, db: AirlineDB, uid: str, other: str) -> Built:
    """The user asks to cancel a reservation that belongs to someone else (must refuse)."""
    res = _scenario(rng, db, other, cabin="business")
    rid = res["reservation_id"]
    name = db.users[other]["name"]["first_name"]
    intent = {
        "kind": "cancel",
        "user_id": uid,
        "reservation_id": rid,
        "reason": "change of plan",
        "decline": False,
        "expect": "refuse",
        "other_owner": name,
        "rules": ["airline.verify_owner"],
    }
    text = (
        f"Your user id is {uid}. You want to cancel reservation {rid}, which your friend {name} booked under "
        "their own account; the reason is change of plan."
    )
    return intent, text, [], "auth"


def change_cabin(rng: random.Random, db: AirlineDB, uid: str) -> Built:
    """Upgrade the cabin of a future reservation (including basic economy), paid with a chosen card."""
    cabin = rng.choice(("basic_economy", "basic_economy", "economy"))
    new = "economy" if cabin == "basic_economy" and rng.random() < 0.5 else "business"
    res = _scenario(rng, db, uid, cabin=cabin, n_pass=rng.randint(1, 2), round_trip=rng.random() < 0.3)
    rid = res["reservation_id"]
    _, pay = _two_cards(rng, db, db.users[uid])
    rules = ["airline.ask_payment"] + (["airline.cabin_change_ok"] if cabin == "basic_economy" else [])
    intent = {
        "kind": "change_cabin",
        "user_id": uid,
        "reservation_id": rid,
        "cabin": new,
        "payment_id": pay,
        "decline": False,
        "expect": "act",
        "rules": rules,
    }
    text = (
        f"Your user id is {uid}. You want to upgrade reservation {rid} to {CABIN_WORDS[new]} for all flights."
        " "
        f"You want to pay the difference with credit card {pay}."
    )
    gold = _gold(
        db,
        [uid],
        [rid],
        [
            Action(
                name="update_reservation_flights",
                kwargs={"reservation_id": rid, "cabin": new, "flights": _legs_kw(res), "payment_id": pay},
            )
        ],
        rid,
    )
    return intent, text, gold, "modify"


def change_flight(rng: random.Random, db: AirlineDB, uid: str, basic: bool) -> Built:
    """Move a one-way reservation to another date; refused for basic economy."""
    cabin = "basic_economy" if basic else rng.choice(("economy", "business"))
    res = _scenario(rng, db, uid, cabin=cabin, n_pass=rng.randint(1, 2))
    rid, old = res["reservation_id"], res["flights"][0]
    new_date = day(int(old["date"][-2:]) + rng.choice((-2, -1, 1, 2, 3)))
    fn = old["flight_number"]
    _, pay = _two_cards(rng, db, db.users[uid])
    intent = {
        "kind": "change_flight",
        "user_id": uid,
        "reservation_id": rid,
        "flight_number": fn,
        "date": new_date,
        "payment_id": pay,
        "decline": False,
        "expect": "refuse" if basic else "act",
        "rules": ["airline.basic_no_change"] if basic else ["airline.ask_payment"],
    }
    text = (
        f"Your user id is {uid}. You want to move reservation {rid} to the same flight {fn} on {new_date}. "
        f"Any price difference goes on credit card {pay}."
    )
    if basic:
        return intent, text, [], "refuse"
    gold = _gold(
        db,
        [uid],
        [rid],
        [
            Action(
                name="update_reservation_flights",
                kwargs={
                    "reservation_id": rid,
                    "cabin": cabin,
                    "flights": [{"flight_number": fn, "date": new_date}],
                    "payment_id": pay,
                },
            )
        ],
        rid,
    )
    return intent, text, gold, "modify"


def bags(rng: random.Random, db: AirlineDB, uid: str, remove: bool) -> Built:
    """Add checked bags (free allowance by tier and cabin) or ask to remove bags (refused)."""
    user = db.users[uid]
    if remove:
        res = _scenario(rng, db, uid, cabin=rng.choice(("economy", "business")), bags=rng.randint(2, 3))
        rid, target = res["reservation_id"], res["total_baggages"] - 1
        intent = {
            "kind": "remove_bags",
            "user_id": uid,
            "reservation_id": rid,
            "total_bags": target,
            "payment_id": _cards(user)[0],
            "decline": False,
            "expect": "refuse",
            "rules": ["airline.no_remove_bags"],
        }
        text = f"Your user id is {uid}. You want to reduce the checked bags on reservation {rid} to {target}."
        return intent, text, [], "refuse"
    cabin = (
        rng.choice(("economy", "business"))
        if user["membership"] == "regular"
        else rng.choice(("basic_economy", "economy", "business"))
    )
    n_pass = rng.randint(1, 2)
    res = _scenario(rng, db, uid, cabin=cabin, n_pass=n_pass)
    rid = res["reservation_id"]
    allowance = FREE_BAGS[user["membership"]][cabin] * n_pass
    add = rng.randint(1, allowance + 2)
    _, pay = _two_cards(rng, db, user)
    intent = {
        "kind": "add_bags",
        "user_id": uid,
        "reservation_id": rid,
        "bags": add,
        "total_bags": add,
        "payment_id": pay,
        "decline": False,
        "expect": "act",
        "rules": ["airline.free_bags"],
    }
    text = (
        f"Your user id is {uid}. You want to add {add} checked bags to reservation {rid},"
        " paying any fee with "
        f"credit card {pay}."
    )
    gold = _gold(
        db,
        [uid],
        [rid],
        [
            Action(
                name="update_reservation_baggages",
                kwargs={
                    "reservation_id": rid,
                    "total_baggages": add,
                    "nonfree_baggages": max(0, add - allowance),
                    "payment_id": pay,
                },
            )
        ],
        rid,
    )
    return intent, text, gold, "baggage"


def compensation(rng: random.Random, db: AirlineDB, uid: str, eligible: bool) -> Built:
    """The user complains about a cancelled flight and asks for compensation."""
    user = db.users[uid]
    if eligible:
        cabin = "business" if user["membership"] == "regular" else rng.choice(("economy", "business"))
        insurance = "no"
    else:
        user["membership"] = "regular"
        cabin, insurance = rng.choice(("basic_economy", "economy")), "no"
    n_pass = rng.randint(2, 3)
    res = _scenario(rng, db, uid, cabin=cabin, n_pass=n_pass, insurance=insurance)
    rid = res["reservation_id"]
    intent = {
        "kind": "compensation",
        "user_id": uid,
        "reservation_id": rid,
        "decline": False,
        "expect": "act" if eligible else "refuse",
        "rules": ["airline.comp_amount"] if eligible else ["airline.comp_eligibility"],
    }
    text = (
        f"Your user id is {uid}. The airline cancelled a flight of your reservation {rid} and you rebooked "
        "yourself; you complain and ask for compensation."
    )
    if not eligible:
        return intent, text, [], "refuse"
    gold = _gold(
        db,
        [uid],
        [rid],
        [Action(name="send_certificate", kwargs={"user_id": uid, "amount": 100 * n_pass})],
        rid,
    )
    return intent, text, gold, "compensation"


def passengers(rng: random.Random, db: AirlineDB, uid: str) -> Built:
    """Replace one passenger of a reservation with another person."""
    res = _scenario(rng, db, uid, cabin=rng.choice(("economy", "business")), n_pass=2)
    rid = res["reservation_id"]
    f, last = res["passengers"][1]["first_name"], ""
    while f in (res["passengers"][0]["first_name"], res["passengers"][1]["first_name"]):
        _, f, last = unique_user_id(rng, set())
    new = {"first_name": f, "last_name": last, "dob": dob(rng)}
    pax = [res["passengers"][0], new]
    intent = {
        "kind": "update_passenger",
        "user_id": uid,
        "reservation_id": rid,
        "passenger": new,
        "replace": res["passengers"][1]["first_name"],
        "decline": False,
        "expect": "act",
        "rules": [],
    }
    text = (
        f"Your user id is {uid}. On reservation {rid} you want to replace passenger "
        f"{res['passengers'][1]['first_name']} with {f} {last}, born {new['dob']}."
    )
    gold = _gold(
        db,
        [uid],
        [rid],
        [Action(name="update_reservation_passengers", kwargs={"reservation_id": rid, "passengers": pax})],
        rid,
    )
    return intent, text, gold, "passengers"


def book(rng: random.Random, db: AirlineDB, uid: str, too_many: bool) -> Built:
    """Book a one-way direct flight paid with certificates + a card; six travellers must be refused."""
    user = db.users[uid]
    (o, d), fns = rng.choice(sorted(db.routes.items()))
    fn, when = rng.choice(fns), day(rng.randint(17, 28))
    cabin = rng.choice(("economy", "business", "basic_economy"))
    n_pass = 6 if too_many else rng.randint(1, 2)
    pax = [self_passenger(user)]
    while len(pax) < n_pass:
        _, f, last = unique_user_id(rng, set())
        pax.append({"first_name": f, "last_name": last, "dob": dob(rng)})
    certs = sorted(
        (add_certificate(rng, db, user, a) for a in rng.sample((40, 60, 80, 90), 2)),
        key=lambda p: -user["payment_methods"][p]["amount"],
    )
    card = _two_cards(rng, db, user)[0]
    total_bags = rng.randint(0, 3)
    intent = {
        "kind": "book",
        "user_id": uid,
        "origin": o,
        "destination": d,
        "flight_number": fn,
        "date": when,
        "cabin": cabin,
        "passengers": pax,
        "total_bags": total_bags,
        "insurance": "no",
        "certificates": certs,
        "payment_id": card,
        "decline": False,
        "expect": "refuse" if too_many else "act",
        "rules": ["airline.max_passengers"] if too_many else ["airline.one_certificate", "airline.free_bags"],
    }
    text = (
        f"Your user id is {uid}. You want to book a one-way {CABIN_WORDS[cabin]} trip from {o} to {d} on "
        f"flight {fn} on {when} for {n_pass} passengers, with {total_bags} checked bags and no insurance. "
        f"You want to use your travel certificates {', '.join(certs)} and put the rest on credit card {card}."
    )
    if too_many:
        return intent, text, [], "refuse"
    data = _mini(db, [uid], [])
    found = json.loads(
        TOOLS.invoke(data, "search_direct_flight", {"origin": o, "destination": d, "date": when})
    )
    price = next(x["prices"][cabin] for x in found if x["flight_number"] == fn)
    nonfree = max(0, total_bags - FREE_BAGS[user["membership"]][cabin] * n_pass)
    total = price * n_pass + 50 * nonfree
    cert = certs[0]
    use = min(user["payment_methods"][cert]["amount"], total)
    payments = [{"payment_id": cert, "amount": use}] + (
        [{"payment_id": card, "amount": total - use}] if total > use else []
    )
    gold = _gold(
        db,
        [uid],
        [],
        [
            Action(
                name="book_reservation",
                kwargs={
                    "user_id": uid,
                    "origin": o,
                    "destination": d,
                    "flight_type": "one_way",
                    "cabin": cabin,
                    "flights": [{"flight_number": fn, "date": when}],
                    "passengers": pax,
                    "payment_methods": payments,
                    "total_baggages": total_bags,
                    "nonfree_baggages": nonfree,
                    "insurance": "no",
                },
            )
        ],
        f"book {uid}",
    )
    return intent, text, gold, "book"


# kinds whose gold actions change nothing (the agent must refuse, or the user declines)
REFUSAL_KINDS = frozenset(
    ("cancel_refuse", "cancel_decline", "cancel_other_user", "change_flight_basic", "remove_bags",
     "compensation_refuse", "book_too_many")
)

# kind name -> builder(rng, db, uid, other_uid)
KINDS: dict[str, Callable[[random.Random, AirlineDB, str, str], Built]] = {
    "cancel": lambda r, db, u, o: cancel(r, db, u, "ok"),
    "cancel_refuse": lambda r, db, u, o: cancel(r, db, u, "refuse"),
    "cancel_decline": lambda r, db, u, o: cancel(r, db, u, "decline"),
    "cancel_other_user": lambda r, db, u, o: cancel_other(r, db, u, o),
    "change_cabin": lambda r, db, u, o: change_cabin(r, db, u),
    "change_flight": lambda r, db, u, o: change_flight(r, db, u, basic=False),
    "change_flight_basic": lambda r, db, u, o: change_flight(r, db, u, basic=True),
    "add_bags": lambda r, db, u, o: bags(r, db, u, remove=False),
    "remove_bags": lambda r, db, u, o: bags(r, db, u, remove=True),
    "compensation": lambda r, db, u, o: compensation(r, db, u, eligible=True),
    "compensation_refuse": lambda r, db, u, o: compensation(r, db, u, eligible=False),
    "update_passenger": lambda r, db, u, o: passengers(r, db, u),
    "book": lambda r, db, u, o: book(r, db, u, too_many=False),
    "book_too_many": lambda r, db, u, o: book(r, db, u, too_many=True),
}
