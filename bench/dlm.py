"""DLM sampler overhead vs a bare forward, and forwards saved by threshold decoding.

    python bench/dlm.py            # CPU: a small random Dream-layout (Qwen2) model
    python bench/dlm.py --gpu      # CUDA: random bf16 models at Dream-7B and LLaDA-8B shapes

Per-step sampler time = wall time of ``infill(...)`` / forwards it made; the bare forward is the
underlying transformers module called on the same ids (no wrapper, no sampler), in the same process.
Overhead = per-step / bare - 1 (goal on GPU: within 10%). Writes its table into bench/RESULTS.md
under "## dlm".
"""

from __future__ import annotations

import argparse
import statistics
import time

import _results
import torch

from diffprompt.dlm.backends import HFDiffusionLM, random_dlm
from diffprompt.dlm.sampler import infill

HEADING = "## dlm: sampler vs bare forward"

SMALL = {"model_type": "Dream", "hidden_size": 256, "intermediate_size": 1024, "num_hidden_layers": 4,
         "num_attention_heads": 8, "num_key_value_heads": 2, "vocab_size": 8192, "max_position_embeddings": 4096,
         "rope_theta": 10000.0, "mask_token_id": 8191, "eos_token_id": 8190, "pad_token_id": 8190,
         "tie_word_embeddings": False}
DREAM_7B = {"model_type": "Dream", "hidden_size": 3584, "intermediate_size": 18944, "num_hidden_layers": 28,
            "num_attention_heads": 28, "num_key_value_heads": 4, "vocab_size": 152064,
            "max_position_embeddings": 131072, "rope_theta": 1e6, "rms_norm_eps": 1e-6,
            "mask_token_id": 151666, "eos_token_id": 151643, "pad_token_id": 151643, "tie_word_embeddings": False}
LLADA_8B = {"model_type": "llada", "d_model": 4096, "n_layers": 32, "n_heads": 32, "n_kv_heads": 32,
            "mlp_hidden_size": 12288, "vocab_size": 126464, "embedding_size": 126464, "rope_theta": 500000.0,
            "rms_norm_eps": 1e-5, "max_sequence_length": 4096, "mask_token_id": 126336,
            "eos_token_id": 126081, "pad_token_id": 126081}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _problem(m: HFDiffusionLM, batch: int, length: int, masked: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, min(m.mask_id, 30000), (batch, length), generator=g)
    mask = torch.zeros(batch, length, dtype=torch.bool)
    start = length // 2 - masked // 2
    mask[:, start : start + masked] = True  # one span in the middle, as the editor masks spans
    ids[mask] = m.mask_id
    return ids.to(m.device), mask.to(m.device)


