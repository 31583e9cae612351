"""The TUI's key bindings, one small function per pane or concern; `/help` describes them
(``aura.tui.commands.KEYS_HELP``)."""

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

    def send(self, text: str) -> bool: ...

    def cancel(self) -> bool: ...

    def quit(self, code: int | None = None) -> None: ...

    def command(self, text: str) -> None: ...

    def focus(self, step: int) -> None: ...


def build_keys(target: KeyTarget) -> KeyBindings:
    kb = KeyBindings()
    _prompt_keys(kb, target)
    _turn_keys(kb, target)
    _log_keys(kb, target)
    _model_keys(kb, target)
    _queue_keys(kb, target)
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
    bind("up", lambda: logs.scroll(-1), in_logs)
    bind("down", lambda: logs.scroll(1), in_logs)
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
