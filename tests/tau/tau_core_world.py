"""A tiny hand-made airline world (our own data, not official) in the official on-disk layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _flight(number: str, origin: str, dest: str, dep: str, arr: str, dates: dict[str, Any]) -> dict[str, Any]:
    return {
        "flight_number": number,
        "origin": origin,
        "destination": dest,
        "scheduled_departure_time_est": dep,
        "scheduled_arrival_time_est": arr,
        "dates": dates,
    }


def _day(status: str = "available", seats: int = 5, prices: tuple[int, int, int] = (50, 100, 300)) -> dict[str, Any]:
    if status != "available":
        return {"status": status}
    return {
        "status": "available",
        "available_seats": {"basic_economy": seats, "economy": seats, "business": seats},
        "prices": {"basic_economy": prices[0], "economy": prices[1], "business": prices[2]},
    }


def tiny_airline_db() -> dict[str, Any]:
    """A hand-made airline world (not official data): 4 flights, 2 users, 1 reservation."""
    flights = {
        "HAT900": _flight("HAT900", "AAA", "BBB", "08:00:00", "10:00:00", {"2024-05-09": _day(), "2024-05-10": _day()}),
        "HAT901": _flight(
            "HAT901", "BBB", "CCC", "22:00:00", "01:00:00+1", {"2024-05-08": _day(), "2024-05-09": _day(seats=1)}
        ),
        "HAT902": _flight(
            "HAT902",
            "CCC",
            "DDD",
            "06:00:00",
            "08:00:00",
            {"2024-05-09": _day(prices=(11, 22, 33)), "2024-05-10": _day()},
        ),
        "HAT903": _flight("HAT903", "AAA", "BBB", "12:00:00", "14:00:00", {"2024-05-09": _day("cancelled")}),
    }
    users = {
        "ann_lee_1": {
            "name": {"first_name": "Ann", "last_name": "Lee"},
            "email": "ann@example.com",
            "dob": "1980-01-01",
            "payment_methods": {
                "credit_card_1": {"source": "credit_card", "brand": "visa", "last_four": "1111", "id": "credit_card_1"},
                "gift_card_1": {"source": "gift_card", "amount": 60, "id": "gift_card_1"},
                "certificate_1": {"source": "certificate", "amount": 100, "id": "certificate_1"},
            },
            "saved_passengers": [],
            "membership": "gold",
            "reservations": ["RES001"],
        },
        "bo_kim_2": {
            "name": {"first_name": "Bo", "last_name": "Kim"},
            "email": "bo@example.com",
            "dob": "1990-02-02",
            "payment_methods": {
                "credit_card_2": {"source": "credit_card", "brand": "visa", "last_four": "2222", "id": "credit_card_2"}
            },
            "saved_passengers": [],
            "membership": "regular",
            "reservations": [],
        },
    }
    reservations = {
        "RES001": {
            "reservation_id": "RES001",
            "user_id": "ann_lee_1",
            "origin": "AAA",
            "destination": "BBB",
            "flight_type": "one_way",
            "cabin": "economy",
            "flights": [
                {"origin": "AAA", "destination": "BBB", "flight_number": "HAT900", "date": "2024-05-09", "price": 100}
            ],
            "passengers": [{"first_name": "Ann", "last_name": "Lee", "dob": "1980-01-01"}],
            "payment_history": [{"payment_id": "credit_card_1", "amount": 100}],
            "created_at": "2024-05-01T10:00:00",
            "total_baggages": 0,
            "nonfree_baggages": 0,
            "insurance": "no",
        }
    }
    return {"flights": flights, "reservations": reservations, "users": users}


def write_world(root: Path, db: dict[str, Any], tasks: list[Any], *, split: str = "test", **extra: Any) -> Path:
    """Write a domain dir in the official layout (no few_shot or gold files)."""
    root.mkdir(parents=True, exist_ok=True)
    for name, value in db.items():
        (root / f"{name}.json").write_text(json.dumps(value))
    (root / "wiki.md").write_text("# Tiny policy\n\n- Be correct.\n")
    (root / "tools_info.json").write_text(json.dumps([]))
    (root / f"tasks_{split}.json").write_text(json.dumps(tasks))
    for name, value in extra.items():
        (root / name).write_text(json.dumps(value))
    return root


TINY_TASKS = [
    {
        "user_id": "ann_lee_1",
        "instruction": "Cancel RES001.",
        "actions": [{"name": "cancel_reservation", "kwargs": {"reservation_id": "RES001"}}],
        "outputs": [],
        "intent": {"kind": "cancel", "reservation_id": "RES001"},
        "family": "cancel",
    },
    {
        "user_id": "bo_kim_2",
        "instruction": "Ask the price of 2 + 2.",
        "actions": [{"name": "calculate", "kwargs": {"expression": "2 + 2"}}],
        "outputs": ["4.0"],
    },
]
