"""The vocabulary tables of the policy corpus: one ``Domain`` per business (airline, retail, telecom, ...)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True, slots=True)
class Domain:
    """The vocabulary of one business domain."""

    name: str
    agent: str  # "airline agent"
    entity: str  # "reservation"
    entities: str  # "reservations"
    id_name: str  # "reservation id"
    actions: tuple[tuple[str, str, str], ...]  # (verb, -ing, past participle)
    conditions: tuple[str, ...]
    items: tuple[str, ...]  # countable sub-items for limits ("passengers", "checked bags")
    tiers: tuple[str, ...]
    tools: tuple[str, ...]
    issues: tuple[str, ...]
    compensation: tuple[str, ...]


_A = ("cancel", "cancelling", "cancelled")
_M = ("modify", "modifying", "modified")
_R = ("refund", "refunding", "refunded")
_U = ("update", "updating", "updated")

DOMAINS: tuple[Domain, ...] = (
    Domain(
        name="Airline",
        agent="airline agent",
        entity="reservation",
        entities="reservations",
        id_name="reservation id",
        actions=(_A, _M, ("book", "booking", "booked"), ("upgrade", "upgrading", "upgraded"), _R),
        conditions=(
            "the booking was made within the last 24 hours",
            "the flight has not departed",
            "the user has travel insurance",
            "the cabin class is not basic economy",
            "the flight was cancelled by the airline",
            "the user is a gold member",
            "all passengers fly the same flights",
            "the reservation has not been used",
        ),
        items=("passengers", "checked bags", "flight segments", "gift cards"),
        tiers=("regular", "silver", "gold"),
        tools=(
            "get_user_details",
            "get_reservation_details",
            "search_direct_flight",
            "cancel_reservation",
            "update_reservation_flights",
            "update_reservation_baggages",
            "book_reservation",
            "send_certificate",
        ),
        issues=("a delayed flight", "a cancelled flight", "lost baggage", "a missed connection"),
        compensation=("a travel certificate", "a voucher", "a partial refund"),
    ),
    Domain(
        name="Retail",
        agent="retail agent",
        entity="order",
        entities="orders",
        id_name="order id",
        actions=(_A, _M, ("return", "returning", "returned"), ("exchange", "exchanging", "exchanged"), _R),
        conditions=(
            "the order status is pending",
            "the order has been delivered",
            "the items are unused",
            "the request is made within 30 days of delivery",
            "the new item is the same product type",
            "the payment method is on file",
            "the user has confirmed the item ids",
        ),
        items=("items", "gift cards", "payment methods", "exchanges"),
        tiers=("standard", "premium"),
        tools=(
            "find_user_id_by_email",
            "find_user_id_by_name_zip",
            "get_order_details",
            "get_product_details",
            "cancel_pending_order",
            "modify_pending_order_items",
            "return_delivered_order_items",
            "exchange_delivered_order_items",
        ),
        issues=("a damaged item", "a late delivery", "a wrong item", "a missing package"),
        compensation=("store credit", "a gift card", "free shipping on the next order"),
    ),
    Domain(
        name="Telecom",
        agent="telecom support agent",
        entity="line",
        entities="lines",
        id_name="account number",
        actions=(_A, _M, ("suspend", "suspending", "suspended"), ("port", "porting", "ported"), _U),
        conditions=(
            "the account is in good standing",
            "the bill has been paid",
            "the device is unlocked",
            "the contract term has ended",
            "the user is the account holder",
            "no payment is overdue",
        ),
        items=("lines", "devices", "add-ons", "data top-ups"),
        tiers=("prepaid", "postpaid", "business"),
        tools=(
            "get_customer_by_phone",
            "get_bill_details",
            "suspend_line",
            "change_plan",
            "enable_roaming",
            "refuel_data",
        ),
        issues=("a billing error", "a network outage", "slow data", "roaming charges"),
        compensation=("a bill credit", "free data", "a waived fee"),
    ),
    Domain(
        name="Banking",
        agent="banking assistant",
        entity="account",
        entities="accounts",
        id_name="account number",
        actions=(
            ("close", "closing", "closed"),
            ("freeze", "freezing", "frozen"),
            ("transfer", "transferring", "transferred"),
            _U,
            _R,
        ),
        conditions=(
            "the user has passed identity verification",
            "the balance is zero",
            "the card was reported lost",
            "the transfer is below the daily limit",
            "the dispute is filed within 60 days",
            "two-factor authentication succeeded",
        ),
        items=("cards", "payees", "transfers per day", "authorized users"),
        tiers=("basic", "plus", "private"),
        tools=(
            "verify_identity",
            "get_account_summary",
            "freeze_card",
            "create_transfer",
            "open_dispute",
            "update_contact_details",
        ),
        issues=("an unrecognized charge", "a declined card", "a duplicate fee", "a failed transfer"),
        compensation=("a fee reversal", "a courtesy credit", "expedited card replacement"),
    ),
    Domain(
        name="Hotel",
        agent="hotel booking agent",
        entity="booking",
        entities="bookings",
        id_name="confirmation number",
        actions=(_A, _M, ("book", "booking", "booked"), ("extend", "extending", "extended"), _R),
        conditions=(
            "the cancellation is more than 48 hours before check-in",
            "the rate is refundable",
            "the room type is available",
            "the guest is a loyalty member",
            "the stay has not started",
            "the payment card is valid",
        ),
        items=("rooms", "guests per room", "nights", "extra beds"),
        tiers=("member", "silver elite", "platinum"),
        tools=("search_rooms", "get_booking", "cancel_booking", "modify_booking", "issue_refund"),
        issues=("a noisy room", "an overbooking", "a billing mistake", "a missing amenity"),
        compensation=("loyalty points", "a room upgrade", "a one-night credit"),
    ),
    Domain(
        name="Insurance",
        agent="insurance service agent",
        entity="policy",
        entities="policies",
        id_name="policy number",
        actions=(_A, ("renew", "renewing", "renewed"), _M, ("file", "filing", "filed"), _U),
        conditions=(
            "the policy is active",
            "the claim is filed within 30 days",
            "the premium has been paid",
            "the user is the policyholder",
            "the required documents are uploaded",
        ),
        items=("drivers", "vehicles", "beneficiaries", "open claims"),
        tiers=("basic", "standard", "comprehensive"),
        tools=("lookup_policy", "get_claim_status", "file_claim", "update_beneficiary", "cancel_policy"),
        issues=("a denied claim", "a premium increase", "a delayed payout"),
        compensation=("a premium discount", "an expedited review"),
    ),
    Domain(
        name="Food delivery",
        agent="delivery support agent",
        entity="order",
        entities="orders",
        id_name="order number",
        actions=(_A, _R, _M, ("reorder", "reordering", "reordered"), _U),
        conditions=(
            "the restaurant has not accepted the order",
            "the courier has not picked it up",
            "the user reports the issue within 2 hours",
            "a photo of the item is provided",
            "the order was paid by card",
        ),
        items=("items", "promo codes", "delivery addresses", "refunds per month"),
        tiers=("free", "plus"),
        tools=("get_order_status", "cancel_order", "issue_credit", "contact_courier", "refund_order"),
        issues=("a missing item", "a cold meal", "a late delivery", "a wrong address"),
        compensation=("account credit", "a promo code", "a delivery fee refund"),
    ),
    Domain(
        name="Car rental",
        agent="car rental agent",
        entity="rental",
        entities="rentals",
        id_name="rental agreement number",
        actions=(_A, _M, ("extend", "extending", "extended"), ("book", "booking", "booked"), _R),
        conditions=(
            "the pickup time is at least 24 hours away",
            "the driver is over 25",
            "the vehicle class is available",
            "the rental has not started",
            "a valid driver license is on file",
        ),
        items=("additional drivers", "child seats", "rental days", "vehicles"),
        tiers=("standard", "gold", "executive"),
        tools=("search_vehicles", "get_rental", "cancel_rental", "modify_rental", "add_driver"),
        issues=("a breakdown", "a dirty car", "an unexpected charge"),
        compensation=("a free upgrade", "a rental day credit"),
    ),
    Domain(
        name="Software subscription",
        agent="support assistant",
        entity="subscription",
        id_name="subscription id",
        entities="subscriptions",
        actions=(
            _A,
            ("upgrade", "upgrading", "upgraded"),
            ("downgrade", "downgrading", "downgraded"),
            ("pause", "pausing", "paused"),
            _R,
        ),
        conditions=(
            "the renewal date has not passed",
            "the user is the workspace owner",
            "the invoice is paid",
            "the request is within 14 days of purchase",
            "the plan allows seat changes",
        ),
        items=("seats", "workspaces", "API keys", "projects"),
        tiers=("free", "pro", "enterprise"),
        tools=("get_subscription", "change_plan", "cancel_subscription", "issue_refund", "reset_password"),
        issues=("a failed payment", "a service outage", "a double charge", "a locked account"),
        compensation=("a prorated credit", "a free month"),
    ),
    Domain(
        name="IT helpdesk",
        agent="IT helpdesk agent",
        entity="ticket",
        entities="tickets",
        id_name="ticket number",
        actions=(
            ("close", "closing", "closed"),
            ("escalate", "escalating", "escalated"),
            ("reset", "resetting", "reset"),
            _U,
            ("assign", "assigning", "assigned"),
        ),
        conditions=(
            "the employee identity is verified",
            "the manager has approved it",
            "the device is enrolled",
            "the issue is reproducible",
            "the ticket is open",
        ),
        items=("devices", "open tickets", "licenses", "admin roles"),
        tiers=("standard", "priority", "critical"),
        tools=("lookup_employee", "reset_password", "create_ticket", "escalate_ticket", "grant_access"),
        issues=("a locked account", "a broken laptop", "a VPN outage", "a phishing email"),
        compensation=("priority handling",),
    ),
)
