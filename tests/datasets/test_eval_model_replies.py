"""``diffprompt eval`` against an OpenAI-compatible stub: garbage replies are counted as unparsed (and
recorded with their reason), a server that fails every call is one ``error:`` line with nothing recorded."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffprompt.store import open_store


class _Stub:
    """``GET /v1/models`` answers; ``POST /v1/chat/completions`` replies ``reply`` (or HTTP 500 when None)."""

    def __init__(self) -> None:
        self.reply: str | None = "banana bread"
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: object) -> None:
                return None

            def do_GET(self) -> None:
                self._send({"object": "list", "data": [{"id": "m", "object": "model"}]})

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                if outer.reply is None:
                    self._send({"error": {"message": "model crashed"}}, status=500)
                    return
                msg = {"role": "assistant", "content": outer.reply}
                self._send({"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                            "choices": [{"index": 0, "finish_reason": "stop", "message": msg}],
                            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})

            def _send(self, obj: object, status: int = 200) -> None:
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):
                    self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def stub() -> Iterator[_Stub]:
    s = _Stub()
    yield s
    s.httpd.shutdown()


def _eval(home: Path, url: str, env: str, *extra: str):  # type: ignore[no-untyped-def]
    from diffprompt import cli

    cli._register()
    args = ["--db", f"sqlite:///{home / 'e.db'}", "eval", "--slot", "s", "--env", env, "--model", "openai:m",
            "--base-url", url, "--limit", "6", "--concurrency", "1", *extra]
    return CliRunner().invoke(cli.app, args, env={"OPENAI_API_KEY": "k"})


def test_garbage_replies_are_counted_unparsed_and_recorded_with_their_reason(home: Path, stub: _Stub,
                                                                            sentiment_file: Path) -> None:
    res = _eval(home, stub.url, f"dataset:{sentiment_file}", "--init", "--record", "--json")
    assert res.exit_code == 0, (res.output, res.exception)
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["n"] == out["unparsed"] == out["recorded"] == 6 and out["score"] == 0.0
    assert out["errors"] == 0 and out["first_error"] is None and out["model_calls"] == 6
    store = open_store(f"sqlite:///{home / 'e.db'}")
    try:
        traces = store.list_traces("s")
        assert len(traces) == 6 and all(t.metadata["unparsed"] and t.metadata["parse"] == "none" for t in traces)
        notes = [f.text for f in store.feedback_for([t.id for t in traces]) if f.kind == "comment"]
        assert len(notes) == 6 and all("did not name one of the labels" in (n or "") for n in notes)
    finally:
        store.close()


def test_a_server_that_fails_every_call_is_one_error_and_nothing_recorded(home: Path, stub: _Stub,
                                                                         sentiment_file: Path) -> None:
    stub.reply = None
    res = _eval(home, stub.url, f"dataset:{sentiment_file}", "--init", "--record", "--json")
    assert res.exit_code != 0
    assert "every episode failed (6 of 6)" in str(res.exception)
    store = open_store(f"sqlite:///{home / 'e.db'}")
    try:
        assert store.count_traces() == 0
    finally:
        store.close()
