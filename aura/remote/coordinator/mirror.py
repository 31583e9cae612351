"""The store's copy of what workers report: their snapshots of sessions, executions and
transitions, runs declared worker_lost, and summaries rebuilt from rows."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aura import engine
from aura.contracts import Execution, ExecutionStatus, RunSummary, Session, State, Transition
from aura.errors import NotFound
from aura.recorder import utc_now
from aura.rpc import INVALID_PARAMS, UNAVAILABLE, RpcError
from aura.store import Store

RUNNING = ExecutionStatus.RUNNING.value
LOST = ExecutionStatus.WORKER_LOST.value


def summary_from_rows(session: Session, executions: list[Execution]) -> RunSummary:
    """The summary of a finished run rebuilt from its rows (when the coordinator restarted
    after the run ended and a client asks)."""
    state = session.state
    last = executions[-1] if executions else None
    code = last.exit_code if last else None
    if state == State.CANCELLED.value:
        code = 130
    elif state == State.DONE.value:
        code = 0
    elif not code:
        code = 1
    return RunSummary(session=session.id, execution=last.id if last else None, state=state,
                      exit_code=code, native_session_id=session.native_session_id,
                      error=None if state == State.DONE.value else
                      (last.reason if last else None))


class Mirror:
    def __init__(self, store: Store) -> None:
        self.store = store

    def apply(self, worker: str, snapshot: dict[str, Any]) -> str:
        """Mirror a worker's session/execution/transitions; returns the session id."""
        try:
            session = Session.from_json(snapshot["session"])
            executions = [replace(Execution.from_json(session.id, e), host=worker, pid=None,
                                  pid_started=None) for e in snapshot.get("executions", [])]
            transitions = [Transition.from_json(session.id, t)
                           for t in snapshot.get("transitions", [])]
        except (KeyError, TypeError, ValueError):
            raise RpcError(INVALID_PARAMS, "invalid params: malformed snapshot") from None
        try:
            state = self.store.get_session(session.id).state
        except NotFound:
            first = transitions[0] if transitions and transitions[0].src is None else None
            state = first.dst if first else session.state
            self.store.create_session(replace(session, state=state))
        self._executions(session.id, executions)
        self._transitions(session.id, state, transitions)
        fields: dict[str, Any] = {"native_session_id": session.native_session_id,
                                  "model": session.model, "options": session.options}
        self.store.update_session(session.id,
                                  **{k: v for k, v in fields.items() if v is not None})
        return session.id

    def _executions(self, session_id: str, executions: list[Execution]) -> None:
        existing = {e.id: e for e in self.store.list_executions(session_id)}
        for execution in executions:
            current = existing.get(execution.id)
            if current is None:
                self.store.create_execution(execution)
            elif current.status == LOST:
                # worker_lost stays; what the worker says happened is kept beside it.
                if execution.status != RUNNING and \
                        "later reported" not in (current.reason or ""):
                    self.store.update_execution(
                        execution.id, exit_code=execution.exit_code,
                        reason=f"{current.reason}; the worker later reported: "
                               f"{execution.status} (exit {execution.exit_code})")
            elif current.status == RUNNING:
                self.store.update_execution(
                    execution.id, status=execution.status, exit_code=execution.exit_code,
                    ended_at=execution.ended_at, reason=execution.reason,
                    stage=execution.stage, executor=execution.executor)

    def _transitions(self, session_id: str, state: str, transitions: list[Transition]) -> None:
        # Transitions apply in a chain from the coordinator's current state, so a worker's
        # moves made after the coordinator declared worker_lost (which start elsewhere)
        # are not applied: worker_lost stays final. A resent snapshot adds nothing.
        known = {(t.src, t.dst, t.at, t.execution) for t in self.store.transitions(session_id)}
        for t in transitions:
            key = (t.src, t.dst, t.at, t.execution)
            if key in known:
                continue
            if t.src != state and not (t.src is None and not known):
                continue
            self.store.record_transition(t)
            known.add(key)
            state = t.dst

    def mark_lost(self, session_id: str, run_id: str, worker: str,
                  reason: str) -> RunSummary | None:
        """Record the run's running executions on ``worker`` as worker_lost, and the session
        too; the run's summary, or None when the session is unknown."""
        now = utc_now()
        try:
            session = self.store.get_session(session_id)
            running = [e for e in self.store.list_executions(session_id)
                       if e.status == RUNNING and e.host == worker]
        except NotFound:
            return None
        last = None
        for execution in running:
            last = self.store.update_execution(execution.id, status=LOST, ended_at=now,
                                               reason=reason)
        if engine.allowed(session.state, State.WORKER_LOST):
            self.store.record_transition(Transition(
                session_id, session.state, State.WORKER_LOST, now, reason,
                last.id if last else run_id))
            session = self.store.get_session(session_id)
        return RunSummary(session=session_id, execution=last.id if last else run_id,
                          state=LOST, exit_code=1,
                          native_session_id=session.native_session_id, error=reason)

    def status(self, session_id: str, execution_id: str) -> str | None:
        try:
            executions = self.store.list_executions(session_id)
        except NotFound:
            return None
        return next((e.status for e in executions if e.id == execution_id), None)

    def superseded(self, session_id: str, run_id: str) -> bool:
        """Whether ``run_id`` was declared worker_lost and its session has since gone on
        with another run (a transition out of worker_lost after the loss)."""
        try:
            executions = self.store.list_executions(session_id)
        except NotFound:
            return False
        first = next((e for e in executions if e.id == run_id), None)
        if first is None or first.status != LOST:
            return False
        lost_at = first.ended_at or ""
        return any(t.src == State.WORKER_LOST.value and t.at >= lost_at
                   for t in self.store.transitions(session_id))

    def ended_summary(self, session_id: str, run_id: str) -> RunSummary | None:
        """The summary of a run that ended before this coordinator started, from rows;
        None while it has not ended."""
        session = self.store.get_session(session_id)
        executions = self.store.list_executions(session_id)
        start = next((e.started_at for e in executions if e.id == run_id), None)
        ours = [e for e in executions if start is not None and e.started_at >= start]
        if ours and State(session.state).is_final and \
                all(e.status != RUNNING for e in ours):
            return summary_from_rows(session, ours)
        return None

    def follow_up(self, session_id: str) -> tuple[Session, dict[str, Any]]:
        """A session to go on with on a worker, and the snapshot ``execution.start`` sends
        for it; UNAVAILABLE while it still runs."""
        session = self.store.get_session(session_id)
        if any(e.status == RUNNING for e in self.store.list_executions(session.id)):
            raise RpcError(UNAVAILABLE, f"session {session.id[:8]} is still running; "
                           "wait for it or interrupt it first")
        snapshot = {"session": session.to_json(),
                    "transitions": [t.to_json() for t in self.store.transitions(session.id)],
                    "last_seq": self.store.last_seq(session.id)}
        return session, snapshot
