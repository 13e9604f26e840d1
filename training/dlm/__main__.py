"""``python -m training.dlm train|eval``: train or evaluate the built-in masked-diffusion model."""

from __future__ import annotations

import argparse
import json
from dataclasses import fields
from pathlib import Path


def _train(args: argparse.Namespace) -> None:
    from training.dlm.train import TrainConfig, train

    names = {f.name for f in fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in vars(args).items() if k in names and v is not None})
    train(cfg, args.out, log=lambda m: print(m, flush=True))


def _eval(args: argparse.Namespace) -> None:
    import torch

    from diffprompt.dlm.model import load_builtin
    from training.dlm.corpus import split_corpus
    from training.dlm.train import evaluate_infill, evaluate_model

    torch.set_num_threads(args.threads)
    dlm = load_builtin(path=args.path)
    train_docs, held = split_corpus(6000, args.heldout, args.seed)
    m = evaluate_model(dlm.model, dlm.tokenizer, held, train_docs=train_docs, seed=args.seed)
    m["corpus_slots"] = evaluate_infill(dlm.model, dlm.tokenizer)
    m["heldout_world_slots"] = {d: evaluate_infill(dlm.model, dlm.tokenizer, domain=d) for d in ("airline", "retail")}
    print(json.dumps(m, indent=2))


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run ``train`` or ``eval``."""
    p = argparse.ArgumentParser(prog="python -m training.dlm", description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="generate the corpus, train tokenizer + model, save, evaluate")
    t.add_argument("--out", type=Path, required=True)
    for name, typ in (
        ("seed", int), ("steps", int), ("batch_size", int), ("seq_len", int), ("threads", int),
        ("max_minutes", float), ("lr", float), ("init_from", str), ("batch_seed", int), ("max_length", int),
        ("infill_batch", int), ("insert_min", int), ("n_train_docs", int), ("warmup", int),
    ):
        t.add_argument("--" + name.replace("_", "-"), dest=name, type=typ, default=None)
    t.add_argument("--infill-traces", dest="infill_traces", action="store_true", default=None)
    t.set_defaults(func=_train)
    e = sub.add_parser("eval", help="held-out masked-token accuracy, NELBO, slot filling")
    e.add_argument("--path", type=Path, default=None)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--heldout", type=int, default=200)
    e.add_argument("--threads", type=int, default=1)
    e.set_defaults(func=_eval)
    args = p.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
