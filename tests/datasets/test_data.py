"""Loading and validating JSONL datasets: task kinds, label sets, the seeded split, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffprompt.datasets.data import DatasetError, infer_kind, load_dataset


def test_single_text_file_loads_with_labels_in_known_order(sentiment_file: Path) -> None:
    data = load_dataset(sentiment_file)
    assert data.kind == "sentiment2" and not data.pair
    assert data.labels == ("negative", "positive")
    assert len(data.examples) == 80
    ex = data.examples[3]
    assert ex.index == 3 and ex.line == 4 and ex.text_b is None
    assert ex.id.startswith("3-") and len(ex.digest) == 12


def test_pair_file_and_generic_kind(write_jsonl) -> None:
    p = write_jsonl([{"text_a": "a", "text_b": "b", "label": "same"}, {"text_a": "c", "text_b": "d", "label": "other"}])
    data = load_dataset(p)
    assert data.pair and data.kind == "pair" and data.labels == ("same", "other")
    assert data.examples[1].text_b == "d"


def test_given_label_set_and_kind_override(write_jsonl) -> None:
    p = write_jsonl([{"text": "x", "label": "yes"}])
    data = load_dataset(p, labels=["yes", "no"], kind="single")
    assert data.labels == ("yes", "no") and data.kind == "single"


@pytest.mark.parametrize(
    ("labels", "pair", "kind"),
    [
        (["positive", "negative"], False, "sentiment2"),
        (["very negative", "negative", "neutral", "positive", "very positive"], False, "sentiment5"),
        (["equivalent", "not_equivalent"], True, "paraphrase"),
        (["contradiction", "neutral", "entailment"], True, "nli"),
        (["a", "b"], True, "pair"),
    ],
)
def test_infer_kind(labels: list[str], pair: bool, kind: str) -> None:
    assert infer_kind(labels, pair) == kind


def test_malformed_line_is_named(write_jsonl) -> None:
    p = write_jsonl([{"text": "ok", "label": "a"}, '{"text": "broken", "label": ', {"text": "z", "label": "b"}])
    with pytest.raises(DatasetError, match=rf"{p.name}:2: not valid JSON"):
        load_dataset(p)


def test_missing_label_is_named(write_jsonl) -> None:
    p = write_jsonl([{"text": "ok", "label": "a"}, {"text": "b"}, {"text": "z", "label": "b"}])
    with pytest.raises(DatasetError, match=rf"{p.name}:2: missing field 'label'"):
        load_dataset(p)


def test_label_outside_the_given_set_is_named(write_jsonl) -> None:
    p = write_jsonl([{"text": "ok", "label": "positive"}, {"text": "z", "label": "Positive!"}])
    with pytest.raises(DatasetError, match=rf"{p.name}:2: label 'Positive!' is not in the label set"):
        load_dataset(p, labels=["negative", "positive"])


def test_empty_file(write_jsonl) -> None:
    p = write_jsonl(["", "   "])
    with pytest.raises(DatasetError, match="is empty"):
        load_dataset(p)


@pytest.mark.parametrize(
    ("rows", "msg"),
    [
        (['["a list"]'], ":1: expected a JSON object"),
        ([{"text": 3, "label": "a"}], ":1: field 'text' must be a string"),
        ([{"text": "x", "label": 1}], ":1: field 'label' must be a string"),
        ([{"text": "x", "label": ""}], ":1: field 'label' is empty"),
        ([{"text": "  ", "label": "a"}], ":1: field 'text' is empty"),
        ([{"text": "x", "label": "a"}, {"text_a": "x", "text_b": "y", "label": "b"}], ":2: mixes single-text"),
        ([{"text_a": "x", "label": "a"}], ":1: missing field 'text_b'"),
        ([{"text": "x", "label": "a"}, {"text": "y", "label": "a"}], "single label 'a'"),
    ],
)
def test_other_bad_rows(write_jsonl, rows: list[object], msg: str) -> None:
    with pytest.raises(DatasetError, match=msg):
        load_dataset(write_jsonl(rows))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope.jsonl")


def test_split_is_seeded_disjoint_and_about_the_share(sentiment_file: Path) -> None:
    data = load_dataset(sentiment_file)
    parts = [data.part_of(ex, holdout_share=0.5, split_seed=0) for ex in data.examples]
    again = [data.part_of(ex, holdout_share=0.5, split_seed=0) for ex in data.examples]
    other = [data.part_of(ex, holdout_share=0.5, split_seed=1) for ex in data.examples]
    assert parts == again and parts != other
    assert 20 <= parts.count("holdout") <= 60


def test_shared_datasets_load_with_the_readme_counts(shared_datasets: Path) -> None:
    expect = {"sst2": (872, "sentiment2"), "sst5": (1101, "sentiment5"), "mrpc": (408, "paraphrase"),
              "snli": (9842, "nli")}
    for task, (rows, kind) in expect.items():
        data = load_dataset(shared_datasets / task / "dev.jsonl")
        assert (len(data.examples), data.kind) == (rows, kind)
