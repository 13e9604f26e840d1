"""Persistence: the ``Store`` contract, its SQL and in-memory backends, migrations, trace import.

The contract is split by concern (``Registry``, ``TraceLog``, ``RunLog``, ``Leases``; ``Store`` is
their union) and ships as an executable suite, ``diffprompt.store.testing``.

``open_store(url)`` is the one way to get a store: ``memory://`` gives the in-process fake,
``sqlite:///path`` and ``postgresql+psycopg://...`` give ``SQLStore`` (schema upgraded to head unless
``upgrade=False``). Importing this package connects to nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from diffprompt.store.base import Leases, Registry, RunLog, Store, TraceLog
from diffprompt.store.memory import MemoryStore
from diffprompt.store.routing import pick_version
from diffprompt.types import utcnow

__all__ = ["Leases", "MemoryStore", "Registry", "RunLog", "Store", "TraceLog", "open_store", "pick_version"]


def open_store(url: str, *, upgrade: bool = True, clock: Callable[[], datetime] = utcnow) -> Store:
    """Open the store at ``url`` (``memory://``, ``sqlite:///...``, ``postgresql+psycopg://...``).

    With ``upgrade`` the schema is migrated to head (a no-op when current); without it an
    out-of-date schema raises ``StoreError`` naming ``diffprompt db upgrade``.
    Connection problems raise ``StoreError`` saying what to check.
    """
    if url.strip().lower() in ("memory://", "memory:"):
        return MemoryStore(clock=clock)
    from diffprompt.store import migrate
    from diffprompt.store.engine import make_engine
    from diffprompt.store.sql import SQLStore

    engine = make_engine(url)
    try:
        if upgrade:
            if migrate.current_revision(engine) != migrate.head_revision():
                migrate.upgrade(engine)
        else:
            migrate.check_current(engine)
    except BaseException:
        engine.dispose()
        raise
    return SQLStore(engine, clock=clock)
