"""What the TUI shows and knows, apart from the screen: the executor and model chosen, the
current session, the status line, the Queue pane's rows and the Model pane's list, and how
a prompt becomes the options of the next turn. No prompt_toolkit here: the app draws and
binds keys around this state, and tests drive it directly.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from aura.cli.render import format_usage
from aura.contracts import Entry, Execution, Session, State
from aura.errors import AuraError
from aura.service.run_options import RunOptions
from aura.service.runner import RunResult
from aura.store import Store
from aura.tui.tally import Tally

if TYPE_CHECKING:
    from aura.service.models import ServerModels

QUEUE_SESSIONS = 10  # sessions listed in the Queue pane
QUEUE_EXECUTIONS = 8  # executions of the current session listed under them
TALLY_EVERY = 3.0  # seconds between two counts of a running session's usage
QUIT_WINDOW = 5.0  # a second Ctrl-C within this many seconds quits
NO_MODEL_LIST = "no model list (/model NAME sets one)"


def _waiting(store: Store) -> dict[str, str]:
    """Why each queued task waits, as the scheduler decides it (`aura task list`)."""
    from aura.service.queue_plan import START, plan
    from aura.service.tasks import snapshot

    return {d.task.session: d.reason for d in plan(snapshot(store)) if d.status != START}


def _step(cursor: int, step: int, count: int) -> int:
    return min(max(0, count - 1), max(0, cursor + step))


@dataclass
class Queue:
    """The Queue pane: recent sessions, the current session's executions, a cursor."""

    sessions: list[Session] = field(default_factory=list)
    executions: list[Execution] = field(default_factory=list)
    error: str = ""  # why the store could not be read, if it could not
    cursor: int = 0
    # Per session: its usage so far, the last entry counted (read on from there) and when
    # (with the session's updated_at) it was counted.
    tallies: dict[str, tuple[int, Tally, str, float]] = field(default_factory=dict)
    waiting: dict[str, str] = field(default_factory=dict)  # queued task → why it waits

    def refresh(self, store: Store, session_id: str | None) -> None:
        try:
            self.sessions = store.list_sessions(QUEUE_SESSIONS)
            self.executions = (store.list_executions(session_id)[-QUEUE_EXECUTIONS:]
                               if session_id else [])
            for session in self.sessions:
                self._tally(store, session)
            self.waiting = _waiting(store) if any(
                s.state == State.QUEUED for s in self.sessions) else {}
            self.error = ""
        except AuraError as exc:
            self.error = str(exc)
        self.cursor = min(self.cursor, max(0, len(self.sessions) - 1))

    def _tally(self, store: Store, session: Session) -> None:
        seq, tally, updated, at = self.tallies.get(session.id) or (0, Tally(), "", 0.0)
        now = time.monotonic()
        # A session at rest is read again only when it changed; a running one every few
        # seconds (not every refresh: a flood's entries would be parsed twice).
        if seq and (updated == session.updated_at if session.state.is_final
                    else now - at < TALLY_EVERY):
            return
        fresh = store.entries(session.id, after_seq=seq)
        fresh = [e for e in fresh if int(e.get("seq", 0)) > seq]
        for entry in fresh:
            tally.add(entry, session.model)
        if fresh:
            seq = int(fresh[-1].get("seq", seq))
        self.tallies[session.id] = (seq, tally, session.updated_at, now)

    def streamed(self, session_id: str, last: int, used: list[tuple[int, Entry]],
                 model: str | None) -> None:
        """Entries a turn of this TUI streamed, up to seq ``last`` (``used``: those with
        usage): counted here, so the store is not read for them again. Whichever sees an
        entry first (this or ``refresh``) counts it; the other skips it by its seq."""
        found = self.tallies.get(session_id)
        if found is None or last <= found[0]:
            return
        seq, tally, updated, at = found
        for at_seq, entry in used:
            if at_seq > seq:
                tally.add(entry, model)
        self.tallies[session_id] = (last, tally, updated, at)

    def tally(self, session_id: str) -> Tally:
        found = self.tallies.get(session_id)
        return found[1] if found else Tally()

    def move(self, step: int) -> None:
        self.cursor = _step(self.cursor, step, len(self.sessions))

    def selected(self) -> Session | None:
        return self.sessions[self.cursor] if self.sessions else None


