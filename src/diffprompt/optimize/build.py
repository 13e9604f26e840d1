"""Builders from specs (used by the CLI, the scheduler, the demo and the benchmark).

Specs are resolved here, once, into the seam objects the round takes: ``build_env`` ("tau:airline",
"tau:airline:DIR"), ``build_editor`` ("dlm" | "ar" | "rewrite" | "oracle"...), ``build_blamer`` and
``build_likelihood``. The τ parts (``build_domain``, ``build_env``, the offline τ judge) delegate to
``diffprompt.integrations.tau``, the one place that imports ``tau_envs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from diffprompt.editing import Editor
from diffprompt.errors import ConfigError
from diffprompt.types import PromptVersion, TraceWithFeedback

EditorKind = Literal["dlm", "ar", "rewrite", "oracle", "oracle-rewrite"]
EDITORS: tuple[EditorKind, ...] = ("dlm", "ar", "rewrite", "oracle", "oracle-rewrite")
LM_EDITORS: tuple[EditorKind, ...] = ("ar", "rewrite")  # need --editor-model


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvSpec:
    """A parsed ``--env``: ``tau:<domain>`` (generated world) or ``tau:<domain>:<data dir>``."""

    kind: Literal["tau"]
    domain: str
    data_dir: Path | None = None


# Env kinds beside τ: ``kind -> "module:function"``. The function takes the spec string and keyword
# arguments (model, base_url, api_key, meter, judge, protected) and returns a bundle with ``env``,
# ``blamer`` and ``seed_prompt``; ``env_plugin`` resolves it (None for τ specs).
ENV_PLUGINS: dict[str, str] = {
    "dataset": "diffprompt.datasets.build:build_bundle",
    "recorded": "diffprompt.optimize.recorded_build:build_bundle",
}


def env_plugin(spec: str) -> Any:
    """The registered builder for ``spec``'s kind (``dataset:PATH`` …), or None (τ and unknown)."""
    import importlib

    target = ENV_PLUGINS.get(spec.partition(":")[0])
    if target is None:
        return None
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def parse_env_spec(spec: str) -> EnvSpec:
    kind, _, rest = spec.partition(":")
    domain, _, path = rest.partition(":")
    if kind != "tau" or domain not in ("airline", "retail"):
        raise ConfigError(
            f"unknown --env {spec!r}: use tau:airline, tau:retail, tau:<domain>:<data dir> or dataset:PATH.jsonl"
        )
    return EnvSpec(kind="tau", domain=domain, data_dir=Path(path).expanduser() if path else None)


def build_domain(
    spec: EnvSpec,
    *,
    home: Path,
    split: str = "test",
    world_seed: int | None = None,
    world_users: int | None = None,
    world_tasks: int | None = None,
) -> Any:
    """Load the τ domain of an env spec through ``integrations.tau.build_tau`` (cached in ``home``).

    World sizes default to ``DEFAULT_SCENARIO``'s, as everywhere else.
    """
    from diffprompt.integrations.tau import build_tau

    setup = build_tau(spec.domain, home=home, data_dir=spec.data_dir, world_seed=world_seed,
                      world_users=world_users, world_tasks=world_tasks)
    return setup.domain(split)


def build_env(
    domain: Any,
    *,
    model: str = "sim",
    base_url: str | None = None,
    api_key: str | None = None,
    user: str = "scripted",
    meter: Any = None,
    max_steps: int = 30,
) -> Any:
    """A ``TauReplay`` on ``domain`` with the target ``model`` spec and ``user`` spec (``build_tau``)."""
    from diffprompt.integrations.tau import build_tau

    setup = build_tau(domain.name, home=None, model=model, user=user,
                      base_url=base_url, api_key=api_key, meter=meter, max_steps=max_steps)
    return setup.replay(domain)


def check_editor(kind: str, model: str | None) -> None:
    """``ConfigError`` (naming the fix) for an unknown editor or an LM baseline without a model."""
    if kind not in EDITORS:
        raise ConfigError(f"unknown editor {kind!r}; choose one of {', '.join(EDITORS)}")
    if kind in LM_EDITORS and not model:
        raise ConfigError(
            f"--editor {kind} is a language-model baseline and needs a model: pass --editor-model NAME "
            "(any OpenAI-compatible endpoint, e.g. the local SmolLM2 server), or use --editor dlm "
            "(offline) or --editor oracle (a labelled ceiling)"
        )


