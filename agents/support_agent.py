"""A customer-support agent built with ``create_agent`` and wrapped with diffprompt's middleware.

Run it offline (no API key, no network)::

    python agents/support_agent.py            # 20 conversations into $DIFFPROMPT_HOME (~/.diffprompt)
    python agents/support_agent.py -n 50      # more conversations

It opens (and migrates) the SQLite store under ``DIFFPROMPT_HOME``, seeds the ``support`` slot,
serves 20 scripted conversations through a ``ScriptedChatModel`` (tool calls, then a final answer,
with token usage), scores each conversation (reward 1 when refunds went through the refund policy
check, 0 otherwise), records the reward as feedback, and prints the recorded traces.

The scripted model follows the refund policy reliably only when the system prompt tells it to
check it, so prompt edits change the reward: exactly what diffprompt's optimizer improves.
Copy ``build_agent`` into your code and swap the scripted model for a real chat model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python agents/support_agent.py`: make `agents` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from langchain.agents import create_agent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from agents.fake_models import ScriptedChatModel

SLOT = "support"
SEED_PROMPT = """# Role
You are the support assistant of an online shop.

# Rules
- Look up the order before answering any question about it.
- Issue refunds only for orders that were delivered.
- Be brief and polite.
"""

_ORDER_RE = re.compile(r"#?\b([A-Z]\d{3,})\b")


# --- tools ---------------------------------------------------------------------------------------
def _order(order_id: str) -> dict[str, Any]:
    h = int(hashlib.sha256(order_id.encode()).hexdigest(), 16)
    return {
        "order_id": order_id,
        "status": ("delivered", "shipped", "processing")[h % 3],
        "amount": round(10 + (h >> 8) % 19000 / 100, 2),
    }


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by id; returns its status and amount as JSON."""
    return json.dumps(_order(order_id))


@tool
def check_refund_policy(order_id: str, reason: str) -> str:
    """Check whether an order is eligible for a refund for the given reason."""
    eligible = _order(order_id)["status"] == "delivered" and reason != "changed mind"
    return json.dumps({"order_id": order_id, "eligible": eligible})


@tool
def issue_refund(order_id: str, amount: float) -> str:
    """Refund ``amount`` on an order."""
    return json.dumps({"order_id": order_id, "refunded": amount, "ok": True})


TOOLS = [lookup_order, check_refund_policy, issue_refund]


# --- the scripted model's policy ---------------------------------------------------------------
def _this_turn(messages: Sequence[BaseMessage]) -> tuple[str, list[ToolMessage]]:
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    text = str(messages[last_user].content) if last_user >= 0 else ""
    return text, [m for m in messages[last_user + 1 :] if isinstance(m, ToolMessage)]


def _reason(text: str) -> str:
    low = text.lower()
    return "damaged" if "damaged" in low else "late" if "late" in low else "changed mind"


def support_policy(system: str, messages: Sequence[BaseMessage], tools: Sequence[str]) -> AIMessage:
    """Look up the order, (maybe) check the refund policy, refund, answer.

    The policy check happens when the system prompt mentions the refund policy; otherwise only for
    about half of the requests (a deterministic hash of the request), which is the failure mode the
    optimizer can fix by editing the prompt.
    """
    text, results = _this_turn(messages)
    done = {m.name: json.loads(str(m.content)) for m in results if m.name}
    n = len(results)
    match = _ORDER_RE.search(text)
    tag = hashlib.sha256(system.encode()).hexdigest()[:8]
    if match is None:
        return AIMessage(content=f"Could you give me your order number (like #A1234)? [prompt {tag}]")
    oid = match.group(1)
    wants_refund = "refund" in text.lower()
    careful = "refund policy" in system.lower() or int(hashlib.md5(text.encode()).hexdigest(), 16) % 2 == 0

    def call(name: str, args: dict[str, Any]) -> AIMessage:
        return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"call_{oid}_{n}"}])

    if "lookup_order" not in done:
        return call("lookup_order", {"order_id": oid})
    order = done["lookup_order"]
    if wants_refund:
        if careful and "check_refund_policy" not in done:
            return call("check_refund_policy", {"order_id": oid, "reason": _reason(text)})
        eligible = done.get("check_refund_policy", {}).get("eligible", True)
        if eligible and "issue_refund" not in done:
            return call("issue_refund", {"order_id": oid, "amount": order["amount"]})
        if eligible:
            return AIMessage(content=f"I refunded ${order['amount']:.2f} on order {oid}. [prompt {tag}]")
        return AIMessage(content=f"Order {oid} is not eligible for a refund, sorry. [prompt {tag}]")
    return AIMessage(content=f"Order {oid} is {order['status']} (${order['amount']:.2f}). [prompt {tag}]")


