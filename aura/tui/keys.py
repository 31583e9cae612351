"""The TUI's key bindings, one small function per pane or concern; the help overlay
describes them (``aura.tui.commands.KEYS_HELP``). No keystroke is dropped: printable keys
typed while the Logs, Queue or Model pane has the focus go to the prompt."""

from __future__ import annotations

import time
from typing import Any, Protocol

from prompt_toolkit.filters import Condition, Filter, has_focus
from prompt_toolkit.key_binding import KeyBindings
from prompt_toolkit.key_binding.key_processor import KeyPressEvent
from prompt_toolkit.layout import Window
from prompt_toolkit.widgets import TextArea

from aura.service.runner import EXIT_INTERRUPTED
from aura.tui.logview import LogView
from aura.tui.state import TuiState


class KeyTarget(Protocol):
    """What the keys act on (the TUI application)."""

    app: Any  # the prompt_toolkit Application
    state: TuiState
    logs: LogView
    prompt: TextArea
    logs_window: Window
    queue_window: Window
    model_window: Window
    dirty: bool
    approvals: Any  # aura.tui.approval_bar.ApprovalBar
    overlay: Any  # aura.tui.overlay.Overlay

    def send(self, text: str) -> bool: ...

    def cancel(self) -> bool: ...

    def quit(self, code: int | None = None) -> None: ...

    def command(self, text: str) -> None: ...

    def focus(self, step: int) -> None: ...

    def focus_prompt(self, text: str = "") -> None: ...

    def show_help(self) -> None: ...

    def show_diff(self) -> None: ...

    def show_entry(self) -> None: ...

    def toggle_side(self) -> None: ...

    def toggle_mouse(self) -> None: ...


def build_keys(target: KeyTarget) -> KeyBindings:
    kb = KeyBindings()
    _turn_keys(kb, target)
    _prompt_keys(kb, target)  # after Tab's pane switch: completing wins in the prompt
    _log_keys(kb, target)
    _model_keys(kb, target)
    _queue_keys(kb, target)
    _typing_keys(kb, target)
    _overlay_keys(kb, target)
    _approval_keys(kb, target)  # last: they win over the prompt's while a request waits
    return kb


def _focused(target: KeyTarget, window: Window) -> Filter:
    return Condition(lambda: bool(target.app.layout.has_focus(window)))


def _prompt_keys(kb: KeyBindings, target: KeyTarget) -> None:
    in_prompt = has_focus(target.prompt)

    @kb.add("enter", filter=in_prompt)
    def _send(event: KeyPressEvent) -> None:
        if target.send(target.prompt.text):
            target.prompt.buffer.reset(append_to_history=True)

    @kb.add("escape", "enter", filter=in_prompt)
    def _newline(event: KeyPressEvent) -> None:
        target.prompt.buffer.insert_text("\n")

    buffer = target.prompt.buffer

    @kb.add("home", filter=in_prompt)
    def _line_start(event: KeyPressEvent) -> None:
        buffer.cursor_position += buffer.document.get_start_of_line_position()

    @kb.add("end", filter=in_prompt)
    def _line_end(event: KeyPressEvent) -> None:
        buffer.cursor_position += buffer.document.get_end_of_line_position()

    completing = Condition(lambda: buffer.complete_state is not None)
    command_word = Condition(lambda: buffer.text.startswith("/") and " " not in buffer.text
                             and not buffer.text.startswith("//"))

    @kb.add("tab", filter=in_prompt & completing)
    def _complete_next(event: KeyPressEvent) -> None:
        buffer.complete_next()

    @kb.add("tab", filter=in_prompt & command_word & ~completing)
    def _complete(event: KeyPressEvent) -> None:
        buffer.start_completion(select_first=True)


def _turn_keys(kb: KeyBindings, target: KeyTarget) -> None:
    @kb.add("escape")
    def _escape(event: KeyPressEvent) -> None:
        target.cancel()

    @kb.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        if target.state.interrupt(time.monotonic()):
            target.quit(EXIT_INTERRUPTED)
        elif not target.cancel():
            target.state.status = "press Ctrl-C again to quit"
            target.dirty = True

    @kb.add("c-d", filter=has_focus(target.prompt))
    def _eof(event: KeyPressEvent) -> None:
        if not target.prompt.text:
            target.quit()

    @kb.add("tab")
    def _next(event: KeyPressEvent) -> None:
        target.focus(1)

    @kb.add("f2")
    def _side(event: KeyPressEvent) -> None:
        target.toggle_side()

    @kb.add("f3")
    def _diff(event: KeyPressEvent) -> None:
        target.show_diff()

    @kb.add("f9")
    def _mouse(event: KeyPressEvent) -> None:
        target.toggle_mouse()

    @kb.add("s-tab")
    def _previous(event: KeyPressEvent) -> None:
        target.focus(-1)


