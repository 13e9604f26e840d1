"""The simulated airline agent: slot filling, lookups, rule checks, one write.

Every rule check is guarded by ``ctx.follows(rule_id)``; when the rule is not stated the agent takes
the naive branch (acts anyway, charges every bag, uses every certificate, ...) and records why with
``ctx.blame`` so that :func:`tau_envs.sim.explain_failure` can name the missing rule.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from tau_envs.generate.airline_db import FREE_BAGS
from tau_envs.sim.agent_base import Ctx, SimMove, opening
from tau_envs.sim.conversation import AIRPORT, DATE, FLIGHT, PAYMENT_ID, PERSON, RES_ID, USER_ID

WRITES = (
    "book_reservation",
    "cancel_reservation",
    "send_certificate",
    "update_reservation_baggages",
    "update_reservation_flights",
    "update_reservation_passengers",
)
NOW = datetime(2024, 5, 15, 15, 0, 0)
CABIN = re.compile(r"\b(basic economy|basic_economy|economy|business)\b", re.I)
C = "airline.confirm"


def classify(text: str) -> str:
    """The request kind from the user's words."""
    t = text.lower()
    if re.search(r"compensat|\bvoucher|make up for", t):
        return "compensation"
    if re.search(r"\b(like|want|need) to book\b|\bbook (a|an|me)\b|new (reservation|booking)", t):
        return "book"
    if "cancel" in t:
        return "cancel"
    if re.search(r"upgrade|\bcabin\b|downgrade", t):
        return "change_cabin"
    if re.search(r"\bbag", t):
        return "remove_bags" if re.search(r"reduce|remove|fewer|drop|decrease|take off", t) else "add_bags"
    if "passenger" in t and re.search(r"replace|change|update|swap", t):
        return "update_passenger"
    if re.search(r"\bmove\b|\bchange\b|reschedule|different (flight|date)", t):
        return "change_flight"
    return "unknown"


def _cabin(text: str) -> str | None:
    found = CABIN.findall(text)
    return found[-1].lower().replace(" ", "_") if found else None


def _reservation(ctx: Ctx, uid: str) -> tuple[SimMove | None, dict[str, Any] | None]:
    rid = ctx.conv.last(RES_ID)
    if rid is None:
        return ctx.say("Could you give me the reservation id?", "What is the reservation id, please?"), None
    stop, res = ctx.lookup("get_reservation_details", reservation_id=rid)
    if stop is not None:
        return stop, None
    if res.get("user_id") != uid:
        if ctx.follows("airline.verify_owner"):
            return ctx.refuse(
                "that reservation belongs to another user, and I can only act on your own reservations"
            ), None
        ctx.blame(
            "airline.verify_owner", f"acted on reservation {rid} of another user ({res.get('user_id')})"
        )
    return None, res


def _payment(ctx: Ctx, res: dict[str, Any], *, rule: str | None) -> tuple[SimMove | None, str]:
    """The payment id for a change: ask when ``rule`` is stated (or None = always ask)."""
    said = ctx.conv.last(PAYMENT_ID)
    if said:
        return None, said
    if rule is None or ctx.follows(rule):
        return ctx.say(
            "Which gift card or credit card from your profile should I use for the price difference?",
            "Which payment method in your profile would you like to use (gift card or credit card)?",
        ), ""
    original = res["payment_history"][0]["payment_id"]
    ctx.blame(rule, f"charged the original payment method {original} without asking the user")
    return None, original


def _legs(res: dict[str, Any]) -> list[dict[str, str]]:
    return [{"flight_number": f["flight_number"], "date": f["date"]} for f in res["flights"]]