@dataclass
class ModelChoice:
    """The Model pane's discovered list (empty with a note when there is none)."""

    models: list[str] = field(default_factory=list)
    note: str = ""
    cursor: int = 0

    def reset(self) -> None:
        self.models, self.note, self.cursor = [], "", 0

    def offer(self, found: ServerModels | None, current: str | None) -> None:
        """Show what a discovery found; the cursor starts on ``current`` if listed."""
        if found is not None and found.error:
            self.note = found.error
        elif found is None:
            self.note = NO_MODEL_LIST
        else:
            self.models = found.models
            if current in found.models:
                self.cursor = found.models.index(current)

    def move(self, step: int) -> None:
        self.cursor = _step(self.cursor, step, len(self.models))

    def selected(self) -> str | None:
        return self.models[self.cursor] if self.models else None


class TuiState:
    """The choices for the next turn and what the last one left behind."""

    def __init__(self, options: RunOptions, executor: str | None) -> None:
        self.base = replace(options, asker=None)  # pickers would fight the screen
        self.executor = executor  # canonical name; None: the default
        self.model = options.model
        self.review = options.review
        self.session_id: str | None = None
        self.session_executor: str | None = None
        self.result: RunResult | None = None
        self.exit_code = 0
        self.status = "ready"
        self.armed_at = 0.0  # when Ctrl-C was pressed with nothing to cancel
        self.queue = Queue()
        self.models = ModelChoice()
        self.turn_started: float | None = None  # monotonic start of the running turn
        self.turn_usage = Tally()  # what the running (or last) turn used so far

    def turn_began(self, now: float) -> None:
        self.turn_started = now
        self.turn_usage = Tally()

    def count_usage(self, entry: Entry) -> None:
        """A streamed entry: count its usage into the turn's tokens and cost."""
        if "usage" in entry:
            self.turn_usage.add(entry, self.model)

    def turn_options(self, prompt: str) -> tuple[RunOptions, bool]:
        """The options that send ``prompt``, and whether it follows up the current
        session (it does unless another executor was chosen since)."""
        follow_up = self.session_id is not None and (
            self.executor is None or self.executor == self.session_executor)
        options = replace(
            self.base, prompt=prompt, append_prompt=self.base.append_prompt,
            executor=None if follow_up else self.executor,
            session=self.session_id if follow_up else None,
            resume_latest=False, model=self.model, review=self.review)
        if not follow_up:
            self.session_id = None
        self.base = replace(self.base, resume_latest=False)
        return options, follow_up

    def adopt(self, session: Session) -> None:
        """Make ``session`` the current one: sends follow it up, with its model."""
        self.session_id = session.id
        self.session_executor = session.executor
        self.executor = session.executor
        self.model = session.model
        self.status = f"session {session.id[:8]} ({session.executor}, {session.state})"

    def new_session(self) -> None:
        self.session_id = None
        self.session_executor = None
        self.status = "the next send starts a new session"

    def learn_session(self, record: str) -> None:
        """A running turn's first record names the session it created."""
        if self.session_id is None:
            try:
                self.session_id = json.loads(record)["session"]
            except (ValueError, KeyError, TypeError):
                return
            self.session_executor = self.executor

    def choose_executor(self, name: str) -> None:
        self.executor = name
        if self.session_id and name != self.session_executor:
            self.status = f"the next send starts a new {name} session"

    def choose_model(self, name: str | None) -> None:
        self.model = name
        self.status = f"model {name or '(agent default)'}"

    def set_review(self, arg: str) -> None:
        """``on``, ``off``, or anything else to toggle."""
        self.review = {"on": True, "off": False}.get(arg.lower(), not self.review)
        self.status = f"review {'on' if self.review else 'off'} from the next turn"

    def interrupt(self, now: float) -> bool:
        """Ctrl-C at ``now``: True when it is the second one within the quit window."""
        if now - self.armed_at < QUIT_WINDOW:
            return True
        self.armed_at = now
        return False

    def turn_finished(self, result: RunResult) -> str | None:
        """Take a turn's result; the error line to show, if any."""
        self.result = result
        self.exit_code = result.exit_code
        self.session_id = result.session.id
        self.session_executor = result.session.executor
        usage = f"  usage: {format_usage(result.usage)}" if result.usage else ""
        self.status = f"{result.state} (exit {result.exit_code}){usage}"
        if result.error and result.state != "cancelled":
            return f"aura: {result.error}"
        return None

    def turn_failed(self, exc: BaseException) -> str:
        """Take the exception that ended a turn; the line that says so."""
        if isinstance(exc, AuraError):
            self.status = "error"
            self.exit_code = exc.exit_code
            return f"aura: error: {exc}"
        self.status = "crashed"
        self.exit_code = 1
        return f"aura crashed: {type(exc).__name__}: {exc}"
