"""Built-in DLM on CPU: candidates/s of the DLM editor at 64 steps, against bare forwards of the same batch.

Also copies the held-out quality numbers of the shipped model (``dlm/builtin/metrics.json``, written by
``diffprompt dlm train``) into the table. Run: ``python bench/dlm_builtin.py [--threads 1] [--no-write]``.
Writes its section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).with_name("RESULTS.md")
HEADING = "## dlm-builtin"

PROMPT = """# Airline agent policy

You are an airline agent. You help users book, modify, or cancel reservations.

- At the beginning of the conversation, authenticate the user by their user id and email.
- Before cancelling a reservation, confirm the details with the user and obtain an explicit yes.
- Basic economy flights cannot be modified.
- Each reservation can have at most five passengers.

## Refunds

Refunds go to the original payment method. Transfer the user to a human agent only if you cannot help.
"""


def _traces():
    from datetime import UTC, datetime

    from diffprompt.types import Feedback, Trace, TraceWithFeedback

    t0 = datetime(2024, 5, 15, tzinfo=UTC)
    out = []
    for i in range(3):
        msgs = (
            {"role": "user", "content": f"Cancel reservation ABC{i:03d}, my email is a{i}@example.com."},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "function": {
                            "name": "cancel_reservation",
                            "arguments": f'{{"reservation_id": "ABC{i:03d}"}}',
                        }
                    }
                ],
            },
            {"role": "tool", "content": '{"status": "cancelled"}'},
            {"role": "assistant", "content": "Done, it is cancelled."},
        )
        tr = Trace(
            id=f"t{i}",
            slot="s",
            version_id="v",
            thread_id=f"th{i}",
            messages=msgs,
            started_at=t0,
            ended_at=t0,
        )
        out.append(
            TraceWithFeedback(
                trace=tr,
                feedback=(
                    Feedback(trace_id=tr.id, kind="reward", value=0.0),
                    Feedback(
                        trace_id=tr.id,
                        kind="comment",
                        value=None,
                        text="Cancelled without asking me to confirm.",
                    ),
                ),
            )
        )
    return out


def measure(n: int, steps: int, reps: int) -> dict[str, float]:
    from diffprompt.dlm.editor import DLMEditor
    from diffprompt.dlm.model import load_builtin
    from diffprompt.spans import segment
    from diffprompt.types import PromptVersion

    dlm = load_builtin()
    p = PromptVersion(
        id="v",
        slot="s",
        text=PROMPT,
        spans=segment(PROMPT),
        parent_id=None,
        created_at=_traces()[0].trace.started_at,
        origin="seed",
    )
    sids = [s.id for s in p.spans if s.kind == "bullet"][1:3]
    ed = DLMEditor(dlm, steps=steps, temperature=0.6, resample_rounds=0)
    traces = _traces()
    from diffprompt.editing import EditRequest

    def req(seed: int) -> EditRequest:
        return EditRequest(prompt=p, span_ids=tuple(sids), traces=tuple(traces), n=n, seed=seed)

    ed.propose(req(0))  # warm-up
    t0 = time.perf_counter()
    cands = fwd = 0
    for r in range(reps):
        cands += len(ed.propose(req(r + 1)))
        fwd += ed.last_forwards
    dt = (time.perf_counter() - t0) / reps
    fwd = round(fwd / reps)
    rows = ed._rows(p, sids, traces, n, __import__("random").Random(0), ())
    width = max(len(x.layout) for x in rows)
    masks = sum(len(x.layout.mask_positions) for x in rows) / n
    ids = torch.randint(6, dlm.tokenizer.vocab_size, (n, width))
    t0 = time.perf_counter()
    for _ in range(reps):
        for _ in range(fwd):
            dlm.logits(ids)
    bare = (time.perf_counter() - t0) / reps
    return {
        "n": n,
        "steps": steps,
        "forwards": fwd,
        "width": width,
        "masks_per_row": masks,
        "seconds": dt,
        "cands_per_s": cands / reps / dt,
        "bare_seconds": bare,
        "valid": cands / reps,
    }


def quality_lines() -> list[str]:
    from diffprompt.dlm.model import BUILTIN_DIR

    path = BUILTIN_DIR / "metrics.json"
    if not path.is_file():
        return ["(no metrics.json: run `diffprompt dlm train --out src/diffprompt/dlm/builtin`)"]
    m = json.loads(path.read_text())
    tr = m["train"]
    lines = [
        f"Held-out quality of the shipped model ({tr['params']:,} params, "
        f"{tr.get('total_steps', tr['steps_done'])} steps, "
        f"{tr.get('total_seconds', tr['seconds']) / 60:.1f} min CPU training in total, seed {tr['config']['seed']}; "
        f"{m['heldout_tokens']:,} held-out tokens; from `src/diffprompt/dlm/builtin/metrics.json`):",
        "",
        "| masking | accuracy | unigram accuracy | CE (nats/token) | unigram CE |",
        "|---|---|---|---|---|",
    ]
    for key, label in (("mask_15", "15% random"), ("mask_50", "50% random"), ("span", "one whole span")):
        r = m[key]
        lines.append(
            f"| {label} | {r['accuracy']:.3f} | {r['unigram_accuracy']:.3f} | {r['ce_nats']:.3f} | "
            f"{r['unigram_ce_nats']:.3f} |"
        )
    nel = m["nelbo"]
    lines += ["", f"NELBO: {nel['nats_per_token']:.3f} nats/token (unigram {nel['unigram_nats_per_token']:.3f})."]
    if m.get("phases"):
        ws = m.get("world_slots")
        if ws:
            lines += [
                "",
                f"World-policy slots (degraded airline/retail policies, optimizer-style insertion and in-place slots "
                f"all masked, one forward, {ws['rows']:.0f} rows): token accuracy {ws['accuracy']:.3f}, on rule "
                f"tokens {ws['content_accuracy']:.3f}, CE {ws['ce_nats']:.3f} nats.",
            ]
        lines += ["", "Training recipe (each phase continues the previous one; phases 1-3 on 1 CPU thread, "
                  "4-5 on 2):", ""]
        lines += ["| phase | command | steps | seconds | acc@15% | acc@50% | NELBO |", "|---|---|---|---|---|---|---|"]
        for i, ph in enumerate(m["phases"], 1):
            lines.append(
                f"| {i} | `{ph['command']}` | {ph['steps']} | {ph['seconds']:.0f} | "
                f"{ph['mask_15_accuracy']:.3f} | {ph['mask_50_accuracy']:.3f} | {ph['nelbo_nats_per_token']:.3f} |"
            )
    lines += [
        "",
        "Phases 1-3: the masked-diffusion objective on 160-token windows of the generated corpus (phase 1 ran "
        "while the 2 cores were shared with ~6 other jobs). Phases 4-5 add the span-infill objective "
        "(`dlm/infill_rows.py`): our worlds' policies degraded as the demo does, insertion slots after the "
        "closest neighbour and garbled spans masked in place, targets = the rule sentences + EOS, feedback "
        "lines (and in phase 5 failing-trace snippets) in front; max_length 1024 (RoPE), full policies "
        "upweighted in the diffusion stream. The trace snippets are synthetic (template turns, real "
        "feedback format).",
    ]
    return lines


def rule_writing(n: int = 6, seed: int = 1) -> tuple[list[str], float]:
    """Does the editor write missing world rules into the slots the optimizer opens? (the demo's question)

    The airline world policy degraded as the demo does (3 deleted + 1 garbled) and 3 random degradations
    (2 deleted + 1 garbled); deleted rules get an insertion slot after their TF-IDF-closest span
    (``optimize.prepare.insert_placeholders``), garbled ones are masked in place, the feedback names
    the rules as the offline judge does. A rule counts as written when one span of the candidate
    states it for the simulated target model (``tau_envs.sim.matching.best_span`` >= 0.8).
    """
    import random

    from diffprompt.dlm.editor import DLMEditor
    from diffprompt.dlm.model import load_builtin
    from diffprompt.editing import EditRequest
    from diffprompt.optimize.attribution import SpanScore, closest_span
    from diffprompt.optimize.prepare import insert_placeholders
    from diffprompt.spans import segment
    from diffprompt.types import PromptVersion, utcnow
    from tau_envs.generate.policy import degrade_policy, policy_text
    from tau_envs.rules import rules_for
    from tau_envs.sim.matching import best_span

    dlm = load_builtin()
    rules = rules_for("airline")
    by = {r.id: r for r in rules}
    cases = [(("airline.confirm", "airline.free_bags", "airline.basic_no_change"), ("airline.cancel_eligibility",))]
    rng = random.Random(seed)
    for _ in range(3):
        ids = rng.sample(sorted(by), 3)
        cases.append((tuple(ids[:2]), tuple(ids[2:])))
    lines = ["| deleted | garbled | rules written (candidates stating each rule) | seconds |", "|---|---|---|---|"]
    hits = tot = 0
    for dele, gar in cases:
        text = degrade_policy(policy_text("airline"), rules, delete=dele, garble=gar, seed=0)
        pv = PromptVersion(id="pv", slot="s", text=text, spans=segment(text), parent_id=None,
                           created_at=utcnow(), origin="seed")
        ed = [s for s in pv.spans if s.kind != "heading"]
        chosen: list[SpanScore] = []
        for r in dele:
            sp, _ = closest_span(by[r].text, ed)
            if sp is not None and sp.id not in {c.span_id for c in chosen}:
                chosen.append(SpanScore(span_id=sp.id, score=1.0, insert=True))
        for r in gar:
            sp, _ = closest_span(by[r].text, ed, anagram=True)
            if sp is not None:
                chosen.append(SpanScore(span_id=sp.id, score=1.0))
        base, mask_ids, ph = insert_placeholders(pv, chosen)
        fb = tuple(f"the agent broke a rule (should state: {by[r].text})" for r in (*dele, *gar))
        t0 = time.perf_counter()
        req = EditRequest(prompt=base, span_ids=tuple(mask_ids), insert_span_ids=tuple(ph), feedback=fb, n=n, seed=0)
        cands = DLMEditor(dlm).propose(req)
        dt = time.perf_counter() - t0
        cells = []
        for r in (*dele, *gar):
            ok = sum(best_span(by[r], c.text)[0] >= 0.8 for c in cands)
            hits += ok
            tot += len(cands)
            cells.append(f"{r.split('.')[1]} {ok}/{len(cands)}")
        lines.append(f"| {', '.join(d.split('.')[1] for d in dele)} | {', '.join(g.split('.')[1] for g in gar)} | "
                     f"{'; '.join(cells)} | {dt:.0f} |")
        print(lines[-1], flush=True)
    rate = hits / max(1, tot)
    return lines, rate


def write_section(lines: list[str]) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    body = HEADING + "\n\n" + "\n".join(lines).rstrip() + "\n"
    if HEADING in text:
        head, rest = text.split(HEADING, 1)
        nxt = rest.find("\n## ")
        text = head + body + (rest[nxt + 1 :] if nxt >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + body
    RESULTS.write_text(text)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-rules", action="store_true", help="skip the (slow) rule-writing table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]
    lines = [
        f"CPU, {args.threads} thread(s), 1-min load average {load:.1f} on {os.cpu_count()} cores "
        "(shared machine: lower bounds). Editor = one batched `infill` call at 64 steps over n candidate "
        "rows (2 masked spans, 3 traces, factors 0.75/1.0/1.5); bare = the same number of forwards "
        "of the same batch shape with no sampling (the sampler stops once every mask is filled, so it uses "
        "fewer than 64 forwards when rows have fewer masks); overhead = editor / bare - 1.",
        "",
        "| candidates (n) | seq len | masks/row | forwards | editor s | candidates/s | bare s | overhead |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in (1, 4, 8):
        r = measure(n, 64, args.reps)
        lines.append(
            f"| {n} | {r['width']} | {r['masks_per_row']:.0f} | {r['forwards']} | {r['seconds']:.2f} | "
            f"{r['cands_per_s']:.2f} | {r['bare_seconds']:.2f} | "
            f"{r['seconds'] / r['bare_seconds'] - 1:+.0%} |"
        )
        print(lines[-1], flush=True)
    lines += ["", *quality_lines()]
    if not args.no_rules:
        rl, rate = rule_writing()
        lines += [
            "",
            f"Rule writing on the airline world policy ({rate:.0%} of (rule, candidate) pairs state the rule; "
            "6 candidates per case, 64 steps; `rule_writing()`):",
            "",
            *rl,
        ]
    print("\n".join(lines))
    if not args.no_write:
        write_section(lines)


if __name__ == "__main__":
    main()
