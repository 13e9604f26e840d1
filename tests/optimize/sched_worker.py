"""A scheduler worker process for the two-worker tests: ``python sched_worker.py DB OWNER MODE``.

Every worker event is one JSON line on stdout (flushed), so the test waits on events instead of
sleeping. MODE ``fast``: a runner that records its tick and finishes at once. MODE ``round``: the
real optimization round on a FakeReplay; each episode is an ``episode`` event. MODE ``hang``: the
same round, stuck in its first episode (so the test kills it mid-run, deterministically).
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[2]), str(Path(__file__).resolve().parents[2] / "src")]

from diffprompt.optimize.attribution import ExplainBlamer, Explanation  # noqa: E402
from diffprompt.optimize.config import OptimizeConfig  # noqa: E402
from diffprompt.optimize.loop import run_round  # noqa: E402
from diffprompt.optimize.oracle import OracleEditor  # noqa: E402
from diffprompt.optimize.replay import FakeReplay  # noqa: E402
from diffprompt.scheduler import Worker  # noqa: E402
from diffprompt.store import open_store  # noqa: E402

RULE = "Extra checked bags cost 50 dollars each."
_out = threading.Lock()


def main() -> None:
    db, owner, mode = sys.argv[1:4]
    store = open_store(db)

    def note(kind: str, data) -> None:
        with _out:
            sys.stdout.write(json.dumps({"owner": owner, "kind": kind, **dict(data)}, default=str) + "\n")
            sys.stdout.flush()

    class SlowReplay(FakeReplay):
        def run(self, case, system_prompt, *, seed, trial):
            note("episode", {"case": str(getattr(case, "id", case))})
            if mode == "hang":
                threading.Event().wait()  # stuck mid-round until the test kills this process
            return super().run(case, system_prompt, seed=seed, trial=trial)

    def world() -> SlowReplay:
        rules = {f"ok{i}": "original payment method" for i in range(20)}
        rules |= {f"bag{i}": "cost 50 dollars" for i in range(20)}
        return SlowReplay(rules)

    def fast(store, job, run_id):
        note("ran", {"run_id": run_id})
        store.save_run(run_id, job.slot, {"job_id": job.id, "worker": owner}, status="rejected")
        return {"status": "rejected"}

    def slow_round(store, job, run_id):
        explain = lambda t, p: [Explanation(text=RULE, reason="bag fee rule missing", kind="missing")]  # noqa: E731
        cfg = OptimizeConfig(
            n_candidates=2, iterations=1, screen_cases=4, holdout_cases=30, replay_concurrency=1
        )
        res = run_round(
            store,
            job.slot,
            env=world(),
            editor=OracleEditor(explore=0.0),  # a labelled ceiling: the scheduler is under test, not the editor
            config=cfg,
            blamer=ExplainBlamer(explain),
            run_id=run_id,
            actor=owner,
        )
        return res.summary()

    w = Worker(
        store,
        fast if mode == "fast" else slow_round,
        owner=owner,
        lease_ttl_s=3.0,
        heartbeat_s=0.5,
        on_event=note,
    )
    w.run_forever()
    store.close()


if __name__ == "__main__":
    main()
