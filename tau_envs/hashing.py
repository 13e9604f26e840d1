"""The database hash of the reward: sha256 of ``str`` of a canonical nested tuple.

``canon(dict)`` is the tuple of ``(key, canon(value))`` pairs sorted by key, ``canon(list)`` the
tuple of canonical items, scalars are unchanged; the digest is ``sha256(str(canon(data)))``. Dict key
order does not matter; list order, extra keys and ``250`` vs ``250.0`` do.

``db_hash`` builds that same string directly and memoises the text of each record (a value two
levels down, e.g. one order) by its ``marshal`` bytes — equal bytes mean equal types and values —
so hashing a database in which an episode touched a few records costs a marshal pass, not a rebuild.
"""

from __future__ import annotations

import hashlib
import marshal
from typing import Any

_MEMO: dict[bytes, str] = {}
_MEMO_MAX_BYTES = 256 * 2**20  # cleared when exceeded: bounded memory for long-lived processes
_memo_bytes = 0


def canon(data: Any) -> Any:
    """The canonical, order-insensitive (for dicts) nested tuple of a JSON value."""
    if isinstance(data, dict):
        return tuple((k, canon(v)) for k, v in sorted(data.items()))
    if isinstance(data, list):
        return tuple(canon(x) for x in data)
    return data


def _join(parts: list[str]) -> str:
    # str() of a tuple: "()" / "(x,)" / "(x, y)"
    if len(parts) == 1:
        return f"({parts[0]},)"
    return "(" + ", ".join(parts) + ")"


def _text(data: Any, depth: int) -> str:
    """``repr(canon(data))``, memoising values at depth 1 (collections) and 2 (records)."""
    if depth in (1, 2) and isinstance(data, dict | list):
        try:
            key = marshal.dumps(data)
        except ValueError:  # a value marshal cannot write: no memo, same text
            key = b""
        hit = _MEMO.get(key) if key else None
        if hit is not None:
            return hit
        text = _plain_text(data, depth)  # a collection miss reuses its records' memo entries
        if key:
            _remember(key, text)
        return text
    return _plain_text(data, depth)


def _remember(key: bytes, text: str) -> None:
    global _memo_bytes
    size = len(key) + len(text)
    if _memo_bytes + size > _MEMO_MAX_BYTES:
        _MEMO.clear()
        _memo_bytes = 0
    _MEMO[key] = text
    _memo_bytes += size


def _plain_text(data: Any, depth: int) -> str:
    if isinstance(data, dict):
        return _join([f"({k!r}, {_text(v, depth + 1)})" for k, v in sorted(data.items())])
    if isinstance(data, list):
        return _join([_text(x, depth + 1) for x in data])
    return repr(data)


def canon_text(data: Any) -> str:
    """``str(canon(data))``, built directly."""
    if isinstance(data, dict | list):
        return _text(data, 0)
    return str(data)


def db_hash(data: Any) -> str:
    """Hex sha256 of the canonical form of ``data`` (the official τ-bench database hash)."""
    return hashlib.sha256(canon_text(data).encode("utf-8")).hexdigest()
