"""`aura doctor [--json]`: what aura sees on this machine, and how to fix what is wrong."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from aura.service.doctor import Check


@click.command("doctor", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every check.")
def doctor_command(as_json: bool) -> None:
    """Check Python, data/config/cache locations, the database, each executor and the
    coordinator. Exits 1 when something is broken; each problem names its fix."""
    from aura import __version__
    from aura.cli.render import json_text
    from aura.remote.client import coordinator_url
    from aura.service.doctor import ERROR, run_checks

    checks = run_checks(lambda config: coordinator_url(None, config=config, required=False))
    failed = any(c.status == ERROR for c in checks)
    if as_json:
        click.echo(json_text({"version": __version__, "ok": not failed,
                              "checks": [c.to_json() for c in checks]}))
    else:
        _print(checks, __version__)
    if failed:
        sys.exit(1)


def _print(checks: list[Check], version: str) -> None:
    from aura.cli.render import Painter, table, use_color

    paint = Painter(use_color(sys.stdout))
    colors = {"ok": "green", "warn": "yellow", "error": "red"}
    click.echo(paint(f"aura {version}", "bold"))
    # A check's line starts with its status; its fix goes on the next line, under the
    # detail, so both are rows of one table of (name, text).
    starts: list[str] = []
    rows: list[tuple[str, str]] = []
    for c in checks:
        starts.append(f"  {paint(c.status.ljust(5), colors.get(c.status, 'dim'))} ")
        rows.append((c.name, c.detail))
        if c.fix:
            starts.append(" " * 8)
            rows.append(("", f"{paint('fix:', 'cyan')} {c.fix}"))
    for start, line in zip(starts, table(rows), strict=True):
        click.echo(start + line)
    problems = [c for c in checks if c.status != "ok"]
    errors = sum(1 for c in problems if c.status == "error")
    summary = (f"{errors} error(s), {len(problems) - errors} warning(s)" if problems
               else "0 error(s), 0 warning(s): everything looks fine")
    click.echo(paint(summary, "red" if errors else "yellow" if problems else "green"))