def _cancel(ctx: Ctx, uid: str) -> SimMove:
    stop, res = _reservation(ctx, uid)
    if stop is not None or res is None:
        return stop  # type: ignore[return-value]
    t = ctx.conv.user_text.lower()
    reason = next((r for r in ("health", "weather", "airline cancelled", "change of plan") if r in t), None)
    if reason is None and re.search(r"sick|ill\b|medical", t):
        reason = "health"
    if reason is None:
        return ctx.say(
            "What is the reason for the cancellation (change of plan, health, weather, or airline "
            "cancelled the flight)?"
        )
    created = datetime.fromisoformat(res["created_at"])
    eligible = (
        NOW - created <= timedelta(hours=24)
        or res["cabin"] == "business"
        or reason == "airline cancelled"
        or (res["insurance"] == "yes" and reason in ("health", "weather"))
    )
    if not eligible:
        if ctx.follows("airline.cancel_eligibility"):
            return ctx.refuse(
                "this reservation is not eligible for cancellation under our policy (not booked in "
                "the last 24 hours, not business, and no insurance covering the reason)"
            )
        ctx.blame(
            "airline.cancel_eligibility", f"cancelled non-refundable reservation {res['reservation_id']}"
        )
    rid = res["reservation_id"]
    return ctx.write(
        C, f"cancel reservation {rid} (reason: {reason})", "cancel_reservation", {"reservation_id": rid}
    )


def _change_cabin(ctx: Ctx, uid: str) -> SimMove:
    stop, res = _reservation(ctx, uid)
    if stop is not None or res is None:
        return stop  # type: ignore[return-value]
    cabin = _cabin(ctx.conv.users[0] if len(ctx.conv.users) == 1 else ctx.conv.user_text)
    if cabin is None or cabin == res["cabin"]:
        return ctx.say("Which cabin would you like to change to (basic economy, economy or business)?")
    over_general = ctx.follows("airline.basic_no_change") and not ctx.follows("airline.cabin_change_ok")
    if res["cabin"] == "basic_economy" and over_general:
        ctx.blame("airline.cabin_change_ok", "refused a cabin change of a basic economy reservation")
        return ctx.refuse("basic economy reservations cannot be modified")
    stop, pay = _payment(ctx, res, rule="airline.ask_payment")
    if stop is not None:
        return stop
    rid = res["reservation_id"]
    return ctx.write(
        C,
        f"change the cabin of reservation {rid} to {cabin} on all flights, paid with {pay}",
        "update_reservation_flights",
        {"reservation_id": rid, "cabin": cabin, "flights": _legs(res), "payment_id": pay},
    )


def _change_flight(ctx: Ctx, uid: str) -> SimMove:
    stop, res = _reservation(ctx, uid)
    if stop is not None or res is None:
        return stop  # type: ignore[return-value]
    if res["cabin"] == "basic_economy":
        if ctx.follows("airline.basic_no_change"):
            return ctx.refuse("basic economy reservations cannot be changed to other flights")
        ctx.blame(
            "airline.basic_no_change",
            f"changed the flights of basic economy reservation {res['reservation_id']}",
        )
    fn, date = ctx.conv.last(FLIGHT), ctx.conv.last(DATE)
    if fn is None or date is None:
        return ctx.say("Which flight number and date would you like to move to?")
    stop, pay = _payment(ctx, res, rule="airline.ask_payment")
    if stop is not None:
        return stop
    rid = res["reservation_id"]
    legs = [{"flight_number": fn, "date": date}]
    return ctx.write(
        C,
        f"move reservation {rid} to flight {fn} on {date}, price difference on {pay}",
        "update_reservation_flights",
        {"reservation_id": rid, "cabin": res["cabin"], "flights": legs, "payment_id": pay},
    )


