"""Use cases of the queue (`aura task …`): add a task, list them with the reason each one
waits, release, park, remove, and the run options a queued task starts with.

A task is a session in state ``queued``: its run options are stored on the session
(``options["task_run"]``, the same shape `aura run --on` sends), its title, target and
dependencies in the tasks tables (store_tasks.py). Starting it is a first turn of that
session (runner.run with ``session`` set), so the session id never changes.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from aura import config as config_module
from aura.contracts import FINAL_STATES, Session, State, Transition
from aura.errors import AuraError, UsageError
from aura.liveness import is_alive, own_mark
from aura.recorder import utc_now
from aura.service.queue_plan import Decision, Snapshot, explain, plan
from aura.service.run_options import RunOptions
from aura.store import Store
from aura.store_tasks import Task, task_not_found

TASK_OPTIONS = "task_run"  # the key of a task's run options in session.options


def add(store: Store, options: RunOptions, *, after: tuple[str, ...] = (),
        target: str | None = None, title: str | None = None) -> Session:
    """Store a queued task; nothing runs. ``after``: sessions or tasks (ids or unique
    prefixes) that must be done first."""
    from aura.executors import registry
    from aura.service.runner import new_id

    if not options.prompt.strip():
        raise UsageError("--prompt is required (the task for the agent)")
    if options.session or options.resume_latest:
        raise UsageError("a task is a new session; to continue one, run "
                         "`aura run --session ID --detach`")
    if target is not None and (not target.strip() or target == "label:"):
        raise UsageError("--on needs a worker name or label:NAME")
    deps = tuple(dict.fromkeys(store.get_session(dep).id for dep in after))
    name = registry.canonical(options.executor or registry.default_executor())
    cwd = os.path.realpath(os.path.expanduser(options.cwd or os.getcwd()))
    if target is None and not os.path.isdir(cwd):
        raise UsageError(f"--cwd {options.cwd!r} is not a directory")
    wire = replace(options, executor=name, cwd=cwd if target is None else options.cwd
                   ).to_wire()
    now = utc_now()
    session = Session(id=new_id(), executor=name, state=State.QUEUED, cwd=cwd,
                      created_at=now, updated_at=now, prompt=options.prompt,
                      model=options.model, options={TASK_OPTIONS: wire})
    store.create_session(session)
    store.record_transition(Transition(session.id, None, State.QUEUED, now, "queued as a task"))
    label = " ".join((title or options.prompt).split())
    store.create_task(Task(session.id, label[:200], now, target=target, after=deps))
    return session


def get(store: Store, session_id: str) -> Task:
    full = store.get_session(session_id).id
    for task in store.tasks():
        if task.session == full:
            return task
    raise task_not_found(session_id)


def start_options(store: Store, session_id: str) -> RunOptions:
    """The options a queued task's first turn runs with."""
    session = store.get_session(session_id)
    wire = session.options.get(TASK_OPTIONS)
    if not isinstance(wire, dict):
        raise AuraError(f"session {session.id[:8]} is not a queued task")
    return replace(RunOptions.from_wire(wire, follow_up=False), session=session.id)


def snapshot(store: Store, *, limit: int | None = None, workers: Any = None,
             pending: bool = True) -> Snapshot:
    """What the planner needs, read from the store now (with ``pending``, only the queued
    tasks: what the scheduler reads on every pass)."""
    from aura.board import Column

    tasks = store.tasks(pending=pending)
    states = store.task_states()
    config = config_module.load()
    exhausted, executors = budgets_of(store, config, tasks, states)
    return Snapshot(tasks=tasks, states=states, busy=busy_slots(store, tasks, states),
                    limit=limit or config_module.max_parallel(config),
                    columns=[Column.from_json(c) for c in store.board_columns()],
                    counts=store.state_counts(), workers=workers,
                    exhausted=exhausted, executors=executors)


