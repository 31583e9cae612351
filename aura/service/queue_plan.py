"""Which queued tasks may start now, and why each other one waits: a pure function of a
snapshot of the store, so `aura queue run`, `aura task list` and `aura board` give the
same reasons, and the rules are tested without processes.

A task waits, in this order of reasons, while: it is parked by hand; a daily budget of the
config is spent ("budget exhausted: daily $X of $Y", until the next UTC day); a dependency failed
or was cancelled (blocked, fail closed, until `aura task release`); a dependency is not
done; its worker or label has no free online worker; the coding column is at its WIP
limit; every local slot (``max_parallel``) is taken.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aura import board
from aura.board import Column
from aura.contracts import FINAL_STATES, Session, State, WorkerInfo
from aura.service.usage import BUDGET_EXHAUSTED
from aura.store_tasks import Task

START = "start"
WAITING = "waiting"
BLOCKED = "blocked"


@dataclass(frozen=True, slots=True)
class Decision:
    task: Task
    status: str  # start, waiting or blocked
    reason: str  # "" for start
    stuck: bool = False  # only a person can move it on (blocked, parked, or behind one)


@dataclass(slots=True)
class Snapshot:
    """What the store (and the coordinator, for ``--on`` tasks) says right now."""

    tasks: Sequence[Task]
    states: Mapping[str, str]  # session id → state, for the tasks and their dependencies
    busy: int  # local agents running (or being started) now
    limit: int  # max_parallel
    columns: Sequence[Column] = ()
    counts: Mapping[str, int] = field(default_factory=dict)  # sessions per state
    workers: Sequence[WorkerInfo] | None = None  # None: no coordinator to ask
    # Daily budgets reached today ("" overall, or an executor) → the reason a task waits,
    # and the executor of each queued task (usage.exhausted_budgets).
    exhausted: Mapping[str, str] = field(default_factory=dict)
    executors: Mapping[str, str] = field(default_factory=dict)


def short(session_id: str) -> str:
    return session_id[:8]


def dependency_reason(task: Task, states: Mapping[str, str],
                      stuck: Mapping[str, str] | None = None) -> tuple[str, str] | None:
    """(blocked|waiting, why) for the first dependency that holds the task, or None.
    ``stuck``: tasks that only a person can move on, and why (blocked behind them too)."""
    pending: list[str] = []
    for after in task.after:
        if stuck and after in stuck:
            return BLOCKED, f"dependency {short(after)} is stuck ({stuck[after]})"
        dep = states.get(after)
        if dep is None:
            if not task.released:
                return BLOCKED, f"dependency {short(after)} no longer exists"
            continue
        if dep == State.DONE:
            continue
        if dep in FINAL_STATES:
            if not task.released:
                return BLOCKED, (f"dependency {short(after)} {dep}; "
                                 f"`aura task release {short(task.session)}` starts it anyway")
            continue
        pending.append(f"dependency {short(after)} not done ({dep})")
    return (WAITING, pending[0]) if pending else None


def worker_reason(target: str, workers: Sequence[WorkerInfo] | None,
                  taken: Mapping[str, int]) -> str | None:
    """Why no worker can take a task for ``--on target`` now, or None."""
    if workers is None:
        return f"--on {target}: no coordinator to ask (set `coordinator` or run `aura serve`)"
    if target.startswith("label:"):
        label = target[len("label:"):]
        fits = [w for w in workers if label in w.labels]
        what = f"no worker with label {label} online"
    else:
        fits = [w for w in workers if w.name == target]
        what = f"worker {target} is not online"
    online = [w for w in fits if w.state == "online"]
    if not online:
        return what
    if all(w.running + taken.get(w.name, 0) >= w.capacity for w in online):
        names = ", ".join(f"{w.name} {w.running + taken.get(w.name, 0)}/{w.capacity}"
                          for w in online)
        return f"every worker for {target} is at capacity ({names})"
    return None


def _pick_worker(target: str, workers: Sequence[WorkerInfo], taken: dict[str, int]) -> None:
    label = target[len("label:"):] if target.startswith("label:") else None
    for w in workers:
        if w.state == "online" and (w.name == target if label is None else label in w.labels) \
                and w.running + taken.get(w.name, 0) < w.capacity:
            taken[w.name] = taken.get(w.name, 0) + 1
            return


def plan(snap: Snapshot) -> list[Decision]:
    """A decision for every unclaimed task whose session is queued, oldest first."""
    coding = board.column_of(State.CODING_INITIAL.value, snap.columns)
    in_coding = sum(n for state, n in snap.counts.items()
                    if coding is not None and board.column_of(state, snap.columns) == coding)
    started = 0
    taken: dict[str, int] = {}
    stuck: dict[str, str] = {}
    out: list[Decision] = []
    # Oldest first: a dependency existed before its dependents, so it is decided first.
    for task in snap.tasks:
        if snap.states.get(task.session) != State.QUEUED or task.claimed_by is not None:
            continue
        why = _why_waiting(task, snap, coding, in_coding, started, taken, stuck)
        if why is not None and (task.held or why[0] == BLOCKED or
                                why[1].startswith(BUDGET_EXHAUSTED)):
            # A spent budget frees itself only tomorrow: nothing starts it before then.
            stuck[task.session] = "parked" if task.held else why[1].partition(";")[0]
            out.append(Decision(task, *why, stuck=True))
            continue
        if why is None:
            out.append(Decision(task, START, ""))
            if task.target:
                _pick_worker(task.target, snap.workers or (), taken)
            else:
                started += 1
            in_coding += 1  # a started task shows in the coding column
        else:
            out.append(Decision(task, *why))
    return out


def _why_waiting(task: Task, snap: Snapshot, coding: Column | None, in_coding: int,
                 started: int, taken: Mapping[str, int],
                 stuck: Mapping[str, str]) -> tuple[str, str] | None:
    if task.held:
        return WAITING, f"parked by hand; `aura task release {short(task.session)}` queues it"
    if snap.exhausted:
        spent = snap.exhausted.get("") or snap.exhausted.get(snap.executors.get(task.session, ""))
        if spent:
            return WAITING, spent
    deps = dependency_reason(task, snap.states, stuck)
    if deps is not None:
        return deps
    if task.target:
        reason = worker_reason(task.target, snap.workers, taken)
        if reason is not None:
            return WAITING, reason
    if coding is not None and coding.wip_limit is not None and in_coding >= coding.wip_limit:
        return WAITING, f"WIP limit of column {coding.name!r} ({in_coding}/{coding.wip_limit})"
    if not task.target and snap.busy + started >= snap.limit:
        return WAITING, f"no free slot ({snap.busy + started}/{snap.limit} running)"
    return None


def explain(task: Task, session: Session | None) -> dict[str, Any]:
    """A task as `aura task list --json` shows it (the reason comes from ``plan``)."""
    data = task.to_json()
    data["state"] = session.state.value if session else "gone"
    data["prompt"] = session.prompt if session else ""
    data["executor"] = session.executor if session else ""
    return data