def _bags(ctx: Ctx, uid: str, user: dict[str, Any], remove: bool) -> SimMove:
    stop, res = _reservation(ctx, uid)
    if stop is not None or res is None:
        return stop  # type: ignore[return-value]
    t = ctx.conv.user_text
    rid = res["reservation_id"]
    if remove:
        m = re.search(r"\bto (\d+)\b", t)
        if m is None:
            return ctx.say("How many checked bags should the reservation have?")
        if ctx.follows("airline.no_remove_bags"):
            return ctx.refuse("checked bags can only be added, not removed")
        ctx.blame("airline.no_remove_bags", f"removed checked bags from reservation {rid}")
        target = int(m.group(1))
        pay = res["payment_history"][0]["payment_id"]
        return ctx.write(
            C,
            f"set the checked bags of {rid} to {target}",
            "update_reservation_baggages",
            {
                "reservation_id": rid,
                "total_baggages": target,
                "nonfree_baggages": min(res["nonfree_baggages"], target),
                "payment_id": pay,
            },
        )
    m = re.search(r"\badd (\d+)", t) or re.search(r"(\d+) (?:more |extra |additional )?(?:checked )?bag", t)
    if m is None:
        return ctx.say("How many checked bags would you like to add?")
    add = int(m.group(1))
    total = res["total_baggages"] + add
    naive = res["nonfree_baggages"] + add
    if ctx.follows("airline.free_bags"):
        allowance = FREE_BAGS[user["membership"]][res["cabin"]] * len(res["passengers"])
        nonfree = max(res["nonfree_baggages"], total - allowance, 0)
    else:
        nonfree = naive
        ctx.blame("airline.free_bags", f"charged all {add} added bags without applying the free allowance")
    stop, pay = _payment(ctx, res, rule=None)
    if stop is not None:
        return stop
    return ctx.write(
        C,
        f"set {total} checked bags on {rid} ({nonfree} paid at 50 dollars each) using {pay}",
        "update_reservation_baggages",
        {"reservation_id": rid, "total_baggages": total, "nonfree_baggages": nonfree, "payment_id": pay},
    )


def _compensation(ctx: Ctx, uid: str, user: dict[str, Any]) -> SimMove:
    stop, res = _reservation(ctx, uid)
    if stop is not None or res is None:
        return stop  # type: ignore[return-value]
    eligible = (
        user["membership"] in ("silver", "gold") or res["insurance"] == "yes" or res["cabin"] == "business"
    )
    if not eligible:
        if ctx.follows("airline.comp_eligibility"):
            return ctx.refuse(
                "compensation is only offered to silver or gold members, insured or business travellers"
            )
        ctx.blame(
            "airline.comp_eligibility", "sent a certificate to a user who is not eligible for compensation"
        )
    n = len(res["passengers"])
    amount = 100 * n
    if not ctx.follows("airline.comp_amount"):
        amount = 100
        if n > 1:
            ctx.blame("airline.comp_amount", f"sent 100 instead of 100 per passenger ({n} passengers)")
    return ctx.write(
        C,
        f"send you a travel certificate of {amount} dollars",
        "send_certificate",
        {"user_id": uid, "amount": amount},
    )


def _passenger(ctx: Ctx, uid: str) -> SimMove:
    stop, res = _reservation(ctx, uid)
    if stop is not None or res is None:
        return stop  # type: ignore[return-value]
    people = PERSON.findall(ctx.conv.user_text)
    m = re.search(r"replace (?:passenger )?([A-Z][a-z]+)", ctx.conv.user_text)
    if not people or m is None:
        return ctx.say(
            "Which passenger should be replaced, and what are the new passenger's name and date of birth?"
        )
    first, last, dob = people[-1]
    pax = [dict(p) for p in res["passengers"]]
    idx = next((i for i, p in enumerate(pax) if p["first_name"] == m.group(1)), None)
    if idx is None:
        return ctx.say(
            f"I don't see a passenger named {m.group(1)} on this reservation. Which passenger is it?"
        )
    pax[idx] = {"first_name": first, "last_name": last, "dob": dob}
    rid = res["reservation_id"]
    return ctx.write(
        C,
        f"replace {m.group(1)} with {first} {last} ({dob}) on {rid}",
        "update_reservation_passengers",
        {"reservation_id": rid, "passengers": pax},
    )


