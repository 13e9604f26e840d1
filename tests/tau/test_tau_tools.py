"""Tool behaviour on a tiny hand-made world: official error strings, quirks, bad arguments."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tau_envs.airline.tools import TOOLS as AIRLINE
from tau_envs.domain import Domain
from tau_envs.retail.tools import TOOLS as RETAIL
from tau_envs.types import Action


def _step(domain: Domain, db: dict[str, Any], name: str, **kwargs: Any) -> str:
    return domain.tools.invoke(db, name, kwargs)


def test_tool_inventory() -> None:
    assert len(AIRLINE) == 14 and len(RETAIL) == 16
    assert {"book_reservation", "search_onestop_flight", "send_certificate"} <= set(AIRLINE.names)
    assert {"exchange_delivered_order_items", "find_user_id_by_name_zip"} <= set(RETAIL.names)


def test_official_schemas_name_exactly_our_tools(airline: Domain, retail_dev: Domain) -> None:
    for domain in (airline, retail_dev):
        names = {t["function"]["name"] for t in domain.tools_info}
        assert names == set(domain.tools.names)


def test_missing_wrong_and_unknown_arguments(tiny_airline: Domain) -> None:
    db = tiny_airline.fresh_db()
    assert _step(tiny_airline, db, "cancel_reservation") == (
        "Error: CancelReservation.invoke() missing 1 required positional argument: 'reservation_id'"
    )
    assert _step(tiny_airline, db, "get_user_details", user_id="ann_lee_1", extra=1) == (
        "Error: GetUserDetails.invoke() got an unexpected keyword argument 'extra'"
    )
    bad_flights = _step(
        tiny_airline,
        db,
        "update_reservation_flights",
        reservation_id="RES001",
        cabin="economy",
        flights="HAT900",
        payment_id="credit_card_1",
    )
    assert bad_flights.startswith("Error: ")
    assert tiny_airline.tools.invoke(db, "think", ["not", "a", "mapping"]).startswith("Error: ")  # type: ignore[arg-type]
    assert _step(tiny_airline, db, "fly_me_to_the_moon", x=1) == "Unknown action fly_me_to_the_moon"
    env = tiny_airline.make_env(tiny_airline.tasks[0])
    result = env.step(Action(name="book_reservation", kwargs={"user_id": "ann_lee_1"}))
    assert result.observation.startswith("Error: BookReservation.invoke() missing 10 required positional arguments")
    assert not result.done and len(env.actions) == 1


def test_calculate() -> None:
    calc = AIRLINE.invoke
    assert calc({}, "calculate", {"expression": "152 + 103"}) == "255.0"
    assert calc({}, "calculate", {"expression": "2 * ((350 - 122) + (499 - 127))"}) == "1200.0"
    assert calc({}, "calculate", {"expression": "10 / 3"}) == "3.33"
    assert calc({}, "calculate", {"expression": " 7 // 2 - -1"}) == "4.0"
    assert calc({}, "calculate", {"expression": "1 / 0"}) == "Error: division by zero"
    assert calc({}, "calculate", {"expression": "2 +"}) == "Error: invalid syntax (<string>, line 1)"
    assert calc({}, "calculate", {"expression": "__import__('os')"}) == "Error: invalid characters in expression"
    assert calc({}, "calculate", {"expression": "9 ** 9 ** 9"}).startswith("Error: ")


def test_airline_quirks(tiny_airline: Domain) -> None:
    db = tiny_airline.fresh_db()
    assert _step(tiny_airline, db, "get_reservation_details", reservation_id="NOPE") == "Error: user not found"
    assert _step(tiny_airline, db, "cancel_reservation", reservation_id="NOPE") == "Error: reservation not found"
    # one-stop: leg 1 lands after midnight, so leg 2 flies on day+1 (built without zero padding)
    onestop = dict(origin="BBB", destination="DDD")
    legs = json.loads(_step(tiny_airline, db, "search_onestop_flight", **onestop, date="2024-05-09"))
    assert len(legs) == 1 and legs[0][1]["date"] == "2024-05-10"
    assert legs[0][1]["prices"] == {"basic_economy": 11, "economy": 22, "business": 33}  # leg 2 read on 05-09
    # 2024-05-08 + 1 -> "2024-05-9", which no flight has, although HAT902 flies on 2024-05-09
    assert _step(tiny_airline, db, "search_onestop_flight", **onestop, date="2024-05-08") == "[]"
    # new reservation ids and certificate numbers
    booking = dict(
        user_id="bo_kim_2",
        origin="AAA",
        destination="BBB",
        flight_type="one_way",
        cabin="economy",
        flights=[{"flight_number": "HAT900", "date": "2024-05-10"}],
        passengers=[{"first_name": "Bo", "last_name": "Kim", "dob": "1990-02-02"}],
        payment_methods=[{"payment_id": "credit_card_2", "amount": 100}],
        total_baggages=0,
        nonfree_baggages=0,
        insurance="no",
    )
    ids = [json.loads(_step(tiny_airline, db, "book_reservation", **booking))["reservation_id"] for _ in range(3)]
    assert ids == ["HATHAT", "HATHAU", "HATHAV"]
    assert db["users"]["bo_kim_2"]["reservations"] == ["HATHAT", "HATHAU", "HATHAV"]
    assert db["flights"]["HAT900"]["dates"]["2024-05-10"]["available_seats"]["economy"] == 5  # no seat accounting
    assert _step(tiny_airline, db, "send_certificate", user_id="bo_kim_2", amount=50) == (
        "Certificate certificate_3221322 added to user bo_kim_2 with amount 50."
    )
    assert "certificate_3221323" in _step(tiny_airline, db, "send_certificate", user_id="bo_kim_2", amount=5.5)
    # cabin change reprices but does not write the cabin
    out = json.loads(
        _step(
            tiny_airline,
            db,
            "update_reservation_flights",
            reservation_id="RES001",
            cabin="business",
            flights=[{"flight_number": "HAT900", "date": "2024-05-09"}],
            payment_id="credit_card_1",
        )
    )
    assert out["cabin"] == "economy" and out["flights"][0]["price"] == 300
    assert out["payment_history"][-1] == {"payment_id": "credit_card_1", "amount": 200}


def test_airline_booking_errors(tiny_airline: Domain) -> None:
    db = tiny_airline.fresh_db()
    base = dict(
        user_id="ann_lee_1",
        origin="BBB",
        destination="CCC",
        flight_type="one_way",
        cabin="economy",
        flights=[{"flight_number": "HAT901", "date": "2024-05-09"}],
        passengers=[{"first_name": "Ann", "last_name": "Lee", "dob": "1980-01-01"}],
        payment_methods=[{"payment_id": "credit_card_1", "amount": 100}],
        total_baggages=1,
        nonfree_baggages=0,
        insurance="no",
    )

    def book(**over: Any) -> str:
        return _step(tiny_airline, db, "book_reservation", **{**base, **over})

    assert book(user_id="nobody") == "Error: user not found"
    assert book(flights=[{"flight_number": "HAT999", "date": "2024-05-09"}]) == "Error: flight HAT999 not found"
    assert book(flights=[{"flight_number": "HAT901", "date": "2024-05-01"}]) == (
        "Error: flight HAT901 not found on date 2024-05-01"
    )
    assert book(flights=[{"flight_number": "HAT903", "date": "2024-05-09"}]) == (
        "Error: flight HAT903 not available on date 2024-05-09"
    )
    two = [{"first_name": "A", "last_name": "B", "dob": "2000-01-01"}] * 2
    assert book(passengers=two) == "Error: not enough seats on flight HAT901"
    assert book(payment_methods=[{"payment_id": "paypal_9", "amount": 100}]) == (
        "Error: payment method paypal_9 not found"
    )
    assert book(payment_methods=[{"payment_id": "gift_card_1", "amount": 100}]) == (
        "Error: not enough balance in payment method gift_card_1"
    )
    assert book(insurance="yes") == "Error: payment amount does not add up, total price is 130, but paid 100"
    assert db == tiny_airline.fresh_db()  # failed bookings change nothing
    ok = json.loads(
        book(
            payment_methods=[{"payment_id": "certificate_1", "amount": 90}, {"payment_id": "gift_card_1", "amount": 10}]
        )
    )
    assert ok["payment_history"][0] == {"payment_id": "certificate_1", "amount": 90}
    wallet = db["users"]["ann_lee_1"]["payment_methods"]
    assert "certificate_1" not in wallet and wallet["gift_card_1"]["amount"] == 50
    assert _step(
        tiny_airline, db, "update_reservation_passengers", reservation_id="RES001", passengers=two
    ) == "Error: number of passengers does not match"
    bags = dict(reservation_id="RES001", total_baggages=2, nonfree_baggages=2)
    assert _step(tiny_airline, db, "update_reservation_baggages", **bags, payment_id="x") == (
        "Error: payment method not found"
    )
    assert _step(tiny_airline, db, "update_reservation_baggages", **bags, payment_id="gift_card_1") == (
        "Error: gift card balance is not enough"
    )


def test_retail_errors(retail_dev: Domain) -> None:
    db = retail_dev.fresh_db()
    orders = db["orders"]
    pending = next(o for o in orders.values() if o["status"] == "pending")
    delivered = next(o for o in orders.values() if o["status"] == "delivered")

    def call(name: str, **kw: Any) -> str:
        return _step(retail_dev, db, name, **kw)

    assert call("get_order_details", order_id="#W0") == "Error: order not found"
    assert call("get_product_details", product_id="0") == "Error: product not found"
    assert call("find_user_id_by_email", email="nobody@example.com") == "Error: user not found"
    assert call("cancel_pending_order", order_id=delivered["order_id"], reason="no longer needed") == (
        "Error: non-pending order cannot be cancelled"
    )
    assert call("cancel_pending_order", order_id=pending["order_id"], reason="bored") == "Error: invalid reason"
    assert call("return_delivered_order_items", order_id=pending["order_id"], item_ids=[], payment_method_id="x") == (
        "Error: non-delivered order cannot be returned"
    )
    pay = delivered["payment_history"][0]["payment_method_id"]
    assert call(
        "return_delivered_order_items", order_id=delivered["order_id"], item_ids=["0"], payment_method_id=pay
    ) == "Error: some item not found"
    assert call(
        "exchange_delivered_order_items",
        order_id=delivered["order_id"],
        item_ids=["0"],
        new_item_ids=["1"],
        payment_method_id=pay,
    ) == "Error: 0 not found"
    item = delivered["items"][0]["item_id"]
    assert call(
        "exchange_delivered_order_items",
        order_id=delivered["order_id"],
        item_ids=[item],
        new_item_ids=[],
        payment_method_id=pay,
    ) == "Error: the number of items to be exchanged should match"
    assert call("modify_pending_order_payment", order_id=pending["order_id"], payment_method_id="nope") == (
        "Error: payment method not found"
    )
    own = pending["payment_history"][0]["payment_method_id"]
    assert call("modify_pending_order_payment", order_id=pending["order_id"], payment_method_id=own) == (
        "Error: the new payment method should be different from the current one"
    )
    types = json.loads(call("list_all_product_types"))
    assert list(types) == sorted(types) and len(types) == len(db["products"])


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, width=32) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    domain_name=st.sampled_from(["airline", "retail"]),
    tool_index=st.integers(0, 15),
    kwargs=st.dictionaries(
        st.sampled_from(
            ["reservation_id", "user_id", "order_id", "item_ids", "flights", "passengers", "amount", "zip", "x"]
        ),
        JSONISH,
        max_size=5,
    ),
)
def test_any_arguments_never_raise(
    tiny_airline: Domain, retail_dev: Domain, domain_name: str, tool_index: int, kwargs: dict[str, Any]
) -> None:
    domain = tiny_airline if domain_name == "airline" else retail_dev
    names = domain.tools.names
    name = names[tool_index % len(names)]
    db = _DBS.setdefault(domain_name, domain.fresh_db())
    out = domain.tools.invoke(db, name, kwargs)
    assert isinstance(out, str)


_DBS: dict[str, dict[str, Any]] = {}


@pytest.mark.parametrize("name", ["think", "transfer_to_human_agents"])
def test_side_tools(tiny_airline: Domain, name: str) -> None:
    env = tiny_airline.make_env(tiny_airline.tasks[1])
    arg = {"think": {"thought": "hm"}, "transfer_to_human_agents": {"summary": "help"}}[name]
    result = env.step(Action(name=name, kwargs=arg))
    assert result.observation == ("" if name == "think" else "Transfer successful")
    assert result.done is (name == "transfer_to_human_agents")
