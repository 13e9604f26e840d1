"""τ runner throughput offline: episodes/s at concurrency 1 vs 16 through the local HTTP sim server.

    python bench/tau_runner.py                 # 16 episodes per setting (airline world, seed 0)
    python bench/tau_runner.py --episodes 32 --compare-policy

Every episode goes the production path: ``create_agent`` τ agent → ``langchain-openai`` ChatOpenAI →
HTTP on 127.0.0.1 → ``SimulatedPolicy``; scripted users; a generated world. ``--compare-policy``
adds pass^1 (4 trials) of the full policy vs the policy with 4 rules deleted. Writes the
``## tau_runner`` section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import _results

from diffprompt.llm import CallMeter, make_chat_model
from tau_envs.domain import load_domain
from tau_envs.generate import degrade_policy, generate_world
from tau_envs.runner import run_tau
from tau_envs.serve import start_server
from tau_envs.users.scripted import ScriptedUser

HEADING = "## tau_runner"


def run(dom: Any, base_url: str, *, tasks: list[int], trials: int, concurrency: int, prompt: str) -> dict[str, Any]:
    meter = CallMeter()
    t0 = time.perf_counter()
    summ = run_tau(
        dom,
        tasks,
        trials=trials,
        concurrency=concurrency,
        model_factory=lambda s: make_chat_model(
            "openai:sim", base_url=base_url, api_key="local", seed=s, meter=meter, max_retries=0
        ),
        user_factory=lambda task, s: ScriptedUser(),
        system_prompt=prompt,
    )
    wall = time.perf_counter() - t0
    n = len(summ.results)
    return {
        "episodes": n,
        "seconds": wall,
        "eps": n / wall,
        "calls": meter.snapshot().calls,
        "calls_s": meter.snapshot().calls / wall,
        "pass1": summ.pass_hat_k.get(1, 0.0),
        "errors": summ.errors,
    }


def http_roundtrip_ms(n: int = 100) -> float:
    """Mean latency of one chat completion through the openai client with a trivial responder."""
    import openai

    with start_server(responder=lambda m, t, s: {"role": "assistant", "content": "ok " * 50}) as h:
        client = openai.OpenAI(base_url=h.base_url, api_key="local")
        msgs: Any = [{"role": "user", "content": "hi"}]
        client.chat.completions.create(model="sim", messages=msgs)
        t0 = time.perf_counter()
        for _ in range(n):
            client.chat.completions.create(model="sim", messages=msgs)
        return (time.perf_counter() - t0) * 1000 / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=16)
    ap.add_argument("--compare-policy", action="store_true")
    ap.add_argument("--compare-tasks", type=int, default=10)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        world = generate_world("airline", seed=0, n_users=200, n_tasks=40, out_dir=Path(tmp) / "w")
        dom = load_domain("airline", world, split="test")
        tasks = list(range(min(args.episodes, len(dom.tasks))))
        trials = max(1, args.episodes // len(tasks))
        lines: list[str] = []
        with start_server("airline") as server:
            rows = []
            for c in (1, 16):
                r = run(dom, server.base_url, tasks=tasks, trials=trials, concurrency=c, prompt=dom.policy)
                rows.append((c, r))
                print(
                    f"concurrency {c:2d}: {r['episodes']} episodes in {r['seconds']:.1f}s = "
                    f"{r['eps']:.2f} ep/s, "
                    f"{r['calls_s']:.1f} model calls/s, pass^1 {r['pass1']:.3f}, errors {r['errors']}"
                )
            base = rows[0][1]["eps"]
            lines += [
                "Episodes/s offline through the production path: `create_agent` τ agent → ChatOpenAI → "
                "HTTP on 127.0.0.1 → `SimulatedPolicy` (server thread in the bench process), scripted users, "
                f"generated airline world (seed 0, 200 users), {len(tasks)} test tasks × {trials} trial(s), "
                "full policy.",
                "",
                "| concurrency | episodes | seconds | episodes/s | model calls/s | vs c=1 | pass^1 | errors |",
                "|---|---|---|---|---|---|---|---|",
            ]
            for c, r in rows:
                lines.append(
                    f"| {c} | {r['episodes']} | {r['seconds']:.1f} | {r['eps']:.2f} | {r['calls_s']:.1f} | "
                    f"{r['eps'] / base:.2f}x | {r['pass1']:.3f} | {r['errors']} |"
                )
            rt = http_roundtrip_ms()
            print(f"HTTP round trip {rt:.1f} ms/call")
            lines += [
                "",
                f"Server overhead alone (openai client, trivial responder, 100 sequential calls): "
                f"{rt:.1f} ms per chat completion.",
            ]
            if args.compare_policy:
                from tau_envs.rules import rules_for

                degraded = degrade_policy(dom.policy, rules_for("airline"), n=4, seed=1)
                ct = list(range(min(args.compare_tasks, len(dom.tasks))))
                full = run(dom, server.base_url, tasks=ct, trials=4, concurrency=16, prompt=dom.policy)
                deg = run(dom, server.base_url, tasks=ct, trials=4, concurrency=16, prompt=degraded)
                print(f"pass^1 full {full['pass1']:.3f} vs 4 rules deleted {deg['pass1']:.3f}")
                lines += [
                    "",
                    f"Policy sensitivity ({len(ct)} tasks × 4 trials, concurrency 16): pass^1 full policy "
                    f"**{full['pass1']:.3f}** vs policy with 4 rules deleted **{deg['pass1']:.3f}**.",
                ]
        load = os.getloadavg()[0]
        lines += [
            "",
            f"Measured on the shared 2-core machine (1-min load average {load:.1f} at the end); the "
            "client and the server share one Python process (one GIL). "
            "`python bench/tau_runner.py` reproduces it.",
        ]
    write_section(lines)


def write_section(lines: list[str]) -> None:
    _results.write_section(HEADING, lines)


if __name__ == "__main__":
    main()