def _book(ctx: Ctx, uid: str, user: dict[str, Any]) -> SimMove:
    t = ctx.conv.user_text
    codes = [c for c in AIRPORT.findall(t) if c not in ("EST", "USA")]
    fn, date, cabin = ctx.conv.last(FLIGHT), ctx.conv.last(DATE), _cabin(t)
    if len(codes) < 2 or fn is None or date is None or cabin is None:
        return ctx.say(
            "Please tell me the origin and destination airports, the flight number, the date and the cabin."
        )
    m = re.search(r"for (\d+) (?:passengers|people|travell?ers)", t)
    count = int(m.group(1)) if m else 1
    if count > 5:
        if ctx.follows("airline.max_passengers"):
            return ctx.refuse("a reservation can have at most five passengers")
        ctx.blame("airline.max_passengers", f"booked {count} passengers on one reservation")
    people = [{"first_name": f, "last_name": la, "dob": d} for f, la, d in PERSON.findall(t)]
    bags = re.search(r"(\d+) (?:checked )?bags?", t)
    insurance = re.search(r"insurance", t, re.I)
    pays = PAYMENT_ID.findall(t)
    if len(people) < count or bags is None or insurance is None or not pays:
        return ctx.say(
            "To book, I need the full name and date of birth of each passenger, the number of checked "
            "bags, whether you want travel insurance, and the payment methods."
        )
    origin, dest = codes[0], codes[1]
    stop, found = ctx.lookup("search_direct_flight", origin=origin, destination=dest, date=date)
    if stop is not None:
        return stop
    flight = next((f for f in found or [] if f.get("flight_number") == fn), None)
    if flight is None:
        return ctx.say(
            f"Flight {fn} is not available from {origin} to {dest} on {date}. Would you like another flight?"
        )
    people = people[-count:] if len(people) >= count else people
    total_bags = int(bags.group(1))
    if ctx.follows("airline.free_bags"):
        nonfree = max(0, total_bags - FREE_BAGS[user["membership"]][cabin] * len(people))
    else:
        nonfree = total_bags
        if total_bags:
            ctx.blame("airline.free_bags", "charged every checked bag at booking without the free allowance")
    ins = (
        "no"
        if re.search(r"\bno (travel )?insurance|without insurance|don'?t want insurance", t, re.I)
        else "yes"
    )
    total = flight["prices"][cabin] * len(people) + (30 * len(people) if ins == "yes" else 0) + 50 * nonfree
    wallet = user["payment_methods"]
    certs = [p for p in dict.fromkeys(pays) if p.startswith("certificate_") and p in wallet]
    others = [p for p in dict.fromkeys(pays) if not p.startswith("certificate_")]
    if len(certs) > 1:
        if ctx.follows("airline.one_certificate"):
            certs = [max(certs, key=lambda p: wallet[p]["amount"])]
        else:
            ctx.blame("airline.one_certificate", f"paid one reservation with {len(certs)} certificates")
    payments, left = [], total
    for p in certs:
        use = min(wallet[p]["amount"], left)
        if use > 0:
            payments.append({"payment_id": p, "amount": use})
            left -= use
    if left > 0 and others:
        payments.append({"payment_id": others[0], "amount": left})
    args = {
        "user_id": uid,
        "origin": origin,
        "destination": dest,
        "flight_type": "one_way",
        "cabin": cabin,
        "flights": [{"flight_number": fn, "date": date}],
        "passengers": people,
        "payment_methods": payments,
        "total_baggages": total_bags,
        "nonfree_baggages": nonfree,
        "insurance": ins,
    }
    return ctx.write(
        C,
        f"book flight {fn} on {date} from {origin} to {dest} in {cabin} for {len(people)} "
        f"passengers, total {total} dollars",
        "book_reservation",
        args,
    )


MENU = "I can help you book, change or cancel a reservation. What would you like to do?"


def decide(ctx: Ctx) -> SimMove:
    """The next move of the simulated airline agent."""
    conv = ctx.conv
    move = opening(ctx, WRITES, classify, MENU)
    if not isinstance(move, str):
        return move
    kind = move
    uid = conv.last(USER_ID)
    if uid is None:
        return ctx.say("Could you please provide your user id?", "Sure, I can help. What is your user id?")
    stop, user = ctx.lookup("get_user_details", user_id=uid)
    if stop is not None or user is None:
        return stop  # type: ignore[return-value]
    if kind == "cancel":
        return _cancel(ctx, uid)
    if kind == "change_cabin":
        return _change_cabin(ctx, uid)
    if kind == "change_flight":
        return _change_flight(ctx, uid)
    if kind in ("add_bags", "remove_bags"):
        return _bags(ctx, uid, user, remove=kind == "remove_bags")
    if kind == "compensation":
        return _compensation(ctx, uid, user)
    if kind == "update_passenger":
        return _passenger(ctx, uid)
    return _book(ctx, uid, user)
