"""``diffprompt dlm infill``: the built-in model on a user's own prompt, and what it must not do.

The shipped model never saw the τ worlds' policies, so with a rule's span masked and no feedback it
must not write that rule's sentence back (it would only do so from memory).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from diffprompt.spans import normalize_text, segment
from tau_envs.generate.policy import policy_text
from tau_envs.rules import rules_for


@pytest.fixture(scope="module")
def app():  # type: ignore[no-untyped-def]
    from diffprompt import cli

    cli._register()
    return cli.app


def _run(app, *args: str, ok: bool = True):  # type: ignore[no-untyped-def]
    res = CliRunner().invoke(app, list(args))
    assert (res.exit_code == 0) is ok, (res.output, res.exception)
    return res


@pytest.mark.parametrize("domain", ["airline", "retail"])
def test_masked_world_rule_is_not_reproduced_without_feedback(app, tmp_path: Path, domain: str):
    text = policy_text(domain)  # type: ignore[arg-type]
    path = tmp_path / "policy.md"
    path.write_text(text, encoding="utf-8")
    spans = segment(text)
    rules = [r for r in rules_for(domain) if r.text in text][:3]  # type: ignore[arg-type]
    assert rules
    for rule in rules:
        sid = next(s.id for s in spans if rule.text in s.text)
        res = _run(app, "dlm", "infill", str(path), "--span", sid, "--candidates", "2", "--steps", "16", "--json")
        out = json.loads(res.stdout)
        assert out["candidates"]
        for c in out["candidates"]:
            # the rule's sentence does not come back (the unmasked rest of the policy is unchanged)
            assert normalize_text(rule.text) not in normalize_text(c["text"]), (rule.id, c["text"])
            assert c["text"].split("\n")[0] == text.split("\n")[0]


def test_list_and_insertion_and_feedback(app, tmp_path: Path):
    path = tmp_path / "p.md"
    path.write_text("# Shop policy\n\n- Verify the customer first.\n- Refund only unused items.\n", encoding="utf-8")
    listed = _run(app, "dlm", "infill", str(path), "--list", "--json")
    ids = [s["id"] for s in json.loads(listed.stdout)["spans"]]
    bullet = ids[1]
    res = _run(app, "dlm", "infill", str(path), "--after", bullet, "--feedback",
               "The agent refunded an order without asking the customer to confirm.", "--candidates", "1",
               "--steps", "8", "--json")
    cand = json.loads(res.stdout)["candidates"][0]
    assert cand["text"].startswith("# Shop policy\n\n- Verify the customer first.\n")
    assert "- Refund only unused items." in cand["text"]


def test_bad_input_is_one_line_error(app, tmp_path: Path):
    path = tmp_path / "p.md"
    path.write_text("# P\n\n- One rule.\n", encoding="utf-8")
    from diffprompt.errors import DiffpromptError

    def err(*args: str) -> str:  # the CLI's main() prints these as one `error: ...` line, exit 1
        res = _run(app, "dlm", "infill", *args, ok=False)
        assert isinstance(res.exception, DiffpromptError), res.exception
        return str(res.exception)

    assert "unknown span ids" in err(str(path), "--span", "sp_nope")
    binary = tmp_path / "b.md"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    assert "\n" not in err(str(binary), "--span", "x")
    assert "--span" in err(str(path))  # no span chosen: lists the ids, then says why
