"""What every command shares: click settings, the error-turning group (whose help never
cuts a summary, and groups commands under headings as gh does), the `--debug` flag, the
one-line outcome of a run and the user's store."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

import click

from aura.errors import AuraError

if TYPE_CHECKING:  # contracts is imported by the command that prints an outcome
    from aura.contracts import RunSummary

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"],
                                    "max_content_width": 100}
DEBUG_KEY = "aura.debug"  # in click's ctx.meta, which every context of one command line shares
_Decorated = TypeVar("_Decorated", bound=Callable[..., Any])


def fail(message: str, code: int) -> NoReturn:
    """aura's own error: one line on stderr, then exit ``code``."""
    click.echo(f"aura: error: {message}", err=True)
    sys.exit(code)


def _remember_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> bool:
    if value:
        ctx.meta[DEBUG_KEY] = True
    return value


def debug_option(help: str = "Show tracebacks for errors."
                 ) -> Callable[[_Decorated], _Decorated]:
    """`--debug` on any command: shows tracebacks (and, on the daemons, verbose logs)."""
    return click.option("--debug", is_flag=True, callback=_remember_debug, help=help)


class AuraGroup(click.Group):
    """Turns AuraError into one line on stderr (the trace with --debug). Its help lists
    the commands with summaries never cut with `...`, under headings as gh does when
    ``sections`` (heading → command names) is set; commands in none go under "Other"."""

    sections: ClassVar[dict[str, tuple[str, ...]]] = {}

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        shown = {name: cmd for name in self.list_commands(ctx)
                 if (cmd := self.get_command(ctx, name)) is not None and not cmd.hidden}
        placed = {name for names in self.sections.values() for name in names}
        rest = tuple(name for name in shown if name not in placed)
        groups = [*self.sections.items(),
                  ("Other commands" if self.sections else "Commands", rest)]
        for heading, names in groups:
            rows = [(name, shown[name].get_short_help_str(limit=1_000))
                    for name in names if name in shown]
            if rows:
                with formatter.section(heading):
                    formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AuraError as exc:
            if ctx.meta.get(DEBUG_KEY):
                import traceback

                traceback.print_exc()
                sys.exit(exc.exit_code)
            fail(str(exc), exc.exit_code)


def silence_stdout() -> None:
    """The reader of our stdout went away (`aura run --json | head`): the run is stored;
    point stdout at /dev/null so the interpreter's final flush does not complain."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def took(seconds: float) -> str:
    """How long a run took, as the outcome line says it ("12 s", "3 m 5 s")."""
    from aura.cli.wording import duration

    return duration(seconds)


def outcome_words(summary: RunSummary, duration: float | None = None,
                  verdict: str | None = None) -> str:
    """How a run ended, for people: "done in 12 s", "failed after 3 m (exit 2)",
    "cancelled", "review: changes requested" (the machine names are in --json)."""
    from aura.cli.wording import VERDICTS

    length = took(duration) if duration is not None else None
    state, code = summary.state, summary.exit_code
    if state == "done":
        words = f"done in {length}" if length else "done"
        return words + (" · review: approved" if verdict == "approve" else "")
    if state == "review":
        return f"review: {VERDICTS.get(verdict or '', 'no verdict given')}"
    if state == "cancelled":
        return "cancelled" + (f" after {length}" if length else "")
    exit_text = f" (exit {code})" if code is not None else ""
    return (f"{state.replace('_', ' ')} after {length}" if length else
            state.replace("_", " ")) + exit_text


def print_outcome(summary: RunSummary, duration: float | None = None,
                  verdict: str | None = None, follow_up: str | None = None) -> None:
    """The last line of a plain run on stderr: how it ended and how long it took (when
    known), the exit code of a failure, usage, how to follow up (``follow_up``: the
    command, when not a local run's)."""
    from aura.cli.render import Painter, format_usage, use_color
    from aura.cli.wording import STATE_STYLES

    paint = Painter(use_color(sys.stderr))
    styles = STATE_STYLES.get(summary.state, ("red",))
    if summary.state == "review" and verdict != "approve":
        styles = ("yellow",)  # changes were asked for: no success colour
    usage = f"  usage: {format_usage(summary.usage)}" if summary.usage else ""
    short = (summary.session or "")[:8]
    click.echo(paint(f"[aura] session {short} {outcome_words(summary, duration, verdict)}"
                     f"{usage}", *styles) +
               paint(f"  follow up: {follow_up or f'aura run --session {short}'} '…'", "dim"),
               err=True)


def open_user_store() -> Any:
    """The user's store, with executions of crashed auras marked orphaned first."""
    from aura.liveness import sweep_orphans
    from aura.store_sqlite import open_store

    store = open_store()
    sweep_orphans(store)
    return store
