"""``diffprompt dlm infill``: try the diffusion LM on your own prompt.

Training and evaluating the built-in model is a script, not part of the runtime:
``python -m training.dlm train|eval`` (see ``training/dlm``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from diffprompt.cli import common
from diffprompt.errors import ValidationError

app = typer.Typer(help="The diffusion LM: fill spans of your own prompt.", no_args_is_help=True)


@app.command("infill")
def infill_cmd(
    file: Path = typer.Argument(..., help="A prompt file (UTF-8 text)."),
    span: list[str] = typer.Option([], "--span", help="Span id to rewrite in place (repeatable)."),
    after: list[str] = typer.Option([], "--after", help="Span id after which to write a new span (repeatable)."),
    feedback: list[str] = typer.Option([], "--feedback", help="A feedback line for the conditioning (repeatable)."),
    candidates: int = typer.Option(3, "--candidates", min=1, max=64, help="Candidates to write."),
    steps: int = typer.Option(64, "--steps", min=1, max=1024, help="Diffusion steps."),
    seed: int = typer.Option(0, "--seed"),
    dlm_spec: str = typer.Option("builtin", "--dlm", help="'builtin' or a local model directory (Dream, LLaDA, A2D)."),
    device: str = typer.Option("cpu", "--device"),
    list_spans: bool = typer.Option(False, "--list", help="Only print the prompt's span ids and texts."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Mask the chosen spans of FILE (or insert new ones) and let the DLM write them."""
    from diffprompt.spans import segment
    from diffprompt.types import PromptVersion

    text = common.read_text_file(file, "prompt file")
    spans = tuple(segment(text))
    if list_spans or not (span or after):
        rows = [{"id": s.id, "kind": s.kind, "text": s.text} for s in spans]
        if as_json:
            common.print_json({"spans": rows})
        else:
            for r in rows:
                common.write_plain(f"{r['id']}\t{r['kind']}\t{' '.join(str(r['text']).split())}\n")
        if not list_spans:
            raise ValidationError("give at least one --span ID or --after ID (the ids are listed above)")
        return
    from diffprompt.optimize.try_infill import infill_prompt

    prompt = PromptVersion(id="file", slot="file", text=text, spans=spans, parent_id=None,
                           created_at=datetime.now(UTC), origin="manual")
    dlm = _load(dlm_spec, device)
    out = infill_prompt(dlm, prompt, span_ids=span, after_ids=after, feedback=feedback,
                        candidates=candidates, steps=steps, seed=seed)
    if as_json:
        common.print_json({"model": dlm.name, "steps": steps, "candidates": [
            {"text": c.text, "changed": list(c.changed), "seed": c.seed} for c in out]})
        return
    for i, c in enumerate(out, 1):
        common.write_plain(f"--- candidate {i} (seed {c.seed}, changed {', '.join(c.changed) or 'nothing'})\n")
        common.write_plain(c.text.rstrip("\n") + "\n")


def _load(spec: str, device: str):  # type: ignore[no-untyped-def]
    if spec == "builtin":
        from diffprompt.dlm.model import load_builtin

        return load_builtin()
    from diffprompt.dlm.backends import load_dlm

    return load_dlm(spec, device=device)
