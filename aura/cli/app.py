"""The command line's root: the `aura` group, `aura help`, and `main` (exit codes).

Only click is imported at module level; everything else is imported inside the command
that needs it, because every TAB press and every `aura --help` pays for module imports.
"""

from __future__ import annotations

import sys
from typing import ClassVar, NoReturn

import click

from aura import __version__
from aura.cli.approvals import approvals_command, approve_command, deny_command
from aura.cli.board import board_command
from aura.cli.completion import complete_command, completion_command
from aura.cli.config_cmd import config_command
from aura.cli.doctor import doctor_command
from aura.cli.executors import executors_command
from aura.cli.models import models_command
from aura.cli.output import CONTEXT_SETTINGS, AuraGroup, debug_option, fail
from aura.cli.queue import queue_command
from aura.cli.remote import serve_command, worker_command, workers_command
from aura.cli.run import run_command, tui_command
from aura.cli.session import session
from aura.cli.task import task_command
from aura.cli.usage import usage_command
from aura.cli.workspace import workspace_command
from aura.errors import AuraError, UsageError


class RootGroup(AuraGroup):
    """`aura --help`: the commands grouped by what they are for."""

    sections: ClassVar[dict[str, tuple[str, ...]]] = {
        "Core commands": ("run", "tui", "session", "task", "queue"),
        "Review commands": ("board", "workspace", "approvals", "approve", "deny", "usage"),
        "Remote commands": ("serve", "worker", "workers"),
        "Setup commands": ("executors", "models", "config", "doctor", "completion",
                           "help", "version"),
    }


@click.group(cls=RootGroup, context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "-V", "--version", prog_name="aura",
                      message="%(prog)s %(version)s")
@debug_option()
def cli(debug: bool) -> None:
    """aura runs coding agents headless in prepared workspaces, streams their output as one
    normalized format, and keeps every session in SQLite.

    \b
    Start:   aura run 'fix the failing test'   (default executor: `aura config set executor`)
    Review:  aura session list; aura session show ID; aura session latest
    """


for _command in (run_command, tui_command, session, executors_command, models_command,
                 completion_command, doctor_command, serve_command, worker_command,
                 workers_command, workspace_command, board_command, approvals_command,
                 approve_command, deny_command, task_command, queue_command, usage_command,
                 config_command):
    cli.add_command(_command)


HELP_WORDS = ("-h", "--help")


# -h/--help are words here, not options: `aura help run -h` is the help of `run`.
@cli.command("help", context_settings={**CONTEXT_SETTINGS, "help_option_names": [],
                                       "ignore_unknown_options": True})
@click.argument("command", nargs=-1, shell_complete=complete_command)
@click.pass_context
def help_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show help for aura or for one command (`aura help run`)."""
    asked_help = any(word in HELP_WORDS for word in command)
    command = tuple(word for word in command if word not in HELP_WORDS)
    if asked_help and not command:
        click.echo(ctx.get_help())
        return
    group: click.Command = cli
    # Chain the contexts so the usage line reads `aura session list`, not `aura list`.
    sub = click.Context(cli, info_name="aura", **cli.context_settings)
    for name in command:
        if not isinstance(group, click.Group) or name not in group.commands:
            raise UsageError(f"no command {' '.join(command)!r}; see `aura help`")
        group = group.commands[name]
        sub = click.Context(group, info_name=name, parent=sub, **group.context_settings)
    click.echo(group.get_help(sub))


@cli.command("version", context_settings=CONTEXT_SETTINGS)
def version_command() -> None:
    """Print aura's version (as `aura --version`)."""
    click.echo(f"aura {__version__}")


def main(argv: list[str] | None = None) -> NoReturn:
    """Run aura; one-line errors, exit codes as documented in ARCHITECTURE.md."""
    import os

    if os.environ.get("_AURA_COMPLETE"):
        from aura.cli.completion import register_shells

        register_shells()
    try:
        code = cli.main(args=argv, prog_name="aura", complete_var="_AURA_COMPLETE",
                        standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aura: interrupted", err=True)
        sys.exit(130)
    except click.exceptions.NoArgsIsHelpError as exc:
        # Bare `aura` / `aura session`: the help is what was asked for, not an error.
        click.echo(exc.ctx.get_help() if exc.ctx else "")
        sys.exit(0)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "aura"
        fail(f"{exc.format_message()} (see `{command} --help`)", exc.exit_code)
    except click.ClickException as exc:
        fail(exc.format_message(), exc.exit_code)
    except AuraError as exc:  # raised before a command ran (its group prints the rest)
        fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
