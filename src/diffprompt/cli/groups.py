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


def register_all(root: typer.Typer) -> None:
    for module, name in _GROUPS:
        mod = importlib.import_module(f"diffprompt.cli.{module}")
        if name is None:
            mod.register(root)
        else:
            root.add_typer(mod.app, name=name)
