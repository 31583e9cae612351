"""Is a process still the one we started, and what is left of a run whose aura is gone?

- pid + start time, so a reused pid is never mistaken for a live aura (or killed).
- Every child aura starts carries ``AURA_PROCESS_MARK=<aura pid>:<aura start>:<n>`` in its
  environment, which its descendants inherit even when they leave its process group
  (``setsid``, a double fork). On Linux ``/proc`` lets aura find them by that mark: at the
  end of a child's life (``kill_marked``), and when a later aura finds the executions of a
  crashed or SIGKILLed aura (``sweep_orphans``).
- Linux only: ``PR_SET_PDEATHSIG`` (the agent gets SIGKILL when aura dies, even by
  SIGKILL) and ``PR_SET_CHILD_SUBREAPER`` (escaped descendants are re-parented to aura
  rather than to init while aura lives). Elsewhere these are no-ops.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aura.contracts import Execution
    from aura.store import Store

MARK_VARIABLE = "AURA_PROCESS_MARK"
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
_prctl: Callable[..., int] | None = None


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None if unknown."""
    stat = _stat_fields(pid)
    return stat[19] if stat is not None and len(stat) > 19 else None


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3… of /proc/PID/stat (state, ppid, pgrp, …), or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses.
    return stat[stat.rfind(")") + 2 :].split()


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
    stat = _stat_fields(pid)
    if stat is not None and stat[0] in ("Z", "X"):
        # A zombie ran and ended; nobody reaped it yet (its parent may be an aura that
        # became a subreaper): it is not running.
        return False
    if started is None:
        return True
    current = stat[19] if stat is not None and len(stat) > 19 else None
    return current is None or current == started


# marks -------------------------------------------------------------------------------------

def own_mark() -> str:
    """This aura's part of the marks of its children: pid and start time."""
    pid = os.getpid()
    return f"{pid}:{process_start_time(pid) or '?'}"


def _marks() -> dict[int, tuple[str, str | None]]:
    """Every process we may read whose environment holds a mark: pid → (mark, start)."""
    found: dict[int, tuple[str, str | None]] = {}
    key = f"{MARK_VARIABLE}=".encode()
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return found
    me = os.getpid()
    for pid in pids:
        if pid == me:
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # gone, or another user's
            continue
        for item in environ.split(b"\0"):
            if item.startswith(key):
                found[pid] = (item[len(key):].decode("utf-8", "replace"),
                              process_start_time(pid))
                break
    return found


def kill_marked(prefix: str) -> int:
    """SIGKILL every process whose mark is ``prefix`` or starts with ``prefix:``, and the
    process groups they lead; returns how many were signalled. A pid is only signalled
    through a pidfd opened after its start time was checked again, so a pid reused
    meanwhile is never hit."""
    killed = 0
    for pid, (mark, started) in _marks().items():
        if mark != prefix and not mark.startswith(prefix + ":"):
            continue
        if _kill_exactly(pid, started):
            killed += 1
    return killed


def _kill_exactly(pid: int, started: str | None) -> bool:
    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):
        return False
    try:
        stat = _stat_fields(pid)
        if stat is None or len(stat) <= 19 or stat[19] != started:
            return False  # not the process we looked at
        leads_group = stat[2] == str(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if leads_group:
                os.killpg(pid, signal.SIGKILL)
            signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    finally:
        os.close(fd)


def reap_orphans(spare: Collection[int] = ()) -> int:
    """Reap zombies re-parented to aura (a subreaper): children of ours in another
    session than aura's, i.e. from an agent's tree, never git's or asyncio's own (those in
    ``spare`` are the leaders asyncio waits for). Returns how many."""
    me, reaped = os.getpid(), 0
    own_session = str(os.getsid(0))
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        stat = _stat_fields(pid) if pid not in spare else None
        if stat is None or stat[0] != "Z" or stat[1] != str(me) or stat[3] == own_session:
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
            reaped += 1
    return reaped


# Linux process controls ----------------------------------------------------------------------

def _load_prctl() -> Callable[..., int] | None:
    global _prctl
    if _prctl is None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            _prctl = ctypes.CDLL(None, use_errno=True).prctl
    return _prctl


def become_subreaper() -> bool:
    """Make descendants that escape their parent re-parent to aura (Linux)."""
    prctl = _load_prctl()
    return prctl is not None and prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def die_with_parent_hook() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has the child SIGKILLed when aura dies (Linux), or None.
    prctl is looked up here, before the fork: the child only calls it."""
    prctl = _load_prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # aura died before the prctl took effect
            os._exit(1)

    return hook


# orphans ---------------------------------------------------------------------------------------

def sweep_orphans(store: Store) -> list[Execution]:
    """Mark executions whose aura process is gone as failed (reason ``orphaned``), kill
    what is left of their process trees, and release their sessions' claims.

    A crashed or killed aura cannot finish its rows; the next aura that opens the store
    does, so no row stays "running" forever and no agent works on unsupervised."""
    from aura import engine
    from aura.contracts import ExecutionStatus, State, Transition
    from aura.recorder import utc_now

    swept = []
    for execution in store.running_executions():
        if execution.host != "local" or is_alive(execution.pid, execution.pid_started):
            continue
        if execution.pid is not None and execution.pid_started is not None:
            kill_marked(f"{execution.pid}:{execution.pid_started}")
        now = utc_now()
        store.update_execution(execution.id, status=ExecutionStatus.FAILED.value,
                               ended_at=now, reason="orphaned")
        session = store.get_session(execution.session)
        if engine.allowed(session.state, State.FAILED):
            store.record_transition(Transition(session.id, session.state, State.FAILED,
                                               now, "orphaned", execution.id))
        swept.append(execution)
    for claim in store.claims():
        if claim.host == "local" and not is_alive(claim.pid, claim.pid_started):
            if claim.pid is not None and claim.pid_started is not None:
                kill_marked(f"{claim.pid}:{claim.pid_started}")
            store.release_session(claim.session, claim.token)
    return swept
