"""pass^k and the database hash as pure functions."""

from __future__ import annotations

import hashlib
from math import comb

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffprompt.errors import ValidationError
from tau_envs.hashing import canon, db_hash
from tau_envs.metrics import pass_hat_k, pass_hat_ks

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=30,
)


@given(st.dictionaries(st.text(max_size=4), st.dictionaries(st.text(max_size=4), JSON, max_size=4), max_size=4))
def test_db_hash_equals_reference(data: dict) -> None:  # type: ignore[type-arg]
    reference = hashlib.sha256(str(canon(data)).encode("utf-8")).hexdigest()
    assert db_hash(data) == reference
    assert db_hash(data) == reference  # second call goes through the memo


def test_db_hash_semantics() -> None:
    a = {"users": {"u": {"amount": 250, "tags": ["x", "y"]}}}
    assert db_hash(a) != db_hash({"users": {"u": {"amount": 250.0, "tags": ["x", "y"]}}})
    assert db_hash(a) != db_hash({"users": {"u": {"amount": 250, "tags": ["y", "x"]}}})
    assert db_hash(a) != db_hash({"users": {"u": {"amount": 250, "tags": ["x", "y"], "more": None}}})
    assert db_hash(a) == db_hash({"users": {"u": {"tags": ["x", "y"], "amount": 250}}})
    assert db_hash({"a": [1]}) == hashlib.sha256(b"(('a', (1,)),)").hexdigest()


def test_pass_hat_k_values() -> None:
    s = {"a": [True, True, False, False], "b": [True, True, True, True], "c": [False] * 4}
    assert pass_hat_k(s, 1) == pytest.approx((0.5 + 1 + 0) / 3)
    assert pass_hat_k(s, 2) == pytest.approx((comb(2, 2) / comb(4, 2) + 1) / 3)
    assert pass_hat_ks(s, 4) == {k: pass_hat_k(s, k) for k in range(1, 5)}
    assert list(pass_hat_ks(s, 9)) == [1, 2, 3, 4]


@given(st.lists(st.lists(st.booleans(), min_size=3, max_size=3), min_size=1, max_size=6))
def test_pass_hat_k_monotone(trials: list[list[bool]]) -> None:
    s = dict(enumerate(trials))
    values = pass_hat_ks(s, 3)
    assert 0.0 <= values[3] <= values[2] <= values[1] <= 1.0
    assert values[1] == pytest.approx(sum(map(sum, trials)) / (3 * len(trials)))


def test_pass_hat_k_errors() -> None:
    with pytest.raises(ValidationError, match="fewer than k=3"):
        pass_hat_k({"a": [True, False]}, 3)
    with pytest.raises(ValidationError):
        pass_hat_k({}, 1)
    with pytest.raises(ValidationError):
        pass_hat_k({"a": [True]}, 0)