def build_editor(
    kind: str,
    *,
    dlm: Any = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    meter: Any = None,
    dlm_options: Mapping[str, Any] | None = None,
    model_settings: Mapping[str, Any] | None = None,
) -> Editor:
    """The editor for ``kind`` (one of ``EDITORS``).

    ``dlm``: a loaded ``DiffusionLM`` (default: the built-in model). ``ar`` and ``rewrite`` are
    language-model baselines and need ``model`` (an OpenAI-compatible model name, e.g. the local
    SmolLM2 server of the real-model tier); without one they are a ``ConfigError``. ``oracle`` and
    ``oracle-rewrite`` paste the blamer's hints: labelled ceilings, not baselines.
    """
    check_editor(kind, model)
    if kind == "dlm":
        from diffprompt.dlm.editor import DLMEditor

        if dlm is None:
            from diffprompt.dlm.model import load_builtin

            dlm = load_builtin()
        return DLMEditor(dlm, **dict(dlm_options or {}))
    if kind in ("oracle", "oracle-rewrite"):
        from diffprompt.optimize.oracle import OracleEditor, OracleRewriteEditor

        return OracleEditor() if kind == "oracle" else OracleRewriteEditor()
    from diffprompt.llm import ChatClient, ModelSettings, RedactingClient
    from diffprompt.optimize import editors as ed
    from diffprompt.optimize.recorded_build import model_name

    # every prompt an editor sends leaves redacted (diffprompt.redact), with a token limit
    client = RedactingClient(
        ChatClient(model_name(str(model)), base_url=base_url, api_key=api_key, meter=meter,
                   settings=ModelSettings.from_dict(model_settings))
    )
    if kind == "ar":
        return ed.ARInfillEditor(ed.LLMFiller(client, structured=True))
    writer = ed.LLMWriter(client, max_output_tokens=client.inner.settings.max_tokens)
    return ed.RewriteEditor(ed.LLMCritic(client), writer)


def build_blamer(
    domain: Any = None,
    *,
    judge: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    meter: Any = None,
    protected: Sequence[str] = (),
) -> Any:
    """``JudgeBlamer`` over an OpenAI-compatible ``judge`` model, else the offline τ judge.

    ``judge="oracle"`` names the simulated model's own explanation (a labelled upper bound).
    """
    from diffprompt.optimize.attribution import JudgeBlamer

    if judge and judge != "oracle":
        from diffprompt.llm import ChatClient, RedactingClient
        from diffprompt.optimize.recorded_build import model_name

        client = RedactingClient(ChatClient(model_name(judge), base_url=base_url, api_key=api_key, meter=meter))
        return JudgeBlamer(client, protected=protected, structured=True)
    if domain is None:
        return None
    from diffprompt.integrations.tau import tau_blamer

    return tau_blamer(domain, judge=judge, protected=protected)


class DLMLikelihood:
    """``SpanLikelihood`` from the DLM's span NELBO (``diffprompt.dlm.likelihood``), seeded."""

    def __init__(self, dlm: Any, *, samples: int = 4, k_traces: int = 3, seed: int = 0) -> None:
        self.dlm, self.samples, self.k_traces, self.seed = dlm, samples, k_traces, seed

    def __call__(
        self, prompt: PromptVersion, span_ids: Sequence[str], traces: Sequence[TraceWithFeedback]
    ) -> dict[str, float]:
        import torch

        from diffprompt.dlm.likelihood import prompt_span_nelbo

        out: dict[str, float] = {}
        for sid in span_ids:
            gen = torch.Generator().manual_seed(self.seed)
            try:
                out[sid] = prompt_span_nelbo(
                    self.dlm,
                    prompt,
                    sid,
                    list(traces)[: self.k_traces],
                    samples=self.samples,
                    generator=gen,
                    k_traces=self.k_traces,
                )
            except Exception:  # a span the layout cannot score contributes nothing
                continue
        return out
