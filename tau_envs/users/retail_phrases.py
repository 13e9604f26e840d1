"""Retail phrasing of the scripted user (first messages and answers), kept apart from the airline's."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any


def first_message(intent: Mapping[str, Any], rng: random.Random, hi: str) -> str:
    """The opening message of a retail intent."""
    return f"{hi} I need help with my order {intent.get('order_id', '')}."


def answer(intent: Mapping[str, Any], low: str) -> str:
    """Facts a retail user gives for the agent's question ('' when it asks for none of them)."""
    return ""