def time_case(m: HFDiffusionLM, batch: int, length: int, *, steps: int, reps: int,
              sampling: dict) -> dict[str, float]:
    ids, mask = _problem(m, batch, length, masked=max(steps, length // 4))
    dev = m.device
    gen = torch.Generator(device=dev).manual_seed(0)

    def bare() -> None:
        with torch.no_grad():
            m.model(input_ids=ids, use_cache=False)

    def sample() -> int:
        return infill(m, ids, mask, steps=steps, generator=gen, **sampling).forwards

    bare()  # warm-up
    sample()
    fwd_times, step_times, ratios = [], [], []
    for _ in range(reps):  # interleaved, ratio per rep: robust to a machine whose load drifts
        _sync(dev)
        t = time.perf_counter()
        bare()
        _sync(dev)
        fwd_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        n = sample()
        _sync(dev)
        step_times.append((time.perf_counter() - t) / n)
        ratios.append(step_times[-1] / fwd_times[-1])
    fwd, step = statistics.median(fwd_times), statistics.median(step_times)
    return {"fwd_ms": fwd * 1e3, "step_ms": step * 1e3, "overhead": statistics.median(ratios) - 1.0}


def threshold_savings(m: HFDiffusionLM, *, length: int, masked: int, taus: list[float]) -> list[tuple[str, int]]:
    ids, mask = _problem(m, 4, length, masked)
    out = [("plain (1 token/step)", infill(m, ids, mask, steps=masked).forwards)]
    for tau in taus:
        out.append((f"threshold {tau}", infill(m, ids, mask, steps=masked, threshold=tau).forwards))
    return out


SAMPLINGS = {"greedy maxprob": {}, "T=1 top-p 0.9 margin": {"temperature": 1.0, "top_p": 0.9, "alg": "margin"}}


PEAK = 30.0  # LM-head scale that makes a random model's distributions peaked, like a trained model's


def run(models: dict[str, HFDiffusionLM], batches: list[int], lengths: list[int], *, steps: int,
        reps: int, samplings: dict[str, dict] = SAMPLINGS) -> list[str]:
    rows = ["| model | batch | length | sampling | bare forward ms | sampler ms/step | overhead |",
            "|---|---|---|---|---|---|---|"]
    for name, m in models.items():
        for b in batches:
            for n in lengths:
                for label, kw in samplings.items():
                    r = time_case(m, b, n, steps=steps, reps=reps, sampling=kw)
                    rows.append(f"| {name} | {b} | {n} | {label} | {r['fwd_ms']:.1f} | {r['step_ms']:.1f} | "
                                f"{r['overhead']:+.1%} |")
                    print(rows[-1], flush=True)
    return rows


def builtin_savings() -> list[str]:
    """Threshold savings on the trained built-in model, when its weights are present."""
    try:
        from diffprompt.dlm.model import load_builtin
    except ImportError:
        return ["(built-in model module not available)"]
    try:
        m = load_builtin()
        tok = m.tokenizer
        text = ("You must verify the user's identity before changing any reservation. Never issue a refund "
                "without explicit confirmation from the user. Always be polite and concise.")
        ids = torch.tensor([tok.encode(text)], device=m.device)
    except Exception as exc:  # weights not trained yet, etc.: report, don't fail the bench
        return [f"(built-in model not loadable: {type(exc).__name__}: {exc})"]
    n = ids.shape[1]
    mask = torch.zeros_like(ids, dtype=torch.bool)
    mask[:, n // 3 : n // 3 + n // 3] = True
    masked = int(mask.sum())
    ids = ids.masked_fill(mask, m.mask_id)
    lines = ["| built-in model, policy text | masked | forwards |", "|---|---|---|"]
    lines.append(f"| plain (1 token/step) | {masked} | {infill(m.logits, ids, mask, steps=masked).forwards} |")
    for tau in (0.9, 0.7, 0.5):
        f = infill(m.logits, ids, mask, steps=masked, threshold=tau).forwards
        lines.append(f"| threshold {tau} | {masked} | {f} |")
    return lines


def write_section(lines: list[str]) -> None:
    _results.write_section(HEADING, lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpu", action="store_true", help="Dream-7B / LLaDA-8B shapes in bf16 on CUDA")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=4, help="sampler steps per timed call")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    torch.set_grad_enabled(False)
    if args.gpu:
        if not torch.cuda.is_available():
            raise SystemExit("error: --gpu needs a CUDA device")
        dev, dtype = torch.device("cuda"), torch.bfloat16
        lengths, batches = [512, 1024, 2048], [1, 8]
        shapes = {"Dream-7B shape": DREAM_7B, "LLaDA-8B shape": LLADA_8B}
        env = f"{torch.cuda.get_device_name(dev)}, bf16, random weights"
    else:
        dev, dtype = torch.device("cpu"), torch.float32
        torch.set_num_threads(1)  # the CI/dev box is shared: one thread gives steadier ratios
        lengths, batches = [64, 128, 256], [1, 8]
        shapes = {"small Qwen2/Dream (4L, 256d, V=8192)": SMALL}
        env = f"CPU ({torch.get_num_threads()} threads), fp32, random weights"
    lines = [f"`python bench/dlm.py{' --gpu' if args.gpu else ''}` — {env}; {args.steps} steps per call, "
             f"median of {args.reps} interleaved reps (overhead = median of per-rep ratios); "
             "masked = one middle span of max(steps, length/4) tokens. Overhead = sampler time per step "
             "(forward + Dream shift + token choice + commit) / bare module forward - 1.",
             ""]
    table: list[str] = []
    savings: list[str] = ["", "| random model (4 rows) | masked | forwards |", "|---|---|---|"]
    for name, raw in shapes.items():
        m = random_dlm(raw, device=dev, dtype=dtype, name=name)
        part = run({name: m}, batches, lengths, steps=args.steps, reps=args.reps)
        table += part if not table else part[2:]
        # random weights give flat distributions: top-p then needs a full vocabulary sort (the worst
        # case); a scaled head gives peaked ones, where the top-256 prefix holds the nucleus
        m.model.lm_head.weight.data.mul_(PEAK)
        peaked = {f"T=1 top-p 0.9 margin, head x{PEAK:g} (peaked)": SAMPLINGS["T=1 top-p 0.9 margin"]}
        table += run({name: m}, batches, lengths, steps=args.steps, reps=args.reps, samplings=peaked)[2:]
        for label, f in threshold_savings(m, length=lengths[0], masked=32, taus=[0.9, 0.5]):
            savings.append(f"| {name}, head x{PEAK:g}: {label} | 32 | {f} |")
        del m
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    lines += table + savings
    lines += ["", "Threshold rows above use the random model with its head scaled (peaked but meaningless "
              "predictions): they show the mechanism, not real savings. On the trained built-in model:", ""]
    lines += builtin_savings()
    if not args.gpu:
        lines += ["", "Dream-7B / LLaDA-8B shapes (bf16, 512/1k/2k tokens, batch 1 and 8): run "
                  "`python bench/dlm.py --gpu` on a CUDA machine; this table is CPU only."]
    print("\n".join(lines))
    if not args.no_write:
        write_section(lines)


if __name__ == "__main__":
    main()
