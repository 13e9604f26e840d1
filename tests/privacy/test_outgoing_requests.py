"""Every request a recorded-env round sends — target, judge, blamer, critic, writer — carries no PII.

A local OpenAI-compatible stub on 127.0.0.1 records every request body of one whole round
(``service.run_request`` with ``--env recorded``, the judge as blamer, the rewrite editor), and none
of the values planted in the recorded conversations and the users' comments appears in any of them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from diffprompt.optimize.service import OptimizeRequest, run_request
from diffprompt.store.memory import MemoryStore
from diffprompt.types import Feedback, Trace
from tests.optimize.helpers import T0

PII = [
    "jane.roe@example.com",
    "+1 (415) 555-0132",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "536-22-8901",
    "1234 Elm Street",
    "March 3, 1984",
    "192.168.17.23",
]
# how each value appears: a date is a date of birth only with its context
CONTEXT = {"March 3, 1984": "born on {}"}
PROMPT = (
    "You are the support agent of a shop.\n- Look orders up before acting.\n- Be brief and polite.\n"
    "- Refunds go to the original payment method.\n- Never share internal notes.\n"
)


class Stub:
    def __init__(self, judge_reply: str = '{"winner": "tie", "reason": "same"}') -> None:
        self.bodies: list[str] = []
        self.judge_reply = judge_reply
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                return None

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "m", "object": "model"}]})

            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"])).decode()
                outer.bodies.append(raw)
                body = json.loads(raw)
                if body.get("response_format"):
                    content = outer.judge_reply
                elif body.get("tools"):
                    content = "I looked at it; let me check the policy first."
                elif "Rewrite the system prompt" in raw:
                    content = PROMPT + "- Ask before refunding.\n"
                else:
                    content = '{"spans": [], "fills": {}}'
                msg = {"role": "assistant", "content": content}
                self._send(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "m",
                        "choices": [{"index": 0, "finish_reason": "stop", "message": msg}],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
                    }
                )

            def _send(self, obj):
                data = json.dumps(obj).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def stub():
    s = Stub()
    yield s
    s.httpd.shutdown()


def _store() -> MemoryStore:
    store = MemoryStore()
    v = store.create_slot("support", PROMPT)
    traces, fb = [], []
    for i in range(24):
        pii = CONTEXT.get(PII[i % len(PII)], "{}").format(PII[i % len(PII)])
        msgs = (
            {"role": "system", "content": PROMPT},
            {"role": "user", "content": f"Refund order A{100 + i}; I am {pii}, call me back."},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "lookup_order", "arguments": json.dumps({"contact": pii})},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": json.dumps({"owner": pii, "status": "delivered"})},
            {"role": "assistant", "content": f"Refunded, {pii}."},
            {"role": "user", "content": f"You did not check the policy! Reach me at {pii}."},
        )
        traces.append(
            Trace(id=f"t{i}", slot="support", version_id=v.id, thread_id=f"th{i}", messages=msgs, started_at=T0,
                  ended_at=T0)
        )
        ok = i % 3 == 0
        fb.append(Feedback(trace_id=f"t{i}", kind="reward", value=1.0 if ok else 0.0, source="env"))
        if not ok:
            fb.append(Feedback(trace_id=f"t{i}", kind="rating", value=0.0, source="user"))
            fb.append(Feedback(trace_id=f"t{i}", kind="comment", value=None, text=f"wrong, email {pii}", source="user"))
    store.add_traces(traces)
    store.add_feedback(fb)
    return store


def test_no_planted_value_in_any_outgoing_request(stub, tmp_path):
    req = OptimizeRequest(
        slot="support",
        env="recorded",
        editor="rewrite",
        model="openai:m",
        judge="openai:m",
        editor_model="m",
        config={"n_candidates": 1, "iterations": 1, "screen_cases": 2, "holdout_cases": 8},
        model_settings={"max_tokens": 32},
    )
    res = run_request(_store(), req, home=tmp_path, api_key="k", base_url=stub.url)
    assert res.status in ("rejected", "promoted", "insufficient_data")
    kinds = {"tools" if '"tools"' in b else "judge" if "response_format" in b else "other" for b in stub.bodies}
    assert {"tools", "judge", "other"} <= kinds  # target, judge and editor/blamer requests all captured
    for body in stub.bodies:
        text = json.loads(body)
        dumped = json.dumps(text, ensure_ascii=False)
        for value in PII:
            assert value not in dumped, f"{value!r} leaked in a request: {dumped[:300]}"
        assert text.get("max_tokens") is not None  # every call carries a token limit
