"""``diffprompt demo`` and ``diffprompt report``: the whole loop offline, and the HTML run report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from diffprompt.cli import common
from diffprompt.cli.common import console


class DemoView:
    """Renders ``DemoEvent``s: progress bars for traffic, tables for the round's stages."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.progress: Progress | None = None
        self.task: Any = None
        self.rewards: list[float] = []

    def _stop_progress(self) -> None:
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def _start_progress(self, label: str, total: int) -> None:
        self._stop_progress()
        self.rewards = []
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("mean reward {task.fields[mean]}"), TimeElapsedColumn(),
                                 console=console, transient=False)
        self.task = self.progress.add_task(label, total=total, mean="-")
        self.progress.start()

    def __call__(self, event: Any) -> None:
        if self.quiet:
            return
        k, d = event.kind, event.data
        if k == "setup":
            console.rule("[bold]diffprompt demo")
            console.print(f"store [cyan]{d['db_url']}[/] · world [cyan]{d['world']}[/]")
            console.print(f"slot [bold]{d['slot']}[/] seeded with a degraded policy (version {d['seed_version']}): "
                          f"deleted {d['deleted'] or '-'}, garbled {d['garbled'] or '-'}")
        elif k == "traffic_start":
            label = {"before": "live traffic (seed prompt)", "after": "live traffic (promoted prompt)"}.get(
                d["phase"], d["phase"])
            self._start_progress(label, d["episodes"])
        elif k == "episode" and self.progress is not None:
            self.rewards.append(float(d["reward"]))
            self.progress.update(self.task, advance=1, mean=f"{sum(self.rewards) / len(self.rewards):.3f}")
        elif k == "traffic_done":
            self._stop_progress()
            console.print(f"  pass^k {_fmt_pass(d['pass_hat_k'])} · {d['episodes']} episodes recorded "
                          f"· {d['errors']} errors · {d['seconds']} s")
        elif k == "round:window":
            console.rule("[bold]optimization round")
            console.print(f"window: {d['n']} traces, {d['failures']} failures, {d['successes']} successes")
        elif k == "round:attribution":
            self._blame(d.get("ranking", []))
        elif k == "round:masked":
            console.print(Panel(d.get("masked_prompt", ""), title=f"masked prompt (iteration {d.get('iteration')})",
                                expand=False))
        elif k == "round:candidates":
            console.print(f"  iteration {d.get('iteration')}: {d.get('n')} candidates denoised, "
                          f"{d.get('valid')} valid")
        elif k == "round:screen":
            scores = ", ".join(f"{s:.3f}" for s in d.get("candidates", []))
            console.print(f"  screened on a minibatch: parent {d.get('parent')} → candidates [{scores}]")
        elif k == "round:replay":
            t = Table(title="paired held-out replay (same cases, same seeds)")
            t.add_column("prompt")
            t.add_column("mean reward", justify="right")
            for name, v in d.items():
                t.add_row(str(name), f"{v:.3f}" if isinstance(v, int | float) else str(v))
            console.print(t)
        elif k == "round:decision":
            style = "green" if d.get("kind") == "promote" else "red"
            console.print(f"gate: [bold {style}]{d.get('kind')}[/] — " + "; ".join(d.get("reasons", [])))
        elif k == "candidates":
            self._candidates(d)
        elif k == "heldout":
            self._stop_progress()
        elif k.startswith("round:") or k == "done":
            return

    def _candidates(self, d: dict[str, Any]) -> None:
        t = Table(title="denoised candidates (new span texts)")
        t.add_column("#")
        t.add_column("status")
        t.add_column("screen", justify="right")
        t.add_column("new text")
        for i, c in enumerate(d.get("candidates", [])[:8]):
            texts = " / ".join(str(v) for v in (c.get("new_texts") or {}).values())
            score = c.get("screen_score")
            t.add_row(str(i), str(c.get("status")), "-" if score is None else f"{score:.3f}", texts[:160])
        console.print(t)
        if d.get("finalist_diff"):
            console.print(Panel(d["finalist_diff"], title="span diff of the finalist", expand=False))

    def _blame(self, ranking: list[dict[str, Any]]) -> None:
        t = Table(title="blamed spans (attribution)")
        t.add_column("span")
        t.add_column("score", justify="right")
        t.add_column("evidence")
        for r in ranking[:6]:
            ev = "; ".join(str(e.get("reason", "")) for e in r.get("evidence", [])[:2])
            t.add_row(str(r.get("span_id", "")), f"{r.get('score', 0):.3f}", ev[:100])
        console.print(t)


