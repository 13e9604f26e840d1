"""The project's OpenAI path against a local fake server: token limits, tool_choice, no null content,
structured output, redaction, and a start-up check that tells busy from down."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool

from diffprompt.errors import ConfigError
from diffprompt.llm import (
    ChatClient,
    ModelSettings,
    RedactingClient,
    ScriptedChatClient,
    check_reachable,
    make_chat_model,
)


class _Server:
    """OpenAI-compatible stub on 127.0.0.1: records every request body; ``delay_s`` stalls /models."""

    def __init__(self, delay_s: float = 0.0, reject_json_schema: bool = False) -> None:
        self.requests: list[dict] = []
        self.reject_json_schema = reject_json_schema
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                return None

            def do_GET(self):
                time.sleep(outer.delay_s)
                self._send({"object": "list", "data": [{"id": "m", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(body)
                if outer.reject_json_schema and (body.get("response_format") or {}).get("type") == "json_schema":
                    self._send({"detail": [{"msg": "Input should be 'text' or 'json_object'"}]}, status=422)
                    return
                self._send(
                    {
                        "id": "x",
                        "object": "chat.completion",
                        "created": 0,
                        "model": "m",
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}
                        ],
                        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
                    }
                )

            def _send(self, obj, status=200):
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):  # the client timed out first (the busy test)
                    self.wfile.write(data)

        self.delay_s = delay_s
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def server():
    s = _Server()
    yield s
    s.close()


@tool
def get_order(order_id: str) -> str:
    """Look an order up."""
    return "pending"


def test_chat_model_sends_tool_choice_max_tokens_and_no_null_content(server):
    settings = ModelSettings(max_tokens=33, extra_body={"top_k": 5})
    model = make_chat_model("openai:m", base_url=server.url, api_key="k", settings=settings)
    history = [
        HumanMessage("cancel order 7"),
        AIMessage("", tool_calls=[{"id": "c1", "name": "get_order", "args": {"order_id": "7"}}]),
        ToolMessage("pending", tool_call_id="c1"),
    ]
    model.bind_tools([get_order]).invoke(history)
    body = server.requests[-1]
    assert body["tool_choice"] == "auto"
    assert body["max_tokens"] == 33 and "max_completion_tokens" not in body
    assert body["top_k"] == 5
    assistant = next(m for m in body["messages"] if m["role"] == "assistant")
    assert assistant["content"] == "" and assistant["tool_calls"]
    model.invoke([HumanMessage("hi")])  # no tools bound: no tool_choice
    assert "tool_choice" not in server.requests[-1]


def test_chat_client_limits_structured_output_and_redaction(server):
    client = ChatClient("m", base_url=server.url, api_key="k", settings=ModelSettings(max_tokens=21))
    client.complete([{"role": "user", "content": "hi"}])
    assert server.requests[-1]["max_tokens"] == 21
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    RedactingClient(client).complete_json([{"role": "user", "content": "mail bob@example.com"}], schema, name="j")
    body = server.requests[-1]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == schema
    assert "bob@example.com" not in json.dumps(body) and "[EMAIL]" in json.dumps(body)


def test_scripted_client_records_schemas():
    c = ScriptedChatClient(['{"a": "x"}'])
    assert c.complete_json([{"role": "user", "content": "q"}], {"type": "object"}).text == '{"a": "x"}'
    assert c.schemas == [{"type": "object"}]


def test_reachability_busy_is_not_down():
    slow = _Server(delay_s=2.0)
    try:
        r = check_reachable("openai:m", base_url=slow.url, api_key="k", timeout_s=0.3)
        assert r is not None and r.busy
    finally:
        slow.close()
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match="cannot reach"):
        check_reachable("openai:m", base_url=f"http://127.0.0.1:{port}/v1", api_key="k", timeout_s=0.5)


def test_model_settings_validation():
    assert ModelSettings.from_dict({"max_tokens": 8}).max_tokens == 8
    with pytest.raises(ConfigError, match="unknown model settings"):
        ModelSettings.from_dict({"max_tokenz": 8})
    with pytest.raises(ConfigError, match="max_tokens"):
        ModelSettings(max_tokens=0)


def test_json_object_fallback_for_llama_cpp_python():
    srv = _Server(reject_json_schema=True)
    try:
        client = ChatClient("m", base_url=srv.url, api_key="k", max_retries=0)
        schema = {"type": "object", "properties": {"winner": {"type": "string"}}}
        assert client.complete_json([{"role": "user", "content": "q"}], schema).text == "ok"
        assert srv.requests[-1]["response_format"] == {"type": "json_object", "schema": schema}
        client.complete_json([{"role": "user", "content": "q"}], schema)  # remembered: no second refusal
        assert [r["response_format"]["type"] for r in srv.requests] == ["json_schema", "json_object", "json_object"]
    finally:
        srv.close()
