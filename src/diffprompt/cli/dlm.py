"""``diffprompt dlm ...``: train and evaluate the built-in masked-diffusion model."""

from __future__ import annotations

from pathlib import Path

import typer

from diffprompt.cli import common

app = typer.Typer(help="The built-in diffusion LM: train it, evaluate it.", no_args_is_help=True)


@app.command("train")
def train_cmd(
    out: Path = typer.Option(..., "--out", help="Directory for config.json, model.safetensors, tokenizer.json."),
    seed: int = typer.Option(0, "--seed", help="Seed of the corpus, tokenizer, init and batches."),
    steps: int = typer.Option(700, "--steps", help="Optimizer steps."),
    batch_size: int = typer.Option(10, "--batch-size"),
    seq_len: int = typer.Option(160, "--seq-len"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads."),
    max_minutes: float = typer.Option(0.0, "--max-minutes", help="Safety stop (0 = none)."),
    lr: float = typer.Option(3e-3, "--lr", help="Peak learning rate (cosine schedule)."),
    init_from: str = typer.Option("", "--init", help="Continue from a checkpoint directory (second phase)."),
    batch_seed: int | None = typer.Option(None, "--batch-seed", help="Seed of batches/masks (default: --seed)."),
    max_length: int = typer.Option(1024, "--max-length", help="Longest input the model accepts (RoPE)."),
    infill_batch: int = typer.Option(0, "--infill-batch", help="Span-infill rows per step (degraded world policies)."),
    insert_min: int = typer.Option(48, "--insert-min", help="Mask-run floor of insertion slots in infill rows."),
    world_copies: int = typer.Option(0, "--world-copies", help="Extra copies of each world policy in the stream."),
    infill_traces: bool = typer.Option(False, "--infill-traces", help="Prefix infill rows with failing-trace text."),
) -> None:
    """Generate the corpus, train tokenizer + model with the masked-diffusion objective, save, evaluate."""
    from diffprompt.dlm.train import TrainConfig, train

    cfg = TrainConfig(
        seed=seed,
        steps=steps,
        batch_size=batch_size,
        seq_len=seq_len,
        threads=threads,
        max_minutes=max_minutes,
        lr=lr,
        init_from=init_from,
        batch_seed=batch_seed,
        max_length=max_length,
        infill_batch=infill_batch,
        insert_min=insert_min,
        world_copies=world_copies,
        infill_traces=infill_traces,
    )
    train(cfg, out, log=lambda m: common.console.print(m, highlight=False))


@app.command("eval")
def eval_cmd(
    path: Path | None = typer.Option(None, "--path", help="Model directory (default: the shipped built-in model)."),
    seed: int = typer.Option(0, "--seed", help="Corpus seed the model was trained with (held-out split)."),
    heldout: int = typer.Option(200, "--heldout", help="Held-out documents."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Masked-token accuracy and NELBO on held-out policy text at 15% / 50% masking vs a unigram baseline."""
    import torch

    from diffprompt.dlm.corpus import split_corpus
    from diffprompt.dlm.model import load_builtin
    from diffprompt.dlm.train import evaluate_infill, evaluate_model

    torch.set_num_threads(1)
    dlm = load_builtin(path=path)
    train_docs, held = split_corpus(6000, heldout, seed)
    m = evaluate_model(dlm.model, dlm.tokenizer, held, train_docs=train_docs, seed=seed)
    m["world_slots"] = evaluate_infill(dlm.model, dlm.tokenizer)
    if as_json:
        common.print_json(m)
        return
    from rich.table import Table

    table = Table(title=f"{dlm.name}: held-out masked-token prediction ({m['heldout_tokens']} tokens)")
    for col in ("masking", "accuracy", "unigram acc", "CE nats", "unigram CE"):
        table.add_column(col)
    for key in ("mask_15", "mask_50", "span"):
        r = m[key]
        assert isinstance(r, dict)
        table.add_row(
            key,
            f"{r['accuracy']:.3f}",
            f"{r['unigram_accuracy']:.3f}",
            f"{r['ce_nats']:.3f}",
            f"{r['unigram_ce_nats']:.3f}",
        )
    common.console.print(table)
    ws = m["world_slots"]
    assert isinstance(ws, dict)
    common.console.print(
        f"world-policy slots (deleted/garbled rules, all masked, one forward): accuracy {ws['accuracy']:.3f}, "
        f"on rule tokens {ws['content_accuracy']:.3f}, CE {ws['ce_nats']:.3f} nats"
    )
    nel = m["nelbo"]
    assert isinstance(nel, dict)
    common.console.print(f"NELBO {nel['nats_per_token']:.3f} nats/token (unigram {nel['unigram_nats_per_token']:.3f})")
