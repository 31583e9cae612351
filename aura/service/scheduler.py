"""The queue's scheduler: a plain loop over what the store says (nothing that matters is
kept in memory, so it can be killed and restarted at any moment, and two of them never
start a task twice).

Each pass (``tick``): sweep orphaned runs; give back claims of tasks whose starter died
before the run took its session; plan (queue_plan.py); for each task that may start,
claim it in the database (``Store.claim_task``, atomic) and only then start it as a
detached `aura task start ID --claimed-by MARK` process, whose pid is stored on the task.
A started task's run survives the scheduler: it is its own process.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aura.liveness import own_mark, sweep_orphans
from aura.recorder import utc_now
from aura.service import tasks as task_service
from aura.service.queue_plan import START, plan
from aura.store import Store

# Starts a claimed task: (session id, claim mark) -> (pid, start time) of its process.
Starter = Callable[[str, str], tuple[int, str | None]]
POLL_SECONDS = 0.25


def start_detached(session_id: str, mark: str) -> tuple[int, str | None]:
    return detached_starter()(session_id, mark)


def detached_starter(env: dict[str, str] | None = None) -> Starter:
    """Start each task as a detached `aura task start`, with ``env`` added (the
    coordinator's token, which aura takes out of its own environment once read)."""
    from aura.service.detach import spawn

    def start(session_id: str, mark: str) -> tuple[int, str | None]:
        return spawn(["task", "start", session_id, "--claimed-by", mark], session_id, env)

    return start


@dataclass(slots=True)
class TickResult:
    started: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    waiting: int = 0


def tick(store: Store, *, starter: Starter = start_detached, limit: int | None = None,
         workers: Any = None, mark: str | None = None) -> TickResult:
    """One pass of the scheduler (see the module docstring)."""
    mark = mark or own_mark()
    sweep_orphans(store)
    result = TickResult()
    snap = task_service.snapshot(store, limit=limit, workers=workers)
    for task in snap.tasks:
        if task_service.recover(store, task, snap.states.get(task.session)):
            result.recovered.append(task.session)
    if result.recovered:
        snap = task_service.snapshot(store, limit=limit, workers=workers)
    for decision in plan(snap):
        if decision.status != START:
            result.waiting += 1
            continue
        session_id = decision.task.session
        if not store.claim_task(session_id, mark, utc_now()):
            continue  # another scheduler, or `aura task start`, has it
        try:
            pid, started = starter(session_id, mark)
        except OSError:
            store.unclaim_task(session_id, mark)  # could not start: it waits again
            raise
        store.update_task(session_id, child_pid=pid, child_started=started)
        result.started.append(session_id)
    return result


def run(store: Store, *, starter: Starter = start_detached, limit: int | None = None,
        workers: Callable[[], Any] | None = None, poll: float = POLL_SECONDS,
        until_idle: bool = False, on_tick: Callable[[TickResult], None] | None = None,
        should_stop: Callable[[], bool] = lambda: False) -> None:
    """Tick every ``poll`` seconds until ``should_stop``; with ``until_idle``, return once
    no task is queued or running any more (what tests and `aura queue run --until-idle`
    want)."""
    mark = own_mark()
    while not should_stop():
        result = tick(store, starter=starter, limit=limit, mark=mark,
                      workers=workers() if workers else None)
        if on_tick is not None:
            on_tick(result)
        if until_idle and not result.started and idle(store):
            return
        time.sleep(poll)


def idle(store: Store) -> bool:
    """Nothing left to do: no task queued that could ever start without a person, and
    none being started or running."""
    from aura.contracts import RUNNING_STATES, State

    sessions = {s.id: s for s in store.list_sessions()}
    for data in task_service.listing(store):
        state = sessions[data["session"]].state if data["session"] in sessions else None
        if state in RUNNING_STATES and state != State.REVIEW:
            return False
        if state == State.QUEUED and not data.get("stuck"):
            return False
    return not store.running_executions()