def _fmt_pass(p: dict[Any, float]) -> str:
    return " ".join(f"^{k}={v:.3f}" for k, v in sorted(p.items(), key=lambda kv: int(kv[0])))


def demo(
    ctx: typer.Context,
    model: str = typer.Option("sim", "--model", help="Target model: sim | openai:NAME."),
    user: str = typer.Option("scripted", "--user", help="User simulator: scripted | llm:NAME."),
    dlm: str = typer.Option("builtin", "--dlm", help="Diffusion LM: builtin | a checkpoint dir | a Hub id."),
    editor: str = typer.Option("dlm", "--editor", help="dlm | ar | rewrite."),
    tau_data: Path | None = typer.Option(None, "--tau-data", help="Official τ-bench data dir (default: generated)."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible base URL."),
    trials: int = typer.Option(2, "--trials", min=1, help="Live trials per task."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Episodes at once."),
    world_tasks: int = typer.Option(60, "--world-tasks", min=5, help="Tasks per split of the generated world."),
    seed: int = typer.Option(0, "--seed", help="Seed of the whole demo."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (last line)."),
) -> None:
    """Run the whole loop offline: live traffic, optimize, promote, more traffic, report."""
    from diffprompt.demo import DemoConfig, run_demo

    settings = common.state(ctx).settings()
    cfg = DemoConfig(
        home=Path(settings.home), db_url=common.state(ctx).db_url, model=model, user=user, dlm=dlm,
        editor=editor, tau_data=tau_data, base_url=base_url or settings.openai_base_url,
        api_key=settings.openai_api_key, live_trials=trials, concurrency=concurrency,
        world_tasks=world_tasks, seed=seed,
    )
    view = DemoView(quiet=as_json)
    result = run_demo(cfg, emit=view)
    if as_json:
        common.print_json(result.as_dict())
        return
    console.rule("[bold]result")
    t = Table(show_header=False)
    t.add_row("decision", f"{result.decision} — {'; '.join(result.reasons)}")
    t.add_row("live pass^1", f"{result.live_before:.3f} → "
              + ("(not promoted)" if result.live_after is None else f"{result.live_after:.3f}"))
    t.add_row("held-out pass^1 (test split)", f"{result.heldout_seed:.3f} → {result.heldout_final:.3f}")
    t.add_row("versions", f"{result.seed_version} → {result.final_version}")
    t.add_row("report", str(result.report))
    t.add_row("wall time", f"{result.seconds} s")
    console.print(t)


def report(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Optimizer run id (see `diffprompt runs list`)."),
    out: Path | None = typer.Option(None, "--out", help="HTML path (default: <home>/reports/<run id>.html)."),
) -> None:
    """Write the self-contained HTML report of a run and print its terminal summary."""
    from diffprompt.report import build_report, render_html, summary_rows

    settings = common.state(ctx).settings()
    store = common.open_store(ctx)
    try:
        data = build_report(store, run_id)
    finally:
        store.close()
    path = out or Path(settings.home) / "reports" / f"{run_id}.html"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    t = Table(show_header=False, title=f"run {run_id}")
    for label, value in summary_rows(data):
        t.add_row(label, value)
    console.print(t)
    console.print(f"report: {path}")


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
    root.command("report")(report)
