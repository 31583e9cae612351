"""The command line's root: the `aura` group, `aura help`, and `main` (exit codes).

Only click is imported at module level; everything else is imported inside the command
that needs it, because every TAB press and every `aura --help` pays for module imports.
"""

from __future__ import annotations

import sys
from typing import Any, ClassVar, NoReturn

import click

from aura import __version__
from aura.cli.output import CONTEXT_SETTINGS, AuraGroup, debug_option, fail
from aura.errors import AuraError, UsageError

# Each command's module is imported when the command is run (or listed in help and
# completion), so `aura session latest` does not pay for the modules of `run`, `serve`, …
LAZY_COMMANDS: dict[str, str] = {
    "run": "aura.cli.run:run_command",
    "tui": "aura.cli.run:tui_command",
    "session": "aura.cli.session:session",
    "task": "aura.cli.task:task_command",
    "queue": "aura.cli.queue:queue_command",
    "board": "aura.cli.board:board_command",
    "workspace": "aura.cli.workspace:workspace_command",
    "compare": "aura.cli.compare:compare_command",
    "approvals": "aura.cli.approvals:approvals_command",
    "approve": "aura.cli.approvals:approve_command",
    "deny": "aura.cli.approvals:deny_command",
    "usage": "aura.cli.usage:usage_command",
    "serve": "aura.cli.remote:serve_command",
    "worker": "aura.cli.remote:worker_command",
    "workers": "aura.cli.remote:workers_command",
    "executors": "aura.cli.executors:executors_command",
    "models": "aura.cli.models:models_command",
    "config": "aura.cli.config_cmd:config_command",
    "doctor": "aura.cli.doctor:doctor_command",
    "completion": "aura.cli.completion:completion_command",
}


class RootGroup(AuraGroup):
    """`aura --help`: the commands grouped by what they are for; subcommands imported on
    first use (``LAZY_COMMANDS``)."""

    sections: ClassVar[dict[str, tuple[str, ...]]] = {
        "Core commands": ("run", "tui", "session", "task", "queue"),
        "Review commands": ("board", "workspace", "compare", "approvals", "approve", "deny",
                            "usage"),
        "Remote commands": ("serve", "worker", "workers"),
        "Setup commands": ("executors", "models", "config", "doctor", "completion",
                           "help", "version"),
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in LAZY_COMMANDS:
            import importlib

            module, _, attr = LAZY_COMMANDS[cmd_name].partition(":")
            command = getattr(importlib.import_module(module), attr)
            self.add_command(command, cmd_name)
        return command


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


@cli.command("help", context_settings=CONTEXT_SETTINGS)
@click.argument("command", nargs=-1, shell_complete=lambda ctx, param, incomplete:
                _complete_command(ctx, param, incomplete))
@click.pass_context
def help_command(ctx: click.Context, command: tuple[str, ...]) -> None:
    """Show help for aura or for one command (`aura help run`)."""
    group: click.Command = cli
    # Chain the contexts so the usage line reads `aura session list`, not `aura list`.
    sub = click.Context(cli, info_name="aura", **cli.context_settings)
    for name in command:
        found = group.get_command(sub, name) if isinstance(group, click.Group) else None
        if found is None:
            raise UsageError(f"no command {' '.join(command)!r}; see `aura help`")
        group = found
        sub = click.Context(group, info_name=name, parent=sub, **group.context_settings)
    click.echo(group.get_help(sub))


@cli.command("version", context_settings=CONTEXT_SETTINGS)
def version_command() -> None:
    """Print aura's version (as `aura --version`)."""
    click.echo(f"aura {__version__}")


def _complete_command(ctx: click.Context, param: click.Parameter,
                      incomplete: str) -> list[Any]:
    from aura.cli.completion import complete_command

    return complete_command(ctx, param, incomplete)


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
