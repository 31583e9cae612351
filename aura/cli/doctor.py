"""`aura doctor [--json]`: what aura sees on this machine, and how to fix what is wrong."""

from __future__ import annotations

import sys

import click


@click.command("doctor", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="One JSON object with every check.")
def doctor_command(as_json: bool) -> None:
    """Check Python, data/config/cache locations, the database, each executor and the
    coordinator. Exits 1 when something is broken; each problem names its fix."""
    import json

    from aura import __version__
    from aura.remote.client import coordinator_url
    from aura.service.doctor import ERROR, run_checks

    checks = run_checks(lambda config: coordinator_url(None, config=config, required=False))
    failed = any(c.status == ERROR for c in checks)
    if as_json:
        click.echo(json.dumps({"version": __version__, "ok": not failed,
                               "checks": [c.to_json() for c in checks]},
                              ensure_ascii=False, indent=2))
    else:
        _print(checks, __version__)
    if failed:
        sys.exit(1)


def _print(checks: list, version: str) -> None:
    from aura.cli.render import Painter, use_color

    paint = Painter(use_color(sys.stdout))
    colors = {"ok": "green", "warn": "yellow", "error": "red"}
    click.echo(paint(f"aura {version}", "bold"))
    width = max(len(c.name) for c in checks)
    for c in checks:
        status = paint(c.status.ljust(5), colors.get(c.status, "dim"))
        click.echo(f"  {status} {c.name.ljust(width)}  {c.detail}")
        if c.fix:
            click.echo(f"        {' ' * width}  {paint('fix:', 'cyan')} {c.fix}")
    problems = [c for c in checks if c.status != "ok"]
    errors = sum(1 for c in problems if c.status == "error")
    summary = (f"{errors} error(s), {len(problems) - errors} warning(s)" if problems
               else "0 error(s), 0 warning(s): everything looks fine")
    click.echo(paint(summary, "red" if errors else "yellow" if problems else "green"))
