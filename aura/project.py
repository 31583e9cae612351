"""A repository's own aura settings: ``.aura.toml`` at its top level (read with tomllib).

    setup = "make deps"                 # or a list of commands, run in order
    cleanup = ["ruff format ."]
    check = "pytest -q"                 # or a list: run after the agent, results stored
    [templates]                         # per-stage prompt templates (see prompts.py)
    follow_up = "{{review}}Please: {{prompt}}"
    review = "…{{diff}}…"
    [review]                            # who reviews (`--review-executor` overrides executor)
    executor = "claude"
    base_command = "…"                  # optional, as --base-command
    params = ["…"]                      # optional, as --param
    model = "…"
    [approvals]                         # rules answering agents' requests (approval_policy)
    deny = [{ command = "rm -rf" }]

A missing file is an empty config; a broken one is a ConfigError naming the file and key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from aura.errors import ConfigError

FILENAME = ".aura.toml"


def _commands(data: dict[str, Any], key: str, path: Path) -> list[str]:
    value = data.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{path}: {key} must be a command or a list of commands")
    return [v for v in value if v.strip()]


def _table(data: dict[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: [{key}] must be a table")
    return value


def load_project_config(repo: str | Path) -> dict[str, Any]:
    """``{"setup": [...], "cleanup": [...], "check": [...], "templates": {...},
    "review": {...}}``."""
    path = Path(repo) / FILENAME
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        data = {}
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    templates = _table(data, "templates", path)
    for key, value in templates.items():
        if not isinstance(value, str):
            raise ConfigError(f"{path}: templates.{key} must be a string")
    review = _table(data, "review", path)
    return {"setup": _commands(data, "setup", path), "cleanup": _commands(data, "cleanup", path),
            "check": _commands(data, "check", path),
            "templates": templates, "review": review, "path": str(path),
            "approvals": _table(data, "approvals", path)}  # read by approval_policy
