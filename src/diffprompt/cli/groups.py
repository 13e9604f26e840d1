"""Registers every command group on the root app. Each group lives in its own module."""

from __future__ import annotations

import importlib

import typer

# (module, name): module `diffprompt.cli.<module>` defines `app: typer.Typer` mounted as `name`,
# or a `register(root)` function that adds top-level commands.
_GROUPS: list[tuple[str, str | None]] = [
    ("dlm", "dlm"),
    ("init_cmd", None),
    ("db", "db"),
    ("prompts", "prompts"),
    ("traces", "traces"),
    ("feedback", "feedback"),
    ("tau", "tau"),
    ("sim", "sim"),
    ("optimize", None),
    ("eval", None),
    ("experiment", "experiment"),
    ("runs", "runs"),
    ("schedule", "schedule"),
    ("canary", "canary"),
    ("demo", None),
]


_REGISTERED: set[int] = set()  # roots already populated (registering twice would mount every group twice)


def register_all(root: typer.Typer) -> None:
    """Mount every group on ``root`` once.

    The group modules keep their heavy imports (torch, LangChain, the τ environments) inside their
    commands, so ``diffprompt --help`` stays light.
    """
    if id(root) in _REGISTERED:
        return
    _REGISTERED.add(id(root))
    for module, name in _GROUPS:
        mod = importlib.import_module(f"diffprompt.cli.{module}")
        if name is None:
            mod.register(root)
        else:
            root.add_typer(mod.app, name=name)
