"""The import graph of ``diffprompt`` + ``tau_envs``, built statically (ast, every import statement,
function-level ones included): the core never reaches ``tau_envs``, ``tau_envs`` uses diffprompt's
public API only, the runtime never imports the training code, and no module circles back to itself.

``if TYPE_CHECKING:`` imports count for the layering rules (a type-level dependency is still a
dependency) but not for circles (they never run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ((ROOT / "src", "diffprompt"), (ROOT, "tau_envs"))

# The core: no module here may import tau_envs or an integration, directly or through another module.
CORE = (
    "diffprompt.types", "diffprompt.errors", "diffprompt.settings", "diffprompt.spans", "diffprompt.templating",
    "diffprompt.llm", "diffprompt.store", "diffprompt.middleware", "diffprompt.dlm",
    "diffprompt.optimize.loop", "diffprompt.optimize.gate", "diffprompt.optimize.attribution",
    "diffprompt.optimize.replay", "diffprompt.optimize.editors", "diffprompt.optimize.config",
)
# Inside diffprompt, only the τ integration and the τ command groups talk to tau_envs.
TAU_USERS = ("diffprompt.integrations.tau", "diffprompt.cli.tau", "diffprompt.cli.sim")
# What tau_envs may use of diffprompt: its public API (values, errors, spans, templating, model
# clients) and the blamer seam's types (a judge of τ episodes implements ``Blamer``).
TAU_MAY_USE = (
    "diffprompt.errors", "diffprompt.types", "diffprompt.spans", "diffprompt.templating", "diffprompt.llm",
    "diffprompt.optimize.attribution",
)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    type_only: bool


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def modules() -> dict[str, tuple[Path, bool]]:
    """``module name -> (file, is package)`` for every .py file of both packages."""
    out: dict[str, tuple[Path, bool]] = {}
    for base, pkg in PACKAGES:
        for path in sorted((base / pkg).rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    """Every import statement anywhere in ``tree`` with whether it sits under ``if TYPE_CHECKING``."""
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        node, type_only = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, type_only
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack += [(c, True) for c in node.body] + [(c, type_only) for c in node.orelse]
            continue
        stack += [(c, type_only) for c in ast.iter_child_nodes(node)]


def _known_prefix(name: str, mods: dict[str, tuple[Path, bool]]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def edges(mods: dict[str, tuple[Path, bool]], *, extra_roots: tuple[str, ...] = ()) -> list[Edge]:
    """Module → module edges; ``from pkg import sub`` points at ``pkg.sub`` when that is a module.

    ``extra_roots`` keeps imports of other top-level names (e.g. ``training``) as edges too.
    """
    out: list[Edge] = []
    for mod, (path, is_pkg) in mods.items():
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node, type_only in _imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src for a in node.names]
            for t in targets:
                hit = _known_prefix(t, mods)
                if hit is None and t.split(".")[0] in extra_roots:
                    hit = t
                if hit is not None and hit != mod:
                    out.append(Edge(mod, hit, node.lineno, type_only))
    return out


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One circle ``[a, b, ..., a]`` in ``graph``, or None (iterative DFS, three colours)."""
    colour = dict.fromkeys(graph, 0)
    for start in sorted(graph):
        if colour[start]:
            continue
        path = [start]
        iters = [iter(sorted(graph[start]))]
        colour[start] = 1
        while iters:
            nxt = next(iters[-1], None)
            if nxt is None:
                colour[path.pop()] = 2
                iters.pop()
            elif colour.get(nxt, 2) == 1:
                return [*path[path.index(nxt):], nxt]
            elif colour.get(nxt) == 0:
                colour[nxt] = 1
                path.append(nxt)
                iters.append(iter(sorted(graph[nxt])))
    return None


def _reachable(graph: dict[str, set[str]], start: str) -> dict[str, str]:
    """``module -> the module it was reached from`` for everything ``start`` imports, transitively."""
    seen = {start: ""}
    todo = [start]
    while todo:
        cur = todo.pop()
        for nxt in graph.get(cur, ()):
            if nxt not in seen:
                seen[nxt] = cur
                todo.append(nxt)
    return seen


def _chain(seen: dict[str, str], end: str) -> str:
    out = [end]
    while seen[out[-1]]:
        out.append(seen[out[-1]])
    return " -> ".join(reversed(out))


MODS = modules()
EDGES = edges(MODS, extra_roots=("training",))


def test_the_graph_sees_function_level_imports() -> None:
    # the scanner itself: a lazy import inside a function is an edge (the τ factory loads tau_envs lazily)
    assert any(e.source == "diffprompt.integrations.tau.factory" and e.target.startswith("tau_envs")
               for e in EDGES)
    assert any(e.type_only for e in EDGES)


def test_no_core_module_imports_tau_envs_or_an_integration() -> None:
    core = [m for m in MODS if _within(m, CORE)]
    assert len(core) > 20
    bad = [f"{e.source}:{e.line} imports {e.target}" for e in EDGES
           if e.source in core and _within(e.target, ("tau_envs", "diffprompt.integrations"))]
    assert not bad, bad
    runtime = {m: {e.target for e in EDGES if e.source == m} for m in MODS}
    for m in core:
        seen = _reachable(runtime, m)
        leaks = sorted(t for t in seen if _within(t, ("tau_envs", "diffprompt.integrations")))
        assert not leaks, f"{m} reaches {leaks[0]}: {_chain(seen, leaks[0])}"


def test_only_the_tau_integration_imports_tau_envs() -> None:
    bad = [f"{e.source}:{e.line} imports {e.target}" for e in EDGES
           if e.source.startswith("diffprompt") and e.target.startswith("tau_envs")
           and not _within(e.source, TAU_USERS)]
    assert not bad, bad


def test_tau_envs_uses_only_diffprompts_public_api() -> None:
    bad = [f"{e.source}:{e.line} imports {e.target}" for e in EDGES
           if e.source.startswith("tau_envs") and e.target.startswith("diffprompt")
           and not _within(e.target, TAU_MAY_USE)]
    assert not bad, bad


def test_the_runtime_never_imports_the_training_code() -> None:
    bad = [f"{e.source}:{e.line} imports {e.target}" for e in EDGES
           if e.target.split(".")[0] == "training"]
    assert not bad, bad


def test_no_circles_in_the_import_graph() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODS}
    for e in EDGES:
        if not e.type_only and e.target in graph:
            graph[e.source].add(e.target)
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or ())


def test_find_cycle_reports_the_circle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
