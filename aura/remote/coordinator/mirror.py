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
from aura.rpc_codec import NOT_OWNER
from aura.store import Store

RUNNING = ExecutionStatus.RUNNING.value
LOST = ExecutionStatus.WORKER_LOST.value


# Session settings only a client gives (the rest of a session's options, its workspace,
# is where the worker put the run).
CLIENT_SETTINGS = ("base_command", "params", "vars", "openai_endpoint", "cleanup", "review",
                   "review_executor")


def snapshot_options(session: Session) -> dict[str, Any]:
    options = session.options if isinstance(session.options, dict) else {}
    return {"workspace": options["workspace"]} if "workspace" in options else {}


def trusted_options(given: dict[str, Any], stored: dict[str, Any],
                    worker_part: dict[str, Any]) -> dict[str, Any]:
    """A remote session's options: what the client gave now, else what the session ran
    with (as a local run merges them), plus the worker's workspace; nothing else the
    worker says."""
    def pick(key: str) -> Any:
        value = given.get(key)
        return value if value not in (None, [], "") else stored.get(key)

    merged_vars = dict(stored.get("vars") or {})
    merged_vars.update(given.get("vars") or {})
    settings = {key: pick(key) for key in CLIENT_SETTINGS}
    settings.update(vars=merged_vars, params=list(settings["params"] or []),
                    cleanup=list(settings["cleanup"] or []),
                    review=bool(settings["review"]))
    # Secrets: their names only, never a value (the client sends values to the worker).
    names = list(given.get("secret_vars") or stored.get("secret_vars") or [])
    if names:
        settings["secret_vars"] = sorted(str(n) for n in names)
    return {**worker_part, **settings}


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

    def apply(self, worker: str, snapshot: dict[str, Any], *, session_id: str) -> str:
        """Mirror what the worker of a run reports of its session ``session_id``: its
        executions, transitions, native session id and model, never its options, prompt
        or commands (those come from clients). NOT_OWNER for any other session."""
        session, executions, transitions = self._parse(worker, snapshot)
        if session.id != session_id:
            raise RpcError(NOT_OWNER, f"the snapshot is of session {session.id[:40]!r}, "
                           f"not of this run's session {session_id[:8]}")
        state = self.store.get_session(session.id).state
        self._executions(worker, session.id, executions)
        self._transitions(session.id, state, transitions)
        fields: dict[str, Any] = {"native_session_id": session.native_session_id,
                                  "model": session.model}
        self.store.update_session(session.id,
                                  **{k: v for k, v in fields.items() if v is not None})
        return session.id

    def start(self, worker: str, snapshot: dict[str, Any], options: dict[str, Any],
              follow_up: str | None) -> str:
        """Mirror the session a worker just started a run of: the follow-up's session, or
        a new one whose prompt, executor and settings are the client's ``options``."""
        session, _, transitions = self._parse(worker, snapshot)
        if follow_up is not None:
            if session.id != follow_up:
                raise RpcError(NOT_OWNER, f"worker {worker} started session "
                               f"{session.id[:40]!r} instead of {follow_up[:8]}")
            stored = self.store.get_session(follow_up)
            self.store.update_session(follow_up, options=trusted_options(
                options, stored.options, snapshot_options(session)))
            return self.apply(worker, snapshot, session_id=follow_up)
        try:
            self.store.get_session(session.id)
        except NotFound:
            first = transitions[0] if transitions and transitions[0].src is None else None
            self.store.create_session(replace(
                session, state=first.dst if first else session.state,
                prompt=str(options.get("prompt") or ""), executor=str(options["executor"]),
                options=trusted_options(options, {}, snapshot_options(session))))
            return self.apply(worker, snapshot, session_id=session.id)
        raise RpcError(NOT_OWNER, f"worker {worker} answered with session "
                       f"{session.id[:8]}, which exists already")

    @staticmethod
    def _parse(worker: str, snapshot: dict[str, Any]
               ) -> tuple[Session, list[Execution], list[Transition]]:
        try:
            session = Session.from_json(snapshot["session"])
            executions = [replace(Execution.from_json(session.id, e), host=worker, pid=None,
                                  pid_started=None) for e in snapshot.get("executions", [])]
            transitions = [Transition.from_json(session.id, t)
                           for t in snapshot.get("transitions", [])]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise RpcError(INVALID_PARAMS, "invalid params: malformed snapshot") from None
        return session, executions, transitions

    def _executions(self, worker: str, session_id: str, executions: list[Execution]) -> None:
        existing = {e.id: e for e in self.store.list_executions(session_id)}
        for execution in executions:
            current = existing.get(execution.id)
            if current is not None and current.host != worker:
                continue  # another host's execution (local, or an earlier worker's)
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

    def owner(self, session_id: str, execution_id: str) -> str | None:
        """The host an execution of this session was recorded on (a worker's name, or
        'local'); None when there is no such execution in that session."""
        try:
            executions = self.store.list_executions(session_id)
        except NotFound:
            return None
        host = next((e.host for e in executions if e.id == execution_id), None)
        return None if host in (None, "local") else host

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
