"""The dataset replay env: one target call per example, parsing, metering, disjoint gate cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffprompt.datasets.build import build_bundle
from diffprompt.datasets.data import load_dataset
from diffprompt.datasets.env import DatasetReplay, LabelBlamer, default_seed_prompt, parse_dataset_spec
from diffprompt.errors import ConfigError, ModelError
from diffprompt.llm import CallMeter, ScriptedChatClient
from diffprompt.optimize.evaluate import evaluate, record_episodes
from diffprompt.spans import segment
from diffprompt.store.memory import MemoryStore
from diffprompt.types import TraceWithFeedback


def _env(path: Path, client: object, **kw: object) -> DatasetReplay:
    return DatasetReplay(load_dataset(path), client_factory=lambda seed: client, **kw)  # type: ignore[arg-type]


def test_one_call_per_example_metered_and_parsed(sentiment_file: Path) -> None:
    meter = CallMeter()
    client = ScriptedChatClient(["Answer: positive", "negative", "no idea"], meter=meter)
    env = _env(sentiment_file, client)
    store = MemoryStore()
    v = store.create_slot("s", default_seed_prompt(env.data))
    cases = env.all_cases(limit=6)
    report, _ = evaluate(env, v, cases, concurrency=1)
    assert meter.snapshot().calls == 6 == report.model_calls == len(client.requests)
    assert report.tokens == meter.snapshot().total_tokens > 0
    # rows alternate positive/negative; replies cycle positive, negative, unparseable
    assert report.unparsed == 2 and report.errors == 0
    assert report.n == 6 and report.score == pytest.approx(report.accuracy or 0.0)
    first = client.requests[0]
    assert first[0] == {"role": "system", "content": v.text}
    assert first[1]["content"].startswith("Review: a great and moving film")


def test_model_error_is_a_counted_errored_episode(sentiment_file: Path) -> None:
    class Broken:
        def complete(self, messages, *, temperature=0.0, max_tokens=None):  # type: ignore[no-untyped-def]
            raise ModelError("server down")

    env = _env(sentiment_file, Broken())
    v = MemoryStore().create_slot("s", "x")
    report, res = evaluate(env, v, env.all_cases(limit=3))
    assert report.errors == 3 and report.score == 0.0 and report.unparsed == 0
    assert "server down" in (res.results[v.id][0].error or "")


def test_gate_cases_are_the_holdout_part_minus_the_window(sentiment_file: Path) -> None:
    env = _env(sentiment_file, ScriptedChatClient(["positive"]))
    store = MemoryStore()
    v = store.create_slot("s", "Classify. Answer positive or negative.")
    window_cases = env.all_cases("window")
    _, res = evaluate(env, v, window_cases)
    record_episodes(store, v, env, res.results[v.id])
    window = store.window("s")
    gate = env.cases(window)
    assert gate and window
    seen = {t.trace.replay_key for t in window}
    assert not seen & {c.id for c in gate}
    assert {env.part(env.example(c)) for c in gate} == {"holdout"}
    assert len(window_cases) + len(gate) == 80
    # a holdout example that somehow got into the window is dropped from the gate's cases too
    leaked = env.all_cases("holdout")[:1]
    _, res2 = evaluate(env, v, leaked)
    record_episodes(store, v, env, res2.results[v.id])
    assert leaked[0].id not in {c.id for c in env.cases(store.window("s"))}


def test_recorded_feedback_says_what_was_expected(sentiment_file: Path) -> None:
    env = _env(sentiment_file, ScriptedChatClient(["positive", "positive", "hmm"]))
    store = MemoryStore()
    v = store.create_slot("s", "x")
    _, res = evaluate(env, v, env.all_cases(limit=4), concurrency=1)
    assert record_episodes(store, v, env, res.results[v.id]) == 4
    w = store.window("s")
    rewards = sorted(t.reward or 0.0 for t in w)
    assert rewards == [0.0, 0.0, 0.0, 1.0]
    notes = [c for t in w for c in t.comments]
    assert any("did not name one of the labels" in n for n in notes)
    assert any("Answered 'positive' but the correct label is 'negative'" in n for n in notes)


def test_same_seed_same_scores_with_the_sim_target(sentiment_file: Path) -> None:
    b = build_bundle(f"dataset:{sentiment_file}")
    v = MemoryStore().create_slot("s", b.seed_prompt)
    r1, _ = evaluate(b.env, v, b.env.all_cases(), seed=3)
    r2, _ = evaluate(b.env, v, b.env.all_cases(), seed=3, concurrency=1)
    assert (r1.score, r1.macro_f1, r1.tokens) == (r2.score, r2.macro_f1, r2.tokens)
    assert r1.score > 0.9  # the lexical sim solves this toy file when the prompt names the labels


def test_sim_target_needs_the_label_format_in_the_prompt(sentiment_file: Path) -> None:
    b = build_bundle(f"dataset:{sentiment_file}")
    v = MemoryStore().create_slot("s", "You read movie reviews.")
    report, _ = evaluate(b.env, v, b.env.all_cases())
    assert report.score == 0.0 and report.unparsed == 80


def test_spec_options(sentiment_file: Path, tmp_path: Path) -> None:
    tpl = tmp_path / "user.j2"
    tpl.write_text("Critique: {{ text }}\nOne of {{ labels | join('/') }}:")
    spec = parse_dataset_spec(f"dataset:{sentiment_file}?holdout=0.25&split_seed=7&max_tokens=5&template={tpl}")
    assert (spec.holdout, spec.split_seed, spec.max_tokens, spec.template) == (0.25, 7, 5, tpl)
    client = ScriptedChatClient(["positive"])
    b = build_bundle(f"dataset:{sentiment_file}?template={tpl}&labels=negative,positive")
    env = DatasetReplay(b.data, client_factory=lambda s: client, template=b.env.template)
    env.run(env.all_cases(limit=1)[0], "sys", seed=0, trial=0)
    assert client.requests[0][1]["content"].startswith("Critique: a great") and "negative/positive" in \
        client.requests[0][1]["content"]
    with pytest.raises(ConfigError, match="unknown dataset env options"):
        parse_dataset_spec(f"dataset:{sentiment_file}?labelz=a")
    with pytest.raises(ConfigError, match="holdout must be in"):
        parse_dataset_spec(f"dataset:{sentiment_file}?holdout=1.5")


def test_default_seed_prompts_name_every_label(shared_datasets: Path) -> None:
    for task in ("sst2", "sst5", "mrpc", "snli"):
        data = load_dataset(shared_datasets / task / "dev.jsonl")
        text = default_seed_prompt(data)
        assert all(lb in text for lb in data.labels), (task, text)


def test_label_blamer_points_at_format_or_task_spans(sentiment_file: Path) -> None:
    env = _env(sentiment_file, ScriptedChatClient(["hmm", "positive"]))
    store = MemoryStore()
    prompt = "You read movie reviews. Decide how the critic felt. Answer with exactly one of: negative, positive."
    v = store.create_slot("s", prompt)
    _, res = evaluate(env, v, env.all_cases(limit=2), concurrency=1)
    record_episodes(store, v, env, res.results[v.id])
    by_key = {t.trace.metadata["index"]: t for t in store.window("s")}
    blamer = LabelBlamer(env.data.labels)
    spans = {s.id: s.text for s in segment(prompt)}
    unparsed = blamer.blame(v, by_key[0])
    assert [spans[b.span_id] for b in unparsed] == ["Answer with exactly one of: negative, positive."]
    wrong = blamer.blame(v, by_key[1])  # replied positive to a negative example
    assert {spans[b.span_id] for b in wrong} == {"You read movie reviews.", "Decide how the critic felt."}
    assert "labelled 'negative'" in wrong[0].reason
    no_format = v.__class__(**{**{f: getattr(v, f) for f in v.__dataclass_fields__}, "text": "Be kind.",
                               "spans": segment("Be kind.")})
    miss = blamer.blame(no_format, by_key[0])
    assert miss[0].kind == "missing" and "negative, positive" in miss[0].hint


def test_traces_carry_no_other_examples_labels(sentiment_file: Path) -> None:
    env = _env(sentiment_file, ScriptedChatClient(["positive"]))
    res = env.run(env.all_cases(limit=1)[0], "sys", seed=0, trial=0)
    assert res.trace is not None and res.model_calls == 1
    assert set(res.trace.metadata) >= {"gold", "predicted", "parse", "unparsed", "digest"}
    user = str(res.trace.messages[1]["content"])
    assert "positive" not in user and "negative" not in user  # the example's text only, never a label
    assert TraceWithFeedback(trace=res.trace).reward is None  # reward arrives as feedback when recorded


def test_label_blamer_on_the_default_seeds(shared_datasets: Path) -> None:
    for task in ("sst2", "sst5", "mrpc", "snli"):
        data = load_dataset(shared_datasets / task / "dev.jsonl")
        seed = default_seed_prompt(data)
        fmt = LabelBlamer(data.labels)._format_spans([s for s in segment(seed) if s.kind != "heading"])
        assert [s.text for s in fmt] == [seed.strip().splitlines()[-1]], task  # only the answer-format line
