"""Watching, steering and stopping a run from another terminal: `aura session show ID -f`
follows what the store receives, `aura session cancel ID` sends the run's aura process
SIGINT (so Ctrl-C's rules apply: the agent's process group is stopped, entries and work
saved), and ``steer``/``interrupt`` (`aura session steer|interrupt`, the TUI) leave a
control in the store that the running process picks up (aura.service.steering) and wait
for what it did with it: delivered, queued as the next follow-up, or refused.

The aura process is found from the session's running execution (or, while a run is
starting, its claim): pid + start time, checked again right before the signal, so a
reused pid is never signalled.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from aura.contracts import Entry, State
from aura.errors import AuraError, UsageError
from aura.liveness import is_alive, sweep_orphans
from aura.store import Store
from aura.store_controls import Control

FOLLOW_POLL = 0.2
CONTROL_WAIT = 10.0  # seconds the asker waits for the run to pick a control up


def resting(store: Store, session_id: str) -> bool:
    """The session is final, or waits in review with nothing running."""
    session = store.get_session(session_id)
    if session.state.is_final:
        return True
    return session.state == State.REVIEW and not any(
        e.status == "running" for e in store.list_executions(session_id))


def follow(store: Store, session_id: str, emit: Callable[[list[Entry]], None], *,
           poll: float = FOLLOW_POLL, after_seq: int = 0,
           timeout: float | None = None) -> State:
    """Hand every entry stored after ``after_seq`` to ``emit`` as it arrives, until the
    session rests (final, or in review); returns its state then."""
    session_id = store.get_session(session_id).id
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        done = resting(store, session_id)  # read before the entries: none is missed
        fresh = store.entries(session_id, after_seq)
        if fresh:
            after_seq = int(fresh[-1].get("seq", after_seq))
            emit(fresh)
        if done:
            return store.get_session(session_id).state
        if deadline is not None and time.monotonic() > deadline:
            raise AuraError(f"session {session_id[:8]} still runs after {timeout:.0f} s")
        sweep_orphans(store)  # a run whose aura was killed ends as failed, not never
        time.sleep(poll)


def run_process(store: Store, session_id: str) -> tuple[int, str | None] | None:
    """The live aura process that runs the session here, or None."""
    for execution in reversed(store.list_executions(session_id)):
        if execution.status == "running":
            if execution.host != "local":
                raise AuraError(f"session {session_id[:8]} runs on worker {execution.host}; "
                                "stop it from the terminal that started it (Ctrl-C)")
            if is_alive(execution.pid, execution.pid_started) and execution.pid:
                return execution.pid, execution.pid_started
    for claim in store.claims():
        if claim.session == session_id and claim.host == "local" and claim.pid and \
                is_alive(claim.pid, claim.pid_started):
            return claim.pid, claim.pid_started
    return None


def cancel(store: Store, session_id: str, *, wait: float = 30.0) -> State:
    """Cancel a queued task (no process yet) or a running session (SIGINT to its aura,
    then wait up to ``wait`` seconds for it to record the end). Returns the final state."""
    from aura.service import tasks

    session = store.get_session(session_id)
    if session.state.is_final or (session.state == State.REVIEW and \
            run_process(store, session.id) is None):
        raise AuraError(f"session {session.id[:8]} is {session.state}; nothing to cancel")
    if session.state == State.QUEUED and run_process(store, session.id) is None:
        mark = f"{os.getpid()}:cancel"
        task = next((t for t in store.tasks() if t.session == session.id), None)
        if task is None or store.claim_task(session.id, mark, session.updated_at):
            tasks.cancel_queued(store, session, "cancelled by `aura session cancel`")
            return State.CANCELLED
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        found = run_process(store, session.id)
        if found is not None:
            pid, started = found
            if is_alive(pid, started):
                os.kill(pid, signal.SIGINT)
            break
        if store.get_session(session.id).state.is_final:
            break
        time.sleep(0.05)  # a task being started: its process takes the session soon
    while time.monotonic() < deadline:
        current = store.get_session(session.id).state
        if current.is_final:
            return current
        time.sleep(0.05)
    raise AuraError(f"session {session.id[:8]} did not stop within {wait:.0f} s")


# steering --------------------------------------------------------------------------------

def steer(store: Store, session_id: str, text: str, *, by: str | None = None,
          wait: float = CONTROL_WAIT) -> Control:
    """Send ``text`` to the running session: into its running turn where the agent takes
    it (the control comes back ``delivered``), else ``queued`` as the next follow-up;
    ``refused`` (with a ``note``) when the run went away first. AuraError when the
    session is not running here. It blocks while it waits (up to ``wait`` seconds): a
    caller with an event loop, above all one that runs the session itself (the TUI),
    calls it in a thread (``asyncio.to_thread``) so that the run can pick it up."""
    if not text.strip():
        raise UsageError("the text to steer with is empty")
    return _send(store, session_id, "steer", text, by or sender("aura session steer"), wait)


def interrupt(store: Store, session_id: str, *, text: str = "", by: str | None = None,
              wait: float = CONTROL_WAIT) -> Control:
    """Interrupt the running turn the agent's own way (the run then ends cancelled, the
    agent session kept); ``text`` is queued as the follow-up to run after it. The
    control comes back ``delivered`` or ``refused`` (the agent cannot be interrupted in
    the mode it runs in: ``note`` says so)."""
    return _send(store, session_id, "interrupt", text,
                 by or sender("aura session interrupt"), wait)


def sender(surface: str) -> str:
    """"alice@box (aura session steer)": who sends from this process (named as the
    answerer of an approval is)."""
    from aura.service.approvals import who

    return who(surface)


def _send(store: Store, session_id: str, kind: str, text: str, by: str, wait: float
          ) -> Control:
    import uuid

    from aura.recorder import utc_now

    session = store.get_session(session_id)
    if run_process(store, session.id) is None:  # a remote run: AuraError naming the worker
        raise AuraError(f"session {session.id[:8]} is not running ({session.state}); "
                        f"continue it with `aura run --session {session.id[:8]} TEXT`")
    control = Control(str(uuid.uuid4()), session.id, kind, utc_now(), by, text)
    store.create_control(control)
    deadline = time.monotonic() + wait
    while True:
        row = store.get_control(control.id)
        if row.state != "pending":
            return row
        gone = run_process(store, session.id) is None
        if gone or time.monotonic() > deadline:
            why = "the run ended before it read this" if gone else \
                f"the run did not pick it up within {wait:g} s"
            store.move_control(control.id, "pending", "refused", at=utc_now(), note=why)
            continue  # it was refused, or picked up at the last moment: read it again
        time.sleep(0.05)
