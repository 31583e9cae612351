"""`aura executors [--json]`: every executor aura knows, whether its program is installed
(where, which version) and what it supports (native resume, --model, approval flags);
the inventory itself is `aura.service.inventory`."""

from __future__ import annotations

import click

from aura.cli.output import CONTEXT_SETTINGS


@click.command("executors", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per executor.")
def executors_command(as_json: bool) -> None:
    """Every executor: is its program installed (path, version), what it supports."""
    from aura import config
    from aura.cli.render import json_text, table
    from aura.service.inventory import describe_all

    paths = dict(config.load().get("executor_paths", {}))
    rows = describe_all(paths)
    if as_json:
        click.echo(json_text(rows))
        return
    listing = [("EXECUTOR", "FOUND", "VERSION", "RESUME", "MODEL", "ASKS", "APPROVAL FLAGS")]
    missing = []
    for row in rows:
        name = row["name"] + (f" ({', '.join(row['aliases'])})" if row["aliases"] else "")
        if row.get("via") == "built-in":
            found = "built in"
        elif row["found"]:
            found = row["path"] + (" (fallback)" if row["via"] == "npx" else "")
        else:
            found = "missing" + (f": {row['error']}" if row.get("error") else "")
            missing.append(row["name"])
        supports = row.get("supports") or {}
        listing.append((name, found, row.get("version") or "-",
                        "yes" if supports.get("resume") else "-",
                        "yes" if supports.get("models") else "-",
                        "yes" if supports.get("asks") else "-",
                        " ".join(supports.get("approvals", [])) or "-"))
    for line in table(listing):
        click.echo(line)
    if missing:
        click.echo(f"\nnot found: {', '.join(missing)}. Install them, or point aura at a "
                   "binary once: aura run --executor-path NAME=PATH … (remembered)", err=True)
