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
from aura.contracts import Transition
from aura.errors import UsageError
from aura.recorder import utc_now
from aura.service.ledger import workspace_of
from aura.store import Store


def columns(store: Store) -> list[Column]:
    return [Column.from_json(c) for c in store.board_columns()]


def _card(session: Any) -> dict[str, Any]:
    ws = workspace_of(session)
    branches = sorted({r.branch for r in ws.repos if r.branch}) if ws else []
    return {"id": session.id, "state": session.state, "executor": session.executor,
            "prompt": session.prompt, "updated_at": session.updated_at,
            "branches": branches}


def view(store: Store, limit: int | None = None) -> dict[str, Any]:
    """``{"columns": [{name, position, state, wip_limit, sessions: [...]}], "other": [...]}``"""
    cols = columns(store)
    grouped, other = board.group(store.list_sessions(limit), cols)
    return {"columns": [dict(c.to_json(), sessions=[_card(s) for s in grouped[c.name]])
                        for c in sorted(cols, key=lambda c: c.position)],
            "other": [_card(s) for s in other]}


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
