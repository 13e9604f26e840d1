"""Issue 13 item 15: the simulated model server checks the key before the body, caps the body, and a
password in a base URL never appears in an error."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from diffprompt.errors import ConfigError, DiffpromptError, ModelError
from diffprompt.urls import mask_url, scrub
from tau_envs.serve import ServerHandle, start_server

SECRET = "s3cret-pw"
URL = f"http://alice:{SECRET}@127.0.0.1:9/v1"  # nothing listens on port 9


def _reply(messages, tools, seed):  # type: ignore[no-untyped-def]
    return {"role": "assistant", "content": "ok"}


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    with start_server(responder=_reply, api_key="k", max_body_bytes=4096) as h:
        yield h


def _raw(h: ServerHandle, head: str) -> tuple[int, dict]:
    """Send only the request head (never a body) and read the answer until the server closes."""
    with socket.create_connection(("127.0.0.1", h.port), timeout=60) as s:  # hang guard: a server
        s.sendall(head.encode("latin-1"))  # that waits for a body that never comes fails here
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    status = int(data.split(b" ", 2)[1])
    return status, json.loads(data.split(b"\r\n\r\n", 1)[1])


def _post_head(length: str, key: str = "k") -> str:
    return (
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {key}\r\nContent-Length: {length}\r\n\r\n"
    )


@pytest.mark.parametrize(
    ("length", "key", "status", "needle"),
    [
        (str(10**12), "wrong", 401, "invalid API key"),  # the key is checked before any body is read
        (str(10**12), "k", 413, "limit"),
        ("4097", "k", 413, "limit"),
        ("-1", "k", 400, "Content-Length"),
        ("abc", "k", 400, "Content-Length"),
        ("1e3", "k", 400, "Content-Length"),
    ],
)
def test_bad_lengths_and_keys_are_answered_without_reading_the_body(server, length, key, status, needle) -> None:  # type: ignore[no-untyped-def]
    got, body = _raw(server, _post_head(length, key))
    assert got == status and needle in body["error"]["message"]


def test_a_chunked_body_is_refused_and_the_server_keeps_serving(server) -> None:  # type: ignore[no-untyped-def]
    head = ("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
            "Transfer-Encoding: chunked\r\n\r\n")
    assert _raw(server, head)[0] == 411
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    body = json.dumps({"model": "sim", "messages": [{"role": "user", "content": "hi"}]})
    conn.request("POST", "/v1/chat/completions", body, {"Authorization": "Bearer k"})
    resp = conn.getresponse()
    assert resp.status == 200 and json.loads(resp.read())["choices"][0]["message"]["content"] == "ok"
    conn.close()


def test_mask_url_hides_passwords_and_secret_parameters() -> None:
    assert mask_url(URL) == "http://alice:***@127.0.0.1:9/v1"
    assert mask_url("postgresql+psycopg://u:p@h:5432/db") == "postgresql+psycopg://u:***@h:5432/db"
    assert mask_url("https://h/v1?api_key=abc123&x=1") == "https://h/v1?api_key=***&x=1"
    assert mask_url("http://127.0.0.1:8089/v1") == "http://127.0.0.1:8089/v1"
    assert SECRET not in scrub(f"failed: {URL} said {SECRET}", URL)


def test_store_and_base_url_share_the_masking() -> None:
    from diffprompt.store.engine import safe_url

    assert safe_url("postgresql+psycopg://u:pw@h/db") == mask_url("postgresql+psycopg://u:pw@h/db")


def test_a_password_in_base_url_is_never_printed() -> None:
    from diffprompt.llm import ChatClient, check_reachable

    with pytest.raises(ConfigError) as exc:
        check_reachable("openai:m", base_url=URL, api_key="k", timeout_s=5)
    assert SECRET not in str(exc.value) and "alice:***@127.0.0.1:9" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        check_reachable("openai:m", base_url=URL, api_key=None)
    assert SECRET not in str(exc.value)
    client = ChatClient("m", base_url=URL, api_key="k", max_retries=0, timeout_s=5)
    with pytest.raises(ModelError) as mexc:
        client.complete([{"role": "user", "content": "hi"}])
    assert SECRET not in str(mexc.value)


def test_tau_run_base_url_password_is_masked(invoke, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    res = invoke("tau", "run", "--domain", "airline", "--model", "openai:m", "--base-url", URL, "--no-record", ok=False)
    assert isinstance(res.exception, DiffpromptError) and SECRET not in str(res.exception)
    assert SECRET not in res.output
