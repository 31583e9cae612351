"""The executor inventory: which agents this machine can run, where their programs are,
which version they say, and what each supports. `aura executors`, `aura doctor` and
`aura worker` (what it offers the coordinator) all read it here.

Programs are found the way `aura run` finds them (--executor-path remembered in the
config, then PATH, then the npx fallback); versions come from running the program with its
``version_args`` under a short timeout, all at once. An npx fallback is not run: that
would download the package.
"""

from __future__ import annotations

from typing import Any

from aura import __version__

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

    from aura.executors import registry

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
                      "asks": "approvals" in features,
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


def offered(rows: list[dict[str, Any]], *, allow_command: bool) -> dict[str, str]:
    """What a worker offers, from `describe_all` rows: name → version (or how it would be
    run). The built-in endpoint executors (ollama, lms, and `custom` against an
    OpenAI-compatible endpoint) need no program, only reach to their server, so they are
    always offered; a command-backed `custom` run needs ``allow_command`` too (the
    worker's policy refuses --base-command without it). Executors whose program was not
    found are not offered."""
    found: dict[str, str] = {}
    for row in rows:
        name = row["name"]
        if not row["found"]:
            continue
        if name == "custom":
            found[name] = f"aura {__version__}" + ("" if allow_command else " (endpoints)")
        elif row.get("via") == "built-in":
            found[name] = f"aura {__version__}"
        elif row["via"] == "npx":
            found[name] = f"npx {row['npx_package']}"
        else:
            found[name] = row.get("version") or "unknown"
    return dict(sorted(found.items()))
