"""The TUI's slash commands as a table: name → handler, argument and help line. The help
overlay (`?`, `/help`), the footer, the prompt's completion and the dispatch are all read
from ``COMMANDS``, so a command added here shows up everywhere at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from aura.errors import AuraError, UsageError
from aura.tui.state import TuiState

KEYS_HELP = """\
keys
  Enter send · Alt-Enter newline · Esc or Ctrl-C cancel the run
  Ctrl-C twice quit · Ctrl-D on an empty prompt quit
  Tab/Shift-Tab next/previous pane (in the prompt, Tab completes a /command)
  PgUp/PgDn scroll the logs; Home/End: in the prompt the start/end of the
    line, elsewhere the top/bottom of the logs (End follows the tail)
  ? this help (on an empty prompt, or in another pane) · Esc closes it
  F2 the side panes instead of the logs (terminals under 100 columns)
  F3 the diff of the session's workspace · F9 mouse capture on/off
  keys typed in the Logs, Queue or Model pane go to the prompt
  Logs pane: ↑/↓ select an entry, Enter shows it whole (thinking, a tool
    call's input and output), Enter or Esc folds it again
  Queue pane: ↑/↓ and Enter open a session (one that runs elsewhere is
    followed live)
  Model pane: ↑/↓ choose a model, ←/→ choose an executor, Enter apply
  an approval waits: y allow once · a allow for this session · n deny
    (then a message for the agent and Enter; Esc goes back)
prompt
  /name runs a command (below) · //text sends /text as a prompt
  an unknown /word is said; Enter again sends it as a prompt
commands"""


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

    def show_help(self) -> None: ...

    def show_diff(self) -> None: ...

    def toggle_mouse(self) -> None: ...

    def send_control(self, kind: str, text: str) -> None: ...

    def show_compare(self, ref: str = "") -> None: ...


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


def _interrupt(target: CommandTarget, arg: str) -> None:
    target.send_control("interrupt", arg)


def _help(target: CommandTarget, arg: str) -> None:
    target.show_help()


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
    Command("interrupt", "[TEXT]", "end the turn the agent's way, keep its session; TEXT "
            "runs next", _interrupt),
    Command("quit", "", "leave (the running execution is cancelled first)",
            lambda target, arg: target.quit()),
    Command("diff", "", "show the diff of the session's workspace (F3)",
            lambda target, arg: target.show_diff()),
    Command("compare", "[GROUP]", "a best-of-N group's attempts ranked (the open "
            "session's group)",
            lambda target, arg: target.show_compare(arg.strip())),
    Command("mouse", "", "mouse capture on/off: wheel scrolling, or text selection (F9)",
            lambda target, arg: target.toggle_mouse()),
    Command("help", "", "this text (also ?)", _help),
)}


def help_text() -> str:
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"  {c.usage:<{width}} {c.help}" for c in COMMANDS.values()]
    return "\n".join([KEYS_HELP, *lines])


def footer_items() -> list[tuple[str, str]]:
    """(``/name``, argument) for the footer; optional arguments are left out."""
    return [(f"/{c.name}", "" if c.arg.startswith("[") else c.arg)
            for c in COMMANDS.values()]


def is_command(text: str) -> bool:
    """``text`` is ``/name …`` with a name of the table."""
    return text.startswith("/") and text[1:].split(" ", 1)[0].strip() in COMMANDS


class CommandCompleter(Completer):
    """The prompt's completion: the slash commands, while the first word is typed."""

    def get_completions(self, document: Document, complete_event: CompleteEvent
                        ) -> Iterable[Completion]:
        text = document.text_before_cursor
        if not text.startswith("/") or text.startswith("//") or " " in text \
                or "\n" in text:
            return
        for command in COMMANDS.values():
            if command.name.startswith(text[1:]):
                yield Completion(f"/{command.name}", start_position=-len(text),
                                 display=command.usage, display_meta=command.help)


def run_command(target: CommandTarget, text: str) -> None:
    """Run ``/name arg``; an unknown name is a note, not an error."""
    name, _, arg = text[1:].partition(" ")
    command = COMMANDS.get(name)
    if command is None:
        target.note(f"unknown command /{name}; /help lists them")
        return
    command.handler(target, arg.strip())
