"""`aura executors [--json]`: every executor aura knows, whether its program is installed
(where, which version) and what it supports (native resume, --model, approval flags).

Programs are found the way `aura run` finds them (--executor-path remembered in the
config, then PATH, then the npx fallback); versions come from running the program with its
``version_args`` under a short timeout, all at once. An npx fallback is not run: that
would download the package.
"""

from __future__ import annotations

from typing import Any

import click

VERSION_TIMEOUT = 5.0


def _version(argv: list[str]) -> str | None:
    import subprocess

    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=VERSION_TIMEOUT,
                              stdin=subprocess.DEVNULL, errors="replace")
    except (OSError, subprocess.SubprocessError):
        return None
    for text in (done.stdout, done.stderr):
        for line in text.splitlines():
            if line.strip():
                return line.strip()[:80]
    return None


def describe_all(paths: dict[str, str]) -> list[dict[str, Any]]:
    """One description per executor (sorted by name), versions probed in parallel."""
    from concurrent.futures import ThreadPoolExecutor

    from .executors import registry

    rows: list[dict[str, Any]] = []
    probes: dict[int, list[str]] = {}
    for name in registry.names():
        row: dict[str, Any] = {"name": name, "aliases": sorted(
            alias for alias, target in registry.ALIASES.items() if target == name)}
        try:
            cls = registry.load(name)
            executor = cls()
        except Exception as exc:  # a broken executor module must not hide the others
            row.update(found=False, error=f"{type(exc).__name__}: {exc}")
            rows.append(row)
            continue
        features = executor.features
        row.update(
            description=executor.description, program=executor.program,
            npx_package=executor.npx_package,
            supports={"resume": "resume" in features, "models": "models" in features,
                      "approvals": sorted(f for f in features if f.startswith("--"))},
            found=False, path=None, via=None, version=None)
        configured = paths.get(name)
        if executor.program is None and not configured:
            row.update(found=True, via="built-in")
        else:
            located = executor.locate(configured)
            if located is not None:
                argv, via = located
                row.update(found=True, via=via, path=" ".join(argv))
                if via != "npx":
                    probes[len(rows)] = [*argv, *executor.version_args]
            elif configured:
                row["error"] = f"--executor-path {configured!r} is not an executable file"
        rows.append(row)
    if probes:
        with ThreadPoolExecutor(max_workers=min(8, len(probes))) as pool:
            versions = dict(zip(probes, pool.map(_version, probes.values()), strict=True))
        for index, version in versions.items():
            rows[index]["version"] = version
    return rows


@click.command("executors", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--json", "as_json", is_flag=True, help="A JSON array, one object per executor.")
def executors_command(as_json: bool) -> None:
    """Every executor: is its program installed (path, version), what it supports."""
    import json

    from . import config

    paths = dict(config.load().get("executor_paths", {}))
    rows = describe_all(paths)
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = [("EXECUTOR", "FOUND", "VERSION", "RESUME", "MODEL", "APPROVAL FLAGS")]
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
        table.append((name, found, row.get("version") or "-",
                      "yes" if supports.get("resume") else "-",
                      "yes" if supports.get("models") else "-",
                      " ".join(supports.get("approvals", [])) or "-"))
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]) - 1)]
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    if missing:
        click.echo(f"\nnot found: {', '.join(missing)}. Install them, or point aura at a "
                   "binary once: aura run --executor-path NAME=PATH … (remembered)", err=True)
