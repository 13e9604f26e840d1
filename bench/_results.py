"""The one writer of ``bench/RESULTS.md``: each benchmark replaces only its own ``## heading`` section."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(heading: str, body: Sequence[str] | str, *, path: Path = RESULTS) -> None:
    """Replace (or append) the section that starts with the line ``heading`` (e.g. ``## store``)."""
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    lines = body.splitlines() if isinstance(body, str) else list(body)
    if lines and lines[0].strip() == heading:  # a body that already starts with its heading
        lines = lines[1:]
    section = heading + "\n\n" + "\n".join(lines).strip("\n") + "\n"
    start = text.find(heading + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        nxt = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("\n" + text[nxt + 1 :] if nxt >= 0 else "")
    path.write_text(text)
