"""The 14 airline tools over ``{"flights", "reservations", "users"}``, with the official semantics.

Behaviours kept on purpose because they define the official gold hashes (see the data README):
``get_reservation_details`` answers ``user not found`` for an unknown reservation; the one-stop
search reads leg-2 seats and prices from the *first* leg's date and builds the next-day date
without zero padding; ``update_reservation_flights`` reprices a cabin change but leaves ``cabin``
unchanged; seats are checked but never decremented; new reservation ids are the first free of
HATHAT/HATHAU/HATHAV; certificates are numbered ``certificate_3221322`` onwards; refunds of a
cancellation are recorded in the payment history only.
"""

from __future__ import annotations

import copy
from typing import Any

from tau_envs.common_tools import SHARED_TOOLS
from tau_envs.toolkit import JsonDict, Registry, ToolFailure

NOW = "2024-05-15T15:00:00"
NEW_RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")
CERTIFICATE_NUMBERS = (3221322, 3221323, 3221324)
INSURANCE_PER_PASSENGER = 30
BAG_FEE = 50

# The airport table the official tool answers with (IATA code -> city), in its order.
AIRPORTS: tuple[tuple[str, str], ...] = (
    ("SFO", "San Francisco"),
    ("JFK", "New York"),
    ("LAX", "Los Angeles"),
    ("ORD", "Chicago"),
    ("DFW", "Dallas"),
    ("DEN", "Denver"),
    ("SEA", "Seattle"),
    ("ATL", "Atlanta"),
    ("MIA", "Miami"),
    ("BOS", "Boston"),
    ("PHX", "Phoenix"),
    ("IAH", "Houston"),
    ("LAS", "Las Vegas"),
    ("MCO", "Orlando"),
    ("EWR", "Newark"),
    ("CLT", "Charlotte"),
    ("MSP", "Minneapolis"),
    ("DTW", "Detroit"),
    ("PHL", "Philadelphia"),
    ("LGA", "LaGuardia"),
)

reg = Registry("airline", clock=NOW)
for _shared in SHARED_TOOLS:
    reg.add(_shared)


def _user(data: JsonDict, user_id: str) -> JsonDict:
    users = data["users"]
    if user_id not in users:
        raise ToolFailure("user not found")
    return users[user_id]  # type: ignore[no-any-return]


def _reservation(data: JsonDict, reservation_id: str) -> JsonDict:
    reservations = data["reservations"]
    if reservation_id not in reservations:
        raise ToolFailure("reservation not found")
    return reservations[reservation_id]  # type: ignore[no-any-return]


def _price_leg(data: JsonDict, leg: JsonDict, cabin: str, n_passengers: int) -> int:
    """Check a requested leg is bookable, fill in price/origin/destination; return the leg price."""
    number = leg["flight_number"]
    flights = data["flights"]
    if number not in flights:
        raise ToolFailure(f"flight {number} not found")
    flight = flights[number]
    day = leg["date"]
    if day not in flight["dates"]:
        raise ToolFailure(f"flight {number} not found on date {day}")
    on_day = flight["dates"][day]
    if on_day["status"] != "available":
        raise ToolFailure(f"flight {number} not available on date {day}")
    if on_day["available_seats"][cabin] < n_passengers:
        raise ToolFailure(f"not enough seats on flight {number}")
    leg["price"] = on_day["prices"][cabin]
    leg["origin"] = flight["origin"]
    leg["destination"] = flight["destination"]
    return leg["price"]  # type: ignore[no-any-return]


def _flight_view(flight: JsonDict, day_info: JsonDict) -> JsonDict:
    view = {k: v for k, v in flight.items() if k != "dates"}
    view.update(day_info)
    return view