def budgets_of(store: Store, config: dict[str, Any], tasks: list[Task],
               states: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """The daily budgets today's cost reached (``usage.exhausted_budgets``) and the
    executor of each queued task, read only when there are budgets and queued tasks (the
    cost of today's usage is summed from the store on every scheduler pass)."""
    queued = [t.session for t in tasks if states.get(t.session) == State.QUEUED]
    if "budgets" not in config or not queued:
        return {}, {}
    from aura.service.usage import exhausted_budgets

    exhausted = exhausted_budgets(store, config)
    if not exhausted or "" in exhausted:
        return exhausted, {}  # nothing held, or everything: no executor needed
    return exhausted, {sid: store.get_session(sid).executor for sid in queued}


def busy_slots(store: Store, tasks: list[Task], states: dict[str, str]) -> int:
    """Local agents at work now: sessions with a running local execution or in a
    coding-side state (between two stages no execution runs, but the slot is taken), and
    tasks being started (claimed, their session still queued)."""
    busy = {e.session for e in store.running_executions() if e.host == "local"}
    busy.update(store.working_sessions())
    busy.update(t.session for t in tasks if t.claimed_by and not t.target and
                states.get(t.session) == State.QUEUED)
    return len(busy)


def listing(store: Store, *, workers: Any = None) -> list[dict[str, Any]]:
    """Every task with its state and, for a queued one, why it waits (or that it is
    being started)."""
    snap = snapshot(store, workers=workers)
    decided: dict[str, Decision] = {d.task.session: d for d in plan(snap)}
    sessions = {s.id: s for s in store.list_sessions()}
    out = []
    for task in store.tasks():
        session = sessions.get(task.session)
        data = explain(task, session)
        decision = decided.get(task.session)
        data["stuck"] = False
        if decision is not None:
            data["status"] = decision.status if decision.status != "start" else "ready"
            data["stuck"] = decision.stuck
            data["reason"] = decision.reason or "ready: `aura queue run` starts it"
        elif session is not None and session.state == State.QUEUED:
            data["status"], data["reason"] = "starting", f"being started by {task.claimed_by}"
        else:
            data["status"], data["reason"] = (session.state.value if session else "gone"), ""
        out.append(data)
    return out


def release(store: Store, session_id: str) -> Task:
    """Let a task start although a dependency failed or was cancelled; unpark it."""
    task = get(store, session_id)
    _require_queued(store, task)
    store.update_task(task.session, released=True, held=False)
    return get(store, task.session)


def hold(store: Store, session_id: str) -> Task:
    """Park a queued task: the scheduler leaves it until it is released."""
    task = get(store, session_id)
    _require_queued(store, task)
    store.update_task(task.session, held=True)
    return get(store, task.session)


def remove(store: Store, session_id: str) -> Session:
    """Take a task out of the queue; its session, if still queued, is cancelled (so its
    dependents are blocked, not started on work that never happened)."""
    task = get(store, session_id)
    mark = own_mark()
    session = store.get_session(task.session)
    if session.state == State.QUEUED:
        if not store.claim_task(task.session, mark, utc_now()):
            raise AuraError(f"task {task.session[:8]} is being started; cancel it with "
                            f"`aura session cancel {task.session[:8]}`")
        cancel_queued(store, session, "removed from the queue")
    elif session.state not in FINAL_STATES and session.state != State.REVIEW:
        raise AuraError(f"task {task.session[:8]} is running ({session.state}); cancel it "
                        f"first with `aura session cancel {task.session[:8]}`")
    store.delete_task(task.session)
    return store.get_session(task.session)


def cancel_queued(store: Store, session: Session, reason: str) -> None:
    store.record_transition(Transition(session.id, session.state, State.CANCELLED,
                                       utc_now(), reason))


def _require_queued(store: Store, task: Task) -> None:
    state = store.get_session(task.session).state
    if state != State.QUEUED:
        raise AuraError(f"task {task.session[:8]} is {state}, not queued")


def recover(store: Store, task: Task, state: str | None) -> bool:
    """Give back the claim of a task whose starter died before its run took the session
    (a scheduler killed between claim and start): it waits again. True if given back."""
    if task.claimed_by is None or state != State.QUEUED:
        return False
    if task.child_pid is not None and is_alive(task.child_pid, task.child_started):
        return False
    if task.child_pid is None:
        pid, _, started = task.claimed_by.partition(":")
        if pid.isdigit() and is_alive(int(pid), None if started in ("", "?") else started):
            return False  # its claimant is still starting it
    return store.unclaim_task(task.session, task.claimed_by)
