"""The TUI's slash commands as a table: name → handler, argument and help line. `/help`,
the footer and the dispatch are all read from ``COMMANDS``, so a command added here shows
up everywhere at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aura.errors import AuraError, UsageError
from aura.tui.state import TuiState

KEYS_HELP = """\
keys: Enter send · Alt-Enter newline · Esc/Ctrl-C cancel the run · Ctrl-C twice quit
      Tab/Shift-Tab next/previous pane · PgUp/PgDn/Home/End scroll logs (End follows)
      Queue pane: ↑/↓ and Enter open a session
      Model pane: ↑/↓ choose a model, ←/→ choose an executor, Enter apply
      an approval waits: y allow once · a allow for this session · n deny (then a message
      for the agent and Enter; Esc goes back)"""


class CommandTarget(Protocol):
    """What the commands act on (the TUI application)."""

    state: TuiState

    @property
    def running(self) -> bool: ...

    def note(self, text: str) -> None: ...

    def quit(self, code: int | None = None) -> None: ...

    def cancel(self) -> bool: ...

    def new_session(self) -> None: ...

    def open_session(self, session_id: str) -> None: ...

    def discover_models(self) -> None: ...


Handler = Callable[[CommandTarget, str], None]


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    arg: str  # as /help shows it; in [brackets] when it may be left out
    help: str
    handler: Handler

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.arg}" if self.arg else f"/{self.name}"


def _executor(target: CommandTarget, arg: str) -> None:
    from aura.executors import registry

    if not arg:
        target.note(f"executors: {', '.join(registry.names())}")
        return
    try:
        name = registry.canonical(arg)
    except UsageError as exc:
        target.note(str(exc))
        return
    target.state.choose_executor(name)
    target.discover_models()


def _model(target: CommandTarget, arg: str) -> None:
    target.state.choose_model(arg or None)


def _session(target: CommandTarget, arg: str) -> None:
    if not arg:
        target.note("usage: /session ID (see the Queue pane)")
        return
    if target.running:
        target.note("a turn is running; cancel it first (Esc)")
        return
    try:
        target.open_session(arg)
    except AuraError as exc:
        target.note(str(exc))


def _cancel(target: CommandTarget, arg: str) -> None:
    if not target.cancel():
        target.note("nothing is running")


def _help(target: CommandTarget, arg: str) -> None:
    target.note(help_text())


COMMANDS: dict[str, Command] = {c.name: c for c in (
    Command("executor", "NAME", "run the next new session with this executor", _executor),
    Command("model", "NAME", "use this model from the next turn on", _model),
    Command("session", "ID", "open a session (a unique id prefix is enough); sends follow "
            "it up", _session),
    Command("new", "", "the next send starts a new session",
            lambda target, arg: target.new_session()),
    Command("review", "[on|off]", "run the review stage after each turn (toggles without "
            "an argument)", lambda target, arg: target.state.set_review(arg)),
    Command("cancel", "", "cancel the running execution", _cancel),
    Command("quit", "", "leave (the running execution is cancelled first)",
            lambda target, arg: target.quit()),
    Command("help", "", "this text", _help),
)}


def help_text() -> str:
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"{c.usage:<{width}} {c.help}" for c in COMMANDS.values()]
    return "\n".join([KEYS_HELP, *lines])


def footer_items() -> list[tuple[str, str]]:
    """(``/name``, argument) for the footer; optional arguments are left out."""
    return [(f"/{c.name}", "" if c.arg.startswith("[") else c.arg)
            for c in COMMANDS.values()]


def run_command(target: CommandTarget, text: str) -> None:
    """Run ``/name arg``; an unknown name is a note, not an error."""
    name, _, arg = text[1:].partition(" ")
    command = COMMANDS.get(name)
    if command is None:
        target.note(f"unknown command /{name}; /help lists them")
        return
    command.handler(target, arg.strip())
