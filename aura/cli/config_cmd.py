"""`aura config get | set | unset | list | path`: settings set once in the config file
(the default executor, a model per executor, endpoints, max parallel, …)."""

from __future__ import annotations

from typing import Any

import click

from aura.cli.output import CONTEXT_SETTINGS, AuraGroup
from aura.errors import ConfigError, UsageError


@click.group("config", cls=AuraGroup, context_settings=CONTEXT_SETTINGS)
def config_command() -> None:
    """Read and change aura's settings (the config file).

    \b
    Keys aura knows:
      executor                  default executor (AURA_EXECUTOR wins), e.g. claude
      models.EXECUTOR           default model of that executor
      executors.NAME.endpoint   OpenAI-compatible endpoint (custom, ollama, lms)
      executors.NAME.KEY        executor settings (codex: sandbox, droid: autonomy, …)
      executor_paths.NAME       where the executor's binary is
      max_parallel              agents the queue runs at once (a whole number ≥ 1)
      notify_command            command run when a session needs you
      coordinator               coordinator URL for --on

    \b
    EXAMPLES
      aura config set executor claude
      aura config set models.claude opus
      aura config get executor
      aura config unset models.claude
      aura config list
    """


def _checked_key(key: str) -> str:
    """``key`` with its executor names checked (and aliases resolved)."""
    from aura import config
    from aura.executors import registry

    parts = config.split_key(key)
    if parts[0] in ("models", "executors", "executor_paths") and len(parts) > 1:
        parts[1] = registry.canonical(parts[1])
    return ".".join(parts)


@config_command.command("get", context_settings=CONTEXT_SETTINGS)
@click.argument("key")
def config_get(key: str) -> None:
    """Print the value of KEY (exit 1 when it is not set)."""
    from aura import config

    try:
        value = config.get_key(config.load(), _checked_key(key))
    except KeyError:
        raise ConfigError(f"{key} is not set (`aura config list` shows what is)") from None
    click.echo(_shown(value) if not isinstance(value, dict) else
               "\n".join(f"{k} = {_shown(v)}" for k, v in config.flatten(value)))


@config_command.command("set", context_settings=CONTEXT_SETTINGS)
@click.argument("key")
@click.argument("value")
def config_set(key: str, value: str) -> None:
    """Set KEY to VALUE (a number, true/false or text, as the key wants)."""
    from aura import config
    from aura.executors import registry

    key = _checked_key(key)
    typed: Any = config.parse_value(key, value)
    if key == "executor":
        typed = registry.canonical(typed)
    data = config.load()
    config.set_key(data, key, typed)
    _save(data)
    click.echo(f"{key} = {_shown(typed)}")


@config_command.command("unset", context_settings=CONTEXT_SETTINGS)
@click.argument("key")
def config_unset(key: str) -> None:
    """Remove KEY from the config (exit 1 when it was not set)."""
    from aura import config

    key = _checked_key(key)
    data = config.load()
    if not config.unset_key(data, key):
        raise ConfigError(f"{key} is not set; nothing was changed")
    _save(data)


@config_command.command("list", context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="The whole config as one JSON object.")
def config_list(as_json: bool) -> None:
    """Every setting as KEY = VALUE (the effective default executor first)."""
    from aura import config
    from aura.executors import registry

    data = config.load()
    if as_json:
        from aura.cli.render import json_text

        click.echo(json_text(data))
        return
    for key, value in config.flatten(data):
        click.echo(f"{key} = {_shown(value)}")
    click.echo(f"# default executor now: {registry.default_executor(data)}", err=True)


@config_command.command("path", context_settings=CONTEXT_SETTINGS)
def config_path_command() -> None:
    """Print where the config file is (AURA_CONFIG, else AURA_HOME, else per-user)."""
    from aura.paths import config_path

    click.echo(str(config_path()))


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value)


def _save(data: dict[str, Any]) -> None:
    from aura import config
    from aura.paths import config_path

    config.check(data, config_path())  # never write a file the next load refuses
    try:
        config.save(data)
    except OSError as exc:
        raise UsageError(f"cannot write {config_path()}: {exc.strerror}") from None
