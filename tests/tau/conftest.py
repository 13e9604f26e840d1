"""Fixtures for the τ-environment core tests: loaded official domains and a tiny hand-made world."""

from __future__ import annotations

from pathlib import Path

import pytest
from tau_core_world import TINY_TASKS, tiny_airline_db, write_world

from tau_envs.domain import Domain, load_domain

PROVINCE_USERS = "users_pre_404f33e_province.json"


@pytest.fixture(scope="session")
def airline(tau_data: Path) -> Domain:
    return load_domain("airline", tau_data, split="test")


@pytest.fixture(scope="session")
def airline_province(tau_data: Path) -> Domain:
    return load_domain("airline", tau_data, split="test", users_file=PROVINCE_USERS)


@pytest.fixture(scope="session")
def retail_dev(tau_data: Path) -> Domain:
    return load_domain("retail", tau_data, split="dev")


@pytest.fixture(scope="session")
def retail_train(tau_data: Path) -> Domain:
    return load_domain("retail", tau_data, split="train")


@pytest.fixture
def tiny_airline(tmp_path: Path) -> Domain:
    root = write_world(tmp_path / "airline", tiny_airline_db(), TINY_TASKS, **{"rules.json": [{"id": "r1"}]})
    return load_domain("airline", root)
