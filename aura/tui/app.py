"""The terminal UI (`aura tui`, and `aura run` on a terminal): prompt_toolkit only, imported
only on this path.

Panes: Logs (the session's entries as they stream), Queue (sessions and the current
session's executions, with state and stage), Model (executor and model, with the discovered
model list where the executor has one), Prompt (multi-line input); a footer shows the keys
and slash commands. Turns run through ``service.run(options, store, watcher)`` as a task
in the UI's own event loop; the watcher only appends to the log buffer and marks it dirty.

Staying responsive under a flood (10,000 lines/s and more):
- the screen is redrawn by a ticker at most ``FPS`` times a second, never per entry;
- the live buffer keeps at most ``LIVE_LINES`` lines; older entries are paged back in from
  the store when the user scrolls past the top (the store has every entry);
- only the visible lines are wrapped and styled at draw time.

The terminal is restored on every exit path: prompt_toolkit's own teardown, then (in
``run_tui``) the saved termios state and the escape sequences that leave the alternate
screen, show the cursor and stop mouse reporting, whatever ended the app (a crash included).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import sys
import time
from dataclasses import replace
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.filters import Condition, has_focus
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.key_binding.key_processor import KeyPressEvent
from prompt_toolkit.layout import (
    Dimension,
    FormattedTextControl,
    HSplit,
    Layout,
    VSplit,
    Window,
)
from prompt_toolkit.layout.controls import UIContent, UIControl
from prompt_toolkit.mouse_events import MouseEvent, MouseEventType
from prompt_toolkit.styles import Style
from prompt_toolkit.widgets import Frame, TextArea

from aura.cli.render import format_usage
from aura.contracts import Entry
from aura.errors import AuraError, UsageError
from aura.service.run_options import RunOptions
from aura.service.runner import EXIT_INTERRUPTED, RunResult
from aura.store import Store

FPS = 25
LIVE_LINES = 5000  # lines kept in memory; the rest is paged from the store
PAGE_ENTRIES = 1000  # entries read from the store per page when scrolling up
HISTORY_ENTRIES = 500  # entries shown when a session is opened
LINE_CHARS = 4000  # one logical line is cut here (the store keeps the whole text)
QUEUE_REFRESH = 1.0  # seconds between reads of the queue from the store
QUEUE_SESSIONS = 10  # sessions listed in the Queue pane
QUIT_WINDOW = 5.0  # a second Ctrl-C within this many seconds quits

Line = tuple[int, StyleAndTextTuples]  # (seq of its entry, fragments)

HELP = """\
keys: Enter send · Alt-Enter newline · Esc/Ctrl-C cancel the run · Ctrl-C twice quit
      Tab/Shift-Tab next/previous pane · PgUp/PgDn/Home/End scroll logs (End follows)
      Queue pane: ↑/↓ and Enter open a session
      Model pane: ↑/↓ choose a model, ←/→ choose an executor, Enter apply
