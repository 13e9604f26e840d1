"""The feedback API: attach a reward, rating, judge score or comment to a recorded episode.

Feedback may arrive long after the episode (a user rates a conversation the next day, an
environment scores it at the end): address it by ``trace_id`` or by ``thread_id`` (the thread's
most recent trace). Everything is validated before anything is written: unknown ids raise
``NotFoundError``, bad kinds / values raise ``ValidationError`` — each with a message saying what to
pass instead.
"""

from __future__ import annotations

import math
from typing import Literal

from diffprompt.errors import NotFoundError, StoreError, ValidationError
from diffprompt.store.base import TraceLog
from diffprompt.store.recorder import Recorder
from diffprompt.types import FEEDBACK_KINDS, Feedback, FeedbackKind, utcnow

RatingScale = Literal["thumbs", "stars5", "stars10", "unit", "percent"]

_THUMBS_UP = {"up", "+1", "1", "true", "yes", "good", "👍"}
_THUMBS_DOWN = {"down", "-1", "0", "false", "no", "bad", "👎"}


def normalize_rating(value: float | int | str | bool, scale: RatingScale = "thumbs") -> float:
    """Map a user rating onto [0, 1].

    ``thumbs``: up/down, True/False, 1/-1 (or 1/0) -> 1.0/0.0. ``stars5``: 1..5 -> 0..1 linearly;
    ``stars10``: 1..10 likewise; ``percent``: 0..100; ``unit``: already in [0, 1].
    """
    if scale == "thumbs":
        key = str(value).strip().lower()
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if key in _THUMBS_UP:
            return 1.0
        if key in _THUMBS_DOWN:
            return 0.0
        raise ValidationError(
            f"thumbs rating {value!r} is neither up nor down; pass 'up'/'down', True/False or 1/-1"
        )
    lo, hi = {"stars5": (1.0, 5.0), "stars10": (1.0, 10.0), "percent": (0.0, 100.0), "unit": (0.0, 1.0)}.get(
        scale, (math.nan, math.nan)
    )
    if math.isnan(lo):
        raise ValidationError(f"unknown rating scale {scale!r}; use thumbs, stars5, stars10, percent or unit")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"rating {value!r} is not a number on the {scale} scale") from exc
    if math.isnan(v) or not lo <= v <= hi:
        raise ValidationError(f"rating {value!r} is outside the {scale} scale [{lo:g}, {hi:g}]")
    return (v - lo) / (hi - lo)


def _check(kind: str, value: float | None, text: str, source: str) -> float | None:
    if kind not in FEEDBACK_KINDS:
        raise ValidationError(f"unknown feedback kind {kind!r}; use one of {', '.join(FEEDBACK_KINDS)}")
    if not isinstance(source, str) or not source:
        raise ValidationError("feedback source must be a non-empty string (e.g. 'api', 'user', 'env')")
    if not isinstance(text, str):
        what = "a comment needs its text" if kind == "comment" else "feedback text must be a string"
        raise ValidationError(f"{what}: pass text='...' (got {type(text).__name__})")
    if kind == "comment":
        if value is not None:
            raise ValidationError("a comment carries text, not a value; pass value=None and text=...")
        if not text.strip():
            raise ValidationError("a comment needs non-empty text")
        return None
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{kind} feedback needs a numeric value in [0, 1], got {value!r}")
    v = float(value)
    if math.isnan(v) or not 0.0 <= v <= 1.0:
        hint = " (use normalize_rating for thumbs/stars)" if kind == "rating" else ""
        raise ValidationError(f"{kind} value {value!r} is outside [0, 1]{hint}")
    return v


def record_feedback(
    store: TraceLog,
    *,
    trace_id: str | None = None,
    thread_id: str | None = None,
    kind: FeedbackKind,
    value: float | None = None,
    text: str = "",
    source: str = "api",
    slot: str | None = None,
    recorder: Recorder | None = None,
    flush_timeout: float = 5.0,
) -> Feedback:
    """Validate and store one piece of feedback; returns it with its id.

    Exactly one of ``trace_id`` / ``thread_id``. With ``thread_id`` the thread's latest trace (in
    ``slot`` if given) is the target. Pass the ``recorder`` that records the episode when feedback
    may follow the episode immediately: an id not yet in the store then waits for the recorder to
    flush (up to ``flush_timeout``) before it counts as unknown.
    """
    if (trace_id is None) == (thread_id is None):
        raise ValidationError("record_feedback needs exactly one of trace_id= or thread_id=")
    v = _check(kind, value, text, source)

    def resolve() -> str:
        if trace_id is not None:
            store.get_trace(trace_id)  # NotFoundError if unknown
            return trace_id
        assert thread_id is not None
        return store.trace_for_thread(thread_id, slot).id

    try:
        target = resolve()
    except NotFoundError:
        if recorder is None:
            raise _unknown(trace_id, thread_id) from None
        if not recorder.flush(flush_timeout):
            st = recorder.stats()
            if st.pending or st.spool_backlog:  # the trace may well be among them: say why it is not written
                why = st.last_error or f"still writing after {flush_timeout:g} s"
                raise StoreError(
                    f"feedback not recorded: the trace is not in the store yet, the recorder holds "
                    f"{st.pending + st.spool_backlog} unwritten traces ({why}); retry once the database "
                    "accepts writes"
                ) from None
            raise _unknown(trace_id, thread_id) from None
        try:
            target = resolve()
        except NotFoundError:
            raise _unknown(trace_id, thread_id) from None
    fb = Feedback(trace_id=target, kind=kind, value=v, text=text, source=source, created_at=utcnow())
    return store.add_feedback([fb])[0]


def _unknown(trace_id: str | None, thread_id: str | None) -> NotFoundError:
    if trace_id is not None:
        return NotFoundError(f"no trace with id {trace_id!r}; check the id (diffprompt traces list)")
    return NotFoundError(f"no trace recorded for thread {thread_id!r}; check the thread id and slot")
