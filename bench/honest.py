"""The honest offline loop on several degraded scenarios of both domains, next to the oracle ceiling.

For each scenario (a generated world whose policy had rules deleted or garbled): the degraded seed
serves every test task once (the window, with reward feedback and the scripted users' complaints);
then one round per row on a copy of that window:

- ``dlm · honest judge``: the built-in DLM editor, blame from ``tau_envs.judge.TauJudge`` (evidence
  only, the offline default);
- ``ar`` / ``rewrite · honest judge`` with ``--editor-model`` (an OpenAI-compatible model, e.g. the
  SmolLM2 server of ``scripts/realmodel_server.sh``) when one answers at ``--base-url``;
- ``oracle ceiling``: the simulated model's own explanation (``--judge oracle``) and the oracle editor
  that pastes its hints — a labelled upper bound, not a baseline.

Held-out gain is measured on the *train* split (tasks no round read). The do-nothing baseline
(``tau_envs.baseline``, a model that never calls a tool) is reported beside every pass^1. The column
"verbatim" says whether the promoted prompt contains a deleted or garbled rule's catalogue sentence
word for word.

``python bench/honest.py [--quick] [--scenarios a,b] [--rows dlm,oracle,ar,rewrite]
[--editor-model NAME --base-url URL] [--fresh]`` writes the "honest loop" section of bench/RESULTS.md.
Rows of (scenario, row) pairs this run does not produce are kept from the section already there
(``--fresh`` drops them), so row sets can be run one after another; each row names its editor model.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import _results

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parents[1] / "src")]

from diffprompt.integrations.tau import build_tau, record_traffic  # noqa: E402
from diffprompt.integrations.tau.scenario import DEFAULT_SCENARIO, RETAIL_SCENARIO, Scenario  # noqa: E402
from diffprompt.optimize.build import build_blamer, build_editor  # noqa: E402
from diffprompt.optimize.config import OptimizeConfig  # noqa: E402
from diffprompt.optimize.loop import run_round  # noqa: E402
from diffprompt.optimize.replay import run_paired  # noqa: E402
from diffprompt.store.memory import MemoryStore  # noqa: E402
from tau_envs.baseline import do_nothing_pass1  # noqa: E402
from tau_envs.rules import rule_by_id  # noqa: E402
from tau_envs.users.scripted import ScriptedUser  # noqa: E402

HEADING = "## honest loop"
SCENARIOS = (
    DEFAULT_SCENARIO,
    Scenario(name="airline-cancel-comp-payment", domain="airline",
             delete=("airline.cancel_eligibility", "airline.comp_amount"), garble=("airline.ask_payment",)),
    Scenario(name="airline-owner-cabin-bags", domain="airline",
             delete=("airline.verify_owner", "airline.cabin_change_ok"), garble=("airline.free_bags",)),
    RETAIL_SCENARIO,
    Scenario(name="retail-reason-balance-product", domain="retail",
             delete=("retail.cancel_reason", "retail.gift_card_balance"), garble=("retail.same_product",)),
    Scenario(name="retail-user-items-delivered", domain="retail",
             delete=("retail.one_user", "retail.collect_all_items"), garble=("retail.delivered_only",)),
)


# Further scenarios (``--further``; section "honest loop: further scenarios"). ``dev-*``: chosen by
# hand and used to choose changes; ``freshA-*``: drawn at random (seed 20261202: 2 rules deleted, 1
# garbled, a random world seed), then used to choose changes; ``freshB-*``: drawn the same way
# (seed 777001) and run once, after the changes, as the estimate for scenarios we did not look at.
FURTHER_HEADING = "## honest loop: further scenarios"
FURTHER = (
    Scenario(name="dev-airline-cert-nobags-comp", domain="airline",
             delete=("airline.one_certificate", "airline.no_remove_bags"), garble=("airline.comp_eligibility",)),
    Scenario(name="dev-airline-pax-pay-cabin", domain="airline",
             delete=("airline.max_passengers", "airline.ask_payment"), garble=("airline.cabin_change_ok",)),
    Scenario(name="dev-airline-basic-amount-owner", domain="airline",
             delete=("airline.basic_no_change", "airline.comp_amount"), garble=("airline.verify_owner",)),
    Scenario(name="dev-retail-refund-reason-confirm", domain="retail",
             delete=("retail.refund_method", "retail.cancel_reason"), garble=("retail.confirm",)),
    Scenario(name="dev-retail-product-collect-balance", domain="retail",
             delete=("retail.same_product", "retail.collect_all_items"), garble=("retail.gift_card_balance",)),
    Scenario(name="dev-retail-delivered-auth-pending", domain="retail",
             delete=("retail.delivered_only", "retail.authenticate"), garble=("retail.pending_only",)),
    Scenario(name="freshA-airline-0", domain="airline", world_seed=1,
             delete=("airline.max_passengers", "airline.no_remove_bags"), garble=("airline.free_bags",)),
    Scenario(name="freshA-airline-1", domain="airline", world_seed=4,
             delete=("airline.comp_amount", "airline.max_passengers"), garble=("airline.cancel_eligibility",)),
    Scenario(name="freshA-airline-2", domain="airline", world_seed=5,
             delete=("airline.cancel_eligibility", "airline.one_certificate"), garble=("airline.verify_owner",)),
    Scenario(name="freshA-retail-3", domain="retail", world_seed=6,
             delete=("retail.same_product", "retail.collect_all_items"), garble=("retail.authenticate",)),
    Scenario(name="freshA-retail-4", domain="retail", world_seed=9,
             delete=("retail.confirm", "retail.gift_card_balance"), garble=("retail.one_user",)),
    Scenario(name="freshA-retail-5", domain="retail", world_seed=6,
             delete=("retail.one_user", "retail.delivered_only"), garble=("retail.cancel_reason",)),
    Scenario(name="freshB-airline-0", domain="airline", world_seed=29,
             delete=("airline.verify_owner", "airline.basic_no_change"), garble=("airline.no_remove_bags",)),
    Scenario(name="freshB-airline-1", domain="airline", world_seed=28,
             delete=("airline.max_passengers", "airline.basic_no_change"), garble=("airline.verify_owner",)),
    Scenario(name="freshB-airline-2", domain="airline", world_seed=20,
             delete=("airline.no_remove_bags", "airline.confirm"), garble=("airline.basic_no_change",)),
    Scenario(name="freshB-retail-3", domain="retail", world_seed=24,
             delete=("retail.refund_method", "retail.gift_card_balance"), garble=("retail.delivered_only",)),
    Scenario(name="freshB-retail-4", domain="retail", world_seed=18,
             delete=("retail.confirm", "retail.one_user"), garble=("retail.authenticate",)),
    Scenario(name="freshB-retail-5", domain="retail", world_seed=19,
             delete=("retail.authenticate", "retail.one_user"), garble=("retail.delivered_only",)),
)


def _dlm():
    try:
        from diffprompt.dlm.model import load_builtin

        return load_builtin(), ""
    except Exception as exc:  # weights missing or not loadable: the row says why
        return None, f"{type(exc).__name__}: {exc}"


def _model_up(base_url: str, tries: int = 3) -> bool:
    """Whether an OpenAI-compatible server answers ``/models`` (a shared, busy server gets 60 s a try)."""
    import urllib.request

    for _ in range(tries):
        try:
            with urllib.request.urlopen(base_url.rstrip("/") + "/models", timeout=60):
                return True
        except OSError:
            time.sleep(5)
    return False


def _copy(seed_store: MemoryStore, slot: str, text: str) -> MemoryStore:
    store = MemoryStore()
    store.create_slot(slot, text)
    win = seed_store.window(slot)
    store.add_traces([w.trace for w in win])
    store.add_feedback([f for w in win for f in w.feedback])
    return store


def run_scenario(sc: Scenario, rows_for: list[tuple[str, str, str]], home: Path, dlm, base_url: str | None,
                 nothing: dict[str, float]) -> list[str]:
    setup = build_tau(home=home, scenario=sc)
    dom, train = setup.domain("test"), setup.domain("train")
    seed_text = setup.seed_prompt(dom)
    env, train_env = setup.replay(dom), setup.replay(train)
    seed_store = MemoryStore()
    v0 = seed_store.create_slot(sc.domain, seed_text)
    window_pass = record_traffic(seed_store, v0, env, env.all_cases(), concurrency=4)
    comments = sum(1 for w in seed_store.window(sc.domain) for f in w.feedback if f.kind == "comment")
    cases = train_env.all_cases()
    seed_train = run_paired(train_env, cases, {"s": seed_text}, concurrency=4, seed=5).mean("s")
    if sc.domain not in nothing:
        nothing[sc.domain] = do_nothing_pass1(train, user_factory=lambda t, s: ScriptedUser(), concurrency=4).pass1
    deleted = [rule_by_id(r).text for r in (*sc.delete, *sc.garble)]
    out = []
    for label, kind, judge in rows_for:
        if kind == "dlm" and dlm is None:
            out.append(f"| {sc.name} | {label} | skipped (no DLM) | | | | | | | |")
            continue
        if kind in ("ar", "rewrite") and base_url is None:
            out.append(f"| {sc.name} | {label} | skipped (no editor model answered) | | | | | | | |")
            continue
        store = _copy(seed_store, sc.domain, seed_text)
        llm = kind in ("ar", "rewrite")
        editor = build_editor(kind, dlm=dlm if kind == "dlm" else None,
                              model=ARGS.editor_model if llm else None,
                              base_url=base_url if llm else None, api_key="x" if llm else None,
                              model_settings={"max_tokens": ARGS.editor_max_tokens[kind],
                                              "timeout_s": ARGS.editor_timeout} if llm else None)
        blamer = build_blamer(dom, judge=judge or None)
        t0 = time.perf_counter()
        res = run_round(store, sc.domain, env=env, editor=editor, config=OptimizeConfig(), seed=0, blamer=blamer)
        wall = time.perf_counter() - t0
        rec = store.get_run(res.run_id)
        active = store.active_version(sc.domain)
        promoted = bool(res.promoted_version_id)
        after = (run_paired(train_env, cases, {"v": active.text}, concurrency=4, seed=5).mean("v")
                 if promoted else seed_train)
        verbatim = any(s in active.text for s in deleted) if promoted else False
        p = f"{res.p_value:.2g}" if res.p_value is not None else "-"
        out.append(
            f"| {sc.name} | {label} | {res.status} | {p} | {seed_train:.3f} → {after:.3f} ({after - seed_train:+.3f}) "
            f"| {nothing[sc.domain]:.3f} | {_statuses(rec)} | {rec['cost']['target_calls']} | {wall:.1f} "
            f"| {'yes' if verbatim else 'no'} |"
        )
        print(out[-1], flush=True)
        print(f"  reasons: {'; '.join(map(str, res.decision.reasons))[:300]}", flush=True)
    print(f"{sc.name}: window pass^1 {window_pass:.3f}, {comments} user complaints", flush=True)
    return [*out, f"<!-- {sc.name}: window pass^1 {window_pass:.3f}, user complaints in window {comments} -->"]


def _statuses(rec: dict) -> str:
    """``"8: 6 screened, 2 unchanged"`` — how the round's candidates ended (the record's statuses)."""
    counts: dict[str, int] = {}
    for c in rec.get("candidates") or []:
        counts[c.get("status", "?")] = counts.get(c.get("status", "?"), 0) + 1
    total = sum(counts.values())
    if not total:
        return "0"
    return f"{total}: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1]))


def _existing() -> tuple[list[str], list[str]]:
    """The table rows and window notes already in the section (to keep those this run does not redo)."""
    text = _results.RESULTS.read_text() if _results.RESULTS.exists() else ""
    start = text.find(HEADING + "\n")
    if start < 0:
        return [], []
    end = text.find("\n## ", start + len(HEADING))
    body = text[start : end if end >= 0 else len(text)].splitlines()
    rows = [ln for ln in body  # rows of this table's 10 columns (older layouts are dropped)
            if ln.startswith("| ") and not ln.startswith(("| scenario", "|---")) and ln.count("|") == 11]
    notes = [f"<!-- {m.group(0)} -->" for ln in body if ln.startswith("Honest rounds promoted")
             for m in re.finditer(r"[\w-]+: window pass\^1 [0-9.]+, user complaints in window \d+", ln)]
    return rows, notes


def _key(row: str) -> tuple[str, str]:
    cells = [c.strip() for c in row.strip("|").split("|")]
    return (cells[0], cells[1]) if len(cells) > 1 else (row, "")


def _merge(old: list[str], new: list[str]) -> list[str]:
    """``new`` rows and window notes, plus the ``old`` ones whose (scenario, row) ``new`` does not redo."""
    redone = {_key(r) for r in new if not r.startswith("<!--")}
    noted = {r[5:].split(":")[0] for r in new if r.startswith("<!--")}
    keep = [r for r in old if not r.startswith("<!--") and _key(r) not in redone]
    keep += [r for r in old if r.startswith("<!--") and r[5:].split(":")[0] not in noted]
    order = {s.name: k for k, s in enumerate(SCENARIOS)}
    rows = sorted((r for r in [*keep, *new] if not r.startswith("<!--")),
                  key=lambda r: (order.get(_key(r)[0], 99), _ROW_ORDER.get(_key(r)[1].split(" ")[0], 9)))
    notes = sorted((r for r in [*keep, *new] if r.startswith("<!--")), key=lambda r: order.get(r[5:].split(":")[0], 99))
    return [*rows, *notes]


_ROW_ORDER = {"dlm": 0, "ar": 1, "rewrite": 2, "oracle": 3}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="40-task worlds")
    ap.add_argument("--scenarios", default="", help="comma-separated names (default: every one of the set)")
    ap.add_argument("--further", action="store_true",
                    help="the further scenarios (section \"honest loop: further scenarios\") instead of the six")
    ap.add_argument("--editor-model", default=None, help="OpenAI-compatible model for the ar/rewrite rows")
    ap.add_argument("--base-url", default=os.environ.get("DIFFPROMPT_TEST_LLM_URL"))
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    ap.add_argument("--rows", default="dlm,oracle,ar,rewrite",
                    help="which rows: dlm, oracle, ar, rewrite (ar/rewrite need --editor-model at --base-url)")
    ap.add_argument("--ar-max-tokens", type=int, default=256, help="reply limit of the ar editor's model calls")
    ap.add_argument("--rewrite-max-tokens", type=int, default=900,
                    help="reply limit of the rewrite editor's model calls (the writer answers a whole prompt)")
    ap.add_argument("--editor-timeout", type=float, default=600.0,
                    help="seconds per editor model call (a shared one-request-at-a-time server queues calls)")
    ap.add_argument("--fresh", action="store_true", help="drop the rows already in the section")
    global ARGS, HEADING, SCENARIOS
    ARGS = ap.parse_args()
    if ARGS.further:
        HEADING, SCENARIOS = FURTHER_HEADING, FURTHER
    ARGS.scenarios = ARGS.scenarios or ",".join(s.name for s in SCENARIOS)
    ARGS.editor_max_tokens = {"ar": ARGS.ar_max_tokens, "rewrite": ARGS.rewrite_max_tokens}
    bad = sorted(set(ARGS.rows.split(",")) - set(_ROW_ORDER))
    if bad:
        sys.exit(f"error: unknown rows {bad}; choose from {sorted(_ROW_ORDER)}")
    names = {s.name for s in SCENARIOS}
    if set(ARGS.scenarios.split(",")) - names:
        unknown = sorted(set(ARGS.scenarios.split(",")) - names)
        sys.exit(f"error: unknown scenarios {unknown}; choose from {sorted(names)}")
    chosen = [replace(s, world_tasks=40) if ARGS.quick else s for s in SCENARIOS
              if s.name in ARGS.scenarios.split(",")]
    dlm, why = _dlm()
    wanted = ARGS.rows.split(",")
    rows_for = [("dlm · honest judge", "dlm", "")] if "dlm" in wanted else []
    real = bool(ARGS.editor_model and ARGS.base_url and _model_up(ARGS.base_url))
    for kind in ("ar", "rewrite"):
        if kind in wanted and (real or ARGS.editor_model):
            rows_for.append((f"{kind} ({ARGS.editor_model}) · honest judge", kind, ""))
    if "oracle" in wanted:
        rows_for += [("oracle ceiling (oracle judge + editor)", "oracle", "oracle")]
    home = Path(tempfile.mkdtemp(prefix="bench-honest-"))
    nothing: dict[str, float] = {}
    rows: list[str] = []
    old_rows, old_notes = ([], []) if ARGS.fresh else _existing()
    t0 = time.perf_counter()
    for k, sc in enumerate(chosen):
        rows += run_scenario(sc, rows_for, home, dlm, ARGS.base_url if real else None, nothing)
        merged = _merge([*old_rows, *old_notes], rows)
        lines = _section(merged, dlm is None, why, time.perf_counter() - t0, k + 1, len(chosen))
        if not ARGS.no_write:  # after every scenario, so a cut-short run still leaves its rows
            _results.write_section(HEADING, lines)
    print("\n".join(lines))


def _section(rows: list[str], no_dlm: bool, why: str, total: float, done: int, n: int) -> list[str]:
    body = [r for r in rows if not r.startswith("<!--")]
    notes = [r[5:-4] for r in rows if r.startswith("<!--")]
    ran = [r for r in body if "skipped" not in r and "not run" not in r]
    per_kind = []
    for kind in ("dlm", "ar", "rewrite"):
        rows_k = [r for r in ran if _key(r)[1].startswith(kind + " ") and "honest judge" in r]
        if rows_k:
            per_kind.append(f"{kind} {sum('| promoted |' in r for r in rows_k)} of {len(rows_k)}")
    ceiling = [r for r in ran if "oracle ceiling" in r]
    lines = [
        "Offline: generated τ worlds (official share of refusal tasks), each scenario's policy with rules "
        "deleted or garbled; simulated target in-process, scripted users (who complain in their own words). "
        "One round per row at `OptimizeConfig()` defaults on a copy of the same recorded window (every test "
        "task once). Held-out = the *train* split, tasks no round read. \"do-nothing\" = pass^1 on that "
        "split of a model that never calls a tool (`tau_envs.baseline`). The oracle rows read the simulated "
        "model's rule book: an upper bound, not a result.",
        "",
        "| scenario | judge · editor | decision | p | held-out pass^1 seed → new (gain) | do-nothing | "
        "candidates | target calls | wall s | verbatim |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *body,
        "",
        f"Honest rounds promoted: {', '.join(per_kind) or 'none run'}; oracle ceiling promoted "
        f"{sum('| promoted |' in r for r in ceiling)} of {len(ceiling)}. Windows: " + "; ".join(notes) + ".",
        "",
        "`ar` / `rewrite` rows: the editor is the named OpenAI-compatible model (e.g. `--editor-model smollm2 "
        "--base-url http://127.0.0.1:8089/v1`, the real-model tier's SmolLM2-135M server); the target stays "
        "the in-process simulated model. \"candidates\": how the round's candidates ended (run record statuses).",
    ]
    if no_dlm:
        lines.append(f"DLM rows skipped: {why[:200]}")
    if done < n:
        lines.append(f"Partial: {done} of {n} scenarios finished when this was written.")
    lines.append(f"Latest run: {total:.0f} s on the shared 2-core machine (1-min load {os.getloadavg()[0]:.1f}). "
                 "`python bench/honest.py` reproduces it.")
    return lines


ARGS: argparse.Namespace
if __name__ == "__main__":
    main()
