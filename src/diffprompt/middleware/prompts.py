"""The live process's view of a slot's prompts: cached, cheaply refreshed, pinned per thread.

``PromptView`` answers "which version, and which text, does this thread get?" without a database
round trip on the hot path. It re-reads ``store.slot_state(slot)`` (one small row) at most every
``refresh_s`` seconds and fetches version texts only when the revision changed, so a promotion or a
canary reaches every live process within ``refresh_s`` without a restart.

Pinning: the first call for a thread picks a version (``routing.pick_version``: the canary for a
hashed share of threads, else the active one) and the thread keeps it for its whole episode, even
if the slot is promoted meanwhile. Pins live in a bounded LRU (``max_threads``); callers that
persist the pinned version id elsewhere (the agent middleware keeps it in the graph state, so it
survives restarts with a checkpointer) pass it back through ``pin(..., known_version_id=...)``.

Failure behaviour: a store error never propagates. The view logs once per outage and keeps serving
the last known texts; with no known state at all ``pin`` returns ``Pin(None, None)``, which means
"serve the request's own system prompt".
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from diffprompt.errors import NotFoundError
from diffprompt.store._logic import check_slot_name
from diffprompt.store.base import Registry
from diffprompt.store.routing import pick_version
from diffprompt.types import SlotState

log = logging.getLogger("diffprompt.middleware")


def check_slot(store: Registry, slot: str) -> None:
    """Fail at construction for a slot that cannot be served; tolerate a store that is down.

    Raises ``ValidationError`` for an invalid slot name and ``NotFoundError`` for a slot the store
    does not have (its traces would be recorded under a slot nobody optimises). Any other store
    error is logged: a live process must start even while its database is unreachable.
    """
    check_slot_name(slot)
    try:
        store.slot_state(slot)
    except NotFoundError:
        raise NotFoundError(
            f"slot {slot!r} does not exist; create it first (store.create_slot({slot!r}, seed_text) "
            f"or `diffprompt prompts add {slot} FILE`)"
        ) from None
    except Exception as exc:
        log.warning("diffprompt: cannot check slot %r now (%s: %s); continuing", slot, type(exc).__name__, exc)


@dataclass(frozen=True, slots=True)
class Pin:
    """The version a thread is served. ``version_id is None`` means "no prompt known: fall back"."""

    version_id: str | None
    text: str | None
    canary: bool = False


class PromptView:
    """Cached active/canary texts for one slot plus the per-thread pins (thread-safe)."""

    def __init__(
        self,
        slot: str,
        store: Registry,
        *,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        max_threads: int = 100_000,
    ) -> None:
        self.slot, self.store, self.refresh_s = slot, store, refresh_s
        self._clock = clock
        self._max_threads = max_threads
        self._state: SlotState | None = None
        self._texts: dict[str, str] = {}
        self._checked_at = float("-inf")
        self._refresh_lock = threading.Lock()
        self._pins: OrderedDict[str, Pin] = OrderedDict()
        self._pins_lock = threading.Lock()
        self._failing = False

    # -- cached slot state -------------------------------------------------------------------
    @property
    def state(self) -> SlotState | None:
        """The last slot state read from the store (``None`` before the first successful read)."""
        return self._state

    def refresh_due(self) -> bool:
        """True when the next ``pin`` of a new thread would read the store."""
        return self._state is None or self._clock() - self._checked_at >= self.refresh_s

    def refresh(self, *, force: bool = False) -> SlotState | None:
        """Re-read the slot state if ``refresh_s`` has passed (or ``force``); never raises.

        Only one thread reads at a time; the others keep serving the cached state meanwhile (they
        wait only when nothing is cached yet).
        """
        if not force and not self.refresh_due():
            return self._state
        if not self._refresh_lock.acquire(blocking=self._state is None):
            return self._state
        try:
            if not force and not self.refresh_due():  # another thread refreshed while we waited
                return self._state
            self._checked_at = self._clock()
            st = self.store.slot_state(self.slot)
            if self._state is None or st.revision != self._state.revision:
                for vid in (st.active_version_id, st.canary_version_id):
                    if vid and vid not in self._texts:
                        self._texts[vid] = self.store.get_version(vid).text
                self._state = st
            if self._failing:
                log.warning("diffprompt: prompt store for slot %r reachable again", self.slot)
                self._failing = False
        except Exception as exc:
            if not self._failing:
                log.warning(
                    "diffprompt: cannot refresh slot %r (%s: %s); serving the last known prompt",
                    self.slot,
                    type(exc).__name__,
                    exc,
                )
                self._failing = True
        finally:
            self._refresh_lock.release()
        return self._state

    def text_for(self, version_id: str) -> str | None:
        """The text of a version (cached; one store read the first time); None if unavailable."""
        text = self._texts.get(version_id)
        if text is None:
            try:
                version = self.store.get_version(version_id)
            except Exception as exc:
                log.warning("diffprompt: cannot load version %s (%s)", version_id, exc)
                return None
            if version.slot != self.slot:
                log.warning(
                    "diffprompt: version %s belongs to slot %r, not %r", version_id, version.slot, self.slot
                )
                return None
            text = self._texts[version_id] = version.text
        return text

    # -- pins --------------------------------------------------------------------------------
    def pinned(self, thread_id: str) -> Pin | None:
        """The thread's pin if it has one in this process (no I/O)."""
        with self._pins_lock:
            pin = self._pins.get(thread_id)
            if pin is not None:
                self._pins.move_to_end(thread_id)
            return pin

    def pin(self, thread_id: str, *, known_version_id: str | None = None) -> Pin:
        """The version this thread is served, pinning one on its first call. Never raises."""
        pin = self.pinned(thread_id)
        if pin is not None and (known_version_id is None or pin.version_id == known_version_id):
            return pin
        if known_version_id is not None:  # pinned by an earlier process (checkpointed state)
            text = self.text_for(known_version_id)
            if text is not None:
                return self._remember(thread_id, Pin(known_version_id, text), replace=True)
        st = self.refresh()
        if st is None:
            return Pin(None, None)  # nothing known yet: do not pin, try again next run
        vid = pick_version(st, thread_id)
        text = self._texts.get(vid)
        if text is None:
            return Pin(None, None)
        return self._remember(thread_id, Pin(vid, text, canary=vid != st.active_version_id))

    def _remember(self, thread_id: str, pin: Pin, *, replace: bool = False) -> Pin:
        with self._pins_lock:
            existing = self._pins.get(thread_id)
            if existing is not None and not replace:
                return existing  # a concurrent first call of the same thread won the race
            self._pins[thread_id] = pin
            if len(self._pins) > self._max_threads:
                self._pins.popitem(last=False)
        return pin

    def forget(self, thread_id: str) -> None:
        """Drop a thread's pin (its next run starts a new episode on the current version)."""
        with self._pins_lock:
            self._pins.pop(thread_id, None)
