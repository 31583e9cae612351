"""Use cases for workspaces (`aura workspace …`) and the git guard of the board.

A session's workspace is stored with the session (``options["workspace"]``, see
workspace.Workspace); the id of a workspace is its session's id (a unique prefix is
enough). Nothing here removes or resets work that is not saved first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aura import workspace as ws_module
from aura.contracts import Execution, ExecutionStatus, Session
from aura.errors import AuraError
from aura.liveness import is_alive
from aura.service.ledger import workspace_of
from aura.store import Store
from aura.workspace import Workspace


def running_execution(store: Store, session_id: str) -> Execution | None:
    """An execution of the session whose process still runs (local: pid alive)."""
    for execution in store.list_executions(session_id):
        if execution.status != ExecutionStatus.RUNNING.value:
            continue
        if execution.host != "local" or is_alive(execution.pid, execution.pid_started):
            return execution
    return None


def get(store: Store, session_id: str) -> tuple[Session, Workspace]:
    session = store.get_session(session_id)
    ws = workspace_of(session)
    if ws is None:
        raise AuraError(f"session {session.id[:8]} has no workspace (it ran without --repo)")
    return session, ws


def _store(store: Store, session: Session, ws: Workspace) -> None:
    options = dict(session.options)
    options["workspace"] = ws.to_json()
    store.update_session(session.id, options=options)


def describe(session: Session, ws: Workspace, *, check_git: bool = True) -> dict[str, Any]:
    """One workspace for `aura workspace list` (unsaved: repos with unsaved work)."""
    present = [r for r in ws.repos if Path(r.path).is_dir()]
    unsaved = ws_module.unsaved(ws) if check_git and not ws.removed else []
    return {"session": session.id, "state": session.state, "root": ws.root,
            "removed": ws.removed, "in_place": ws.in_place,
            "missing": not ws.removed and len(present) < len(ws.repos),
            "repos": [{"repo": r.repo, "branch": r.branch, "path": r.path, "base": r.base,
                       "base_name": r.base_name} for r in ws.repos],
            "unsaved": unsaved, "saved_ref": ws.ref, "prompt": session.prompt,
            "created_at": session.created_at}


def list_workspaces(store: Store, *, include_removed: bool = False) -> list[dict[str, Any]]:
    out = []
    for session in store.list_sessions():
        ws = workspace_of(session)
        if ws is not None and (include_removed or not ws.removed):
            out.append(describe(session, ws))
    return out


def diff(store: Store, session_id: str) -> str:
    _session, ws = get(store, session_id)
    if ws.removed:
        raise AuraError(f"the workspace of session {ws.session[:8]} was removed; its work is "
                        f"on its branch and on {ws.ref}")
    return ws_module.diff(ws)


def save(store: Store, session_id: str) -> list[dict[str, str]]:
    session, ws = get(store, session_id)
    if ws.removed:
        raise AuraError(f"the workspace of session {ws.session[:8]} was removed")
    saves = ws_module.save(ws, f"aura: saved by `aura workspace save` ({session.id})")
    if saves:
        _store(store, session, ws_module.with_saves(ws, saves))
    return saves


def remove(store: Store, session_id: str, *, force: bool = False
           ) -> tuple[list[dict[str, str]], list[str]]:
    """Remove a session's workspace: the saves made, and the ignored files deleted."""
    session, ws = get(store, session_id)
    active = running_execution(store, session.id)
    if active is not None:
        raise AuraError(f"session {session.id[:8]} is running ({active.stage}); wait for it "
                        "or stop it before removing its workspace")
    removed, saves, deleted = ws_module.remove(ws, force=force)
    _store(store, session, removed)
    return saves, deleted


def git_state(session: Session) -> str:
    """For the board's done guard: "none", "clean", "saved", or "unsaved:<repos>"."""
    ws = workspace_of(session)
    if ws is None or ws.removed:
        return "none"
    unsaved = ws_module.unsaved(ws)
    if unsaved:
        return "unsaved:" + ", ".join(unsaved)
    return "saved" if ws.saved else "clean"
