"""Run liveness: every optimizer run in progress holds a heartbeat; only an expired one is abandoned.

A run's heartbeat is the store lease ``run:<run id>`` (``Leases`` part of the store), taken *before*
the run's ``running`` row is written and renewed by a daemon thread every ``ttl_s / 4`` seconds
until the run ends. A process that dies (kill -9, OOM, power) stops renewing; ``ttl_s`` later the
lease is free. ``abandon_expired`` — called by the scheduler worker and by ``runs list``, i.e. by
anyone who looks — marks a ``running`` run ``abandoned`` only if it can take that lease itself, so a
live run (a CLI ``optimize``, a worker's round) is never marked, and a dead one never stays
``running`` for ever. Taking the lease is the atomic step: two lookers cannot both mark a run, and a
run cannot renew a heartbeat that a looker has taken.

Runs started without a heartbeat (older versions, library calls to ``run_round``) have no lease; they
are treated as dead once their row has not been written for ``grace_s`` seconds.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from diffprompt.errors import ConfigError, ConflictError, NotFoundError

log = logging.getLogger("diffprompt.heartbeat")

RUN_LEASE_PREFIX = "run:"
DEFAULT_TTL_S = 60.0
MIN_TTL_S = 1.0
_ROW_KEYS = ("run_id", "slot", "status", "created_at", "updated_at")


def lease_name(run_id: str) -> str:
    """The lease that is ``run_id``'s heartbeat."""
    return RUN_LEASE_PREFIX + run_id


def default_owner() -> str:
    """``host:pid:random`` — unique per process and call."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def check_ttl(ttl_s: float, what: str = "lease TTL") -> float:
    """``ttl_s`` as a float if it is finite and at least ``MIN_TTL_S`` seconds; ``ConfigError`` otherwise."""
    try:
        ttl = float(ttl_s)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number of seconds, not {ttl_s!r}") from None
    if not math.isfinite(ttl) or ttl < MIN_TTL_S:
        raise ConfigError(f"{what} must be a finite number of seconds >= {MIN_TTL_S:g}, not {ttl_s!r}")
    return ttl


@dataclass(eq=False)
class Heartbeat:
    """A held heartbeat: ``lost`` turns true if a renewal failed (another process took the lease)."""

    run_id: str
    owner: str
    ttl_s: float
    beats: int = 0
    lost: bool = False
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)


@contextmanager
def run_heartbeat(
    store: Any,
    run_id: str,
    *,
    owner: str | None = None,
    ttl_s: float = DEFAULT_TTL_S,
    interval_s: float | None = None,
    on_beat: Callable[[], object] | None = None,
) -> Iterator[Heartbeat]:
    """Hold ``run_id``'s heartbeat for the ``with`` block; enter it before writing the ``running`` row.

    Raises ``ConflictError`` when another live process holds this run's heartbeat. ``on_beat`` is
    called on every renewal (the scheduler renews its leader lease there). The lease is released on
    exit, also on an exception.
    """
    ttl = check_ttl(ttl_s, "run heartbeat TTL")
    every = interval_s if interval_s is not None else ttl / 4
    if not math.isfinite(every) or not 0 < every < ttl:
        raise ConfigError(f"heartbeat interval must be between 0 and the TTL ({ttl:g} s), not {every!r}")
    hb = Heartbeat(run_id=run_id, owner=owner or default_owner(), ttl_s=ttl)
    name = lease_name(run_id)
    if not store.acquire_lease(name, hb.owner, ttl):
        raise ConflictError(f"run {run_id} is in progress in another process (its heartbeat is held)")

    def beat() -> None:
        while not hb._stop.wait(every):
            try:
                if not store.acquire_lease(name, hb.owner, ttl):
                    if not hb.lost:
                        log.warning("run %s: heartbeat lost (another process took it)", run_id)
                    hb.lost = True
                hb.beats += 1
                if on_beat is not None:
                    on_beat()
            except Exception as exc:  # a DB hiccup must not kill the beat; the next one retries
                log.warning("run %s: heartbeat failed: %s: %s", run_id, type(exc).__name__, exc)

    thread = threading.Thread(target=beat, name=f"heartbeat-{run_id[:16]}", daemon=True)
    thread.start()
    try:
        yield hb
    finally:
        hb._stop.set()
        thread.join()
        try:
            store.release_lease(name, hb.owner)
        except Exception as exc:  # the lease expires on its own
            log.warning("run %s: could not release the heartbeat: %s", run_id, exc)


def _aware(value: Any) -> datetime | None:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def abandon_expired(
    store: Any,
    *,
    by: str,
    slot: str | None = None,
    grace_s: float = DEFAULT_TTL_S,
    runs: list[dict[str, Any]] | None = None,
    now: datetime | None = None,
) -> list[str]:
    """Mark ``abandoned`` every ``running`` run whose heartbeat expired; returns their ids.

    A run counts as dead only when its heartbeat lease can be taken (nobody renews it) *and* its row
    was last written more than ``grace_s`` seconds ago. ``runs`` (rows from ``list_runs``) saves a
    query when the caller has them.
    """
    grace = timedelta(seconds=check_ttl(grace_s, "abandon grace"))
    now = now or datetime.now(UTC)
    rows = runs if runs is not None else store.list_runs(slot)
    probe = f"abandon:{by}:{uuid.uuid4().hex[:6]}"
    done: list[str] = []
    for r in rows:
        if r.get("status") != "running":
            continue
        updated = _aware(r.get("updated_at")) or _aware(r.get("created_at"))
        if updated is not None and now - updated < grace:
            continue
        name = lease_name(str(r["run_id"]))
        if not store.acquire_lease(name, probe, grace.total_seconds()):
            continue  # a live process holds the heartbeat
        try:
            try:
                cur = store.get_run(r["run_id"])
            except NotFoundError:
                continue
            if cur.get("status") != "running":
                continue
            rec = {k: v for k, v in cur.items() if k not in _ROW_KEYS}
            rec.update(abandoned_by=by, abandoned_at=now.isoformat(), abandoned_reason="heartbeat expired")
            store.save_run(cur["run_id"], cur["slot"], rec, status="abandoned")
            done.append(str(cur["run_id"]))
            log.info("run %s abandoned: heartbeat expired (marked by %s)", cur["run_id"], by)
        finally:
            store.release_lease(name, probe)
    return done
