"""Build a ``dataset:`` env from its spec: the dataset, the target client, the blamer.

Registered in ``diffprompt.optimize.build.ENV_PLUGINS`` under ``dataset``; the optimize service,
the scheduler, ``diffprompt eval`` and the experiments resolve ``dataset:PATH`` through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diffprompt.datasets.data import Dataset, load_dataset
from diffprompt.datasets.env import DatasetReplay, LabelBlamer, parse_dataset_spec, user_template


@dataclass(frozen=True, kw_only=True, slots=True)
class EnvBundle:
    """What a round needs from an env spec: the env, its offline blamer and a default seed prompt."""

    env: Any
    blamer: Any
    seed_prompt: str
    data: Dataset


def target_client(model: str, data: Dataset, *, base_url: str | None, api_key: str | None, meter: Any) -> Any:
    """``sim`` → ``SimClassifier`` (offline, lexical); ``openai:NAME`` → ``ChatClient``."""
    from diffprompt.llm import ChatClient, parse_model_spec

    ms = parse_model_spec(model)
    if ms.provider == "sim":
        from diffprompt.datasets.sim import SimClassifier

        return SimClassifier(data.labels, data.kind, meter=meter)
    return ChatClient(ms.name, base_url=base_url, api_key=api_key, meter=meter)


def build_bundle(
    spec: str,
    *,
    model: str = "sim",
    base_url: str | None = None,
    api_key: str | None = None,
    meter: Any = None,
    judge: str | None = None,
    protected: Sequence[str] = (),
    **_: Any,
) -> EnvBundle:
    """Resolve ``spec`` once (load + validate the data, build the client); raises ``ConfigError``."""
    from diffprompt.datasets.env import default_seed_prompt

    ds = parse_dataset_spec(spec)
    data = load_dataset(ds.path, labels=ds.labels, kind=ds.kind)
    client = target_client(model, data, base_url=base_url, api_key=api_key, meter=meter)
    env = DatasetReplay(
        data,
        client_factory=client.with_seed,
        template=user_template(data, ds.template),
        holdout=ds.holdout,
        split_seed=ds.split_seed,
        max_tokens=ds.max_tokens,
    )
    if judge:
        from diffprompt.llm import ChatClient
        from diffprompt.optimize.attribution import JudgeBlamer

        blamer: Any = JudgeBlamer(ChatClient(judge, base_url=base_url, api_key=api_key, meter=meter),
                                  protected=protected)
    else:
        blamer = LabelBlamer(data.labels)
    return EnvBundle(env=env, blamer=blamer, seed_prompt=default_seed_prompt(data), data=data)
