"""``diffprompt demo`` and ``diffprompt report``: the whole loop offline, and the HTML run report."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from diffprompt.cli import common
from diffprompt.cli.common import console


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 candidate``, ``2 candidates`` (``many`` for irregular plurals: ``success`` → ``successes``)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def clip(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters, with "…" when cut."""
    text = " ".join(str(text).split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    head = cut.rsplit(" ", 1)[0] if " " in cut else cut
    return head.rstrip(" ,;:") + "…"


def version_label(name: str) -> str:
    """The user's name for a replayed version: ``incumbent`` → ``incumbent``; ``final0`` → ``candidate 1``."""
    if name.startswith("final") and name[5:].isdigit():
        return f"candidate {int(name[5:]) + 1}"
    return name


def replay_rows(data: Mapping[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """Rows (version, mean, wins/losses/ties vs the incumbent, cases, calls, tokens) of a replay event.

    Wins, losses and ties compare each case's mean reward over its trials with the incumbent's on the
    same case: the gate's unit, so the counts are the ones its sign test saw.
    """
    paired = data.get("paired") or {}
    versions: Mapping[str, Any] = paired.get("versions") or {}
    base = _case_means((versions.get("incumbent") or {}).get("episodes", []))
    rows = []
    for name, v in versions.items():
        means = _case_means(v.get("episodes", []))
        if name == "incumbent":
            wlt = "-"
        else:
            diffs = [m - base[c] for c, m in means.items() if c in base]
            wlt = f"{sum(d > 0 for d in diffs)} / {sum(d < 0 for d in diffs)} / {sum(d == 0 for d in diffs)}"
        rows.append((version_label(str(name)), f"{float(v.get('mean', 0.0)):.3f}", wlt, str(len(means)),
                     str(int(v.get("model_calls", 0))), f"{int(v.get('tokens', 0)):,}"))
    return rows


def _case_means(episodes: Sequence[Mapping[str, Any]]) -> dict[Any, float]:
    by_case: dict[Any, list[float]] = {}
    for e in episodes:
        by_case.setdefault(e.get("case"), []).append(float(e.get("reward", 0.0)))
    return {c: sum(rs) / len(rs) for c, rs in by_case.items()}


def blame_rows(ranking: Sequence[Mapping[str, Any]], *, limit: int = 6) -> list[tuple[str, str, str]]:
    """Rows (span, score, evidence) of the attribution: distinct reasons, cut at word boundaries."""
    rows = []
    for r in ranking[:limit]:
        reasons = list(dict.fromkeys(" ".join(str(e.get("reason", "")).split()) for e in r.get("evidence", [])))
        ev = clip("; ".join(x for x in reasons[:2] if x), 140)
        rows.append((str(r.get("span_id", "")), f"{float(r.get('score', 0.0)):.3f}", ev))
    return rows


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
        handler = _HANDLERS.get(k)
        if handler is not None:
            handler(self, d)
        elif k == "episode" and self.progress is not None:
            self.rewards.append(float(d["reward"]))
            self.progress.update(self.task, advance=1, mean=f"{sum(self.rewards) / len(self.rewards):.3f}")

    def setup(self, d: Mapping[str, Any]) -> None:
        _rule("diffprompt demo")
        _line(f"store {d['db_url']}")
        _line(f"world {d['world']}")
        _line(f"simulated: {'; '.join(d.get('simulated') or ()) or 'nothing (real models and data)'}")
        _line(f"judge: {d.get('judge')}")
        _line(f"editor: {d.get('editor')}")
        deleted = ", ".join(d.get("deleted") or ()) or "-"
        garbled = ", ".join(d.get("garbled") or ()) or "-"
        _line(f"slot {d['slot']} seeded with scenario {d.get('scenario')} (version {d['seed_version']}): "
              f"deleted {deleted}; garbled {garbled}")
        _line(f"live traffic: {plural(int(d['live_tasks']), 'task')} of the {d.get('live_split')} split; "
              f"held out: {plural(int(d['heldout_tasks']), 'task')} of the {d.get('heldout_split')} split "
              "that live traffic never serves")

    def traffic_start(self, d: Mapping[str, Any]) -> None:
        label = {"before": "live traffic (seed prompt)", "after": "live traffic (promoted prompt)"}.get(
            d["phase"], d["phase"])
        self._start_progress(label, d["episodes"])

    def traffic_done(self, d: Mapping[str, Any]) -> None:
        self._stop_progress()
        _line(f"  pass^k {_fmt_pass(d['pass_hat_k'])} · {plural(int(d['episodes']), 'episode')} recorded "
              f"· {plural(int(d['errors']), 'error')} · {d['seconds']} s")

    def window(self, d: Mapping[str, Any]) -> None:
        _rule("optimization round")
        _line(f"window: {plural(int(d['n']), 'trace')}, {plural(int(d['failures']), 'failure')}, "
              f"{plural(int(d['successes']), 'success', 'successes')}")

    def attribution(self, d: Mapping[str, Any]) -> None:
        common.print_table(common.table(["span", "score", "evidence"], blame_rows(d.get("ranking", [])),
                                        ids=["span"], right=["score"], title="blamed spans (attribution)"))

    def masked(self, d: Mapping[str, Any]) -> None:
        console.print(Panel(Text(str(d.get("masked_prompt", ""))), title=f"masked prompt (iteration "
                            f"{d.get('iteration')})", expand=False))

    def candidates_round(self, d: Mapping[str, Any]) -> None:
        n = int(d.get("n") or 0)
        _line(f"  iteration {d.get('iteration')}: {plural(n, 'candidate')} denoised, {d.get('valid')} valid")

    def screen(self, d: Mapping[str, Any]) -> None:
        scores = ", ".join(f"{float(s):.3f}" for s in d.get("candidates", []) if s is not None)
        parent = d.get("parent")
        parent_s = f"{float(parent):.3f}" if isinstance(parent, int | float) else "-"
        _line(f"  screened on a minibatch: parent {parent_s} → candidates [{scores}]")

    def replay(self, d: Mapping[str, Any]) -> None:
        rows = replay_rows(d)
        header = ["version", "mean reward", "wins / losses / ties", "cases", "calls", "tokens"]
        common.print_table(common.table(header, rows, right=header[1:],
                                        title="paired held-out replay (same cases, same seeds)"))

    def decision(self, d: Mapping[str, Any]) -> None:
        kind = str(d.get("kind"))
        style = "green" if kind == "promote" else "red"
        console.print(Text("gate: ") + Text(kind, style=f"bold {style}") + Text(" — " + "; ".join(
            str(r) for r in d.get("reasons", []))))
        if kind != "promote":
            _line("  not promoted: the seed prompt stays active; the report below shows the evidence")

    def candidates(self, d: Mapping[str, Any]) -> None:
        rows = []
        for i, c in enumerate(d.get("candidates", [])[:8]):
            texts = " / ".join(str(v) for v in (c.get("new_texts") or {}).values())
            score = c.get("screen_score")
            rows.append((str(i + 1), str(c.get("status")), "-" if score is None else f"{float(score):.3f}",
                         clip(texts or str(c.get("reason") or ""), 200)))
        common.print_table(common.table(["#", "status", "screen", "new text"], rows, right=["screen"],
                                        title="denoised candidates (new span texts)"))
        if d.get("finalist_diff"):
            console.print(Panel(Text(str(d["finalist_diff"])), title="span diff of the finalist", expand=False))
        if d.get("holdout_cases"):
            _line(f"the gate replayed {plural(int(d['holdout_cases']), 'held-out case')}, none of them among the "
                  f"{plural(int(d.get('read_cases') or 0), 'case')} the judge and the editor read")

    def heldout(self, d: Mapping[str, Any]) -> None:
        self._stop_progress()

    def canary(self, d: Mapping[str, Any]) -> None:
        self._stop_progress()
        n = {k: _num(d.get(k)) for k in ("canary_mean", "incumbent_mean", "difference", "lo", "hi")}
        _line(f"live canary test: {d['decision']}" + (f" ({d['action']})" if d.get("action") else "")
              + f" · canary {n['canary_mean']} vs incumbent {n['incumbent_mean']} over {d['canary_n']} vs "
              f"{d['incumbent_n']} threads · difference {n['difference']} [{n['lo']}, {n['hi']}]")


_HANDLERS = {
    "setup": DemoView.setup,
    "traffic_start": DemoView.traffic_start,
    "traffic_done": DemoView.traffic_done,
    "round:window": DemoView.window,
    "round:attribution": DemoView.attribution,
    "round:masked": DemoView.masked,
    "round:candidates": DemoView.candidates_round,
    "round:screen": DemoView.screen,
    "round:replay": DemoView.replay,
    "round:decision": DemoView.decision,
    "candidates": DemoView.candidates,
    "heldout": DemoView.heldout,
    "canary": DemoView.canary,
}


def _rule(title: str) -> None:
    """A section rule: the terminal's width on a terminal, 80 columns in a file (never a million)."""
    if console.is_terminal:
        console.rule(Text(title, style="bold"))
    else:
        _line(f"── {title} " + "─" * max(3, 76 - len(title)))


def _line(text: str) -> None:
    """One literal line that never wraps or gets cut (paths, ids and reasons stay whole)."""
    console.print(Text(text), soft_wrap=True)


def _num(x: Any) -> str:
    """A number for the terminal: 3 decimals for floats, as is otherwise (never a 17-digit float)."""
    return f"{x:.3f}" if isinstance(x, float) else str(x)


def _fmt_pass(p: Mapping[Any, float]) -> str:
    return " ".join(f"^{k}={v:.3f}" for k, v in sorted(p.items(), key=lambda kv: int(kv[0])))


def result_rows(result: Any) -> list[tuple[str, str]]:
    """The final summary (label, value); the report path is printed on its own line, whole."""
    rows = [("decision", f"{result.decision} — {'; '.join(result.reasons)}"),
            ("live pass^1", f"{result.live_before:.3f} → "
             + ("(not promoted)" if result.live_after is None else f"{result.live_after:.3f}"))]
    if result.heldout_seed is not None and result.heldout_final is not None:
        rows.append((f"held-out pass^1 ({result.heldout_split} split, {plural(result.heldout_tasks, 'task')})",
                     f"{result.heldout_seed:.3f} → {result.heldout_final:.3f}"))
    else:
        rows.append(("held-out pass^1", f"dropped: the {result.heldout_split} split has no task beside the live ones"))
    rows += [("versions", f"{result.seed_version} → {result.final_version}"), ("judge", result.judge),
             ("wall time", f"{result.seconds} s")]
    return rows


def demo(
    ctx: typer.Context,
    model: str = typer.Option("sim", "--model", help="Target model: sim | openai:NAME."),
    user: str = typer.Option("scripted", "--user", help="User simulator: scripted | llm:NAME."),
    judge: str | None = typer.Option(
        None, "--judge", help="Blame judge: an OpenAI-compatible model, or 'oracle' (upper bound); default offline."
    ),
    dlm: str = typer.Option("builtin", "--dlm", help="Diffusion LM: builtin | a checkpoint dir | a Hub id."),
    editor: str = typer.Option(
        "dlm", "--editor", help="dlm | ar | rewrite (both need --editor-model) | oracle | oracle-rewrite (ceilings)."
    ),
    editor_model: str | None = typer.Option(
        None, "--editor-model", help="OpenAI-compatible model (at --base-url) of --editor ar or rewrite."
    ),
    tau_data: Path | None = typer.Option(None, "--tau-data", help="Official τ-bench data dir (default: generated)."),
    base_url: str | None = typer.Option(None, "--base-url", help="OpenAI-compatible base URL."),
    trials: int = typer.Option(2, "--trials", min=1, help="Live trials per task."),
    concurrency: int = typer.Option(4, "--concurrency", min=1, help="Episodes at once."),
    world_tasks: int | None = typer.Option(
        None, "--world-tasks", min=5, help="Tasks per split of the generated world (default: the scenario's, 60)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the whole demo."),
    canary: float = typer.Option(
        0.5, "--canary", help="Share of the 2nd live batch on the promoted prompt, watched live (0: promote outright)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (last line)."),
) -> None:
    """Run the whole loop offline: live traffic, optimize, promote, more traffic, report."""
    from diffprompt.demo import DemoConfig, run_demo

    settings = common.state(ctx).settings()
    cfg = DemoConfig(
        home=Path(settings.home), db_url=common.state(ctx).db_url, model=model, user=user, judge=judge, dlm=dlm,
        editor=editor, editor_model=editor_model, tau_data=tau_data, base_url=base_url or settings.openai_base_url,
        api_key=settings.openai_api_key, live_trials=trials, concurrency=concurrency,
        world_tasks=world_tasks, seed=seed, canary_share=canary or None,
    )
    view = DemoView(quiet=as_json)
    result = run_demo(cfg, emit=view)
    if as_json:
        common.print_json(result.as_dict())
        return
    _rule("result")
    common.print_table(common.table(["", "value"], result_rows(result), ids=[""]))
    _line(f"report: {result.report}")


def report(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="Optimizer run id (see `diffprompt runs list`)."),
    out: Path | None = typer.Option(None, "--out", help="HTML path (default: <home>/reports/<run id>.html)."),
) -> None:
    """Write the self-contained HTML report of a run and print its terminal summary."""
    from diffprompt.report import build_report, render_html, summary_rows

    settings = common.state(ctx).settings()
    path = common.writable_path(out or Path(settings.home) / "reports" / f"{run_id}.html", "--out")  # before work
    store = common.open_store(ctx)
    try:
        data = build_report(store, run_id)
    finally:
        store.close()
    common.write_text_file(path, render_html(data), "--out")
    common.print_table(common.table(["", "value"], summary_rows(data), ids=[""], title=f"run {run_id}"))
    _line(f"report: {path}")


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
    root.command("report")(report)
