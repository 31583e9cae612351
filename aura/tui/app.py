"""The terminal UI (`aura tui`, and `aura run` on a terminal): prompt_toolkit only, imported
only on this path. This module wires the panes, keys and commands into one application.

Panes: Logs (``aura.tui.logview``: the session's entries as they stream), Queue (sessions
with prompt, age and cost, why a queued task waits, and the current session's executions),
Model (executor and model, with the discovered model list where the executor has one),
Prompt (multi-line input, slash commands completed); a footer shows the keys, the slash
commands and the running turn's time, tokens and cost (``aura.tui.panes``). Under
``NARROW`` columns the Logs pane takes the whole width and F2 swaps in the side panes.
An overlay (``aura.tui.overlay``) shows the help (``?``) and the workspace diff (F3).
A session opened while another process runs it is followed from the store (``attach``).
What the panes show lives in ``aura.tui.state``; the keys are ``aura.tui.keys``, the slash
commands ``aura.tui.commands``.
Turns run through ``service.run(options, store, watcher)`` as a task in the UI's own event
loop; the watcher only appends to the log buffer and marks it dirty, and a ticker redraws
at most ``FPS`` times a second, never per entry.
The terminal is restored on every exit path (a crash included): prompt_toolkit's own
teardown, then ``aura.tui.terminal.held_terminal``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.filters import Condition
from prompt_toolkit.layout import (
    ConditionalContainer,
    Dimension,
    Float,
    FloatContainer,
    FormattedTextControl,
    HSplit,
    Layout,
    VSplit,
    Window,
)
from prompt_toolkit.layout.menus import CompletionsMenu
from prompt_toolkit.widgets import Frame, TextArea

from aura.contracts import Entry
from aura.errors import AuraError, UsageError
from aura.service.run_options import RunOptions
from aura.service.runner import RunResult
from aura.store import Store
from aura.tui.approval_bar import ApprovalBar
from aura.tui.commands import CommandCompleter, help_text, is_command, run_command
from aura.tui.keys import build_keys
from aura.tui.logview import LogView, full_lines
from aura.tui.overlay import Overlay, diff_lines
from aura.tui.panes import STYLE, footer_text, model_text, queue_text
from aura.tui.state import TuiState

FPS = 25
PAGE_ENTRIES = 1000  # entries read from the store per page when scrolling up
HISTORY_ENTRIES = 500  # entries shown when a session is opened
QUEUE_REFRESH = 1.0  # seconds between reads of the queue from the store
SHUTDOWN_WAIT = 15.0  # seconds a cancelled turn gets to record its end before we leave
NARROW = 100  # below this many columns the side panes are shown only on F2
ATTACH_POLL = 0.2  # seconds between reads of a session another process runs



def control_words(kind: str, state: str, note: str | None) -> str:
    """What became of a steer or an interrupt sent from the TUI, in one line."""
    if kind == "steer":
        return {"delivered": "steered: the text went into the running turn",
                "queued": "queued: it runs as the next follow-up when this turn ends"
                }.get(state, f"steering refused: {note}")
    if state == "delivered":
        return "interrupted: the agent session is kept for a follow-up"
    return f"interrupt refused: {note} (Esc cancels the run)"

class Tui:
    """The application: its panes, its keys, and the turns it runs."""

    def __init__(self, options: RunOptions, store: Store) -> None:
        from aura.executors import registry

        self.store = store
        self.state = TuiState(
            options, registry.canonical(options.executor) if options.executor else None)
        self.task: asyncio.Task[Any] | None = None
        self.dirty = True
        self.queue_due = True
        self.logs = LogView(load_before=self._load_before)
        self.approvals = ApprovalBar(self._changed)  # the person the broker asks
        self.overlay = Overlay()
        self.side_shown = False  # narrow terminals: the side panes instead of the Logs
        self.mouse = False  # off: the terminal's own text selection works (F9 toggles)
        self.attach_task: asyncio.Task[Any] | None = None
        self.controls: set[asyncio.Task[Any]] = set()  # steer/interrupt sends in flight
        self.unknown: str | None = None  # an unknown /word said once; Enter again sends it
        self.logs_window = Window(self.logs, wrap_lines=False)
        self.logs.show_selection = lambda: self._has_focus(self.logs_window)
        self.queue_window = Window(FormattedTextControl(
            lambda: queue_text(self.state, self._has_focus(self.queue_window)),
            focusable=True), wrap_lines=False)
        self.model_window = Window(FormattedTextControl(
            lambda: model_text(self.state, self._has_focus(self.model_window)),
            focusable=True), wrap_lines=False)
        self.prompt = TextArea(multiline=True, wrap_lines=True, prompt="› ", height=3,
                               focus_on_click=True, completer=CommandCompleter(),
                               complete_while_typing=True)
        self.order = [self.prompt.window, self.logs_window, self.queue_window,
                      self.model_window]
        self.app: Application[int] = Application(
            layout=Layout(self._root(), focused_element=self.prompt),
            key_bindings=build_keys(self), style=STYLE, full_screen=True,
            mouse_support=Condition(lambda: self.mouse))
        self.app.ttimeoutlen = 0.05  # Esc alone cancels without a noticeable wait

    def _frame(self, body: Any, title: str, **kw: Any) -> Frame:
        """A pane; its border and title say when it has the focus."""
        window = body.window if isinstance(body, TextArea) else body

        def focused() -> bool:
            return bool(self.app.layout.has_focus(window))

        frame = Frame(body, title=lambda: f"▶ {title} ◀" if focused() else title, **kw)
        frame.container.style = lambda: "class:frame class:focused" if focused() \
            else "class:frame"
        return frame

    @property
    def narrow(self) -> bool:
        return self.app.output.get_size().columns < NARROW

    def logs_visible(self) -> bool:
        return not (self.narrow and self.side_shown)

    def side_visible(self) -> bool:
        return not self.narrow or self.side_shown

    def _root(self) -> FloatContainer:
        side = HSplit([self._frame(self.queue_window, "Queue"),
                       self._frame(self.model_window, "Model", height=Dimension(min=6, max=14))],
                      width=lambda: Dimension(weight=1) if self.narrow else
                      Dimension(min=24, preferred=34, max=48, weight=1))
        body = VSplit([
            ConditionalContainer(
                self._frame(self.logs_window, "Logs", width=Dimension(min=30, weight=3)),
                filter=Condition(self.logs_visible)),
            ConditionalContainer(side, filter=Condition(self.side_visible)),
        ])
        footer = Window(FormattedTextControl(
            lambda: footer_text(self.state, self.running, self.logs.follow, self.narrow)),
            height=3, style="class:footer")
        bar = ConditionalContainer(
            Window(FormattedTextControl(self.approvals.text),
                   height=lambda: Dimension.exact(self.approvals.height()), wrap_lines=True),
            filter=Condition(lambda: self.approvals.visible))
        overlay = ConditionalContainer(
            Frame(Window(self.overlay, wrap_lines=False), title=lambda: self.overlay.title,
                  style="class:overlay"),
            filter=Condition(lambda: self.overlay.visible))
        main = HSplit([body, bar, self._frame(self.prompt, "Prompt"), footer])
        return FloatContainer(main, floats=[
            Float(overlay, top=1, bottom=4, left=2, right=2),
            Float(CompletionsMenu(max_height=10), xcursor=True, ycursor=True)])

    def _changed(self) -> None:
        self.dirty = True

    def _has_focus(self, window: Window) -> bool:
        return bool(self.app.layout.has_focus(window))

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    @property
    def result(self) -> RunResult | None:
        return self.state.result

    # data ----------------------------------------------------------------------------------

    def _load_before(self, seq: int) -> list[tuple[int, Entry]]:
        session_id = self.state.session_id
        if session_id is None or seq <= 1:
            return []
        after = max(0, seq - 1 - PAGE_ENTRIES)
        rows = self.store.entries(session_id, after_seq=after, limit=seq - 1 - after)
        return [(int(e.get("seq", 0)), e) for e in rows]

    def open_session(self, session_id: str) -> None:
        from aura.tui import attach

        session = self.store.get_session(session_id)
        self.detach()
        self.state.adopt(session)
        last = self.store.last_seq(session.id)
        after = max(0, last - HISTORY_ENTRIES)
        entries = self.store.entries(session.id, after_seq=after)
        self.logs.set_history([(int(e.get("seq", 0)), e) for e in entries], after == 0)
        if attach.runs_elsewhere(self.store, session.id):
            where = "is queued" if session.state == "queued" else "runs elsewhere"
            self.state.status = f"session {session.id[:8]} {where}: following it live"
            self.attach_task = asyncio.ensure_future(attach.follow(
                self.store, session.id, last, self._attached_entries, poll=ATTACH_POLL))
            self.attach_task.add_done_callback(self._attach_done)
        self.refresh_queue()
        self.discover_models()

    def _attached_entries(self, entries: list[tuple[int, Entry]]) -> None:
        for seq, entry in entries:
            self.logs.add(seq, entry)
            if entry.get("kind") == "state":
                self.state.status = f"{entry.get('to')} (followed live)"
                self.queue_due = True
            self.state.count_usage(entry)
        self.dirty = True

    def _attach_done(self, task: asyncio.Task[Any]) -> None:
        if task is self.attach_task and not task.cancelled():
            self.attach_task = None
            exc = task.exception()
            if exc is not None:
                self.logs.add_note(f"aura: stopped following the session: "
                                   f"{type(exc).__name__}: {exc}", "class:error")
            elif self.state.session_id:
                self.state.status = f"session {self.state.session_id[:8]} rests " \
                    "(no longer followed)"
            self.dirty = True
            self.queue_due = True

    def detach(self) -> None:
        """Stop following a session another process runs."""
        if self.attach_task is not None:
            self.attach_task.cancel()
            self.attach_task = None

    def new_session(self) -> None:
        self.detach()
        self.state.new_session()
        self.logs.clear()
        self.refresh_queue()

    def on_records(self, records: list[tuple[int, Entry, str]]) -> None:
        """The watcher of a running turn: cheap, it runs for every batch of entries."""
        if records:
            self.state.learn_session(records[0][2])
        add = self.logs.add
        used: list[tuple[int, Entry]] = []
        for seq, entry, _text in records:
            add(seq, entry)
            if "usage" in entry:
                used.append((seq, entry))
            if entry.get("kind") == "state":
                self.state.status = f"{entry.get('to')}"
                self.queue_due = True
        for _seq, entry in used:
            self.state.count_usage(entry)
        if records and self.state.session_id:
            # The Queue's count of this session reads on from here, not from the store.
            self.state.queue.streamed(self.state.session_id, records[-1][0], used,
                                      self.state.model)
        self.dirty = True

    def refresh_queue(self) -> None:
        """Read the queue from the store (the ticker calls this about once a second)."""
        self.state.queue.refresh(self.store, self.state.session_id)
        self.queue_due = False
        self.dirty = True

    def discover_models(self) -> None:
        """List the chosen executor's models in the background (the Model pane)."""
        from aura.service.models import list_models

        name = self.state.executor
        self.state.models.reset()
        if name is None:
            return
        base = self.state.base

        async def discover() -> None:
            try:
                found = await list_models(name, endpoint=base.openai_endpoint,
                                          refresh=base.refresh_model_cache)
            except AuraError as exc:
                self.state.models.note = str(exc)
                found = None
            if name == self.state.executor:
                self.state.models.offer(found, self.state.model)
                self.dirty = True

        self.app.create_background_task(discover())

    # turns ---------------------------------------------------------------------------------

    def send(self, text: str) -> bool:
        """Run a slash command or send a prompt; False when it was not taken (the text
        stays in the prompt). ``//…`` sends ``/…`` as a prompt; an unknown ``/word`` is
        said first and sent as a prompt by a second Enter."""
        text = text.strip("\n")
        if not text.strip():
            return False
        if text.startswith("/") and not text.startswith("//"):
            if is_command(text) or text == "/":
                self.unknown = None
                self.command(text)
                return True
            if text != self.unknown:
                self.unknown = text
                self.note(f"unknown command {text.split()[0]}; Enter again sends it to the "
                          "agent as a prompt (a leading // sends one /)")
                return False
        elif text.startswith("//"):
            text = text[1:]
        self.unknown = None
        if self.running or self.attach_task is not None:
            self.send_control("steer", text)  # into the running turn, or queued after it
            return True
        self.detach()
        options, follow_up = self.state.turn_options(text)
        if not follow_up:
            self.logs.clear()
        self.logs.end()  # the new turn is what the user wants to see
        self.start(options)
        return True

    def start(self, options: RunOptions) -> None:
        from dataclasses import replace

        from aura.service.runner import run as run_service

        options = replace(options, person=self.approvals)

        self.state.status = "starting"
        self.state.turn_began(time.monotonic())
        self.logs.tool_index.clear()  # call ids are unique within one execution only
        self.task = asyncio.ensure_future(run_service(options, self.store, self.on_records))
        self.task.add_done_callback(self._turn_done)
        self.dirty = True

    def _turn_done(self, task: asyncio.Task[Any]) -> None:
        self.dirty = True
        self.queue_due = True
        if task.cancelled():
            self.state.status = "cancelled"
            return
        exc = task.exception()
        line = self.state.turn_failed(exc) if exc is not None else \
            self.state.turn_finished(task.result())
        if line:
            self.logs.add_note(line, "class:error")

    def cancel(self) -> bool:
        """Cancel the running turn; False when nothing runs."""
        if self.task is None or self.task.done():
            return False
        self.task.cancel()
        self.state.status = "cancelling…"
        self.dirty = True
        return True

    def quit(self, code: int | None = None) -> None:
        async def shutdown() -> None:
            if self.task is not None and not self.task.done():
                self.task.cancel()
                # wait() neither raises the turn's outcome (_turn_done reports it) nor
                # cancels it on timeout: the turn gets this long to record its end.
                await asyncio.wait({self.task}, timeout=SHUTDOWN_WAIT)
            if not self.app.is_done:
                self.app.exit(result=self.state.exit_code if code is None else code)

        self.state.status = "quitting…"
        self.dirty = True
        self.app.create_background_task(shutdown())

    def send_control(self, kind: str, text: str) -> None:
        """Steer or interrupt the open session's running turn (ours or another process's)
        through the store, as `aura session steer|interrupt` do; the answer is a note."""
        session_id = self.state.session_id
        if session_id is None or not (self.running or self.attach_task is not None):
            self.note("nothing is running" if session_id else
                      "the turn is starting; send again in a moment")
            return
        if kind == "steer":
            self.note(f"→ {text}")
        self.controls.add(asyncio.ensure_future(self._control(kind, session_id, text)))

    async def _control(self, kind: str, session_id: str, text: str) -> None:
        from aura.errors import AuraError
        from aura.service import control

        # In a thread: the run that must pick the control up may be this very loop's.
        try:
            if kind == "steer":
                row = await asyncio.to_thread(control.steer, self.store, session_id, text,
                                              by=control.sender("aura tui"))
            else:
                row = await asyncio.to_thread(control.interrupt, self.store, session_id,
                                              text=text, by=control.sender("aura tui"))
        except AuraError as exc:
            self.note(str(exc))
            return
        finally:
            self.controls.discard(asyncio.current_task())
        self.note(control_words(kind, row.state, row.note))

    def note(self, text: str) -> None:
        self.logs.add_note(text)
        self.logs.follow = True
        self.dirty = True

    def command(self, text: str) -> None:
        run_command(self, text)
        self.dirty = True

    def focus(self, step: int) -> None:
        """Move the focus over the panes on screen (a hidden one is skipped)."""
        shown = [self.prompt.window]
        if self.logs_visible():
            shown.append(self.logs_window)
        if self.side_visible():
            shown += [self.queue_window, self.model_window]
        current = self.app.layout.current_window
        index = shown.index(current) if current in shown else 0
        self.app.layout.focus(shown[(index + step) % len(shown)])
        self.dirty = True

    def focus_prompt(self, text: str = "") -> None:
        """Back to the prompt, with ``text`` typed into it (keys typed in another pane)."""
        self.app.layout.focus(self.prompt)
        if text:
            self.prompt.buffer.insert_text(text)
        self.dirty = True

    def toggle_side(self) -> None:
        """F2: on a narrow terminal, the Queue and Model panes instead of the Logs."""
        if not self.narrow:
            self.note(f"the side panes are always shown from {NARROW} columns on")
            return
        self.side_shown = not self.side_shown
        if self.side_shown:
            self.app.layout.focus(self.queue_window)
        else:
            self.focus_prompt()
        self.dirty = True

    def toggle_mouse(self) -> None:
        """F9 (/mouse): mouse capture on (wheel scrolls, clicks focus) or off (the
        terminal selects and copies text)."""
        self.mouse = not self.mouse
        self.state.status = ("mouse on: the wheel scrolls (F9: off, to select text)"
                             if self.mouse else "mouse off: select text with the mouse")
        self.dirty = True

    def show_help(self) -> None:
        self.overlay.show("Help (Esc closes, ↑/↓ scroll)",
                          [[("", line)] for line in help_text().splitlines()])
        self.dirty = True

    def show_entry(self) -> None:
        """The Logs pane's selected entry whole (thinking, a tool call's output), in the
        overlay."""
        entry = self.logs.selected_entry()
        if entry is None:
            return
        kind = str(entry.get("kind") or "entry").replace("_", " ")
        self.overlay.show(f"{kind} (Enter or Esc folds, ↑/↓ scroll)", full_lines(entry))
        self.dirty = True

    def show_diff(self) -> None:
        """The open session's workspace as `git diff` shows it, in the overlay."""
        session_id = self.state.session_id
        if session_id is None:
            self.note("no session is open: nothing to diff")
            return
        try:
            text = workspace_diff(self.store, session_id)
        except AuraError as exc:
            self.note(f"no diff: {exc}")
            return
        self.overlay.show(f"diff of session {session_id[:8]} (Esc closes, ↑/↓ PgUp/PgDn)",
                          diff_lines(text))
        self.dirty = True

    def show_compare(self, ref: str = "") -> None:
        """The attempts of a group ranked, as `aura compare` shows them, in the overlay:
        the open session's group, or the group ``ref`` names."""
        from aura.cli.compare import ranked_lines
        from aura.config import load
        from aura.service import attempts, compare

        try:
            if ref:
                group = attempts.find_group(self.store, ref)
            elif self.state.session_id and self.store.attempt_of(self.state.session_id):
                group = attempts.find_group(self.store, self.state.session_id)
            else:
                group = attempts.newest_group(self.store)
            lines = ranked_lines(group, compare.ranked(self.store, group, load()))
        except AuraError as exc:
            self.note(f"no comparison: {exc}")
            return
        self.overlay.show(f"attempts of group {group.id[:8]}, best first (Esc closes)",
                          [[("", line)] for line in lines])
        self.dirty = True

    # running -------------------------------------------------------------------------------

    async def main(self, initial_prompt: str | None) -> int:
        loop = asyncio.get_running_loop()
        for sig, code in ((signal.SIGTERM, 128 + signal.SIGTERM),
                          (signal.SIGHUP, 128 + signal.SIGHUP)):
            loop.add_signal_handler(sig, self.quit, code)
        self.app.create_background_task(self._ticker())
        base = self.state.base
        if base.session or base.resume_latest:
            session_id = base.session or self._latest()
            if session_id:
                self.open_session(session_id)
        else:
            self.discover_models()
        self.refresh_queue()
        if initial_prompt:
            self.send(initial_prompt)
        loop.set_exception_handler(self._crash)
        return await self.app.run_async(set_exception_handler=False)

    async def _ticker(self) -> None:
        # The only place that asks for redraws while entries stream: FPS at most.
        last_queue = 0.0
        last_second = 0
        while True:
            await asyncio.sleep(1 / FPS)
            now = time.monotonic()
            if self.running and int(now) != last_second:
                last_second = int(now)  # the footer's clock of the running turn
                self.dirty = True
            if (self.queue_due and now - last_queue > 0.2) or now - last_queue > QUEUE_REFRESH:
                last_queue = now
                self.refresh_queue()
            if self.dirty:
                self.dirty = False
                self.app.invalidate()

    def _crash(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A bug anywhere in the loop (a draw, a callback) ends the app with that exception
        # instead of prompt_toolkit's "Press ENTER to continue" on a half-drawn screen:
        # run_tui then restores the terminal and the trace is shown on the normal screen.
        exc = context.get("exception")
        if isinstance(exc, asyncio.CancelledError):
            return
        if exc is None:
            exc = RuntimeError(context.get("message", "unknown error in the event loop"))
        if self.app.is_running and not self.app.is_done:
            self.app.exit(exception=exc)
        else:
            loop.default_exception_handler(context)

    def _latest(self) -> str | None:
        from aura.service.runner import _resolve_cwd

        found = self.store.list_sessions(1, executor=self.state.executor,
                                         cwd=_resolve_cwd(self.state.base.cwd))
        return found[0].id if found else None


def workspace_diff(store: Store, session_id: str) -> str:
    """The session's workspace diff (`aura workspace diff`); for a session that ran in
    place, `git diff HEAD` of its directory."""
    from aura.git import run_git
    from aura.service import workspaces
    from aura.service.ledger import workspace_of

    session = store.get_session(session_id)
    if workspace_of(session) is not None:
        return workspaces.diff(store, session_id)
    return run_git(["diff", "HEAD", "--"], session.cwd).stdout


def run_tui(options: RunOptions, initial_prompt: str | None) -> tuple[int, RunResult | None]:
    """Run the TUI until the user leaves; (exit code, the last turn's result)."""
    from aura.store_sqlite import open_store
    from aura.tui.terminal import held_terminal

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the TUI needs a terminal; use `aura run --no-tui` (or --json)")
    with contextlib.closing(open_store()) as store, held_terminal():
        tui = Tui(options, store)
        code = asyncio.run(tui.main(initial_prompt))
        return code, tui.result