@reg.tool
def book_reservation(
    data: JsonDict,
    user_id: str,
    origin: str,
    destination: str,
    flight_type: str,
    cabin: str,
    flights: list[JsonDict],
    passengers: list[JsonDict],
    payment_methods: list[JsonDict],
    total_baggages: int,
    nonfree_baggages: int,
    insurance: str,
) -> Any:
    """Create a reservation after checking flights, seats and payments (all or nothing)."""
    user = _user(data, user_id)
    reservation_id = next((r for r in NEW_RESERVATION_IDS if r not in data["reservations"]), None)
    if reservation_id is None:
        raise ToolFailure("no reservation id available")
    legs = copy.deepcopy(flights)
    reservation: JsonDict = {
        "reservation_id": reservation_id,
        "user_id": user_id,
        "origin": origin,
        "destination": destination,
        "flight_type": flight_type,
        "cabin": cabin,
        "flights": legs,
        "passengers": copy.deepcopy(passengers),
        "payment_history": copy.deepcopy(payment_methods),
        "created_at": NOW,
        "total_baggages": total_baggages,
        "nonfree_baggages": nonfree_baggages,
        "insurance": insurance,
    }
    total = 0
    for leg in legs:
        total += _price_leg(data, leg, cabin, len(passengers)) * len(passengers)
    if insurance == "yes":
        total += INSURANCE_PER_PASSENGER * len(passengers)
    total += BAG_FEE * nonfree_baggages
    wallet = user["payment_methods"]
    for payment in payment_methods:
        pid, amount = payment["payment_id"], payment["amount"]
        if pid not in wallet:
            raise ToolFailure(f"payment method {pid} not found")
        if wallet[pid]["source"] in ("gift_card", "certificate") and wallet[pid]["amount"] < amount:
            raise ToolFailure(f"not enough balance in payment method {pid}")
    paid = sum(payment["amount"] for payment in payment_methods)
    if paid != total:
        raise ToolFailure(f"payment amount does not add up, total price is {total}, but paid {paid}")
    for payment in payment_methods:
        pid, amount = payment["payment_id"], payment["amount"]
        if wallet[pid]["source"] == "gift_card":
            wallet[pid]["amount"] -= amount
        elif wallet[pid]["source"] == "certificate":
            del wallet[pid]
    data["reservations"][reservation_id] = reservation
    user["reservations"].append(reservation_id)
    return reservation


@reg.tool
def cancel_reservation(data: JsonDict, reservation_id: str) -> Any:
    """Cancel a reservation: refunds are appended to its payment history, status 'cancelled'."""
    reservation = _reservation(data, reservation_id)
    history = reservation["payment_history"]
    refunds = [{"payment_id": p["payment_id"], "amount": -p["amount"]} for p in history]
    reservation["payment_history"].extend(refunds)
    reservation["status"] = "cancelled"
    return reservation


@reg.tool
def get_reservation_details(data: JsonDict, reservation_id: str) -> Any:
    """The reservation record (an unknown id answers 'user not found', as the official tool does)."""
    if reservation_id in data["reservations"]:
        return data["reservations"][reservation_id]
    raise ToolFailure("user not found")


@reg.tool
def get_user_details(data: JsonDict, user_id: str) -> Any:
    """The user's profile, payment methods and reservation ids."""
    return _user(data, user_id)


@reg.tool
def list_all_airports(data: JsonDict) -> Any:
    """Every airport code and its city."""
    return dict(AIRPORTS)


@reg.tool
def search_direct_flight(data: JsonDict, origin: str, destination: str, date: str) -> Any:
    """Direct flights origin -> destination available on ``date``."""
    results = []
    for flight in data["flights"].values():
        if flight["origin"] != origin or flight["destination"] != destination:
            continue
        on_day = flight["dates"].get(date)
        if on_day is not None and on_day["status"] == "available":
            results.append(_flight_view(flight, on_day))
    return results


def _next_day_unpadded(date: str) -> str:
    # Official quirk: the day after is built as 2024-05-<day+1> with no zero padding.
    return f"2024-05-{int(date[-2:]) + 1}"


