"""The vocabulary tables of the policy corpus: one ``Domain`` per business (telecom, banking, hotel, ...).

Airline and retail are deliberately absent: they are the businesses of the τ worlds the optimizer is
evaluated on, so the built-in model must learn to write rules without ever seeing theirs.
"""

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
    Domain(
        name="Utilities",
        agent="energy utility agent",
        entity="service contract",
        entities="service contracts",
        id_name="customer number",
        actions=(_A, _M, ("transfer", "transferring", "transferred"), ("suspend", "suspending", "suspended"), _R),
        conditions=(
            "the meter reading is less than 30 days old",
            "the account has no overdue balance",
            "the move-out date is at least 5 days away",
            "the account holder is present on the call",
            "a smart meter is installed",
        ),
        items=("meters", "payment plans", "service addresses", "late fee waivers"),
        tiers=("basic", "green", "business"),
        tools=("find_customer", "get_contract", "schedule_meter_read", "close_contract", "apply_credit"),
        issues=("a power outage", "an estimated bill", "a double debit", "a missed meter appointment"),
        compensation=("a bill credit", "a late fee waiver"),
    ),
    Domain(
        name="Clinic",
        agent="clinic scheduling assistant",
        entity="appointment",
        entities="appointments",
        id_name="appointment code",
        actions=(_A, ("reschedule", "rescheduling", "rescheduled"), ("book", "booking", "booked"), _U, _R),
        conditions=(
            "the appointment is more than 48 hours away",
            "the patient has a valid referral",
            "the insurance card has been verified",
            "the doctor has open slots that week",
            "the patient is over 18 or a guardian is present",
        ),
        items=("appointments per week", "companions", "prescription renewals", "telehealth visits"),
        tiers=("standard", "premium care"),
        tools=("find_patient", "list_slots", "book_appointment", "cancel_appointment", "send_reminder"),
        issues=("a long wait", "a missed appointment", "a wrong charge", "a lost referral"),
        compensation=("a waived no-show fee", "a priority slot"),
    ),
    Domain(
        name="Courier",
        agent="parcel courier agent",
        entity="shipment",
        entities="shipments",
        id_name="tracking number",
        actions=(("redirect", "redirecting", "redirected"), ("hold", "holding", "held"), _A, _U, _R),
        conditions=(
            "the parcel has not left the depot",
            "the sender has approved the change",
            "the new address is in the same country",
            "the signature requirement is met",
            "the parcel is insured",
        ),
        items=("parcels", "delivery attempts", "redirections", "pickup points"),
        tiers=("standard", "express", "business"),
        tools=("track_parcel", "get_shipment", "redirect_parcel", "schedule_pickup", "open_claim"),
        issues=("a lost parcel", "a damaged parcel", "a missed delivery", "a customs delay"),
        compensation=("a shipping credit", "a free redelivery"),
    ),
    Domain(
        name="Gym",
        agent="fitness club assistant",
        entity="membership",
        entities="memberships",
        id_name="member id",
        actions=(_A, ("freeze", "freezing", "frozen"), ("upgrade", "upgrading", "upgraded"), _M, _R),
        conditions=(
            "the minimum term of 3 months has passed",
            "a medical certificate is provided",
            "the member has no unpaid fees",
            "the request is made 30 days in advance",
            "the member is the contract holder",
        ),
        items=("guest passes", "freeze periods", "classes per week", "locker rentals"),
        tiers=("off-peak", "full", "family"),
        tools=("find_member", "get_membership", "freeze_membership", "book_class", "charge_fee"),
        issues=("a closed facility", "a double charge", "a cancelled class", "a broken locker"),
        compensation=("a free week", "a guest pass"),
    ),
)
