"""Use cases of the board (`aura board …`): read it, edit its columns, move a session.

The rules live in board.py (pure); this gathers what they need (the session's state,
whether a process runs, the git state of its workspace, how full the target column is),
applies an allowed move as a stored transition, and hands a follow-up move back to the
caller, which runs it like `aura run --session ID --prompt …`.
"""

from __future__ import annotations

from typing import Any

from aura import board, engine
from aura.board import Column, Move
from aura.contracts import State, Transition
from aura.errors import MoveRefused, UsageError
from aura.recorder import utc_now
from aura.service.ledger import workspace_of
from aura.store import Store


def columns(store: Store) -> list[Column]:
    return [Column.from_json(c) for c in store.board_columns()]


def cost(store: Store, session_id: str) -> float | None:
    """The sum of the session's recorded ``cost_usd``; None when no entry has one."""
    total: float | None = None
    for item in store.entries(session_id):
        value = (item.get("usage") or {}).get("cost_usd") if item.get("kind") == "usage" \
            else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            total = (total or 0.0) + float(value)
    return total


def _card(store: Store, session: Any, task: dict[str, Any] | None) -> dict[str, Any]:
    ws = workspace_of(session)
    branches = sorted({r.branch for r in ws.repos if r.branch}) if ws else []
    waiting = task is not None and session.state == "queued"
    return {"id": session.id, "state": session.state, "executor": session.executor,
            "title": task["title"] if task else " ".join(session.prompt.split())[:200],
            "prompt": session.prompt, "created_at": session.created_at,
            "updated_at": session.updated_at, "branches": branches,
            "cost_usd": cost(store, session.id), "task": task is not None,
            "status": task["status"] if task else None,
            "waiting": task["reason"] if waiting and task else None}


def view(store: Store, limit: int | None = None, *, workers: Any = None) -> dict[str, Any]:
    """``{"columns": [{name, position, state, wip_limit, sessions: [...]}], "other": [...]}``;
    a queued task's card says why it waits (``waiting``)."""
    from aura.service.tasks import listing

    cols = columns(store)
    tasks = {t["session"]: t for t in listing(store, workers=workers)}
    grouped, other = board.group(store.list_sessions(limit), cols)
    return {"columns": [dict(c.to_json(), sessions=[_card(store, s, tasks.get(s.id))
                                                    for s in grouped[c.name]])
                        for c in sorted(cols, key=lambda c: c.position)],
            "other": [_card(store, s, tasks.get(s.id)) for s in other]}


def add_column(store: Store, name: str, state: str, *, wip_limit: int | None = None,
               position: int | None = None) -> Column:
    existing = columns(store)
    if any(c.name.lower() == name.lower() for c in existing):
        raise UsageError(f"a column {name!r} exists; change it with `aura board columns edit`")
    board.validate_column(name, state, wip_limit)
    if position is None:
        position = max((c.position for c in existing), default=0) + 1
    column = Column(name, position, state, wip_limit)
    store.put_board_column(column.to_json())
    return column


def edit_column(store: Store, name: str, *, new_name: str | None = None,
                state: str | None = None, wip_limit: int | None = None,
                no_limit: bool = False, position: int | None = None) -> Column:
    current = board.find_column(name, columns(store))
    updated = Column(new_name or current.name,
                     current.position if position is None else position,
                     state or current.state,
                     None if no_limit else (wip_limit if wip_limit is not None
                                            else current.wip_limit))
    board.validate_column(updated.name, updated.state, updated.wip_limit)
    if updated.name.lower() != current.name.lower():
        if any(c.name.lower() == updated.name.lower() for c in columns(store)):
            raise UsageError(f"a column {updated.name!r} exists already")
        store.delete_board_column(current.name)
    store.put_board_column(updated.to_json())
    return updated


def remove_column(store: Store, name: str) -> None:
    store.delete_board_column(board.find_column(name, columns(store)).name)


def move(store: Store, session_id: str, column_name: str, prompt: str | None = None) -> Move:
    """Check a move against every rule and apply it (a stored transition). A move that
    starts a follow-up is only checked: the caller runs the follow-up."""
    from aura.service.workspaces import git_state, running_execution

    session = store.get_session(session_id)
    cols = columns(store)
    target = board.find_column(column_name, cols)
    grouped, _other = board.group(store.list_sessions(), cols)
    if session.state == State.QUEUED and target.state == State.QUEUED:
        return _park(store, session, target)
    if session.state == State.QUEUED and State(target.state) in board.CODING_FAMILY:
        return _start_queued(store, session, target, in_target=len(grouped[target.name]),
                             prompt=prompt)
    decided = board.check_move(
        session.state, target, cols, in_target=len(grouped[target.name]),
        running=running_execution(store, session.id) is not None,
        git_state=git_state(session) if target.state == "done" else "none",
        prompt=prompt)
    if not decided.follow_up:
        engine.transition(session.state, decided.dst)  # the table has the last word
        store.record_transition(Transition(session.id, session.state, decided.dst,
                                           utc_now(), f"moved to {target.name!r} on the board"))
    return decided


def _start_queued(store: Store, session: Any, target: Column, *, in_target: int,
                  prompt: str | None) -> Move:
    """A queued task moved to a coding column: checked here, started by the caller
    (``Move.dst`` is coding_initial and ``follow_up`` False), whatever the queue's slots;
    the WIP limit of the column still holds."""
    from aura.service import tasks

    task = tasks.get(store, session.id)  # NotFound: a queued session that is no task
    if prompt:
        raise UsageError("--prompt does not go with starting a queued task (it has one)")
    if target.wip_limit is not None and in_target >= target.wip_limit:
        raise MoveRefused("wip-limit", f"{target.name!r} is at its WIP limit "
                          f"({in_target}/{target.wip_limit})")
    if task.claimed_by is not None:
        raise MoveRefused("running", f"task {session.id[:8]} is being started already")
    from aura.service.queue_plan import dependency_reason

    states = {s.id: s.state.value for s in (store.get_session(a) for a in task.after)}
    held = dependency_reason(task, states)
    if held is not None:
        raise MoveRefused("dependency", held[1])
    from aura import config as config_module

    config = config_module.load()
    if "budgets" in config:
        from aura.service.usage import budget_reason, exhausted_budgets

        spent = budget_reason(exhausted_budgets(store, config), session.executor)
        if spent:
            raise MoveRefused("budget", f"{spent}; no new run until tomorrow (UTC)")
    engine.transition(State.QUEUED, State.CODING_INITIAL)
    return Move(State.QUEUED, State.CODING_INITIAL, target, False)


def _park(store: Store, session: Any, target: Column) -> Move:
    """A queued task moved to the queued column parks it (the scheduler leaves it)."""
    from aura.service import tasks

    task = tasks.get(store, session.id)
    if task.held:
        raise MoveRefused("same-column", f"task {session.id[:8]} is parked already; "
                          f"`aura task release {session.id[:8]}` queues it again")
    tasks.hold(store, session.id)
    return Move(State.QUEUED, State.QUEUED, target, False)
