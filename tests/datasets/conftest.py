"""Fixtures for dataset-env tests: tiny JSONL files, the shared real data (skip when absent)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture
def write_jsonl(tmp_path: Path) -> Callable[..., Path]:
    """Write rows (dicts, or raw strings written verbatim) to a JSONL file under ``tmp_path``."""

    def write(rows: Sequence[object], name: str = "data.jsonl") -> Path:
        p = tmp_path / name
        p.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
        return p

    return write


@pytest.fixture
def sentiment_file(write_jsonl: Callable[..., Path]) -> Path:
    """A 80-row binary sentiment file the lexical sim target can mostly solve."""
    pos = ["a great and moving film", "wonderful acting, a delightful story", "brilliant, funny and smart",
           "a superb and touching drama"]
    neg = ["a boring, dull mess", "awful script and tedious pacing", "a stupid and pointless sequel",
           "flat, lifeless and predictable"]
    rows = []
    for i in range(40):
        rows.append({"text": f"{pos[i % 4]} (take {i})", "label": "positive"})
        rows.append({"text": f"{neg[i % 4]} (take {i})", "label": "negative"})
    return write_jsonl(rows, "sent.jsonl")


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """``../shared/datasets`` relative to the repo root; skips with the reason when absent."""
    if not (DATASETS / "sst2" / "dev.jsonl").is_file():
        pytest.skip(f"the shared datasets are not at {DATASETS} (see ../shared/datasets/README.md)")
    return DATASETS
