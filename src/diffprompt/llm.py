"""Model clients over the OpenAI SDK for any OpenAI-compatible endpoint, with call/token/cost metering.

Three things live here, all resolved once at construction (no string dispatch inside loops):

- ``parse_model_spec`` / ``make_chat_model``: the *target* model of an agent as a LangChain chat model
  (``"openai:NAME"`` → ``ChatOpenAI`` on any compatible base URL; ``"sim"`` parses here but is built
  by ``diffprompt.integrations.tau.target_model``: the core never imports ``tau_envs``).
- ``ChatClient``: a plain completion client (``complete(messages) -> Completion``) for judges, user
  simulators and AR editors; ``ScriptedChatClient`` is its fake.
- ``CallMeter``: thread-safe counters of calls, tokens and dollars with optional budgets that raise
  ``BudgetExceeded``; every client can share one meter.

``check_reachable`` fails fast (before any work starts) when an ``openai:`` spec has no API key or its
base URL does not answer. Nothing here touches the network at import or in constructors.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from diffprompt.errors import ConfigError, ModelError
from diffprompt.metering import DEFAULT_PRICES as DEFAULT_PRICES
from diffprompt.metering import CallMeter as CallMeter
from diffprompt.metering import MeterCallback as MeterCallback
from diffprompt.metering import MeterSnapshot as MeterSnapshot
from diffprompt.types import Usage

if TYPE_CHECKING:
    from langchain_core.callbacks import BaseCallbackHandler

Provider = Literal["sim", "openai"]
PROVIDERS: tuple[Provider, ...] = ("sim", "openai")
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"

@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSpec:
    """A parsed model spec: ``sim`` or ``openai:NAME`` (any OpenAI-compatible server)."""

    provider: Provider
    name: str

    def __str__(self) -> str:
        return self.provider if self.provider == "sim" else f"{self.provider}:{self.name}"


LOCAL_API_KEY = "local"


def resolve_api_key(api_key: str | None, base_url: str | None) -> str | None:
    """``api_key``, or a placeholder key for a server on this machine; else ``None``.

    llama.cpp, vLLM and Ollama on 127.0.0.1 need no key, but the OpenAI client refuses to send none.
    """
    from diffprompt.urls import is_loopback

    return api_key or (LOCAL_API_KEY if is_loopback(base_url) else None)


def parse_model_spec(spec: str) -> ModelSpec:
    """Parse ``"sim"`` or ``"openai:NAME"``; anything else raises ``ConfigError`` saying what is allowed."""
    text = (spec or "").strip()
    if text == "sim":
        return ModelSpec(provider="sim", name="sim")
    provider, sep, name = text.partition(":")
    if not sep or not name.strip() or provider not in PROVIDERS or provider == "sim":
        raise ConfigError(
            f"unknown model spec {spec!r}: use 'sim' (offline simulated model) or 'openai:NAME' "
            "(any OpenAI-compatible endpoint; set OPENAI_BASE_URL for vLLM/Ollama/...)"
        )
    return ModelSpec(provider="openai", name=name.strip())


@dataclass(frozen=True, kw_only=True, slots=True)
class ModelSettings:
    """Request settings sent with every call of a model (target, judge, editor, user simulator).

    ``max_tokens`` bounds every reply (a model without a limit can generate for minutes after its
    client timed out); ``timeout_s`` bounds every HTTP request; ``tool_choice`` is sent whenever tools
    are bound (llama.cpp's server ignores ``tools`` without it); ``extra_body`` is merged into each
    request body (e.g. ``{"top_k": 40}`` for vLLM / llama.cpp, ``{"keep_alive": 0}`` for Ollama).
    """

    max_tokens: int = 512
    timeout_s: float = 120.0
    max_retries: int = 1
    tool_choice: str | None = "auto"
    extra_body: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ConfigError(f"model setting max_tokens must be >= 1, got {self.max_tokens}")
        if self.timeout_s <= 0:
            raise ConfigError(f"model setting timeout_s must be > 0, got {self.timeout_s}")
        if self.max_retries < 0:
            raise ConfigError(f"model setting max_retries must be >= 0, got {self.max_retries}")
        if self.tool_choice not in (None, "auto", "required", "none"):
            raise ConfigError(f"model setting tool_choice must be auto|required|none, got {self.tool_choice!r}")
        if not isinstance(self.extra_body, Mapping):
            raise ConfigError("model setting extra_body must be a JSON object")

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_tokens": self.max_tokens,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "tool_choice": self.tool_choice,
            "extra_body": dict(self.extra_body),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ModelSettings:
        """From a (partial) dict, e.g. ``--model-settings`` JSON or a config table; unknown keys are errors."""
        d = dict(data or {})
        known = {"max_tokens", "timeout_s", "max_retries", "tool_choice", "extra_body"}
        if set(d) - known:
            raise ConfigError(f"unknown model settings {sorted(set(d) - known)}; known: {sorted(known)}")
        try:
            return cls(**d)
        except TypeError as exc:
            raise ConfigError(f"bad model settings: {exc}") from None


# ------------------------------------------------------------------------------------ completion client
@dataclass(frozen=True, kw_only=True, slots=True)
class Completion:
    """One completion: the assistant text, its usage (with cost) and why it stopped."""

    text: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish_reason: str | None = None


class CompletionClient(Protocol):
    """What judges, user simulators and AR editors need from a model: chat messages in, text out."""

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> Completion:
        """Return the assistant's reply to OpenAI-format ``messages``; raise ``ModelError`` on failure."""
        ...


class StructuredClient(CompletionClient, Protocol):
    """A ``CompletionClient`` that can constrain its reply to a JSON schema (``response_format``).

    llama.cpp, vLLM and OpenAI all constrain decoding to the schema; callers still parse strictly.
    """

    def complete_json(
        self,
        messages: Sequence[Mapping[str, Any]],
        schema: Mapping[str, Any],
        *,
        name: str = "answer",
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> Completion:
        """Like ``complete`` with ``response_format={"type": "json_schema", ...}``; the text is the JSON."""
        ...


def json_schema_format(schema: Mapping[str, Any], name: str = "answer") -> dict[str, Any]:
    """The OpenAI ``response_format`` for ``schema`` (also understood by llama.cpp's server and vLLM)."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": dict(schema), "strict": True}}


class ChatClient:
    """``StructuredClient`` over the OpenAI SDK (``chat.completions``) for any compatible base URL.

    The SDK client is created lazily on the first call (no network or sockets in the constructor).
    Every request carries a token limit (``settings.max_tokens`` unless the call passes one) and the
    settings' ``extra_body``; the HTTP timeout is ``settings.timeout_s``. Structured output is sent as
    ``response_format={"type": "json_schema", ...}``; a server that refuses that form (llama-cpp-python)
    gets ``{"type": "json_object", "schema": ...}`` from then on. With a ``redactor`` every
    outgoing message is PII-redacted first (``diffprompt.redact``). Transport errors after the SDK's own
    retries become ``ModelError``; budgets raise ``BudgetExceeded``.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        meter: CallMeter | None = None,
        seed: int | None = None,
        timeout_s: float | None = None,
        max_retries: int | None = None,
        settings: ModelSettings | None = None,
        redactor: Any = None,
    ) -> None:
        base = settings or ModelSettings()
        self.settings = ModelSettings(
            max_tokens=base.max_tokens,
            timeout_s=base.timeout_s if timeout_s is None else timeout_s,
            max_retries=base.max_retries if max_retries is None else max_retries,
            tool_choice=base.tool_choice,
            extra_body=base.extra_body,
        )
        self.model = model
        self.base_url = base_url
        self.api_key = resolve_api_key(api_key, base_url)
        self.meter = meter
        self.seed = seed
        self.redactor = redactor
        self.timeout_s = self.settings.timeout_s
        self.max_retries = self.settings.max_retries
        self._client: Any = None
        self._lock = threading.Lock()
        self._json_object = False  # set after a server refused the json_schema response format

    def with_seed(self, seed: int | None) -> ChatClient:
        """A sibling client sending ``seed`` with every request; shares the SDK client and meter."""
        sib = ChatClient(
            self.model,
            base_url=self.base_url,
            api_key=self.api_key,
            meter=self.meter,
            seed=seed,
            settings=self.settings,
            redactor=self.redactor,
        )
        sib._client = self._sdk() if self.api_key else None
        return sib

    def _sdk(self) -> Any:
        with self._lock:
            if self._client is None:
                import openai

                if not self.api_key:
                    raise ConfigError(
                        f"model {self.model!r} needs an API key: set OPENAI_API_KEY (any non-empty value "
                        "for a local OpenAI-compatible server)"
                    )
                self._client = openai.OpenAI(
                    api_key=self.api_key,
                    base_url=self.base_url,
                    timeout=self.timeout_s,
                    max_retries=self.max_retries,
                )
            return self._client

    def _format(self, fmt: Mapping[str, Any]) -> dict[str, Any]:
        return _json_object_format(fmt) if self._json_object else dict(fmt)

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> Completion:
        return self._create(messages, temperature=temperature, max_tokens=max_tokens, response_format=None)

    def complete_json(
        self,
        messages: Sequence[Mapping[str, Any]],
        schema: Mapping[str, Any],
        *,
        name: str = "answer",
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> Completion:
        fmt = json_schema_format(schema, name)
        return self._create(messages, temperature=temperature, max_tokens=max_tokens, response_format=fmt)

    def _create(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float,
        max_tokens: int | None,
        response_format: Mapping[str, Any] | None,
    ) -> Completion:
        if self.meter is not None:
            self.meter.check()
        msgs = [dict(m) for m in messages]
        if self.redactor is not None:
            msgs = self.redactor.redact_messages(msgs)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": msgs,
            "temperature": temperature,
            "max_tokens": max_tokens if max_tokens is not None else self.settings.max_tokens,
        }
        if response_format is not None:
            kwargs["response_format"] = self._format(response_format)
        if self.settings.extra_body:
            kwargs["extra_body"] = dict(self.settings.extra_body)
        if self.seed is not None:
            kwargs["seed"] = self.seed
        import openai

        try:
            try:
                resp = self._sdk().chat.completions.create(**kwargs)
            except openai.APIStatusError as exc:
                # 400/422, or llama-cpp-python's 500 for a request-validation error naming the field
                refused = exc.status_code in (400, 422) or "response_format" in str(exc)
                if response_format is None or self._json_object or not refused:
                    raise
                # llama-cpp-python's server knows only {"type": "json_object", "schema": ...}: use that
                # form from now on (same constraint, older spelling)
                self._json_object = True
                kwargs["response_format"] = self._format(response_format)
                resp = self._sdk().chat.completions.create(**kwargs)
        except openai.OpenAIError as exc:
            from diffprompt.urls import mask_url, scrub

            raise ModelError(
                f"{self.model} at {mask_url(self.base_url or DEFAULT_OPENAI_BASE_URL)} failed: "
                f"{type(exc).__name__}: {scrub(str(exc), self.base_url)}"
            ) from exc
        if not resp.choices:
            raise ModelError(f"{self.model} returned no choices")
        choice = resp.choices[0]
        u = resp.usage
        n_in, n_out = (u.prompt_tokens or 0, u.completion_tokens or 0) if u is not None else (0, 0)
        usage = (
            self.meter.record(self.model, n_in, n_out)
            if self.meter is not None
            else Usage(input_tokens=n_in, output_tokens=n_out)
        )
        return Completion(
            text=choice.message.content or "",
            usage=usage,
            model=resp.model or self.model,
            finish_reason=choice.finish_reason,
        )


def _json_object_format(fmt: Mapping[str, Any]) -> dict[str, Any]:
    """``json_schema`` response format → the ``json_object`` + ``schema`` form (llama-cpp-python)."""
    schema = (fmt.get("json_schema") or {}).get("schema") if fmt.get("type") == "json_schema" else None
    return {"type": "json_object", "schema": dict(schema)} if schema is not None else dict(fmt)


class RedactingClient:
    """Wraps any ``CompletionClient`` so every message it sends is PII-redacted first.

    The one redaction step for prompts leaving for judges, critics, fillers and writers; ``redactor``
    defaults to ``diffprompt.redact.default_redactor()``.
    """

    def __init__(self, inner: Any, redactor: Any = None) -> None:
        from diffprompt.redact import default_redactor

        self.inner = inner
        self.redactor = redactor or default_redactor()
        self.model = str(getattr(inner, "model", ""))

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> Completion:
        return self.inner.complete(  # type: ignore[no-any-return]
            self.redactor.redact_messages(messages), temperature=temperature, max_tokens=max_tokens
        )

    def complete_json(
        self,
        messages: Sequence[Mapping[str, Any]],
        schema: Mapping[str, Any],
        *,
        name: str = "answer",
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> Completion:
        return self.inner.complete_json(  # type: ignore[no-any-return]
            self.redactor.redact_messages(messages), schema, name=name, temperature=temperature, max_tokens=max_tokens
        )


class ScriptedChatClient:
    """Fake ``CompletionClient``: returns ``replies`` in order (cycling), records every request."""

    def __init__(
        self, replies: Sequence[str], *, meter: CallMeter | None = None, model: str = "scripted"
    ) -> None:
        if not replies:
            raise ConfigError("ScriptedChatClient needs at least one reply")
        self.replies = list(replies)
        self.requests: list[list[dict[str, Any]]] = []
        self.schemas: list[dict[str, Any]] = []
        self.meter = meter
        self.model = model
        self._lock = threading.Lock()

    def complete(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> Completion:
        if self.meter is not None:
            self.meter.check()
        with self._lock:
            text = self.replies[len(self.requests) % len(self.replies)]
            self.requests.append([dict(m) for m in messages])
        n_in = sum(len(str(m.get("content") or "").split()) for m in messages)
        n_out = len(text.split())
        usage = (
            self.meter.record(self.model, n_in, n_out)
            if self.meter is not None
            else Usage(input_tokens=n_in, output_tokens=n_out)
        )
        return Completion(text=text, usage=usage, model=self.model, finish_reason="stop")

    def complete_json(
        self,
        messages: Sequence[Mapping[str, Any]],
        schema: Mapping[str, Any],
        *,
        name: str = "answer",
        temperature: float = 0.0,
        max_tokens: int | None = None,
    ) -> Completion:
        """Same as ``complete`` (the scripted reply is returned as is); the schema is recorded."""
        with self._lock:
            self.schemas.append(dict(schema))
        return self.complete(messages, temperature=temperature, max_tokens=max_tokens)


# ------------------------------------------------------------------------------------------ chat models
def make_chat_model(
    spec: str | ModelSpec,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    seed: int = 0,
    domain: str | None = None,
    meter: CallMeter | None = None,
    temperature: float = 0.0,
    timeout_s: float | None = None,
    max_retries: int | None = None,
    settings: ModelSettings | None = None,
) -> Any:
    """The agent's target model as a LangChain ``BaseChatModel`` (supports ``bind_tools``).

    ``openai:NAME`` is a ``ChatOpenAI`` with the local-server fixes of ``diffprompt.llm_compat``
    (``tool_choice`` sent with tools, no ``content: null``, a token limit on every call), the
    ``settings``' token limit, timeout, retries and ``extra_body``.

    ``sim`` is refused here (``diffprompt.integrations.tau.target_model`` builds it); ``openai:NAME`` →
    ``langchain_openai.ChatOpenAI`` against ``base_url`` (default api.openai.com). With a ``meter``,
    every call is checked against its budgets and its usage/cost recorded.
    """
    ms = parse_model_spec(spec) if isinstance(spec, str) else spec
    callbacks: list[BaseCallbackHandler] | None = None if meter is None else [MeterCallback(meter, ms.name)]
    if ms.provider == "sim":  # the simulated τ policy lives in the τ integration, not in the core
        raise ConfigError(
            "model 'sim' is the simulated τ target: build it with diffprompt.integrations.tau.target_model("
            "'sim', domain=...), or serve it with 'diffprompt sim serve' and use --model openai:sim"
        )
    api_key = resolve_api_key(api_key, base_url)
    if not api_key:
        raise ConfigError(
            f"--model {ms} needs an API key: set OPENAI_API_KEY (any non-empty value for a local "
            "OpenAI-compatible server such as vLLM or Ollama)"
        )
    from pydantic import SecretStr

    from diffprompt.llm_compat import compat_class

    st = settings or ModelSettings()
    return compat_class()(
        model=ms.name,
        base_url=base_url,
        api_key=SecretStr(api_key),
        temperature=temperature,
        seed=seed,
        timeout=st.timeout_s if timeout_s is None else timeout_s,
        max_retries=st.max_retries if max_retries is None else max_retries,
        max_tokens=st.max_tokens,
        extra_body=dict(st.extra_body) or None,
        default_tool_choice=st.tool_choice,
        callbacks=callbacks,
    )


# ------------------------------------------------------------------------------------------- fail fast
@dataclass(frozen=True, kw_only=True, slots=True)
class Reachability:
    """What ``check_reachable`` found: the endpoint, the model ids it lists, and whether it was busy.

    ``busy``: the server accepted the connection but did not answer in time (a single-slot local
    server still generating for an earlier client); work proceeds, the calls wait their turn.
    """

    base_url: str
    models: tuple[str, ...] = ()
    busy: bool = False


def check_reachable(
    spec: str | ModelSpec, *, base_url: str | None = None, api_key: str | None = None, timeout_s: float = 5.0
) -> Reachability | None:
    """Fail fast for an ``openai:`` spec: no API key, an unreachable base URL, or a rejected key.

    Calls ``GET {base_url}/models`` once (a cheap, free endpoint on OpenAI, vLLM, Ollama, LiteLLM).
    ``sim`` needs nothing and returns None. A server that accepts the connection but answers nothing
    within ``timeout_s`` is reported ``busy`` (not unreachable). Raises ``ConfigError`` whose message
    names the fix.
    """
    ms = parse_model_spec(spec) if isinstance(spec, str) else spec
    if ms.provider == "sim":
        return None
    from diffprompt.urls import mask_url, scrub

    url = (base_url or DEFAULT_OPENAI_BASE_URL).rstrip("/")
    shown = mask_url(url)  # a password in --base-url is never printed
    api_key = resolve_api_key(api_key, url)
    if not api_key:
        raise ConfigError(
            f"{ms} needs an API key: set OPENAI_API_KEY (any non-empty value for a local "
            f"OpenAI-compatible server) — base URL {shown}"
        )
    import httpx

    try:
        resp = httpx.get(f"{url}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout_s)
    except httpx.ReadTimeout:  # connected, no answer yet: busy, not down
        return Reachability(base_url=url, busy=True)
    except (httpx.HTTPError, OSError) as exc:
        raise ConfigError(
            f"cannot reach the OpenAI-compatible endpoint {shown} for {ms} "
            f"({type(exc).__name__}: {scrub(str(exc), url)}); "
            "check OPENAI_BASE_URL / --base-url and that the server is running"
        ) from None
    if resp.status_code in (401, 403):
        raise ConfigError(
            f"{shown} rejected the API key for {ms} (HTTP {resp.status_code}); check OPENAI_API_KEY"
        )
    models: tuple[str, ...] = ()
    if resp.status_code == 200:
        try:
            models = tuple(str(m.get("id")) for m in resp.json().get("data", []) if isinstance(m, dict))
        except ValueError:
            models = ()
    elif resp.status_code == 503:  # "loading model" / all slots busy (llama.cpp, vLLM)
        return Reachability(base_url=url, busy=True)
    elif resp.status_code >= 500:
        raise ConfigError(f"{shown} answered HTTP {resp.status_code} for {ms}; is the server healthy?")
    return Reachability(base_url=url, models=models)