/executor NAME   run the next new session with this executor
/model NAME      use this model from the next turn on
/session ID      open a session (a unique id prefix is enough); sends follow it up
/new             the next send starts a new session
/review [on|off] run the review stage after each turn (toggles without an argument)
/cancel          cancel the running execution
/quit            leave (the running execution is cancelled first)
/help            this text"""

STYLE = Style.from_dict({
    "frame.border": "#5f5f87",
    "frame.label": "bold",
    "focused frame.border": "#87afff bold",
    "user": "bold #87d7ff",
    "assistant": "",
    "thinking": "italic #8a8a8a",
    "tool": "#5fafaf",
    "tool.action": "#5fafaf bold",
    "tool.target": "",
    "status.ok": "#5faf5f",
    "status.running": "#d7af00",
    "status.error": "#ff5f5f bold",
    "error": "bg:#5f0000 #ffffff bold",
    "state": "#af87d7",
    "dim": "#808080",
    "raw": "#808080",
    "queue.current": "bold",
    "queue.running": "#d7af00",
    "queue.done": "#5faf5f",
    "queue.failed": "#ff5f5f",
    "queue.cancelled": "#d7875f",
    "model.selected": "reverse",
    "footer": "bg:#262626 #bcbcbc",
    "footer.key": "bg:#262626 #ffffff bold",
    "footer.status": "bg:#262626 #87d7ff",
    "notice": "#d7af00",
})


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def entry_lines(entry: Entry, seq: int) -> list[Line]:
    """The lines one entry shows as (folded thinking, one line per tool call)."""
    kind = entry.get("kind")
    text = entry.get("text") or ""
    if kind == "assistant_message":
        return [(seq, [("class:assistant", part[:LINE_CHARS])]) for part in text.split("\n")]
    if kind == "user_message":
        parts = text.split("\n")
        return [(seq, [("class:user", ("› " if i == 0 else "  ") + part[:LINE_CHARS])])
                for i, part in enumerate(parts)]
    if kind == "thinking":
        count = text.count("\n") + 1
        more = f"  ({count} lines)" if count > 1 else ""
        return [(seq, [("class:thinking", f"▸ thinking: {_clip(text, 120)}{more}")])]
    if kind == "tool_call":
        return [(seq, tool_fragments(entry))]
    if kind == "error":
        return [(seq, [("class:error", f" ✗ {part[:LINE_CHARS]} ")]) for part in
                (text or "error").split("\n")]
    if kind == "state":
        reason = entry.get("reason")
        line = f"● {entry.get('from') or '∅'} → {entry.get('to')}"
        return [(seq, [("class:state", line + (f"  ({reason})" if reason else ""))])]
    if kind == "usage":
        return [(seq, [("class:dim", f"usage: {format_usage(entry.get('usage') or {})}")])]
    if kind == "raw":
        return [(seq, [("class:raw", text[:LINE_CHARS])])]
    if kind == "system":
        return [(seq, [("class:dim", f"[{_clip(text, 200)}]" if text else "[system]")])]
    return [(seq, [("class:dim", f"[{kind}] {_clip(text, 200)}")])]


def tool_fragments(entry: Entry) -> StyleAndTextTuples:
    action = entry.get("action") or "other"
    target = entry.get("target") or entry.get("tool") or ""
    status = entry.get("status") or ""
    style = {"ok": "class:status.ok", "error": "class:status.error",
             "failed": "class:status.error"}.get(status, "class:status.running")
    return [("class:tool", "→ "), ("class:tool.action", f"{action:<10}"),
            ("class:tool.target", " " + _clip(target, 160)), ("", "  "), (style, status)]


def wrap(fragments: StyleAndTextTuples, width: int) -> list[StyleAndTextTuples]:
    """Cut one logical line into rows of at most ``width`` characters, at a space where
    one is near the end of the row."""
    width = max(width, 1)
    rows: list[StyleAndTextTuples] = [[]]
    used = 0
    for style, text, *_ in fragments:
        while text:
            room = width - used
            if room <= 0:
                rows.append([])
                used, room = 0, width
            if len(text) <= room:
                rows[-1].append((style, text))
                used += len(text)
                break
            cut = text.rfind(" ", 0, room + 1)
            if cut < room // 2:  # no space worth breaking at: cut the word
                cut = room
            rows[-1].append((style, text[:cut]))
            text = text[cut:].lstrip(" ")
            used = width  # this row is full
    return rows


def _state_style(state: str) -> str:
    if state in {"done", "failed", "cancelled"}:
        return f"class:queue.{state}"
    return "class:dim" if state == "worker_lost" else "class:queue.running"


class LogView(UIControl):
    """The Logs pane: a bounded buffer of lines, drawn from the bottom while following
    the tail, from ``top`` once the user scrolled up."""

    def __init__(self, load_before: Any = None, max_lines: int = LIVE_LINES) -> None:
        self.lines: list[Line] = []
        self.max_lines = max_lines
        self.follow = True
        self.top = 0  # first visible line when not following
        self.height = 10
        self.width = 80
        self.trimmed = 0  # lines dropped from the front so far (tool-call indexes use it)
        self.tool_index: dict[str, int] = {}  # tool call id → absolute line number
        self.load_before = load_before  # (seq) -> list[(seq, entry)], older entries
        self.complete_history = True  # nothing older than lines[0] exists in the store
        # Streamed text (model endpoints send it in pieces marked "delta", then the whole
        # message marked "streamed"): the pieces grow one block of lines in place.
        self.stream_at: int | None = None  # absolute line number where the block starts
        self.stream_kind: str | None = None
        self.stream_text: list[str] = []
        self.streamed_kinds: set[str] = set()  # kinds shown piecewise since the last turn

    # content -------------------------------------------------------------------------

    def clear(self) -> None:
        self.lines.clear()
        self.tool_index.clear()
        self.trimmed = 0
        self.follow = True
        self.top = 0
        self.complete_history = True
        self.stream_at = None
        self.streamed_kinds.clear()

    def add(self, seq: int, entry: Entry) -> None:
        """Append one entry (a tool call's end replaces its start line)."""
        if entry.get("delta") or entry.get("streamed"):
            self._add_streamed(seq, entry)
        elif entry.get("kind") == "tool_call":
            call_id = entry.get("id")
            if call_id:
                at = self.tool_index.get(call_id)
                if at is not None and at - self.trimmed >= 0 and at - self.trimmed < len(
                        self.lines):
                    self.lines[at - self.trimmed] = (seq, tool_fragments(entry))
                    return
                self.tool_index[call_id] = self.trimmed + len(self.lines)
            self.lines.append((seq, tool_fragments(entry)))
        else:
            self.lines.extend(entry_lines(entry, seq))
        if not (entry.get("delta") or entry.get("streamed")):
            self.stream_at = None
            if entry.get("kind") == "user_message":
                self.streamed_kinds.clear()
        if len(self.lines) > self.max_lines + self.max_lines // 10:
            self._trim()

    def _add_streamed(self, seq: int, entry: Entry) -> None:
        kind = str(entry.get("kind"))
        if entry.get("streamed"):
            # The whole message: already on screen if its pieces were.
            if kind not in self.streamed_kinds:
                self.lines.extend(entry_lines(entry, seq))
            self.streamed_kinds.discard(kind)
            self.stream_at = None
            return
        if self.stream_at is None or self.stream_kind != kind or self.stream_at < self.trimmed:
            self.stream_at = self.trimmed + len(self.lines)
            self.stream_kind = kind
            self.stream_text = []
            self.streamed_kinds.add(kind)
        self.stream_text.append(str(entry.get("text") or ""))
        del self.lines[self.stream_at - self.trimmed:]
        self.lines.extend(entry_lines({"kind": kind, "text": "".join(self.stream_text)}, seq))

    def add_note(self, text: str, style: str = "class:notice") -> None:
        for part in text.split("\n"):
            self.lines.append((self.lines[-1][0] if self.lines else 0, [(style, part)]))

    def _trim(self) -> None:
        # Whole entries only, so paging an entry back in never shows half of it twice.
        cut = len(self.lines) - self.max_lines
        while cut < len(self.lines) and cut > 0 and self.lines[cut][0] == self.lines[cut - 1][0]:
            cut += 1
        del self.lines[:cut]
        self.trimmed += cut
        self.complete_history = False
        if not self.follow:
            self.top = max(0, self.top - cut)
        if len(self.tool_index) > 4 * self.max_lines:
            self.tool_index = {k: v for k, v in self.tool_index.items() if v >= self.trimmed}

    def set_history(self, entries: list[tuple[int, Entry]], complete: bool) -> None:
        self.clear()
        for seq, entry in entries:
            self.add(seq, entry)
        self.complete_history = complete

    def page_in(self) -> bool:
        """Load older entries from the store in front of the buffer; False at the start."""
        if self.complete_history or self.load_before is None or not self.lines:
            return False
        older = self.load_before(self.lines[0][0])
        if not older:
            self.complete_history = True
            return False
        lines = coalesce(older)
        self.lines[:0] = lines
        self.trimmed -= len(lines)  # keep absolute numbers of later lines stable
        self.top += len(lines)
        return True

    # scrolling ---------------------------------------------------------------------------

    def _bottom_top(self) -> int:
        """The ``top`` that shows the tail (counting wrapped rows of the last lines)."""
        rows = 0
        index = len(self.lines)
        while index > 0:
            need = len(wrap(self.lines[index - 1][1], self.width))
            if rows + need > self.height:
                break
            rows += need
            index -= 1
        return index

    def scroll(self, lines: int) -> None:
        """Move the view by ``lines`` (negative: up). Reaching the bottom follows again."""
        if self.follow:
            self.top = self._bottom_top()
        self.top += lines
        if self.top < 0:
            if self.page_in():
                self.top = max(0, self.top)
            else:
                self.top = 0
        bottom = self._bottom_top()
        if self.top >= bottom:
            self.top = bottom
            self.follow = True
        else:
            self.follow = False

    def home(self) -> None:
        if self.follow:
            self.top = self._bottom_top()
        if self.top == 0:
            self.page_in()
        self.top = 0
        self.follow = self._bottom_top() == 0 and self.complete_history

    def end(self) -> None:
        self.follow = True

    # drawing -----------------------------------------------------------------------------

    def rows(self, width: int, height: int) -> list[StyleAndTextTuples]:
        self.width, self.height = width, height
        out: list[StyleAndTextTuples] = []
        if self.follow:
            index = len(self.lines)
            while index > 0 and len(out) < height:
                index -= 1
                out[:0] = wrap(self.lines[index][1], width)
            return out[-height:] if len(out) > height else out
        index = self.top
        while index < len(self.lines) and len(out) < height:
            out.extend(wrap(self.lines[index][1], width))
            index += 1
        return out[:height]

    def create_content(self, width: int, height: int) -> UIContent:
        rows = self.rows(width, height)
        return UIContent(get_line=lambda i: rows[i] if i < len(rows) else [],
                         line_count=len(rows), show_cursor=False)

    def is_focusable(self) -> bool:
        return True

    def mouse_handler(self, mouse_event: MouseEvent) -> Any:
        if mouse_event.event_type == MouseEventType.SCROLL_UP:
            self.scroll(-3)
            return None
        if mouse_event.event_type == MouseEventType.SCROLL_DOWN:
            self.scroll(3)
            return None
        return NotImplemented


def coalesce(entries: list[tuple[int, Entry]]) -> list[Line]:
    """Lines for a page of stored entries: a tool call shows once, with its last status."""
    last: dict[str, int] = {}
    for seq, entry in entries:
        if entry.get("kind") == "tool_call" and entry.get("id"):
            last[str(entry["id"])] = seq
    lines: list[Line] = []
    for seq, entry in entries:
        if entry.get("delta"):
            continue  # a streamed piece; the whole message follows it
        call_id = entry.get("id") if entry.get("kind") == "tool_call" else None
        if call_id and last.get(str(call_id)) != seq:
            continue
        lines.extend(entry_lines(entry, seq))
    return lines


class Tui:
    """The application: its panes, its keys, and the turns it runs."""

    def __init__(self, options: RunOptions, store: Store) -> None:
        from aura.executors import registry

        self.store = store
        self.base = replace(options, asker=None)  # pickers would fight the screen
        self.executor = registry.canonical(options.executor) if options.executor else None
        self.model = options.model
        self.review = options.review
        self.session_id: str | None = None
        self.session_executor: str | None = None
        self.task: asyncio.Task[Any] | None = None
        self.result: RunResult | None = None
        self.exit_code = 0
        self.status = "ready"
        self.armed_at = 0.0  # when Ctrl-C was pressed with nothing to cancel
        self.dirty = True
        self.queue_due = True
        self.queue_sessions: list[Any] = []
        self.queue_executions: list[Any] = []
        self.queue_error = ""
        self.queue_cursor = 0
        self.models: list[str] = []
        self.models_note = ""
        self.model_cursor = 0
        self.executor_names = registry.names()

        self.logs = LogView(load_before=self._load_before)
        self.logs_window = Window(self.logs, wrap_lines=False)
        self.queue_window = Window(FormattedTextControl(self._queue_text, focusable=True),
                                   wrap_lines=False)
        self.model_control = FormattedTextControl(self._model_text, focusable=True)
        self.model_window = Window(self.model_control, wrap_lines=False)
        self.prompt = TextArea(multiline=True, wrap_lines=True, prompt="› ", height=3,
                               focus_on_click=True)
        self.order = [self.prompt.window, self.logs_window, self.queue_window,
                      self.model_window]
        body = VSplit([
            Frame(self.logs_window, title="Logs", width=Dimension(min=30, weight=3)),
            HSplit([Frame(self.queue_window, title="Queue"),
                    Frame(self.model_window, title="Model", height=Dimension(max=14))],
                   width=Dimension(min=24, preferred=34, max=48, weight=1)),
        ])
        footer = Window(FormattedTextControl(self._footer), height=3, style="class:footer")
        root = HSplit([body, Frame(self.prompt, title="Prompt"), footer])
        self.app: Application[int] = Application(
            layout=Layout(root, focused_element=self.prompt), key_bindings=self._keys(),
            style=STYLE, full_screen=True, mouse_support=True)
        self.app.ttimeoutlen = 0.05  # Esc alone cancels without a noticeable wait

    # data ----------------------------------------------------------------------------------

    def _load_before(self, seq: int) -> list[tuple[int, Entry]]:
        if self.session_id is None or seq <= 1:
            return []
        after = max(0, seq - 1 - PAGE_ENTRIES)
        rows = self.store.entries(self.session_id, after_seq=after, limit=seq - 1 - after)
        return [(int(e.get("seq", 0)), e) for e in rows]

    def open_session(self, session_id: str) -> None:
        session = self.store.get_session(session_id)
        self.session_id = session.id
        self.session_executor = session.executor
        self.executor = session.executor
        self.model = session.model
        last = self.store.last_seq(session.id)
        after = max(0, last - HISTORY_ENTRIES)
        entries = self.store.entries(session.id, after_seq=after)
        self.logs.set_history([(int(e.get("seq", 0)), e) for e in entries], after == 0)
        self.status = f"session {session.id[:8]} ({session.executor}, {session.state})"
        self._refresh_queue()
        self._discover_models()

    def on_records(self, records: list[tuple[int, Entry, str]]) -> None:
        """The watcher of a running turn: cheap, it runs for every batch of entries."""
        if self.session_id is None and records:
            with contextlib.suppress(ValueError, KeyError):
                self.session_id = json.loads(records[0][2])["session"]
                self.session_executor = self.executor
        add = self.logs.add
        for seq, entry, _text in records:
            add(seq, entry)
            if entry.get("kind") == "state":
                self.status = f"{entry.get('to')}"
                self.queue_due = True
        self.dirty = True

    def _refresh_queue(self) -> None:
        """Read the queue from the store (the ticker calls this about once a second)."""
        try:
            self.queue_sessions = self.store.list_sessions(QUEUE_SESSIONS)
            self.queue_executions = self.store.list_executions(self.session_id)[-8:] \
                if self.session_id else []
            self.queue_error = ""
        except AuraError as exc:
            self.queue_error = str(exc)
        self.queue_cursor = min(self.queue_cursor, max(0, len(self.queue_sessions) - 1))
        self.queue_due = False
        self.dirty = True

    def _queue_text(self) -> StyleAndTextTuples:
        focused = self.app.layout.has_focus(self.queue_window)
        hint = "  ↑/↓, Enter opens" if focused else ""
        out: StyleAndTextTuples = [("class:dim", f"sessions (newest first){hint}\n")]
        for i, s in enumerate(self.queue_sessions):
            mark = "▶ " if s.id == self.session_id else "  "
            style = "class:model.selected" if focused and i == self.queue_cursor else (
                "class:queue.current" if s.id == self.session_id else "")
            out.append((style, f"{mark}{s.id[:8]} {s.executor[:12]:<12} "))
            out.append((_state_style(s.state), f"{s.state}\n"))
        if self.queue_executions:
            out.append(("class:dim", "\nexecutions of this session\n"))
            for e in self.queue_executions:
                out.append(("", f"  {e.id[:8]} {e.stage[:18]:<18} "))
                out.append((_state_style(e.status), f"{e.status}\n"))
        if self.queue_error:
            out.append(("class:status.error", f"cannot read the store: {self.queue_error}\n"))
        return out

    def _discover_models(self) -> None:
        name = self.executor
        self.models, self.models_note, self.model_cursor = [], "", 0
        if name is None:
            return

        async def discover() -> None:
            try:
                models = await discover_models(name, self.base)
            except AuraError as exc:
                self.models_note = _clip(str(exc), 80)
                models = None
            if name != self.executor:
                return
            if models is None:
                self.models_note = self.models_note or "no model list (/model NAME sets one)"
            else:
                self.models = models
                if self.model in models:
                    self.model_cursor = models.index(self.model)
            self.dirty = True

        self.app.create_background_task(discover())

    # drawing -------------------------------------------------------------------------------

    def _model_text(self) -> StyleAndTextTuples:
        focused = self.app.layout.has_focus(self.model_window)
        out: StyleAndTextTuples = [
            ("class:dim", "executor "), ("bold", f"{self.executor or 'codex (default)'}"),
            ("class:dim", "  ←/→\n" if focused else "\n"),
            ("class:dim", "model    "), ("bold", f"{self.model or '(agent default)'}\n"),
            ("class:dim", "review   "),
            ("", f"{'on' if self.review else 'off'}\n")]
        if self.models:
            out.append(("class:dim", "discovered models (↑/↓, Enter):\n"))
            start = max(0, min(self.model_cursor - 3, len(self.models) - 7))
            for i, name in enumerate(self.models[start:start + 7], start):
                selected = focused and i == self.model_cursor
                mark = "● " if name == self.model else "  "
                out.append(("class:model.selected" if selected else "", f"{mark}{name}\n"))
        elif self.models_note:
            out.append(("class:dim", self.models_note + "\n"))
        return out

    def _footer(self) -> StyleAndTextTuples:
        running = self.task is not None and not self.task.done()
        keys = [("Enter", "send"), ("Alt-Enter", "newline"), ("Esc", "cancel"),
                ("^C^C", "quit"), ("Tab", "pane"), ("PgUp/Dn", "scroll")]
        out: StyleAndTextTuples = []
        for key, what in keys:
            out += [("class:footer.key", f" {key}"), ("class:footer", f" {what} ")]
        out.append(("class:footer", "\n"))
        for command in ("/executor NAME", "/model NAME", "/session ID", "/new", "/review",
                        "/cancel", "/quit", "/help"):
            name, _, arg = command.partition(" ")
            out += [("class:footer.key", f" {name}"), ("class:footer", f" {arg}" if arg else "")]
        out.append(("class:footer", "\n"))
        where = f"session {self.session_id[:8]}" if self.session_id else "new session"
        follow = "" if self.logs.follow else "  (scrolled: End follows)"
        out.append(("class:footer.status",
                    f" {'● running' if running else '○ idle'}  {where}  {self.status}{follow}"))
        return out

    async def _ticker(self) -> None:
        # The only place that asks for redraws while entries stream: FPS at most.
        last_queue = 0.0
        while True:
            await asyncio.sleep(1 / FPS)
            now = time.monotonic()
            if (self.queue_due and now - last_queue > 0.2) or now - last_queue > QUEUE_REFRESH:
                last_queue = now
                self._refresh_queue()
            if self.dirty:
                self.dirty = False
                self.app.invalidate()

    # turns ---------------------------------------------------------------------------------

    def send(self, text: str) -> bool:
        """Run a slash command or send a prompt; False when it was not taken (the text
        stays in the prompt)."""
        text = text.strip("\n")
        if not text.strip():
            return False
        if text.startswith("/"):
            self.command(text)
            return True
        if self.task is not None and not self.task.done():
            self.note("a turn is running; wait for it, or cancel it with Esc")
            return False
        follow_up = self.session_id is not None and (
            self.executor is None or self.executor == self.session_executor)
        options = replace(
            self.base, prompt=text, append_prompt=self.base.append_prompt,
            executor=None if follow_up else self.executor,
            session=self.session_id if follow_up else None,
            resume_latest=False, model=self.model, review=self.review)
        if not follow_up:
            self.session_id = None
            self.logs.clear()
        self.base = replace(self.base, resume_latest=False)
        self.start(options)
        return True

    def start(self, options: RunOptions) -> None:
        from aura.service.runner import run as run_service

        self.status = "starting"
        self.logs.tool_index.clear()  # call ids are unique within one execution only
        self.task = asyncio.ensure_future(run_service(options, self.store, self.on_records))
        self.task.add_done_callback(self._turn_done)
        self.dirty = True

    def _turn_done(self, task: asyncio.Task[Any]) -> None:
        self.dirty = True
        self.queue_due = True
        if task.cancelled():
            self.status = "cancelled"
            return
        exc = task.exception()
        if isinstance(exc, AuraError):
            self.logs.add_note(f"aura: error: {exc}", "class:error")
            self.status = "error"
            self.exit_code = exc.exit_code
            return
        if exc is not None:
            self.logs.add_note(f"aura crashed: {type(exc).__name__}: {exc}", "class:error")
            self.status = "crashed"
            self.exit_code = 1
            return
        result: RunResult = task.result()
        self.result = result
        self.exit_code = result.exit_code
        self.session_id = result.session.id
        self.session_executor = result.session.executor
        usage = f"  usage: {format_usage(result.usage)}" if result.usage else ""
        self.status = f"{result.state} (exit {result.exit_code}){usage}"
        if result.error and result.state != "cancelled":
            self.logs.add_note(f"aura: {result.error}", "class:error")

    def cancel(self) -> bool:
        """Cancel the running turn; False when nothing runs."""
        if self.task is None or self.task.done():
            return False
        self.task.cancel()
        self.status = "cancelling…"
        self.dirty = True
        return True

    def quit(self, code: int | None = None) -> None:
        async def shutdown() -> None:
            if self.task is not None and not self.task.done():
                self.task.cancel()
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(asyncio.shield(self.task), 15)
            if not self.app.is_done:
                self.app.exit(result=self.exit_code if code is None else code)

        self.status = "quitting…"
        self.dirty = True
        self.app.create_background_task(shutdown())

    def note(self, text: str) -> None:
        self.logs.add_note(text)
        self.logs.follow = True
        self.dirty = True

    def command(self, text: str) -> None:
        from aura.executors import registry

        name, _, arg = text[1:].partition(" ")
        arg = arg.strip()
        if name == "help":
            self.note(HELP)
        elif name == "quit":
            self.quit()
        elif name == "cancel":
            if not self.cancel():
                self.note("nothing is running")
        elif name == "new":
            self.session_id = None
            self.session_executor = None
            self.logs.clear()
            self.status = "the next send starts a new session"
            self._refresh_queue()
        elif name == "executor":
            if not arg:
                self.note(f"executors: {', '.join(self.executor_names)}")
                return
            try:
                self.executor = registry.canonical(arg)
            except UsageError as exc:
                self.note(str(exc))
                return
            if self.session_id and self.executor != self.session_executor:
                self.status = f"the next send starts a new {self.executor} session"
            self._discover_models()
        elif name == "model":
            self.model = arg or None
            self.status = f"model {self.model or '(agent default)'}"
        elif name == "session":
            if not arg:
                self.note("usage: /session ID (see the Queue pane)")
                return
            if self.task is not None and not self.task.done():
                self.note("a turn is running; cancel it first (Esc)")
                return
            try:
                self.open_session(arg)
            except AuraError as exc:
                self.note(str(exc))
        elif name == "review":
            self.review = {"on": True, "off": False}.get(arg.lower(), not self.review)
            self.status = f"review {'on' if self.review else 'off'} from the next turn"
        else:
            self.note(f"unknown command /{name}; /help lists them")
        self.dirty = True

    # keys ----------------------------------------------------------------------------------

    def _keys(self) -> KeyBindings:
        kb = KeyBindings()
        prompt_focused = has_focus(self.prompt)
        model_focused = Condition(lambda: self.app.layout.has_focus(self.model_window))
        logs_focused = Condition(lambda: self.app.layout.has_focus(self.logs_window))
        queue_focused = Condition(lambda: self.app.layout.has_focus(self.queue_window))

        @kb.add("enter", filter=prompt_focused)
        def _send(event: KeyPressEvent) -> None:
            if self.send(self.prompt.text):
                self.prompt.buffer.reset(append_to_history=True)

        @kb.add("escape", "enter", filter=prompt_focused)
        def _newline(event: KeyPressEvent) -> None:
            self.prompt.buffer.insert_text("\n")

        @kb.add("escape")
        def _escape(event: KeyPressEvent) -> None:
            self.cancel()

        @kb.add("c-c")
        def _interrupt(event: KeyPressEvent) -> None:
            now = time.monotonic()
            if now - self.armed_at < QUIT_WINDOW:
                self.quit(EXIT_INTERRUPTED)
                return
            self.armed_at = now
            if not self.cancel():
                self.status = "press Ctrl-C again to quit"
                self.dirty = True

        @kb.add("c-d", filter=prompt_focused)
        def _eof(event: KeyPressEvent) -> None:
            if not self.prompt.text:
                self.quit()

        @kb.add("tab")
        def _next(event: KeyPressEvent) -> None:
            self._focus(1)

        @kb.add("s-tab")
        def _previous(event: KeyPressEvent) -> None:
            self._focus(-1)

        @kb.add("pageup")
        def _page_up(event: KeyPressEvent) -> None:
            self.logs.scroll(-max(1, self.logs.height - 2))
            self.dirty = True

        @kb.add("pagedown")
        def _page_down(event: KeyPressEvent) -> None:
            self.logs.scroll(max(1, self.logs.height - 2))
            self.dirty = True

        @kb.add("up", filter=logs_focused)
        def _up(event: KeyPressEvent) -> None:
            self.logs.scroll(-1)
            self.dirty = True

        @kb.add("down", filter=logs_focused)
        def _down(event: KeyPressEvent) -> None:
            self.logs.scroll(1)
            self.dirty = True

        @kb.add("home", filter=~prompt_focused)
        def _home(event: KeyPressEvent) -> None:
            self.logs.home()
            self.dirty = True

        @kb.add("end", filter=~prompt_focused)
        def _end(event: KeyPressEvent) -> None:
            self.logs.end()
            self.dirty = True

        @kb.add("up", filter=model_focused)
        def _model_up(event: KeyPressEvent) -> None:
            self.model_cursor = max(0, self.model_cursor - 1)
            self.dirty = True

        @kb.add("down", filter=model_focused)
        def _model_down(event: KeyPressEvent) -> None:
            self.model_cursor = min(max(0, len(self.models) - 1), self.model_cursor + 1)
            self.dirty = True

        @kb.add("enter", filter=model_focused)
        def _model_pick(event: KeyPressEvent) -> None:
            if self.models:
                self.model = self.models[self.model_cursor]
                self.status = f"model {self.model}"
                self.dirty = True

        @kb.add("up", filter=queue_focused)
        def _queue_up(event: KeyPressEvent) -> None:
            self.queue_cursor = max(0, self.queue_cursor - 1)
            self.dirty = True

        @kb.add("down", filter=queue_focused)
        def _queue_down(event: KeyPressEvent) -> None:
            self.queue_cursor = min(max(0, len(self.queue_sessions) - 1), self.queue_cursor + 1)
            self.dirty = True

        @kb.add("enter", filter=queue_focused)
        def _queue_open(event: KeyPressEvent) -> None:
            if self.queue_sessions:
                self.command(f"/session {self.queue_sessions[self.queue_cursor].id}")

        @kb.add("left", filter=model_focused)
        @kb.add("right", filter=model_focused)
        def _executor_cycle(event: KeyPressEvent) -> None:
            names = self.executor_names
            step = -1 if event.key_sequence[0].key == "left" else 1
            current = names.index(self.executor) if self.executor in names else -1
            self.command(f"/executor {names[(current + step) % len(names)]}")

        return kb

    def _focus(self, step: int) -> None:
        current = self.app.layout.current_window
        index = self.order.index(current) if current in self.order else 0
        self.app.layout.focus(self.order[(index + step) % len(self.order)])
        self.dirty = True

    # running -------------------------------------------------------------------------------

    async def main(self, initial_prompt: str | None) -> int:
        loop = asyncio.get_running_loop()
        for sig, code in ((signal.SIGTERM, 128 + signal.SIGTERM),
                          (signal.SIGHUP, 128 + signal.SIGHUP)):
            loop.add_signal_handler(sig, self.quit, code)
        self.app.create_background_task(self._ticker())
        if self.base.session or self.base.resume_latest:
            session_id = self.base.session or self._latest()
            if session_id:
                self.open_session(session_id)
        else:
            self._discover_models()
        self._refresh_queue()
        if initial_prompt:
            self.send(initial_prompt)
        loop.set_exception_handler(self._crash)
        return await self.app.run_async(set_exception_handler=False)

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
        from aura.executors import registry
        from aura.service.runner import _resolve_cwd

        executor = registry.canonical(self.base.executor) if self.base.executor else None
        found = self.store.list_sessions(1, executor=executor,
                                         cwd=_resolve_cwd(self.base.cwd))
        return found[0].id if found else None


async def discover_models(name: str, options: RunOptions) -> list[str] | None:
    """The executor's discovered model list (24 h cache), or None if it has none."""
    from aura import config as config_module
    from aura.executors import registry
    from aura.executors.base import RunRequest

    executor: Any = registry.load(name)()
    settings = config_module.executor_settings(config_module.load(), name)
    if name == "custom":
        if not (options.openai_endpoint or settings.get("endpoint")):
            return None
        from aura.executors.endpoint import CustomEndpointExecutor

        executor = CustomEndpointExecutor()
    if not hasattr(executor, "model_listing"):
        return None
    request = RunRequest(prompt="", cwd=".", session_id="", execution_id="",
                         openai_endpoint=options.openai_endpoint, settings=settings,
                         refresh_model_cache=options.refresh_model_cache)
    listing = await executor.model_listing(request, executor.base_url(request))
    return list(listing.models)


_RESET = ("\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1015l"  # mouse reporting off
          "\x1b[?2004l"  # bracketed paste off
          "\x1b[0m\x1b[?25h"  # attributes reset, cursor shown
          "\x1b[?1049l")  # back to the main screen


def run_tui(options: RunOptions, initial_prompt: str | None) -> tuple[int, RunResult | None]:
    """Run the TUI until the user leaves; (exit code, the last turn's result)."""
    import termios

    from aura.store_sqlite import open_store

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the TUI needs a terminal; use `aura run --no-tui` (or --json)")
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    store = open_store()
    # Anything written to stderr while the screen is ours would tear it: keep it, print
    # it after the terminal is back.
    real_stderr, captured = sys.stderr, io.StringIO()
    sys.stderr = captured
    clean = False
    try:
        tui = Tui(options, store)
        code = asyncio.run(tui.main(initial_prompt))
        clean = True
        return code, tui.result
    finally:
        sys.stderr = real_stderr
        with contextlib.suppress(termios.error):
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        if not clean:
            with contextlib.suppress(OSError):
                os.write(sys.stdout.fileno(), _RESET.encode())
        store.close()
        if captured.getvalue():
            real_stderr.write(captured.getvalue())
