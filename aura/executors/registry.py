"""Executor names → classes, imported only when chosen (startup stays fast)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aura.errors import UsageError

if TYPE_CHECKING:  # base imports asyncio; listing names (completion, help) must not
    from aura.executors.base import Executor

# name → (module, class). Modules are imported on demand.
EXECUTORS: dict[str, tuple[str, str]] = {
    "custom": ("aura.executors.custom", "CustomCommandExecutor"),
    "codex": ("aura.executors.codex", "CodexExecutor"),
    "opencode": ("aura.executors.opencode", "OpencodeExecutor"),
    "copilot": ("aura.executors.copilot", "CopilotExecutor"),
    "claude": ("aura.executors.claude", "ClaudeExecutor"),
    "cursor-agent": ("aura.executors.cursor", "CursorAgentExecutor"),
    "amp": ("aura.executors.amp", "AmpExecutor"),
    "droid": ("aura.executors.droid", "DroidExecutor"),
    "lms": ("aura.executors.lms", "LMStudioExecutor"),
    "ollama": ("aura.executors.ollama", "OllamaExecutor"),
    "gemini": ("aura.executors.gemini", "GeminiExecutor"),
    "qwen-code": ("aura.executors.qwen", "QwenExecutor"),
}

# name → (program it runs, npm package of its npx fallback), the classes' ``program`` and
# ``npx_package`` (tests/test_completion.py checks they agree): what a TAB looks for on
# PATH without importing every executor module.
PROGRAMS: dict[str, tuple[str | None, str | None]] = {
    "custom": (None, None),
    "codex": ("codex", "@openai/codex"),
    "opencode": ("opencode", "opencode-ai"),
    "copilot": ("copilot", "@github/copilot"),
    "claude": ("claude", None),
    "cursor-agent": ("cursor-agent", None),
    "amp": ("amp", "@ampcode/cli"),
    "droid": ("droid", None),
    "lms": (None, None),
    "ollama": (None, None),
    "gemini": ("gemini", "@google/gemini-cli"),
    "qwen-code": ("qwen", "@qwen-code/qwen-code"),
}

# The executors whose server lists models (`aura models`).
MODEL_EXECUTORS = ("ollama", "lms", "custom")

ALIASES: dict[str, str] = {
    "cursor": "cursor-agent",
    "lmstudio": "lms",
    "lm-studio": "lms",
    "qwen": "qwen-code",
}

DEFAULT_EXECUTOR = "codex"


def default_executor(config: dict[str, Any] | None = None) -> str:
    """The executor a run without --executor (and without a session) uses:
    ``AURA_EXECUTOR``, else the config's ``executor``, else codex. ``config``: the loaded
    config (read here when None). An unknown name is a UsageError naming where it came
    from."""
    import os

    from_env = os.environ.get("AURA_EXECUTOR", "").strip()
    if from_env:
        return _named(from_env, "AURA_EXECUTOR")
    if config is None:
        from aura import config as config_module

        config = config_module.load()
    configured = config.get("executor")
    if isinstance(configured, str) and configured:
        return _named(configured, "the config's executor")
    return DEFAULT_EXECUTOR


def _named(name: str, source: str) -> str:
    try:
        return canonical(name)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from None


def names() -> list[str]:
    """Every executor name, sorted (aliases not included)."""
    return sorted(EXECUTORS)


def canonical(name: str) -> str:
    """The executor's canonical name, resolving aliases; UsageError if unknown."""
    name = ALIASES.get(name, name)
    if name not in EXECUTORS:
        known = ", ".join(names())
        raise UsageError(f"unknown executor {name!r}; choose one of: {known}")
    return name


def load(name: str) -> type[Executor]:
    """The class of executor ``name`` (or alias)."""
    module_name, class_name = EXECUTORS[canonical(name)]
    cls: type[Executor] = getattr(importlib.import_module(module_name), class_name)
    return cls
