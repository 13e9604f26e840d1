"""The trace recorder: gets finished traces off the agent's hot path and into the store, durably.

``Recorder.submit(trace)`` only appends to an in-process queue (it never raises and never waits on
the database). A writer thread, started on the first ``submit`` or by ``start()``, drains the queue
in batches (``batch_size`` traces or every ``flush_interval_s``) into ``store.add_traces``.

Failure behaviour:

* a failing batch is retried ``max_attempts`` times with exponential backoff;
* if the database stays down, batches are appended to a spool (JSONL files under ``spool_dir``, or
  an in-memory list when no directory is given) and the writer probes the store with growing
  backoff; when a probe succeeds the spool is replayed (``add_traces`` skips ids it already has, so
  a replay that is interrupted half-way is safe to repeat);
* a full queue overflows into the spool, never into a drop;
* a trace the store rejects as invalid (``ValidationError``), or one the spool cannot hold, is
  dropped: counted in ``stats().dropped`` and logged at ERROR, never silently.

The spool itself (JSON form, memory and file spools) lives in ``diffprompt.store.spool``.
Spool files left by a process that died are adopted and replayed by the next recorder that uses the
same ``spool_dir``. The caller owns the lifecycle: call ``close()`` at shutdown (e.g. register it
with ``atexit`` yourself); nothing is registered at import.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from diffprompt.errors import ConfigError, ValidationError
from diffprompt.store.base import TraceLog
from diffprompt.store.spool import FileSpool, MemorySpool, trace_from_json, trace_to_json
from diffprompt.types import Trace

__all__ = ["Recorder", "RecorderStats", "default_spool_dir", "trace_from_json", "trace_to_json"]

log = logging.getLogger("diffprompt.recorder")

_POISON = (ValidationError, TypeError)  # errors that retrying cannot fix: isolate and drop


def default_spool_dir(store: object, spool_dir: str | Path | None = None) -> Path | None:
    """Where a recorder made for ``store`` spools: ``spool_dir``, else one directory per database.

    The default is ``<settings spool dir>/<digest of the database location>`` (``~/.diffprompt/spool``
    unless configured), so spooled traces are replayed only into the database they were meant for;
    ``None`` (a memory spool) for the in-process ``MemoryStore``, whose data dies with the process.
    """
    if spool_dir is not None:
        return Path(spool_dir)
    from diffprompt.settings import Settings
    from diffprompt.store.memory import MemoryStore
    from diffprompt.store.sql import SQLStore

    if isinstance(store, MemoryStore):
        return None
    where = store.location if isinstance(store, SQLStore) else f"{type(store).__module__}.{type(store).__name__}"
    return Settings().resolved_spool_dir / ("db-" + hashlib.sha256(where.encode()).hexdigest()[:16])


# --- the recorder ------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True, slots=True)
class RecorderStats:
    """Counters since the recorder was created (a snapshot).

    ``written`` counts traces the store accepted as new, ``duplicates`` those it already had,
    ``spooled`` traces put in the spool, ``replayed`` traces moved from the spool to the store,
    ``dropped`` traces lost (each one logged), ``retries`` failed write attempts. ``pending`` is
    queued or in flight; ``spool_backlog`` is spooled and not yet replayed; ``last_error`` says why
    the store is down.
    """

    submitted: int = 0
    written: int = 0
    duplicates: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped: int = 0
    retries: int = 0
    pending: int = 0
    spool_backlog: int = 0
    db_up: bool = True
    last_error: str | None = None  # the store's last write error while it is down (None when up)


class Recorder:
    """Batched, retrying, spooling trace writer (see the module docstring for the contract)."""

    def __init__(
        self,
        store: TraceLog,
        *,
        batch_size: int = 256,
        flush_interval_s: float = 0.05,
        max_queue: int = 10_000,
        spool_dir: str | Path | None = None,
        max_memory_spool: int = 1_000_000,
        max_attempts: int = 3,
        backoff_s: float = 0.05,
        max_backoff_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if batch_size < 1 or max_queue < 1 or max_attempts < 1:
            raise ConfigError("recorder: batch_size, max_queue and max_attempts must be >= 1")
        if flush_interval_s <= 0 or backoff_s <= 0 or max_backoff_s < backoff_s:
            raise ConfigError(
                "recorder: flush_interval_s and backoff_s must be > 0 and max_backoff_s >= backoff_s"
            )
        self.store = store
        self.batch_size, self.flush_interval_s, self.max_queue = batch_size, flush_interval_s, max_queue
        self.max_attempts, self.backoff_s, self.max_backoff_s = max_attempts, backoff_s, max_backoff_s
        self._clock = clock
        self._spool: FileSpool | MemorySpool = (
            FileSpool(Path(spool_dir)) if spool_dir is not None else MemorySpool(max_memory_spool)
        )
        self._q: deque[Trace | Callable[[], Trace]] = deque()
        self._cond = threading.Condition()
        self._idle = False  # the writer waits for a first item
        self._thread: threading.Thread | None = None
        self._closed = False
        self._stop = False
        self._flush_req = False
        self._down = False
        self._probe_backoff = backoff_s
        self._next_probe = 0.0
        self._last_fail = 0.0
        self._last_error: str | None = None
        self._c = dict.fromkeys(
            ("submitted", "written", "duplicates", "spooled", "replayed", "dropped", "retries", "pending"), 0
        )

    @classmethod
    def for_store(cls, store: TraceLog, *, spool_dir: str | Path | None = None, **options: Any) -> Recorder:
        """A recorder spooling to ``default_spool_dir(store, spool_dir)`` (what the middleware makes)."""
        return cls(store, spool_dir=default_spool_dir(store, spool_dir), **options)

    # -- public API --------------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (idempotent; ``submit`` calls it lazily)."""
        with self._cond:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="diffprompt-recorder", daemon=True)
                self._thread.start()

    def submit(self, trace: Trace | Callable[[], Trace]) -> None:
        """Enqueue a finished trace. Never raises, never waits on the database.

        ``trace`` may also be a zero-argument function returning the trace: it is then built on the
        writer thread, off the caller's latency path (the middleware uses this for the message
        conversion). A builder that raises is logged and counted as dropped.
        """
        try:
            with self._cond:
                self._c["submitted"] += 1
                accepted = not self._closed and len(self._q) < self.max_queue
                if accepted:
                    self._q.append(trace)
                    self._c["pending"] += 1
                    if self._idle or len(self._q) >= self.batch_size:
                        self._cond.notify()
            if self._thread is None and not self._closed:
                self.start()
            if not accepted:  # overflow (or closed): the spool, not the floor
                built = self._materialize([trace])
                self._to_spool(built, reason="queue full" if not self._closed else "recorder closed")
        except Exception:  # the agent must never see a recorder error
            log.exception("recorder: submit failed for trace %s", getattr(trace, "id", "?"))
            self._count("dropped", 1)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted trace is in the store (probing a down DB immediately).

        Returns False on timeout, with the remainder still queued or spooled (not lost).
        """
        deadline = time.monotonic() + timeout
        if self._thread is None and self._spool.backlog():
            self.start()
        with self._cond:
            while True:
                done = self._c["pending"] == 0 and self._spool.backlog() == 0
                left = deadline - time.monotonic()
                if done or left <= 0 or self._thread is None:
                    return done
                self._flush_req = True
                self._cond.notify_all()
                self._cond.wait(min(left, 0.05))

    def close(self, timeout: float = 10.0) -> RecorderStats:
        """Flush, stop the writer, and return the final stats.

        Traces a file spool still holds stay on disk for the next recorder; a memory spool's
        leftovers are counted as dropped.
        """
        self.flush(timeout)
        with self._cond:
            self._closed = self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, timeout))
        if isinstance(self._spool, FileSpool):
            self._spool.close()
        elif left := self._spool.backlog():
            log.error("recorder: closing with %d traces unwritten (DB down, no spool_dir); dropped", left)
            self._count("dropped", left)
        return self.stats()

    def stats(self) -> RecorderStats:
        """A snapshot of the counters."""
        with self._cond:
            return RecorderStats(
                **self._c,
                spool_backlog=self._spool_backlog(),
                db_up=not self._down,
                last_error=self._last_error if self._down else None,
            )

    def _spool_backlog(self) -> int:
        return self._spool._count if isinstance(self._spool, FileSpool) else self._spool.backlog()

    # -- writer thread -----------------------------------------------------------------------
    def _count(self, key: str, n: int) -> None:
        with self._cond:
            self._c[key] += n

    def _take(self) -> list[Trace]:
        with self._cond:
            if not self._q and not self._stop and not self._flush_req:
                self._idle = True
                wait = None
                if self._spool.backlog():
                    wait = max(0.01, self._next_probe - self._clock()) if self._down else 0.0
                self._cond.wait(wait)
                self._idle = False
            if self._q and len(self._q) < self.batch_size and not self._stop and not self._flush_req:
                self._cond.wait(self.flush_interval_s)  # let a batch accumulate
            n = min(self.batch_size, len(self._q))
            items = [self._q.popleft() for _ in range(n)]
        built = self._materialize(items)
        if len(built) < n:
            self._count("pending", len(built) - n)
        return built

    def _materialize(self, items: Sequence[Trace | Callable[[], Trace]]) -> list[Trace]:
        out: list[Trace] = []
        for it in items:
            if isinstance(it, Trace):
                out.append(it)
                continue
            try:
                out.append(it())
            except Exception:
                log.exception("recorder: building a trace failed; dropped")
                self._count("dropped", 1)
        return out

    def _run(self) -> None:
        while True:
            try:
                batch = self._take()
                if batch:
                    self._handle(batch)
                if self._spool.backlog() and (not self._down or self._probe_due()):
                    self._replay()
                with self._cond:
                    if self._flush_req and self._c["pending"] == 0:
                        self._flush_req = False
                    self._cond.notify_all()
                    if self._stop and not self._q:
                        return
            except Exception:  # a bug here must not kill the thread silently
                log.exception("recorder: writer loop error; continuing")
                time.sleep(self.backoff_s)

    def _probe_due(self) -> bool:
        # a flush() asks for an immediate probe, but never more often than every backoff_s
        now = self._clock()
        return now >= self._next_probe or (self._flush_req and now - self._last_fail >= self.backoff_s)

    def _handle(self, batch: list[Trace]) -> None:
        if self._down and not self._probe_due():
            self._to_spool(batch, reason="database down")
        elif not self._write(batch, attempts=1 if self._down else self.max_attempts):
            self._to_spool(batch, reason="database unavailable")
        self._count("pending", -len(batch))

    def _write(self, batch: Sequence[Trace], *, attempts: int) -> bool:
        """Write a batch with retries; True when it is in the store (bad traces dropped)."""
        delay = self.backoff_s
        for attempt in range(1, attempts + 1):
            try:
                new = self.store.add_traces(batch)
            except _POISON:
                return self._write_one_by_one(batch)
            except Exception as exc:
                self._count("retries", 1)
                self._mark_down(exc)
                if attempt < attempts:
                    time.sleep(delay)
                    delay = min(delay * 2, self.max_backoff_s)
                continue
            self._mark_up()
            self._count("written", new)
            self._count("duplicates", len(batch) - new)
            return True
        return False

    def _write_one_by_one(self, batch: Sequence[Trace]) -> bool:
        for i, tr in enumerate(batch):
            try:
                new = self.store.add_traces([tr])
            except _POISON as exc:
                log.error("recorder: store rejected trace %s (%s); dropped", tr.id, exc)
                self._count("dropped", 1)
                continue
            except Exception as exc:
                self._count("retries", 1)
                self._mark_down(exc)
                self._to_spool(list(batch[i:]), reason="database unavailable")
                return True  # the rest is spooled; the caller must not spool it again
            self._count("written", new)
            self._count("duplicates", 1 - new)
        return True

    def _mark_down(self, exc: BaseException) -> None:
        if not self._down:
            log.warning("recorder: store write failed (%s: %s); retry, then spool", type(exc).__name__, exc)
        else:
            self._probe_backoff = min(self._probe_backoff * 2, self.max_backoff_s)
        self._down = True
        self._last_error = f"{type(exc).__name__}: {exc}"
        self._last_fail = self._clock()
        self._next_probe = self._last_fail + self._probe_backoff

    def _mark_up(self) -> None:
        if self._down:
            log.warning("recorder: store reachable again; replaying the spool")
        self._down = False
        self._probe_backoff = self.backoff_s

    def _to_spool(self, traces: Sequence[Trace], *, reason: str) -> None:
        try:
            ok, bad = self._spool.append(traces)
        except Exception:
            log.exception("recorder: spool write failed (%s); dropping %d traces", reason, len(traces))
            ok, bad = 0, len(traces)
        self._count("spooled", ok)
        if bad:
            log.error("recorder: %d traces dropped (%s; spool full or unwritable)", bad, reason)
            self._count("dropped", bad)

    def _replay(self) -> None:
        for claim, bad in self._spool.claims():
            if bad:
                self._count("dropped", bad)
            try:
                for i in range(0, len(claim.traces), self.batch_size):
                    chunk = claim.traces[i : i + self.batch_size]
                    try:
                        new = self.store.add_traces(chunk)
                    except _POISON:
                        self._write_one_by_one(chunk)
                        continue
                    self._count("written", new)
                    self._count("duplicates", len(chunk) - new)
            except Exception as exc:
                self._count("retries", 1)
                self._mark_down(exc)
                claim.release()
                return
            self._mark_up()
            claim.done()
            self._count("replayed", len(claim.traces))
