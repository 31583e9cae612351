"""Startup guard: the commands people run most must not import the heavy modules."""

from __future__ import annotations

import json
import subprocess
import sys

from .conftest import ROOT

HEAVY = ("websockets", "questionary", "prompt_toolkit")


def imported_by(*args: str) -> set[str]:
    code = (
        "import sys, json, runpy\n"
        f"sys.argv = ['aura', *{list(args)!r}]\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from aura.cli.app import cli\n"
        "try:\n"
        "    cli.main(prog_name='aura', standalone_mode=False)\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout = sys.__stdout__\n"
        "print('\\n' + json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_help_imports_no_heavy_module() -> None:
    modules = imported_by("--help")
    assert not {m for m in modules if m.split(".")[0] in HEAVY}


def test_session_latest_imports_neither_heavy_modules_nor_asyncio() -> None:
    modules = imported_by("session", "latest")
    assert not {m for m in modules if m.split(".")[0] in HEAVY}
    assert "asyncio" not in modules
    assert "aura.store_sqlite" in modules  # it did real work


def test_one_command_imports_only_its_own_cli_module() -> None:
    modules = imported_by("session", "latest")
    others = {"aura.cli.run", "aura.cli.remote", "aura.cli.board", "aura.cli.task",
              "aura.cli.compare", "aura.cli.models"}
    assert not modules & others


def test_every_lazy_command_resolves_to_a_command_of_that_name() -> None:
    import click

    from aura.cli.app import LAZY_COMMANDS, cli

    ctx = click.Context(cli)
    for name in LAZY_COMMANDS:
        command = cli.get_command(ctx, name)
        assert isinstance(command, click.Command)
        assert command.name == name
    assert set(LAZY_COMMANDS) <= set(cli.list_commands(ctx))
