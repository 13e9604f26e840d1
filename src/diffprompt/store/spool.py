"""The recorder's spool: where traces wait while the database is down.

* ``trace_to_json`` / ``trace_from_json`` — the one-line JSON form of a ``Trace`` (the file format).
* ``MemorySpool`` — a bounded in-process list (no ``spool_dir``): survives DB outages, not process
  death.
* ``FileSpool`` — JSONL files ``spool-<pid>-<token>-<seq>.jsonl`` under a directory; files of dead
  processes (and of closed recorders of this process) are adopted and replayed.

Both hand out ``Claim``s for replay: ``done()`` deletes the claimed traces, ``release()`` puts them
back (the database went down again mid-replay).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from diffprompt.errors import ValidationError
from diffprompt.types import Trace, Usage

log = logging.getLogger("diffprompt.recorder")


# --- JSON form of a trace (the spool format) ---------------------------------------------------
def _json_default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return repr(obj)


def trace_to_json(trace: Trace) -> str:
    """One-line JSON for a trace (the spool format).

    ``trace_from_json(trace_to_json(t)) == t`` for every trace whose messages and metadata hold JSON
    values (non-JSON values are written as ``repr``).
    """
    doc = {
        "id": trace.id,
        "slot": trace.slot,
        "version_id": trace.version_id,
        "thread_id": trace.thread_id,
        "messages": list(trace.messages),
        "started_at": trace.started_at.isoformat(),
        "ended_at": trace.ended_at.isoformat(),
        "latency_ms": trace.latency_ms,
        "usage": {
            "input_tokens": trace.usage.input_tokens,
            "output_tokens": trace.usage.output_tokens,
            "cost_usd": trace.usage.cost_usd,
        },
        "model_calls": trace.model_calls,
        "tool_calls": trace.tool_calls,
        "replay_key": trace.replay_key,
        "error": trace.error,
        "metadata": dict(trace.metadata),
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=_json_default)


def trace_from_json(line: str) -> Trace:
    """Parse ``trace_to_json`` output; ``ValidationError`` naming the problem on malformed input."""
    try:
        d = json.loads(line)
        u = d.get("usage") or {}
        return Trace(
            id=d["id"],
            slot=d["slot"],
            version_id=d.get("version_id"),
            thread_id=d["thread_id"],
            messages=tuple(d.get("messages") or ()),
            started_at=datetime.fromisoformat(d["started_at"]),
            ended_at=datetime.fromisoformat(d["ended_at"]),
            latency_ms=d.get("latency_ms", 0.0),
            usage=Usage(
                input_tokens=u.get("input_tokens", 0),
                output_tokens=u.get("output_tokens", 0),
                cost_usd=u.get("cost_usd", 0.0),
            ),
            model_calls=d.get("model_calls", 0),
            tool_calls=d.get("tool_calls", 0),
            replay_key=d.get("replay_key"),
            error=d.get("error"),
            metadata=d.get("metadata") or {},
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        what = f"{type(exc).__name__}: {exc}"
        raise ValidationError(f"malformed spooled trace ({what}): {line[:120]!r}") from exc


# --- spools ------------------------------------------------------------------------------------
class Claim:
    """A chunk of spooled traces taken for replay: ``done()`` deletes it, ``release()`` returns it."""

    def __init__(self, traces: list[Trace], done: Callable[[], None], release: Callable[[], None]) -> None:
        self.traces, self.done, self.release = traces, done, release


class MemorySpool:
    """Spool in process memory (no ``spool_dir``): survives DB outages, not process death."""

    def __init__(self, max_traces: int) -> None:
        self._items: list[Trace] = []
        self._max = max_traces
        self._lock = threading.Lock()

    def append(self, traces: Sequence[Trace]) -> tuple[int, int]:
        with self._lock:
            room = max(0, self._max - len(self._items))
            self._items.extend(traces[:room])
            return min(room, len(traces)), max(0, len(traces) - room)

    def backlog(self) -> int:
        return len(self._items)

    def claims(self) -> Iterator[tuple[Claim, int]]:
        with self._lock:
            items, self._items = self._items, []
        if items:

            def release() -> None:
                with self._lock:
                    self._items[:0] = items

            yield Claim(items, lambda: None, release), 0


_LIVE_TOKENS: set[str] = set()  # file spools of open recorders in this process


class FileSpool:
    """JSONL files ``spool-<pid>-<token>-<seq>.jsonl``.

    A file being replayed is renamed to ``<name>.claimed-<pid>`` first, so two processes never replay
    the same file; files of dead processes are adopted.
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._pid = os.getpid()
        self._token = uuid.uuid4().hex[:8]
        _LIVE_TOKENS.add(self._token)
        self._seq = 0
        self._lock = threading.Lock()
        self._count = 0  # traces this recorder appended and has not replayed
        self._scan_leftovers = True

    def _current(self) -> Path:
        return self._dir / f"spool-{self._pid}-{self._token}-{self._seq:06d}.jsonl"

    def append(self, traces: Sequence[Trace]) -> tuple[int, int]:
        lines: list[str] = []
        bad = 0
        for tr in traces:
            try:
                lines.append(trace_to_json(tr))
            except Exception:  # a trace that cannot be serialised cannot be spooled
                log.exception("recorder: cannot serialise trace %s for the spool; dropping it", tr.id)
                bad += 1
        if not lines:
            return 0, bad
        with self._lock:
            self._dir.mkdir(parents=True, exist_ok=True)
            with self._current().open("a", encoding="utf-8") as fh:
                fh.write("\n".join(lines) + "\n")
                fh.flush()
            self._count += len(lines)
        return len(lines), bad

    def backlog(self) -> int:
        return self._count + (1 if self._scan_leftovers else 0)

    def close(self) -> None:
        _LIVE_TOKENS.discard(self._token)

    @staticmethod
    def _alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def _claimable(self) -> list[Path]:
        if not self._dir.is_dir():
            return []
        out: list[Path] = []
        for p in sorted(self._dir.iterdir()):
            name = p.name
            if not name.startswith("spool-"):
                continue
            parts = name.split(".claimed-")[0].split("-")
            owner = name.rsplit(".claimed-", 1)[1] if ".claimed-" in name else parts[1]
            if owner == str(self._pid):
                # ours, or left by a closed recorder of this process
                if ".claimed-" in name or len(parts) < 3 or parts[2] not in _LIVE_TOKENS - {self._token}:
                    out.append(p)
            elif owner.isdigit() and not self._alive(int(owner)):
                out.append(p)
        return out

    def claims(self) -> Iterator[tuple[Claim, int]]:
        with self._lock:
            self._seq += 1  # new appends go to a fresh file while these are replayed
            paths = self._claimable()
            self._scan_leftovers = False
        for p in paths:
            claimed = (
                p
                if p.name.endswith(f".claimed-{self._pid}")
                else p.with_name(p.name.split(".claimed-")[0] + f".claimed-{self._pid}")
            )
            if claimed != p:
                try:
                    os.rename(p, claimed)
                except FileNotFoundError:  # another process adopted it first
                    continue
            traces, bad = self._load(claimed)
            own = f"-{self._pid}-{self._token}-" in claimed.name

            def done(path: Path = claimed, n: int = len(traces) + bad, own: bool = own) -> None:
                path.unlink(missing_ok=True)
                if own:
                    with self._lock:
                        self._count = max(0, self._count - n)

            def release(path: Path = claimed, back: Path = p) -> None:
                with self._lock:
                    if path != back:  # un-claim, so the file keeps its owner's name
                        os.rename(path, back.with_name(back.name.split(".claimed-")[0]))
                    self._scan_leftovers = True

            yield Claim(traces, done, release), bad

    @staticmethod
    def _load(path: Path) -> tuple[list[Trace], int]:
        traces: list[Trace] = []
        bad = 0
        with path.open(encoding="utf-8") as fh:
            for n, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    traces.append(trace_from_json(line))
                except ValidationError as exc:  # e.g. a line torn by a crash mid-write
                    log.error("recorder: dropping unreadable spool line %s:%d (%s)", path.name, n, exc)
                    bad += 1
        return traces, bad
