"""An OpenAI-compatible HTTP server on 127.0.0.1 serving the simulated target model.

It lets offline runs exercise the real ``openai`` / ``langchain-openai`` client path end to end:

- ``GET  /v1/models`` → the one model id served (default ``sim``);
- ``POST /v1/chat/completions`` → ``SimulatedPolicy.respond(messages, tools)`` as a ``chat.completion``
  with ``tool_calls`` (``finish_reason`` ``tool_calls`` or ``stop``) and ``usage``. The request's
  ``seed`` (if any) seeds the policy; otherwise the server's seed does. ``stream: true`` is refused
  with a 400 (the τ runner never streams).

Token counts are an estimate (``ceil(chars / 4)`` of the message contents, tool-call arguments and
tool schemas), good enough for metering offline runs. Errors are OpenAI-style JSON bodies. Built on
the stdlib ``ThreadingHTTPServer`` with HTTP/1.1 keep-alive; nothing starts at import.

Requests are checked before their body is read: the API key first (401), then ``Content-Length``
(missing on a chunked body: 411; not a number or negative: 400; over ``max_body_bytes``, 8 MiB by
default: 413). A request refused before its body was read closes the connection.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from diffprompt.errors import ConfigError
from tau_envs.tokens import completion_tokens, estimate_tokens, prompt_tokens

__all__ = ["ServerHandle", "completion_body", "estimate_tokens", "policy_responder", "start_server"]

MAX_BODY_BYTES = 8 * 1024 * 1024  # far above any chat request; a 10**12 Content-Length is a 413
Responder = Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]], int | None], dict[str, Any]]


def policy_responder(
    domain: str | None = None, *, seed: int = 0, threshold: float | None = None, error_rate: float = 0.0
) -> Responder:
    """A responder backed by ``tau_envs.sim.SimulatedPolicy`` (one policy per distinct request seed)."""
    from tau_envs.sim import SimulatedPolicy

    kwargs: dict[str, Any] = {"domain": domain, "error_rate": error_rate}
    if threshold is not None:
        kwargs["threshold"] = threshold
    cache: dict[int, Any] = {}
    lock = threading.Lock()

    def respond(
        messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]], req_seed: int | None
    ) -> dict[str, Any]:
        s = seed if req_seed is None else int(req_seed)
        with lock:
            policy = cache.get(s)
            if policy is None:
                policy = cache[s] = SimulatedPolicy(seed=s, **kwargs)
        return dict(policy.respond(list(messages), list(tools)))

    return respond


def completion_body(model: str, message: Mapping[str, Any], n_prompt: int) -> dict[str, Any]:
    """A ``chat.completion`` response object for one assistant ``message``."""
    n_out = completion_tokens(message)
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "diffprompt-sim",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": message.get("content"),
                    **({"tool_calls": message["tool_calls"]} if message.get("tool_calls") else {}),
                },
                "finish_reason": "tool_calls" if message.get("tool_calls") else "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": n_prompt,
            "completion_tokens": n_out,
            "total_tokens": n_prompt + n_out,
        },
    }


@dataclass(eq=False)
class _ServerState:
    responder: Responder
    model: str
    api_key: str | None
    max_body_bytes: int = MAX_BODY_BYTES
    requests: int = 0
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the OpenAI client reuses connections
    server_version = "diffprompt-sim/1"
    state: _ServerState  # set on the subclass made per server

    def setup(self) -> None:
        super().setup()
        # headers and body go out in two writes; without NODELAY, Nagle + delayed ACK stall each reply
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # quiet; the CLI reports counts
        return

    def _send(self, status: int, body: Mapping[str, Any], *, close: bool = False) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:  # the request body was not read: the connection cannot be reused
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error", *, close: bool = False) -> None:
        with self.state.lock:
            self.state.errors += 1
        self._send(status, {"error": {"message": message, "type": kind, "param": None, "code": None}}, close=close)

    def _authorized(self, *, close: bool = False) -> bool:
        if not self.state.api_key:
            return True
        if self.headers.get("Authorization", "") == f"Bearer {self.state.api_key}":
            return True
        self._error(401, "invalid API key", "authentication_error", close=close)
        return False

    def _body_length(self) -> int | None:
        """The checked ``Content-Length`` (0 when absent), or None after answering 400/411/413."""
        raw = self.headers.get("Content-Length")
        if raw is None:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                self._error(411, "send the body with a Content-Length (chunked bodies are not supported)", close=True)
                return None
            return 0
        text = raw.strip()
        if not text.isdigit() or not text.isascii():
            self._error(400, f"bad Content-Length {raw[:40]!r}: give the body size in bytes", close=True)
            return None
        n = int(text)
        if n > self.state.max_body_bytes:
            self._error(
                413, f"request body of {n} bytes is over the {self.state.max_body_bytes}-byte limit", close=True
            )
            return None
        return n

    def do_GET(self) -> None:
        if not self._authorized():
            return
        path = self.path.split("?")[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": self.state.model, "object": "model", "created": 0, "owned_by": "diffprompt"}
                    ],
                },
            )
        elif path in ("", "/health", "/v1"):
            self._send(200, {"status": "ok", "model": self.state.model})
        else:
            self._error(404, f"unknown path {self.path}; serving /v1/chat/completions and /v1/models")

    def do_POST(self) -> None:
        if not self._authorized(close=True):  # the key first: an unauthorised body is never read
            return
        length = self._body_length()
        if length is None:
            return
        raw = self.rfile.read(length) if length else b""
        if self.path.split("?")[0].rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"unknown path {self.path}; POST /v1/chat/completions")
            return
        try:
            req = json.loads(raw or b"{}")
            messages = req["messages"]
            if not isinstance(messages, list) or not messages:
                raise ValueError("'messages' must be a non-empty list")
        except (ValueError, KeyError, TypeError) as exc:
            self._error(400, f"bad request body: {exc}")
            return
        if req.get("stream"):
            self._error(400, "streaming is not supported by the simulated model; send stream=false")
            return
        tools = [t for t in req.get("tools") or [] if isinstance(t, dict)]
        seed = req.get("seed")
        try:
            message = self.state.responder(messages, tools, seed if isinstance(seed, int) else None)
        except Exception as exc:  # the policy failing on one request is that request's 500
            self._error(500, f"simulated model failed: {type(exc).__name__}: {exc}", "server_error")
            return
        with self.state.lock:
            self.state.requests += 1
        self._send(
            200,
            completion_body(
                str(req.get("model") or self.state.model), message, prompt_tokens(messages, tools)
            ),
        )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # many concurrent episodes open connections at once


@dataclass(eq=False)
class ServerHandle:
    """A running server: ``base_url`` (ends in ``/v1``), request/error counts, ``close()``."""

    server: ThreadingHTTPServer
    thread: threading.Thread | None
    state: _ServerState

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> int:
        return self.state.requests

    @property
    def errors(self) -> int:
        return self.state.errors

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``close()`` (or KeyboardInterrupt)."""
        self.server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        if self.thread is not None:
            self.server.shutdown()
        self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_server(
    domain: str | None = None,
    *,
    port: int = 0,
    seed: int = 0,
    host: str = "127.0.0.1",
    model: str = "sim",
    api_key: str | None = None,
    responder: Responder | None = None,
    threshold: float | None = None,
    error_rate: float = 0.0,
    background: bool = True,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> ServerHandle:
    """Bind the server (``port=0`` picks a free port) and, with ``background``, serve on a daemon thread.

    ``responder`` replaces the simulated policy (tests); ``api_key`` makes the server require
    ``Authorization: Bearer <key>``; a request body over ``max_body_bytes`` is refused with a 413. Only
    loopback hosts are allowed. Raises ``ConfigError`` when the port is taken.
    """
    if max_body_bytes < 1:
        raise ConfigError(f"max_body_bytes must be >= 1, not {max_body_bytes}")
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"the simulated model server binds to loopback only, not {host!r}")
    state = _ServerState(
        responder=responder
        or policy_responder(domain, seed=seed, threshold=threshold, error_rate=error_rate),
        model=model,
        api_key=api_key,
        max_body_bytes=max_body_bytes,
    )
    handler = type("SimHandler", (_Handler,), {"state": state})
    try:
        server = _Server((host, port), handler)
    except OSError as exc:
        raise ConfigError(f"cannot bind {host}:{port} ({exc}); choose another --port") from None
    thread = None
    if background:
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name=f"sim-server-{server.server_address[1]}",
            daemon=True,
        )
        thread.start()
    return ServerHandle(server=server, thread=thread, state=state)
