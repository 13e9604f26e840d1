"""The tool registry shared by both domains, and the observation conventions.

A tool is a plain function ``fn(data, **kwargs) -> str | object`` over the mutable database dict.
``invoke`` turns any call into an observation string, as the official environment does:
objects become ``json.dumps(obj)`` (default separators), strings are returned as they are, an
unknown tool gives ``"Unknown action <name>"`` and any exception (missing or unexpected arguments,
arguments of the wrong type) gives ``"Error: <message>"`` — a tool call never raises.

Tool functions are registered under a ``<CamelName>.invoke`` qualified name so that Python's own
``TypeError`` for a missing or unexpected argument reads as the official observation does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

ToolFn = Callable[..., Any]
JsonDict = dict[str, Any]


class ToolFailure(Exception):
    """Raised inside a tool to fail with an exact message (observation ``Error: <message>``)."""


def camel(name: str) -> str:
    """``update_reservation_flights`` -> ``UpdateReservationFlights``."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


@dataclass(frozen=True, kw_only=True)
class ToolSet:
    """An ordered set of named tools for one domain (``name -> fn(data, **kwargs)``).

    ``clock``: the tools' current time (ISO 8601), the one a new record is stamped with; ``None``
    when the tools keep no time.
    """

    domain: str
    tools: Mapping[str, ToolFn] = field(default_factory=dict)
    clock: str | None = None

    def __contains__(self, name: object) -> bool:
        return name in self.tools

    def __iter__(self) -> Iterator[str]:
        return iter(self.tools)

    def __len__(self) -> int:
        return len(self.tools)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.tools)

    def invoke(self, data: JsonDict, name: str, kwargs: Mapping[str, Any]) -> str:
        """Run tool ``name`` on ``data`` and return the observation string (never raises)."""
        fn = self.tools.get(name)
        if fn is None:
            return f"Unknown action {name}"
        if not isinstance(kwargs, Mapping):
            return f"Error: arguments of {name} must be an object, got {type(kwargs).__name__}"
        try:
            out = fn(data, **kwargs)
            return out if isinstance(out, str) else json.dumps(out)
        except Exception as exc:  # ToolFailure or any bad argument: an observation, as officially
            return f"Error: {exc}"


class Registry:
    """Collects tool functions in definition order; ``toolset()`` freezes them."""

    def __init__(self, domain: str, clock: str | None = None) -> None:
        self.domain = domain
        self.clock = clock
        self._tools: dict[str, ToolFn] = {}

    def tool(self, fn: ToolFn) -> ToolFn:
        """Decorator: register ``fn`` under its ``__name__``."""
        fn.__qualname__ = f"{camel(fn.__name__)}.invoke"
        self._tools[fn.__name__] = fn
        return fn

    def add(self, fn: ToolFn) -> None:
        """Register an already defined (shared) tool function under its name."""
        self._tools[fn.__name__] = fn

    def toolset(self) -> ToolSet:
        return ToolSet(domain=self.domain, tools=dict(sorted(self._tools.items())), clock=self.clock)
