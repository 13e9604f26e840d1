"""Tools both domains share: ``calculate``, ``think`` and ``transfer_to_human_agents``.

``calculate`` accepts digits, ``+ - * / ( ) .`` and spaces, evaluates with Python's arithmetic
semantics (``//`` and ``**`` included, as the character set allows) through a small AST walker —
no ``eval`` — and answers ``str(round(float(value), 2))``; any failure is ``Error: <message>`` with
the message Python itself would give.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable
from typing import Any

from tau_envs.toolkit import JsonDict, ToolFailure

_ALLOWED = frozenset("0123456789+-*/(). ")
_MAX_EXPONENT = 100_000  # a bound the official tool lacks: 9**9**9 would hang the episode

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_UNOPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def _huge_power(base: Any, exponent: Any) -> bool:
    numbers = isinstance(base, int | float) and isinstance(exponent, int | float)
    return numbers and abs(exponent) > _MAX_EXPONENT and abs(base) not in (0, 1)


def _walk(node: ast.AST) -> Any:
    if isinstance(node, ast.Expression):
        return _walk(node.body)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _walk(node.left), _walk(node.right)
        if isinstance(node.op, ast.Pow) and _huge_power(left, right):
            raise OverflowError("exponent too large")
        return _BINOPS[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNOPS:
        return _UNOPS[type(node.op)](_walk(node.operand))
    if isinstance(node, ast.Tuple):
        return tuple(_walk(elt) for elt in node.elts)
    if isinstance(node, ast.Call):
        func = _walk(node.func)
        raise TypeError(f"'{type(func).__name__}' object is not callable")
    raise SyntaxError("invalid syntax")


def evaluate(expression: str) -> str:
    """The ``calculate`` observation for ``expression`` (raises ``ToolFailure`` / Python errors)."""
    if not all(ch in _ALLOWED for ch in expression):
        raise ToolFailure("invalid characters in expression")
    tree = ast.parse(expression.lstrip(" \t"), filename="<string>", mode="eval")
    return str(round(float(_walk(tree)), 2))


def calculate(data: JsonDict, expression: str) -> str:
    """Evaluate an arithmetic expression; the result rounded to 2 decimals, as a string."""
    return evaluate(expression)


def think(data: JsonDict, thought: str) -> str:
    """Record a thought; changes nothing and returns an empty observation."""
    return ""


def transfer_to_human_agents(data: JsonDict, summary: str) -> str:
    """Hand the conversation to a human; the environment ends the episode on this tool."""
    return "Transfer successful"


SHARED_TOOLS = (calculate, think, transfer_to_human_agents)
