"""Use cases: run a turn, continue a session, read sessions back. No click, no printing:
the CLI passes a watcher for entries and renders what comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import engine
from .contracts import (
    Entry,
    EntryKind,
    Execution,
    ExecutionStatus,
    Session,
    State,
    Transition,
)
from .errors import AuraError, UsageError
from .executors.base import Approvals, Executor, Outcome, RunRequest
from .liveness import process_start_time, sweep_orphans
from .process import DEFAULT_LINE_CAP
from .recorder import Recorder, Watcher, utc_now
from .store import Store

EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class RunOptions:
    """What the user asked for on `aura run` (already parsed, not yet validated)."""

    prompt: str
    executor: str | None = None  # None: the session's, or the default
    append_prompt: str = ""
    cwd: str | None = None
    session: str | None = None
    resume_latest: bool = False
    model: str | None = None
    base_command: str | None = None
    params: tuple[str, ...] = ()
    vars: dict[str, str] = field(default_factory=dict)
    approvals: Approvals = field(default_factory=Approvals)
    executor_paths: dict[str, str] = field(default_factory=dict)
    openai_endpoint: str | None = None
    line_cap: int = DEFAULT_LINE_CAP
    interactive: bool = False


@dataclass(frozen=True, slots=True)
class RunResult:
    session: Session
    execution_id: str
    state: str
    exit_code: int
    native_session_id: str | None
    usage: dict[str, float]
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        """The last line of `aura run --json`."""
        return {"kind": EntryKind.SUMMARY.value, "session": self.session.id,
                "execution": self.execution_id, "state": self.state,
                "exit_code": self.exit_code, "native_session_id": self.native_session_id,
                "usage": self.usage, "error": self.error}


def new_id() -> str:
    return str(uuid.uuid4())


# sessions ---------------------------------------------------------------------------------

def _resolve_session(store: Store, options: RunOptions, cwd: str | None) -> Session | None:
    if options.session and options.resume_latest:
        raise UsageError("use either --session or --resume-latest, not both")
    if options.session:
        return store.get_session(options.session)
    if options.resume_latest:
        from .executors import registry

        executor = registry.canonical(options.executor) if options.executor else None
        found = store.list_sessions(1, executor=executor, cwd=cwd)
        if not found:
            where = f" for --executor {executor}" if executor else ""
            raise AuraError(f"no session to resume in {cwd}{where}; "
                            "start one with `aura run` or see `aura session list`")
        return found[0]
    return None


def _resolve_cwd(path: str | None) -> str:
    resolved = Path(path).expanduser() if path else Path.cwd()
    if not resolved.is_dir():
        raise UsageError(f"--cwd {path!r} is not a directory")
    return str(resolved.resolve())


# running -----------------------------------------------------------------------------------

class _Run:
    """One turn of one session: its rows, its recorder, its transitions."""

    def __init__(self, store: Store, session: Session, execution: Execution,
                 recorder: Recorder) -> None:
        self.store = store
        self.session = session
        self.execution = execution
        self.recorder = recorder

    def move(self, dst: State, reason: str) -> None:
        src = self.session.state
        engine.transition(src, dst)
        at = utc_now()
        self.store.record_transition(
            Transition(self.session.id, src, dst.value, at, reason, self.execution.id))
        self.session = self.store.get_session(self.session.id)
        self.recorder.emit([{"kind": EntryKind.STATE.value, "from": src, "to": dst.value,
                             "reason": reason}])

    def finish(self, status: ExecutionStatus, exit_code: int | None, reason: str) -> None:
        self.recorder.flush()
        self.execution = self.store.update_execution(
            self.execution.id, status=status.value, exit_code=exit_code, ended_at=utc_now(),
            reason=reason)


async def _flush_periodically(recorder: Recorder, every: float = 0.5) -> None:
    # A quiet agent still gets its last lines into the store promptly (another terminal
    # may be watching with `aura session show`).
    while True:
        await asyncio.sleep(every)
        recorder.flush()


def _merge(options: RunOptions, session: Session | None) -> dict[str, Any]:
    """Settings for this turn: what the user gave now, else what the session ran with."""
    stored = session.options if session else {}
    merged_vars = dict(stored.get("vars", {}))
    merged_vars.update(options.vars)
    return {
        "base_command": options.base_command if options.base_command is not None
        else stored.get("base_command"),
        "params": list(options.params) or list(stored.get("params", [])),
        "vars": merged_vars,
        "openai_endpoint": options.openai_endpoint or stored.get("openai_endpoint"),
    }


def build_executor(name: str) -> Executor:
    from .executors import registry

    return registry.load(name)()


async def run(options: RunOptions, store: Store, watcher: Watcher | None = None) -> RunResult:
    """Run one turn (a new session, or a follow-up of ``--session``/``--resume-latest``).

    Cancelling the task that awaits this (Ctrl-C) stops the agent and returns a
    ``cancelled`` result; every entry read so far is stored either way."""
    from . import config as config_module
    from .executors import registry

    sweep_orphans(store)
    config = config_module.load()
    cwd_hint = _resolve_cwd(options.cwd) if options.cwd else None
    session = _resolve_session(store, options, cwd_hint or (None if options.session else
                                                            _resolve_cwd(None)))
    if session is not None and options.executor is not None and \
            registry.canonical(options.executor) != session.executor:
        raise UsageError(f"session {session.id[:8]} runs executor {session.executor}; "
                         f"drop --executor or start a new session")
    name = registry.canonical(options.executor or (session.executor if session else
                                                   registry.DEFAULT_EXECUTOR))
    cwd = cwd_hint or (session.cwd if session else _resolve_cwd(None))
    if not Path(cwd).is_dir():
        raise UsageError(f"the session's directory {cwd} no longer exists; pass --cwd")
    settings = _merge(options, session)
    paths = dict(config.get("executor_paths", {}))
    paths.update(options.executor_paths)
    executor = build_executor(name)
    prompt = options.prompt + options.append_prompt
    session_id = session.id if session else new_id()
    execution_id = new_id()
    history: tuple[Entry, ...] = tuple(store.entries(session.id)) if session else ()
    request = RunRequest(
        prompt=prompt, cwd=cwd, session_id=session_id, execution_id=execution_id,
        native_session_id=session.native_session_id if session else None,
        model=options.model or (session.model if session else None),
        base_command=settings["base_command"], params=tuple(settings["params"]),
        env=settings["vars"], approvals=options.approvals,
        settings=config_module.executor_settings(config, name), program=paths.get(name),
        openai_endpoint=settings["openai_endpoint"], history=history,
        line_cap=options.line_cap, interactive=options.interactive)
    executor.validate(request)
    executor.preflight(request)  # a missing binary: one line, and no session recorded

    now = utc_now()
    if session is None:
        session = Session(id=session_id, executor=name, state=State.QUEUED.value, cwd=cwd,
                          created_at=now, updated_at=now, prompt=prompt, model=request.model,
                          options=settings)
        store.create_session(session)
        store.record_transition(Transition(session_id, None, State.QUEUED.value, now,
                                           "created"))
        stage = State.CODING_INITIAL
    else:
        session = store.update_session(session.id, options=settings, model=request.model)
        stage = State.CODING_FOLLOW_UP
    if not engine.allowed(session.state, stage):
        raise AuraError(f"session {session.id[:8]} is {session.state}; it cannot take a "
                        "follow-up now (is it still running?)")
    execution = Execution(id=execution_id, session=session_id, stage=stage.value,
                          started_at=now, host="local", pid=os.getpid(),
                          pid_started=process_start_time(os.getpid()), executor=name)
    store.create_execution(execution)

    def on_native(native_id: str) -> None:
        store.update_session(session_id, native_session_id=native_id)

    recorder = Recorder(store, session_id, execution_id, stage.value, watcher=watcher,
                        on_native_session_id=on_native)
    turn = _Run(store, session, execution, recorder)
    turn.move(stage, "follow-up" if stage is State.CODING_FOLLOW_UP else "start")
    recorder.emit([{"kind": EntryKind.USER_MESSAGE.value, "text": prompt}])
    return await _drive(turn, executor, request)


async def _drive(turn: _Run, executor: Executor, request: RunRequest) -> RunResult:
    """Run the executor and bring session and execution to their final states."""
    recorder = turn.recorder
    ticker = asyncio.create_task(_flush_periodically(recorder))
    error: str | None = None
    try:
        try:
            outcome = await executor.run(request, recorder)
        finally:
            ticker.cancel()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
        turn.finish(ExecutionStatus.CANCELLED, None, "interrupted")
        turn.move(State.CANCELLED, "interrupted by the user")
        code, state = EXIT_INTERRUPTED, State.CANCELLED
    except AuraError as exc:
        error = str(exc)
        recorder.emit([{"kind": EntryKind.ERROR.value, "text": error}])
        turn.finish(ExecutionStatus.FAILED, None, error)
        turn.move(State.FAILED, error)
        code, state = exc.exit_code, State.FAILED
    except BaseException as exc:
        # A bug in aura: record it so the row does not stay running, then let it show.
        reason = f"aura crashed: {type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            turn.finish(ExecutionStatus.FAILED, None, reason)
        with contextlib.suppress(Exception):
            turn.move(State.FAILED, reason)
        with contextlib.suppress(Exception):
            recorder.emit([{"kind": EntryKind.ERROR.value, "text": reason}])
            recorder.flush()
        raise
    else:
        code, state, error = _judge(outcome)
        if state is State.DONE:
            turn.finish(ExecutionStatus.DONE, code, "exit code 0")
            turn.move(State.DONE, "agent finished")
        else:
            recorder.emit([{"kind": EntryKind.ERROR.value, "text": error}])
            turn.finish(ExecutionStatus.FAILED, code, error or "failed")
            turn.move(State.FAILED, error or "failed")
    recorder.flush()
    session = turn.store.get_session(turn.session.id)
    return RunResult(session=session, execution_id=turn.execution.id, state=state.value,
                     exit_code=code, native_session_id=session.native_session_id,
                     usage=recorder.usage, error=error)


def _judge(outcome: Outcome) -> tuple[int, State, str | None]:
    """Exit code and success come from the agent's exit status and its final result."""
    if outcome.exit_code == 0 and outcome.error is None:
        return 0, State.DONE, None
    if outcome.exit_code == 0:
        return 1, State.FAILED, outcome.error
    if outcome.exit_code < 0:
        reason = f"agent killed by signal {-outcome.exit_code}"
        return 128 - outcome.exit_code, State.FAILED, outcome.error or reason
    return (outcome.exit_code, State.FAILED,
            outcome.error or f"agent exited with code {outcome.exit_code}")
