"""Is a process still the one we started? (pid + start time, so a reused pid is not
mistaken for a live aura). Used to mark executions of a crashed aura as orphaned."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aura.contracts import Execution
    from aura.store import Store


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) may contain spaces and parentheses.
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def is_alive(pid: int | None, started: str | None) -> bool:
    """Whether ``pid`` runs and (where the OS tells) started at ``started``."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if started is None:
        return True
    current = process_start_time(pid)
    return current is None or current == started


def sweep_orphans(store: Store) -> list[Execution]:
    """Mark executions whose aura process is gone as failed (reason ``orphaned``).

    A crashed or killed aura cannot finish its rows; the next aura that opens the store
    does, so no row stays "running" forever."""
    from aura import engine
    from aura.contracts import ExecutionStatus, State, Transition
    from aura.recorder import utc_now

    swept = []
    for execution in store.running_executions():
        if execution.host != "local" or is_alive(execution.pid, execution.pid_started):
            continue
        now = utc_now()
        store.update_execution(execution.id, status=ExecutionStatus.FAILED.value,
                               ended_at=now, reason="orphaned")
        session = store.get_session(execution.session)
        if engine.allowed(session.state, State.FAILED):
            store.record_transition(Transition(session.id, session.state, State.FAILED,
                                               now, "orphaned", execution.id))
        swept.append(execution)
    return swept