def score(messages: Sequence[BaseMessage]) -> float:
    """1.0 when every refund was preceded by an eligible policy check, else 0.0."""
    checked = False
    for m in messages:
        if isinstance(m, ToolMessage) and m.name == "check_refund_policy":
            checked = bool(json.loads(str(m.content))["eligible"])
        if isinstance(m, ToolMessage) and m.name == "issue_refund" and not checked:
            return 0.0
    return 1.0


def requests(n: int) -> list[str]:
    """``n`` deterministic customer requests."""
    kinds = [
        "Where is my order #{o}?",
        "I want a refund for order #{o}, it arrived damaged.",
        "Order #{o} came late, please refund it.",
        "Please refund #{o}, I changed my mind.",
        "Hi, can you help me with a purchase?",
    ]
    return [kinds[i % len(kinds)].format(o=f"A{1000 + 7 * i}") for i in range(n)]


def build_agent(model: Any, middleware: Sequence[Any] = (), *, checkpointer: Any = None) -> Any:
    """The support agent: the scripted (or any tool-calling) model, three tools, the middleware."""
    return create_agent(
        model, TOOLS, system_prompt=SEED_PROMPT, middleware=list(middleware), checkpointer=checkpointer
    )


def scripted_model(latency_s: float = 0.0) -> ScriptedChatModel:
    return ScriptedChatModel(policy=support_policy, latency_s=latency_s)


# --- the example run -------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from diffprompt.middleware import PromptAdaptationMiddleware, record_feedback
    from diffprompt.settings import Settings
    from diffprompt.store import open_store
    from diffprompt.store.recorder import Recorder
    from diffprompt.types import new_id

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--conversations", type=int, default=20)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite under DIFFPROMPT_HOME)")
    args = ap.parse_args(argv)

    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    url = args.db or settings.resolved_db_url
    store = open_store(url)
    store.create_slot(SLOT, SEED_PROMPT, actor="example")
    recorder = Recorder(store, spool_dir=settings.resolved_spool_dir)
    mw = PromptAdaptationMiddleware(SLOT, store, recorder=recorder)
    agent = build_agent(scripted_model(), [mw])
    batch = new_id()[:6]
    results = []
    for i, text in enumerate(requests(args.conversations)):
        thread = f"support-{batch}-{i:03d}"
        out = agent.invoke(
            {"messages": [{"role": "user", "content": text}]}, {"configurable": {"thread_id": thread}}
        )
        results.append((out["diffprompt_trace_id"], score(out["messages"])))
    recorder.flush(30)
    for trace_id, reward in results:
        record_feedback(store, trace_id=trace_id, kind="reward", value=reward, source="env")
    rstats = recorder.close()

    console = Console()
    table = Table(title=f"diffprompt: {len(results)} support conversations recorded ({url})")
    for col in ("trace", "#", "version", "msgs", "tools", "tokens", "ms", "reward"):
        right = col in ("msgs", "tools", "ms", "reward")
        table.add_column(col, justify="right" if right else "left", no_wrap=True)
    for trace_id, reward in results:
        tr = store.get_trace(trace_id)
        table.add_row(
            tr.id[:11],
            tr.thread_id.rsplit("-", 1)[-1],
            (tr.version_id or "-")[:11],
            str(len(tr.messages)),
            str(tr.tool_calls),
            f"{tr.usage.input_tokens}/{tr.usage.output_tokens}",
            f"{tr.latency_ms:.0f}",
            f"{reward:.0f}",
        )
    console.print(table)
    stats = store.stats(SLOT)
    console.print(
        f"slot [bold]{SLOT}[/]: {stats['traces']} traces, {stats['feedback']} feedback, "
        f"mean reward {stats['mean_reward']:.2f} | recorder: written {rstats.written}, "
        f"spooled {rstats.spooled}, dropped {rstats.dropped}"
    )
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