@reg.tool
def search_onestop_flight(data: JsonDict, origin: str, destination: str, date: str) -> Any:
    """One-stop connections origin -> X -> destination, the first leg departing on ``date``."""
    results = []
    flights = data["flights"].values()
    for first in flights:
        if first["origin"] != origin:
            continue
        for second in flights:
            if second["destination"] != destination or first["destination"] != second["origin"]:
                continue
            arrival = first["scheduled_arrival_time_est"]
            date2 = _next_day_unpadded(date) if "+1" in arrival else date
            if arrival > second["scheduled_departure_time_est"]:
                continue
            if date not in first["dates"] or date2 not in second["dates"]:
                continue
            if first["dates"][date]["status"] != "available":
                continue
            if second["dates"][date2]["status"] != "available":
                continue
            leg1 = _flight_view(first, first["dates"][date])
            leg1["date"] = date
            leg2 = _flight_view(second, second["dates"][date])  # quirk: first leg's date
            leg2["date"] = date2
            results.append([leg1, leg2])
    return results


@reg.tool
def send_certificate(data: JsonDict, user_id: str, amount: float) -> Any:
    """Add a travel certificate of ``amount`` to the user's payment methods."""
    wallet = _user(data, user_id)["payment_methods"]
    for number in CERTIFICATE_NUMBERS:
        payment_id = f"certificate_{number}"
        if payment_id not in wallet:
            wallet[payment_id] = {"source": "certificate", "amount": amount, "id": payment_id}
            return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
    raise ToolFailure("too many certificates")


def _charge_method(data: JsonDict, reservation: JsonDict, payment_id: str, total: Any) -> JsonDict:
    wallet = data["users"][reservation["user_id"]]["payment_methods"]
    if payment_id not in wallet:
        raise ToolFailure("payment method not found")
    method = wallet[payment_id]
    if method["source"] == "certificate":
        raise ToolFailure("certificate cannot be used to update reservation")
    if method["source"] == "gift_card" and method["amount"] < total:
        raise ToolFailure("gift card balance is not enough")
    return method  # type: ignore[no-any-return]


@reg.tool
def update_reservation_baggages(
    data: JsonDict, reservation_id: str, total_baggages: int, nonfree_baggages: int, payment_id: str
) -> Any:
    """Set the bag counts; extra non-free bags are charged to ``payment_id``."""
    reservation = _reservation(data, reservation_id)
    total = BAG_FEE * max(0, nonfree_baggages - reservation["nonfree_baggages"])
    method = _charge_method(data, reservation, payment_id, total)
    reservation["total_baggages"] = total_baggages
    reservation["nonfree_baggages"] = nonfree_baggages
    if method["source"] == "gift_card":
        method["amount"] -= total
    if total != 0:
        reservation["payment_history"].append({"payment_id": payment_id, "amount": total})
    return reservation


@reg.tool
def update_reservation_flights(
    data: JsonDict, reservation_id: str, cabin: str, flights: list[JsonDict], payment_id: str
) -> Any:
    """Replace the flights (all legs given); the price difference is charged or refunded."""
    reservation = _reservation(data, reservation_id)
    n_passengers = len(reservation["passengers"])
    legs = copy.deepcopy(flights)
    total = 0
    for leg in legs:
        kept = [
            old
            for old in reservation["flights"]
            if old["flight_number"] == leg["flight_number"]
            and old["date"] == leg["date"]
            and cabin == reservation["cabin"]
        ]
        if kept:
            leg["price"] = kept[0]["price"]
            leg["origin"] = kept[0]["origin"]
            leg["destination"] = kept[0]["destination"]
            total += leg["price"] * n_passengers
            continue
        total += _price_leg(data, leg, cabin, n_passengers) * n_passengers
    total -= sum(old["price"] for old in reservation["flights"]) * n_passengers
    method = _charge_method(data, reservation, payment_id, total)
    if method["source"] == "gift_card":
        method["amount"] -= total
    reservation["flights"] = legs  # quirk: the cabin is repriced but never written
    if total != 0:
        reservation["payment_history"].append({"payment_id": payment_id, "amount": total})
    return reservation


@reg.tool
def update_reservation_passengers(data: JsonDict, reservation_id: str, passengers: list[JsonDict]) -> Any:
    """Replace the passenger list (same number of passengers)."""
    reservation = _reservation(data, reservation_id)
    if len(passengers) != len(reservation["passengers"]):
        raise ToolFailure("number of passengers does not match")
    reservation["passengers"] = copy.deepcopy(passengers)
    return reservation


TOOLS = reg.toolset()