def _log_keys(kb: KeyBindings, target: KeyTarget) -> None:
    logs = target.logs
    in_logs = _focused(target, target.logs_window)
    outside_prompt = ~has_focus(target.prompt)

    def bind(key: str, action: Any, where: Filter | None = None) -> None:
        def handler(event: KeyPressEvent) -> None:
            action()
            target.dirty = True

        kb.add(key, filter=where if where is not None else True)(handler)

    bind("pageup", lambda: logs.scroll(-max(1, logs.height - 2)))
    bind("pagedown", lambda: logs.scroll(max(1, logs.height - 2)))
    bind("up", lambda: logs.select(-1), in_logs)
    bind("down", lambda: logs.select(1), in_logs)
    overlay = target.overlay
    # Enter unfolds the selected entry in the overlay; Enter again (or Esc) folds it.
    bind("enter", lambda: overlay.close() if overlay.visible else target.show_entry(), in_logs)
    bind("home", logs.home, outside_prompt)
    bind("end", logs.end, outside_prompt)


def _model_keys(kb: KeyBindings, target: KeyTarget) -> None:
    in_model = _focused(target, target.model_window)
    choice = target.state.models

    @kb.add("up", filter=in_model)
    @kb.add("down", filter=in_model)
    def _move(event: KeyPressEvent) -> None:
        choice.move(-1 if event.key_sequence[0].key == "up" else 1)
        target.dirty = True

    @kb.add("enter", filter=in_model)
    def _pick(event: KeyPressEvent) -> None:
        model = choice.selected()
        if model is not None:
            target.state.choose_model(model)
            target.dirty = True

    @kb.add("left", filter=in_model)
    @kb.add("right", filter=in_model)
    def _executor_cycle(event: KeyPressEvent) -> None:
        from aura.executors import registry

        names = registry.names()
        step = -1 if event.key_sequence[0].key == "left" else 1
        current = names.index(target.state.executor) if target.state.executor in names else -1
        target.command(f"/executor {names[(current + step) % len(names)]}")


def _queue_keys(kb: KeyBindings, target: KeyTarget) -> None:
    in_queue = _focused(target, target.queue_window)
    queue = target.state.queue

    @kb.add("up", filter=in_queue)
    @kb.add("down", filter=in_queue)
    def _move(event: KeyPressEvent) -> None:
        queue.move(-1 if event.key_sequence[0].key == "up" else 1)
        target.dirty = True

    @kb.add("enter", filter=in_queue)
    def _open(event: KeyPressEvent) -> None:
        session = queue.selected()
        if session is not None:
            target.command(f"/session {session.id}")
            target.focus_prompt()  # what is typed next is the follow-up


def _typing_keys(kb: KeyBindings, target: KeyTarget) -> None:
    outside_prompt = ~has_focus(target.prompt)
    prompt_empty = Condition(lambda: not target.prompt.text and
                             not target.approvals.writing_message)
    no_overlay = Condition(lambda: not target.overlay.visible)

    @kb.add("?", filter=no_overlay & (outside_prompt | prompt_empty))
    def _help(event: KeyPressEvent) -> None:
        target.show_help()

    @kb.add("<any>", filter=outside_prompt)
    def _to_prompt(event: KeyPressEvent) -> None:
        # Anything printable typed in another pane is meant for the prompt: move there
        # with it rather than drop it (a `/quit` typed in the Logs pane quits).
        data = event.data
        if data and data.isprintable() and not data.startswith("\x1b"):
            target.focus_prompt(data)


def _overlay_keys(kb: KeyBindings, target: KeyTarget) -> None:
    overlay = target.overlay
    shown = Condition(lambda: bool(overlay.visible))

    def bind(key: str, action: Any) -> None:
        def handler(event: KeyPressEvent) -> None:
            action()
            target.dirty = True

        kb.add(key, filter=shown)(handler)

    bind("escape", overlay.close)
    bind("up", lambda: overlay.scroll(-1))
    bind("down", lambda: overlay.scroll(1))
    bind("pageup", lambda: overlay.scroll(-max(1, overlay.height - 1)))
    bind("pagedown", lambda: overlay.scroll(max(1, overlay.height - 1)))
    bind("home", overlay.home)
    bind("end", overlay.end)


def _approval_keys(kb: KeyBindings, target: KeyTarget) -> None:
    """While a request waits, on an empty prompt: y allow once, a allow for this session,
    n deny — then the prompt takes the message for the agent, Enter sends the deny (with
    the message, or none) and Esc goes back to the choice."""
    from aura.approvals import Choice

    bar = target.approvals
    waiting = Condition(lambda: bool(bar.visible))
    choosing = Condition(lambda: bool(bar.visible) and not bar.writing_message and
                         not target.prompt.text.strip())
    writing = Condition(lambda: bool(bar.visible) and bar.writing_message)

    for key, choice in (("y", Choice.ALLOW), ("a", Choice.ALLOW_SESSION)):
        def answer(event: KeyPressEvent, choice: Choice = choice) -> None:
            bar.choose(choice)
            target.dirty = True

        kb.add(key, filter=choosing)(answer)

    @kb.add("n", filter=choosing)
    def _deny(event: KeyPressEvent) -> None:
        bar.writing_message = True
        target.app.layout.focus(target.prompt)
        target.dirty = True

    @kb.add("enter", filter=writing & has_focus(target.prompt))
    def _deny_with_message(event: KeyPressEvent) -> None:
        if bar.choose(Choice.DENY, target.prompt.text.strip() or None):
            target.prompt.buffer.reset()
        target.dirty = True

    @kb.add("escape", filter=writing & waiting)
    def _back(event: KeyPressEvent) -> None:
        bar.writing_message = False
        target.dirty = True
