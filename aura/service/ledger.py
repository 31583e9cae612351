"""The ledger of one turn: everything the orchestrator writes to the store as a session
moves through its stages — executions and their recorders, transitions, entries, usage,
the workspace remembered in the session, saved work — and the ending of a turn that failed
or was cancelled. The stages themselves (what runs when) are pipeline.py's."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aura import engine
from aura.contracts import EntryKind, Execution, ExecutionStatus, Session, State, Transition
from aura.errors import AuraError
from aura.recorder import Recorder, Watcher, utc_now
from aura.service.hosts import Host
from aura.store import Store
from aura.workspace import Workspace

if TYPE_CHECKING:
    from aura.service.usage import Price

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
# How a cancelled turn is recorded and what aura exits with, by what cancelled it (the
# message of the cancellation: the CLI cancels with the signal's name).
STOPPED_BY = {"SIGTERM": ("terminated", EXIT_TERMINATED),
              "SIGHUP": ("terminal hung up", 129)}
STOPPED_BY_USER = ("interrupted by the user", EXIT_INTERRUPTED)
EXIT_BUDGET = 1  # the run was stopped by --max-cost: it did not finish what it was asked


@dataclass(frozen=True, slots=True)
class Finished:
    state: State
    exit_code: int
    execution_id: str
    usage: dict[str, float]
    error: str | None = None
    aura_error: bool = False  # aura itself failed (not the agent): the CLI says so once


def workspace_of(session: Session) -> Workspace | None:
    data = session.options.get("workspace")
    return Workspace.from_json(data) if isinstance(data, dict) else None


async def _flush_periodically(recorder: Recorder, every: float = 0.5) -> None:
    # A quiet agent still gets its last lines into the store promptly (another terminal
    # may be watching with `aura session show`).
    while True:
        await asyncio.sleep(every)
        recorder.hand_off()


class Ledger:
    """What one turn of one session has written so far, and how it writes more."""

    def __init__(self, store: Store, host: Host, session: Session,
                 watcher: Watcher | None = None) -> None:
        self.store = store
        self.host = host
        self.session = session
        self.watcher = watcher
        self.recorder: Recorder | None = None
        self.execution: Execution | None = None
        self.main_execution: str | None = None
        self.usage: dict[str, float] = {}
        self.workspace = workspace_of(session)
        self.max_cost: float | None = None  # --max-cost: USD this turn may spend
        # The config's price table: what prices usage the agent reports only tokens for.
        self.prices: Mapping[str, Price] = {}
        self.spent = 0.0  # USD this turn spent, priced as `aura usage` prices it
        self.over_budget: str | None = None  # why the turn was stopped, once it was
        self._task: asyncio.Task[Any] | None = None  # what a passed budget cancels

    def open(self, stage: State, executor: str | None, *,
              on_native: Callable[[str], None] | None = None) -> Recorder:
        """Start a new execution (finishing nothing: the caller finished the last one)."""
        import uuid

        if self.recorder is not None:
            self.recorder.close()
            self.add_usage(self.recorder)
        execution = Execution(id=str(uuid.uuid4()), session=self.session.id,
                              stage=stage, started_at=utc_now(), executor=executor,
                              **self.host.execution_fields())
        self.store.create_execution(execution)
        self.execution = execution
        self.recorder = Recorder(self.store, self.session.id, execution.id, stage.value,
                                 watcher=self.watcher, on_native_session_id=on_native,
                                 on_usage=self._check_budget if self.max_cost is not None
                                 else None)
        return self.recorder

    def cost(self) -> float:
        """USD this turn spent so far: each entry's reported ``cost_usd``, else its tokens
        priced by the config's table (the cost the ledger of `aura usage` computes)."""
        return self.spent

    def _check_budget(self, usage: Mapping[str, object], model: object) -> None:
        # Called from inside the recorder as each usage arrives: the agent is stopped by
        # cancelling the turn's task, which ends it as cancelled and saves the work.
        if self.max_cost is None or self.over_budget is not None:
            return
        from aura.service.usage import cost_of

        name = model if isinstance(model, str) and model else \
            self.session.model or "(unknown)"
        self.spent += cost_of(usage, name, self.prices) or 0.0
        spent = self.spent
        if spent > self.max_cost:
            self.over_budget = (f"budget: cost ${spent:.4f} passed --max-cost "
                                f"${self.max_cost:g}")
            if self._task is not None:
                self._task.cancel(self.over_budget)

    def add_usage(self, recorder: Recorder) -> None:
        for key, value in recorder.usage.items():
            self.usage[key] = self.usage.get(key, 0) + value
        recorder.usage = {}

    def finish(self, status: ExecutionStatus, exit_code: int | None, reason: str) -> None:
        if self.execution is None or self.execution.status != ExecutionStatus.RUNNING.value:
            return
        assert self.recorder is not None
        self.recorder.flush()
        self.execution = self.store.update_execution(
            self.execution.id, status=status.value, exit_code=exit_code, ended_at=utc_now(),
            reason=reason)

    def move(self, dst: State, reason: str, exit_code: int | None = None) -> None:
        """Move the session to ``dst``; its state entry carries the exit code of a
        failed turn (so text output can say "failed after 3 m (exit 2)")."""
        src = self.session.state
        engine.transition(src, dst)
        self.store.record_transition(Transition(
            self.session.id, src, dst, utc_now(), reason,
            self.execution.id if self.execution else None))
        self.session = self.store.get_session(self.session.id)
        entry: dict[str, Any] = {"kind": EntryKind.STATE.value, "from": src, "to": dst.value,
                                 "reason": reason}
        if exit_code is not None:
            entry["exit_code"] = exit_code
        self.emit(entry)

    def emit(self, *entries: dict[str, Any]) -> None:
        assert self.recorder is not None
        self.recorder.emit(list(entries))  # type: ignore[arg-type]

    def store_workspace(self, ws: Workspace) -> None:
        self.workspace = ws
        options = dict(self.session.options)
        options["workspace"] = ws.to_json()
        self.session = self.store.update_session(self.session.id, options=options,
                                                 cwd=ws.root)

    async def save(self, message: str) -> None:
        """Save the workspace's uncommitted work and say where it went."""
        ws = self.workspace
        if ws is None or ws.removed:
            return
        from aura.workspace import with_saves

        saves = await self.host.save_work(ws, message)
        if saves:
            self.store_workspace(with_saves(ws, saves))
        for save in saves:
            self.emit({"kind": EntryKind.SYSTEM.value,
                       "text": f"uncommitted work in {save['repo']} saved on {save['ref']} "
                               f"(commit {save['commit'][:12]})",
                       "data": {"type": "saved", **save}})

    async def timed(self, coro: Any) -> Any:
        assert self.recorder is not None
        self._task = asyncio.current_task()
        ticker = asyncio.create_task(_flush_periodically(self.recorder))
        try:
            return await coro
        finally:
            ticker.cancel()

    def result(self, state: State, code: int, error: str | None = None) -> Finished:
        if self.recorder is not None:
            self.recorder.close()
            self.add_usage(self.recorder)
        execution = self.main_execution or (self.execution.id if self.execution else "")
        return Finished(state, code, execution, dict(self.usage), error)

    async def end_cancelled(self, cause: str | None = None, *, reason: str | None = None
                            ) -> Finished:
        """End a cancelled turn; ``cause`` is the cancellation's message (a signal name),
        ``reason`` what to record instead of the cause's (an interrupt's sender)."""
        said, code = STOPPED_BY.get(cause or "", STOPPED_BY_USER)
        reason = reason or said
        if self.over_budget is not None:
            reason, code = self.over_budget, EXIT_BUDGET
        if self.recorder is None:
            self.open(State(self.session.state), None)
        self.finish(ExecutionStatus.CANCELLED, None, "interrupted" if
                    code == EXIT_INTERRUPTED else reason)
        if self.over_budget is not None:
            self.emit({"kind": EntryKind.ERROR.value, "text": self.over_budget})
        with contextlib.suppress(AuraError):
            await asyncio.shield(self.save(
                f"aura: saved when session {self.session.id} was cancelled"))
        if engine.allowed(self.session.state, State.CANCELLED):
            self.move(State.CANCELLED, reason)
        return self.result(State.CANCELLED, code, self.over_budget)

    async def end_failed(self, error: str, code: int, *, aura_error: bool = False
                          ) -> Finished:
        if self.recorder is None:
            self.open(State(self.session.state), None)
        self.emit({"kind": EntryKind.ERROR.value, "text": error})
        self.finish(ExecutionStatus.FAILED, code, error)
        try:
            await self.save(f"aura: saved when session {self.session.id} failed")
        except AuraError as exc:
            self.emit({"kind": EntryKind.ERROR.value, "text": f"could not save work: {exc}"})
        if engine.allowed(self.session.state, State.FAILED):
            self.move(State.FAILED, error.splitlines()[0] if error else "failed", code)
        return dataclasses.replace(self.result(State.FAILED, code, error),
                                   aura_error=aura_error)

