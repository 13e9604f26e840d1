"""Shared CLI plumbing: the state from global options, store construction, output, input files, errors.

Output rules (issue 13): ids and paths are never cut — tables keep id columns whole and grow past the
terminal width rather than truncate, and when stdout is not a terminal nothing wraps at all; user
text (prompts, actors, reasons, notes) is printed literally, never parsed as rich markup.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, ConsoleDimensions
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from diffprompt.errors import ConfigError, DiffpromptError

_PIPE_WIDTH = 1_000_000  # when stdout is a file or a pipe: no wrapping, no cropping


class _StdoutConsole(Console):
    """A console that, when not writing to a terminal, never wraps or crops (a file gets whole lines)."""

    @property
    def size(self) -> ConsoleDimensions:
        if self._width is None and not self.is_terminal:
            return ConsoleDimensions(_PIPE_WIDTH, 25)
        return super().size

    @size.setter
    def size(self, new_size: tuple[int, int]) -> None:
        width, height = new_size
        self._width, self._height = width, height


console = _StdoutConsole()
err_console = Console(stderr=True, soft_wrap=True)  # soft_wrap: an error stays one line


def literal(text: object) -> str:
    """``text`` escaped for rich markup: ``[active]`` or an actor ``[/x]`` prints as written."""
    return escape(str(text))


@dataclass
class CliState:
    """Global options given before the sub-command."""

    db_url: str | None = None
    home: str | None = None

    def settings(self) -> Any:
        """``Settings`` from these options, the environment and the config file (``ConfigError`` if bad)."""
        import pydantic

        from diffprompt.settings import Settings

        kwargs: dict[str, Any] = {}
        if self.db_url:
            kwargs["db_url"] = self.db_url
        if self.home:
            kwargs["home"] = self.home
        try:
            return Settings(**kwargs)
        except pydantic.ValidationError as exc:
            bad = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())
            raise ConfigError(f"invalid settings ({bad}); check DIFFPROMPT_* variables and the config file") from None


def state(ctx: typer.Context) -> CliState:
    """The ``CliState`` of the root command (works from any nesting depth)."""
    root = ctx.find_root()
    return root.obj if isinstance(root.obj, CliState) else CliState()


def open_store(ctx: typer.Context, *, upgrade: bool = True) -> Any:
    """The ``Store`` for this invocation: ``--db`` / ``--home`` / ``DIFFPROMPT_*`` settings.

    The schema is migrated to head first (a fresh database is created; an older one upgraded), so
    every command works on a brand-new home directory. Close it with ``store.close()``.
    """
    from diffprompt.store import open_store as _open

    return _open(state(ctx).settings().resolved_db_url, upgrade=upgrade)


# ------------------------------------------------------------------------------------------ files
def read_text_file(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path`` (``-`` reads stdin); ``ConfigError`` naming ``what`` otherwise.

    Missing, unreadable, non-UTF-8 and binary (NUL-containing) files are one-line errors.
    """
    name = str(path)
    try:
        if name == "-":
            data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode()
        else:
            data = Path(path).read_bytes()
    except IsADirectoryError:
        raise ConfigError(f"cannot read {what} {name}: it is a directory, give a file") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {name}: {exc.strerror or exc}") from None
    if b"\x00" in data:
        raise ConfigError(f"cannot read {what} {name}: it is a binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read {what} {name}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None


def writable_path(path: str | Path, what: str) -> Path:
    """``path``, checked before any work: not a directory, in a writable directory (made if missing).

    ``ConfigError`` naming ``what`` otherwise. Nothing is created but the directory.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        raise ConfigError(f"cannot write {what} {p}: it is a directory, give a file name")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot write {what} {p}: {exc.strerror or exc}") from None
    if not parent.is_dir():
        raise ConfigError(f"cannot write {what} {p}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ConfigError(f"cannot write {what} {p}: permission denied")
    return p


def write_text_file(path: str | Path, chunks: str | Iterable[str], what: str) -> Path:
    """Write ``chunks`` to ``path`` all or nothing (a temporary file renamed into place)."""
    p = writable_path(path, what)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.writelines([chunks] if isinstance(chunks, str) else chunks)
        tmp.replace(p)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write {what} {p}: {exc.strerror or exc}") from None
    return p


# ----------------------------------------------------------------------------------------- output
def jsonable(obj: Any) -> Any:
    """Value objects (frozen dataclasses), tuples, mappings and datetimes as plain JSON data."""
    import dataclasses
    from collections.abc import Mapping
    from datetime import datetime

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def print_json(obj: Any) -> None:
    """One JSON object on one line on stdout (machine-readable output of ``--json``)."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")
    sys.stdout.flush()


def write_plain(text: str) -> None:
    """``text`` exactly as given on stdout: no wrapping, padding or markup.

    A missing final newline is added only on a terminal, so ``prompts show SLOT > file`` gives back
    the stored text byte for byte.
    """
    sys.stdout.write(text)
    if not text.endswith("\n") and sys.stdout.isatty():
        sys.stdout.write("\n")
    sys.stdout.flush()


def table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ids: Collection[str] = (),
    right: Collection[str] = (),
    title: str | None = None,
) -> Table:
    """A table of literal cells (``None`` → empty; markup is never parsed).

    Columns named in ``ids`` are never wrapped or cut: they are as wide as their longest value.
    """
    body = [["" if c is None else c if isinstance(c, Text) else str(c) for c in r] for r in rows]
    t = Table(title=Text(title) if title else None)
    for i, name in enumerate(header):
        longest = max((len(r[i]) for r in body), default=0)
        t.add_column(
            Text(name),
            no_wrap=name in ids,
            overflow="fold",
            min_width=max(longest, len(name)) if name in ids else None,
            justify="right" if name in right else "left",
        )
    for r in body:
        t.add_row(*(c if isinstance(c, Text) else Text(c) for c in r))
    return t


def print_table(t: Table, out: Console | None = None) -> None:
    """Print ``t`` on ``out`` (stdout): wider than the terminal rather than cut a column kept whole."""
    out = out or console
    need = Measurement.get(out, out.options.update_width(_PIPE_WIDTH), t).minimum
    if need <= out.width:
        out.print(t)
        return
    saved = out._width
    out.width = need  # the terminal soft-wraps the long lines; every id stays in one piece
    try:
        out.print(t)
    finally:
        out._width = saved


def error_message(exc: BaseException) -> str:
    """An error's message on one line (line breaks folded into spaces)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def run_app(app: typer.Typer) -> None:
    """Run the Typer app; a ``DiffpromptError`` prints ``error: <message>`` and exits 1."""
    try:
        app(standalone_mode=True)
    except DiffpromptError as exc:
        err_console.print(Text.assemble(("error:", "bold red"), " ", error_message(exc)), highlight=False)
        raise SystemExit(1) from None
