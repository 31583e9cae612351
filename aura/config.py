"""The user's settings: a TOML file read with tomllib, written back by a small writer.

Layout (every table optional)::

    [executor_paths]          # --executor-path NAME=PATH, remembered
    claude = "/opt/claude/bin/claude"

    [executors.codex]         # executor-specific settings
    sandbox = "workspace-write"

    coordinator = "wss://coord:8765"
    max_parallel = 3          # agents the queue runs at once on this machine
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from aura.errors import ConfigError
from aura.paths import atomic_write, config_path


def load(path: Path | None = None) -> dict[str, Any]:
    """Read the config file; a missing file is an empty config, a broken one an error."""
    path = path or config_path()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    check(data, path)
    return data


# The shape of the tables aura reads: name → (type of the table's values, an example).
_TABLES: dict[str, tuple[type, str]] = {
    "executor_paths": (str, 'claude = "/opt/claude/bin/claude"'),
    "executors": (dict, 'codex = { sandbox = "workspace-write" }'),
    "templates": (str, 'review = "Review {{branch}} …"'),
    "worker": (object, "allow_command = true"),
}


def check(data: dict[str, Any], path: Path) -> None:
    """Refuse a config whose known tables have the wrong shape, naming the key."""
    for name, (value_type, example) in _TABLES.items():
        if name not in data:
            continue
        table = data[name]
        if not isinstance(table, dict) or not all(
                isinstance(value, value_type) for value in table.values()):
            raise ConfigError(f"config {path}: [{name}] must be a table like "
                              f"`[{name}]` / `{example}`")
    coordinator = data.get("coordinator")
    if coordinator is not None and not isinstance(coordinator, str):
        raise ConfigError(f"config {path}: coordinator must be a URL string")
    limit = data.get("max_parallel")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or
                              limit < 1):
        raise ConfigError(f"config {path}: max_parallel must be a whole number ≥ 1")


def max_parallel(data: dict[str, Any]) -> int:
    """How many agents the queue starts at once here: the config's ``max_parallel``, by
    default the CPU count capped at 4 (agents mostly wait on their model, but each one's
    checks and builds use a core)."""
    import os

    value = data.get("max_parallel")
    return value if isinstance(value, int) else min(os.cpu_count() or 1, 4)


def save(data: dict[str, Any], path: Path | None = None) -> None:
    """Write the config atomically (temp file + rename) so a crash never truncates it."""
    atomic_write(path or config_path(), dumps(data))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):  # inline, as in [approvals] allow = [{ tool = "Read" }]
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }"
    raise ConfigError(f"cannot write {type(value).__name__} to the config file")


def _key(key: str) -> str:
    bare = key.replace("-", "").replace("_", "").isalnum()
    return key if bare else json.dumps(key)


def dumps(data: dict[str, Any], prefix: str = "") -> str:
    """Serialise nested dicts of scalars and lists as TOML."""
    lines: list[str] = []
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((f"{prefix}{_key(key)}", value))
        else:
            lines.append(f"{_key(key)} = {_value(value)}")
    out = "\n".join(lines)
    for name, table in tables:
        body = dumps(table, prefix=f"{name}.")
        has_scalars = any(not isinstance(v, dict) for v in table.values())
        header = f"[{name}]\n" if has_scalars or not table else ""
        out += ("\n\n" if out else "") + header + body
    return out + ("\n" if out and not prefix else "")


def executor_settings(config: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``[executors.NAME]`` table, or an empty dict."""
    section = config.get("executors", {}).get(name, {})
    return section if isinstance(section, dict) else {}
