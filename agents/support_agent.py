"""A customer-support agent built with ``create_agent`` and wrapped with diffprompt's middleware.

Run it offline (no API key, no network)::

    python agents/support_agent.py            # 20 conversations into $DIFFPROMPT_HOME (~/.diffprompt)
    python agents/support_agent.py -n 50      # more conversations

It opens (and migrates) the SQLite store under ``DIFFPROMPT_HOME``, seeds the ``support`` slot,
serves 20 scripted conversations through a ``ScriptedChatModel`` (tool calls, then a final answer,
with token usage), scores each conversation (``score``: reward 1 only when the agent did what the
request needed — doing nothing is a failure), records the reward, and for failures a thumbs-down
rating and the user's comment, as feedback, and prints the recorded traces.

Against a real model (any OpenAI-compatible server, e.g. the local SmolLM2 tier)::

    python agents/support_agent.py --model openai:smollm2 --base-url http://127.0.0.1:8089/v1 -n 10

A conversation the model breaks (malformed tool call, server error, a loop of tool calls that hits
``--max-steps``) is recorded as a failure: its trace is stored with ``metadata["error_reason"]``
(``mw.wrap(agent)`` records runs that raise anywhere), scored 0 with a thumbs-down, and counted by
reason in the summary.

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
from collections import Counter
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


def score(request: str, messages: Sequence[BaseMessage]) -> tuple[float, str]:
    """(reward, the user's comment) for one conversation: did the agent do what the request needed?

    Doing nothing is never a success: a status question needs a lookup and an answer naming the
    status; a refund request needs a policy check, then a refund exactly when it is eligible, and a
    final answer; a request without an order number needs a question back (and no tool call).
    """
    tools = [m for m in messages if isinstance(m, ToolMessage)]
    names = [m.name for m in tools]
    finals = [m for m in messages if isinstance(m, AIMessage) and not m.tool_calls and str(m.content).strip()]
    final = str(finals[-1].content).lower() if finals else ""
    if not final:
        return 0.0, "I got no answer at all."
    match = _ORDER_RE.search(request)
    if match is None:
        if tools:
            return 0.0, "You did things on an order I never named."
        return (1.0, "") if "order" in final else (0.0, "You did not ask which order I meant.")
    if "refund" not in request.lower():
        status = _order(match.group(1))["status"]
        if "lookup_order" not in names:
            return 0.0, "You never looked my order up."
        return (1.0, "") if status in final else (0.0, "You did not tell me where my order is.")
    eligible = None
    for m in tools:
        if m.name == "check_refund_policy":
            try:
                eligible = bool(json.loads(str(m.content)).get("eligible"))
            except (ValueError, AttributeError):
                eligible = None
    refunded = "issue_refund" in names
    if refunded and eligible is not True:
        return 0.0, "You refunded without checking the refund policy first."
    if eligible is None:
        return 0.0, "You did nothing about my refund request."
    if eligible and not refunded:
        return 0.0, "My order was eligible but you did not refund it."
    return 1.0, ""


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

    from diffprompt.errors import NotFoundError
    from diffprompt.middleware import PromptAdaptationMiddleware, record_feedback
    from diffprompt.settings import Settings
    from diffprompt.store import open_store
    from diffprompt.store.recorder import Recorder
    from diffprompt.types import new_id

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", "--conversations", type=int, default=20)
    ap.add_argument("--db", default=None, help="SQLAlchemy URL (default: SQLite under DIFFPROMPT_HOME)")
    ap.add_argument("--model", default="scripted", help="scripted (offline) or openai:NAME (ChatOpenAI)")
    ap.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (default: OPENAI_BASE_URL)")
    ap.add_argument("--max-tokens", type=int, default=256, help="token limit of every model reply")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per model call")
    ap.add_argument("--max-steps", type=int, default=8,
                    help="model calls per conversation; a model that loops past it is a recorded failure")
    args = ap.parse_args(argv)

    settings = Settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    url = args.db or settings.resolved_db_url
    store = open_store(url)
    store.create_slot(SLOT, SEED_PROMPT, actor="example")
    recorder = Recorder(store, spool_dir=settings.resolved_spool_dir)
    mw = PromptAdaptationMiddleware(SLOT, store, recorder=recorder)
    if args.model == "scripted":
        model: Any = scripted_model()
    else:
        from diffprompt.llm import ModelSettings, make_chat_model

        model = make_chat_model(
            args.model,
            base_url=args.base_url or settings.openai_base_url,
            api_key=settings.openai_api_key,
            settings=ModelSettings(max_tokens=args.max_tokens, timeout_s=args.timeout),
        )
    agent = mw.wrap(build_agent(model, [mw]))  # runs that raise are recorded too, before the raise
    batch = new_id()[:6]
    results: list[tuple[str, float]] = []
    pending_comments: list[tuple[str, str]] = []
    failures: list[str] = []
    for i, text in enumerate(requests(args.conversations)):
        thread = f"support-{batch}-{i:03d}"
        try:
            out = agent.invoke(
                {"messages": [{"role": "user", "content": text}]},
                {"configurable": {"thread_id": thread}, "recursion_limit": 2 * args.max_steps + 1},
            )
        except Exception as exc:  # a real model's garbage: the conversation failed, its trace is recorded
            failures.append(f"{thread}: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}")
            recorder.flush(30)
            try:
                fb = record_feedback(store, thread_id=thread, slot=SLOT, kind="rating", value=0.0, source="user",
                                     text=f"the agent broke: {exc}"[:200])
            except NotFoundError:
                failures[-1] += " (no trace was recorded)"
            else:
                results.append((fb.trace_id, 0.0))
            continue
        reward, comment = score(text, out["messages"])
        results.append((out["diffprompt_trace_id"], reward))
        if comment:  # what the user would have said, with a thumbs-down
            pending_comments.append((out["diffprompt_trace_id"], comment))
    recorder.flush(30)
    for trace_id, reward in results:
        record_feedback(store, trace_id=trace_id, kind="reward", value=reward, source="env")
    for trace_id, comment in pending_comments:
        record_feedback(store, trace_id=trace_id, kind="rating", value=0.0, source="user")
        record_feedback(store, trace_id=trace_id, kind="comment", text=comment, source="user")
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
    outcomes = Counter(
        str(tr.metadata.get("error_reason", tr.metadata.get("outcome", "?")))
        for tr in (store.get_trace(t) for t, _ in results)
    )
    console.print("outcomes: " + ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())), markup=False)
    stats = store.stats(SLOT)
    mean = "-" if stats["mean_reward"] is None else f"{stats['mean_reward']:.2f}"
    console.print(
        f"slot [bold]{SLOT}[/]: {stats['traces']} traces, {stats['feedback']} feedback, "
        f"mean reward {mean} | recorder: written {rstats.written}, "
        f"spooled {rstats.spooled}, dropped {rstats.dropped}"
    )
    for line in failures:
        console.print(f"failed conversation {line}", markup=False, highlight=False)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
