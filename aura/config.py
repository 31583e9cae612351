"""The user's settings: a TOML file read with tomllib, written back by a small writer.

Layout (every table optional; `aura config set KEY VALUE` writes it)::

    executor = "claude"       # the default executor (AURA_EXECUTOR wins)
    coordinator = "wss://coord:8765"
    max_parallel = 3          # agents the queue runs at once on this machine

    [models]                  # the default model per executor
    claude = "opus"

    [executor_paths]          # --executor-path NAME=PATH, remembered
    claude = "/opt/claude/bin/claude"

    [executors.codex]         # executor-specific settings
    sandbox = "workspace-write"
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
    "models": (str, 'claude = "opus"'),
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
    for name in ("coordinator", "executor"):
        if data.get(name) is not None and not isinstance(data[name], str):
            raise ConfigError(f"config {path}: {name} must be a string")
    command = data.get("notify_command")
    if command is not None and not isinstance(command, str) and not (
            isinstance(command, list) and all(isinstance(a, str) for a in command)):
        # a string runs through sh -c; a list runs as it is (aura.service.notify)
        raise ConfigError(f"config {path}: notify_command must be a string or a list of "
                          "strings")
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


# `aura config` keys aura knows: a dotted pattern (``*``: any one name) → its type. Other
# keys may be set too (a value typed as int, bool or string by its look).
KNOWN_KEYS: dict[str, type] = {
    "executor": str,            # the default executor (AURA_EXECUTOR wins)
    "models.*": str,            # the default model per executor
    "executors.*.endpoint": str,
    "executors.*.*": object,    # executor-specific settings (sandbox, autonomy, …)
    "executor_paths.*": str,
    "max_parallel": int,
    "notify_command": str,
    "coordinator": str,
    "templates.*": str,
    "worker.*": object,
}


def key_type(key: str) -> type | None:
    """The type aura expects at dotted ``key``, or None for a key it does not know."""
    parts = key.split(".")
    for pattern, value_type in KNOWN_KEYS.items():
        wanted = pattern.split(".")
        if len(wanted) == len(parts) and all(
                w in ("*", p) for w, p in zip(wanted, parts, strict=True)):
            return value_type
    return None


def split_key(key: str) -> list[str]:
    """``a.b.c`` → its parts; ConfigError for an empty part (``a..b``, ``.a``)."""
    parts = key.split(".")
    if not all(part.strip() for part in parts):
        raise ConfigError(f"{key!r} is not a config key (names joined by dots, "
                          "e.g. executors.codex.sandbox)")
    return parts


def parse_value(key: str, text: str) -> Any:
    """The typed value of ``text`` for ``key``: the key's type where aura knows it, else
    true/false → bool, digits → int, anything else a string."""
    wanted = key_type(key)
    lowered = text.strip().lower()
    as_bool = {"true": True, "false": False}.get(lowered)
    is_int = lowered.lstrip("-").isdigit()
    if wanted is int:
        if not is_int:
            raise ConfigError(f"{key} must be a whole number, not {text!r}")
        value: Any = int(lowered)
    elif wanted is str:
        value = text
    elif as_bool is not None:
        value = as_bool
    else:
        value = int(lowered) if is_int else text
    if key == "max_parallel" and value < 1:
        raise ConfigError("max_parallel must be a whole number ≥ 1")
    if wanted is str and not value.strip():
        raise ConfigError(f"{key} must not be empty (`aura config unset {key}` removes it)")
    return value


def get_key(data: dict[str, Any], key: str) -> Any:
    """The value at dotted ``key`` (a table comes back as a dict); KeyError if unset."""
    node: Any = data
    for part in split_key(key):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(key)
        node = node[part]
    return node


def set_key(data: dict[str, Any], key: str, value: Any) -> None:
    """Put ``value`` at dotted ``key``, making the tables on the way; a ConfigError when a
    part of the way is a value, not a table."""
    *tables, last = split_key(key)
    node = data
    for depth, part in enumerate(tables):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(tables[:depth + 1])
            raise ConfigError(f"{where} is a value, not a table; unset it first")
        node = child
    if isinstance(node.get(last), dict):
        raise ConfigError(f"{key} is a table; set one of its keys ({key}.NAME)")
    node[last] = value


def unset_key(data: dict[str, Any], key: str) -> bool:
    """Remove dotted ``key`` (and tables it leaves empty); False when it was not set."""
    *tables, last = split_key(key)
    path = [data]
    for part in tables:
        child = path[-1].get(part)
        if not isinstance(child, dict):
            return False
        path.append(child)
    if last not in path[-1]:
        return False
    del path[-1][last]
    for parent, part, child in reversed(list(zip(path[:-1], tables, path[1:], strict=True))):
        if not child:
            del parent[part]
    return True


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Every value as (dotted key, value), in file order."""
    rows: list[tuple[str, Any]] = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            rows.extend(flatten(value, f"{prefix}{key}."))
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def default_model(data: dict[str, Any], executor: str) -> str | None:
    """The ``[models]`` entry for ``executor`` (`aura config set models.claude opus`)."""
    models = data.get("models")
    value = models.get(executor) if isinstance(models, dict) else None
    return value if isinstance(value, str) and value else None
