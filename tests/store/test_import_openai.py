"""``openai-jsonl`` import: the example file, versions by id or prompt text, validation by line, idempotency."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from diffprompt.errors import ValidationError
from diffprompt.store import Store
from diffprompt.store.import_openai import import_openai_jsonl, load_openai_jsonl

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "support_traces.jsonl"
PROMPT = "You answer order questions. Look up the order first."


def _conv(i: int, **kw: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "thread_id": f"t-{i}",
        "messages": [
            {"role": "user", "content": f"where is order {i}?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": f"c{i}", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": f"c{i}", "name": "lookup", "content": "shipped"},
            {"role": "assistant", "content": "It has shipped."},
        ],
    }
    rec.update(kw)
    return rec


def _write(tmp_path: Path, lines: list[Any], name: str = "in.jsonl") -> Path:
    p = tmp_path / name
    p.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines), encoding="utf-8")
    return p


def test_the_example_file_imports_with_its_feedback(store: Store) -> None:
    rep = import_openai_jsonl(store, EXAMPLE, "support")
    assert (rep.records, rep.traces_added, rep.slot_created) == (3, 3, True)
    assert rep.feedback_added == 7 and rep.mean_reward == pytest.approx(0.5)
    win = store.window("support")
    assert [w.trace.thread_id for w in win] == ["t-1001", "t-1002", "t-1003"]
    seed = store.active_version("support")
    assert {w.trace.version_id for w in win} == {seed.id} and rep.version_ids == (seed.id,)
    for w in win:  # the served prompt comes first, as the middleware records it
        assert w.trace.messages[0] == {"role": "system", "content": seed.text}
    first, second, third = win
    assert first.trace.tool_calls == 1 and first.trace.model_calls == 2 and third.trace.tool_calls == 2
    assert first.trace.started_at == datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
    assert first.trace.latency_ms == pytest.approx(4000.0)
    assert third.trace.started_at == datetime(2025, 3, 2, 8, 15, tzinfo=UTC)  # +01:00 offset kept
    assert [(f.kind, f.value) for f in first.feedback] == [("reward", 1.0), ("rating", 1.0)]
    assert second.reward == 0.0 and second.comments == ("It refunded without checking the refund policy first.",)
    assert third.reward == pytest.approx(0.6) and third.trace.metadata["channel"] == "chat"
    assert third.trace.metadata["source"] == "openai-jsonl" and third.trace.metadata["line"] == 3
    assert {f.source for w in win for f in w.feedback} == {"import"}


def test_reimport_adds_nothing_and_a_second_slot_gets_its_own_copy(store: Store) -> None:
    import_openai_jsonl(store, EXAMPLE, "support")
    again = import_openai_jsonl(store, EXAMPLE, "support")
    assert (again.traces_added, again.traces_skipped, again.feedback_added, again.slot_created) == (0, 3, 0, False)
    other = import_openai_jsonl(store, EXAMPLE, "support-eu")
    assert (other.traces_added, other.feedback_added) == (3, 7)
    assert store.stats("support")["feedback"] == store.stats("support-eu")["feedback"] == 7
    assert store.trace_for_thread("t-1002", "support").id != store.trace_for_thread("t-1002", "support-eu").id


def test_a_repeated_line_is_one_trace_with_one_set_of_feedback(store: Store, tmp_path: Path) -> None:
    line = _conv(1, prompt=PROMPT, reward=1.0, comment="great")
    rep = import_openai_jsonl(store, _write(tmp_path, [line, _conv(2, prompt=PROMPT), line]), "s")
    assert (rep.records, rep.traces_added, rep.records_repeated, rep.feedback_added) == (3, 2, 1, 2)
    assert [f.kind for f in store.feedback_for([store.trace_for_thread("t-1").id])] == ["reward", "comment"]


def test_a_repeat_with_other_feedback_is_refused_naming_both_lines(store: Store, tmp_path: Path) -> None:
    lines = [_conv(1, prompt=PROMPT, reward=1.0), _conv(2, prompt=PROMPT), _conv(1, prompt=PROMPT, reward=0.0)]
    path = _write(tmp_path, lines)
    with pytest.raises(ValidationError, match=r"line 3, .*repeats the conversation of line 1"):
        import_openai_jsonl(store, path, "s")
    assert store.list_slots() == [] and store.count_traces() == 0


def test_versions_by_id_or_by_prompt_text(store: Store, tmp_path: Path) -> None:
    seed = store.create_slot("s", PROMPT)
    v2 = store.add_version("s", PROMPT + " Be brief.", parent_id=seed.id, origin="manual")
    lines = [
        _conv(1, version_id=v2.id),  # named: its text becomes the system message
        _conv(2, prompt=PROMPT),  # the seed's text: matched by content, no new version
        _conv(3, prompt="A prompt nobody stored yet."),  # a new version, not activated
        _conv(4),  # no prompt at all: version unknown
    ]
    rep = import_openai_jsonl(store, _write(tmp_path, lines), "s")
    by_thread = {t.thread_id: t for t in store.list_traces("s")}
    assert by_thread["t-1"].version_id == v2.id and by_thread["t-1"].messages[0]["content"] == v2.text
    assert by_thread["t-2"].version_id == seed.id
    new = store.get_version(by_thread["t-3"].version_id or "")
    assert new.origin == "import" and new.parent_id == seed.id and store.active_version("s").id == seed.id
    assert by_thread["t-4"].version_id is None and by_thread["t-4"].messages[0]["role"] == "user"
    assert set(rep.version_ids) == {v2.id, seed.id, new.id}


@pytest.mark.parametrize(
    ("line", "match"),
    [
        ("{not json", r"line 2, field '<line>': not valid JSON"),
        ("[1, 2]", r"line 2, field '<line>': expected a JSON object"),
        (_conv(2, reward=1.5), r"line 2, field 'reward': must be a number in \[0, 1\]"),
        (_conv(2, rating="up"), r"line 2, field 'rating': .*true/false"),
        (_conv(2, reward=float("nan")), r"line 2, field 'reward'"),
        (_conv(2, comment=5), r"line 2, field 'comment'"),
        (_conv(2, started_at="yesterday"), r"line 2, field 'started_at': 'yesterday' is not"),
        (_conv(2, started_at="2025-03-02T00:00:00Z", ended_at="2025-03-01T00:00:00Z"), r"'ended_at': is before"),
        (_conv(2, thread_id=""), r"line 2, field 'thread_id'"),
        (_conv(2, metadata=[1]), r"line 2, field 'metadata'"),
        (_conv(2, colour="red"), r"line 2, field 'colour': unknown field"),
        (_conv(2, schema_version=2), r"line 2, field 'schema_version'"),
        ({"thread_id": "x"}, r"line 2, field 'messages': missing"),
        (_conv(2, messages=[]), r"line 2, field 'messages': must be a non-empty list"),
        (_conv(2, messages=[{"role": "robot", "content": "x"}]), r"line 2, field 'messages\[0\]\.role'"),
        (_conv(2, messages=[{"role": "tool", "content": "x"}]), r"'messages\[0\]\.tool_call_id'"),
        (_conv(2, version_id="pv_missing"), r"line 2, field 'version_id': 'pv_missing' is not a stored version"),
    ],
)
def test_a_malformed_line_fails_naming_it_and_nothing_is_imported(
    store: Store, tmp_path: Path, line: Any, match: str
) -> None:
    store.create_slot("s", PROMPT)
    with pytest.raises(ValidationError, match=match) as info:
        import_openai_jsonl(store, _write(tmp_path, [_conv(1, prompt="Another prompt.", reward=1), line]), "s")
    assert "nothing was imported" in str(info.value) and "\n" not in str(info.value)
    assert store.count_traces() == 0 and len(store.list_versions("s")) == 1


def test_a_version_of_another_slot_is_refused(store: Store, tmp_path: Path) -> None:
    other = store.create_slot("other", "Other prompt.")
    store.create_slot("s", PROMPT)
    with pytest.raises(ValidationError, match=r"line 1, .*belongs to slot 'other'"):
        import_openai_jsonl(store, _write(tmp_path, [_conv(1, version_id=other.id)]), "s")
    assert store.count_traces() == 0


def test_a_new_slot_needs_a_prompt(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist and no line names a prompt"):
        import_openai_jsonl(store, _write(tmp_path, [_conv(1), _conv(2)]), "fresh")
    assert store.list_slots() == []
    rep = import_openai_jsonl(store, _write(tmp_path, [_conv(1), _conv(2, prompt=PROMPT)]), "fresh")
    assert rep.slot_created and store.active_version("fresh").text == PROMPT


def test_size_caps_blank_lines_timestamps_and_unreadable_files(store: Store, tmp_path: Path) -> None:
    from diffprompt.store import importers

    huge = _conv(2, prompt=PROMPT, messages=[{"role": "user", "content": "x" * (importers.MAX_MESSAGE_CHARS + 1)}])
    with pytest.raises(ValidationError, match=r"line 3, field 'messages\[0\]\.content': .*cap per message"):
        import_openai_jsonl(store, _write(tmp_path, [_conv(1, prompt=PROMPT), "", huge]), "s")
    assert store.list_slots() == []
    convs = load_openai_jsonl(_write(tmp_path, ["", _conv(1, started_at="2025-01-01T00:00:00"), "  "]))
    assert [c.line for c in convs] == [2] and convs[0].started_at == datetime(2025, 1, 1, tzinfo=UTC)  # naive: UTC
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(ValidationError, match="not UTF-8"):
        load_openai_jsonl(binary)
    with pytest.raises(ValidationError, match="does not exist"):
        load_openai_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(ValidationError, match="contains no conversations"):
        load_openai_jsonl(_write(tmp_path, ["", ""]))


def test_the_readme_example_line_and_field_table_match_the_parser() -> None:
    import re

    from diffprompt.store.import_openai import FIELDS, parse_line

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**`openai-jsonl`**") : readme.index("**`tau-historical`**")]
    line = re.search(r"```json\n(.*?)\n```", section, re.S).group(1)  # type: ignore[union-attr]
    conv = parse_line(1, line)
    assert conv.thread_id == "t-1002" and [k for k, _, _ in conv.feedback] == ["reward", "rating", "comment"]
    documented = set(re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)?", section, re.M))
    names = {n for pair in documented for n in pair if n}
    assert names == set(FIELDS)
