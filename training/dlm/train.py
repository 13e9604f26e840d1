"""Training and evaluation of the built-in masked-diffusion model (CPU-friendly, seeded).

Objective (MDLM / LLaDA): draw t ~ U(eps, 1) per sequence, replace each token by [MASK] with
probability t, and minimise the cross-entropy on the masked tokens weighted by 1/t, summed and
divided by the number of tokens — an upper bound on the negative log-likelihood (the NELBO).

Documents are tokenized the way the layout tokenizes a prompt — span by span and gap by gap
(``diffprompt.spans.segment``) — so the model sees the same token boundaries at inference. Runs of
[EOS] are inserted after some spans so the model learns that a span may end early (the layout strips
EOS emitted inside a mask run, which is how spans shrink).
"""

from __future__ import annotations

import json
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.nn.functional as F

from diffprompt.dlm.model import MDConfig, MDTransformer, save_model
from diffprompt.dlm.tokenizer import BuiltinTokenizer, train_tokenizer
from diffprompt.spans import segment
from training.dlm.infill_rows import InfillRow, infill_row, world_infill_row


@dataclass(frozen=True, kw_only=True, slots=True)
class TrainConfig:
    """Everything that determines a training run (saved next to the weights)."""

    seed: int = 0
    steps: int = 700
    batch_size: int = 10
    seq_len: int = 160
    lr: float = 3e-3
    min_lr_ratio: float = 0.1
    warmup: int = 50
    weight_decay: float = 0.01
    eps: float = 1e-3
    eos_insert_prob: float = 0.2
    n_train_docs: int = 6000
    n_heldout_docs: int = 200
    vocab_size: int = 4096
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_ff: int = 384
    max_length: int = 1024
    threads: int = 1
    max_minutes: float = 0.0  # safety stop (0 = none); the step reached is recorded in metrics
    init_from: str = ""  # continue from a checkpoint dir (its tokenizer and weights); "" = from scratch
    batch_seed: int | None = None  # seed of batches, masks (default: seed); vary it for a second phase
    infill_batch: int = 0  # rows per step of the span-infill objective on degraded corpus policies (0 = off)
    insert_min: int = 48  # mask-run length floor of an insertion slot (as DLMEditorConfig.insert_min)
    infill_traces: bool = False  # prefix infill rows with rendered failing-trace snippets (as the layout does)


