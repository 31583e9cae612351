"""The queue's scheduler with 1,000 queued tasks: scheduling overhead per task and the
time from a slot freeing to the next start.

Two modes:

- default: the scheduler's own cost. ``tick`` (aura/service/scheduler.py) runs against a
  real SQLite store; each started task is a trivial fake agent, a thread that moves its
  session queued → coding_initial → done after ``--agent-seconds``, so only the
  scheduler's work (reading the store, planning, the atomic claim) is measured.
- ``--real N``: N tasks started as real detached `aura task start` processes running the
  custom executor ``true``, end to end (dominated by starting a Python process per task).

    python3 bench/scheduler.py [--tasks 1000] [--limit 4] [--poll 0.05] [--real 40]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _queue(store: object, count: int, executor: str = "custom") -> list[str]:
    from aura.service import tasks
    from aura.service.run_options import RunOptions

    options = RunOptions(prompt="bench", executor=executor, base_command="true",
                         cwd=tempfile.gettempdir())
    return [tasks.add(store, options).id for _ in range(count)]  # type: ignore[arg-type]


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    return {"median_ms": round(statistics.median(ordered) * 1000, 2),
            "p95_ms": round(ordered[int(len(ordered) * 0.95) - 1] * 1000, 2),
            "max_ms": round(ordered[-1] * 1000, 2)}


def scheduler_only(count: int, limit: int, poll: float, agent_seconds: float) -> dict:
    from aura.contracts import State, Transition
    from aura.recorder import utc_now
    from aura.service import scheduler
    from aura.store_sqlite import SQLiteStore

    db = Path(os.environ["AURA_HOME"]) / "aura.db"
    store = SQLiteStore(db)
    _queue(store, count)
    agents = SQLiteStore(db)
    lock = threading.Lock()
    starts: list[float] = []
    ends: list[float] = []

    def starter(session_id: str, _mark: str) -> tuple[int, str | None]:
        starts.append(time.perf_counter())
        # The fake agent is at work at once (as a real run is once it claims the session).
        agents.record_transition(Transition(session_id, State.QUEUED, State.CODING_INITIAL,
                                            utc_now(), "bench"))
        threading.Thread(target=finish, args=(session_id,), daemon=True).start()
        return os.getpid(), None

    def finish(session_id: str) -> None:
        time.sleep(agent_seconds)
        with lock:
            agents.record_transition(Transition(session_id, State.CODING_INITIAL,
                                                State.DONE, utc_now(), "bench"))
            ends.append(time.perf_counter())

    tick_times: list[float] = []
    began = time.perf_counter()
    while len(ends) < count:
        t0 = time.perf_counter()
        with lock:
            scheduler.tick(store, starter=starter, limit=limit)
        tick_times.append(time.perf_counter() - t0)
        time.sleep(poll)
    wall = time.perf_counter() - began
    # The n-th start after the first ``limit`` took the slot the n-th end freed.
    gaps = [starts[limit + n] - ends[n] for n in range(count - limit)]
    assert min(gaps) >= 0, "more agents at once than max_parallel"
    return {"mode": "scheduler", "tasks": count, "max_parallel": limit, "poll_s": poll,
            "agent_s": agent_seconds, "ticks": len(tick_times),
            "tick_ms": _percentiles(tick_times),
            "overhead_per_task_ms": round(sum(tick_times) / count * 1000, 2),
            "slot_free_to_next_start": _percentiles(gaps), "wall_s": round(wall, 2)}


def real_runs(count: int, limit: int, poll: float) -> dict:
    import subprocess

    from aura.store_sqlite import SQLiteStore

    store = SQLiteStore(Path(os.environ["AURA_HOME"]) / "aura.db")
    ids = _queue(store, count)
    began = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "aura.py"), "queue", "run", "-j", str(limit),
                    "--poll", str(poll), "--until-idle"], check=True,
                   stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    states = [store.get_session(i).state.value for i in ids]
    return {"mode": "real", "tasks": count, "max_parallel": limit, "poll_s": poll,
            "done": states.count("done"), "wall_s": round(wall, 2),
            "per_task_s": round(wall / count, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("--poll", type=float, default=0.05)
    parser.add_argument("--agent-seconds", type=float, default=0.01)
    parser.add_argument("--real", type=int, default=0, metavar="N",
                        help="Also run N tasks as real detached aura processes.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        os.environ["AURA_HOME"] = home
        print(json.dumps(scheduler_only(args.tasks, args.limit, args.poll,
                                        args.agent_seconds)))
    if args.real:
        with tempfile.TemporaryDirectory() as home:
            os.environ["AURA_HOME"] = home
            print(json.dumps(real_runs(args.real, args.limit, args.poll)))


if __name__ == "__main__":
    main()