def encode_document(tok: BuiltinTokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of ``text`` tokenized piece by piece, plus the (start, end) token range of each span."""
    pieces: list[str] = []
    is_span: list[bool] = []
    pos = 0
    for s in segment(text):
        if s.start > pos:
            pieces.append(text[pos : s.start])
            is_span.append(False)
        pieces.append(s.text)
        is_span.append(True)
        pos = s.end
    if pos < len(text):
        pieces.append(text[pos:])
        is_span.append(False)
    ids: list[int] = []
    ranges: list[tuple[int, int]] = []
    for piece, span in zip(pieces, is_span, strict=True):
        p_ids = tok.encode(piece)
        if span:
            ranges.append((len(ids), len(ids) + len(p_ids)))
        ids.extend(p_ids)
    return ids, ranges


def build_stream(tok: BuiltinTokenizer, docs: Sequence[str], *, rng: random.Random, eos_prob: float) -> list[int]:
    """One long token stream: [BOS] doc [BOS] doc ..., with EOS runs after some spans."""
    stream: list[int] = []
    for doc in docs:
        ids, ranges = encode_document(tok, doc)
        out: list[int] = [tok.bos_id]
        prev = 0
        for _s, e in ranges:
            out.extend(ids[prev:e])
            prev = e
            if eos_prob and rng.random() < eos_prob:
                out.extend([tok.eos_id] * rng.randint(1, max(1, (e - _s) // 2)))
        out.extend(ids[prev:])
        stream.extend(out)
    return stream


def diffusion_loss(
    model: MDTransformer, x: torch.Tensor, *, mask_id: int, eps: float, generator: torch.Generator
) -> torch.Tensor:
    """The masked-diffusion NELBO estimate for a batch ``x`` (B, L), in nats per token."""
    b, n = x.shape
    u = torch.rand((), generator=generator)
    t = ((u + torch.arange(b) / b) % 1.0) * (1 - eps) + eps  # stratified t across the batch, (B,)
    masked = torch.rand((b, n), generator=generator) < t[:, None]
    noisy = torch.where(masked, torch.full_like(x, mask_id), x)
    logits = model(noisy)
    ce = F.cross_entropy(logits.flatten(0, 1), x.flatten(), reduction="none").view(b, n)
    return (ce * masked / t[:, None]).sum() / (b * n)


def infill_loss(
    model: MDTransformer, rows: Sequence[InfillRow], *, pad_id: int, mask_id: int, generator: torch.Generator
) -> torch.Tensor:
    """Cross-entropy on the slot positions of span-infill rows (mean over the still-masked positions).

    Per row a fraction ``t ~ U(0.1, 1)`` of the slot stays masked and the rest is revealed with its
    target, as in the middle of a denoising run; every row keeps at least one masked position.
    """
    width = max(len(r.ids) for r in rows)
    b = len(rows)
    x = torch.full((b, width), pad_id, dtype=torch.long)
    y = torch.full((b, width), -100, dtype=torch.long)
    attn = torch.zeros((b, width), dtype=torch.long)
    for i, r in enumerate(rows):
        x[i, : len(r.ids)] = torch.tensor(r.ids)
        attn[i, : len(r.ids)] = 1
        pos = torch.tensor([p for p, _ in r.targets])
        tgt = torch.tensor([t for _, t in r.targets])
        t = float(torch.rand((), generator=generator)) * 0.9 + 0.1
        keep = torch.rand(pos.shape, generator=generator) < t
        keep[int(torch.randint(0, pos.numel(), (1,), generator=generator))] = True
        x[i, pos[~keep]] = tgt[~keep]
        x[i, pos[keep]] = mask_id
        y[i, pos[keep]] = tgt[keep]
    logits = model(x, attn)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=-100)


def _lr(step: int, cfg: TrainConfig, elapsed_s: float = 0.0) -> float:
    """Warm-up, then cosine decay over the steps — or over ``max_minutes`` when that runs out first."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    if cfg.max_minutes:
        frac = max(frac, elapsed_s / (60 * cfg.max_minutes))
    frac = min(1.0, frac)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def train(cfg: TrainConfig, out_dir: str | Path, *, log: Callable[[str], None] = print) -> dict[str, object]:
    """Generate the corpus, train the tokenizer and the model, save weights + metrics to ``out_dir``.

    Deterministic for a given ``cfg`` (same seed → same corpus, tokenizer, batches and init) on the
    same torch build and thread count. Returns the metrics dict also written to ``metrics.json``.
    """
    from training.dlm.corpus import split_corpus

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = random.Random(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed if cfg.batch_seed is None else cfg.batch_seed)
    train_docs, held_docs = split_corpus(cfg.n_train_docs, cfg.n_heldout_docs, cfg.seed)
    init = None
    if cfg.init_from:
        from diffprompt.dlm.model import load_builtin

        init = load_builtin(path=cfg.init_from)
        tok = init.tokenizer
    else:
        tok = train_tokenizer(train_docs, vocab_size=cfg.vocab_size)
    log(f"corpus: {len(train_docs)} train / {len(held_docs)} held-out docs; vocab {tok.vocab_size}")
    stream = torch.tensor(build_stream(tok, train_docs, rng=rng, eos_prob=cfg.eos_insert_prob))
    log(f"train stream: {stream.numel()} tokens")
    mcfg = MDConfig(
        vocab_size=tok.vocab_size,
        d_model=cfg.d_model,
        n_layers=cfg.n_layers,
        n_heads=cfg.n_heads,
        d_ff=cfg.d_ff,
        max_length=cfg.max_length,
    )
    model = MDTransformer(mcfg) if init is None else init.model
    if init is not None:
        if cfg.max_length > model.cfg.max_length:  # RoPE: the same weights run on longer inputs
            model.cfg = replace(model.cfg, max_length=cfg.max_length)
        mcfg = model.cfg
        log(f"continuing from {cfg.init_from} ({sum(p.numel() for p in model.parameters())} params)")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=cfg.lr,
        betas=(0.9, 0.98),
    )
    row_rng = random.Random(cfg.seed + 11)
    t0 = time.perf_counter()
    model.train()
    done = 0
    for step in range(cfg.steps):
        if cfg.max_minutes and time.perf_counter() - t0 > 60 * cfg.max_minutes:
            log(f"max_minutes {cfg.max_minutes} reached at step {step}; stopping early")
            break
        starts = torch.randint(0, stream.numel() - cfg.seq_len, (cfg.batch_size,), generator=gen)
        x = torch.stack([stream[s : s + cfg.seq_len] for s in starts.tolist()])
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg, time.perf_counter() - t0)
        loss = diffusion_loss(model, x, mask_id=tok.mask_id, eps=cfg.eps, generator=gen)
        if cfg.infill_batch:
            rows: list[InfillRow] = []
            while len(rows) < cfg.infill_batch:
                row = infill_row(
                    tok,
                    row_rng,
                    bos_id=tok.bos_id,
                    mask_id=tok.mask_id,
                    eos_id=tok.eos_id,
                    insert_min=cfg.insert_min,
                    max_len=mcfg.max_length,
                    traces=cfg.infill_traces,
                )
                if row is not None:
                    rows.append(row)
            loss = loss + infill_loss(model, rows, pad_id=tok.pad_id, mask_id=tok.mask_id, generator=gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        done = step + 1
        if step % 50 == 0 or step == cfg.steps - 1:
            el = time.perf_counter() - t0
            log(f"step {step} loss {loss.item():.4f} lr {_lr(step, cfg, el):.2e} {el:.0f}s")
    model.eval()
    train_s = time.perf_counter() - t0
    save_model(model, tok, out_dir)
    log("evaluating on the held-out documents")
    metrics = evaluate_model(model, tok, held_docs, train_docs=train_docs, seed=cfg.seed)
    metrics["corpus_slots"] = evaluate_infill(model, tok)
    metrics["heldout_world_slots"] = {d: evaluate_infill(model, tok, domain=d) for d in ("airline", "retail")}
    metrics["train"] = {
        "config": asdict(cfg),
        "steps_done": done,
        "seconds": round(train_s, 1),
        "params": sum(p.numel() for p in model.parameters()),
    }
    (Path(out_dir) / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    log(json.dumps({k: v for k, v in metrics.items() if k != "train"}))
    return metrics


@torch.no_grad()
def evaluate_infill(
    model: MDTransformer, tok: BuiltinTokenizer, *, n_rows: int = 24, seed: int = 10_007, domain: str | None = None
) -> dict[str, float]:
    """Slot-filling accuracy on fresh infill rows, all slot positions masked.

    ``domain="airline"|"retail"``: the held-out τ worlds' policies (never trained on), no feedback.
    ``domain=None``: held-out rows of the training domains with judge/user feedback and traces.
    One forward per row, argmax at every masked position, against the rule sentence (+ [EOS] padding);
    ``content_accuracy`` counts only the positions whose target is a real token. Rows come from a
    ``random.Random(seed)`` stream that training (``seed + 11``) does not use.
    """
    model.eval()
    rng = random.Random(seed)
    n = correct = c_n = c_correct = ce = 0.0
    done = 0
    while done < n_rows:
        ids = {"bos_id": tok.bos_id, "mask_id": tok.mask_id, "eos_id": tok.eos_id, "max_len": model.cfg.max_length}
        row = (
            world_infill_row(tok, rng, domain=domain, **ids)
            if domain
            else infill_row(tok, rng, traces=True, **ids)
        )
        if row is None:
            continue
        done += 1
        pos = torch.tensor([p for p, _ in row.targets])
        tgt = torch.tensor([t for _, t in row.targets])
        logits = model(torch.tensor(row.ids)[None])[0, pos]
        hit = logits.argmax(-1) == tgt
        real = tgt != tok.eos_id
        n += tgt.numel()
        correct += float(hit.sum())
        c_n += float(real.sum())
        c_correct += float((hit & real).sum())
        ce += float(F.cross_entropy(logits, tgt, reduction="sum"))
    return {"rows": float(done), "accuracy": correct / n, "content_accuracy": c_correct / max(1.0, c_n),
            "ce_nats": ce / n, "masked_tokens": n}


def _eval_windows(
    tok: BuiltinTokenizer, docs: Sequence[str], seq_len: int
) -> list[tuple[torch.Tensor, list[tuple[int, int]]]]:
    out = []
    for doc in docs:
        ids, ranges = encode_document(tok, doc)
        ids = [tok.bos_id, *ids]
        for a in range(0, len(ids), seq_len):
            w = ids[a : a + seq_len]
            if len(w) >= 16:
                spans = [(s + 1 - a, e + 1 - a) for s, e in ranges if s + 1 >= a and e + 1 <= a + len(w)]
                out.append((torch.tensor(w), spans))
    return out


def unigram_logprobs(tok: BuiltinTokenizer, docs: Sequence[str]) -> torch.Tensor:
    """Add-one smoothed unigram log-probabilities over the vocabulary from ``docs``."""
    counts = torch.ones(tok.vocab_size)
    for doc in docs:
        counts += torch.bincount(
            torch.tensor(encode_document(tok, doc)[0], dtype=torch.long), minlength=tok.vocab_size
        ).float()
    return (counts / counts.sum()).log()


@torch.no_grad()
def evaluate_model(
    model: MDTransformer,
    tok: BuiltinTokenizer,
    docs: Sequence[str],
    *,
    train_docs: Sequence[str],
    seed: int = 0,
    seq_len: int = 256,
    nelbo_samples: int = 4,
) -> dict[str, object]:
    """Held-out masked-token accuracy/CE (15%, 50%, whole spans) and the Monte-Carlo NELBO.

    Each number comes with a unigram baseline fit on ``train_docs``; NELBO is in nats/token.
    """
    model.eval()
    gen = torch.Generator().manual_seed(seed + 17)
    uni = unigram_logprobs(tok, train_docs)
    uni_top = int(uni.argmax())
    windows = _eval_windows(tok, docs, seq_len)
    out: dict[str, object] = {
        "heldout_windows": len(windows),
        "heldout_tokens": sum(len(w) for w, _ in windows),
    }

    def score(masks: list[torch.Tensor]) -> dict[str, float]:
        n = correct = ce = u_correct = u_ce = 0.0
        for (w, _), m in zip(windows, masks, strict=True):
            logits = model(torch.where(m, tok.mask_id, w)[None])[0]
            tgt = w[m]
            ce += float(F.cross_entropy(logits[m], tgt, reduction="sum"))
            correct += float((logits[m].argmax(-1) == tgt).sum())
            u_ce += float(-uni[tgt].sum())
            u_correct += float((tgt == uni_top).sum())
            n += tgt.numel()
        return {
            "accuracy": correct / n,
            "ce_nats": ce / n,
            "unigram_accuracy": u_correct / n,
            "unigram_ce_nats": u_ce / n,
            "masked_tokens": n,
        }

    for rate in (0.15, 0.5):
        masks = []
        for w, _ in windows:
            m = torch.rand(w.shape, generator=gen) < rate
            m[int(torch.randint(0, w.numel(), (1,), generator=gen))] = True
            masks.append(m)
        out[f"mask_{int(rate * 100)}"] = score(masks)
    span_masks = []
    for w, spans in windows:
        m = torch.zeros(w.shape, dtype=torch.bool)
        if spans:
            s, e = spans[int(torch.randint(0, len(spans), (1,), generator=gen))]
            m[s:e] = True
        else:
            m[1:] = True
        span_masks.append(m)
    out["span"] = score(span_masks)
    total = nelbo = 0.0
    for w, _ in windows:
        for k in range(nelbo_samples):
            t = (k + float(torch.rand((), generator=gen))) / nelbo_samples * (1 - 1e-3) + 1e-3
            m = torch.rand(w.shape, generator=gen) < t
            if m.any():
                logits = model(torch.where(m, tok.mask_id, w)[None])[0]
                nelbo += float(F.cross_entropy(logits[m], w[m], reduction="sum")) / t / nelbo_samples
        total += w.numel()
    u_nll = sum(float(-uni[w].sum()) for w, _ in windows) / total
    out["nelbo"] = {"nats_per_token": nelbo / total, "unigram_nats_per_token": u_nll}
    return out
